// Command ticket prints a ticket for the token vending machine, signed with
// the key in TICKET_KEY, for curl and local tries:
//
//	export TICKET_KEY="$(openssl rand -base64 32)"
//	go run ./cmd/ticket -sub alice -topics 'order-42-*'
//	curl -H "Authorization: Bearer $(go run ./cmd/ticket -sub alice -topics 'order-42-*')" localhost:8080
//
// TICKET_KEY is read as the function reads it (see ticket.ParseKeys): the
// key itself, at least 32 bytes of text used as they are (not
// base64-decoded), or JSON {"keys": {"<kid>": "<key>", ...}}, in which case
// -kid chooses the key (needed only if there are several).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"example.com/tokenvendingmachine/internal/scope"
	"example.com/tokenvendingmachine/internal/ticket"
)

func main() {
	err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// usageError is a command-line error that the flag package has already
// printed, with the usage.
type usageError struct{ error }

// exitCode returns the exit status for run's error, printing it to stderr
// unless it was printed already: 0 for nil and for -h, 2 for a bad command
// line, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	}
	fmt.Fprintln(stderr, "ticket:", err)
	return 1
}

// run prints the ticket args ask for to stdout, and nothing else: usage and
// flag errors go to stderr, so that $(ticket ...) is only ever a ticket.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ticket", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "the caller's opaque id (required): 1 to 64 bytes of [A-Za-z0-9._:@-]")
	topics := fs.String("topics", "", "comma-separated topic names and delimited prefixes such as 'order-42-*' (required)")
	ttl := fs.Duration("ttl", 5*time.Minute, "how long the ticket is valid; the function accepts at most TICKET_MAX_TTL (10m by default)")
	aud := fs.String("aud", ticket.DefaultAudience, "the audience, as TICKET_AUDIENCE")
	kid := fs.String("kid", "", "the id of the key in TICKET_KEY to sign with, if it holds several")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: TICKET_KEY=... ticket -sub ID -topics LIST [flags]\n\nPrints a ticket signed with TICKET_KEY.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *sub == "" || *topics == "" {
		return errors.New("-sub and -topics are required")
	}
	if *ttl <= 0 {
		return fmt.Errorf("-ttl %v must be positive", *ttl)
	}
	sc, err := scope.Parse(*topics)
	if err != nil {
		return fmt.Errorf("-topics: %w", err)
	}
	payload := getenv("TICKET_KEY")
	if payload == "" {
		return errors.New(`TICKET_KEY is not set; for a try: export TICKET_KEY="$(openssl rand -base64 32)"`)
	}
	keys, err := ticket.ParseKeys([]byte(payload))
	if err != nil {
		return fmt.Errorf("TICKET_KEY: %w", err)
	}
	id := *kid
	if id == "" && keys.Len() > 1 {
		return fmt.Errorf("TICKET_KEY holds keys %v: choose one with -kid", keys.IDs())
	}
	if id == "" {
		id = keys.IDs()[0]
	}
	key, ok := keys.Key(id)
	if !ok {
		return fmt.Errorf("TICKET_KEY has no key with id %q; it has %v", id, keys.IDs())
	}
	raw, err := ticket.Sign(key, *aud, ticket.Claims{Subject: *sub, Scope: sc, Expires: time.Now().Add(*ttl)})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, raw)
	return err
}
