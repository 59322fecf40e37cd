// Package clientip derives the key a request's client is known by from the
// X-Forwarded-For header written by trusted proxies and the connection's
// remote address.
//
// Every proxy in front of the server appends the address it saw to the right
// of X-Forwarded-For; entries to the left of those are whatever the caller
// wrote and cannot be trusted. [Resolve] therefore counts from the right:
// behind one trusted proxy (a Cloud Function behind Google's front end) it
// uses the rightmost entry, behind two the second from the right, and so on.
//
// An IPv4 client is keyed by its address and an IPv6 client by its /64
// prefix, because one household or phone rotates addresses inside its /64:
//
//	res := clientip.Resolve(r.Header.Values("X-Forwarded-For"), r.RemoteAddr, 1)
//	if res.Source == clientip.None {
//		// No usable address: refuse the request.
//	}
//	// res.Key is "203.0.113.7" or "2001:db8:1:2::/64"; res.Client is the
//	// same client as a netip.Prefix (203.0.113.7/32, 2001:db8:1:2::/64).
//
// # Cost
//
// Resolve does not split or copy the header, so a header with thousands of
// commas costs no more allocations than one with two entries. It scans the
// lines from the right, with [strings.LastIndexByte], only as far as the
// chosen entry; the whole header is scanned only when it has fewer entries
// than there are trusted proxies, or is blank. Its time is thus linear in the
// header's length, which the HTTP server bounds (net/http's MaxHeaderBytes,
// 1 MB by default). Only the chosen entry and the remote address are parsed,
// and either is rejected unparsed if longer than 64 bytes. A resolved key
// costs one allocation, the key itself; a rejected entry costs a few more for
// the parser's error, whatever the header's size.
package clientip

import (
	"fmt"
	"net/netip"
	"strings"
)

// maxEntryLen is the longest entry, after trimming surrounding spaces and
// tabs, that Resolve tries to parse. The longest address with a port,
// "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", is 53 bytes; the
// rest leaves room for a short IPv6 zone. Anything longer is junk.
const maxEntryLen = 64

// ipv6KeyBits is the length of the prefix that keys an IPv6 client.
const ipv6KeyBits = 64

// Source says where a Result's key came from.
type Source int

const (
	// None means neither the header nor the remote address held a usable
	// address. It is the zero value.
	None Source = iota
	// Forwarded means the key came from the X-Forwarded-For header.
	Forwarded
	// Remote means the key came from the connection's remote address.
	Remote
)

// String returns "none", "forwarded" or "remote".
func (s Source) String() string {
	switch s {
	case None:
		return "none"
	case Forwarded:
		return "forwarded"
	case Remote:
		return "remote"
	}
	return fmt.Sprintf("Source(%d)", int(s))
}

// Result is the outcome of Resolve.
type Result struct {
	// Key is the canonical client key: an IPv4 address such as
	// "203.0.113.7", or an IPv6 /64 prefix such as "2001:db8:1:2::/64".
	// It is "" when Source is None.
	Key string
	// Client is the same client as a prefix, for code that groups clients
	// into networks: an IPv4 address as its /32, an IPv6 client as its
	// /64. It is the zero Prefix when Source is None.
	Client netip.Prefix
	// Source says where Key came from.
	Source Source
	// Rejected reports that X-Forwarded-For was present but the entry chosen
	// from it did not parse as an IP address, so it was not used. Callers log
	// this; Result never carries the raw header text.
	Rejected bool
}

