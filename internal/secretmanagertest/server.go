// Package secretmanagertest is a fake Google Cloud Secret Manager for tests
// and local development: a real gRPC server on a loopback port that the real
// cloud.google.com/go/secretmanager client talks to.
//
// Start one with [NewServer] (or [NewServerT] in a test), seed it with
// [Server.AddVersion], and point a client at it with [Server.ClientOptions]:
//
//	srv := secretmanagertest.NewServerT(t)
//	srv.AddVersion("projects/p/secrets/momento", []byte("key"))
//	client, err := secretmanager.NewClient(ctx, srv.ClientOptions()...)
//
// Faults are injected with [Server.SetFault] and cleared with
// [Server.ClearFaults]; calls are inspected with [Server.Count] and
// [Server.Accesses]. The verbs are momentotest's.
//
// Only AccessSecretVersion is implemented; every other RPC answers
// Unimplemented. Where it serves, the fake answers like the real service
// (the same name rules, "latest" alias, status codes and CRC32C checksums),
// except that:
//
//   - There is no authentication or IAM: anyone may read any secret.
//     PermissionDenied is only ever returned by [Server.SetFault].
//   - Secrets need not be created before versions are added, and every
//     version is ENABLED; there is no disabling or destroying, hence no
//     FailedPrecondition.
//   - The only version alias is "latest". Any other version ID that is not a
//     positive number is reported NotFound (the real service would look it
//     up as a user-defined alias).
//   - The project segment is an opaque string: a project ID and its project
//     number name different projects, and the response echoes the project
//     as asked, where the real service answers with the project number.
//   - Regional names (projects/*/locations/*/...) are InvalidArgument.
//   - There are no quotas, payload size limits or replication.
package secretmanagertest

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Tester is the part of *testing.T (or *testing.B, *testing.F) that
// NewServerT uses, so that this package need not import testing.
type Tester interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Options configures a Server. The zero value is ready to use.
type Options struct {
	// Addr is the TCP address to listen on. Empty means "127.0.0.1:0",
	// a free loopback port.
	Addr string
}

// Server is a fake Secret Manager. Its methods are safe for concurrent use.
type Server struct {
	lis net.Listener
	srv *grpc.Server

	serveDone chan struct{} // closed when srv.Serve returns
	serveErr  error         // what srv.Serve returned; read after serveDone

	closeOnce sync.Once
	closeErr  error

	// mu guards the fields below it: the seeded secrets, the faults and the
	// record of calls.
	mu       sync.Mutex
	secrets  map[string][]version // by secret name "projects/P/secrets/S"; version N at index N-1
	fault    Fault                // the injected fault; the zero Fault is none
	accesses []string             // the names AccessSecretVersion was asked for, in order
}

// version is one stored secret version.
type version struct {
	data   []byte
	crc32c *int64 // what the response reports; nil sends none
}

// NewServer starts a fake Secret Manager listening on opts.Addr.
// Stop it with Close.
func NewServer(opts Options) (*Server, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("secretmanagertest: listen: %w", err)
	}
	s := &Server{
		lis:       lis,
		srv:       grpc.NewServer(),
		serveDone: make(chan struct{}),
		secrets:   make(map[string][]version),
	}
	secretmanagerpb.RegisterSecretManagerServiceServer(s.srv, &service{s: s})
	go func() {
		defer close(s.serveDone)
		s.serveErr = s.srv.Serve(lis)
	}()
	return s, nil
}

// NewServerT starts a fake Secret Manager on a free loopback port, failing t
// if it cannot, and stops it when the test ends.
func NewServerT(t Tester) *Server {
	t.Helper()
	s, err := NewServer(Options{})
	if err != nil {
		t.Fatalf("secretmanagertest.NewServer: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Addr returns the host:port the server listens on.
func (s *Server) Addr() string {
	return s.lis.Addr().String()
}

// Close stops the server, ending any call in progress. It is safe to call
// more than once and from several goroutines; every call returns the result
// of the first.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.srv.Stop()
		<-s.serveDone
		if s.serveErr != nil && !errors.Is(s.serveErr, grpc.ErrServerStopped) {
			s.closeErr = s.serveErr
		}
	})
	return s.closeErr
}

// ClientOptions returns the options that point a real Secret Manager client
// at the server: its address, no authentication and plaintext gRPC.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Addr()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

