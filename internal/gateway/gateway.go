package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/awsjson"
	"github.com/writ-id/writ/internal/clientip"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/jwks"
	"github.com/writ-id/writ/internal/token"
	"github.com/writ-id/writ/internal/tracing"
	"github.com/writ-id/writ/sdk"
)

// Options are what the gateway needs besides its configuration.
type Options struct {
	// IDPURL is the idp's public URL, where pools' token endpoints live
	// (for propagate: exchange).
	IDPURL string
	// Audit receives an event for every authorization decision; nil
	// records none.
	Audit audit.Recorder
	Log   *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Transport reaches upstreams, JWKS and the token endpoint; default
	// NewTransport(). Routes get clones with their timeout as the
	// transport's ResponseHeaderTimeout.
	Transport *http.Transport
	// Tracer, when set, traces each request's upstream call (a client
	// span, whose context the upstream's traceparent carries) and function
	// invocation, as children of the span in the request's context (the
	// listener's server span, see tracing.Handler). Nil is tracing off:
	// the upstream gets the caller's trace id with a new span id.
	Tracer oteltrace.Tracer
}

// NewTransport returns the transport the gateway uses by default: a large
// idle pool per upstream host (so that connections are reused under load
// rather than opened per request), no proxy from the environment, and
// bounded dial and TLS handshake times.
func NewTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Gateway serves the configured routes. It is an http.Handler; the server
// that runs it should bound the request header block (http.Server's
// MaxHeaderBytes), which answers 431 before the gateway sees the request.
type Gateway struct {
	account     string
	table       *table
	authorizers map[string]*authorizer
	functions   map[string]*function
	exchanger   *sdk.Exchanger // nil without gateway.client
	opts        Options
	stop        context.CancelFunc
}

// New builds the gateway from cfg, starts its JWKS refreshers and its
// functions' processes; Close stops them. Routes that conflict (the same
// method and path shape) are refused.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Transport == nil {
		opts.Transport = NewTransport()
	}
	t, err := newTable(cfg.Gateway.Routes)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	g := &Gateway{account: cfg.Account, table: t, authorizers: map[string]*authorizer{}, functions: map[string]*function{},
		opts: opts, stop: stop}
	jwksClient := &http.Client{Transport: opts.Transport, Timeout: 10 * time.Second}
	for i := range cfg.Gateway.Authorizers {
		ac := &cfg.Gateway.Authorizers[i]
		skew := ac.Skew // config has filled in the default: 0 is no skew
		if skew == 0 {
			skew = -1 // jwks's "none" (its 0 is "the default")
		}
		v := jwks.NewVerifier(ac.Issuer, jwks.VerifierOptions{Options: jwks.Options{Client: jwksClient, Now: opts.Now}, Skew: skew})
		v.Remote().Start(ctx)
		g.authorizers[ac.Name] = &authorizer{cfg: ac, verifier: v}
	}
	fail := func(err error) (*Gateway, error) {
		g.Close()
		return nil, err
	}
	if gc := cfg.Gateway.Client; gc.ClientID != "" {
		g.exchanger = &sdk.Exchanger{Now: opts.Now, HTTPClient: &http.Client{Transport: opts.Transport, Timeout: 10 * time.Second},
			Credentials: sdk.ClientCredentials{TokenURL: strings.TrimRight(opts.IDPURL, "/") + "/" + gc.UserPool + "/oauth2/token",
				ClientID: gc.ClientID, ClientSecret: gc.Secret.Reveal()}}
	}
	proxies := map[time.Duration]*httputil.ReverseProxy{}
	for _, r := range t.routes {
		if r.cfg.Upstream != "" {
			// One proxy (and idle pool) per distinct timeout, which bounds
			// the wait for the upstream's response headers, not the body:
			// a long download or event stream is not cut.
			if proxies[r.cfg.Timeout] == nil {
				tr := opts.Transport.Clone()
				tr.ResponseHeaderTimeout = r.cfg.Timeout
				proxies[r.cfg.Timeout] = &httputil.ReverseProxy{
					Transport: upstreamTransport{tr}, // informational responses' hop-by-hop headers removed too
					// FlushInterval 0: ReverseProxy flushes at once for
					// responses of unknown length and for text/event-stream,
					// and otherwise streams the body through its buffer as it
					// arrives. (-1 would add a timer and a flush to every
					// response.)
					Rewrite:        g.rewrite,
					ModifyResponse: g.modifyResponse,
					ErrorHandler:   g.upstreamError,
					BufferPool:     copyBuffers,
				}
			}
			r.proxy = proxies[r.cfg.Timeout]
		}
		if r.cfg.Authorizer != "" && g.authorizers[r.cfg.Authorizer] == nil {
			return fail(fmt.Errorf("gateway: route %q: no authorizer %q", r.key, r.cfg.Authorizer))
		}
		if r.cfg.Propagate == "exchange" && (r.cfg.Authorizer == "" || g.exchanger == nil || r.cfg.Audience == "") {
			return fail(fmt.Errorf("gateway: route %q: propagate: exchange needs an authorizer, an audience and gateway.client", r.key))
		}
		if err := r.provision(opts.Now); err != nil {
			return fail(err)
		}
	}
	for i := range cfg.Gateway.Functions {
		fc := &cfg.Gateway.Functions[i]
		fn, err := newFunction(fc, cfg.Region, cfg.Account, opts.Log)
		if err != nil {
			return fail(err)
		}
		g.functions[fc.Name] = fn
	}
	for _, r := range t.routes {
		if r.cfg.Function != "" && g.functions[r.cfg.Function] == nil {
			return fail(fmt.Errorf("gateway: route %q: no function %q", r.key, r.cfg.Function))
		}
	}
	return g, nil
}

