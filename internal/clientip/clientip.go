package clientip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Header is the header whose entries Trusted.RemoteAddr reads.
const Header = "X-Forwarded-For"

// ProtoHeader is the header ParseForwarded reads.
const ProtoHeader = "X-Forwarded-Proto"

// ParsePrefix parses one trusted_proxies entry: an IPv4 or IPv6 address
// (a single host) or a CIDR prefix such as 10.0.0.0/8 or fd00::/8. An
// IPv4-mapped IPv6 entry (::ffff:10.0.0.1, ::ffff:10.0.0.0/104) is taken
// as its IPv4 address or prefix. A prefix with bits set past its length
// (10.0.0.1/8) is refused, as likely a mistake that trusts more than meant,
// and so is an IPv6 zone. The error states the problem without the entry's
// YAML path, for the caller to name it.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an IP address or CIDR prefix: %q", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, fmt.Errorf("%q has bits set past its prefix length (did you mean %s?)", s, m)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an IP address or CIDR prefix: %q", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q has an IPv6 zone: write the address without it", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Broad reports whether p, a trusted_proxies entry as ParsePrefix returns
// it, spans more than one operator's proxies can: an IPv4 prefix shorter
// than /8, or an IPv6 prefix shorter than /16 that is not within the
// unique-local (fc00::/7) or link-local (fe80::/10) ranges. Trusting it
// lets every client in it name any address as its own, so 0.0.0.0/0 or
// ::/0 lets anyone. A /8 is the largest IPv4 block ever assigned to one
// holder (and 10.0.0.0/8 a common private network); an IPv6 /16 is larger
// than nearly any one network's (registries hold /12s, and give the
// largest carriers a /19 or /20). A shorter prefix spans many networks of
// the Internet; unique-local and link-local ones do not, as no client on
// the Internet has such an address. The configuration warns of a broad
// entry rather than refuse it: a lab may mean it.
func Broad(p netip.Prefix) bool {
	switch a := p.Addr(); {
	case !p.IsValid():
		return false
	case a.Is4():
		return p.Bits() < 8
	case a.Is4In6() && p.Bits() >= 96: // as ParsePrefix would take it
		return p.Bits()-96 < 8
	}
	return p.Bits() < 16 && !within(p, ula) && !within(p, linkLocal)
}

// within reports whether p lies inside q.
func within(p, q netip.Prefix) bool { return p.Bits() >= q.Bits() && q.Contains(p.Addr()) }

var (
	ula       = netip.MustParsePrefix("fc00::/7")
	linkLocal = netip.MustParsePrefix("fe80::/10")
)

// Trusted is the set of proxies a listener trusts to say who their client
// is. The zero value trusts none. It is safe for concurrent use.
type Trusted struct{ prefixes []netip.Prefix }

// New parses trusted_proxies entries (see ParsePrefix).
func New(entries []string) (Trusted, error) {
	var t Trusted
	var errs []error
	for i, e := range entries {
		p, err := ParsePrefix(e)
		if err != nil {
			errs = append(errs, fmt.Errorf("clientip: trusted_proxies[%d]: %w", i, err))
			continue
		}
		t.prefixes = append(t.prefixes, p)
	}
	if len(errs) > 0 {
		return Trusted{}, errors.Join(errs...)
	}
	return t, nil
}

// Empty reports whether t trusts no proxy.
func (t Trusted) Empty() bool { return len(t.prefixes) == 0 }

