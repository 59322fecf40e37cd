// Package config reads the function's configuration from its environment.
//
// Everything is parsed and checked in one place, [FromEnv], from a getenv
// function (os.Getenv in production, a map in tests). An invalid value is an
// error that names its variable; all such errors are reported together.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"example.com/tokenvendingmachine/internal/scope"
)

// RefreshMargin is the least lifetime a served token has left. Browsers
// refresh a token before it expires; the margin leaves them time to do so.
const RefreshMargin = 5 * time.Minute

// MaxTokenTTL is the longest lifetime Momento grants a disposable token.
const MaxTokenTTL = time.Hour

// Config is the function's configuration.
type Config struct {
	// SecretID is the Secret Manager secret version holding the Momento API
	// key: projects/P/secrets/S/versions/V, or projects/P/secrets/S for the
	// latest version. Exactly one of SecretID and APIKey is set.
	SecretID string
	// APIKey is the Momento API key itself. Never log it.
	APIKey string
	// CacheName is the cache tokens may subscribe in, and where they are cached.
	CacheName string
	// TokenTTL is the lifetime of a minted token: (0, MaxTokenTTL], whole seconds.
	TokenTTL time.Duration
	// CacheTTL is how long a token is cached: at least a minute and at most
	// TokenTTL minus RefreshMargin. Unset, it is DefaultCacheTTL, or TokenTTL
	// minus RefreshMargin if that is shorter.
	CacheTTL time.Duration
	// AllowedOrigins are the origins CORS lets read a token; nil means any ("*").
	AllowedOrigins []string
	// TrustedProxies is how many proxies in front of the function append to
	// X-Forwarded-For.
	TrustedProxies int
	// UpstreamTimeout bounds every call to Momento and Secret Manager.
	UpstreamTimeout time.Duration
	// MintRate is how many tokens an instance may mint per second, on average.
	MintRate float64
	// MintBurst is how many tokens an instance may mint at once.
	MintBurst int
	// LookupRate is how many Momento lookups (requests not answered from the
	// in-process cache) an instance may make per second, on average.
	LookupRate float64
	// LookupBurst is how many Momento lookups an instance may make at once.
	LookupBurst int
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
	// TicketAudience is the aud a ticket must carry.
	TicketAudience string
	// TicketMaxTTL is the furthest ahead a ticket's exp may be.
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
	// FleetMintRate and FleetMintBurst are the mint budget of the whole
	// deployment, kept in Momento.
	FleetMintRate  float64
	FleetMintBurst int
	// NetworkMintRate, NetworkMintBurst, NetworkLookupRate and
	// NetworkLookupBurst are each instance's buckets per client network
	// (IPv4 /24, IPv6 /48) or per identity.
	NetworkMintRate    float64
	NetworkMintBurst   int
	NetworkLookupRate  float64
	NetworkLookupBurst int
	// Project is the Google Cloud project, for trace links in logs:
	// GOOGLE_CLOUD_PROJECT, or else SECRET_ID's project; "" if neither says.
	Project string
}

// Defaults, as documented in the README.
const (
	DefaultCacheName          = "pizza"
	DefaultTokenTTL           = time.Hour
	DefaultCacheTTL           = 55 * time.Minute
	DefaultTrustedProxies     = 1
	DefaultUpstreamTimeout    = 2 * time.Second
	DefaultMintRate           = 4
	DefaultMintBurst          = 10
	DefaultLookupRate         = 100
	DefaultLookupBurst        = 1000
	DefaultL1MaxEntries       = 10_000
	DefaultL1MaxBytes         = 8 << 20
	DefaultTicketAudience     = "momento-token-vending-machine"
	DefaultTicketMaxTTL       = 10 * time.Minute
	DefaultFleetMintRate      = 4
	DefaultFleetMintBurst     = 20
	DefaultNetworkMintRate    = 0.5
	DefaultNetworkMintBurst   = 3
	DefaultNetworkLookupRate  = 5
	DefaultNetworkLookupBurst = 100
)

