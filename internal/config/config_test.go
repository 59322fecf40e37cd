package config

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"example.com/tokenvendingmachine/internal/scope"
)

// testKey is a distinctive Momento API key; no error may ever contain it.
const testKey = "sekrit-KEY-123"

// testV2Key is a Momento v2 API key: a JWT whose claims hold "t": "g".
var testV2Key = "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"t":"g","id":"sekrit"}`)) + ".c2lnbmF0dXJl"

// env returns a getenv that reads m; a missing variable reads as "".
func env(m map[string]string) func(string) string {
	return func(name string) string { return m[name] }
}

// withKey returns m plus MOMENTO_API_KEY=testKey.
func withKey(m map[string]string) map[string]string {
	out := map[string]string{"MOMENTO_API_KEY": testKey}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// defaults returns the Config that FromEnv makes from MOMENTO_API_KEY=testKey alone.
func defaults() Config {
	return Config{
		APIKey:            testKey,
		CacheName:         "pizza",
		TokenTTL:          time.Hour,
		CacheTTL:          55 * time.Minute,
		Margin:            5 * time.Minute,
		AllowedOrigins:    nil,
		TrustedProxies:    1,
		UpstreamTimeout:   2 * time.Second,
		FleetMintRate:     4,
		FleetMintBurst:    20,
		MintRate:          1,
		MintBurst:         5,
		LookupRate:        100,
		LookupBurst:       1000,
		L1MaxEntries:      10000,
		L1MaxBytes:        8 << 20,
		Topics:            scope.All(),
		NetworkLookupRate: 5, NetworkLookupBurst: 100,
	}
}

func TestFromEnvDefaults(t *testing.T) {
	m := map[string]string{"MOMENTO_API_KEY": testKey}
	got, err := FromEnv(env(m))
	if err != nil {
		t.Fatalf("FromEnv(%v) error: %v", m, err)
	}
	if diff := cmp.Diff(defaults(), got); diff != "" {
		t.Errorf("FromEnv(%v) mismatch (-want +got):\n%s", m, diff)
	}
}

func TestFromEnvValid(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(*Config) // applied to defaults()
	}{
		{
			name: "v2 key with endpoint",
			env:  map[string]string{"MOMENTO_API_KEY": testV2Key, "MOMENTO_ENDPOINT": "https://api.cache.cell-us-east-1-1.prod.a.momentohq.com/"},
			want: func(c *Config) { c.APIKey = testV2Key; c.MomentoEndpoint = "cell-us-east-1-1.prod.a.momentohq.com" },
		},
		{
			// The emulator stands in for the endpoint.
			name: "v2 key with emulator",
			env:  map[string]string{"MOMENTO_API_KEY": testV2Key, "MOMENTO_EMULATOR_HOST": "127.0.0.1:9000"},
			want: func(c *Config) { c.APIKey = testV2Key; c.MomentoEmulatorHost = "127.0.0.1:9000" },
		},
		{
			// Whether a key from Secret Manager needs one is known only
			// once it is read.
			name: "secret id with endpoint",
			env:  map[string]string{"SECRET_ID": "projects/p/secrets/momento-key", "MOMENTO_ENDPOINT": "cache.cell-9.example.com:443"},
			want: func(c *Config) {
				c.APIKey = ""
				c.SecretID = "projects/p/secrets/momento-key"
				c.Project = "p"
				c.MomentoEndpoint = "cell-9.example.com"
			},
		},
		{
			name: "secret id",
			env:  map[string]string{"SECRET_ID": "projects/p/secrets/momento-key"},
			want: func(c *Config) { c.APIKey = ""; c.SecretID = "projects/p/secrets/momento-key"; c.Project = "p" },
		},
		{
			name: "secret version",
			env:  map[string]string{"SECRET_ID": "projects/p/secrets/momento-key/versions/3"},
			want: func(c *Config) {
				c.APIKey = ""
				c.SecretID = "projects/p/secrets/momento-key/versions/3"
				c.Project = "p"
			},
		},
		{
			name: "secret id trimmed",
			env:  map[string]string{"SECRET_ID": "  projects/p/secrets/s/versions/latest\n"},
			want: func(c *Config) { c.APIKey = ""; c.SecretID = "projects/p/secrets/s/versions/latest"; c.Project = "p" },
		},
		{
			name: "project named, not taken from the secret",
			env:  map[string]string{"SECRET_ID": "projects/123/secrets/s", "GOOGLE_CLOUD_PROJECT": " my-project "},
			want: func(c *Config) { c.APIKey = ""; c.SecretID = "projects/123/secrets/s"; c.Project = "my-project" },
		},
		{
			name: "topics, tickets and sign-in",
			env: withKey(map[string]string{
				"TOPICS": "menu-*, announcements", "TICKET_KEY": strings.Repeat("k", 32), "TICKET_MAX_TTL": "5m",
				"OIDC_ISSUER": "http://127.0.0.1:9000", "OIDC_AUDIENCE": "tvm", "OIDC_TOPICS": "user-{sub}-*",
			}),
			want: func(c *Config) {
				c.Topics, _ = scope.Parse("announcements,menu-*")
				c.TicketKey, c.TicketMaxTTL = strings.Repeat("k", 32), 5*time.Minute
				c.OIDCIssuer, c.OIDCAudience = "http://127.0.0.1:9000", "tvm"
				c.OIDCTopics, _ = scope.ParseTemplate("user-{sub}-*")
			},
		},
		{
			name: "topics none with tickets",
			env:  withKey(map[string]string{"TOPICS": "none", "TICKET_SECRET_ID": "projects/p/secrets/t"}),
			want: func(c *Config) { c.Topics, _ = scope.Parse("none"); c.TicketSecretID = "projects/p/secrets/t" },
		},
		{
			name: "api key trimmed",
			env:  map[string]string{"MOMENTO_API_KEY": " " + testKey + "\n"},
			want: func(c *Config) {},
		},
		{
			name: "short token and cache ttl",
			env:  withKey(map[string]string{"TOKEN_TTL": "10m", "CACHE_TTL": "5m"}),
			want: func(c *Config) { c.TokenTTL = 10 * time.Minute; c.CacheTTL = 5 * time.Minute },
		},
		{
			name: "cache ttl exactly token ttl minus margin",
			env:  withKey(map[string]string{"TOKEN_TTL": "1h", "CACHE_TTL": "55m"}),
			want: func(c *Config) {},
		},
		{
			name: "cache ttl exactly 1m",
			env:  withKey(map[string]string{"CACHE_TTL": "1m"}),
			want: func(c *Config) { c.CacheTTL = time.Minute },
		},
		{
			name: "any origin",
			env:  withKey(map[string]string{"ALLOWED_ORIGINS": "*"}),
			want: func(c *Config) {},
		},
		{
			name: "origins canonicalized",
			env:  withKey(map[string]string{"ALLOWED_ORIGINS": "https://Shop.Example.com, http://localhost:8081"}),
			want: func(c *Config) { c.AllowedOrigins = []string{"https://shop.example.com", "http://localhost:8081"} },
		},
		{
			name: "origin default port dropped",
			env:  withKey(map[string]string{"ALLOWED_ORIGINS": "https://a.example:443"}),
			want: func(c *Config) { c.AllowedOrigins = []string{"https://a.example"} },
		},
		{
			name: "origins with empty items",
			env:  withKey(map[string]string{"ALLOWED_ORIGINS": ",https://a.example,,"}),
			want: func(c *Config) { c.AllowedOrigins = []string{"https://a.example"} },
		},
		{
			name: "trusted proxies",
			env:  withKey(map[string]string{"TRUSTED_PROXIES": "2"}),
			want: func(c *Config) { c.TrustedProxies = 2 },
		},
		{
			name: "trusted proxies max",
			env:  withKey(map[string]string{"TRUSTED_PROXIES": "16"}),
			want: func(c *Config) { c.TrustedProxies = 16 },
		},
		{
			name: "upstream timeout",
			env:  withKey(map[string]string{"UPSTREAM_TIMEOUT": "500ms"}),
			want: func(c *Config) { c.UpstreamTimeout = 500 * time.Millisecond },
		},
		{
			name: "fleet budget",
			env:  withKey(map[string]string{"FLEET_MINT_RATE": "8", "FLEET_MINT_BURST": "40"}),
			want: func(c *Config) {
				c.FleetMintRate, c.FleetMintBurst = 8, 40
				c.MintRate, c.MintBurst = 2, 10
				c.LookupRate, c.LookupBurst = 200, 2000
				c.NetworkLookupRate, c.NetworkLookupBurst = 10, 200
			},
		},
		{
			name: "fractional fleet rate, burst 1",
			env:  withKey(map[string]string{"FLEET_MINT_RATE": "0.5", "FLEET_MINT_BURST": "1"}),
			want: func(c *Config) {
				c.FleetMintRate, c.FleetMintBurst = 0.5, 1
				c.MintRate, c.MintBurst = 0.125, 1
				c.LookupRate, c.LookupBurst = 12.5, 50
				c.NetworkLookupRate, c.NetworkLookupBurst = 0.625, 5
			},
		},
		{
			name: "l1 off",
			env:  withKey(map[string]string{"L1_MAX_ENTRIES": "0"}),
			want: func(c *Config) { c.L1MaxEntries = 0 },
		},
		{
			name: "l1 max bytes",
			env:  withKey(map[string]string{"L1_MAX_BYTES": "1024"}),
			want: func(c *Config) { c.L1MaxBytes = 1024 },
		},
		{
			name: "emulator hosts",
			env: withKey(map[string]string{
				"MOMENTO_EMULATOR_HOST":       "127.0.0.1:9000",
				"SECRETMANAGER_EMULATOR_HOST": "localhost:9001",
			}),
			want: func(c *Config) {
				c.MomentoEmulatorHost = "127.0.0.1:9000"
				c.SecretManagerEmulatorHost = "localhost:9001"
			},
		},
		{
			name: "cache name",
			env:  withKey(map[string]string{"CACHE_NAME": "my-cache_1.x"}),
			want: func(c *Config) { c.CacheName = "my-cache_1.x" },
		},
		{
			name: "cache name 255 chars",
			env:  withKey(map[string]string{"CACHE_NAME": strings.Repeat("a", 255)}),
			want: func(c *Config) { c.CacheName = strings.Repeat("a", 255) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := defaults()
			tt.want(&want)
			got, err := FromEnv(env(tt.env))
			if err != nil {
				t.Fatalf("FromEnv(%v) error: %v", tt.env, err)
			}
			// A deprecated variable that is set is named, once.
			var named, set []string
			for _, d := range got.Deprecated {
				named = append(named, d.Variable)
			}
			for _, v := range Deprecated {
				if tt.env[v] != "" {
					set = append(set, v)
				}
			}
			slices.Sort(named)
			slices.Sort(set)
			if !slices.Equal(named, set) {
				t.Errorf("FromEnv(%v).Deprecated names %v, want %v", tt.env, named, set)
			}
			got.Deprecated = nil
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("FromEnv(%v) mismatch (-want +got):\n%s", tt.env, diff)
			}
		})
	}
}

