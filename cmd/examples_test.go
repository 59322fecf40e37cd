package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/functest"
)

// runnableInfo is the info string of a documentation's shell block that is
// safe and quick to run on a fresh machine, against the local runner, with
// nothing but the Go module proxy.
const runnableInfo = "```sh runnable"

// exampleAddr is the local runner's address as the documentation writes it.
const exampleAddr = "127.0.0.1:8080"

// example is a runnable shell block of the documentation.
type example struct {
	where  string // file:line of its opening fence, from the module root
	script string
}

// runnableExamples returns the runnable blocks of the Markdown files.
func runnableExamples(t *testing.T, files ...string) []example {
	t.Helper()
	var examples []example
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var cur *example
		var lines []string
		for i, line := range strings.Split(string(b), "\n") {
			switch {
			case cur == nil && strings.TrimSpace(line) == runnableInfo:
				cur = &example{where: fmt.Sprintf("%s:%d", strings.TrimPrefix(filepath.ToSlash(file), "../"), i+1)}
				lines = nil
			case cur != nil && strings.TrimSpace(line) == "```":
				cur.script = strings.Join(lines, "\n") + "\n"
				examples = append(examples, *cur)
				cur = nil
			case cur != nil:
				lines = append(lines, line)
			}
		}
		if cur != nil {
			t.Fatalf("%s: the block is not closed", cur.where)
		}
	}
	return examples
}

// placeholder matches what a reader would have to replace by hand, such as
// <from the banner>: a runnable block holds none.
var placeholder = regexp.MustCompile(`<[a-z][a-z ]*>`)

// jsonObject matches a flat JSON object, such as a token response: curl
// prints one without a newline after it.
var jsonObject = regexp.MustCompile(`\{[^{}]*\}`)

// issuerLine matches the banner's line that gives the local login issuer.
var issuerLine = regexp.MustCompile(`Local login issuer: (\S+) `)

// TestRunnableExamples runs every shell block of the README and docs/
// marked "```sh runnable", as a reader pastes it into a second terminal
// while the quick start's runner serves: from the module root, with
// TICKET_KEY and ISSUER exported as the documentation says to export them
// from the banner. The runner is the built one, on a free port, with a
// TICKET_KEY of the test's own. A block fails if it exits non-zero, or
// gets fewer tokens than it calls the function.
func TestRunnableExamples(t *testing.T) {
	bin := buildRunner(t)
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := runnableExamples(t, append([]string{"../README.md"}, docs...)...)
	if len(examples) == 0 || !strings.HasPrefix(examples[0].where, "README.md:") {
		t.Fatalf("the README has no %q block: its quick start is not checked", runnableInfo)
	}

	port, err := functest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	const ticketKey = "the runnable examples' own ticket key, 32 bytes or more"
	cmd := exec.Command(bin, "-demo-port", "0")
	cmd.Env = append(functest.Env(os.Environ(), map[string]string{
		"TICKET_KEY": ticketKey,
		// The blocks run back to back, all from loopback's network, faster
		// than a reader pastes them: past the default burst of 3 new tokens
		// a network, the fourth in a second would be refused, where a
		// reader's pace (the bucket refills one every 2 s) never meets it.
		"FLEET_MINT_BURST": "200",
	}), "PORT="+strconv.Itoa(port))
	p, err := functest.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := p.WaitUp("http://"+addr+"/robots.txt", 60*time.Second); err != nil {
		t.Fatalf("runner: %v\n%s", err, p.Output)
	}
	m := issuerLine.FindStringSubmatch(p.Output.String())
	if m == nil {
		t.Fatalf("the banner names no local login issuer:\n%s", p.Output)
	}
	env := functest.Env(os.Environ(), map[string]string{"TICKET_KEY": ticketKey, "ISSUER": m[1]})

	for _, ex := range examples {
		t.Run(ex.where, func(t *testing.T) {
			if ph := placeholder.FindString(ex.script); ph != "" {
				t.Fatalf("%s holds the placeholder %s; export a variable for it instead:\n%s", ex.where, ph, ex.script)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			sh := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", strings.ReplaceAll(ex.script, exampleAddr, addr))
			sh.Dir = ".." // the module root
			sh.Env = env
			var stdout, stderr bytes.Buffer
			sh.Stdout, sh.Stderr = &stdout, &stderr
			start := time.Now()
			if err := sh.Run(); err != nil {
				t.Fatalf("%s: %v\n%s\nstdout:\n%s\nstderr:\n%s", ex.where, err, ex.script, &stdout, &stderr)
			}
			t.Logf("%s ran in %v", ex.where, time.Since(start).Round(time.Millisecond))
			calls := strings.Count(ex.script, exampleAddr)
			tokens := 0
			for _, obj := range jsonObject.FindAll(stdout.Bytes(), -1) {
				if _, err := functest.DecodeToken(obj); err == nil {
					tokens++
				}
			}
			if tokens < calls {
				t.Errorf("%s calls the function %d times but got %d tokens; its output:\n%s", ex.where, calls, tokens, &stdout)
			}
		})
	}
}
