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