func TestFromEnvInvalid(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		// names are the variables the error must name.
		names []string
	}{
		{
			name:  "neither secret id nor key",
			env:   map[string]string{},
			names: []string{"SECRET_ID", "MOMENTO_API_KEY"},
		},
		{
			name:  "both secret id and key",
			env:   withKey(map[string]string{"SECRET_ID": "projects/p/secrets/s"}),
			names: []string{"SECRET_ID", "MOMENTO_API_KEY"},
		},
		{
			name:  "malformed secret id",
			env:   map[string]string{"SECRET_ID": "projects/p/secret/s"},
			names: []string{"SECRET_ID"},
		},
		{
			name:  "secret id with bad version",
			env:   map[string]string{"SECRET_ID": "projects/p/secrets/s/versions/"},
			names: []string{"SECRET_ID"},
		},
		{
			// A key configured where its name belongs must not be echoed.
			name:  "key as secret id",
			env:   map[string]string{"SECRET_ID": testKey},
			names: []string{"SECRET_ID"},
		},
		{
			name:  "key with space",
			env:   map[string]string{"MOMENTO_API_KEY": "abc def"},
			names: []string{"MOMENTO_API_KEY"},
		},
		{
			name:  "distinctive key with space",
			env:   map[string]string{"MOMENTO_API_KEY": "sekrit-KEY 123"},
			names: []string{"MOMENTO_API_KEY"},
		},

		{name: "token ttl 0", env: withKey(map[string]string{"TOKEN_TTL": "0"}), names: []string{"TOKEN_TTL"}},
		{name: "token ttl negative", env: withKey(map[string]string{"TOKEN_TTL": "-1h"}), names: []string{"TOKEN_TTL"}},
		{name: "token ttl over 1h", env: withKey(map[string]string{"TOKEN_TTL": "61m"}), names: []string{"TOKEN_TTL"}},
		{name: "token ttl not whole seconds", env: withKey(map[string]string{"TOKEN_TTL": "1500ms"}), names: []string{"TOKEN_TTL"}},
		{
			name:  "token ttl not whole seconds with valid cache ttl",
			env:   withKey(map[string]string{"TOKEN_TTL": "10m500ms", "CACHE_TTL": "5m"}),
			names: []string{"TOKEN_TTL"},
		},
		{name: "token ttl garbage", env: withKey(map[string]string{"TOKEN_TTL": "an hour"}), names: []string{"TOKEN_TTL"}},
		{name: "token ttl without unit", env: withKey(map[string]string{"TOKEN_TTL": "3600"}), names: []string{"TOKEN_TTL"}},

		{name: "cache ttl under 1m", env: withKey(map[string]string{"CACHE_TTL": "59s"}), names: []string{"CACHE_TTL"}},
		{
			name:  "cache ttl within refresh margin",
			env:   withKey(map[string]string{"TOKEN_TTL": "1h", "CACHE_TTL": "56m"}),
			names: []string{"CACHE_TTL"},
		},
		{name: "explicit cache ttl 0", env: withKey(map[string]string{"CACHE_TTL": "0s"}), names: []string{"CACHE_TTL"}},
		{name: "token ttl shorter than margin plus a minute", env: withKey(map[string]string{"TOKEN_TTL": "5m59s"}), names: []string{"TOKEN_TTL"}},
		{name: "lookup rate 0", env: withKey(map[string]string{"LOOKUP_RATE": "0"}), names: []string{"LOOKUP_RATE"}},
		{name: "lookup burst 0", env: withKey(map[string]string{"LOOKUP_BURST": "0"}), names: []string{"LOOKUP_BURST"}},
		{name: "cache ttl garbage", env: withKey(map[string]string{"CACHE_TTL": "soon"}), names: []string{"CACHE_TTL"}},

		{name: "origins with path", env: withKey(map[string]string{"ALLOWED_ORIGINS": "https://a.example/app"}), names: []string{"ALLOWED_ORIGINS"}},
		{name: "origins with query", env: withKey(map[string]string{"ALLOWED_ORIGINS": "https://a.example?x=1"}), names: []string{"ALLOWED_ORIGINS"}},
		{name: "origins ftp", env: withKey(map[string]string{"ALLOWED_ORIGINS": "ftp://x"}), names: []string{"ALLOWED_ORIGINS"}},
		{name: "origins null", env: withKey(map[string]string{"ALLOWED_ORIGINS": "null"}), names: []string{"ALLOWED_ORIGINS"}},
		{name: "origins bare hostname", env: withKey(map[string]string{"ALLOWED_ORIGINS": "shop.example.com"}), names: []string{"ALLOWED_ORIGINS"}},
		{name: "origins only commas", env: withKey(map[string]string{"ALLOWED_ORIGINS": ",,"}), names: []string{"ALLOWED_ORIGINS"}},
		{
			name:  "origins one bad among good",
			env:   withKey(map[string]string{"ALLOWED_ORIGINS": "https://a.example, https://b.example/path"}),
			names: []string{"ALLOWED_ORIGINS"},
		},
		{name: "origins star in list", env: withKey(map[string]string{"ALLOWED_ORIGINS": "*, https://a.example"}), names: []string{"ALLOWED_ORIGINS"}},

		{name: "trusted proxies 0", env: withKey(map[string]string{"TRUSTED_PROXIES": "0"}), names: []string{"TRUSTED_PROXIES"}},
		{name: "trusted proxies 17", env: withKey(map[string]string{"TRUSTED_PROXIES": "17"}), names: []string{"TRUSTED_PROXIES"}},
		{name: "trusted proxies garbage", env: withKey(map[string]string{"TRUSTED_PROXIES": "x"}), names: []string{"TRUSTED_PROXIES"}},

		{name: "upstream timeout too short", env: withKey(map[string]string{"UPSTREAM_TIMEOUT": "5ms"}), names: []string{"UPSTREAM_TIMEOUT"}},
		{name: "upstream timeout too long", env: withKey(map[string]string{"UPSTREAM_TIMEOUT": "2m"}), names: []string{"UPSTREAM_TIMEOUT"}},
		{name: "upstream timeout garbage", env: withKey(map[string]string{"UPSTREAM_TIMEOUT": "x"}), names: []string{"UPSTREAM_TIMEOUT"}},

		{name: "mint rate 0", env: withKey(map[string]string{"MINT_RATE": "0"}), names: []string{"MINT_RATE"}},
		{name: "mint rate negative", env: withKey(map[string]string{"MINT_RATE": "-1"}), names: []string{"MINT_RATE"}},
		{name: "mint rate garbage", env: withKey(map[string]string{"MINT_RATE": "x"}), names: []string{"MINT_RATE"}},
		{name: "mint rate infinite", env: withKey(map[string]string{"MINT_RATE": "Inf"}), names: []string{"MINT_RATE"}},
		{name: "mint burst 0", env: withKey(map[string]string{"MINT_BURST": "0"}), names: []string{"MINT_BURST"}},
		{name: "mint burst garbage", env: withKey(map[string]string{"MINT_BURST": "many"}), names: []string{"MINT_BURST"}},

		{name: "l1 max entries negative", env: withKey(map[string]string{"L1_MAX_ENTRIES": "-1"}), names: []string{"L1_MAX_ENTRIES"}},
		{name: "l1 max entries garbage", env: withKey(map[string]string{"L1_MAX_ENTRIES": "lots"}), names: []string{"L1_MAX_ENTRIES"}},
		{name: "l1 max bytes negative", env: withKey(map[string]string{"L1_MAX_BYTES": "-1"}), names: []string{"L1_MAX_BYTES"}},

		{name: "momento emulator no port", env: withKey(map[string]string{"MOMENTO_EMULATOR_HOST": "localhost"}), names: []string{"MOMENTO_EMULATOR_HOST"}},
		{name: "momento emulator no host", env: withKey(map[string]string{"MOMENTO_EMULATOR_HOST": ":9000"}), names: []string{"MOMENTO_EMULATOR_HOST"}},
		{name: "momento emulator bad port", env: withKey(map[string]string{"MOMENTO_EMULATOR_HOST": "h:99999"}), names: []string{"MOMENTO_EMULATOR_HOST"}},
		{name: "secret manager emulator no port", env: withKey(map[string]string{"SECRETMANAGER_EMULATOR_HOST": "localhost"}), names: []string{"SECRETMANAGER_EMULATOR_HOST"}},
		{name: "secret manager emulator no host", env: withKey(map[string]string{"SECRETMANAGER_EMULATOR_HOST": ":9000"}), names: []string{"SECRETMANAGER_EMULATOR_HOST"}},
		{name: "secret manager emulator bad port", env: withKey(map[string]string{"SECRETMANAGER_EMULATOR_HOST": "h:99999"}), names: []string{"SECRETMANAGER_EMULATOR_HOST"}},

		{name: "cache name blank", env: withKey(map[string]string{"CACHE_NAME": "  "}), names: []string{"CACHE_NAME"}},
		{name: "ticket audience blank", env: withKey(map[string]string{"TICKET_AUDIENCE": " "}), names: []string{"TICKET_AUDIENCE"}},
		{name: "cache name with space", env: withKey(map[string]string{"CACHE_NAME": "my cache"}), names: []string{"CACHE_NAME"}},
		{name: "cache name 256 chars", env: withKey(map[string]string{"CACHE_NAME": strings.Repeat("a", 256)}), names: []string{"CACHE_NAME"}},
		{name: "cache name non-ascii", env: withKey(map[string]string{"CACHE_NAME": "café"}), names: []string{"CACHE_NAME"}},

		{name: "topics with an undelimited prefix", env: withKey(map[string]string{"TOPICS": "menu-today, order*"}), names: []string{"TOPICS"}},
		{name: "topics with a bad character", env: withKey(map[string]string{"TOPICS": "menu today"}), names: []string{"TOPICS"}},
		{name: "topics none without tickets or sign-in", env: withKey(map[string]string{"TOPICS": "none"}), names: []string{"TOPICS", "TICKET_KEY", "OIDC_ISSUER"}},
		{name: "both ticket secret and key", env: withKey(map[string]string{"TICKET_SECRET_ID": "projects/p/secrets/t", "TICKET_KEY": strings.Repeat("k", 32)}), names: []string{"TICKET_SECRET_ID", "TICKET_KEY"}},
		{name: "ticket key too short", env: withKey(map[string]string{"TICKET_KEY": "short-SECRET"}), names: []string{"TICKET_KEY"}},
		{name: "ticket secret id malformed", env: withKey(map[string]string{"TICKET_SECRET_ID": "tickets"}), names: []string{"TICKET_SECRET_ID"}},
		{name: "ticket max ttl too long", env: withKey(map[string]string{"TICKET_MAX_TTL": "2h"}), names: []string{"TICKET_MAX_TTL"}},
		{name: "oidc issuer without audience", env: withKey(map[string]string{"OIDC_ISSUER": "https://securetoken.google.com/p", "OIDC_TOPICS": "user-{sub}-*"}), names: []string{"OIDC_AUDIENCE"}},
		{name: "oidc issuer without topics", env: withKey(map[string]string{"OIDC_ISSUER": "https://securetoken.google.com/p", "OIDC_AUDIENCE": "p"}), names: []string{"OIDC_TOPICS"}},
		{name: "oidc issuer over plain http", env: withKey(map[string]string{"OIDC_ISSUER": "http://issuer.example", "OIDC_AUDIENCE": "p", "OIDC_TOPICS": "user-{sub}-*"}), names: []string{"OIDC_ISSUER"}},
		{name: "oidc topics without issuer", env: withKey(map[string]string{"OIDC_TOPICS": "user-{sub}-*"}), names: []string{"OIDC_TOPICS", "OIDC_ISSUER"}},
		{name: "oidc topics with an undelimited placeholder", env: withKey(map[string]string{"OIDC_ISSUER": "https://i.example", "OIDC_AUDIENCE": "a", "OIDC_TOPICS": "user-{sub}*"}), names: []string{"OIDC_TOPICS"}},
		{name: "oidc permissions over 20 together", env: withKey(map[string]string{"OIDC_ISSUER": "https://i.example", "OIDC_AUDIENCE": "a",
			"OIDC_TOPICS":  "a{sub}-1,a{sub}-2,a{sub}-3,a{sub}-4,a{sub}-5,a{sub}-6,a{sub}-7,a{sub}-8,a{sub}-9,a{sub}-10,a{sub}-11",
			"OIDC_PUBLISH": "b{sub}-1,b{sub}-2,b{sub}-3,b{sub}-4,b{sub}-5,b{sub}-6,b{sub}-7,b{sub}-8,b{sub}-9,b{sub}-10"}), names: []string{"OIDC_TOPICS", "OIDC_PUBLISH"}},
		{name: "oidc publish to a shared topic", env: withKey(map[string]string{"OIDC_ISSUER": "https://i.example", "OIDC_AUDIENCE": "a",
			"OIDC_TOPICS": "user-{sub}-*", "OIDC_PUBLISH": "user-{sub}-chat,announcements"}), names: []string{"OIDC_PUBLISH"}},
		{name: "fleet mint rate 0", env: withKey(map[string]string{"FLEET_MINT_RATE": "0"}), names: []string{"FLEET_MINT_RATE"}},
		{name: "fleet mint burst 0", env: withKey(map[string]string{"FLEET_MINT_BURST": "0"}), names: []string{"FLEET_MINT_BURST"}},
		{name: "network mint burst 0", env: withKey(map[string]string{"NETWORK_MINT_BURST": "0"}), names: []string{"NETWORK_MINT_BURST"}},
		{name: "network lookup rate NaN", env: withKey(map[string]string{"NETWORK_LOOKUP_RATE": "NaN"}), names: []string{"NETWORK_LOOKUP_RATE"}},
		{
			name: "several bad variables",
			env: withKey(map[string]string{
				"CACHE_NAME":            "my cache",
				"TOKEN_TTL":             "forever",
				"ALLOWED_ORIGINS":       "null",
				"TRUSTED_PROXIES":       "17",
				"UPSTREAM_TIMEOUT":      "x",
				"MINT_RATE":             "0",
				"MINT_BURST":            "0",
				"L1_MAX_ENTRIES":        "-1",
				"MOMENTO_EMULATOR_HOST": "localhost",
			}),
			names: []string{
				"CACHE_NAME", "TOKEN_TTL", "ALLOWED_ORIGINS", "TRUSTED_PROXIES", "UPSTREAM_TIMEOUT",
				"MINT_RATE", "MINT_BURST", "L1_MAX_ENTRIES", "MOMENTO_EMULATOR_HOST",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(env(tt.env))
			if err == nil {
				t.Fatalf("FromEnv(%v) = %+v, want an error naming %v", tt.env, got, tt.names)
			}
			if diff := cmp.Diff(Config{}, got); diff != "" {
				t.Errorf("FromEnv(%v) returned a non-zero Config with its error (-want +got):\n%s", tt.env, diff)
			}
			for _, name := range tt.names {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("FromEnv(%v) error %q does not name %s", tt.env, err, name)
				}
			}
			// No error may quote the key, nor any word of it.
			secrets := []string{testKey}
			if k := strings.TrimSpace(tt.env["MOMENTO_API_KEY"]); k != "" {
				secrets = append(secrets, k)
				secrets = append(secrets, strings.Fields(k)...)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("FromEnv(%v) error %q contains the key text %q", tt.env, err, s)
				}
			}
		})
	}
}

