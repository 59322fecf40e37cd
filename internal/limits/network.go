package limits

import "net/netip"

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
