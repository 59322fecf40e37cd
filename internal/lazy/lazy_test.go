package lazy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/fakeclock"
)

func TestConcurrentCallersShareOneBuild(t *testing.T) {
	var builds atomic.Int32
	release := make(chan struct{})
	v := &Value[int]{Build: func(context.Context) (int, error) {
		builds.Add(1)
		<-release
		return 42, nil
	}}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := v.Get(context.Background()); got != 42 || err != nil {
				t.Errorf("Get() = %v, %v; want 42, nil", got, err)
			}
		}()
	}
	// Let the callers pile up on the first build before it returns.
	for builds.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	close(release)
	wg.Wait()
	for range 20 {
		v.Get(context.Background())
	}
	if n := builds.Load(); n != 1 {
		t.Errorf("builds = %d after 50 concurrent and 20 sequential Gets, want 1", n)
	}
}

func TestFailureIsKeptForTheRetryDelay(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	errDown := errors.New("down")
	var builds atomic.Int32
	fail := true
	v := &Value[string]{
		RetryDelay: 2 * time.Second,
		Now:        clk.Now,
		Build: func(context.Context) (string, error) {
			builds.Add(1)
			if fail {
				return "", errDown
			}
			return "ready", nil
		},
	}
	if _, err := v.Get(context.Background()); !errors.Is(err, errDown) {
		t.Fatalf("first Get: err %v, want errDown", err)
	}
	fail = false
	clk.Advance(time.Second)
	if _, err := v.Get(context.Background()); !errors.Is(err, errDown) || builds.Load() != 1 {
		t.Errorf("Get 1s after the failure: err %v after %d builds; want errDown without building again", err, builds.Load())
	}
	clk.Advance(time.Second)
	if got, err := v.Get(context.Background()); got != "ready" || err != nil || builds.Load() != 2 {
		t.Errorf("Get at the retry delay: %q, %v after %d builds; want ready, nil, 2 builds", got, err, builds.Load())
	}
	clk.Advance(time.Hour)
	v.Get(context.Background())
	if n := builds.Load(); n != 2 {
		t.Errorf("a success was built again: %d builds", n)
	}
}

func TestCallerGivingUpDoesNotStopTheBuild(t *testing.T) {
	release := make(chan struct{})
	var built atomic.Bool
	v := &Value[int]{Build: func(ctx context.Context) (int, error) {
		<-release
		built.Store(true)
		return 7, ctx.Err()
	}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a canceled ctx: err %v, want context.Canceled", err)
	}
	close(release)
	if got, err := v.Get(context.Background()); got != 7 || err != nil {
		t.Errorf("next Get = %v, %v; want the build the first caller left, 7, nil", got, err)
	}
}

func TestTimeoutBoundsABuild(t *testing.T) {
	v := &Value[int]{Timeout: 10 * time.Millisecond, Build: func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}}
	if _, err := v.Get(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get of a build that outlives Timeout: err %v, want DeadlineExceeded", err)
	}
	if _, ok := v.Peek(); ok {
		t.Errorf("Peek after a failed build reports a value")
	}
}