func TestCanonicalOrigin(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   string
		wantOK bool
	}{
		{name: "https", in: "https://shop.example.com", want: "https://shop.example.com", wantOK: true},
		{name: "upper case", in: "HTTPS://Shop.Example.COM", want: "https://shop.example.com", wantOK: true},
		{name: "trailing slash", in: "https://a.example/", want: "https://a.example", wantOK: true},
		{name: "https default port", in: "https://a.example:443", want: "https://a.example", wantOK: true},
		{name: "http default port", in: "http://a.example:80", want: "http://a.example", wantOK: true},
		{name: "https on port 80 kept", in: "https://a.example:80", want: "https://a.example:80", wantOK: true},
		{name: "http on port 443 kept", in: "http://a.example:443", want: "http://a.example:443", wantOK: true},
		{name: "other port", in: "http://localhost:8081", want: "http://localhost:8081", wantOK: true},
		{name: "ipv4", in: "http://127.0.0.1:3000", want: "http://127.0.0.1:3000", wantOK: true},
		{name: "ipv6 with port", in: "http://[::1]:8080", want: "http://[::1]:8080", wantOK: true},
		{name: "ipv6 default port", in: "http://[::1]:80", want: "http://[::1]", wantOK: true},
		{name: "ipv6 without port", in: "https://[2001:DB8::1]", want: "https://[2001:db8::1]", wantOK: true},
		{name: "path", in: "https://a.example/app", wantOK: false},
		{name: "query", in: "https://a.example?x=1", wantOK: false},
		{name: "fragment", in: "https://a.example#top", wantOK: false},
		{name: "user info", in: "https://user@a.example", wantOK: false},
		{name: "ftp", in: "ftp://x", wantOK: false},
		{name: "null", in: "null", wantOK: false},
		{name: "bare hostname", in: "shop.example.com", wantOK: false},
		{name: "no host", in: "https://", wantOK: false},
		{name: "star", in: "*", wantOK: false},
		{name: "empty", in: "", wantOK: false},
		{name: "unparsable", in: "https://a.example:port", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := CanonicalOrigin(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("CanonicalOrigin(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestCacheTTLDefaultFollowsTokenTTL(t *testing.T) {
	tests := []struct {
		tokenTTL string
		want     time.Duration
	}{
		{"1h", 55 * time.Minute},
		{"30m", 25 * time.Minute},
		{"6m", time.Minute},
	}
	for _, tt := range tests {
		got, err := FromEnv(env(withKey(map[string]string{"TOKEN_TTL": tt.tokenTTL})))
		if err != nil || got.CacheTTL != tt.want {
			t.Errorf("FromEnv(TOKEN_TTL=%s).CacheTTL = %v, %v; want %v", tt.tokenTTL, got.CacheTTL, err, tt.want)
		}
	}
}

func TestFromEnvRejectsLooseValues(t *testing.T) {
	tests := []struct {
		name, variable, value string
	}{
		{"NaN rate", "MINT_RATE", "NaN"},
		{"port 0", "MOMENTO_EMULATOR_HOST", "h:0"},
		{"origin port out of range", "ALLOWED_ORIGINS", "http://a.example:99999"},
		{"origin with empty port", "ALLOWED_ORIGINS", "https://a.example:"},
		{"origin with empty query", "ALLOWED_ORIGINS", "https://a.example?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromEnv(env(map[string]string{"MOMENTO_API_KEY": "k", tt.variable: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.variable) {
				t.Errorf("FromEnv(%s=%q) = %v, want an error naming %s", tt.variable, tt.value, err, tt.variable)
			}
		})
	}
	_, err := FromEnv(env(map[string]string{"MOMENTO_API_KEY": "k", "TOKEN_TTL": "0"}))
	if err == nil || strings.Contains(err.Error(), "CACHE_TTL") {
		t.Errorf("FromEnv(TOKEN_TTL=0) = %v, want an error about TOKEN_TTL only", err)
	}
	if got, ok := CanonicalOrigin("https://a.example:0443"); !ok || got != "https://a.example" {
		t.Errorf("CanonicalOrigin(https://a.example:0443) = %q, %v; want https://a.example", got, ok)
	}
}

// TestSetButEmptyIsNotTheDefault checks that a variable naming something,
// set to nothing, is an error rather than its default: CACHE_NAME= must not
// quietly mean the cache "pizza". Unset, it is the default.
func TestSetButEmptyIsNotTheDefault(t *testing.T) {
	for _, name := range []string{"CACHE_NAME", "TICKET_AUDIENCE"} {
		for _, value := range []string{"", " \t"} {
			lookup := func(v string) (string, bool) {
				switch v {
				case "MOMENTO_API_KEY":
					return testKey, true
				case name:
					return value, true
				}
				return "", false
			}
			got, err := FromLookupEnv(lookup)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("FromLookupEnv(%s=%q) = %+v, %v; want an error naming %s", name, value, got, err, name)
			}
		}
	}
	got, err := FromLookupEnv(func(v string) (string, bool) {
		if v == "MOMENTO_API_KEY" {
			return testKey, true
		}
		return "", false
	})
	if err != nil || got.CacheName != DefaultCacheName || got.TicketAudience != "" {
		t.Errorf("FromLookupEnv(CACHE_NAME and TICKET_AUDIENCE unset) = %q, %q, %v; want the default and \"\" (the ticket package's default)", got.CacheName, got.TicketAudience, err)
	}
}

