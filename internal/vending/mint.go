package vending

import (
	"context"
	"fmt"
	"time"

	"github.com/momentohq/client-sdk-go/momento"
	authresp "github.com/momentohq/client-sdk-go/responses/auth"
	"github.com/momentohq/client-sdk-go/utils"
	"google.golang.org/grpc/codes"

	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/scope"
)

// Minting: the permissions of a caller's token, the call, and what its
// failures mean.

// LogMintsPaused is the message of the line logged when Momento answers a
// mint with ResourceExhausted and the Vendor pauses mints.
const LogMintsPaused = "Momento refused a mint for the account's rate limit; pausing mints"

// mintError gives a failed mint its kind: Limited for Momento's
// ResourceExhausted (after which mints pause, 1 s doubling to 30 s);
// Misconfigured for a key Momento rejects that cannot be, or was just,
// re-read; Unavailable, with the time until the next re-read, for a key
// rejected within the re-read interval, which a rotation in progress may
// explain; Unavailable for anything else.
func (v *Vendor) mintError(err error, c Caller, reread bool) error {
	code := StatusCode(err)
	// Of what names the caller, the mint sent only the token id (a
	// ticket's sub, say): Momento may quote it.
	cause := fmt.Errorf("mint token (%s): %s", code, scrub(err, c.TokenID, scrubbedTokenID))
	switch {
	case code == codes.ResourceExhausted:
		wait := v.lim.pause.Fail()
		v.opts.Logger.Warn(LogMintsPaused, "pause", wait.String())
		return &failure.Error{Kind: failure.Limited, Retry: wait, Err: cause}
	case rejected(err) && (reread || v.opts.Reconnect == nil):
		return fmt.Errorf("%w: %w", ErrRejected, cause)
	case rejected(err):
		v.mu.Lock()
		wait := v.nextReconnect.Sub(v.opts.Now())
		v.mu.Unlock()
		return &failure.Error{Kind: failure.Unavailable, Retry: max(wait, time.Second), Err: fmt.Errorf("%w: %w", ErrUnavailable, cause)}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, cause)
}

// MaxPermissions is the most permission statements Momento lets a token
// carry: one per topic selector, as many as a scope may hold.
const MaxPermissions = scope.MaxSelectors

// errNoScope means a caller's scope allows nothing; the edge refuses such a
// caller before asking for a token.
var errNoScope = failure.New(failure.Misconfigured, "the caller's scope allows no topic")

// permissions returns the permissions of c's token in the cache: subscribe
// on Scope, publish and subscribe on Publish.
func (v *Vendor) permissions(c Caller) (momento.Permissions, error) {
	cache := momento.CacheName{Name: v.opts.CacheName}
	if c.Scope.IsEmpty() && c.Publish.IsEmpty() {
		return momento.Permissions{}, errNoScope
	}
	var perms []momento.Permission
	add := func(s scope.Scope, role momento.TopicRole, skip scope.Scope) {
		if s.IsAll() {
			perms = append(perms, momento.TopicPermission{Role: role, Cache: cache, Topic: momento.AllTopics{}})
			return
		}
		for _, sel := range s.Selectors() {
			if skip.IsAll() || (!sel.Prefix && skip.Allows(sel.Topic)) {
				continue // granted with publish already
			}
			var topic momento.TopicSelector = momento.TopicName{Name: sel.Topic}
			if sel.Prefix {
				topic = momento.TopicNamePrefix{NamePrefix: sel.Topic}
			}
			perms = append(perms, momento.TopicPermission{Role: role, Cache: cache, Topic: topic})
		}
	}
	add(c.Publish, momento.PublishSubscribe, scope.Scope{})
	add(c.Scope, momento.SubscribeOnly, c.Publish)
	if len(perms) > MaxPermissions {
		return momento.Permissions{}, failure.Wrap(failure.Misconfigured,
			fmt.Errorf("the caller's scope needs %d permissions, more than Momento's %d", len(perms), MaxPermissions))
	}
	return momento.Permissions{Permissions: perms}, nil
}

// mint asks Momento for a token with perms and tokenID.
func (v *Vendor) mint(ctx context.Context, c *Clients, perms momento.Permissions, tokenID string) (token, error) {
	ctx, cancel := context.WithTimeout(ctx, v.opts.CallTimeout)
	defer cancel()
	req := &momento.GenerateDisposableTokenRequest{
		ExpiresIn: utils.ExpiresInSeconds(int64(v.opts.TokenTTL / time.Second)),
		Scope:     perms,
	}
	if tokenID != "" {
		req.Props.TokenId = &tokenID
	}
	resp, err := c.Auth.GenerateDisposableToken(ctx, req)
	if err != nil {
		return token{}, err
	}
	minted, _ := resp.(*authresp.GenerateDisposableTokenSuccess)
	if minted == nil || minted.ApiKey == "" {
		return token{}, fmt.Errorf("unexpected response %T", resp)
	}
	t := newToken(minted.ApiKey, time.Unix(int64(minted.ValidUntil), 0))
	if left := t.exp.Sub(v.opts.Now()); left < v.opts.Margin {
		// Only a clock far off Momento's gets here; such a token would
		// break the promise of Margin.
		return token{}, fmt.Errorf("minted token has only %v left", left.Round(time.Second))
	}
	return t, nil
}