// RouteKey returns the key of the route a request matches ("" for none),
// for metrics.
func (g *Gateway) RouteKey(r *http.Request) string {
	if rt, _, _ := g.table.match(r.Method, r.URL.Path); rt != nil {
		return rt.key
	}
	return ""
}

// JWKSStats returns each authorizer issuer's JWKS fetch and failure counts.
func (g *Gateway) JWKSStats() map[string][2]int {
	out := map[string][2]int{}
	for _, a := range g.authorizers {
		f, e := a.verifier.Remote().Stats()
		out[a.cfg.Issuer] = [2]int{f, e}
	}
	return out
}

// CachedTokens returns how many verified tokens the authorizers cache.
func (g *Gateway) CachedTokens() int {
	n := 0
	for _, a := range g.authorizers {
		n += a.verifier.Cached()
	}
	return n
}

// VerifyStats sums the authorizers' token verifications by result and
// their verified-token cache hits and misses.
func (g *Gateway) VerifyStats() token.VerifyStats {
	var s token.VerifyStats
	for _, a := range g.authorizers {
		s.Add(a.verifier.Stats())
	}
	return s
}

// Ready reports an error until every authorizer has its issuer's keys: a
// gateway without them refuses every request.
func (g *Gateway) Ready() error {
	for name, a := range g.authorizers {
		if !a.verifier.Remote().Fetched() {
			return fmt.Errorf("authorizer %s: no keys from %s yet", name, a.verifier.Remote().Issuer())
		}
	}
	return nil
}

// Close stops background work and the function processes.
func (g *Gateway) Close() {
	g.stop()
	for _, f := range g.functions {
		f.close()
	}
}

