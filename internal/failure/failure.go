// Package failure names the kinds of failure the function's callers are
// told apart by. The internal packages return errors that carry a [Kind];
// the HTTP edge maps each kind, in one table, to a status, a message and a
// Retry-After, so that no other code decides what a caller is told.
//
// The model is benbjohnson/wtf's error codes: an error's kind is data, and
// only unexpected errors need their text read.
package failure

import (
	"context"
	"errors"
	"time"
)

// Kind is a kind of failure.
type Kind uint8

// The kinds of failure.
const (
	// Unexpected is any error that says nothing of its kind. It is
	// answered as Unavailable.
	Unexpected Kind = iota
	// Misconfigured means the deploy is wrong: its configuration, its
	// secret or its API key. Retrying will not help until someone fixes it.
	Misconfigured
	// Unavailable means a service the function calls failed; a retry in a
	// few seconds may succeed.
	Unavailable
	// Slow means the caller's deadline passed while the work was under way;
	// the work goes on, and a retry soon may find its result.
	Slow
	// Limited means a rate limit refused the request; Error.Retry says when
	// one may pass.
	Limited
	// Unidentified means the caller could not be told apart from others.
	Unidentified
	// OriginRefused means the request came from an origin that is not
	// allowed.
	OriginRefused
	// MethodRefused means the request's HTTP method is not served.
	MethodRefused
	// Unauthenticated means the caller must present credentials (a ticket
	// or an ID token) and presented none.
	Unauthenticated
	// BadCredentials means the caller's credentials were refused: invalid,
	// expired, for another audience, signed by an unknown key.
	BadCredentials
	// Forbidden means the caller is who it says, but may have no token:
	// its identity does not fit the configured scope.
	Forbidden
)

// Error is an error of a known kind.
type Error struct {
	Kind Kind
	// Retry is how long until a retry may succeed; 0 leaves it to the
	// edge's default for Kind.
	Retry time.Duration
	// Err is the cause, for logs; callers never see it.
	Err error
	// Reason is why a caller was refused, for the request's log line: a
	// fixed word or phrase ("expired", "signature", "malformed"), never
	// text the caller sent; "" if none.
	Reason string
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "failure"
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind with text, for sentinel errors that callers
// test with errors.Is.
func New(kind Kind, text string) *Error {
	return &Error{Kind: kind, Err: errors.New(text)}
}

// Refusal returns the error that refuses a caller for reason, a fixed word
// or phrase that the request's log line records (see ReasonOf).
func Refusal(kind Kind, reason string) *Error {
	return &Error{Kind: kind, Err: errors.New(reason), Reason: reason}
}

// ReasonOf returns the Reason of the outermost *Error in err's chain that
// has one, or "".
func ReasonOf(err error) string {
	var e *Error
	for errors.As(err, &e) {
		if e.Reason != "" {
			return e.Reason
		}
		err = e.Err
	}
	return ""
}

// Wrap returns err marked as kind, or nil if err is nil.
func Wrap(kind Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: kind, Err: err}
}

// Of returns the kind of err, and its Retry: the outermost *Error in err's
// chain says it. An error without one is Slow if it is a context's
// cancellation or deadline, and Unexpected otherwise.
func Of(err error) (Kind, time.Duration) {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Kind, e.Retry
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Slow, 0
	}
	return Unexpected, 0
}
