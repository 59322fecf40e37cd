// Package secret reads the Momento API key (and other secrets, such as the
// ticket keys, with [Client.Read]) from Google Cloud Secret Manager.
//
// A [Client] reads one secret version with [Client.MomentoKey], verifies its
// CRC32C checksum and returns the key in it. The payload is the bare key, or
// JSON: {"momento": "<key>"}, or {"api_key": "<key>", "endpoint": "<cell>"}
// for a key and its endpoint together; see [ParsePayload].
//
// The payload is the account's API key, so no error from this package ever
// contains payload bytes or the key.
//
// Errors from the service keep their gRPC status: status.Code(err) (from
// google.golang.org/grpc/status) returns the service's code, for example
// codes.NotFound, codes.PermissionDenied or codes.Unavailable, and
// codes.DeadlineExceeded or codes.Canceled when ctx ends first. Payload
// problems are reported with [ErrChecksum] and [ErrPayload], tested with
// errors.Is.
//
// MomentoKey makes exactly one AccessSecretVersion call: the client library's
// default retries are turned off, so an outage is reported at once, with its
// status, and retrying is left to the caller.
package secret

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"example.com/tokenvendingmachine/internal/momentokey"
	"example.com/tokenvendingmachine/internal/secret/secretname"
)

var (
	// ErrChecksum means the payload did not match the CRC32C checksum the
	// service sent with it: it was corrupted on the way.
	ErrChecksum = errors.New("secret payload failed CRC32C verification")

	// ErrPayload means the payload holds no usable key: it is empty, is JSON
	// without a non-empty "momento" or "api_key" string or with an
	// endpoint that is not one, or is a bare value with whitespace inside
	// it.
	ErrPayload = errors.New("secret payload holds no Momento API key")
)

// Client reads secrets from Secret Manager. Its methods are safe for
// concurrent use.
type Client struct {
	sm *secretmanager.Client

	closeOnce sync.Once
	closeErr  error
}

// NewClient builds a Secret Manager client. With emulatorHost ("host:port")
// non-empty it talks plaintext gRPC to that host without authentication,
// following Google's *_EMULATOR_HOST convention; otherwise it reaches the
// real service with Application Default Credentials. opts are applied last,
// so they override both.
func NewClient(ctx context.Context, emulatorHost string, opts ...option.ClientOption) (*Client, error) {
	var all []option.ClientOption
	if emulatorHost != "" {
		all = append(all,
			option.WithEndpoint(emulatorHost),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		)
	}
	all = append(all, opts...)
	sm, err := secretmanager.NewClient(ctx, all...)
	if err != nil {
		return nil, fmt.Errorf("new secret manager client: %w", err)
	}
	return &Client{sm: sm}, nil
}

// Close closes the client's connections. It is safe to call more than once;
// every call returns the result of the first.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.sm.Close() })
	return c.closeErr
}

// noRetry replaces the client library's default retry policy for
// AccessSecretVersion, which retries Unavailable and ResourceExhausted with
// fully jittered backoff (pauses of up to 2 s, doubling to at most 60 s)
// until ctx ends, or for 60 s if ctx has no deadline. In an outage that
// holds the caller for its whole deadline, and a backoff cut short by ctx
// returns a bare context.DeadlineExceeded in place of the service's
// Unavailable. MomentoKey makes one attempt; its caller decides whether and
// when to try again.
var noRetry = gax.WithRetry(nil)

// MomentoKey returns the Momento API key (and endpoint, if any) stored in
// the secret version name,
// "projects/P/secrets/S/versions/V"; "projects/P/secrets/S" means
// ".../versions/latest". It makes a single AccessSecretVersion call, with no
// retries. It verifies the payload's CRC32C when the service sends one
// (failing with ErrChecksum) and parses the payload with ParsePayload.
//
// An error from the service wraps its gRPC status, so status.Code(err)
// returns its code; a bare context error is converted to the matching
// DeadlineExceeded or Canceled status.
func (c *Client) MomentoKey(ctx context.Context, name string) (Key, error) {
	data, got, err := c.read(ctx, name)
	if err != nil {
		return Key{}, err
	}
	key, err := ParsePayload(data)
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", got, err)
	}
	return key, nil
}

// Read returns the payload of the secret version name, as MomentoKey reads
// it but without parsing it: one call, CRC32C checked. The payload is a
// secret: never log it.
func (c *Client) Read(ctx context.Context, name string) ([]byte, error) {
	data, _, err := c.read(ctx, name)
	return data, err
}

