// Package lazy builds a value on first use, once for all concurrent callers,
// and builds it again after a failure, but not before a retry delay: the
// life cycle of a Cloud Functions instance's setup.
//
// It is x/sync/singleflight plus memory: singleflight shares one build
// among the callers waiting for it and forgets it when it returns; a
// [Value] keeps a success for good and a failure for RetryDelay.
package lazy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Value is a value of type T built by Build on first use. Set Build before
// the first Get; the other fields are optional. A Value must not be copied
// after first use.
type Value[T any] struct {
	// Build makes the value. Its ctx is not any caller's: a build goes on
	// when the callers waiting for it give up, bounded by Timeout, so that
	// its result serves the next caller.
	Build func(ctx context.Context) (T, error)
	// RetryDelay is how long after a failed build Get returns its error
	// without building again. 0 retries on the next Get.
	RetryDelay time.Duration
	// Timeout bounds one build; 0 means no bound.
	Timeout time.Duration
	// Now is the clock for RetryDelay; nil means time.Now.
	Now func() time.Time

	flight singleflight.Group
	// built is the built value, nil until a build succeeds; it never
	// changes after. Read without mu: every request of an instance reads
	// it.
	built atomic.Pointer[T]

	mu       sync.Mutex // guards the fields below
	err      error      // the last build's error, if it failed
	failedAt time.Time  // when it failed, on the Now clock
}

// Get returns the value, building it if no build has succeeded yet.
// Concurrent callers share one build. After a failure, Get returns that
// failure's error until RetryDelay has passed, then builds again. ctx bounds
// only the wait: if it ends first, Get returns ctx's error and the build
// goes on.
func (v *Value[T]) Get(ctx context.Context) (T, error) {
	if p := v.built.Load(); p != nil {
		return *p, nil
	}
	v.mu.Lock()
	if v.err != nil && v.now().Sub(v.failedAt) < v.RetryDelay {
		err := v.err
		v.mu.Unlock()
		var zero T
		return zero, err
	}
	v.mu.Unlock()

	ch := v.flight.DoChan("", func() (any, error) {
		// A flight that started after another's success need not build.
		if val, ok := v.Peek(); ok {
			return val, nil
		}
		return v.build()
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			var zero T
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func (v *Value[T]) build() (T, error) {
	ctx := context.Background()
	if v.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.Timeout)
		defer cancel()
	}
	val, err := v.Build(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		v.err, v.failedAt = err, v.now()
		return val, err
	}
	v.err = nil
	v.built.Store(&val)
	return val, nil
}

// Peek returns the value if a build has succeeded, without building.
func (v *Value[T]) Peek() (T, bool) {
	if p := v.built.Load(); p != nil {
		return *p, true
	}
	var zero T
	return zero, false
}

func (v *Value[T]) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}
