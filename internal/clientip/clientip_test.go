package clientip

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResolve(t *testing.T) {
	const remote = "10.0.0.1:41234"
	fromRemote := Result{Key: "10.0.0.1", Source: Remote}
	rejected := Result{Key: "10.0.0.1", Source: Remote, Rejected: true}
	long := strings.Repeat("1", 1000) + ".2.3.4"

	tests := []struct {
		name      string
		forwarded []string
		remote    string
		trusted   int
		want      Result
	}{
		// Header absent.
		{name: "no header", forwarded: nil, remote: remote, trusted: 1, want: fromRemote},
		{name: "no lines", forwarded: []string{}, remote: remote, trusted: 1, want: fromRemote},
		{name: "empty line", forwarded: []string{""}, remote: remote, trusted: 1, want: fromRemote},
		{name: "blank lines", forwarded: []string{"  ", "\t"}, remote: remote, trusted: 1, want: fromRemote},
		{name: "no header, IPv6 remote", forwarded: nil, remote: "[2001:db8:1:2::7]:443", trusted: 1, want: Result{Key: "2001:db8:1:2::/64", Source: Remote}},

		// Choosing the entry.
		{name: "single entry", forwarded: []string{"203.0.113.7"}, remote: remote, trusted: 1, want: Result{Key: "203.0.113.7", Source: Forwarded}},
		{name: "spoofed leftmost ignored", forwarded: []string{"1.1.1.1, 203.0.113.7"}, remote: remote, trusted: 1, want: Result{Key: "203.0.113.7", Source: Forwarded}},
		{name: "many spoofed entries ignored", forwarded: []string{"1.1.1.1, 8.8.8.8,9.9.9.9 ,  203.0.113.7"}, remote: remote, trusted: 1, want: Result{Key: "203.0.113.7", Source: Forwarded}},
		{name: "two trusted proxies", forwarded: []string{"spoof, 198.51.100.9, 35.191.0.1"}, remote: remote, trusted: 2, want: Result{Key: "198.51.100.9", Source: Forwarded}},
		{name: "three trusted proxies", forwarded: []string{"spoof, 198.51.100.9, 35.191.0.1, 130.211.0.1"}, remote: remote, trusted: 3, want: Result{Key: "198.51.100.9", Source: Forwarded}},
		{name: "fewer entries than trusted", forwarded: []string{"198.51.100.9, 35.191.0.1"}, remote: remote, trusted: 3, want: Result{Key: "198.51.100.9", Source: Forwarded}},
		{name: "one entry, two trusted", forwarded: []string{"198.51.100.9"}, remote: remote, trusted: 2, want: Result{Key: "198.51.100.9", Source: Forwarded}},
		{name: "fewer entries than trusted, junk leftmost", forwarded: []string{"unknown, 35.191.0.1"}, remote: remote, trusted: 5, want: rejected},
		{name: "trusted zero counts as one", forwarded: []string{"1.1.1.1, 203.0.113.7"}, remote: remote, trusted: 0, want: Result{Key: "203.0.113.7", Source: Forwarded}},
		{name: "trusted negative counts as one", forwarded: []string{"1.1.1.1, 203.0.113.7"}, remote: remote, trusted: -3, want: Result{Key: "203.0.113.7", Source: Forwarded}},

		// Multiple header lines form one list.
		{name: "two lines", forwarded: []string{"1.1.1.1", "203.0.113.7"}, remote: remote, trusted: 1, want: Result{Key: "203.0.113.7", Source: Forwarded}},
		{name: "two lines, two trusted", forwarded: []string{"spoof, 198.51.100.9", "35.191.0.1"}, remote: remote, trusted: 2, want: Result{Key: "198.51.100.9", Source: Forwarded}},
		{name: "two lines, chosen in first line", forwarded: []string{"spoof, 198.51.100.9", "35.191.0.1, 130.211.0.1"}, remote: remote, trusted: 3, want: Result{Key: "198.51.100.9", Source: Forwarded}},
		{name: "two lines, fewer than trusted", forwarded: []string{"198.51.100.9, 1.1.1.1", "35.191.0.1"}, remote: remote, trusted: 9, want: Result{Key: "198.51.100.9", Source: Forwarded}},
		{name: "empty last line is an entry", forwarded: []string{"203.0.113.7", ""}, remote: remote, trusted: 1, want: rejected},
		{name: "empty first line is an entry", forwarded: []string{"", "203.0.113.7"}, remote: remote, trusted: 2, want: rejected},

		// Normalisation.
		{name: "IPv4 with port", forwarded: []string{"203.0.113.7:5678"}, remote: remote, trusted: 1, want: Result{Key: "203.0.113.7", Source: Forwarded}},
		{name: "tabs and spaces", forwarded: []string{"1.1.1.1,\t 203.0.113.7 \t"}, remote: remote, trusted: 1, want: Result{Key: "203.0.113.7", Source: Forwarded}},
		{name: "IPv6", forwarded: []string{"2001:db8:1:2:3:4:5:6"}, remote: remote, trusted: 1, want: Result{Key: "2001:db8:1:2::/64", Source: Forwarded}},
		{name: "IPv6 upper case", forwarded: []string{"2001:DB8:0:0:ABCD::1"}, remote: remote, trusted: 1, want: Result{Key: "2001:db8::/64", Source: Forwarded}},
		{name: "IPv6 bracketed", forwarded: []string{"[2001:db8:1:2::1]"}, remote: remote, trusted: 1, want: Result{Key: "2001:db8:1:2::/64", Source: Forwarded}},
		{name: "IPv6 bracketed with port", forwarded: []string{"[2001:db8:1:2::1]:443"}, remote: remote, trusted: 1, want: Result{Key: "2001:db8:1:2::/64", Source: Forwarded}},
		{name: "IPv6 with port, no brackets, reads as address", forwarded: []string{"2001:db8:1:2::1:443"}, remote: remote, trusted: 1, want: Result{Key: "2001:db8:1:2::/64", Source: Forwarded}},
		{name: "IPv6 zone", forwarded: []string{"fe80::1%eth0"}, remote: remote, trusted: 1, want: Result{Key: "fe80::/64", Source: Forwarded}},
		{name: "IPv6 zone bracketed with port", forwarded: []string{"[fe80::1:2%eth0]:80"}, remote: remote, trusted: 1, want: Result{Key: "fe80::/64", Source: Forwarded}},
		{name: "IPv4-mapped IPv6", forwarded: []string{"::ffff:203.0.113.7"}, remote: remote, trusted: 1, want: Result{Key: "203.0.113.7", Source: Forwarded}},
		{name: "IPv4-mapped IPv6 hex", forwarded: []string{"::ffff:cb00:7107"}, remote: remote, trusted: 1, want: Result{Key: "203.0.113.7", Source: Forwarded}},
		{name: "IPv4-mapped IPv6 bracketed with port", forwarded: []string{"[::ffff:203.0.113.7]:443"}, remote: remote, trusted: 1, want: Result{Key: "203.0.113.7", Source: Forwarded}},
		{name: "IPv4-mapped IPv6 with zone", forwarded: []string{"::ffff:203.0.113.7%eth0"}, remote: remote, trusted: 1, want: Result{Key: "203.0.113.7", Source: Forwarded}},
		{name: "longest address with port", forwarded: []string{"[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535"}, remote: remote, trusted: 1, want: Result{Key: "ffff:ffff:ffff:ffff::/64", Source: Forwarded}},

		// Junk in the chosen position.
		{name: "unknown", forwarded: []string{"unknown"}, remote: remote, trusted: 1, want: rejected},
		{name: "spaces with a comma", forwarded: []string{"  ,  "}, remote: remote, trusted: 1, want: rejected},
		{name: "five octets", forwarded: []string{"1.2.3.4.5"}, remote: remote, trusted: 1, want: rejected},
		{name: "octet out of range", forwarded: []string{"1.2.3.256"}, remote: remote, trusted: 1, want: rejected},
		{name: "leading zero octet", forwarded: []string{"010.0.0.1"}, remote: remote, trusted: 1, want: rejected},
		{name: "integer address", forwarded: []string{"3405803783"}, remote: remote, trusted: 1, want: rejected},
		{name: "hex address", forwarded: []string{"0xcb.0.113.7"}, remote: remote, trusted: 1, want: rejected},
		{name: "hostname", forwarded: []string{"client.example.com"}, remote: remote, trusted: 1, want: rejected},
		{name: "hostname with port", forwarded: []string{"localhost:80"}, remote: remote, trusted: 1, want: rejected},
		{name: "obfuscated identifier", forwarded: []string{"_hidden"}, remote: remote, trusted: 1, want: rejected},
		{name: "CIDR", forwarded: []string{"203.0.113.0/24"}, remote: remote, trusted: 1, want: rejected},
		{name: "IPv6 CIDR", forwarded: []string{"2001:db8::/64"}, remote: remote, trusted: 1, want: rejected},
		{name: "Forwarded header syntax", forwarded: []string{`for="[2001:db8::1]"`}, remote: remote, trusted: 1, want: rejected},
		{name: "empty chosen entry", forwarded: []string{"203.0.113.7,"}, remote: remote, trusted: 1, want: rejected},
		{name: "empty chosen entry, two trusted", forwarded: []string{"203.0.113.7,,35.191.0.1"}, remote: remote, trusted: 2, want: rejected},
		{name: "empty entries count", forwarded: []string{"203.0.113.7,,,"}, remote: remote, trusted: 3, want: rejected},
		{name: "only commas", forwarded: []string{",,,"}, remote: remote, trusted: 1, want: rejected},
		{name: "spoofed entry not used after junk", forwarded: []string{"203.0.113.7, unknown"}, remote: remote, trusted: 1, want: rejected},
		{name: "IPv4 bracketed", forwarded: []string{"[203.0.113.7]"}, remote: remote, trusted: 1, want: rejected},
		{name: "IPv4 bracketed with port", forwarded: []string{"[203.0.113.7]:80"}, remote: remote, trusted: 1, want: rejected},
		{name: "IPv6 bad group", forwarded: []string{"2001:db8::1:443x"}, remote: remote, trusted: 1, want: rejected},
		{name: "IPv4 zone", forwarded: []string{"203.0.113.7%eth0"}, remote: remote, trusted: 1, want: rejected},
		{name: "empty zone", forwarded: []string{"fe80::1%"}, remote: remote, trusted: 1, want: rejected},
		{name: "port out of range", forwarded: []string{"203.0.113.7:65536"}, remote: remote, trusted: 1, want: rejected},
		{name: "empty port", forwarded: []string{"203.0.113.7:"}, remote: remote, trusted: 1, want: rejected},
		{name: "unclosed bracket", forwarded: []string{"[2001:db8::1"}, remote: remote, trusted: 1, want: rejected},
		{name: "empty brackets", forwarded: []string{"[]"}, remote: remote, trusted: 1, want: rejected},
		{name: "inner space", forwarded: []string{"203.0.113 .7"}, remote: remote, trusted: 1, want: rejected},
		{name: "newline", forwarded: []string{"203.0.113.7\n"}, remote: remote, trusted: 1, want: rejected},
		{name: "very long entry", forwarded: []string{long}, remote: remote, trusted: 1, want: rejected},
		{name: "64-byte entry", forwarded: []string{"\t [ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%abcdefghij]:65535 \t"}, remote: remote, trusted: 1, want: Result{Key: "ffff:ffff:ffff:ffff::/64", Source: Forwarded}},
		{name: "65-byte entry", forwarded: []string{"[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%abcdefghijk]:65535"}, remote: remote, trusted: 1, want: rejected},
		{name: "long zone", forwarded: []string{"fe80::1%" + strings.Repeat("z", 60)}, remote: remote, trusted: 1, want: rejected},
		{name: "very long header", forwarded: []string{strings.Repeat("1.1.1.1,", 10000) + "junk"}, remote: remote, trusted: 1, want: rejected},
		{name: "many commas", forwarded: []string{strings.Repeat(",", 10000) + "203.0.113.7"}, remote: remote, trusted: 1, want: Result{Key: "203.0.113.7", Source: Forwarded}},
		{name: "non-UTF-8", forwarded: []string{"\xff\xfe"}, remote: remote, trusted: 1, want: rejected},

		// Remote address.
		{name: "remote without port", forwarded: nil, remote: "10.0.0.1", trusted: 1, want: fromRemote},
		{name: "remote IPv6 without port", forwarded: nil, remote: "2001:db8:1:2::7", trusted: 1, want: Result{Key: "2001:db8:1:2::/64", Source: Remote}},
		{name: "remote IPv4-mapped", forwarded: nil, remote: "[::ffff:10.0.0.1]:41234", trusted: 1, want: fromRemote},
		{name: "unparsable remote", forwarded: nil, remote: "pipe", trusted: 1, want: Result{}},
		{name: "empty remote", forwarded: nil, remote: "", trusted: 1, want: Result{}},
		{name: "junk header, unparsable remote", forwarded: []string{"unknown"}, remote: "@", trusted: 1, want: Result{Rejected: true}},
		{name: "good header, unparsable remote", forwarded: []string{"203.0.113.7"}, remote: "", trusted: 1, want: Result{Key: "203.0.113.7", Source: Forwarded}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Resolve(tt.forwarded, tt.remote, tt.trusted)
			tt.want.Client = prefixOfKey(t, tt.want.Key)
			if diff := cmp.Diff(tt.want, got, equalPrefixes); diff != "" {
				t.Errorf("Resolve(%q, %q, %d) mismatch (-want +got):\n%s", tt.forwarded, tt.remote, tt.trusted, diff)
			}
		})
	}
}

