package tracing

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of writ's tracers.
const ScopeName = "github.com/writ-id/writ"

// Attribute keys of the caller's identity.
const (
	AttrEndUser    = attribute.Key("enduser.id")
	AttrSub        = attribute.Key("writ.sub")
	AttrClientID   = attribute.Key("writ.client_id")
	AttrActorChain = attribute.Key("writ.actor_chain")
	AttrIdentityID = attribute.Key("writ.identity_id")
	AttrRole       = attribute.Key("writ.role")
	AttrPool       = attribute.Key("writ.pool_id")
	AttrComponent  = attribute.Key("writ.component")
	AttrRequestID  = attribute.Key("writ.request_id")
)

// Propagator is W3C Trace Context, the only propagation writ speaks.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Identity is who a request acts for, as far as a component knows it.
type Identity struct {
	Sub        string
	ClientID   string
	ActorChain []string
	IdentityID string
	Role       string
	PoolID     string
}

// SetIdentity records id on the span of ctx: enduser.id and writ.sub (the
// subject), writ.client_id, writ.actor_chain, writ.identity_id, writ.role,
// writ.pool_id; empty fields are left out. Handlers call it once the caller
// is authenticated. It does nothing when the span does not record.
func SetIdentity(ctx context.Context, id Identity) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 7)
	if id.Sub != "" {
		attrs = append(attrs, AttrEndUser.String(id.Sub), AttrSub.String(id.Sub))
	}
	if id.ClientID != "" {
		attrs = append(attrs, AttrClientID.String(id.ClientID))
	}
	if len(id.ActorChain) > 0 {
		attrs = append(attrs, AttrActorChain.StringSlice(id.ActorChain))
	}
	if id.IdentityID != "" {
		attrs = append(attrs, AttrIdentityID.String(id.IdentityID))
	}
	if id.Role != "" {
		attrs = append(attrs, AttrRole.String(id.Role))
	}
	if id.PoolID != "" {
		attrs = append(attrs, AttrPool.String(id.PoolID))
	}
	span.SetAttributes(attrs...)
}

// Handler returns h with a server span around every request, named by
// name(r), continuing the trace of the request's traceparent. With a nil
// tp (tracing off) it returns h itself.
func Handler(tp trace.TracerProvider, component string, name func(*http.Request) string, h http.Handler) http.Handler {
	if tp == nil {
		return h
	}
	tracer := tp.Tracer(ScopeName)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracer.Start(Extract(r.Context(), r.Header), name(r), trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(AttrComponent.String(component)), trace.WithAttributes(ServerAttributes(r)...))
		rec := &StatusWriter{ResponseWriter: w, Code: http.StatusOK}
		defer func() { // also when the handler panics (http.ErrAbortHandler)
			id := w.Header().Get("X-Request-Id")
			if id == "" {
				id = r.Header.Get("X-Request-Id")
			}
			EndHTTP(span, rec.Code, id, true)
		}()
		h.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// ServerAttributes are the OpenTelemetry HTTP semantic-convention
// attributes of an incoming request (never its query, which may hold
// signatures).
func ServerAttributes(r *http.Request) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
		attribute.String("server.address", r.Host)}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		attrs = append(attrs, attribute.String("client.address", host))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, attribute.String("user_agent.original", ua))
	}
	return attrs
}

// EndHTTP ends span with the response status (an error status for 5xx,
// and for 4xx on client spans, as the HTTP conventions say) and the
// request id, when known.
func EndHTTP(span trace.Span, status int, requestID string, server bool) {
	if status > 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	if requestID != "" {
		span.SetAttributes(AttrRequestID.String(requestID))
	}
	if status >= 500 || (!server && status >= 400) {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// StartClient starts a client span for r (to be sent), child of the span
// in ctx, and returns the context carrying it; Inject it into the request.
func StartClient(ctx context.Context, tracer trace.Tracer, name string, r *http.Request) (context.Context, trace.Span) {
	return tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("http.request.method", r.Method), attribute.String("server.address", r.URL.Hostname()),
		attribute.String("url.full", r.URL.Scheme+"://"+r.URL.Host+r.URL.EscapedPath())))
}

// Extract returns ctx carrying the remote span context of h's W3C
// traceparent (and tracestate), as propagation.TraceContext does, with
// less work per request: direct header lookups, tracestate parsed only
// when present.
func Extract(ctx context.Context, h http.Header) context.Context {
	v := h["Traceparent"]
	if len(v) != 1 {
		if len(v) == 0 {
			return ctx
		}
		return Propagator.Extract(ctx, propagation.HeaderCarrier(h)) // its rules for odd cases
	}
	tp := v[0]
	if len(tp) != 55 || tp[:3] != "00-" || tp[35] != '-' || tp[52] != '-' {
		return Propagator.Extract(ctx, propagation.HeaderCarrier(h))
	}
	var scc trace.SpanContextConfig
	var flags [1]byte
	if _, err := hex.Decode(scc.TraceID[:], []byte(tp[3:35])); err != nil {
		return ctx
	}
	if _, err := hex.Decode(scc.SpanID[:], []byte(tp[36:52])); err != nil {
		return ctx
	}
	if _, err := hex.Decode(flags[:], []byte(tp[53:55])); err != nil || flags[0] > 3 || !isLowerHex(tp[3:]) {
		return ctx
	}
	scc.TraceFlags = trace.TraceFlags(flags[0]) & (trace.FlagsSampled | trace.FlagsRandom)
	scc.Remote = true
	if ts := h["Tracestate"]; len(ts) > 0 {
		scc.TraceState, _ = trace.ParseTraceState(strings.Join(ts, ","))
	}
	sc := trace.NewSpanContext(scc)
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '-' && !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Inject writes the traceparent (and tracestate) of the span in ctx into h.
func Inject(ctx context.Context, h http.Header) {
	Propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// Traceparent formats sc as a W3C traceparent header value ("" when sc is
// not valid).
func Traceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	var b [55]byte
	copy(b[:], "00-")
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags())})
	return string(b[:])
}

// TraceID returns the trace id of the span in ctx in hex ("" when none).
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// StatusWriter remembers the final status code written through it; start
// Code at 200 (what a handler that never calls WriteHeader answers).
type StatusWriter struct {
	http.ResponseWriter
	Code int
}

// WriteHeader implements http.ResponseWriter.
func (s *StatusWriter) WriteHeader(code int) {
	if code >= 200 {
		s.Code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Flush implements http.Flusher.
func (s *StatusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (Hijack, deadlines).
func (s *StatusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// ReadFrom hands a body (a GetObject's file) to the server's own ReadFrom,
// which sends files with sendfile(2), rather than through a buffer.
func (s *StatusWriter) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := s.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{s.ResponseWriter}, r)
}
