// Package clientip finds the address of the client behind a request:
// the peer's, or, when the peer is a trusted proxy (server.trusted_proxies),
// the right-most address of X-Forwarded-For that is not itself a trusted
// proxy.
//
// Reading from the right is the only safe way: every proxy appends the
// address it saw, so the right-most entries were written by the proxies
// we trust and everything left of the first untrusted one was written by
// the client, who can put anything there.
package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver answers client addresses for one set of trusted proxies. It is
// immutable and safe for concurrent use. A nil *Resolver trusts nobody.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver trusting the given CIDRs (a bare address is a
// single host: /32 or /128). key names the config key in errors, e.g.
// "server.trusted_proxies"; every bad entry is reported, by index, never
// by value.
func New(key string, cidrs []string) (*Resolver, []error) {
	var errs []error
	r := &Resolver{}
	for i, s := range cidrs {
		p, err := parsePrefix(strings.TrimSpace(s))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %s", key, i, err))
			continue
		}
		r.trusted = append(r.trusted, p)
	}
	if errs != nil {
		return nil, errs
	}
	return r, nil
}

// Validate reports every entry of cidrs that New would refuse.
func Validate(key string, cidrs []string) []error {
	_, errs := New(key, cidrs)
	return errs
}

type parseError string

func (e parseError) Error() string { return string(e) }

func parsePrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, parseError("must be a CIDR such as 10.0.0.0/8, got an empty string")
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, parseError("must be a CIDR without an IPv6 zone")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, parseError("must be a CIDR such as 10.0.0.0/8 or fd00::/8")
		}
		// An IPv4-mapped prefix (::ffff:10.0.0.0/104) is matched against
		// unmapped addresses: store it as the IPv4 prefix it means.
		if a := p.Addr(); a.Is4In6() {
			bits := p.Bits() - 96
			if bits < 0 {
				return netip.Prefix{}, parseError("an IPv4-mapped CIDR must be at least /96")
			}
			p = netip.PrefixFrom(a.Unmap(), bits)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, parseError("must be a CIDR such as 10.0.0.0/8 or fd00::/8")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Trusted reports whether addr is one of the trusted proxies.
func (r *Resolver) Trusted(addr netip.Addr) bool {
	if r == nil || !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	for _, p := range r.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Peer parses an http.Request.RemoteAddr ("ip:port", "[ip6]:port", or a
// bare address); the zero Addr when it is neither (a Unix socket).
func Peer(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().WithZone("").Unmap()
	}
	if a, err := netip.ParseAddr(remoteAddr); err == nil && a.Zone() == "" {
		return a.Unmap()
	}
	return netip.Addr{}
}

// PeerTrusted reports whether the request came straight from a trusted
// proxy: only then are its X-Forwarded-For and X-Request-Id believed.
func (r *Resolver) PeerTrusted(req *http.Request) bool {
	return r.Trusted(Peer(req.RemoteAddr))
}

// FromRequest returns the client's address for req (see Resolve). It
// allocates nothing.
func (r *Resolver) FromRequest(req *http.Request) netip.Addr {
	// The header map is canonical: index it directly (Header.Values would
	// canonicalise the name again).
	return r.Resolve(req.RemoteAddr, req.Header["X-Forwarded-For"])
}

// Resolve returns the client's address given the peer address (as in
// http.Request.RemoteAddr) and the X-Forwarded-For header lines, in the
// order received:
//
//   - a peer that is not a trusted proxy is the client, whatever the
//     header says;
//   - otherwise the entries are read from the right (the last line's
//     last entry first), skipping trusted proxies; the first one that is
//     not trusted is the client;
//   - an entry that is not an address (garbage, "unknown", an obfuscated
//     identifier) ends the walk: the answer is the nearest hop we could
//     vouch for, the last trusted address read (or the peer);
//   - when every entry is a trusted proxy, the left-most one is the best
//     we know.
//
// Entries may carry a port ("1.2.3.4:5678", "[2001:db8::1]:443"), which is
// dropped; IPv4-mapped IPv6 addresses are unmapped. The zero Addr means
// the peer itself is not an IP address. Resolve allocates nothing.
func (r *Resolver) Resolve(remoteAddr string, xff []string) netip.Addr {
	peer := Peer(remoteAddr)
	if len(xff) == 0 || !r.Trusted(peer) {
		return peer
	}
	last := peer // the nearest hop known good so far
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for {
			var entry string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				entry, line = line[j+1:], line[:j]
			} else {
				entry, line = line, ""
			}
			entry = trimOWS(entry)
			if entry == "" {
				// "a,,b" or a trailing comma: an empty list element, which
				// RFC 7230's #rule allows; skip it.
				if line == "" {
					break
				}
				continue
			}
			a, ok := parseEntry(entry)
			if !ok {
				return last
			}
			if !r.Trusted(a) {
				return a
			}
			last = a
			if line == "" {
				break
			}
		}
	}
	return last
}

// parseEntry reads one X-Forwarded-For element: an address, optionally
// with a port. Zoned IPv6 addresses are refused (a zone means nothing
// beyond the proxy that wrote it, and interning it would allocate).
func parseEntry(s string) (netip.Addr, bool) {
	if strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}, false
	}
	// Pick the parser by shape: a failed parse allocates its error.
	switch {
	case s[0] == '[':
		if s[len(s)-1] == ']' {
			// "[2001:db8::1]" without a port.
			if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
				return a.Unmap(), true
			}
			return netip.Addr{}, false
		}
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return ap.Addr().Unmap(), true
		}
	case strings.Count(s, ":") == 1:
		// "1.2.3.4:5678"
		if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Is4() {
			return ap.Addr(), true
		}
	default:
		if a, err := netip.ParseAddr(s); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// trimOWS trims the optional white space (spaces and tabs) around a list
// element.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
