package limits

import (
	"net/netip"
	"testing"
)

func TestNetwork(t *testing.T) {
	tests := []struct {
		name string
		addr netip.Addr
		want netip.Prefix
	}{
		{name: "IPv4", addr: netip.MustParseAddr("203.0.113.7"), want: netip.MustParsePrefix("203.0.113.0/24")},
		{name: "IPv4-mapped IPv6", addr: netip.MustParseAddr("::ffff:203.0.113.7"), want: netip.MustParsePrefix("203.0.113.0/24")},
		{name: "IPv6", addr: netip.MustParseAddr("2001:db8:1:2:3:4:5:6"), want: netip.MustParsePrefix("2001:db8:1::/48")},
		{name: "IPv6 with a zone", addr: netip.MustParseAddr("fe80::1%eth0"), want: netip.MustParsePrefix("fe80::/48")},
		{name: "invalid", addr: netip.Addr{}, want: netip.Prefix{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Network(tt.addr); got != tt.want {
				t.Errorf("Network(%v) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}

func TestNetworkOfKey(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		want   netip.Prefix
		wantOK bool
	}{
		{name: "IPv4 key", key: "203.0.113.7", want: netip.MustParsePrefix("203.0.113.0/24"), wantOK: true},
		{name: "IPv6 /64 key", key: "2001:db8:1:2::/64", want: netip.MustParsePrefix("2001:db8:1::/48"), wantOK: true},
		{name: "two /64s of one /48 share it", key: "2001:db8:1:ffff::/64", want: netip.MustParsePrefix("2001:db8:1::/48"), wantOK: true},
		{name: "IPv6 address", key: "2001:db8:1:2::9", want: netip.MustParsePrefix("2001:db8:1::/48"), wantOK: true},
		{name: "IPv6 /48", key: "2001:db8:1::/48", want: netip.MustParsePrefix("2001:db8:1::/48"), wantOK: true},
		{name: "IPv4 /32", key: "203.0.113.7/32", want: netip.MustParsePrefix("203.0.113.0/24"), wantOK: true},
		{name: "IPv6 shorter than /48", key: "2001:db8::/32"},
		{name: "IPv4 shorter than /24", key: "203.0.0.0/16"},
		{name: "mapped prefix", key: "::ffff:203.0.113.7/128"},
		{name: "zone", key: "fe80::1%eth0"},
		{name: "empty", key: ""},
		{name: "junk", key: "unknown"},
		{name: "sub key", key: "ticket:abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := NetworkOfKey(tt.key)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("NetworkOfKey(%q) = %v, %v, want %v, %v", tt.key, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestNetworkOfKeyAllocs(t *testing.T) {
	for _, key := range []string{"203.0.113.7", "2001:db8:1:2::/64"} {
		if allocs := testing.AllocsPerRun(100, func() { NetworkOfKey(key) }); allocs > 0 {
			t.Errorf("NetworkOfKey(%q) allocates %v times, want 0", key, allocs)
		}
	}
}
