package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// pinnedSDKModDir holds the go.mod and go.sum that TestGoSDKSpecs puts in
// its copy of the SDK; regenCommand writes them.
const (
	pinnedSDKModDir = "testdata/gosdk"
	regenCommand    = "internal/conformance/testdata/gosdk/regen.sh"
)

// TestPinnedSDKModuleIsOurs checks that the go.mod TestGoSDKSpecs builds the
// SDK's specs with still matches this project's: written for the SDK version
// our go.mod requires, keeping the SDK's module path, and requiring every
// module that our go.mod also requires at our version. It reads only the two
// files, so it runs under -short too.
func TestPinnedSDKModuleIsOurs(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH: %v", err)
	}
	ours := readGoMod(t, goBin, filepath.Join("..", "..", "go.mod"))
	pinnedFile := filepath.Join(pinnedSDKModDir, "go.mod")
	pinned := readGoMod(t, goBin, pinnedFile)

	if pinned.Module.Path != sdkModule {
		t.Errorf("%s: module %q, want %q (the SDK's own path)", pinnedFile, pinned.Module.Path, sdkModule)
	}
	want := make(map[string]string)
	for _, r := range ours.Require {
		want[r.Path] = r.Version
	}
	text, err := os.ReadFile(pinnedFile)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^// Written by regen.sh for ` + regexp.QuoteMeta(sdkModule) + ` (\S+),`).FindSubmatch(text)
	switch {
	case m == nil:
		t.Errorf("%s does not say which SDK version it was written for; regenerate it with %s", pinnedFile, regenCommand)
	case string(m[1]) != want[sdkModule]:
		t.Errorf("%s was written for %s %s, go.mod requires %s; regenerate it with %s",
			pinnedFile, sdkModule, m[1], want[sdkModule], regenCommand)
	}
	for _, r := range pinned.Require {
		if v, ok := want[r.Path]; ok && v != r.Version {
			t.Errorf("%s requires %s %s, go.mod %s; regenerate it with %s", pinnedFile, r.Path, r.Version, v, regenCommand)
		}
	}
}

// goMod is the part of `go mod edit -json` read here.
type goMod struct {
	Module  struct{ Path string }
	Require []struct{ Path, Version string }
}

// readGoMod parses the go.mod file at path with the go command, which reads
// only that file.
func readGoMod(t *testing.T, goBin, path string) goMod {
	t.Helper()
	out, err := exec.Command(goBin, "mod", "edit", "-json", path).Output()
	if err != nil {
		t.Fatalf("go mod edit -json %s: %v", path, err)
	}
	var m goMod
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("go mod edit -json %s: %v", path, err)
	}
	return m
}

// sdkModuleDir returns the directory of the SDK module that this project's
// go.mod requires, downloading it (checked against our go.sum) if the
// module cache lacks it.
func sdkModuleDir(t *testing.T, ctx context.Context, goBin string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", sdkModule)
	cmd.Env = buildEnv(nil)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &m); jerr != nil || err != nil || m.Error != "" || m.Dir == "" {
		t.Fatalf("go mod download -json %s: %v %s\n%s", sdkModule, err, m.Error, tail(stderr.String(), 20))
	}
	return m.Dir
}