func TestResolveIPv6Grouping(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{name: "same address", a: "2001:db8:1:2::1", b: "2001:db8:1:2::1", same: true},
		{name: "same /64", a: "2001:db8:1:2::1", b: "2001:db8:1:2:ffff:ffff:ffff:ffff", same: true},
		{name: "same /64, one with port", a: "2001:db8:1:2:a:b:c:d", b: "[2001:db8:1:2::9]:443", same: true},
		{name: "adjacent /64", a: "2001:db8:1:2::1", b: "2001:db8:1:3::1", same: false},
		{name: "different /48", a: "2001:db8:1:2::1", b: "2001:db8:2:2::1", same: false},
		{name: "IPv4 and its mapped form", a: "203.0.113.7", b: "::ffff:203.0.113.7", same: true},
		{name: "neighbouring IPv4", a: "203.0.113.7", b: "203.0.113.8", same: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ra := Resolve([]string{tt.a}, "", 1)
			rb := Resolve([]string{tt.b}, "", 1)
			if ra.Source != Forwarded || rb.Source != Forwarded {
				t.Fatalf("Resolve(%q) = %+v, Resolve(%q) = %+v, want both from %v", tt.a, ra, tt.b, rb, Forwarded)
			}
			if got := ra.Key == rb.Key; got != tt.same {
				t.Errorf("keys %q (for %q) and %q (for %q) equal = %t, want %t", ra.Key, tt.a, rb.Key, tt.b, got, tt.same)
			}
		})
	}
}

