package conformance

import (
	"regexp"
	"testing"
)

func TestSurfaceSpecs(t *testing.T) {
	names, group := surfaceSpecNames()
	// 28 scalar, 12 topic, 30 disposable-token and 5 control-plane specs.
	if len(names) != 75 || len(group) != 75 {
		t.Fatalf("surfaceSpecNames() = %d names (%d distinct), want 75 distinct", len(names), len(group))
	}
	focus := regexp.MustCompile(focusRegexp(ginkgoSuite, names))
	for _, n := range names {
		if !focus.MatchString(ginkgoSuite + " " + n) {
			t.Errorf("focus does not select %q", n)
		}
	}
	for _, n := range []string{
		// Neighbours that must stay out: a longer name, another table, a spec
		// named like ours in another container, a bare container.
		"cache-client scalar-methods Gets, Sets, and Deletes when the key and value are strings too",
		"cache-client scalar-methods Set if absent when the key and value are strings",
		"auth auth-client Generate api keys should successfully generate api key that expires",
		"topic-client",
		"cache-client scalar-methods Set",
	} {
		if focus.MatchString(ginkgoSuite + " " + n) {
			t.Errorf("focus selects %q, which is not in surfaceSpecs", n)
		}
	}
}
