package gateway

import (
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
)

// Hop-by-hop headers (RFC 9110 §7.6.1) concern one connection and are not
// passed on: those a message's Connection header names, and these, named
// or not (ReverseProxy's list, which it applies to upstream requests and
// final responses).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// connectionOptions calls yield with each header name a Connection header
// value lists.
func connectionOptions(value string, yield func(name string)) {
	for name := range strings.SplitSeq(value, ",") {
		if name = textproto.TrimString(name); name != "" {
			yield(name)
		}
	}
}

// removeHopByHop removes h's hop-by-hop headers.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		connectionOptions(v, h.Del)
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// --- upstream responses ------------------------------------------------------
//
// ReverseProxy removes the hop-by-hop headers of final responses, those
// their Connection header names included, but passes informational ones
// (103 Early Hints) on with their headers as they came: upstreamTransport
// removes theirs.
//
// Not covered: Go's client acts on a final response's "Connection: close"
// itself and then deletes the whole Connection header, so with "close"
// among them, the other headers it names (X-Foo in "Connection: close,
// X-Foo") are passed on. Reading them would mean parsing the upstream's
// bytes beneath the client on every request.

// upstreamTransport is a route's transport.
type upstreamTransport struct{ *http.Transport }

func (t upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	trace := &httptrace.ClientTrace{
		// This hook, newer than ReverseProxy's own, runs first.
		Got1xxResponse: func(_ int, h textproto.MIMEHeader) error {
			removeHopByHop(http.Header(h))
			return nil
		},
	}
	return t.Transport.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
}