// TestTokenTTLErrorGivesTheRange checks that a TOKEN_TTL out of range is
// told the range it must be in, whichever side it falls.
func TestTokenTTLErrorGivesTheRange(t *testing.T) {
	for _, ttl := range []string{"5h", "0", "-1m", "5m59s", "61m"} {
		_, err := FromEnv(env(withKey(map[string]string{"TOKEN_TTL": ttl})))
		if err == nil || !strings.Contains(err.Error(), "TOKEN_TTL must be from 6m (") || !strings.Contains(err.Error(), ") to 1h, got") {
			t.Errorf("FromEnv(TOKEN_TTL=%s) = %v, want an error giving the range 6m to 1h", ttl, err)
		}
	}
}

// TestShortLifetimesOnlyWithTheEmulator checks that tokens shorter than
// the deployed 6m minimum are accepted only with MOMENTO_EMULATOR_HOST set,
// from 6s, with the refresh margin and CACHE_TTL kept in an hour's
// proportions, and that from 6m on the emulator changes nothing.
func TestShortLifetimesOnlyWithTheEmulator(t *testing.T) {
	emulator := map[string]string{"MOMENTO_EMULATOR_HOST": "127.0.0.1:9"}
	with := func(m, extra map[string]string) map[string]string {
		out := withKey(m)
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name                   string
		env                    map[string]string
		wantMargin, wantCache  time.Duration
		wantErr, wantErrNotSub string
	}{
		{name: "12s with the emulator", env: with(emulator, map[string]string{"TOKEN_TTL": "12s"}),
			wantMargin: time.Second, wantCache: 11 * time.Second},
		{name: "6s with the emulator", env: with(emulator, map[string]string{"TOKEN_TTL": "6s"}),
			wantMargin: 500 * time.Millisecond, wantCache: 5500 * time.Millisecond},
		{name: "2m with the emulator and CACHE_TTL", env: with(emulator, map[string]string{"TOKEN_TTL": "2m", "CACHE_TTL": "2s"}),
			wantMargin: 10 * time.Second, wantCache: 2 * time.Second},
		{name: "1h with the emulator keeps the deployed margin", env: with(emulator, map[string]string{"TOKEN_TTL": "1h"}),
			wantMargin: 5 * time.Minute, wantCache: 55 * time.Minute},
		{name: "6m with the emulator keeps the deployed margin", env: with(emulator, map[string]string{"TOKEN_TTL": "6m"}),
			wantMargin: 5 * time.Minute, wantCache: time.Minute},
		{name: "12s deployed", env: withKey(map[string]string{"TOKEN_TTL": "12s"}),
			wantErr: "TOKEN_TTL must be from 6m (the 5m refresh margin plus a minute of caching) to 1h, got 12s", wantErrNotSub: "EMULATOR"},
		{name: "5s with the emulator", env: with(emulator, map[string]string{"TOKEN_TTL": "5s"}),
			wantErr: "TOKEN_TTL must be from 6m (the 5m refresh margin plus a minute of caching) to 1h, or from 6s with MOMENTO_EMULATOR_HOST set, got 5s"},
		{name: "cache ttl under a sixtieth", env: with(emulator, map[string]string{"TOKEN_TTL": "12s", "CACHE_TTL": "100ms"}),
			wantErr: "CACHE_TTL must be at least 200ms, got 100ms"},
		{name: "cache ttl within the scaled margin", env: with(emulator, map[string]string{"TOKEN_TTL": "12s", "CACHE_TTL": "11500ms"}),
			wantErr: "CACHE_TTL must be at most TOKEN_TTL minus the 1s refresh margin (11s), got 11.5s"},
		{name: "cache ttl deployed still at least 1m", env: withKey(map[string]string{"CACHE_TTL": "59s"}),
			wantErr: "CACHE_TTL must be at least 1m, got 59s"},
		{name: "cache ttl deployed within the margin", env: withKey(map[string]string{"TOKEN_TTL": "1h", "CACHE_TTL": "56m"}),
			wantErr: "CACHE_TTL must be at most TOKEN_TTL minus the 5m0s refresh margin (55m0s), got 56m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(env(tt.env))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("FromEnv(%v) = %v, want the error %q", tt.env, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Margin != tt.wantMargin || got.CacheTTL != tt.wantCache {
				t.Errorf("FromEnv(%v) = margin %v, CACHE_TTL %v, %v; want %v and %v", tt.env, got.Margin, got.CacheTTL, err, tt.wantMargin, tt.wantCache)
			}
		})
	}
}

