package momentotest

import (
	"context"
	"sort"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// CreateCache creates a cache, as the control plane's CreateCache does. It
// fails with status AlreadyExists if the cache exists, and InvalidArgument if
// name is empty.
func (s *Server) CreateCache(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createCacheLocked(name)
}

func (s *Server) createCacheLocked(name string) error {
	if name == "" {
		return status.Error(codes.InvalidArgument, "momentotest: cache name is empty")
	}
	if _, ok := s.caches[name]; ok {
		return status.Errorf(codes.AlreadyExists, "momentotest: cache %q already exists", name)
	}
	s.caches[name] = struct{}{}
	return nil
}

// DeleteCache deletes a cache with its items, as the control plane's
// DeleteCache does; subscriptions to its topics end with NotFound. It fails
// with status NotFound if the cache does not exist.
func (s *Server) DeleteCache(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteCacheLocked(name)
}

func (s *Server) deleteCacheLocked(name string) error {
	if _, ok := s.caches[name]; !ok {
		return status.Errorf(codes.NotFound, "momentotest: cache %q not found", name)
	}
	delete(s.caches, name)
	for k := range s.items {
		if k.cache == name {
			delete(s.items, k)
		}
	}
	for k, t := range s.topics {
		if k.cache == name {
			close(t.gone)
			delete(s.topics, k)
		}
	}
	return nil
}

// Caches returns the names of the caches that exist, sorted.
func (s *Server) Caches() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.caches))
	for name := range s.caches {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// requireCacheLocked answers NotFound, as Momento does, unless cache exists.
// s.mu must be held.
func (s *Server) requireCacheLocked(cache string) error {
	if _, ok := s.caches[cache]; !ok {
		return status.Errorf(codes.NotFound, "momentotest: cache %q not found", cache)
	}
	return nil
}

// registerControl adds the control plane's cache RPCs to s.srv.
func (s *Server) registerControl() {
	const svc = "control_client.ScsControl"
	s.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: svc,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unaryMethod(svc, "CreateCache", messageType("control_client._CreateCacheRequest"), s.createCacheRPC),
			unaryMethod(svc, "DeleteCache", messageType("control_client._DeleteCacheRequest"), s.deleteCacheRPC),
			unaryMethod(svc, "ListCaches", messageType("control_client._ListCachesRequest"), s.listCachesRPC),
		},
	}, s)
}

// controlCallerLocked authenticates a control-plane call: only account keys
// may make one (Momento's tokens are for the data plane). s.mu must be held.
func (s *Server) controlCallerLocked(ctx context.Context) error {
	c, err := s.authenticateLocked(ctx)
	if err != nil {
		return err
	}
	if c.mint != nil {
		return status.Error(codes.PermissionDenied, "momentotest: a disposable token may not call the control plane")
	}
	return nil
}

func (s *Server) createCacheRPC(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	if err := s.begin(ctx, MethodCreateCache); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.controlCallerLocked(ctx); err != nil {
		return nil, err
	}
	if err := s.createCacheLocked(getString(req, "cache_name")); err != nil {
		return nil, err
	}
	return newMessage("control_client._CreateCacheResponse").Interface(), nil
}

func (s *Server) deleteCacheRPC(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	if err := s.begin(ctx, MethodDeleteCache); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.controlCallerLocked(ctx); err != nil {
		return nil, err
	}
	if err := s.deleteCacheLocked(getString(req, "cache_name")); err != nil {
		return nil, err
	}
	return newMessage("control_client._DeleteCacheResponse").Interface(), nil
}

// listCachesRPC lists every cache in one page.
func (s *Server) listCachesRPC(ctx context.Context, _ protoreflect.Message) (proto.Message, error) {
	if err := s.begin(ctx, MethodListCaches); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if err := s.controlCallerLocked(ctx); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Unlock()
	resp := newMessage("control_client._ListCachesResponse")
	list := resp.Mutable(field(resp, "cache")).List()
	for _, name := range s.Caches() {
		c := list.NewElement().Message()
		set(c, "cache_name", protoreflect.ValueOfString(name))
		list.Append(protoreflect.ValueOfMessage(c))
	}
	return resp.Interface(), nil
}
