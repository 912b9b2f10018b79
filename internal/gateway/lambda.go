package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/token"
)

// function runs a program speaking the AWS Lambda Runtime API: up to
// Concurrency warm processes, each with its own loopback runtime API
// endpoint, pulling invocations from one queue.
type function struct {
	cfg     *config.Function
	region  string
	account string
	log     *slog.Logger
	queue   chan *invocation
	workers []*worker
	closing chan struct{}
	wg      sync.WaitGroup
}

type invocation struct {
	id       string
	event    []byte
	deadline time.Time
	trace    string // Lambda-Runtime-Trace-Id
	done     chan invocationResult
}

type invocationResult struct {
	body    []byte
	errBody []byte // set when the function reported an error
}

// worker is one process with its runtime API listener.
type worker struct {
	f       *function
	ln      net.Listener
	srv     *http.Server
	mu      sync.Mutex
	cmd     *exec.Cmd
	current *invocation
	kill    chan struct{} // closed to kill the current process (timeout)
}

func newFunction(fc *config.Function, region, account string, log *slog.Logger) (*function, error) {
	f := &function{cfg: fc, region: region, account: account, log: log, queue: make(chan *invocation), closing: make(chan struct{})}
	for i := 0; i < fc.Concurrency; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			f.close()
			return nil, fmt.Errorf("gateway: function %s: %w", fc.Name, err)
		}
		w := &worker{f: f, ln: ln}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", w.next)
		mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", w.respond(false))
		mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", w.respond(true))
		mux.HandleFunc("POST /2018-06-01/runtime/init/error", w.initError)
		w.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go w.srv.Serve(ln)
		f.workers = append(f.workers, w)
		f.wg.Add(1)
		go w.run()
	}
	return f, nil
}

func (f *function) arn() string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", f.region, f.account, f.cfg.Name)
}

// run keeps the worker's process alive, restarting it when it exits.
func (w *worker) run() {
	defer w.f.wg.Done()
	backoff := 100 * time.Millisecond
	lastErr := ""
	for {
		select {
		case <-w.f.closing:
			return
		default:
		}
		started := time.Now()
		err := w.start()
		if err == nil {
			err = w.wait()
		}
		select {
		case <-w.f.closing:
			return
		default:
		}
		if msg := fmt.Sprint(err); msg != lastErr { // say it once, not at every retry
			w.f.log.Warn("gateway: function process exited; restarting", "function", w.f.cfg.Name, "err", err)
			lastErr = msg
		}
		if time.Since(started) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-w.f.closing:
			return
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

func (w *worker) start() error {
	fc := w.f.cfg
	cmd := exec.Command(fc.Command[0], fc.Command[1:]...)
	cmd.Dir = filepath.Dir(fc.Command[0])
	mem := fc.MemoryMB
	if mem == 0 {
		mem = 128
	}
	// As on AWS Lambda, a function sees the runtime's variables and its
	// own, not the server's environment (which holds the master key and
	// every env: secret of the configuration): of that only PATH, which
	// scripts' #! lines need.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")},
		"AWS_LAMBDA_RUNTIME_API="+w.ln.Addr().String(),
		"AWS_LAMBDA_FUNCTION_NAME="+fc.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(mem),
		"AWS_REGION="+w.f.region, "AWS_DEFAULT_REGION="+w.f.region,
		"_HANDLER="+filepath.Base(fc.Command[0]),
		"LAMBDA_TASK_ROOT="+cmd.Dir,
		"TZ=:UTC",
	)
	keys := make([]string, 0, len(fc.Env))
	for k := range fc.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+fc.Env[k])
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", fc.Command[0], err)
	}
	w.mu.Lock()
	w.cmd = cmd
	w.kill = make(chan struct{})
	w.mu.Unlock()
	return nil
}

