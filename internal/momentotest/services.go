package momentotest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Momento's documented limits.
const (
	// maxValidFor is the longest lifetime Momento grants a disposable token.
	maxValidFor = time.Hour
	// maxPermissions is how many permission statements a token may hold.
	maxPermissions = 20
	// maxItemSize is the largest item (key and value) a cache holds.
	maxItemSize = 5 << 20
	// maxTTL is the longest an item may live.
	maxTTL = 24 * time.Hour
	// maxTopicValue is the largest value a topic carries.
	maxTopicValue = 4 << 10
)

// dataCallerLocked admits a data-plane call on name (an item key or a topic)
// in cache: the caller must be authenticated, hold a grant of kind with one
// of roles, and the cache must exist, checked in that order. what names the
// action in the refusal. s.mu must be held.
func (s *Server) dataCallerLocked(ctx context.Context, kind, what, cache, name string, roles ...string) (caller, error) {
	c, err := s.authenticateLocked(ctx)
	if err != nil {
		return caller{}, err
	}
	if !c.allowed(kind, cache, name, roles...) {
		return caller{}, status.Errorf(codes.PermissionDenied, "momentotest: token may not %s %q in cache %q", what, name, cache)
	}
	if err := s.requireCacheLocked(cache); err != nil {
		return caller{}, err
	}
	return c, nil
}

// checkTTL refuses a TTL outside Momento's bounds.
func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return status.Error(codes.InvalidArgument, "momentotest: ttl_milliseconds must be positive")
	}
	if ttl > maxTTL {
		return status.Errorf(codes.InvalidArgument, "momentotest: ttl %v exceeds the maximum of %v", ttl, maxTTL)
	}
	return nil
}

// limitExceeded answers ResourceExhausted with the "err" trailer Momento uses
// to say which limit, which the SDKs read.
func limitExceeded(ctx context.Context, cause, format string, args ...any) error {
	grpc.SetTrailer(ctx, metadata.Pairs("err", cause)) //nolint:errcheck // only fails outside a call
	return status.Errorf(codes.ResourceExhausted, format, args...)
}

// register adds the modelled services to s.srv.
func (s *Server) register() {
	s.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "cache_client.Scs",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unaryMethod("cache_client.Scs", "Get", messageType("cache_client._GetRequest"), s.get),
			unaryMethod("cache_client.Scs", "Set", messageType("cache_client._SetRequest"), s.set),
			unaryMethod("cache_client.Scs", "Delete", messageType("cache_client._DeleteRequest"), s.delete),
			unaryMethod("cache_client.Scs", "Increment", messageType("cache_client._IncrementRequest"), s.increment),
		},
	}, s)
	s.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "token.Token",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unaryMethod("token.Token", "GenerateDisposableToken", messageType("token._GenerateDisposableTokenRequest"), s.mint),
		},
	}, s)
	s.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "cache_client.pubsub.Pubsub",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unaryMethod("cache_client.pubsub.Pubsub", "Publish", messageType("cache_client.pubsub._PublishRequest"), s.publish),
		},
		Streams: []grpc.StreamDesc{{
			StreamName:    "Subscribe",
			Handler:       s.subscribe,
			ServerStreams: true,
		}},
	}, s)
}