// Contains reports whether a is the address of a trusted proxy (an
// IPv4-mapped IPv6 address as its IPv4 address, any zone ignored).
func (t Trusted) Contains(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// RemoteAddr returns the client address (host:port) of a request that
// came from peer (its TCP peer as host:port, http.Request.RemoteAddr)
// with the X-Forwarded-For header lines xff, in the order received.
//
// When peer is not a trusted proxy, X-Forwarded-For says whatever the
// client wrote there and RemoteAddr returns peer unchanged. When it is,
// RemoteAddr reads the comma-separated entries of every line, as one list,
// from the right (each proxy appends the address it was called from) and
// returns the first that is not itself a trusted proxy: the entries left
// of it are the client's to write, so they are never taken. When every
// entry is a trusted proxy, it returns the leftmost, the origin as far as
// trusted hops know. An entry it reaches that is not an address (empty,
// "unknown", a host name, garbage) ends the walk with peer unchanged, as
// does a trusted peer without X-Forwarded-For (a proxy's own request).
//
// An entry is an IPv4 or IPv6 address, optionally with a port
// (1.2.3.4:5678, [2001:db8::1]:443) or in brackets ([2001:db8::1]); the
// port is kept, else the result's port is 0. An IPv4-mapped IPv6 entry is
// returned as IPv4.
func (t Trusted) RemoteAddr(peer string, xff []string) string {
	if t.Empty() || len(xff) == 0 {
		return peer
	}
	p, err := netip.ParseAddrPort(peer)
	if err != nil || !t.Contains(p.Addr()) {
		return peer
	}
	for i := len(xff) - 1; i >= 0; i-- { // lines, then each line's entries, from the right
		line := xff[i]
		for {
			j := strings.LastIndexByte(line, ',')
			a, ok := parseEntry(strings.TrimSpace(line[j+1:]))
			if !ok {
				return peer
			}
			if !t.Contains(a.Addr()) || (j < 0 && i == 0) {
				return a.String()
			}
			if j < 0 {
				break
			}
			line = line[:j]
		}
	}
	return peer // not reached: the leftmost entry returns
}

// Headers is what Trusted.Client reads of a request's header lines:
// http.Header has it, without this package importing net/http.
type Headers interface {
	Values(key string) []string
}

// Client returns the client address (host:port) of a request from peer
// with header h, and what a trusted proxy said of it: RemoteAddr with
// X-Forwarded-For and ParseForwarded with X-Forwarded-Proto when h has an
// X-Forwarded-For line, else FromForwarded with the Forwarded lines when
// it has one, else peer with X-Forwarded-Proto (a proxy's own request, or
// one that sets only the scheme). When peer is not a trusted proxy it is
// the client, and nothing was said.
//
// X-Forwarded-For comes first because it is what proxies write:
// nginx ($proxy_add_x_forwarded_for), Envoy, Traefik, HAProxy
// (option forwardfor), Caddy and the cloud load balancers set or append
// to it, and none writes Forwarded unless told to, while most pass a
// client's Forwarded through untouched. Preferring Forwarded would let any
// client behind them write its own address there, the very spoofing
// trusted_proxies exists to stop. The one header family is read whole:
// with X-Forwarded-For, Forwarded's proto= is not taken either, and with
// Forwarded, X-Forwarded-Proto is not. A proxy that writes only Forwarded
// (HAProxy's option forwarded alone, nginx told to) must remove a client's
// X-Forwarded-For (http-request del-header X-Forwarded-For,
// proxy_set_header X-Forwarded-For ""), or that client names itself there.
func (t Trusted) Client(peer string, h Headers) (string, Forwarded) {
	if t.Empty() {
		return peer, Forwarded{}
	}
	p, err := netip.ParseAddrPort(peer)
	if err != nil || !t.Contains(p.Addr()) {
		return peer, Forwarded{}
	}
	if xff := h.Values(Header); len(xff) > 0 {
		return t.RemoteAddr(peer, xff), ParseForwarded(h.Values(ProtoHeader))
	}
	if fwd := h.Values(ForwardedHeader); len(fwd) > 0 {
		return t.FromForwarded(peer, fwd)
	}
	return peer, ParseForwarded(h.Values(ProtoHeader))
}

// parseEntry parses one X-Forwarded-For entry (see RemoteAddr).
func parseEntry(s string) (netip.AddrPort, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(a.Unmap(), 0), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() && a.Zone() == "" {
			return netip.AddrPortFrom(a.Unmap(), 0), true
		}
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Addr().Zone() != "" {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// Bucket is the key a per-source limit counts addr under: an IPv4
// address itself, an IPv6 address's /64 — the least a site is given, so
// that one client rotating through its addresses is still one source.
// Anything else (no address known) is returned as it is.
func Bucket(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	if a = a.Unmap(); a.Is4() {
		return a.String()
	}
	// An IPv4 client behind a NAT64/SIIT translator (the well-known
	// prefix 64:ff9b::/96) is its IPv4 address, not one /64 for all.
	if b := a.As16(); nat64.Contains(a) {
		return netip.AddrFrom4([4]byte(b[12:])).String()
	}
	return netip.PrefixFrom(a.WithZone(""), 64).Masked().String()
}

// nat64 is the NAT64 well-known prefix (RFC 6052).
var nat64 = netip.MustParsePrefix("64:ff9b::/96")
