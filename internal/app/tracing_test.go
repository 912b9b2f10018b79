package app_test

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
	"github.com/writ-id/writ/sdk"
)

// span is a received span with its service.
type span struct {
	service string
	*tracepb.Span
}

func (s span) id() string     { return hex.EncodeToString(s.SpanId) }
func (s span) parent() string { return hex.EncodeToString(s.ParentSpanId) }
func (s span) trace() string  { return hex.EncodeToString(s.TraceId) }

func (s span) attr(key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			if a := kv.Value.GetArrayValue(); a != nil {
				var vs []string
				for _, v := range a.Values {
					vs = append(vs, v.GetStringValue())
				}
				return strings.Join(vs, ",")
			}
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

// collector is an OTLP/HTTP trace receiver: it decodes every
// ExportTraceServiceRequest (protobuf) it is sent.
type collector struct {
	*httptest.Server
	mu    sync.Mutex
	spans []span
}

func newCollector(t *testing.T) *collector {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20") // writ sends its batch of spans after 20 ms, not 5 s
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector: %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "bad request", 400)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, "bad gzip", 400)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Errorf("collector: %v", err)
			http.Error(w, "bad protobuf", 400)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					c.spans = append(c.spans, span{service, s})
				}
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// find waits until a span of service matching ok has arrived.
func (c *collector) find(t *testing.T, what, service string, ok func(span) bool) span {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		for _, s := range c.spans {
			if s.service == service && ok(s) {
				c.mu.Unlock()
				return s
			}
		}
		var seen []string
		for _, s := range c.spans {
			seen = append(seen, s.service+": "+s.Name)
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s span of %s; received %v", what, service, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serviceTracing is how a service exports its spans: the OpenTelemetry SDK
// with the OTLP/HTTP exporter.
func serviceTracing(t *testing.T, name, endpoint string) *sdktrace.TracerProvider {
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(endpoint+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp
}

// TestTraceAcrossGatewayAndServices sends one request with a caller's
// traceparent through the gateway to orders (sdk Middleware), which calls
// files through sdk.Transport, with writ and both services exporting to one
// OTLP receiver: every hop's span is in the caller's trace, each the child
// of the one before, and the identity is on the spans.
func TestTraceAcrossGatewayAndServices(t *testing.T) {
	otlp := newCollector(t)
	var env *apptest.Env
	issuer := func() string { return env.App.URL(app.IDP) + "/us-east-1_WritDemo1" }
	var once sync.Once
	var orders, files http.Handler
	build := func() {
		v := sdk.NewVerifier(sdk.Config{Issuer: issuer(), Audiences: []string{"demo-web"}, TracerProvider: serviceTracing(t, "files", otlp.URL)})
		t.Cleanup(v.Close)
		files = v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("file")) }))
	}
	filesSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { once.Do(build); files.ServeHTTP(w, r) }))
	defer filesSrv.Close()
	var onceOrders sync.Once
	buildOrders := func() {
		v := sdk.NewVerifier(sdk.Config{Issuer: issuer(), Audiences: []string{"demo-web"}, TracerProvider: serviceTracing(t, "orders", otlp.URL)})
		t.Cleanup(v.Close)
		next := &http.Client{Transport: &sdk.Transport{}} // forwards the caller's token
		mux := http.NewServeMux()
		mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
			req, _ := http.NewRequestWithContext(r.Context(), "GET", filesSrv.URL+"/files/"+r.PathValue("id"), nil)
			resp, err := next.Do(req)
			if err != nil {
				http.Error(w, err.Error(), 502)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			w.Write([]byte("order"))
		})
		orders = v.Middleware(mux)
	}
	ordersSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		onceOrders.Do(buildOrders)
		orders.ServeHTTP(w, r)
	}))
	defer ordersSrv.Close()
	env = apptest.Start(t, func(c *config.Config) {
		c.Tracing.Endpoint = otlp.URL // the base URL: writ appends /v1/traces
		c.Gateway.Routes[0].Upstream = ordersSrv.URL
	})
	ctx := context.Background()
	p, _ := env.App.Pools.Pool("us-east-1_WritDemo1")
	cl, _ := env.App.Core.Store.GetClient(ctx, "demo-web")
	alice, _ := env.App.Core.Store.GetUser(ctx, "us-east-1_WritDemo1", "alice")
	tok, err := p.Issue(ctx, userpool.Grant{Client: cl, User: alice, Scope: []string{"https://api.demo.local/orders.read"}, AuthTime: env.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest("GET", env.App.URL(app.Gateway)+"/orders/7", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	req.Header.Set("X-Request-Id", "traced-req-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "order" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	// The audit trail names the same trace.
	env.App.Core.Audit.Flush(ctx)
	evs, err := env.App.Core.Store.ListAudit(ctx, store.AuditFilter{RequestID: "traced-req-1"})
	if err != nil || len(evs) == 0 || evs[0].TraceID != traceID {
		t.Fatalf("audit events of the request: %v %+v", err, evs)
	}

	inTrace := func(name string) func(span) bool {
		return func(s span) bool { return s.trace() == traceID && s.Name == name }
	}
	gwServer := otlp.find(t, "gateway server", "writ", inTrace("gateway GET /orders/{id}"))
	gwClient := otlp.find(t, "gateway upstream", "writ", inTrace("upstream GET /orders/{id}"))
	ordServer := otlp.find(t, "orders server", "orders", inTrace("GET /orders/{id}"))
	ordClient := otlp.find(t, "orders client", "orders", inTrace("GET"))
	filesServer := otlp.find(t, "files server", "files", inTrace("GET"))

	for _, c := range []struct {
		what          string
		s             span
		parent        string
		kind          tracepb.Span_SpanKind
		sub, clientID bool
	}{
		{"gateway server span", gwServer, callerSpan, tracepb.Span_SPAN_KIND_SERVER, true, true},
		{"gateway upstream span", gwClient, gwServer.id(), tracepb.Span_SPAN_KIND_CLIENT, false, false},
		{"orders server span", ordServer, gwClient.id(), tracepb.Span_SPAN_KIND_SERVER, true, true},
		{"orders client span", ordClient, ordServer.id(), tracepb.Span_SPAN_KIND_CLIENT, false, false},
		{"files server span", filesServer, ordClient.id(), tracepb.Span_SPAN_KIND_SERVER, true, true},
	} {
		if c.s.parent() != c.parent {
			t.Errorf("%s: parent %s, want %s", c.what, c.s.parent(), c.parent)
		}
		if c.s.Kind != c.kind {
			t.Errorf("%s: kind %v, want %v", c.what, c.s.Kind, c.kind)
		}
		if c.sub && (c.s.attr("writ.sub") != alice.Sub || c.s.attr("enduser.id") != alice.Sub) {
			t.Errorf("%s: writ.sub %q enduser.id %q, want %q", c.what, c.s.attr("writ.sub"), c.s.attr("enduser.id"), alice.Sub)
		}
		if c.clientID && c.s.attr("writ.client_id") != "demo-web" {
			t.Errorf("%s: writ.client_id %q", c.what, c.s.attr("writ.client_id"))
		}
	}
	if gwServer.attr("writ.request_id") != "traced-req-1" || gwServer.attr("writ.component") != "gateway" {
		t.Errorf("gateway server span attributes: %v", gwServer.Attributes)
	}
	var audited bool
	for _, e := range gwServer.Events {
		audited = audited || e.Name == "audit"
	}
	if !audited {
		t.Errorf("the gateway's audit decision is not an event of its span: %v", gwServer.Events)
	}
}

// TestTraceIntoAFunction: a function invocation is a span of its own, child
// of the gateway's server span, and the function's X-Ray trace header
// names it as the parent.
func TestTraceIntoAFunction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a function")
	}
	bin := filepath.Join(t.TempDir(), "fn")
	if out, err := exec.Command("go", "build", "-o", bin, "../gateway/testdata/fn").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	otlp := newCollector(t)
	env := apptest.Start(t, func(c *config.Config) {
		c.Tracing.Endpoint = otlp.URL + "/v1/traces"
		c.Gateway.Functions[0].Command = []string{bin}
	})
	ctx := context.Background()
	p, _ := env.App.Pools.Pool("us-east-1_WritDemo1")
	cl, _ := env.App.Core.Store.GetClient(ctx, "demo-web")
	alice, _ := env.App.Core.Store.GetUser(ctx, "us-east-1_WritDemo1", "alice")
	tok, err := p.Issue(ctx, userpool.Grant{Client: cl, User: alice, AuthTime: env.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("GET", env.App.URL(app.Gateway)+"/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Trace string }
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%d", resp.StatusCode)
	}
	server := otlp.find(t, "gateway server", "writ", func(s span) bool { return s.trace() == traceID && s.Name == "gateway GET /whoami" })
	invoke := otlp.find(t, "invocation", "writ", func(s span) bool { return s.trace() == traceID && s.Name == "invoke whoami" })
	if invoke.parent() != server.id() || invoke.attr("faas.invoked_name") != "whoami" || server.attr("writ.sub") != alice.Sub {
		t.Errorf("invocation span parent %s (server %s), attributes %v", invoke.parent(), server.id(), invoke.Attributes)
	}
	if want := "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=" + invoke.id() + ";Sampled=1"; out.Trace != want {
		t.Errorf("function trace %q, want %q", out.Trace, want)
	}
}
