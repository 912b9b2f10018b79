package clientip

import (
	"context"
	"strings"
)

// Forwarded is what a trusted proxy said of the request it forwarded: the
// scheme its client used (X-Forwarded-Proto, or the proto= of a Forwarded
// header), "" when it said nothing usable.
type Forwarded struct{ Proto string }

// ParseForwarded reads the X-Forwarded-Proto header lines of a request
// from a trusted proxy. Only one value is taken, "http" or "https", as a
// load balancer sets it: a list (proxies appending) or anything else is
// left out rather than guessed at.
func ParseForwarded(proto []string) Forwarded {
	var f Forwarded
	if len(proto) == 1 {
		if p := strings.ToLower(strings.TrimSpace(proto[0])); p == "http" || p == "https" {
			f.Proto = p
		}
	}
	return f
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
