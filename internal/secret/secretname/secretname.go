// Package secretname holds the rule for Secret Manager secret names, so
// that internal/config can check SECRET_ID at startup, naming the variable,
// without importing the client in internal/secret.
package secretname

import (
	"errors"
	"regexp"
	"sync"
)

// secretNameRE matches a global secret or secret version name. The project
// may be an ID (including a domain-scoped "example.com:p") or a number; the
// secret ID rule is the service's; the version is a number, "latest" or an
// alias. It is compiled on first use, not at init: every millisecond of
// package init is paid by each cold start.
var secretNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^projects/[A-Za-z0-9.:_-]+/secrets/[A-Za-z0-9_-]{1,255}(/versions/[A-Za-z0-9_-]+)?$`)
})

// Validate reports whether name is a secret, "projects/P/secrets/S",
// or a secret version, "projects/P/secrets/S/versions/V". The error does not
// quote name, in case a key was configured where its name belongs.
func Validate(name string) error {
	if !secretNameRE().MatchString(name) {
		return errors.New("secret name must be projects/PROJECT/secrets/SECRET or projects/PROJECT/secrets/SECRET/versions/VERSION")
	}
	return nil
}
