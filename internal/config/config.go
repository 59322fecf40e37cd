// Package config reads the function's configuration from its environment.
//
// Everything is parsed and checked in one place, [FromLookupEnv], from a
// lookupenv function (os.LookupEnv in production), or [FromEnv] from a
// getenv (a map in tests). An invalid value is an error that names its
// variable; all such errors are reported together.
package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"example.com/tokenvendingmachine/internal/momentokey"
	"example.com/tokenvendingmachine/internal/scope"
	"example.com/tokenvendingmachine/internal/secret/secretname"
)

// RefreshMargin is the least lifetime a served token has left. Browsers
// refresh a token before it expires; the margin leaves them time to do so.
const RefreshMargin = 5 * time.Minute

// MaxTokenTTL is the longest lifetime Momento grants a disposable token.
const MaxTokenTTL = time.Hour

// MinTokenTTL is the shortest token lifetime: the refresh margin plus a
// minute of caching.
const MinTokenTTL = RefreshMargin + time.Minute

// MinEmulatorTokenTTL is the shortest token lifetime with
// MOMENTO_EMULATOR_HOST set, so that tests can watch tokens be refreshed
// in seconds. Below MinTokenTTL, the refresh margin and the least CACHE_TTL
// keep an hour's proportions ([ScaledToTokenTTL]): TOKEN_TTL/12 and
// TOKEN_TTL/60.
const MinEmulatorTokenTTL = 6 * time.Second

// ScaledToTokenTTL returns d scaled as a token of lifetime ttl would have it
// if d were meant for a token of an hour: 5m becomes 1s for a 12s token.
// It counts in milliseconds, so that nothing overflows for d and ttl up to
// an hour.
func ScaledToTokenTTL(d, ttl time.Duration) time.Duration {
	return time.Duration(d.Milliseconds()*int64(ttl)/int64(time.Hour)) * time.Millisecond
}