// ServeHTTP routes, authorizes and proxies one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := requestID(r)
	w.Header().Set("X-Request-Id", reqID)
	trace := g.traceparent(r)
	ctx := audit.WithRequest(r.Context(), audit.RequestInfo{ID: reqID, TraceID: trace[3:35], SourceIP: awsjson.SourceIP(r)})

	if g.preflight(w, r) {
		return
	}
	if hasDotSegment(r.URL.Path) {
		// A route is chosen by the path as it came, and the upstream gets
		// that path: one that resolves "." or ".." (RFC 3986 §5.2.4)
		// would serve what another route guards.
		writeMessage(w, http.StatusBadRequest, "Bad Request")
		return
	}
	rt, params, allowed := g.table.match(r.Method, r.URL.Path)
	if rt == nil {
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeMessage(w, http.StatusMethodNotAllowed, "Method Not Allowed")
			return
		}
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	if rt.cors != nil {
		rt.cors.actual(w.Header(), r.Header.Get("Origin")) // refusals carry them too, so browsers can read them
	}
	f := &forward{route: rt, reqID: reqID, trace: trace}
	var claims *token.Claims
	raw := ""
	if rt.cfg.Authorizer != "" {
		if len(r.Header.Values("Authorization")) > 1 {
			// Not a list field (RFC 9110 §11.6.2): an upstream could read
			// the one the gateway did not verify.
			g.record(ctx, rt, nil, audit.Deny, "more than one Authorization header")
			writeMessage(w, http.StatusBadRequest, "Bad Request")
			return
		}
		raw = sdk.Bearer(r)
		var aerr *authError
		claims, aerr = g.authorizers[rt.cfg.Authorizer].authorize(ctx, raw, rt.cfg.Scopes)
		// Refused tokens count against their source address, past the
		// route's rate a 429: a flood of bad tokens is throttled like any
		// caller, while good tokens from the same address (a NAT, a load
		// balancer) are limited by their own subject only, and expired
		// ones get their 401 (refresh, not wait).
		if aerr != nil && aerr.status == http.StatusUnauthorized && !aerr.expired && rt.limit != nil {
			if wait, ok := rt.limit.allow("ip:" + clientip.Bucket(audit.Request(ctx).SourceIP)); !ok {
				g.tooMany(ctx, w, rt, nil, wait)
				return
			}
		}
		if claims != nil && g.opts.Tracer != nil {
			tracing.SetIdentity(ctx, tracing.Identity{Sub: claims.Subject, ClientID: claims.ClientID, ActorChain: claims.Act.Chain()})
		}
		if aerr != nil && aerr.status == http.StatusServiceUnavailable {
			g.opts.Log.Warn("gateway: cannot verify tokens", "route", rt.key, "request_id", reqID, "issuer", rt.cfg.Authorizer, "err", aerr.description)
			g.record(ctx, rt, nil, audit.Error, aerr.description)
			writeMessage(w, aerr.status, http.StatusText(aerr.status))
			return
		}
		if aerr != nil {
			g.record(ctx, rt, claims, audit.Deny, aerr.description)
			w.Header().Set("WWW-Authenticate", aerr.challenge())
			writeMessage(w, aerr.status, http.StatusText(aerr.status))
			return
		}
	}
	if rt.limit != nil {
		who := "ip:" + clientip.Bucket(audit.Request(ctx).SourceIP)
		if claims != nil {
			who = "sub:" + claims.Subject
		}
		if wait, ok := rt.limit.allow(who); !ok {
			g.tooMany(ctx, w, rt, claims, wait)
			return
		}
	}
	if rt.cfg.MaxBody > 0 {
		if r.ContentLength > rt.cfg.MaxBody || (r.ContentLength < 0 && !g.bufferBody(w, r, rt.cfg.MaxBody)) {
			g.record(ctx, rt, claims, audit.Deny, "request body too large")
			writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, rt.cfg.MaxBody)
	}
	if rt.cfg.Propagate == "exchange" && raw != "" {
		tok, err := g.exchanger.Exchange(sdk.WithRequest(ctx, reqID, trace), raw, rt.cfg.Audience)
		var xerr *sdk.ExchangeError
		switch {
		case errors.As(err, &xerr) && (xerr.Code == "invalid_request" || xerr.Code == "invalid_grant"):
			// The issuer refused the caller's token (revoked since it was
			// verified, or its user disabled: RFC 8693 §2.2.2): the
			// caller's credential, not the gateway, failed.
			aerr := unauthorized("the token was refused by its issuer")
			g.record(ctx, rt, claims, audit.Deny, aerr.description)
			w.Header().Set("WWW-Authenticate", aerr.challenge())
			writeMessage(w, aerr.status, http.StatusText(aerr.status))
			return
		case err != nil:
			g.opts.Log.Warn("gateway: token exchange failed", "route", rt.key, "request_id", reqID, "err", err)
			g.record(ctx, rt, claims, audit.Error, "token exchange failed")
			writeMessage(w, http.StatusBadGateway, "Bad Gateway")
			return
		}
		f.auth = "Bearer " + tok
	} else if raw != "" {
		// propagate: forward — the token it verified, set after the
		// hop-by-hop headers are gone (a caller naming Authorization in
		// Connection would otherwise strip it on the way).
		f.auth = "Bearer " + raw
	}
	g.record(ctx, rt, claims, audit.Allow, "")
	if rt.cfg.Function != "" {
		g.invokeFunction(w, r.WithContext(ctx), g.functions[rt.cfg.Function], rt, params, claims, reqID, trace)
		return
	}
	if g.opts.Tracer != nil {
		var span oteltrace.Span
		ctx, span = g.opts.Tracer.Start(ctx, "upstream "+rt.key, oteltrace.WithSpanKind(oteltrace.SpanKindClient),
			oteltrace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("server.address", rt.upstream.Hostname()),
				attribute.String("url.full", rt.upstream.Scheme+"://"+rt.upstream.Host+rt.upstream.EscapedPath())))
		defer span.End() // after the body is copied: a streamed response is part of the call
		f.trace = tracing.Traceparent(span.SpanContext())
	}
	rt.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxKey{}, f)))
}

