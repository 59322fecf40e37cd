package config

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readme is the README whose Configuration section documents the
// variables.
const readme = "../../README.md"

// variableName matches a backquoted variable name in a table's first
// column.
var variableName = regexp.MustCompile("`([A-Z][A-Z0-9_]*)`")

// configurationTables returns the variables named in the first column of
// each table of the README's Configuration section, in order: what a
// deployer sets, then what the platform and the local stand-ins set.
func configurationTables(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatalf("%s has no \"## Configuration\" section", readme)
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var tables [][]string
	inTable := false
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		if !inTable {
			inTable = true
			tables = append(tables, nil)
			continue // the header row
		}
		cells := strings.Split(line, "|")
		if len(cells) < 3 || strings.Trim(cells[1], " -") == "" {
			continue // the delimiter row
		}
		for _, m := range variableName.FindAllStringSubmatch(cells[1], -1) {
			tables[len(tables)-1] = append(tables[len(tables)-1], m[1])
		}
	}
	return tables
}

// TestReadmeListsTheVariables checks that the README's Configuration
// tables name the variables the code has: the first, what a deployer sets,
// exactly DeployerVariables; the second, set by others, exactly
// PlatformVariables and EmulatorVariables.
func TestReadmeListsTheVariables(t *testing.T) {
	tables := configurationTables(t)
	if len(tables) != 2 {
		t.Fatalf("%s: the Configuration section has %d tables, want 2 (what a deployer sets; what the platform and local stand-ins set)", readme, len(tables))
	}
	for _, tt := range []struct {
		name string
		got  []string
		want []string
	}{
		{"deployer table", tables[0], DeployerVariables},
		{"platform and emulator table", tables[1], slices.Concat(PlatformVariables, EmulatorVariables)},
	} {
		got, want := slices.Sorted(slices.Values(tt.got)), slices.Sorted(slices.Values(tt.want))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: the %s's variables differ from the code's (-code +README):\n%s", readme, tt.name, diff)
		}
	}
}
