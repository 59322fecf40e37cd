package vending

import (
	"context"
	"errors"
	"time"

	"github.com/momentohq/client-sdk-go/momento"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Key rotation: when Momento rejects the API key, the Vendor re-reads it
// and builds new clients, retiring the old ones once their calls are done.

// LogKeyRejected is the message of the line logged when Momento rejects the
// API key and the Vendor re-reads it.
const LogKeyRejected = "Momento rejected the API key; re-reading it"

// retiree is a set of clients replaced by a reconnect and the timer that
// will close it.
type retiree struct {
	clients *Clients
	timer   *time.Timer
	done    bool // the timer closed the clients; guarded by Vendor.mu
}

// generation is one set of clients; a reconnect makes the next.
type generation struct {
	clients *Clients
}

// reconnect replaces the clients of generation used with new ones built
// by Options.Reconnect, unless another request already did. It returns the
// generation to retry with, or nil if there is none to try: no Reconnect,
// or one was made less than Options.ReconnectInterval ago. A non-nil error
// means Reconnect failed, just now or on its last try less than a few
// seconds ago.
func (v *Vendor) reconnect(ctx context.Context, used *generation) (*generation, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if cur := v.current.Load(); cur != used {
		return cur, nil
	}
	if v.opts.Reconnect == nil || v.closed {
		return nil, nil
	}
	now := v.opts.Now()
	if now.Before(v.nextReconnect) {
		if v.reconnectErr != nil {
			return nil, v.reconnectErr
		}
		v.opts.Logger.Warn("API key was re-read recently; not re-reading it again yet",
			"retry_in", v.nextReconnect.Sub(now).Round(time.Second).String())
		return nil, nil
	}
	clients, err := v.opts.Reconnect(ctx)
	v.reconnectErr = err
	if err != nil {
		// Try again soon: the key is still rejected, and the re-read may
		// have failed only for now.
		v.nextReconnect = now.Add(reconnectRetry)
		v.opts.Logger.Error("re-reading the API key failed", "error", err.Error())
		return nil, err
	}
	v.nextReconnect = now.Add(v.opts.ReconnectInterval)
	next := &generation{clients: clients}
	v.current.Store(next)
	v.retire(used.clients)
	v.opts.Logger.Info("reconnected to Momento with the re-read API key")
	return next, nil
}

// reconnectRetry is how soon a failed Reconnect may be tried again.
const reconnectRetry = 5 * time.Second

// retire closes clients once the calls in flight on them are done: each
// is bounded by CallTimeout, and a request makes at most three. v.mu must
// be held.
func (v *Vendor) retire(clients *Clients) {
	live := v.retired[:0]
	for _, r := range v.retired {
		if !r.done {
			live = append(live, r)
		}
	}
	r := &retiree{clients: clients}
	r.timer = time.AfterFunc(4*v.opts.CallTimeout+time.Second, func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		if !r.done {
			r.done = true
			r.clients.Close()
		}
	})
	v.retired = append(live, r)
}

// rejected reports whether err says Momento rejected the credentials.
func rejected(err error) bool {
	switch StatusCode(err) {
	case codes.Unauthenticated, codes.PermissionDenied:
		return true
	}
	return false
}

// StatusCode returns the gRPC status code behind an error of the Momento
// SDK, looking through the SDK's OriginalErr chain: the SDK reports every
// GenerateDisposableToken failure as a ClientSdkError that keeps the real
// one there. It returns codes.Unknown if there is none.
func StatusCode(err error) codes.Code {
	for err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return codes.DeadlineExceeded
		}
		if st, ok := status.FromError(err); ok {
			return st.Code()
		}
		var me momento.MomentoError
		if errors.As(err, &me) {
			switch me.Code() {
			case momento.AuthenticationError:
				return codes.Unauthenticated
			case momento.PermissionError:
				return codes.PermissionDenied
			}
			err = me.OriginalErr()
			continue
		}
		err = errors.Unwrap(err)
	}
	return codes.Unknown
}

// Close closes the clients. Token must not be called after Close.
func (v *Vendor) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.closed = true
	for _, r := range v.retired {
		r.timer.Stop()
		if !r.done {
			r.done = true
			r.clients.Close()
		}
	}
	v.current.Load().clients.Close()
}
