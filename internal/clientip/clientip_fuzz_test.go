package clientip

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzResolve checks Resolve's invariants on arbitrary input, and checks its
// allocation-free scan against a naive join-and-split reference. The header
// argument is split on newlines into header lines; "" means no header.
func FuzzResolve(f *testing.F) {
	f.Add("", "10.0.0.1:41234", 1)
	f.Add("1.1.1.1, 203.0.113.7", "10.0.0.1:41234", 1)
	f.Add("spoof, 198.51.100.9, 35.191.0.1", "10.0.0.1:41234", 2)
	f.Add("spoof, 198.51.100.9\n35.191.0.1", "10.0.0.1:41234", 2)
	f.Add("[2001:db8:1:2::1]:443", "[2001:db8::1]:80", 1)
	f.Add("unknown", "pipe", 1)
	f.Add(",,", "10.0.0.1", 0)
	f.Add("fe80::1%eth0, ::ffff:203.0.113.7", "", -1)

	f.Fuzz(func(t *testing.T, header, remote string, trusted int) {
		var forwarded []string
		if header != "" {
			forwarded = strings.Split(header, "\n")
		}
		got := Resolve(forwarded, remote, trusted)

		switch got.Source {
		case None, Forwarded, Remote:
		default:
			t.Fatalf("Resolve(%q, %q, %d) = %+v, want a known Source", forwarded, remote, trusted, got)
		}
		if (got.Key == "") != (got.Source == None) {
			t.Errorf("Resolve(%q, %q, %d) = %+v, want empty Key iff Source is None", forwarded, remote, trusted, got)
		}
		if got.Key != "" {
			if err := checkCanonical(got.Key); err != "" {
				t.Errorf("Resolve(%q, %q, %d) = %+v: key %s", forwarded, remote, trusted, got, err)
			} else if want := prefixOfKey(t, got.Key); got.Client != want {
				t.Errorf("Resolve(%q, %q, %d).Client = %v, want %v, the client its key names", forwarded, remote, trusted, got.Client, want)
			}
		}
		if got.Rejected && strings.Trim(header, " \t\n") == "" {
			t.Errorf("Resolve(%q, %q, %d) = %+v, want Rejected only with a non-blank header", forwarded, remote, trusted, got)
		}
		if got.Rejected && got.Source == Forwarded {
			t.Errorf("Resolve(%q, %q, %d) = %+v, want no Rejected key from the header", forwarded, remote, trusted, got)
		}
		if got.Source == Remote {
			if want := Resolve(nil, remote, 1).Key; got.Key != want {
				t.Errorf("Resolve(%q, %q, %d).Key = %q, want %q, the key of the remote address", forwarded, remote, trusted, got.Key, want)
			}
		}

		want := resolveNaive(forwarded, remote, trusted)
		if diff := cmp.Diff(want, got, equalPrefixes); diff != "" {
			t.Errorf("Resolve(%q, %q, %d) differs from the naive reference (-want +got):\n%s", forwarded, remote, trusted, diff)
		}
	})
}

// checkCanonical returns what is wrong with key, or "" if it is a canonical
// IPv4 address or a canonical, masked IPv6 /64 prefix.
func checkCanonical(key string) string {
	if strings.Contains(key, "/") {
		p, err := netip.ParsePrefix(key)
		switch {
		case err != nil:
			return "does not parse as a prefix: " + err.Error()
		case p.String() != key:
			return "is not canonical, want " + p.String()
		case !p.Addr().Is6() || p.Addr().Is4In6():
			return "is a prefix of a non-IPv6 address"
		case p.Bits() != 64:
			return "is not a /64"
		case p.Masked() != p:
			return "is not masked"
		}
		return ""
	}
	a, err := netip.ParseAddr(key)
	switch {
	case err != nil:
		return "does not parse as an address: " + err.Error()
	case a.String() != key:
		return "is not canonical, want " + a.String()
	case !a.Is4():
		return "is an address but not IPv4"
	}
	return ""
}

// resolveNaive is Resolve written as rules 1 to 3 of its contract read,
// joining and splitting the whole header.
func resolveNaive(forwarded []string, remoteAddr string, trustedProxies int) Result {
	var res Result
	if !allBlank(forwarded) {
		entries := strings.Split(strings.Join(forwarded, ","), ",")
		i := len(entries) - max(trustedProxies, 1)
		if i < 0 {
			i = 0
		}
		if client, key, ok := keyOf(entries[i]); ok {
			return Result{Key: key, Client: client, Source: Forwarded}
		}
		res.Rejected = true
	}
	if client, key, ok := keyOf(remoteAddr); ok {
		res.Key, res.Client, res.Source = key, client, Remote
	}
	return res
}

// allBlank reports whether lines holds only spaces and tabs.
func allBlank(lines []string) bool {
	for _, l := range lines {
		if strings.Trim(l, " \t") != "" {
			return false
		}
	}
	return true
}
