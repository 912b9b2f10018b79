package app

import (
	"net/http"
	"net/netip"

	"github.com/writ-id/writ/internal/clientip"
)

// forwardedFor serves h with each request's RemoteAddr set to its client's
// address when the TCP peer is one of trusted, the listener's
// trusted_proxies (clientip.Trusted.Client reads X-Forwarded-For, else
// Forwarded), so that every consumer of RemoteAddr (throttles, rate
// limits, aws:SourceIp, audit source_ip, spans) sees the client, not the
// proxy. Without trusted
// proxies it returns h itself: the peer is the client, whatever the
// header says.
func forwardedFor(trusted clientip.Trusted, h http.Handler) http.Handler {
	if trusted.Empty() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !trusted.Contains(peer.Addr()) {
			h.ServeHTTP(w, r)
			return
		}
		// A shallow copy: the server's request stays as received. The
		// scheme the proxy's client used goes with it, for the gateway's
		// X-Forwarded-Proto upstream.
		addr, fwd := trusted.Client(r.RemoteAddr, r.Header)
		r = r.WithContext(clientip.WithForwarded(r.Context(), fwd))
		r.RemoteAddr = addr
		h.ServeHTTP(w, r)
	})
}