// cacheHeader returns the cache a call names in its "cache" header, or "".
func cacheHeader(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("cache"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// beginData begins a data call of method m (see begin) and returns the
// cache it names.
func (s *Server) beginData(ctx context.Context, m Method) (string, error) {
	if err := s.begin(ctx, m); err != nil {
		return "", err
	}
	return cacheName(ctx)
}

// cacheName returns the cache a data call names in its "cache" header.
func cacheName(ctx context.Context) (string, error) {
	if name := cacheHeader(ctx); name != "" {
		return name, nil
	}
	return "", status.Error(codes.InvalidArgument, "momentotest: request has no cache header")
}

func (s *Server) get(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	cache, err := s.beginData(ctx, MethodGet)
	if err != nil {
		return nil, err
	}
	key := string(getBytes(req, "cache_key"))

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.dataCallerLocked(ctx, "cache", "read", cache, key, "CacheReadWrite", "CacheReadOnly"); err != nil {
		return nil, err
	}
	resp := newMessage("cache_client._GetResponse")
	if it, ok := s.itemLocked(cache, key); ok {
		set(resp, "result", protoreflect.ValueOfEnum(enumNumber(resp, "result", "Hit")))
		set(resp, "cache_body", protoreflect.ValueOfBytes(it.Value))
	} else {
		set(resp, "result", protoreflect.ValueOfEnum(enumNumber(resp, "result", "Miss")))
	}
	return resp.Interface(), nil
}

func (s *Server) set(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	cache, err := s.beginData(ctx, MethodSet)
	if err != nil {
		return nil, err
	}
	key := string(getBytes(req, "cache_key"))
	value := getBytes(req, "cache_body")
	ttl := time.Duration(getUint(req, "ttl_milliseconds")) * time.Millisecond
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	if n := len(key) + len(value); n > maxItemSize {
		return nil, limitExceeded(ctx, "item_size_limit_exceeded", "momentotest: item size %d exceeds the limit of %d bytes", n, maxItemSize)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.dataCallerLocked(ctx, "cache", "write", cache, key, "CacheReadWrite", "CacheWriteOnly"); err != nil {
		return nil, err
	}
	s.setItemLocked(cache, key, value, ttl)
	resp := newMessage("cache_client._SetResponse")
	set(resp, "result", protoreflect.ValueOfEnum(enumNumber(resp, "result", "Ok")))
	return resp.Interface(), nil
}

func (s *Server) delete(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	cache, err := s.beginData(ctx, MethodDelete)
	if err != nil {
		return nil, err
	}
	key := string(getBytes(req, "cache_key"))

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.dataCallerLocked(ctx, "cache", "delete", cache, key, "CacheReadWrite", "CacheWriteOnly"); err != nil {
		return nil, err
	}
	delete(s.items, itemKey{cache, key})
	return newMessage("cache_client._DeleteResponse").Interface(), nil
}

// increment adds to an item holding a base-10 integer, or creates it holding
// the amount. The item's TTL becomes the request's on every call: the request
// always carries one and has no way to say "keep the existing TTL" (the SDK's
// CollectionTtl.RefreshTtl never reaches the wire).
func (s *Server) increment(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	cache, err := s.beginData(ctx, MethodIncrement)
	if err != nil {
		return nil, err
	}
	key := string(getBytes(req, "cache_key"))
	amount := req.Get(field(req, "amount")).Int()
	ttl := time.Duration(getUint(req, "ttl_milliseconds")) * time.Millisecond
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.dataCallerLocked(ctx, "cache", "increment", cache, key, "CacheReadWrite", "CacheWriteOnly"); err != nil {
		return nil, err
	}
	value := amount
	if it, ok := s.itemLocked(cache, key); ok {
		old, err := strconv.ParseInt(string(it.Value), 10, 64)
		if err != nil {
			return nil, status.Error(codes.FailedPrecondition, "momentotest: failed to parse value into long")
		}
		value = old + amount
		if (amount > 0 && value < old) || (amount < 0 && value > old) {
			return nil, status.Error(codes.FailedPrecondition, "momentotest: increment would overflow a signed 64-bit integer")
		}
	}
	s.setItemLocked(cache, key, []byte(strconv.FormatInt(value, 10)), ttl)
	resp := newMessage("cache_client._IncrementResponse")
	set(resp, "value", protoreflect.ValueOfInt64(value))
	return resp.Interface(), nil
}

func (s *Server) mint(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	if err := s.begin(ctx, MethodMint); err != nil {
		return nil, err
	}
	var validFor time.Duration
	if exp := getMessage(req, "expires"); exp != nil {
		validFor = time.Duration(getUint(exp, "valid_for_seconds")) * time.Second
	}
	if validFor <= 0 || validFor > maxValidFor {
		return nil, status.Errorf(codes.InvalidArgument, "momentotest: a disposable token must expire within %v, not %v", maxValidFor, validFor)
	}
	superUser, grants, err := parsePermissions(getMessage(req, "permissions"))
	if err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.mintCallerLocked(ctx, getString(req, "auth_token"))
	if err != nil {
		return nil, err
	}

	m := Mint{
		ID:         len(s.mints) + 1,
		Caller:     c.keyID,
		SuperUser:  superUser,
		Grants:     grants,
		ValidFor:   validFor,
		ValidUntil: time.Unix(s.nowLocked().Add(validFor).Unix(), 0),
		TokenID:    getString(req, "token_id"),
	}
	secret := mintedSecret(m)
	m.Token = v1Token(secret, s.endpoint)
	s.minted[secret] = len(s.mints)
	s.mints = append(s.mints, m)

	resp := newMessage("token._GenerateDisposableTokenResponse")
	set(resp, "api_key", protoreflect.ValueOfString(secret))
	set(resp, "endpoint", protoreflect.ValueOfString(s.endpoint))
	set(resp, "valid_until", protoreflect.ValueOfUint64(uint64(m.ValidUntil.Unix())))
	return resp.Interface(), nil
}

// mintCallerLocked authenticates a mint as Momento does: by the authorization
// header (the Go SDK) or, without one, by the auth_token in the request body
// (the Node SDK); when both are present they must agree. Only account keys
// may mint. s.mu must be held.
func (s *Server) mintCallerLocked(ctx context.Context, authToken string) (caller, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) == 0 || v[0] == "" {
		if authToken == "" {
			return caller{}, status.Error(codes.Unauthenticated, "momentotest: missing authorization")
		}
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", authToken))
		authToken = ""
	}
	c, err := s.authenticateLocked(ctx)
	if err != nil {
		return caller{}, err
	}
	if c.mint != nil {
		return caller{}, status.Error(codes.PermissionDenied, "momentotest: a disposable token may not mint tokens")
	}
	if authToken != "" {
		if _, ok := s.keys[authToken]; !ok {
			return caller{}, status.Error(codes.Unauthenticated, "momentotest: auth_token does not match an account key")
		}
	}
	return c, nil
}

// mintedSecret returns the api_key of a minted token: an unsigned JWT whose
// claims spell out its scope, made unique by a random signature.
func mintedSecret(m Mint) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	claims, _ := json.Marshal(struct {
		Issuer string  `json:"iss"`
		ID     int     `json:"jti"`
		Expiry int64   `json:"exp"`
		Scope  []Grant `json:"scope"`
		Super  bool    `json:"super_user,omitempty"`
		// TokenID is what Momento stamps as publisher_id on the token's
		// messages; shown here so the demo page can say it.
		TokenID string `json:"token_id,omitempty"`
	}{"momentotest", m.ID, m.ValidUntil.Unix(), m.Grants, m.SuperUser, m.TokenID})
	return enc.EncodeToString(header) + "." + enc.EncodeToString(claims) + "." + randomHex(16)
}

// parsePermissions reads a permission_messages.Permissions.
func parsePermissions(p protoreflect.Message) (superUser bool, grants []Grant, err error) {
	if p == nil {
		return false, nil, status.Error(codes.InvalidArgument, "momentotest: permissions are required")
	}
	switch whichOneof(p, "kind") {
	case "super_user":
		return true, nil, nil
	case "explicit":
	default:
		return false, nil, status.Error(codes.InvalidArgument, "momentotest: permissions have no kind")
	}
	list := getMessage(p, "explicit").Get(field(getMessage(p, "explicit"), "permissions")).List()
	if list.Len() == 0 {
		return false, nil, status.Error(codes.InvalidArgument, "momentotest: explicit permissions are empty")
	}
	if list.Len() > maxPermissions {
		return false, nil, status.Errorf(codes.InvalidArgument, "momentotest: %d permissions, more than the limit of %d", list.Len(), maxPermissions)
	}
	for i := 0; i < list.Len(); i++ {
		pt := list.Get(i).Message()
		var g Grant
		switch whichOneof(pt, "kind") {
		case "cache_permissions":
			cp := getMessage(pt, "cache_permissions")
			g = Grant{Kind: "cache", Role: enumName(cp, "role", getEnum(cp, "role"))}
			g.Cache, err = cacheSelector(cp)
			if err != nil {
				return false, nil, err
			}
			switch whichOneof(cp, "cache_item") {
			case "", "all_items":
				g.Item = "*"
			case "item_selector":
				sel := getMessage(cp, "item_selector")
				switch whichOneof(sel, "kind") {
				case "key":
					g.Item = string(getBytes(sel, "key"))
				case "key_prefix":
					g.Item = string(getBytes(sel, "key_prefix")) + "*"
				default:
					return false, nil, status.Error(codes.InvalidArgument, "momentotest: empty item selector")
				}
			}
		case "topic_permissions":
			tp := getMessage(pt, "topic_permissions")
			g = Grant{Kind: "topic", Role: enumName(tp, "role", getEnum(tp, "role"))}
			g.Cache, err = cacheSelector(tp)
			if err != nil {
				return false, nil, err
			}
			switch whichOneof(tp, "topic") {
			case "all_topics":
				g.Topic = "*"
			case "topic_selector":
				sel := getMessage(tp, "topic_selector")
				switch whichOneof(sel, "kind") {
				case "topic_name":
					g.Topic = getString(sel, "topic_name")
				case "topic_name_prefix":
					g.Topic = getString(sel, "topic_name_prefix") + "*"
				default:
					return false, nil, status.Error(codes.InvalidArgument, "momentotest: empty topic selector")
				}
			default:
				return false, nil, status.Error(codes.InvalidArgument, "momentotest: topic permission selects no topic")
			}
		default:
			return false, nil, status.Error(codes.InvalidArgument, "momentotest: permission has no kind")
		}
		grants = append(grants, g)
	}
	return false, grants, nil
}

// cacheSelector reads the "cache" oneof of a cache or topic permission.
func cacheSelector(perm protoreflect.Message) (string, error) {
	switch whichOneof(perm, "cache") {
	case "all_caches":
		return "*", nil
	case "cache_selector":
		if name := getString(getMessage(perm, "cache_selector"), "cache_name"); name != "" {
			return name, nil
		}
	}
	return "", status.Error(codes.InvalidArgument, fmt.Sprintf("momentotest: %s selects no cache", perm.Descriptor().Name()))
}
