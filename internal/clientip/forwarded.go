package clientip

import (
	"context"
	"net/netip"
	"strings"
)

// Forwarded is what a trusted proxy said of the request it forwarded: the
// scheme (X-Forwarded-Proto) and host (X-Forwarded-Host) its client used,
// each "" when it said nothing usable.
type Forwarded struct{ Proto, Host string }

// ParseForwarded reads the X-Forwarded-Proto and X-Forwarded-Host header
// lines of a request from a trusted proxy. Only one value of each is
// taken — "http" or "https", and a host name or address with an optional
// port — as a load balancer sets them: a list (proxies appending) or
// anything else is left out rather than guessed at.
func ParseForwarded(proto, host []string) Forwarded {
	var f Forwarded
	if len(proto) == 1 {
		if p := strings.ToLower(strings.TrimSpace(proto[0])); p == "http" || p == "https" {
			f.Proto = p
		}
	}
	if len(host) == 1 && validHost(strings.TrimSpace(host[0])) {
		f.Host = strings.TrimSpace(host[0])
	}
	return f
}

// validHost reports whether h is host[:port]: a DNS name of letters,
// digits, '-' and '.', an IPv4 address, or a bracketed IPv6 address.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Zone() == ""
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		port := h[i+1:]
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return false
		}
		h = h[:i]
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err == nil {
		return a.Zone() == "" && (a.Is4() || strings.HasPrefix(h, "["))
	}
	return h != "" && strings.Trim(strings.ToLower(h), "abcdefghijklmnopqrstuvwxyz0123456789-.") == "" &&
		!strings.HasPrefix(h, ".") && !strings.HasPrefix(h, "-")
}

type forwardedKey struct{}

// WithForwarded returns ctx carrying f.
func WithForwarded(ctx context.Context, f Forwarded) context.Context {
	return context.WithValue(ctx, forwardedKey{}, f)
}

// ForwardedFrom returns what a trusted proxy said of the request of ctx,
// and whether one did (see WithForwarded).
func ForwardedFrom(ctx context.Context) (Forwarded, bool) {
	f, ok := ctx.Value(forwardedKey{}).(Forwarded)
	return f, ok
}