var (
	// secretRE matches a secret name; the secret ID rule is the real one.
	secretRE = regexp.MustCompile(`^projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}$`)
	// versionRE matches a global secret version name, capturing the secret
	// name and the version ID.
	versionRE = regexp.MustCompile(`^(projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255})/versions/([^/]+)$`)
)

// AddVersion adds a version holding payload to secret, which must be named
// "projects/P/secrets/S", creating the secret if need be. It returns the new
// version's name, "projects/P/secrets/S/versions/N", where N counts from 1
// per secret. The newest version is the one "latest" resolves to.
// AddVersion panics if secret is not a valid secret name.
func (s *Server) AddVersion(secret string, payload []byte) string {
	sum := int64(crc32.Checksum(payload, castagnoli))
	return s.AddVersionWithChecksum(secret, payload, &sum)
}

// AddVersionWithChecksum is like AddVersion but stores crc32c as the
// version's checksum instead of the payload's true CRC32C, so that clients'
// checksum verification can be tested. A nil crc32c makes responses carry no
// checksum, as for versions created before the service kept them.
func (s *Server) AddVersionWithChecksum(secret string, payload []byte, crc32c *int64) string {
	if !secretRE.MatchString(secret) {
		panic(fmt.Sprintf("secretmanagertest: AddVersion: %q is not projects/P/secrets/S", secret))
	}
	v := version{data: slices.Clone(payload)}
	if crc32c != nil {
		c := *crc32c
		v.crc32c = &c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[secret] = append(s.secrets[secret], v)
	return fmt.Sprintf("%s/versions/%d", secret, len(s.secrets[secret]))
}

// Fault is an injected misbehaviour of AccessSecretVersion, the one RPC
// the fake serves. It has momentotest.Fault's fields and meaning.
type Fault struct {
	// Code is the status the call fails with; codes.OK means it answers
	// normally (after Latency).
	Code codes.Code
	// Message is the status message; "" means one naming the code and the
	// secret asked for.
	Message string
	// Latency is how long the call waits before answering. The wait ends
	// early, with DeadlineExceeded or Canceled, if the caller's context
	// ends first.
	Latency time.Duration
	// Times is how many calls the fault applies to; 0 means every call
	// until ClearFaults.
	Times int
}

// SetFault makes later AccessSecretVersion calls misbehave as f says,
// replacing any earlier fault. Faulty calls are still counted.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// ClearFaults removes the injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = Fault{}
}

// Count returns how many AccessSecretVersion calls the server has
// received, failed ones included.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.accesses)
}

// Accesses returns the names AccessSecretVersion calls asked for, in the
// order they arrived, failed ones included.
func (s *Server) Accesses() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accesses)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// service is the gRPC face of a Server. It is separate from Server so that
// the unimplemented RPCs do not become methods of Server.
type service struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	s *Server
}

// AccessSecretVersion implements the RPC of that name.
func (svc *service) AccessSecretVersion(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	s := svc.s
	name := req.GetName()

	s.mu.Lock()
	s.accesses = append(s.accesses, name)
	f := s.fault
	if s.fault.Times > 0 {
		if s.fault.Times--; s.fault.Times == 0 {
			s.fault = Fault{}
		}
	}
	s.mu.Unlock()

	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-t.C:
		}
	}
	if f.Code != codes.OK {
		if f.Message != "" {
			return nil, status.Error(f.Code, f.Message)
		}
		return nil, status.Errorf(f.Code, "secretmanagertest: injected %v for %s", f.Code, name)
	}

	m := versionRE.FindStringSubmatch(name)
	if m == nil {
		return nil, status.Errorf(codes.InvalidArgument,
			"invalid name %q: want projects/*/secrets/*/versions/*", name)
	}
	secret, id := m[1], m[2]

	s.mu.Lock()
	defer s.mu.Unlock()
	versions := s.secrets[secret]
	if len(versions) == 0 {
		return nil, status.Errorf(codes.NotFound, "Secret [%s] not found or has no versions.", secret)
	}
	n := len(versions)
	if id != "latest" {
		var err error
		n, err = strconv.Atoi(id)
		if err != nil || n < 1 || n > len(versions) || strconv.Itoa(n) != id {
			return nil, status.Errorf(codes.NotFound, "Secret Version [%s] not found.", name)
		}
	}
	v := versions[n-1]
	payload := &secretmanagerpb.SecretPayload{Data: slices.Clone(v.data)}
	if v.crc32c != nil {
		c := *v.crc32c
		payload.DataCrc32C = &c
	}
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    fmt.Sprintf("%s/versions/%d", secret, n),
		Payload: payload,
	}, nil
}
