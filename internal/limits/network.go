package limits

import (
	"net/netip"
	"strings"
)

// The prefix lengths that group clients (a client itself is an IPv4
// address or an IPv6 /64: internal/clientip): a network, what one site is
// usually given, and a provider block, often one provider's (carrier NAT,
// an ISP).
const (
	// IPv4NetworkBits is the length of an IPv4 network: a /24.
	IPv4NetworkBits = 24
	// IPv6NetworkBits is the length of an IPv6 network: a /48, which holds
	// 65,536 /64s.
	IPv6NetworkBits = 48
	// IPv4ProviderBits is the length of an IPv4 provider block: a /16.
	IPv4ProviderBits = 16
	// IPv6ProviderBits is the length of an IPv6 provider block: a /32, the
	// least a registry allocates to an ISP.
	IPv6ProviderBits = 32
)

// Network returns the network addr belongs to: its /24 if it is IPv4 (or
// IPv4-mapped IPv6), its /48 if it is IPv6. A zone is dropped. It returns the
// zero Prefix if addr is not valid. It does not allocate, so its result
// can key a [Keyed] directly.
func Network(addr netip.Addr) netip.Prefix {
	if !addr.IsValid() {
		return netip.Prefix{}
	}
	addr = addr.WithZone("").Unmap()
	bits := IPv6NetworkBits
	if addr.Is4() {
		bits = IPv4NetworkBits
	}
	p, _ := addr.Prefix(bits) // cannot fail: addr is valid, zoneless, bits in range
	return p
}

// NetworkOfKey returns the network of a client key in the form
// internal/clientip makes: an IPv4 address ("203.0.113.7") or an IPv6 prefix
// of at least 48 bits ("2001:db8:1:2::/64"). It reports false for anything
// else. It does not allocate.
func NetworkOfKey(key string) (netip.Prefix, bool) {
	if strings.IndexByte(key, '/') < 0 {
		addr, err := netip.ParseAddr(key)
		if err != nil || addr.Zone() != "" {
			return netip.Prefix{}, false
		}
		return Network(addr), true
	}
	p, err := netip.ParsePrefix(key)
	if err != nil {
		return netip.Prefix{}, false
	}
	addr := p.Addr()
	if addr.Is4In6() {
		// ParsePrefix keeps a mapped address as IPv6, where its bits do
		// not measure an IPv4 network; clientip never writes one.
		return netip.Prefix{}, false
	}
	need := IPv6NetworkBits
	if addr.Is4() {
		need = IPv4NetworkBits
	}
	if p.Bits() < need {
		return netip.Prefix{}, false
	}
	return Network(addr), true
}
