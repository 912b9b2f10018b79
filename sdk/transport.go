package sdk

import (
	"io"
	"net/http"
	"sync"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/writ-id/writ/internal/tracing"
)

// Transport carries the identity in each outgoing request's context
// (FromContext) to the next service: with Exchange set it trades the token
// for one bound to Audience (cached until shortly before expiry);
// otherwise it forwards the token unchanged. The request id and
// traceparent of the context (WithRequest, Middleware) are passed on
// unless the request sets its own. A request whose context has no identity
// is sent as it is.
//
// When the context's OpenTelemetry span records (Middleware's server span,
// say), each request gets a client span from the same provider, and the
// traceparent sent names that span.
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
	ri, _ := r.Context().Value(requestKey{}).(requestInfo)
	if ri.id != "" && out.Header.Get("X-Request-Id") == "" {
		out.Header.Set("X-Request-Id", ri.id)
	}
	if out.Header.Get("traceparent") != "" {
		return base.RoundTrip(out)
	}
	if parent := trace.SpanFromContext(r.Context()); parent.IsRecording() {
		return roundTripSpan(base, out, parent.TracerProvider().Tracer(tracing.ScopeName+"/sdk"))
	}
	if ri.traceparent != "" {
		out.Header.Set("traceparent", ri.traceparent)
	}
	return base.RoundTrip(out)
}

// roundTripSpan sends r under a client span, which ends when the response
// body is read to its end or closed.
func roundTripSpan(base http.RoundTripper, r *http.Request, tracer trace.Tracer) (*http.Response, error) {
	ctx, span := tracing.StartClient(r.Context(), tracer, r.Method, r)
	tracing.Inject(ctx, r.Header)
	resp, err := base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "request failed")
		span.End()
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols { // the body is the connection: keep its io.Writer
		tracing.EndHTTP(span, resp.StatusCode, "", false)
		return resp, nil
	}
	resp.Body = &spanBody{ReadCloser: resp.Body, end: func() { tracing.EndHTTP(span, resp.StatusCode, resp.Header.Get("X-Request-Id"), false) }}
	return resp, nil
}

// spanBody ends a client span when the body is done with.
type spanBody struct {
	io.ReadCloser
	once sync.Once
	end  func()
}

func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.end)
	}
	return n, err
}

func (b *spanBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.end)
	return err
}
