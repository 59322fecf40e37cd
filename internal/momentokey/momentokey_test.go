package momentokey

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func jwt(claims string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		enc.EncodeToString([]byte(claims)) + "." + enc.EncodeToString([]byte("signature"))
}

func TestParse(t *testing.T) {
	v1 := base64.StdEncoding.EncodeToString([]byte(`{"api_key":"inner-secret","endpoint":"cell-4-us-west-2-1.prod.a.momentohq.com"}`))
	v2 := jwt(`{"t":"g","id":"abc"}`)
	legacy := jwt(`{"sub":"a@example.com","c":"cache.cell-1.example.com","cp":"control.cell-1.example.com"}`)
	tests := []struct {
		name         string
		raw          string
		kind         Kind
		token        string
		endpoint     string
		needEndpoint bool
	}{
		{name: "v2", raw: v2, kind: V2, token: v2, needEndpoint: true},
		{name: "v1", raw: v1, kind: V1, token: "inner-secret", endpoint: "cell-4-us-west-2-1.prod.a.momentohq.com"},
		{name: "legacy", raw: legacy, kind: Legacy, token: legacy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := Parse(tc.raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if k.Kind() != tc.kind || k.AuthToken() != tc.token || k.Endpoint() != tc.endpoint || k.NeedsEndpoint() != tc.needEndpoint || k.String() != tc.raw {
				t.Errorf("Parse = {%v %q %q needs:%v}, want {%v %q %q needs:%v}",
					k.Kind(), k.AuthToken(), k.Endpoint(), k.NeedsEndpoint(), tc.kind, tc.token, tc.endpoint, tc.needEndpoint)
			}
		})
	}
}

func TestParseRefusesWhatIsNotAKey(t *testing.T) {
	const secret = "s3cr3t-value"
	for name, raw := range map[string]string{
		"empty":                 "",
		"plain text":            secret,
		"base64 of other JSON":  base64.StdEncoding.EncodeToString([]byte(`{"key":"` + secret + `"}`)),
		"v1 without endpoint":   base64.StdEncoding.EncodeToString([]byte(`{"api_key":"` + secret + `"}`)),
		"base64 of text":        base64.StdEncoding.EncodeToString([]byte(secret)),
		"JWT of another kind":   jwt(`{"t":"x","sub":"` + secret + `"}`),
		"JWT with t a number":   jwt(`{"t":1}`),
		"JWT, claims not JSON":  jwt(secret),
		"JWT, claims not b64":   "a." + secret + "!.c",
		"legacy without cp":     jwt(`{"c":"cache.example.com"}`),
		"v2 with spaces around": " " + jwt(`{"t":"g"}`),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(raw)
			if !errors.Is(err, ErrNotAKey) {
				t.Fatalf("Parse(%s) error = %v, want ErrNotAKey", name, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Parse(%s) error quotes the key: %v", name, err)
			}
		})
	}
}

// TestEndpointForms: every form of a cell's endpoint that a user may paste
// dials the same hosts.
func TestEndpointForms(t *testing.T) {
	const cell = "cell-us-east-1-1.prod.a.momentohq.com"
	want := Hosts{
		Cache:   "cache." + cell + ":443",
		Control: "control." + cell + ":443",
		Token:   "token." + cell + ":443",
		Storage: "storage." + cell + ":443",
	}
	for _, in := range []string{
		cell,
		"https://api.cache." + cell,
		"https://api.cache." + cell + "/",
		"https://api.cache." + cell + ":443/",
		"api.cache." + cell,
		"cache." + cell,
		"cache." + cell + ":443",
		"http://" + cell,
		"HTTPS://Cache.CELL-us-east-1-1.prod.a.MomentoHQ.com",
		"  " + cell + "\n",
	} {
		ep, err := NormalizeEndpoint(in)
		if err != nil {
			t.Errorf("NormalizeEndpoint(%q): %v", in, err)
			continue
		}
		if ep != cell {
			t.Errorf("NormalizeEndpoint(%q) = %q, want %q", in, ep, cell)
		}
		if got := HostsOf(ep); got != want {
			t.Errorf("HostsOf(NormalizeEndpoint(%q)) = %+v, want %+v", in, got, want)
		}
	}
}

func TestEndpointRefusals(t *testing.T) {
	for _, in := range []string{
		"",
		"/",
		"momento",                          // one label
		"https://" + "cell.example.com/v1", // a path
		"cell.example.com:8443",            // another port
		"cell.example.com:443:443",
		"10.0.0.1",
		"[::1]",
		"user@cell.example.com",
		"cell..example.com",
		"-cell.example.com",
		"cell_1.example.com",
		"cell.example.com?x=1",
		"ftp://cell.example.com",
		"cell.example.com#frag",
		"cel l.example.com",
		strings.Repeat("a", 64) + ".example.com",
	} {
		if ep, err := NormalizeEndpoint(in); !errors.Is(err, ErrEndpoint) {
			t.Errorf("NormalizeEndpoint(%q) = %q, %v; want ErrEndpoint", in, ep, err)
		}
	}
}