// TestVariablesListsEveryVariableRead checks Variables and Deprecated
// against the variables FromEnv actually asks for.
func TestVariablesListsEveryVariableRead(t *testing.T) {
	asked := map[string]bool{}
	FromEnv(func(name string) string { asked[name] = true; return "" })
	for _, v := range slices.Concat(Variables, Deprecated) {
		if !asked[v] {
			t.Errorf("Variables lists %s, which FromEnv does not read", v)
		}
		delete(asked, v)
	}
	for v := range asked {
		t.Errorf("FromEnv reads %s, which Variables does not list", v)
	}
}

// TestDeprecatedVariables: a deploy that sets an old limit variable or a
// retired tuning knob still starts, for this release, with the variable's
// effect where it has one, and Config.Deprecated names it.
func TestDeprecatedVariables(t *testing.T) {
	tests := []struct {
		variable, value string
		want            func(c *Config)
	}{
		{"MINT_RATE", "0.5", func(c *Config) { c.MintRate = 0.5 }},
		{"MINT_RATE", "100", func(c *Config) {}}, // only lowers the fallback
		{"MINT_BURST", "2", func(c *Config) { c.MintBurst = 2 }},
		{"LOOKUP_RATE", "50", func(c *Config) { c.LookupRate = 50 }},
		{"LOOKUP_BURST", "5000", func(c *Config) { c.LookupBurst = 5000 }},
		{"NETWORK_MINT_RATE", "0.5", func(c *Config) {}},
		{"NETWORK_MINT_BURST", "3", func(c *Config) {}},
		{"NETWORK_LOOKUP_RATE", "7", func(c *Config) { c.NetworkLookupRate = 7 }},
		{"NETWORK_LOOKUP_BURST", "70", func(c *Config) { c.NetworkLookupBurst = 70 }},
		{"CACHE_TTL", "30m", func(c *Config) { c.CacheTTL = 30 * time.Minute }},
		{"UPSTREAM_TIMEOUT", "5s", func(c *Config) { c.UpstreamTimeout = 5 * time.Second }},
		{"L1_MAX_ENTRIES", "0", func(c *Config) { c.L1MaxEntries = 0 }},
		{"L1_MAX_BYTES", "1024", func(c *Config) { c.L1MaxBytes = 1024 }},
	}
	for _, tt := range tests {
		t.Run(tt.variable+"="+tt.value, func(t *testing.T) {
			got, err := FromEnv(env(withKey(map[string]string{tt.variable: tt.value})))
			if err != nil {
				t.Fatalf("FromEnv(%s=%s) = %v, want no error", tt.variable, tt.value, err)
			}
			if len(got.Deprecated) != 1 || got.Deprecated[0].Variable != tt.variable || got.Deprecated[0].Instead == "" {
				t.Errorf("FromEnv(%s=%s).Deprecated = %+v, want one naming it and its replacement", tt.variable, tt.value, got.Deprecated)
			}
			want := defaults()
			tt.want(&want)
			got.Deprecated = nil
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("FromEnv(%s=%s) mismatch (-want +got):\n%s", tt.variable, tt.value, diff)
			}
		})
	}
}