// TestResolveAllocs checks the bound documented in the package comment: the
// cost of Resolve does not grow with the number of entries in the header.
func TestResolveAllocs(t *testing.T) {
	tests := []struct {
		name      string
		forwarded []string
		trusted   int
		want      float64
	}{
		{name: "typical", forwarded: []string{"1.1.1.1, 203.0.113.7"}, trusted: 1, want: 1},
		{name: "IPv6", forwarded: []string{"1.1.1.1, 2001:db8:1:2::1"}, trusted: 1, want: 1},
		{name: "10000 commas", forwarded: []string{strings.Repeat(",", 10000) + "203.0.113.7"}, trusted: 1, want: 1},
		{name: "10000 commas, too few for trusted", forwarded: []string{"203.0.113.7" + strings.Repeat(",", 10000)}, trusted: 1 << 20, want: 1},
		{name: "10000 lines", forwarded: append(make([]string, 10000), "203.0.113.7"), trusted: 1, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := testing.AllocsPerRun(100, func() {
				Resolve(tt.forwarded, "10.0.0.1:41234", tt.trusted)
			})
			if got > tt.want {
				t.Errorf("Resolve allocations = %v, want at most %v", got, tt.want)
			}
		})
	}
}

func TestSourceString(t *testing.T) {
	tests := []struct {
		name string
		s    Source
		want string
	}{
		{name: "none", s: None, want: "none"},
		{name: "forwarded", s: Forwarded, want: "forwarded"},
		{name: "remote", s: Remote, want: "remote"},
		{name: "out of range", s: Source(7), want: "Source(7)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.String(); got != tt.want {
				t.Errorf("Source(%d).String() = %q, want %q", int(tt.s), got, tt.want)
			}
		})
	}
}

func BenchmarkResolve(b *testing.B) {
	forwarded := []string{"198.51.100.23, 203.0.113.7"}
	b.ReportAllocs()
	for b.Loop() {
		Resolve(forwarded, "169.254.1.1:41234", 1)
	}
}

// prefixOfKey returns the client a key names, as Result.Client holds it: an
// IPv4 address as its /32, an IPv6 key as its /64; the zero Prefix for "".
func prefixOfKey(t testing.TB, key string) netip.Prefix {
	t.Helper()
	switch {
	case key == "":
		return netip.Prefix{}
	case strings.Contains(key, "/"):
		return netip.MustParsePrefix(key)
	default:
		a := netip.MustParseAddr(key)
		return netip.PrefixFrom(a, 32)
	}
}

// equalPrefixes lets cmp compare netip.Prefix values, whose fields are
// unexported, with ==.
var equalPrefixes = cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })
