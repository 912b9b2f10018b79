package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/awsjson"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/jwks"
	"github.com/writ-id/writ/internal/token"
)

// Options are what the gateway needs besides its configuration.
type Options struct {
	// IDPURL is the idp's public URL, where pools' token endpoints live
	// (for propagate: exchange).
	IDPURL string
	Audit  audit.Recorder
	Log    *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Transport reaches upstreams and the token endpoint; default a tuned
	// http.Transport.
	Transport http.RoundTripper
}

// Gateway serves the configured routes.
type Gateway struct {
	account     string
	functions   map[string]*function
	table       *table
	authorizers map[string]*authorizer
	proxy       *httputil.ReverseProxy
	exchanger   *exchanger
	upstreams   map[*config.Route]*url.URL
	opts        Options
	stop        context.CancelFunc
}

// New builds the gateway from cfg and starts its JWKS refreshers; Close
// stops them.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Transport == nil {
		opts.Transport = &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          2048,
			MaxIdleConnsPerHost:   512,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			ForceAttemptHTTP2:     false,
		}
	}
	t, err := newTable(cfg.Gateway.Routes)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	g := &Gateway{table: t, authorizers: map[string]*authorizer{}, upstreams: map[*config.Route]*url.URL{}, opts: opts, stop: stop,
		account: cfg.Account, functions: map[string]*function{}}
	jwksClient := &http.Client{Transport: opts.Transport, Timeout: 10 * time.Second}
	for i := range cfg.Gateway.Authorizers {
		ac := &cfg.Gateway.Authorizers[i]
		remote := jwks.New(ac.Issuer, jwks.Options{Client: jwksClient, Now: opts.Now})
		remote.Start(ctx)
		g.authorizers[ac.Name] = &authorizer{cfg: ac, keys: remote, now: opts.Now, cache: newVerifiedCache(100_000),
			verifier: &token.Verifier{Issuer: strings.TrimRight(ac.Issuer, "/"), Keys: remote, Skew: ac.Skew, Now: opts.Now}}
	}
	for _, r := range t.routes {
		if r.cfg.Authorizer != "" && g.authorizers[r.cfg.Authorizer] == nil {
			stop()
			return nil, fmt.Errorf("gateway: route %q: no authorizer %q", r.key, r.cfg.Authorizer)
		}
		if r.cfg.Upstream != "" {
			u, err := url.Parse(r.cfg.Upstream)
			if err != nil {
				stop()
				return nil, fmt.Errorf("gateway: route %q: upstream: %w", r.key, err)
			}
			g.upstreams[r.cfg] = u
		}
	}
	for i := range cfg.Gateway.Functions {
		fc := &cfg.Gateway.Functions[i]
		fn, err := newFunction(fc, cfg.Region, cfg.Account, opts.Log)
		if err != nil {
			g.Close()
			return nil, err
		}
		g.functions[fc.Name] = fn
	}
	if gc := cfg.Gateway.Client; gc.ClientID != "" {
		g.exchanger = &exchanger{tokenURL: strings.TrimRight(opts.IDPURL, "/") + "/" + gc.UserPool + "/oauth2/token",
			clientID: gc.ClientID, secret: gc.Secret.Reveal(), client: &http.Client{Transport: opts.Transport, Timeout: 10 * time.Second},
			now: opts.Now, cache: map[string]exchanged{}}
	}
	g.proxy = &httputil.ReverseProxy{
		Transport:     opts.Transport,
		FlushInterval: -1, // stream
		Rewrite:       g.rewrite,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status := http.StatusBadGateway
			if errors.Is(err, context.DeadlineExceeded) {
				status = http.StatusGatewayTimeout
			}
			if !errors.Is(err, context.Canceled) {
				opts.Log.Warn("gateway: upstream error", "path", r.URL.Path, "err", err)
			}
			writeMessage(w, status, http.StatusText(status))
		},
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
		f, e := a.keys.Stats()
		out[a.cfg.Issuer] = [2]int{f, e}
	}
	return out
}

// CachedTokens returns how many verified tokens the authorizers cache.
func (g *Gateway) CachedTokens() int {
	n := 0
	for _, a := range g.authorizers {
		n += a.cache.len()
	}
	return n
}

// Close stops background work and the function processes.
func (g *Gateway) Close() {
	g.stop()
	for _, f := range g.functions {
		f.close()
	}
}

type ctxKey struct{}

// forward is what ServeHTTP decided, handed to rewrite.
type forward struct {
	route *route
	auth  string // Authorization header value for the upstream ("" keeps the caller's)
	reqID string
	trace string
}

func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	f := pr.In.Context().Value(ctxKey{}).(*forward)
	up := g.upstreams[f.route.cfg]
	pr.SetURL(up)
	if up.Path == "" || up.Path == "/" {
		pr.Out.URL.Path, pr.Out.URL.RawPath = pr.In.URL.Path, pr.In.URL.RawPath
	}
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	pr.SetXForwarded()
	pr.Out.Host = up.Host
	pr.Out.Header.Set("X-Request-Id", f.reqID)
	pr.Out.Header.Set("traceparent", f.trace)
	if f.auth != "" {
		pr.Out.Header.Set("Authorization", f.auth)
	}
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

var hexRE = "0123456789abcdef"

func validTraceparent(tp string) bool {
	if len(tp) != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return false
	}
	for i, c := range tp {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if !strings.ContainsRune(hexRE, c) {
			return false
		}
	}
	return tp[3:35] != strings.Repeat("0", 32)
}