// read returns the payload of the secret version name and the version's
// full name.
func (c *Client) read(ctx context.Context, name string) ([]byte, string, error) {
	if err := secretname.Validate(name); err != nil {
		return nil, "", err
	}
	if strings.Count(name, "/") == 3 {
		name += "/versions/latest"
	}
	resp, err := c.sm.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name}, noRetry)
	if err != nil {
		if _, ok := status.FromError(err); !ok && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
			err = status.FromContextError(err).Err()
		}
		return nil, "", fmt.Errorf("access secret version: %w", err)
	}
	got := resp.GetName()
	if got == "" {
		got = name
	}
	p := resp.GetPayload()
	if p != nil && p.DataCrc32C != nil && int64(crc32.Checksum(p.Data, castagnoli)) != *p.DataCrc32C {
		return nil, "", fmt.Errorf("%s: %w", got, ErrChecksum)
	}
	return p.GetData(), got, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Key is what a secret holds for Momento: the API key and, if the secret
// names one, the endpoint to use it with.
type Key struct {
	// APIKey is the Momento API key. Never log it.
	APIKey string
	// Endpoint is the endpoint stored with the key, normalized by
	// momentokey.NormalizeEndpoint; "" if the secret names none.
	Endpoint string
}

// ParsePayload returns the Momento API key in a secret payload: the bare key,
// or a JSON object holding it in "momento" or "api_key" (one of the two),
// with an optional "endpoint": {"api_key": "<v2 key>", "endpoint":
// "cell-us-east-1-1.prod.a.momentohq.com"} keeps a v2 key and its endpoint
// in one secret, so that they rotate together. Other members are ignored.
// A payload that starts like other JSON, with '[' or '"', is rejected.
// Surrounding whitespace and a leading UTF-8 byte order mark are trimmed from
// the payload and from the key, since `echo key | gcloud secrets create`
// stores a trailing newline. The key must be non-empty and hold no
// whitespace or control characters, and the endpoint must be one that
// momentokey.NormalizeEndpoint accepts; otherwise the error wraps
// ErrPayload. Errors never quote the payload.
func ParsePayload(b []byte) (Key, error) {
	b = bytes.TrimSpace(bytes.TrimPrefix(b, []byte("\ufeff")))
	if len(b) == 0 {
		return Key{}, fmt.Errorf("%w: payload is empty", ErrPayload)
	}
	var k Key
	switch b[0] {
	case '[', '"':
		// No key starts with these; a quoted or listed key is a mistake.
		return Key{}, fmt.Errorf("%w: payload is JSON but not an object", ErrPayload)
	case '{':
		var err error
		if k, err = parseJSON(b); err != nil {
			return Key{}, err
		}
	default:
		k.APIKey = string(b)
	}
	if !utf8.ValidString(k.APIKey) {
		return Key{}, fmt.Errorf("%w: key is not valid UTF-8", ErrPayload)
	}
	if strings.ContainsFunc(k.APIKey, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return Key{}, fmt.Errorf("%w: key contains whitespace or control characters", ErrPayload)
	}
	return k, nil
}

// parseJSON reads a payload that is a JSON object. It decodes into raw
// members rather than a struct: encoding/json matches struct fields
// case-insensitively, and its errors can quote the input, so they are never
// returned.
func parseJSON(b []byte) (Key, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return Key{}, fmt.Errorf("%w: payload starts with '{' but is not a JSON object", ErrPayload)
	}
	name := "momento"
	raw, ok := doc[name]
	if alt, has := doc["api_key"]; has {
		if ok {
			return Key{}, fmt.Errorf("%w: JSON has both \"momento\" and \"api_key\"; keep one", ErrPayload)
		}
		name, raw, ok = "api_key", alt, true
	}
	if !ok {
		return Key{}, fmt.Errorf("%w: JSON has no \"momento\" or \"api_key\" member", ErrPayload)
	}
	var k Key
	if err := json.Unmarshal(raw, &k.APIKey); err != nil {
		return Key{}, fmt.Errorf("%w: JSON %q is not a string", ErrPayload, name)
	}
	if k.APIKey = strings.TrimSpace(k.APIKey); k.APIKey == "" {
		return Key{}, fmt.Errorf("%w: JSON %q is empty", ErrPayload, name)
	}
	if raw, ok := doc["endpoint"]; ok {
		var ep string
		if err := json.Unmarshal(raw, &ep); err != nil {
			return Key{}, fmt.Errorf("%w: JSON \"endpoint\" is not a string", ErrPayload)
		}
		var err error
		if k.Endpoint, err = momentokey.NormalizeEndpoint(ep); err != nil {
			// The endpoint is no secret, but it sits beside one: say
			// what is wrong without quoting it.
			return Key{}, fmt.Errorf("%w: JSON \"endpoint\" is not a Momento endpoint such as cell-us-east-1-1.prod.a.momentohq.com", ErrPayload)
		}
	}
	return k, nil
}