// wait waits for the process to exit, killing it on request.
func (w *worker) wait() error {
	w.mu.Lock()
	cmd, kill := w.cmd, w.kill
	w.mu.Unlock()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		w.failCurrent()
		return err
	case <-kill:
	case <-w.f.closing:
		if terminateProcess(cmd) == nil {
			select {
			case err := <-exited:
				return err
			case <-time.After(2 * time.Second):
			}
		}
	}
	killProcess(cmd)
	err := <-exited
	w.failCurrent()
	return err
}

// failCurrent answers an invocation the process took and never answered.
func (w *worker) failCurrent() {
	w.mu.Lock()
	inv := w.current
	w.current = nil
	w.mu.Unlock()
	if inv != nil {
		select {
		case inv.done <- invocationResult{errBody: []byte(`{"errorMessage":"the function process exited","errorType":"Runtime.ExitError"}`)}:
		default:
		}
	}
}

func (w *worker) next(rw http.ResponseWriter, r *http.Request) {
	var inv *invocation
	select {
	case inv = <-w.f.queue:
	case <-r.Context().Done():
		return
	case <-w.f.closing:
		<-r.Context().Done() // the process is being stopped; hold the poll until it is gone
		return
	}
	w.mu.Lock()
	w.current = inv
	w.mu.Unlock()
	h := rw.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", w.f.arn())
	h.Set("Lambda-Runtime-Trace-Id", inv.trace)
	h.Set("Content-Type", "application/json")
	rw.Write(inv.event)
}

func (w *worker) respond(isErr bool) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, 6<<20))
		if err != nil {
			http.Error(rw, `{"errorMessage":"response too large"}`, http.StatusRequestEntityTooLarge)
			return
		}
		w.mu.Lock()
		inv := w.current
		if inv == nil || inv.id != r.PathValue("id") {
			w.mu.Unlock()
			http.Error(rw, `{"errorMessage":"unknown request id"}`, http.StatusBadRequest)
			return
		}
		w.current = nil
		w.mu.Unlock()
		res := invocationResult{body: body}
		if isErr {
			res = invocationResult{errBody: body}
		}
		select {
		case inv.done <- res:
		default:
		}
		rw.WriteHeader(http.StatusAccepted)
		rw.Write([]byte(`{"status":"OK"}`))
	}
}

func (w *worker) initError(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	w.f.log.Warn("gateway: function init error", "function", w.f.cfg.Name, "error", string(body))
	rw.WriteHeader(http.StatusAccepted)
	rw.Write([]byte(`{"status":"OK"}`))
}

var errTimeout = errors.New("gateway: function timed out")

// xrayTrace formats a W3C traceparent as the X-Ray trace header Lambda
// gives functions (Lambda-Runtime-Trace-Id, _X_AMZN_TRACE_ID): the same
// 128-bit trace id (1-<8 hex>-<24 hex>), the span as Parent.
func xrayTrace(traceparent string) string {
	sampled := "0"
	if traceparent[54] == '1' {
		sampled = "1"
	}
	return "Root=1-" + traceparent[3:11] + "-" + traceparent[11:35] + ";Parent=" + traceparent[36:52] + ";Sampled=" + sampled
}

// invoke queues event and waits for its result or the function's timeout.
// A process that holds a timed-out invocation is killed (and restarted).
// When ctx ends first (the caller went away) invoke returns at once, and
// the invocation runs on, still bounded by the timeout, so that a warm
// process is not killed for a caller's impatience.
func (f *function) invoke(ctx context.Context, event []byte, traceparent string) (invocationResult, error) {
	inv := &invocation{id: audit.NewRequestID(), event: event, deadline: time.Now().Add(f.cfg.Timeout),
		trace: xrayTrace(traceparent), done: make(chan invocationResult, 1)}
	timer := time.NewTimer(f.cfg.Timeout)
	select {
	case f.queue <- inv:
	case <-timer.C:
		return invocationResult{}, errTimeout // no worker took it in time
	case <-ctx.Done():
		timer.Stop()
		return invocationResult{}, ctx.Err()
	}
	select {
	case res := <-inv.done:
		timer.Stop()
		return res, nil
	case <-timer.C:
		f.kill(inv)
		return invocationResult{}, errTimeout
	case <-ctx.Done():
		go func() {
			select {
			case <-inv.done:
				timer.Stop()
			case <-timer.C:
				f.kill(inv)
			}
		}()
		return invocationResult{}, ctx.Err()
	}
}