// Variables are the environment variables FromEnv reads.
var Variables = []string{
	"SECRET_ID", "MOMENTO_API_KEY", "CACHE_NAME", "TOKEN_TTL", "CACHE_TTL", "ALLOWED_ORIGINS",
	"TRUSTED_PROXIES", "UPSTREAM_TIMEOUT", "MINT_RATE", "MINT_BURST", "LOOKUP_RATE", "LOOKUP_BURST",
	"L1_MAX_ENTRIES", "L1_MAX_BYTES", "MOMENTO_EMULATOR_HOST", "SECRETMANAGER_EMULATOR_HOST",
	"GOOGLE_CLOUD_PROJECT", "TOPICS", "TICKET_SECRET_ID", "TICKET_KEY", "TICKET_AUDIENCE", "TICKET_MAX_TTL",
	"OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_JWKS_URL", "OIDC_TOPICS", "OIDC_PUBLISH",
	"FLEET_MINT_RATE", "FLEET_MINT_BURST", "NETWORK_MINT_RATE", "NETWORK_MINT_BURST",
	"NETWORK_LOOKUP_RATE", "NETWORK_LOOKUP_BURST",
}

// FromEnv reads the configuration through getenv and checks it.
func FromEnv(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		SecretID:                  p.str("SECRET_ID"),
		APIKey:                    strings.TrimSpace(getenv("MOMENTO_API_KEY")),
		CacheName:                 p.strOr("CACHE_NAME", DefaultCacheName),
		TokenTTL:                  p.duration("TOKEN_TTL", DefaultTokenTTL),
		CacheTTL:                  p.duration("CACHE_TTL", 0),
		AllowedOrigins:            p.origins("ALLOWED_ORIGINS"),
		TrustedProxies:            p.integer("TRUSTED_PROXIES", DefaultTrustedProxies, 1, 16),
		UpstreamTimeout:           p.duration("UPSTREAM_TIMEOUT", DefaultUpstreamTimeout),
		MintRate:                  p.float("MINT_RATE", DefaultMintRate),
		MintBurst:                 p.integer("MINT_BURST", DefaultMintBurst, 1, 1_000_000),
		LookupRate:                p.float("LOOKUP_RATE", DefaultLookupRate),
		LookupBurst:               p.integer("LOOKUP_BURST", DefaultLookupBurst, 1, 1_000_000),
		L1MaxEntries:              p.integer("L1_MAX_ENTRIES", DefaultL1MaxEntries, 0, 10_000_000),
		L1MaxBytes:                p.integer("L1_MAX_BYTES", DefaultL1MaxBytes, 0, 1<<30),
		MomentoEmulatorHost:       p.hostPort("MOMENTO_EMULATOR_HOST"),
		SecretManagerEmulatorHost: p.hostPort("SECRETMANAGER_EMULATOR_HOST"),
		Project:                   p.str("GOOGLE_CLOUD_PROJECT"),
		Topics:                    p.topics("TOPICS"),
		TicketSecretID:            p.str("TICKET_SECRET_ID"),
		TicketKey:                 strings.TrimSpace(getenv("TICKET_KEY")),
		TicketAudience:            p.strOr("TICKET_AUDIENCE", DefaultTicketAudience),
		TicketMaxTTL:              p.duration("TICKET_MAX_TTL", DefaultTicketMaxTTL),
		OIDCIssuer:                p.str("OIDC_ISSUER"),
		OIDCAudience:              p.str("OIDC_AUDIENCE"),
		OIDCJWKSURL:               p.str("OIDC_JWKS_URL"),
		OIDCTopics:                p.template("OIDC_TOPICS"),
		OIDCPublish:               p.template("OIDC_PUBLISH"),
		FleetMintRate:             p.float("FLEET_MINT_RATE", DefaultFleetMintRate),
		FleetMintBurst:            p.integer("FLEET_MINT_BURST", DefaultFleetMintBurst, 1, 1_000_000),
		NetworkMintRate:           p.float("NETWORK_MINT_RATE", DefaultNetworkMintRate),
		NetworkMintBurst:          p.integer("NETWORK_MINT_BURST", DefaultNetworkMintBurst, 1, 1_000_000),
		NetworkLookupRate:         p.float("NETWORK_LOOKUP_RATE", DefaultNetworkLookupRate),
		NetworkLookupBurst:        p.integer("NETWORK_LOOKUP_BURST", DefaultNetworkLookupBurst, 1, 1_000_000),
	}

	switch {
	case c.SecretID == "" && c.APIKey == "":
		p.fail("SECRET_ID or MOMENTO_API_KEY must be set")
	case c.SecretID != "" && c.APIKey != "":
		p.fail("set SECRET_ID or MOMENTO_API_KEY, not both")
	case c.SecretID != "":
		// Never quote the value: a key may have been pasted here.
		if ValidateSecretName(c.SecretID) != nil {
			p.fail("SECRET_ID must be projects/PROJECT/secrets/SECRET[/versions/VERSION]")
		} else if c.Project == "" {
			c.Project, _, _ = strings.Cut(strings.TrimPrefix(c.SecretID, "projects/"), "/")
		}
	case strings.ContainsFunc(c.APIKey, unicode.IsSpace):
		// Never quote the key itself.
		p.fail("MOMENTO_API_KEY must not contain spaces")
	}
	if !validCacheName(c.CacheName) {
		p.fail("CACHE_NAME must be 1 to 255 letters, digits, '-', '_' or '.'")
	}
	if p.ok("TOKEN_TTL") {
		switch {
		case c.TokenTTL <= 0 || c.TokenTTL > MaxTokenTTL:
			p.invalid("TOKEN_TTL", "must be more than 0 and at most %v, got %v", MaxTokenTTL, c.TokenTTL)
		case c.TokenTTL%time.Second != 0:
			p.invalid("TOKEN_TTL", "must be whole seconds, got %v", c.TokenTTL)
		case c.TokenTTL < RefreshMargin+time.Minute:
			p.invalid("TOKEN_TTL", "must be at least the %v refresh margin plus a minute of caching (%v), got %v",
				RefreshMargin, RefreshMargin+time.Minute, c.TokenTTL)
		}
	}
	if p.str("CACHE_TTL") == "" {
		c.CacheTTL = min(DefaultCacheTTL, c.TokenTTL-RefreshMargin)
	}
	if p.ok("CACHE_TTL") && p.ok("TOKEN_TTL") {
		switch {
		case c.CacheTTL < time.Minute:
			p.fail("CACHE_TTL must be at least 1m, got %v", c.CacheTTL)
		case c.CacheTTL > c.TokenTTL-RefreshMargin:
			p.fail("CACHE_TTL must be at most TOKEN_TTL minus the %v refresh margin (%v), got %v",
				RefreshMargin, c.TokenTTL-RefreshMargin, c.CacheTTL)
		}
	}
	if p.ok("UPSTREAM_TIMEOUT") && (c.UpstreamTimeout < 10*time.Millisecond || c.UpstreamTimeout > time.Minute) {
		p.fail("UPSTREAM_TIMEOUT must be between 10ms and 1m, got %v", c.UpstreamTimeout)
	}
	if p.ok("MINT_RATE") && !(c.MintRate > 0 && c.MintRate <= 1_000_000) { // NaN fails too
		p.fail("MINT_RATE must be more than 0 and at most 1000000 per second, got %v", c.MintRate)
	}
	if p.ok("LOOKUP_RATE") && !(c.LookupRate > 0 && c.LookupRate <= 1_000_000) {
		p.fail("LOOKUP_RATE must be more than 0 and at most 1000000 per second, got %v", c.LookupRate)
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"FLEET_MINT_RATE", c.FleetMintRate}, {"NETWORK_MINT_RATE", c.NetworkMintRate}, {"NETWORK_LOOKUP_RATE", c.NetworkLookupRate}} {
		if p.ok(r.name) && !(r.v > 0 && r.v <= 1_000_000) {
			p.fail("%s must be more than 0 and at most 1000000 per second, got %v", r.name, r.v)
		}
	}
	p.callers(&c)
	if err := errors.Join(p.errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// callers checks the variables that say who may get a token.
func (p *parser) callers(c *Config) {
	switch {
	case c.TicketSecretID != "" && c.TicketKey != "":
		p.fail("set TICKET_SECRET_ID or TICKET_KEY, not both")
	case c.TicketSecretID != "" && ValidateSecretName(c.TicketSecretID) != nil:
		p.fail("TICKET_SECRET_ID must be projects/PROJECT/secrets/SECRET[/versions/VERSION]")
	case c.TicketKey != "" && !strings.HasPrefix(c.TicketKey, "{") && len(c.TicketKey) < MinTicketKeyLen:
		// Never quote the key.
		p.fail("TICKET_KEY must be at least %d bytes, got %d", MinTicketKeyLen, len(c.TicketKey))
	}
	if p.ok("TICKET_MAX_TTL") && (c.TicketMaxTTL < 10*time.Second || c.TicketMaxTTL > time.Hour) {
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

// MinTicketKeyLen is the shortest ticket key, in bytes: HS256 wants at
// least as many bytes as its hash.
const MinTicketKeyLen = 32

// set reports whether the variable name is set to something.
func (p *parser) set(name string) bool { return p.str(name) != "" }

// topics parses a TOPICS-style list; unset means every topic.
func (p *parser) topics(name string) scope.Scope {
	v := p.str(name)
	if v == "" {
		return scope.All()
	}
	s, err := scope.Parse(v)
	if err != nil {
		p.invalid(name, "must be *, none, or a comma-separated list of topics and delimited prefixes such as order-*: %v", err)
		return scope.All()
	}
	return s
}

// template parses a list of topics in which {sub} stands for a user.
func (p *parser) template(name string) scope.Template {
	v := p.str(name)
	if v == "" {
		return scope.Template{}
	}
	t, err := scope.ParseTemplate(v)
	if err != nil {
		p.invalid(name, "must be a comma-separated list of topics and delimited prefixes, in which {sub} stands for the user, such as user-{sub}-*: %v", err)
	}
	return t
}

// validIssuer reports whether s is an https URL, or an http one on
// loopback (the local runner's fake issuer).
func validIssuer(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		host := u.Hostname()
		ip := net.ParseIP(host)
		return host == "localhost" || (ip != nil && ip.IsLoopback())
	}
	return false
}

// parser collects the errors of the variables it reads.
type parser struct {
	getenv func(string) string
	errs   []error
	bad    map[string]bool // variables that failed to parse
}

func (p *parser) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

// invalid records that name failed to parse.
func (p *parser) invalid(name, format string, args ...any) {
	if p.bad == nil {
		p.bad = make(map[string]bool)
	}
	p.bad[name] = true
	p.fail(name+" "+format, args...)
}

// ok reports whether name parsed (or was unset).
func (p *parser) ok(name string) bool { return !p.bad[name] }

func (p *parser) str(name string) string { return strings.TrimSpace(p.getenv(name)) }

func (p *parser) strOr(name, def string) string {
	if v := p.str(name); v != "" {
		return v
	}
	return def
}

func (p *parser) duration(name string, def time.Duration) time.Duration {
	v := p.str(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.invalid(name, "must be a duration such as 55m or 1h, got %q", v)
		return def
	}
	return d
}

func (p *parser) integer(name string, def, lo, hi int) int {
	v := p.str(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.invalid(name, "must be a whole number from %d to %d, got %q", lo, hi, v)
		return def
	}
	return n
}

func (p *parser) float(name string, def float64) float64 {
	v := p.str(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		p.invalid(name, "must be a number, got %q", v)
		return def
	}
	return f
}

func (p *parser) hostPort(name string) string {
	v := p.str(name)
	if v == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(v)
	if n, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil || n == 0 {
		p.invalid(name, "must be host:port, got %q", v)
		return ""
	}
	return v
}

// origins parses a comma-separated list of origins; "*" (or unset) means any.
func (p *parser) origins(name string) []string {
	v := p.str(name)
	if v == "" || v == "*" {
		return nil
	}
	var out []string
	for _, o := range strings.Split(v, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		canon, ok := CanonicalOrigin(o)
		if !ok {
			p.invalid(name, "must be * or a comma-separated list of origins such as https://shop.example.com, got %q", o)
			continue
		}
		out = append(out, canon)
	}
	if len(out) == 0 && p.ok(name) {
		p.invalid(name, "lists no origin")
	}
	return out
}

// CanonicalOrigin returns origin o as a browser sends it in the Origin header,
// scheme://host[:port] in lower case without a default port or a path, and
// reports whether o is an http or https origin at all.
func CanonicalOrigin(o string) (string, bool) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if strings.HasSuffix(u.Host, ":") {
		return "", false
	}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return "", false
		}
		port = strconv.FormatUint(n, 10)
	}
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return u.Scheme + "://" + host, true
}

// secretNameRE matches a global secret or secret version name. The project
// may be an ID (including a domain-scoped "example.com:p") or a number; the
// secret ID rule is the service's; the version is a number, "latest" or an
// alias. It is compiled on first use, not at init: every millisecond of
// package init is paid by each cold start.
var secretNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^projects/[A-Za-z0-9.:_-]+/secrets/[A-Za-z0-9_-]{1,255}(/versions/[A-Za-z0-9_-]+)?$`)
})

// ValidateSecretName reports whether name is a secret, "projects/P/secrets/S",
// or a secret version, "projects/P/secrets/S/versions/V". The error does not
// quote name, in case a key was configured where its name belongs.
func ValidateSecretName(name string) error {
	if !secretNameRE().MatchString(name) {
		return errors.New("secret name must be projects/PROJECT/secrets/SECRET or projects/PROJECT/secrets/SECRET/versions/VERSION")
	}
	return nil
}

func validCacheName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return false
		}
	}
	return true
}
