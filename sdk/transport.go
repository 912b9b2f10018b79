package sdk

import (
	"net/http"
	"sync"
)

// Transport carries the identity in each outgoing request's context
// (FromContext) to the next service: with Exchange set it trades the token
// for one bound to Audience (cached until shortly before expiry);
// otherwise it forwards the token unchanged. The request id and
// traceparent of the context (WithRequest, Middleware) are passed on
// unless the request sets its own. A request whose context has no identity
// is sent as it is.
type Transport struct {
	// Base is the underlying transport; default http.DefaultTransport.
	Base http.RoundTripper
	// Exchange, when set, is the client that performs token exchanges.
	Exchange *ClientCredentials
	// Audience is the next service's audience (required with Exchange).
	Audience string

	once sync.Once
	x    *Exchanger
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	id, ok := FromContext(r.Context())
	if !ok {
		return base.RoundTrip(r)
	}
	tok := id.Token
	if t.Exchange != nil {
		t.once.Do(func() {
			t.x = &Exchanger{Credentials: *t.Exchange, HTTPClient: &http.Client{Transport: base}}
		})
		var err error
		if tok, err = t.x.Exchange(r.Context(), id.Token, t.Audience); err != nil {
			if r.Body != nil {
				r.Body.Close() // a RoundTripper closes the body, even on errors
			}
			return nil, err
		}
	}
	out := r.Clone(r.Context()) // a RoundTripper must not modify the request
	out.Header.Set("Authorization", "Bearer "+tok)
	if ri, ok := r.Context().Value(requestKey{}).(requestInfo); ok {
		if ri.id != "" && out.Header.Get("X-Request-Id") == "" {
			out.Header.Set("X-Request-Id", ri.id)
		}
		if ri.traceparent != "" && out.Header.Get("traceparent") == "" {
			out.Header.Set("traceparent", ri.traceparent)
		}
	}
	return base.RoundTrip(out)
}
