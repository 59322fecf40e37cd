package tokenvendingmachine

import (
	"bytes"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestTheRootIsTheEdge holds the root package to what it is, the HTTP edge:
// small files, one concern each, and credentials reached only through
// internal/credential, never the verifiers behind it.
func TestTheRootIsTheEdge(t *testing.T) {
	const maxLines = 200
	forbidden := []string{
		"example.com/tokenvendingmachine/internal/ticket",
		"example.com/tokenvendingmachine/internal/idtoken",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(src, []byte("\n")); n > maxLines {
			t.Errorf("%s has %d lines, want at most %d: split it by concern, or move what is not the HTTP edge under internal/", name, n, maxLines)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad {
					t.Errorf("%s imports %s: the root reaches credentials only through internal/credential", name, path)
				}
			}
		}
	}
}