// Resolve returns the client key for a request whose X-Forwarded-For header
// lines are forwarded (as from r.Header.Values("X-Forwarded-For")) and whose
// connection address is remoteAddr (r.RemoteAddr), behind trustedProxies
// proxies that each append to the header.
//
// The lines are read as one comma-separated list, as if joined with commas,
// and every position counts, even an empty one. Resolve chooses the entry
// trustedProxies from the right, or the leftmost entry if there are fewer;
// a trustedProxies below 1 counts as 1. If the header is absent (no lines,
// or only spaces and tabs), Resolve uses remoteAddr. If the chosen entry is
// not an IP address, Resolve sets Rejected and uses remoteAddr. If remoteAddr
// is not an IP address either, the Result has Source None.
//
// An entry or remoteAddr may carry surrounding spaces and tabs, a port
// ("203.0.113.7:5678", "[2001:db8::1]:443"), brackets without a port
// ("[2001:db8::1]") and an IPv6 zone ("fe80::1%eth0"), which is dropped. An
// IPv4-mapped IPv6 address ("::ffff:203.0.113.7") is keyed as IPv4.
// Hostnames, "unknown", obfuscated identifiers, CIDR prefixes and entries
// longer than 64 bytes are rejected.
func Resolve(forwarded []string, remoteAddr string, trustedProxies int) Result {
	var res Result
	if entry, ok := choose(forwarded, max(trustedProxies, 1)); ok {
		if client, key, ok := keyOf(entry); ok {
			return Result{Key: key, Client: client, Source: Forwarded}
		}
		res.Rejected = true
	}
	if client, key, ok := keyOf(remoteAddr); ok {
		res.Key, res.Client, res.Source = key, client, Remote
	}
	return res
}

// choose returns the entry n positions from the right of the comma-separated
// list formed by joining lines with commas, or the leftmost entry if the list
// has fewer than n entries. It reports false if the header is absent: no
// lines, or only spaces and tabs. n must be at least 1.
//
// choose neither allocates nor looks further left than the chosen entry,
// except to find the leftmost entry of a list that is too short.
func choose(lines []string, n int) (string, bool) {
	if blank(lines) {
		return "", false
	}
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for {
			comma := strings.LastIndexByte(line, ',')
			n--
			if n == 0 {
				return line[comma+1:], true
			}
			if comma < 0 {
				break
			}
			line = line[:comma]
		}
	}
	first, _, _ := strings.Cut(lines[0], ",")
	return first, true
}

// blank reports whether lines holds nothing but spaces and tabs.
func blank(lines []string) bool {
	for _, line := range lines {
		if trimOWS(line) != "" {
			return false
		}
	}
	return true
}

// trimOWS trims the spaces and tabs HTTP allows around a list element.
func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}

// keyOf parses s as an IP address, as described at Resolve, and returns the
// client it names as a prefix and its canonical key. It reports false if s
// is not an IP address.
func keyOf(s string) (netip.Prefix, string, bool) {
	addr, ok := parseAddr(s)
	if !ok {
		return netip.Prefix{}, "", false
	}
	if addr.Is4() {
		return netip.PrefixFrom(addr, addr.BitLen()), addr.String(), true
	}
	// addr is IPv6 without a zone, so Prefix cannot fail; it masks the
	// host bits, so the key is canonical.
	p, err := addr.Prefix(ipv6KeyBits)
	if err != nil {
		return netip.Prefix{}, "", false
	}
	// Prefix.String allocates twice; appending to a buffer on the stack
	// allocates only the key.
	var buf [len("ffff:ffff:ffff:ffff::/64")]byte
	return p, string(p.AppendTo(buf[:0])), true
}

// parseAddr parses s as an IP address, optionally surrounded by spaces and
// tabs, with or without brackets and a port. It drops an IPv6 zone and unmaps
// an IPv4-mapped IPv6 address.
func parseAddr(s string) (netip.Addr, bool) {
	s = trimOWS(s)
	if s == "" || len(s) > maxEntryLen {
		return netip.Addr{}, false
	}
	// Choose the one parser that fits, so that a valid address is parsed
	// once: unbracketed IPv6 has at least two colons, IPv4 none, and
	// IPv4 with a port exactly one.
	var addr netip.Addr
	switch {
	case s[0] == '[' && s[len(s)-1] == ']':
		// Brackets without a port. As with a port, only IPv6 may be
		// bracketed.
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
		addr = a
	case s[0] == '[' || strings.Count(s, ":") == 1:
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		addr = ap.Addr()
	default:
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, false
		}
		addr = a
	}
	return addr.WithZone("").Unmap(), true
}