func newTraceparent(traceID string) string {
	var b [8]byte
	rand.Read(b[:])
	if traceID == "" {
		var t [16]byte
		rand.Read(t[:])
		traceID = hex.EncodeToString(t[:])
	}
	return "00-" + traceID + "-" + hex.EncodeToString(b[:]) + "-01"
}

// ServeHTTP routes, authorizes and proxies one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := r.Header.Get("X-Request-Id")
	if reqID == "" || len(reqID) > 128 {
		reqID = audit.NewRequestID()
	}
	w.Header().Set("X-Request-Id", reqID)
	tp := r.Header.Get("traceparent")
	trace := ""
	if validTraceparent(tp) {
		trace = newTraceparent(tp[3:35]) // same trace, a new span for this hop
	} else {
		trace = newTraceparent("")
	}
	ctx := audit.WithRequest(r.Context(), audit.RequestInfo{ID: reqID, TraceID: trace[3:35], SourceIP: awsjson.SourceIP(r)})

	rt, params, allowed := g.table.match(r.Method, r.URL.Path)
	if rt == nil {
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(dedupe(allowed), ", "))
			writeMessage(w, http.StatusMethodNotAllowed, "Method Not Allowed")
			return
		}
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	f := &forward{route: rt, reqID: reqID, trace: trace}
	var claims *token.Claims
	if rt.cfg.Authorizer != "" {
		a := g.authorizers[rt.cfg.Authorizer]
		raw := bearer(r)
		var aerr *authError
		claims, aerr = a.authorize(ctx, raw, rt.cfg.Scopes)
		if aerr != nil {
			g.record(ctx, rt, claims, audit.Deny, aerr.description)
			hdr := fmt.Sprintf(`Bearer error=%q, error_description=%q`, aerr.code, aerr.description)
			if aerr.scope != "" {
				hdr += fmt.Sprintf(`, scope=%q`, aerr.scope)
			}
			w.Header().Set("WWW-Authenticate", hdr)
			writeMessage(w, aerr.status, http.StatusText(aerr.status))
			return
		}
		if rt.cfg.Propagate == "exchange" {
			tok, err := g.exchanger.exchange(ctx, raw, rt.cfg.Audience)
			if err != nil {
				g.opts.Log.Warn("gateway: token exchange failed", "route", rt.key, "err", err)
				g.record(ctx, rt, claims, audit.Error, "token exchange failed")
				writeMessage(w, http.StatusBadGateway, "Bad Gateway")
				return
			}
			f.auth = "Bearer " + tok
		}
	}
	if rt.cfg.MaxBody > 0 {
		if r.ContentLength > rt.cfg.MaxBody {
			writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, rt.cfg.MaxBody)
	}
	if fn := g.functions[rt.cfg.Function]; rt.cfg.Function != "" {
		g.invokeFunction(w, r.WithContext(ctx), fn, rt, params, claims, reqID)
		return
	}
	g.record(ctx, rt, claims, audit.Allow, "")
	pctx := context.WithValue(ctx, ctxKey{}, f)
	if rt.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(pctx, rt.cfg.Timeout)
		defer cancel()
	}
	g.proxy.ServeHTTP(w, r.WithContext(pctx))
}

func (g *Gateway) invokeFunction(w http.ResponseWriter, r *http.Request, fn *function, rt *route, params map[string]string, c *token.Claims, reqID string) {
	if fn == nil {
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	event, err := g.buildEvent(r, rt, params, c, reqID, body)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	g.record(r.Context(), rt, c, audit.Allow, "")
	res, err := fn.invoke(r.Context(), event)
	switch {
	case errors.Is(err, errTimeout):
		writeMessage(w, http.StatusGatewayTimeout, "Endpoint request timed out")
	case err != nil:
		writeMessage(w, http.StatusBadGateway, "Internal Server Error")
	default:
		writeResult(w, res)
	}
}

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

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// exchanger trades caller tokens for tokens bound to an upstream's
// audience, caching each until shortly before it expires.
type exchanger struct {
	tokenURL, clientID, secret string
	client                     *http.Client
	now                        func() time.Time
	mu                         sync.Mutex
	cache                      map[string]exchanged
}

type exchanged struct {
	token string
	until time.Time
}

func (x *exchanger) exchange(ctx context.Context, subject, audience string) (string, error) {
	if x == nil {
		return "", errors.New("gateway: no gateway.client configured for propagate: exchange")
	}
	sum := sha256.Sum256([]byte(subject))
	key := hex.EncodeToString(sum[:]) + "|" + audience
	now := x.now()
	x.mu.Lock()
	if e, ok := x.cache[key]; ok && now.Before(e.until) {
		x.mu.Unlock()
		return e.token, nil
	}
	x.mu.Unlock()
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {audience}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(x.clientID), url.QueryEscape(x.secret))
	if info := audit.Request(ctx); info.ID != "" {
		req.Header.Set("X-Request-Id", info.ID)
	}
	resp, err := x.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("gateway: token exchange: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 64<<10)).Decode(&out); err != nil || resp.StatusCode != 200 || out.AccessToken == "" {
		return "", fmt.Errorf("gateway: token exchange: status %d %s", resp.StatusCode, out.Error)
	}
	life := time.Duration(out.ExpiresIn) * time.Second
	margin := life / 10
	if margin > time.Minute {
		margin = time.Minute
	}
	x.mu.Lock()
	if len(x.cache) > 100_000 {
		x.cache = map[string]exchanged{}
	}
	x.cache[key] = exchanged{token: out.AccessToken, until: now.Add(life - margin)}
	x.mu.Unlock()
	return out.AccessToken, nil
}
