package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/writ-id/writ/internal/tracing"
)

func TestOffIsTheHandlerItself(t *testing.T) {
	h := http.NewServeMux()
	if got := tracing.Handler(nil, "idp", nil, h); got != http.Handler(h) {
		t.Fatalf("with tracing off, Handler must return the handler unchanged")
	}
	tracing.SetIdentity(context.Background(), tracing.Identity{Sub: "x"}) // no span: nothing happens
}

func TestServerSpanContinuesTheCallersTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	var inner trace.SpanContext
	h := tracing.Handler(tp, "identity", func(r *http.Request) string { return "identity GetId" }, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner = trace.SpanContextFromContext(r.Context())
		tracing.SetIdentity(r.Context(), tracing.Identity{Sub: "alice", IdentityID: "us-east-1:1", Role: "demo-user", ActorChain: []string{"a", "b"}})
		w.Header().Set("X-Request-Id", "r-1")
		w.WriteHeader(http.StatusTeapot)
	}))
	req := httptest.NewRequest("POST", "/?secret=sig", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.ServeHTTP(httptest.NewRecorder(), req)
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.Name() != "identity GetId" || s.SpanKind() != trace.SpanKindServer || s.Parent().SpanID().String() != "00f067aa0ba902b7" ||
		s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || inner.SpanID() != s.SpanContext().SpanID() {
		t.Errorf("span %s %v parent %v", s.Name(), s.SpanKind(), s.Parent())
	}
	attrs := map[string]string{}
	for _, kv := range s.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	for k, v := range map[string]string{"enduser.id": "alice", "writ.sub": "alice", "writ.identity_id": "us-east-1:1", "writ.role": "demo-user",
		"writ.actor_chain": `["a","b"]`, "writ.component": "identity", "writ.request_id": "r-1", "http.response.status_code": "418", "url.path": "/"} {
		if attrs[k] != v {
			t.Errorf("%s = %q, want %q", k, attrs[k], v)
		}
	}
	if want := "00-" + s.SpanContext().TraceID().String() + "-" + s.SpanContext().SpanID().String() + "-01"; tracing.Traceparent(s.SpanContext()) != want {
		t.Errorf("traceparent %q, want %q", tracing.Traceparent(s.SpanContext()), want)
	}
}