// tooMany refuses a request over its route's rate limit (429, with when to
// try again).
func (g *Gateway) tooMany(ctx context.Context, w http.ResponseWriter, rt *route, claims *token.Claims, wait time.Duration) {
	g.record(ctx, rt, claims, audit.Deny, "rate limit exceeded")
	w.Header().Set("Retry-After", fmt.Sprint(int((wait+time.Second-1)/time.Second)))
	writeMessage(w, http.StatusTooManyRequests, "Too Many Requests")
}

// bufferBody reads a body of unknown length (chunked) whole, when it is at
// most limit bytes, so that one over the limit is refused before anything
// reaches the upstream, as one whose Content-Length is over it is. It
// reports false when the body is over the limit or cannot be read.
func (g *Gateway) bufferBody(w http.ResponseWriter, r *http.Request, limit int64) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	r.Body.Close()
	if err != nil || int64(len(b)) > limit {
		return false
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	r.TransferEncoding = nil
	return true
}

// hasDotSegment reports whether path has a "." or ".." segment.
func hasDotSegment(path string) bool {
	if !strings.Contains(path, ".") {
		return false // most paths: no split
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// traceparent is the traceparent of this hop: with tracing on, the
// listener's server span (which continued the caller's trace); otherwise
// the caller's trace id with a new span id, or a new trace.
func (g *Gateway) traceparent(r *http.Request) string {
	if g.opts.Tracer != nil {
		if tp := tracing.Traceparent(oteltrace.SpanContextFromContext(r.Context())); tp != "" {
			return tp
		}
	}
	return traceparent(r.Header.Get("traceparent"))
}

func (g *Gateway) invokeFunction(w http.ResponseWriter, r *http.Request, fn *function, rt *route, params map[string]string, c *token.Claims, reqID, trace string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	event, err := g.buildEvent(r, rt, params, c, reqID, body)
	if err != nil {
		g.opts.Log.Error("gateway: cannot encode the function event", "route", rt.key, "request_id", reqID, "err", err)
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	ctx := r.Context()
	if g.opts.Tracer != nil {
		var span oteltrace.Span
		ctx, span = g.opts.Tracer.Start(ctx, "invoke "+fn.cfg.Name, oteltrace.WithSpanKind(oteltrace.SpanKindClient),
			oteltrace.WithAttributes(attribute.String("faas.invoked_name", fn.cfg.Name), attribute.String("faas.invoked_provider", "writ")))
		defer func() {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}()
		trace = tracing.Traceparent(span.SpanContext()) // the function's Lambda-Runtime-Trace-Id names this span
	}
	res, err := fn.invoke(ctx, event, trace)
	switch {
	case errors.Is(err, errTimeout):
		writeMessage(w, http.StatusGatewayTimeout, "Endpoint request timed out")
	case err != nil:
		writeMessage(w, http.StatusBadGateway, "Internal Server Error")
	default:
		writeResult(w, res, rt.cors != nil)
	}
}

// record writes the audit event of an authorization decision.
func (g *Gateway) record(ctx context.Context, rt *route, c *token.Claims, outcome, reason string) {
	if g.opts.Audit == nil {
		return
	}
	e := audit.Event{Component: "gateway", Action: rt.key, Outcome: outcome, Reason: reason, Resource: rt.key}
	if c != nil {
		e.Sub, e.Username, e.ClientID = c.Subject, c.User(), c.ClientID
		e.ActorChain = c.Act.Chain()
	}
	g.opts.Audit.Record(ctx, e)
}

// writeMessage writes API Gateway's error body: {"message":"…"}.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, `{"message":`+strconv.Quote(msg)+`}`) // msg is plain ASCII: Go and JSON quoting agree
}

// --- upstreams ---------------------------------------------------------------

type ctxKey struct{}

// forward is what ServeHTTP decided, handed to rewrite.
type forward struct {
	route *route
	auth  string // Authorization header value for the upstream ("" keeps the caller's)
	reqID string
	trace string
}

// rewrite builds the upstream request: the route's upstream URL (an
// upstream without a path gets the original path and query unchanged),
// X-Forwarded-For/Host/Proto, the request id, the traceparent and the
// Authorization to propagate. ReverseProxy has already removed hop-by-hop
// headers.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	f := pr.In.Context().Value(ctxKey{}).(*forward)
	up := f.route.upstream
	pr.SetURL(up)
	if up.Path == "" || up.Path == "/" {
		pr.Out.URL.Path, pr.Out.URL.RawPath = pr.In.URL.Path, pr.In.URL.RawPath
	}
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	pr.SetXForwarded()
	h := pr.Out.Header
	// Behind a trusted proxy (a TLS-terminating load balancer), the scheme
	// its client used, not the proxy's hop to the gateway. Not its
	// X-Forwarded-Host: load balancers keep the client's Host (which
	// SetXForwarded passes on) and many pass a client's X-Forwarded-Host
	// through untouched, which would let a client choose the host an
	// upstream builds its links with.
	if fwd, ok := clientip.ForwardedFrom(pr.In.Context()); ok && fwd.Proto != "" {
		h.Set("X-Forwarded-Proto", fwd.Proto)
	}
	h.Set("X-Request-Id", f.reqID)
	h.Set("Traceparent", f.trace)
	if f.auth != "" {
		h.Set("Authorization", f.auth)
	}
}

// modifyResponse drops an upstream's own CORS headers on routes where the
// gateway answers CORS (ServeHTTP has set the gateway's), and its
// X-Request-Id: the response names the request by the gateway's id, the
// one its audit events carry.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	resp.Header.Del("X-Request-Id")
	if g.opts.Tracer != nil {
		span := oteltrace.SpanFromContext(resp.Request.Context()) // the upstream call's
		span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
		if resp.StatusCode >= 500 {
			span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
		}
	}
	if f, _ := resp.Request.Context().Value(ctxKey{}).(*forward); f != nil && f.route.cors != nil {
		for k := range resp.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				delete(resp.Header, k)
			}
		}
	}
	return nil
}