// Config is the function's configuration.
type Config struct {
	// SecretID is the Secret Manager secret version holding the Momento API
	// key: projects/P/secrets/S/versions/V, or projects/P/secrets/S for the
	// latest version. Exactly one of SecretID and APIKey is set.
	SecretID string
	// APIKey is the Momento API key itself. Never log it.
	APIKey string
	// MomentoEndpoint is the Momento endpoint (a cell's host name, such as
	// cell-us-east-1-1.prod.a.momentohq.com) for a key that carries none (a
	// v2 key), or to use instead of a v1 key's own; "" if unset. An
	// endpoint stored with the key in the secret takes precedence.
	MomentoEndpoint string
	// CacheName is the cache tokens may subscribe in, and where they are cached.
	CacheName string
	// TokenTTL is the lifetime of a minted token: [MinTokenTTL, MaxTokenTTL],
	// whole seconds.
	TokenTTL time.Duration
	// CacheTTL is how long a token is cached: at least a minute and at most
	// TokenTTL minus Margin. Unset, it is DefaultCacheTTL, or TokenTTL minus
	// Margin if that is shorter.
	CacheTTL time.Duration
	// Margin is the least lifetime a served token has left: RefreshMargin,
	// or for a TokenTTL under MinTokenTTL (only with MOMENTO_EMULATOR_HOST)
	// RefreshMargin scaled to it, TokenTTL/12.
	Margin time.Duration
	// AllowedOrigins are the origins CORS lets read a token; nil means any ("*").
	AllowedOrigins []string
	// TrustedProxies is how many proxies in front of the function append to
	// X-Forwarded-For.
	TrustedProxies int
	// UpstreamTimeout bounds every call to Momento and Secret Manager.
	UpstreamTimeout time.Duration
	// FleetMintRate and FleetMintBurst are the mint budget of the whole
	// deployment, kept in Momento; every other limit derives from them
	// (see limits.go).
	FleetMintRate  float64
	FleetMintBurst int
	// MintRate and MintBurst are each instance's own mint limit, which
	// stands in for the fleet's while its counter cannot be reached.
	MintRate  float64
	MintBurst int
	// LookupRate is how many Momento lookups (requests not answered from the
	// in-process cache) an instance may make per second, on average, and
	// LookupBurst how many at once.
	LookupRate  float64
	LookupBurst int
	// NetworkLookupRate and NetworkLookupBurst are each instance's lookup
	// bucket per provider block (IPv4 /16, IPv6 /32); a caller's network,
	// device and identity buckets hold less (see limits.go).
	NetworkLookupRate  float64
	NetworkLookupBurst int
	// Deprecated are the deprecated variables that are set.
	Deprecated []Deprecation
	// L1MaxEntries bounds the in-process token cache's entries; 0 turns it off.
	L1MaxEntries int
	// L1MaxBytes bounds the in-process token cache's size.
	L1MaxBytes int
	// MomentoEmulatorHost, if set, is the host:port of a plaintext
	// Momento-compatible server that every Momento call goes to.
	MomentoEmulatorHost string
	// SecretManagerEmulatorHost, if set, is the host:port of a plaintext
	// Secret Manager-compatible server.
	SecretManagerEmulatorHost string
	// Topics is what anonymous callers' tokens may subscribe to (TOPICS):
	// every topic (the default), a list of names and delimited prefixes, or
	// nothing ("none": anonymous callers are refused).
	Topics scope.Scope
	// TicketSecretID is the Secret Manager secret holding the keys that
	// verify tickets; TicketKey holds them itself (for local use). At most
	// one is set; with neither, tickets are not accepted.
	TicketSecretID string
	TicketKey      string
	// TicketAudience is the aud a ticket must carry; "" means
	// ticket.DefaultAudience.
	TicketAudience string
	// TicketMaxTTL is the furthest ahead a ticket's exp may be; 0 means
	// ticket.DefaultMaxTTL.
	TicketMaxTTL time.Duration
	// OIDCIssuer, if set, is the issuer whose ID tokens sign callers in;
	// OIDCAudience the audience they must carry (required with it), and
	// OIDCJWKSURL, if set, its key set's URL, to skip discovery.
	OIDCIssuer   string
	OIDCAudience string
	OIDCJWKSURL  string
	// OIDCTopics is what a signed-in user's token may subscribe to, with
	// {sub} standing for the user; OIDCPublish what it may also publish to
	// (usually nothing).
	OIDCTopics  scope.Template
	OIDCPublish scope.Template
	// Project is the Google Cloud project, for trace links in logs:
	// GOOGLE_CLOUD_PROJECT, or else SECRET_ID's project; "" if neither says.
	Project string
}

// Defaults, as documented in the README (the limits' are in limits.go).
const (
	DefaultCacheName       = "pizza"
	DefaultTokenTTL        = time.Hour
	DefaultCacheTTL        = 55 * time.Minute
	DefaultTrustedProxies  = 1
	DefaultUpstreamTimeout = 2 * time.Second
	DefaultL1MaxEntries    = 10_000
	DefaultL1MaxBytes      = 8 << 20
)

// ErrNoEndpoint returns the error for a v2 API key, found in where, with no
// endpoint to use it with: v2 keys carry none.
func ErrNoEndpoint(where string) error {
	return fmt.Errorf("%s holds a v2 Momento API key, which carries no endpoint: set MOMENTO_ENDPOINT to "+
		"the endpoint shown beside the key in Momento's console, such as %s", where, ExampleEndpoint)
}

// ExampleEndpoint is a Momento endpoint, for messages.
const ExampleEndpoint = "cell-us-east-1-1.prod.a.momentohq.com"

// DeployerVariables are the variables a deployer sets: the README's
// Configuration table lists exactly these.
var DeployerVariables = []string{
	"SECRET_ID", "MOMENTO_API_KEY", "MOMENTO_ENDPOINT", "CACHE_NAME", "TOKEN_TTL", "ALLOWED_ORIGINS",
	"TRUSTED_PROXIES", "TOPICS", "TICKET_KEY", "TICKET_SECRET_ID", "TICKET_AUDIENCE", "TICKET_MAX_TTL",
	"OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_JWKS_URL", "OIDC_TOPICS", "OIDC_PUBLISH",
	"FLEET_MINT_RATE", "FLEET_MINT_BURST", "GOOGLE_CLOUD_PROJECT",
}

