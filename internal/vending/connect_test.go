package vending

import (
	"errors"
	"testing"

	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/momentotest"
)

// TestProvider: which hosts the SDK dials, and with what, for each kind of
// key and each way of giving an endpoint.
func TestProvider(t *testing.T) {
	fake := momentotest.NewServerT(t)
	v1, v2 := fake.APIKey(), fake.APIKeyV2()
	const cell = "cell-us-east-1-1.prod.a.momentohq.com"
	type hosts struct{ cache, control, token, storage string }
	atCell := hosts{"cache." + cell + ":443", "control." + cell + ":443", "token." + cell + ":443", "storage." + cell + ":443"}
	const own = momentotest.DefaultEndpoint // the endpoint fake's v1 key names
	atOwn := hosts{"cache." + own + ":443", "control." + own + ":443", "token." + own + ":443", "storage." + own + ":443"}
	emu := fake.Addr()
	atEmulator := hosts{emu, emu, emu, emu}

	tests := []struct {
		name     string
		creds    Credentials
		emulator string
		want     hosts
		secure   bool
	}{
		{name: "v2 key with endpoint", creds: Credentials{APIKey: v2, Endpoint: cell}, want: atCell, secure: true},
		{name: "v1 key alone", creds: Credentials{APIKey: v1}, want: atOwn, secure: true},
		{name: "v1 key with endpoint", creds: Credentials{APIKey: v1, Endpoint: cell}, want: atCell, secure: true},
		{name: "v2 key with emulator", creds: Credentials{APIKey: v2}, emulator: emu, want: atEmulator},
		{name: "emulator over endpoint", creds: Credentials{APIKey: v2, Endpoint: cell}, emulator: emu, want: atEmulator},
		{name: "v1 key with emulator", creds: Credentials{APIKey: v1}, emulator: emu, want: atEmulator},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cp, err := Provider(tc.creds, tc.emulator)
			if err != nil {
				t.Fatalf("Provider: %v", err)
			}
			got := hosts{cp.GetCacheEndpoint(), cp.GetControlEndpoint(), cp.GetTokenEndpoint(), cp.GetStorageEndpoint()}
			if got != tc.want {
				t.Errorf("Provider dials %+v, want %+v", got, tc.want)
			}
			if s := cp.IsCacheEndpointSecure(); s != tc.secure || cp.IsTokenEndpointSecure() != tc.secure {
				t.Errorf("Provider: cache endpoint secure = %v, want %v", s, tc.secure)
			}
			// The SDK sends the v2 key itself, and a v1 key's api_key.
			if tok := cp.GetAuthToken(); tok == "" || (tc.creds.APIKey == v2 && tok != v2) || (tc.creds.APIKey == v1 && tok == v1) {
				t.Errorf("Provider's auth token is not what Momento expects for this key")
			}
		})
	}
}

func TestProviderRefusals(t *testing.T) {
	fake := momentotest.NewServerT(t)
	for _, tc := range []struct {
		name  string
		creds Credentials
		want  error
	}{
		{name: "v2 key without endpoint", creds: Credentials{APIKey: fake.APIKeyV2()}, want: ErrNoEndpoint},
		{name: "not a key", creds: Credentials{APIKey: "sekrit-not-a-key", Endpoint: "cell-1.example.com"}, want: ErrBadKey},
		{name: "empty", creds: Credentials{}, want: ErrBadKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Provider(tc.creds, "")
			if !errors.Is(err, tc.want) {
				t.Fatalf("Provider = %v, want %v", err, tc.want)
			}
			if kind, _ := failure.Of(err); kind != failure.Misconfigured {
				t.Errorf("Provider error kind = %v, want Misconfigured (a 500, never a 503 that invites retries)", kind)
			}
		})
	}
}
