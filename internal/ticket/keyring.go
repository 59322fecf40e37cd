package ticket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/jws"
)

// RereadInterval is the least time between two re-reads of a KeyRing's
// keys for an unknown key id, however many unknown key ids arrive.
const RereadInterval = 30 * time.Second

// KeysMaxAge is how long a KeyRing that re-reads uses its keys before it
// reads them again, so that a key removed from the secret stops being
// accepted without a redeploy.
const KeysMaxAge = 5 * time.Minute

// Source is where a KeyRing reads its keys.
type Source struct {
	// Name names the source in errors: the variable that configures it,
	// such as TICKET_KEY or TICKET_SECRET_ID.
	Name string
	// Read returns the keys' payload, in ParseKeys's form. Its error is
	// returned as it is.
	Read func(context.Context) ([]byte, error)
	// Rereads reports whether the keys can change while the instance runs
	// (a secret): then an unknown key id makes the ring read them again,
	// and so does their age.
	Rereads bool
}

// KeyRing verifies tickets with the current keys of a Source. Keys that
// can change are read again when a ticket names a key id they lack (the
// app added a key), at most once per RereadInterval, and when they are
// older than KeysMaxAge (the app removed one). Its methods are safe for
// concurrent use.
type KeyRing struct {
	src  Source
	opts Options // its Now is the clock
	log  *slog.Logger

	current  atomic.Pointer[Verifier]
	loadedAt atomic.Int64 // when current was read, in unix nanoseconds
	mu       sync.Mutex   // serialises reads; guards next
	next     time.Time    // the earliest time of the next re-read for an unknown key id
}

// NewKeyRing reads src's keys and returns a ring that verifies tickets
// with them. An error reading them is returned as Read returned it; keys
// that do not parse are failure.Misconfigured, naming src.Name, never key
// bytes. Failed re-reads are logged to log, and the old keys kept.
func NewKeyRing(ctx context.Context, src Source, opts Options, log *slog.Logger) (*KeyRing, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	kr := &KeyRing{src: src, opts: opts, log: log}
	if err := kr.load(ctx); err != nil {
		return nil, err
	}
	return kr, nil
}

// load reads the keys and makes them current.
func (kr *KeyRing) load(ctx context.Context) error {
	payload, err := kr.src.Read(ctx)
	if err != nil {
		return err
	}
	keys, err := ParseKeys(payload)
	if err != nil {
		// The error names key ids and lengths, never key bytes.
		return failure.Wrap(failure.Misconfigured, fmt.Errorf("%s: %w", kr.src.Name, err))
	}
	v, err := NewVerifier(keys, kr.opts)
	if err != nil {
		return failure.Wrap(failure.Misconfigured, fmt.Errorf("%s: %w", kr.src.Name, err))
	}
	kr.current.Store(v)
	kr.loadedAt.Store(kr.opts.Now().UnixNano())
	return nil
}

// Verify verifies raw with the current keys, reading them again first if
// they are too old, or if raw names a key id they lack and the interval
// allows. Its errors are Verifier.Verify's.
func (kr *KeyRing) Verify(ctx context.Context, raw string) (Claims, error) {
	tok, err := jws.Parse(raw, MaxLen, algorithms)
	if err != nil {
		return Claims{}, Refusal(err)
	}
	return kr.VerifyToken(ctx, tok)
}

// VerifyToken is Verify for a ticket that passed jws.Parse; its errors are
// Verifier.VerifyToken's.
func (kr *KeyRing) VerifyToken(ctx context.Context, tok jws.Token) (Claims, error) {
	if kr.src.Rereads && kr.opts.Now().Sub(time.Unix(0, kr.loadedAt.Load())) > KeysMaxAge && kr.mu.TryLock() {
		// One request reads them again; the others go on with the keys
		// they have.
		if err := kr.load(ctx); err != nil {
			kr.log.Error("re-reading the ticket keys failed", "error", err.Error())
			// Keep the keys, and try again after the re-read interval.
			retry := kr.opts.Now().Add(RereadInterval - KeysMaxAge)
			kr.loadedAt.Store(retry.UnixNano())
		}
		kr.mu.Unlock()
	}
	c, err := kr.current.Load().VerifyToken(tok)
	if err == nil || !kr.src.Rereads || !errors.Is(err, ErrUnknownKey) {
		return c, err
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if now := kr.opts.Now(); now.After(kr.next) {
		kr.next = now.Add(RereadInterval)
		if lerr := kr.load(ctx); lerr != nil {
			kr.log.Error("re-reading the ticket keys failed", "error", lerr.Error())
		} else {
			kr.log.Info("re-read the ticket keys for an unknown key id")
		}
	}
	return kr.current.Load().VerifyToken(tok)
}