// EmulatorVariables point the function at local, plaintext stand-ins for
// Momento and Secret Manager (the local runner sets them); a deployment
// leaves them unset.
var EmulatorVariables = []string{"MOMENTO_EMULATOR_HOST", "SECRETMANAGER_EMULATOR_HOST"}

// Variables are the environment variables FromEnv reads, but for the
// Deprecated ones: DeployerVariables and EmulatorVariables.
var Variables = slices.Concat(DeployerVariables, EmulatorVariables)

// PlatformVariables are the variables Cloud Functions (Cloud Run), or the
// buildpack's template, sets rather than a deployer. FromEnv reads none of
// them; the local runner reads PORT and sets FUNCTION_TARGET.
var PlatformVariables = []string{"K_SERVICE", "K_REVISION", "K_CONFIGURATION", "PORT", "FUNCTION_TARGET"}

// FromEnv reads the configuration through getenv and checks it. A getenv
// cannot tell a variable set to "" from an unset one; FromEnv takes both as
// unset. Production code calls [FromLookupEnv].
func FromEnv(getenv func(string) string) (Config, error) {
	return FromLookupEnv(func(name string) (string, bool) {
		v := getenv(name)
		return v, v != ""
	})
}

// FromLookupEnv reads the configuration through lookupenv (os.LookupEnv)
// and checks it. A variable set to blanks is unset, except those that name
// something and have a default (CACHE_NAME, TICKET_AUDIENCE): set but blank,
// they are an error rather than the default, which names another thing.
func FromLookupEnv(lookupenv func(string) (string, bool)) (Config, error) {
	p := parser{lookup: lookupenv}
	c := Config{
		SecretID:                  p.str("SECRET_ID"),
		APIKey:                    p.str("MOMENTO_API_KEY"),
		MomentoEndpoint:           p.endpoint("MOMENTO_ENDPOINT"),
		CacheName:                 p.strOr("CACHE_NAME", DefaultCacheName),
		TokenTTL:                  p.duration("TOKEN_TTL", DefaultTokenTTL),
		CacheTTL:                  p.duration("CACHE_TTL", 0),
		AllowedOrigins:            p.origins("ALLOWED_ORIGINS"),
		TrustedProxies:            p.integer("TRUSTED_PROXIES", DefaultTrustedProxies, 1, 16),
		UpstreamTimeout:           p.duration("UPSTREAM_TIMEOUT", DefaultUpstreamTimeout),
		L1MaxEntries:              p.integer("L1_MAX_ENTRIES", DefaultL1MaxEntries, 0, 10_000_000),
		L1MaxBytes:                p.integer("L1_MAX_BYTES", DefaultL1MaxBytes, 0, 1<<30),
		MomentoEmulatorHost:       p.hostPort("MOMENTO_EMULATOR_HOST"),
		SecretManagerEmulatorHost: p.hostPort("SECRETMANAGER_EMULATOR_HOST"),
		Project:                   p.str("GOOGLE_CLOUD_PROJECT"),
		Topics:                    p.topics("TOPICS"),
		TicketSecretID:            p.str("TICKET_SECRET_ID"),
		TicketKey:                 p.str("TICKET_KEY"),
		TicketAudience:            p.optional("TICKET_AUDIENCE"),
		TicketMaxTTL:              p.duration("TICKET_MAX_TTL", 0),
		OIDCIssuer:                p.str("OIDC_ISSUER"),
		OIDCAudience:              p.str("OIDC_AUDIENCE"),
		OIDCJWKSURL:               p.str("OIDC_JWKS_URL"),
		OIDCTopics:                p.template("OIDC_TOPICS"),
		OIDCPublish:               p.template("OIDC_PUBLISH"),
	}
	p.limits(&c)

	p.key(&c)
	if p.ok("CACHE_NAME") && !validCacheName(c.CacheName) {
		p.fail("CACHE_NAME must be 1 to 255 letters, digits, '-', '_' or '.'")
	}
	p.lifetimes(&c)
	if p.ok("UPSTREAM_TIMEOUT") && (c.UpstreamTimeout < 10*time.Millisecond || c.UpstreamTimeout > time.Minute) {
		p.fail("UPSTREAM_TIMEOUT must be between 10ms and 1m, got %v", c.UpstreamTimeout)
	}
	p.callers(&c)
	p.deprecatedSet(&c)
	if err := errors.Join(p.errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// key checks the variables that give the Momento key: exactly one of
// SECRET_ID and MOMENTO_API_KEY, and an endpoint for a v2 key.
func (p *parser) key(c *Config) {
	switch {
	case c.SecretID == "" && c.APIKey == "":
		p.fail("SECRET_ID or MOMENTO_API_KEY must be set")
	case c.SecretID != "" && c.APIKey != "":
		p.fail("set SECRET_ID or MOMENTO_API_KEY, not both")
	case c.SecretID != "":
		// Never quote the value: a key may have been pasted here.
		if secretname.Validate(c.SecretID) != nil {
			p.fail("SECRET_ID must be projects/PROJECT/secrets/SECRET[/versions/VERSION]")
		} else if c.Project == "" {
			c.Project, _, _ = strings.Cut(strings.TrimPrefix(c.SecretID, "projects/"), "/")
		}
	case strings.ContainsFunc(c.APIKey, unicode.IsSpace):
		// Never quote the key itself.
		p.fail("MOMENTO_API_KEY must not contain spaces")
	default:
		if k, err := momentokey.Parse(c.APIKey); err == nil && k.NeedsEndpoint() && c.MomentoEndpoint == "" && p.ok("MOMENTO_ENDPOINT") && c.MomentoEmulatorHost == "" {
			p.fail("%s", ErrNoEndpoint("MOMENTO_API_KEY"))
		}
	}
}

// lifetimes checks TOKEN_TTL and CACHE_TTL, derives CACHE_TTL when unset,
// and sets the refresh margin. Deployed, a token lives 6m to 1h and keeps a
// 5m margin. With MOMENTO_EMULATOR_HOST set it may live from 6s, and below
// 6m the margin and the least CACHE_TTL keep an hour's proportions (5m and
// 1m of 1h), so that tests see tokens refreshed within seconds.
func (p *parser) lifetimes(c *Config) {
	c.Margin = RefreshMargin
	minCache := time.Minute
	emulated := c.MomentoEmulatorHost != ""
	if p.ok("TOKEN_TTL") {
		switch {
		case emulated && c.TokenTTL >= MinEmulatorTokenTTL && c.TokenTTL < MinTokenTTL:
			c.Margin = ScaledToTokenTTL(RefreshMargin, c.TokenTTL)
			minCache = ScaledToTokenTTL(time.Minute, c.TokenTTL)
		case emulated && (c.TokenTTL < MinEmulatorTokenTTL || c.TokenTTL > MaxTokenTTL):
			p.invalid("TOKEN_TTL", "must be from %s (the %s refresh margin plus a minute of caching) to %s, or from %s with MOMENTO_EMULATOR_HOST set, got %v",
				short(MinTokenTTL), short(RefreshMargin), short(MaxTokenTTL), short(MinEmulatorTokenTTL), c.TokenTTL)
		case !emulated && (c.TokenTTL < MinTokenTTL || c.TokenTTL > MaxTokenTTL):
			p.invalid("TOKEN_TTL", "must be from %s (the %s refresh margin plus a minute of caching) to %s, got %v",
				short(MinTokenTTL), short(RefreshMargin), short(MaxTokenTTL), c.TokenTTL)
		}
		if p.ok("TOKEN_TTL") && c.TokenTTL%time.Second != 0 {
			p.invalid("TOKEN_TTL", "must be whole seconds, got %v", c.TokenTTL)
		}
	}
	if p.str("CACHE_TTL") == "" {
		c.CacheTTL = min(DefaultCacheTTL, c.TokenTTL-c.Margin)
	}
	if p.ok("CACHE_TTL") && p.ok("TOKEN_TTL") {
		switch {
		case c.CacheTTL < minCache:
			p.fail("CACHE_TTL must be at least %s, got %v", short(minCache), c.CacheTTL)
		case c.CacheTTL > c.TokenTTL-c.Margin:
			p.fail("CACHE_TTL must be at most TOKEN_TTL minus the %v refresh margin (%v), got %v",
				c.Margin, c.TokenTTL-c.Margin, c.CacheTTL)
		}
	}
}

// callers checks the variables that say who may get a token.
func (p *parser) callers(c *Config) {
	switch {
	case c.TicketSecretID != "" && c.TicketKey != "":
		p.fail("set TICKET_SECRET_ID or TICKET_KEY, not both")
	case c.TicketSecretID != "" && secretname.Validate(c.TicketSecretID) != nil:
		p.fail("TICKET_SECRET_ID must be projects/PROJECT/secrets/SECRET[/versions/VERSION]")
	case c.TicketKey != "" && !strings.HasPrefix(c.TicketKey, "{") && len(c.TicketKey) < MinTicketKeyLen:
		// Never quote the key.
		p.fail("TICKET_KEY must be at least %d bytes, got %d", MinTicketKeyLen, len(c.TicketKey))
	}
	if p.set("TICKET_MAX_TTL") && p.ok("TICKET_MAX_TTL") && (c.TicketMaxTTL < 10*time.Second || c.TicketMaxTTL > time.Hour) {
		p.fail("TICKET_MAX_TTL must be between 10s and 1h, got %v", c.TicketMaxTTL)
	}
	if c.OIDCIssuer != "" {
		if !validIssuer(c.OIDCIssuer) {
			p.fail("OIDC_ISSUER must be an https URL (http only on loopback), got %q", c.OIDCIssuer)
		}
		if c.OIDCAudience == "" {
			p.fail("OIDC_AUDIENCE must be set when OIDC_ISSUER is")
		}
		if !p.set("OIDC_TOPICS") {
			p.fail("OIDC_TOPICS must be set when OIDC_ISSUER is, e.g. user-{sub}-*")
		}
		if n := c.OIDCTopics.Len() + c.OIDCPublish.Len(); n > scope.MaxSelectors {
			p.fail("OIDC_TOPICS and OIDC_PUBLISH have %d entries together; a token carries at most %d permissions", n, scope.MaxSelectors)
		}
		if pub := c.OIDCPublish.String(); pub != "" && !everyEntryHas(pub, scope.Placeholder) {
			p.fail("OIDC_PUBLISH entries must each hold {sub}, so that a user may publish only to their own topics, got %q", pub)
		}
		if c.OIDCJWKSURL != "" && !validIssuer(c.OIDCJWKSURL) {
			p.fail("OIDC_JWKS_URL must be an https URL (http only on loopback), got %q", c.OIDCJWKSURL)
		}
	} else {
		for _, name := range []string{"OIDC_AUDIENCE", "OIDC_JWKS_URL", "OIDC_TOPICS", "OIDC_PUBLISH"} {
			if p.set(name) {
				p.fail("%s is set but OIDC_ISSUER is not", name)
			}
		}
	}
	if c.Topics.IsEmpty() && p.ok("TOPICS") && c.TicketSecretID == "" && c.TicketKey == "" && c.OIDCIssuer == "" {
		p.fail("TOPICS is none, and neither tickets (TICKET_SECRET_ID, TICKET_KEY) nor OIDC_ISSUER is set: no caller could get a token")
	}
}

// everyEntryHas reports whether every entry of a comma-separated list
// holds sub.
func everyEntryHas(list, sub string) bool {
	for _, e := range strings.Split(list, ",") {
		if !strings.Contains(e, sub) {
			return false
		}
	}
	return true
}

// MinTicketKeyLen is the shortest ticket key, in bytes: HS256 wants at
// least as many bytes as its hash.
const MinTicketKeyLen = 32