// kill kills the process working on inv, if one still is.
func (f *function) kill(inv *invocation) {
	for _, w := range f.workers {
		w.mu.Lock()
		if w.current == inv {
			w.current = nil
			close(w.kill)
		}
		w.mu.Unlock()
	}
}

func (f *function) close() {
	select {
	case <-f.closing:
		return
	default:
	}
	close(f.closing)
	f.wg.Wait() // processes stopped first, so none sees its runtime API vanish
	for _, w := range f.workers {
		w.srv.Close()
	}
}

// --- API Gateway HTTP API payload format 2.0 -----------------------------------

type v2Event struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	PathParameters        map[string]string `json:"pathParameters,omitempty"`
	RequestContext        v2Context         `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

type v2Context struct {
	AccountID    string        `json:"accountId"`
	APIID        string        `json:"apiId"`
	Authorizer   *v2Authorizer `json:"authorizer,omitempty"`
	DomainName   string        `json:"domainName"`
	DomainPrefix string        `json:"domainPrefix"`
	HTTP         v2HTTP        `json:"http"`
	RequestID    string        `json:"requestId"`
	RouteKey     string        `json:"routeKey"`
	Stage        string        `json:"stage"`
	Time         string        `json:"time"`
	TimeEpoch    int64         `json:"timeEpoch"`
}

type v2Authorizer struct {
	JWT v2JWT `json:"jwt"`
}

type v2JWT struct {
	Claims map[string]string `json:"claims"`
	Scopes []string          `json:"scopes"`
}

type v2HTTP struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

type v2Response struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
	Cookies           []string            `json:"cookies"`
}

// stringClaims formats claims as API Gateway does for JWT authorizers:
// every value a string, arrays as "[a b]", objects as JSON, nulls dropped.
func stringClaims(raw map[string]any) map[string]string {
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if s, ok := claimString(v); ok {
			out[k] = s
		}
	}
	return out
}

func claimString(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10), true
		}
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := claimString(e); ok {
				parts = append(parts, s)
			}
		}
		return "[" + strings.Join(parts, " ") + "]", true
	default:
		b, _ := json.Marshal(x)
		return string(b), true
	}
}

func (g *Gateway) buildEvent(r *http.Request, rt *route, params map[string]string, c *token.Claims, reqID string, body []byte) ([]byte, error) {
	now := g.opts.Now()
	ev := v2Event{Version: "2.0", RouteKey: rt.key, RawPath: r.URL.EscapedPath(), RawQueryString: r.URL.RawQuery,
		Headers: map[string]string{}, PathParameters: params,
		RequestContext: v2Context{AccountID: g.account, APIID: "writ", DomainName: r.Host, DomainPrefix: strings.Split(r.Host, ".")[0],
			HTTP:      v2HTTP{Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: audit.Request(r.Context()).SourceIP, UserAgent: r.UserAgent()},
			RequestID: reqID, RouteKey: rt.key, Stage: "$default", Time: now.UTC().Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli()}}
	// Hop-by-hop headers concern the client's connection, not the function
	// (a Proxy-Authorization is for a proxy); the Authorization the gateway
	// verified stays, even named in Connection.
	hop := hopSet(r.Header["Connection"])
	for k, vs := range r.Header {
		if hop[k] && k != "Authorization" {
			continue
		}
		name := strings.ToLower(k)
		if name == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		ev.Headers[name] = strings.Join(vs, ",")
	}
	if r.URL.RawQuery != "" {
		ev.QueryStringParameters = map[string]string{}
		for k, vs := range r.URL.Query() {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if c != nil {
		jwt := v2JWT{Claims: stringClaims(c.Raw)}
		if len(rt.cfg.Scopes) > 0 {
			jwt.Scopes = c.Scopes()
		}
		ev.RequestContext.Authorizer = &v2Authorizer{JWT: jwt}
	}
	if len(body) > 0 {
		if utf8.Valid(body) && !bytes.ContainsRune(body, 0) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return json.Marshal(ev)
}

// functionHopHeaders returns the canonical names of the hop-by-hop headers
// of a function's response: the standard ones and those its Connection
// headers (in either map, in any case) name. The function's response is
// no HTTP message of a connection of its own, and they would act on the
// client's: framing it (Transfer-Encoding), closing it, or passing on
// what the function meant for the gateway.
func functionHopHeaders(resp *v2Response) map[string]bool {
	var connection []string
	for k, v := range resp.Headers {
		if strings.EqualFold(k, "Connection") {
			connection = append(connection, v)
		}
	}
	for k, vs := range resp.MultiValueHeaders {
		if strings.EqualFold(k, "Connection") {
			connection = append(connection, vs...)
		}
	}
	return hopSet(connection)
}

// standardHop is the set of hopHeaders, built once.
var standardHop = func() map[string]bool {
	hop := make(map[string]bool, len(hopHeaders))
	for _, k := range hopHeaders {
		hop[k] = true
	}
	return hop
}()

// hopSet returns the canonical names of a message's hop-by-hop headers:
// the standard ones and those its Connection values name. Callers only
// read it: without Connection values it is standardHop itself, so that a
// function request (nearly all have none) builds no map.
func hopSet(connection []string) map[string]bool {
	if len(connection) == 0 {
		return standardHop
	}
	hop := maps.Clone(standardHop)
	for _, v := range connection {
		connectionOptions(v, func(name string) { hop[http.CanonicalHeaderKey(name)] = true })
	}
	return hop
}

// writeResult turns a function's result into the HTTP response (payload
// format 2.0). With gatewayCORS the function's own Access-Control-*
// headers are dropped: the gateway has set its own. Its hop-by-hop headers
// are dropped always.
func writeResult(w http.ResponseWriter, res invocationResult, gatewayCORS bool) {
	if res.errBody != nil {
		writeMessage(w, http.StatusBadGateway, "Internal Server Error")
		return
	}
	var resp v2Response
	trimmed := bytes.TrimSpace(res.body)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &resp) == nil && resp.StatusCode != 0 {
		if resp.StatusCode < 100 || resp.StatusCode > 599 {
			// API Gateway's answer to a malformed integration response.
			writeMessage(w, http.StatusBadGateway, "Internal Server Error")
			return
		}
		hop := functionHopHeaders(&resp)
		skip := func(k string) bool { // the gateway's own: its CORS, and the request id its audit events carry; and hop-by-hop ones
			return gatewayCORS && len(k) > 15 && strings.EqualFold(k[:15], "access-control-") || strings.EqualFold(k, "X-Request-Id") ||
				hop[http.CanonicalHeaderKey(k)]
		}
		for k, v := range resp.Headers {
			if !skip(k) {
				w.Header().Set(k, v)
			}
		}
		for k, vs := range resp.MultiValueHeaders {
			for _, v := range vs {
				if !skip(k) {
					w.Header().Add(k, v)
				}
			}
		}
		for _, c := range resp.Cookies {
			w.Header().Add("Set-Cookie", c)
		}
		body := []byte(resp.Body)
		if resp.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(resp.Body)
			if err != nil {
				writeMessage(w, http.StatusBadGateway, "Internal Server Error")
				return
			}
			body = b
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
		return
	}
	// A bare value is a 200 JSON body (payload format 2.0's inference).
	if !json.Valid(trimmed) {
		writeMessage(w, http.StatusBadGateway, "Internal Server Error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(trimmed)
}