func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadGateway
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() { // no response headers within the route's timeout
		status = http.StatusGatewayTimeout
	}
	if g.opts.Tracer != nil {
		span := oteltrace.SpanFromContext(r.Context())
		span.RecordError(err)
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	if !errors.Is(err, context.Canceled) {
		g.opts.Log.Warn("gateway: upstream error", "path", r.URL.Path, "request_id", audit.Request(r.Context()).ID, "err", err)
	}
	writeMessage(w, status, http.StatusText(status))
}

var _ http.Handler = (*Gateway)(nil)

// copyBuffers recycles the buffers ReverseProxy copies response bodies
// through (32 KiB each, otherwise allocated per response).
var copyBuffers httputil.BufferPool = bufferPool{}

type bufferPool struct{}

var buffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

func (bufferPool) Get() []byte  { return buffers.Get().(*[32 << 10]byte)[:] }
func (bufferPool) Put(b []byte) { buffers.Put((*[32 << 10]byte)(b)) }

// provision prepares a route's upstream URL, rate limiter and CORS policy.
func (r *route) provision(now func() time.Time) error {
	if r.cfg.Upstream != "" {
		u, err := url.Parse(r.cfg.Upstream)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("gateway: route %q: upstream %q is not an http(s) URL", r.key, r.cfg.Upstream)
		}
		r.upstream = u
	}
	if r.cfg.RateLimit < 0 {
		return fmt.Errorf("gateway: route %q: rate_limit must not be negative", r.key)
	}
	if r.cfg.RateLimit > 0 {
		r.limit = newLimiter(r.cfg.RateLimit, now)
	}
	if r.cfg.CORS != nil {
		c, err := newCORS(r.cfg.CORS)
		if err != nil {
			return fmt.Errorf("gateway: route %q: %w", r.key, err)
		}
		r.cors = c
	}
	return nil
}
