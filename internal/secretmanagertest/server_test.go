package secretmanagertest_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"sync"
	"testing"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/google/go-cmp/cmp"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"example.com/tokenvendingmachine/internal/secretmanagertest"
)

// noRetry turns off the client library's default retries of Unavailable
// and ResourceExhausted, so that each call below is exactly one RPC.
var noRetry = gax.WithRetry(nil)

func newClient(t *testing.T, srv *secretmanagertest.Server) *secretmanager.Client {
	t.Helper()
	c, err := secretmanager.NewClient(context.Background(), srv.ClientOptions()...)
	if err != nil {
		t.Fatalf("secretmanager.NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func access(ctx context.Context, c *secretmanager.Client, name string) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	return c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name}, noRetry)
}

func crc(b []byte) *int64 {
	c := int64(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	return &c
}

func TestAccessSecretVersion(t *testing.T) {
	srv := secretmanagertest.NewServerT(t)
	const secret = "projects/p/secrets/s"
	for i, p := range []string{"one", "two", "three"} {
		got := srv.AddVersion(secret, []byte(p))
		if want := fmt.Sprintf("%s/versions/%d", secret, i+1); got != want {
			t.Fatalf("AddVersion(%q, %q) = %q, want %q", secret, p, got, want)
		}
	}
	bad := int64(42)
	srv.AddVersionWithChecksum("projects/p/secrets/badsum", []byte("x"), &bad)
	srv.AddVersionWithChecksum("projects/p/secrets/nosum", []byte("y"), nil)
	c := newClient(t, srv)

	tests := []struct {
		name string
		req  string
		want *secretmanagerpb.AccessSecretVersionResponse
	}{
		{
			name: "explicit version",
			req:  secret + "/versions/1",
			want: &secretmanagerpb.AccessSecretVersionResponse{
				Name:    secret + "/versions/1",
				Payload: &secretmanagerpb.SecretPayload{Data: []byte("one"), DataCrc32C: crc([]byte("one"))},
			},
		},
		{
			name: "latest resolves to the newest version",
			req:  secret + "/versions/latest",
			want: &secretmanagerpb.AccessSecretVersionResponse{
				Name:    secret + "/versions/3",
				Payload: &secretmanagerpb.SecretPayload{Data: []byte("three"), DataCrc32C: crc([]byte("three"))},
			},
		},
		{
			name: "checksum as seeded",
			req:  "projects/p/secrets/badsum/versions/1",
			want: &secretmanagerpb.AccessSecretVersionResponse{
				Name:    "projects/p/secrets/badsum/versions/1",
				Payload: &secretmanagerpb.SecretPayload{Data: []byte("x"), DataCrc32C: &bad},
			},
		},
		{
			name: "no checksum",
			req:  "projects/p/secrets/nosum/versions/latest",
			want: &secretmanagerpb.AccessSecretVersionResponse{
				Name:    "projects/p/secrets/nosum/versions/1",
				Payload: &secretmanagerpb.SecretPayload{Data: []byte("y")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := access(context.Background(), c, tt.req)
			if err != nil {
				t.Fatalf("AccessSecretVersion(%q): %v", tt.req, err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("AccessSecretVersion(%q) mismatch (-want +got):\n%s", tt.req, diff)
			}
		})
	}
}

func TestAccessSecretVersionErrors(t *testing.T) {
	srv := secretmanagertest.NewServerT(t)
	srv.AddVersion("projects/p/secrets/s", []byte("one"))
	c := newClient(t, srv)

	tests := []struct {
		name string
		req  string
		want codes.Code
	}{
		{"empty", "", codes.InvalidArgument},
		{"project only", "projects/p", codes.InvalidArgument},
		{"secret without version", "projects/p/secrets/s", codes.InvalidArgument},
		{"empty project", "projects//secrets/s/versions/1", codes.InvalidArgument},
		{"empty version", "projects/p/secrets/s/versions/", codes.InvalidArgument},
		{"trailing segment", "projects/p/secrets/s/versions/1/x", codes.InvalidArgument},
		{"bad secret ID", "projects/p/secrets/s.t/versions/1", codes.InvalidArgument},
		{"regional name", "projects/p/locations/l/secrets/s/versions/1", codes.InvalidArgument},
		{"unknown secret", "projects/p/secrets/other/versions/1", codes.NotFound},
		{"unknown secret latest", "projects/p/secrets/other/versions/latest", codes.NotFound},
		{"unknown project", "projects/q/secrets/s/versions/1", codes.NotFound},
		{"version past newest", "projects/p/secrets/s/versions/2", codes.NotFound},
		{"version zero", "projects/p/secrets/s/versions/0", codes.NotFound},
		{"leading zero", "projects/p/secrets/s/versions/01", codes.NotFound},
		{"unknown alias", "projects/p/secrets/s/versions/prod", codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := access(context.Background(), c, tt.req)
			if got := status.Code(err); got != tt.want {
				t.Errorf("AccessSecretVersion(%q) code = %v, want %v (err: %v)", tt.req, got, tt.want, err)
			}
		})
	}
	if got, want := srv.Count(), len(tests); got != want {
		t.Errorf("Count() = %d, want %d", got, want)
	}
}

func TestUnimplemented(t *testing.T) {
	srv := secretmanagertest.NewServerT(t)
	c := newClient(t, srv)
	_, err := c.GetSecret(context.Background(), &secretmanagerpb.GetSecretRequest{Name: "projects/p/secrets/s"})
	if got, want := status.Code(err), codes.Unimplemented; got != want {
		t.Errorf("GetSecret code = %v, want %v", got, want)
	}
}

func TestSetFaultCode(t *testing.T) {
	srv := secretmanagertest.NewServerT(t)
	name := srv.AddVersion("projects/p/secrets/s", []byte("one"))
	c := newClient(t, srv)
	ctx := context.Background()

	for _, code := range []codes.Code{codes.PermissionDenied, codes.Unavailable, codes.NotFound} {
		srv.SetFault(secretmanagertest.Fault{Code: code})
		if _, err := access(ctx, c, name); status.Code(err) != code {
			t.Errorf("after SetFault(Code: %v): AccessSecretVersion(%q) = %v, want code %v", code, name, err, code)
		}
	}
	srv.ClearFaults()
	if _, err := access(ctx, c, name); err != nil {
		t.Errorf("after ClearFaults: AccessSecretVersion(%q) = %v, want success", name, err)
	}

	want := []string{name, name, name, name}
	if diff := cmp.Diff(want, srv.Accesses()); diff != "" {
		t.Errorf("Accesses() mismatch (-want +got):\n%s", diff)
	}
	if got := srv.Count(); got != len(want) {
		t.Errorf("Count() = %d, want %d", got, len(want))
	}
}

func TestSetFaultLatency(t *testing.T) {
	srv := secretmanagertest.NewServerT(t)
	name := srv.AddVersion("projects/p/secrets/s", []byte("one"))
	c := newClient(t, srv)

	srv.SetFault(secretmanagertest.Fault{Latency: 50 * time.Millisecond})
	start := time.Now()
	if _, err := access(context.Background(), c, name); err != nil {
		t.Fatalf("AccessSecretVersion(%q) with latency: %v", name, err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("AccessSecretVersion with 50ms latency took %v", d)
	}

	srv.SetFault(secretmanagertest.Fault{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := access(ctx, c, name); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("AccessSecretVersion(%q) past deadline = %v, want code %v", name, err, codes.DeadlineExceeded)
	}

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := access(ctx, c, name); status.Code(err) != codes.Canceled {
		t.Errorf("AccessSecretVersion(%q) canceled = %v, want code %v", name, err, codes.Canceled)
	}
}

func TestSetFaultTimesAndMessage(t *testing.T) {
	srv := secretmanagertest.NewServerT(t)
	name := srv.AddVersion("projects/p/secrets/s", []byte("one"))
	c := newClient(t, srv)
	ctx := context.Background()

	srv.SetFault(secretmanagertest.Fault{Code: codes.Unavailable, Message: "try later", Times: 2})
	for i := range 2 {
		_, err := access(ctx, c, name)
		if st, _ := status.FromError(err); st.Code() != codes.Unavailable || st.Message() != "try later" {
			t.Errorf("call %d with a fault for 2 calls: %v, want Unavailable: try later", i+1, err)
		}
	}
	if _, err := access(ctx, c, name); err != nil {
		t.Errorf("third call after a fault for 2 calls: %v, want success", err)
	}
}

func TestCloseEndsCallsInProgress(t *testing.T) {
	srv, err := secretmanagertest.NewServer(secretmanagertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	name := srv.AddVersion("projects/p/secrets/s", []byte("one"))
	c := newClient(t, srv)
	srv.SetFault(secretmanagertest.Fault{Latency: time.Hour})

	done := make(chan error, 1)
	go func() {
		_, err := access(context.Background(), c, name)
		done <- err
	}()
	for srv.Count() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("AccessSecretVersion during Close succeeded, want an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AccessSecretVersion still running 5s after Close")
	}
}

func TestCloseTwice(t *testing.T) {
	srv, err := secretmanagertest.NewServer(secretmanagertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := srv.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
		})
	}
	wg.Wait()
	if err := srv.Close(); err != nil {
		t.Errorf("Close() again = %v", err)
	}
}

func TestNewServerBadAddr(t *testing.T) {
	srv, err := secretmanagertest.NewServer(secretmanagertest.Options{Addr: "127.0.0.1:-1"})
	if err == nil {
		srv.Close()
		t.Fatal("NewServer with a bad address succeeded, want an error")
	}
}

// fakeTester records what NewServerT does to its Tester.
type fakeTester struct {
	fatal    bool
	cleanups []func()
}

func (*fakeTester) Helper()                 {}
func (f *fakeTester) Fatalf(string, ...any) { f.fatal = true }
func (f *fakeTester) Cleanup(fn func())     { f.cleanups = append(f.cleanups, fn) }

func TestNewServerTRegistersClose(t *testing.T) {
	ft := &fakeTester{}
	srv := secretmanagertest.NewServerT(ft)
	if ft.fatal || len(ft.cleanups) != 1 {
		t.Fatalf("NewServerT: fatal = %v, %d cleanups; want false, 1", ft.fatal, len(ft.cleanups))
	}
	c := newClient(t, srv)
	ft.cleanups[0]()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := access(ctx, c, "projects/p/secrets/s/versions/1"); status.Code(err) != codes.Unavailable {
		t.Errorf("AccessSecretVersion after cleanup = %v, want code %v", err, codes.Unavailable)
	}
}

func TestAddVersionPanicsOnBadName(t *testing.T) {
	srv := secretmanagertest.NewServerT(t)
	for _, name := range []string{"", "s", "projects/p/secrets/s/versions/1", "projects/p/secrets/"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AddVersion(%q) did not panic", name)
				}
			}()
			srv.AddVersion(name, []byte("x"))
		}()
	}
}

func TestAddVersionCopiesPayload(t *testing.T) {
	srv := secretmanagertest.NewServerT(t)
	p := []byte("one")
	name := srv.AddVersion("projects/p/secrets/s", p)
	p[0] = 'X'
	resp, err := access(context.Background(), newClient(t, srv), name)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.GetPayload().GetData()); got != "one" {
		t.Errorf("payload after caller changed its slice = %q, want %q", got, "one")
	}
}

// TestConcurrent exercises the fake from many goroutines at once; run it
// with -race.
func TestConcurrent(t *testing.T) {
	srv := secretmanagertest.NewServerT(t)
	const secret = "projects/p/secrets/s"
	srv.AddVersion(secret, []byte("v1"))
	c := newClient(t, srv)
	ctx := context.Background()

	const readers, calls = 8, 20
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			for range calls {
				_, err := access(ctx, c, secret+"/versions/latest")
				if code := status.Code(err); code != codes.OK && code != codes.Unavailable {
					t.Errorf("AccessSecretVersion = %v, want success or Unavailable", err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range calls {
			srv.AddVersion(secret, []byte("v"))
			if i%2 == 0 {
				srv.SetFault(secretmanagertest.Fault{Code: codes.Unavailable})
			} else {
				srv.ClearFaults()
			}
			srv.SetFault(secretmanagertest.Fault{Latency: time.Duration(i%3) * time.Millisecond})
			_ = srv.Accesses()
		}
	})
	wg.Wait()
	if got, want := srv.Count(), readers*calls; got != want {
		t.Errorf("Count() = %d, want %d", got, want)
	}
}
