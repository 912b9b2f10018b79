package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/writ-id/writ/internal/auditevent"
)

// AuditScope is the scope a client needs to send events to writ's audit
// trail: declare a resource server "writ" with the scope "audit.write" in
// the user pool and grant it to the service's client (client_credentials).
const AuditScope = "writ/audit.write"

// Audit outcomes.
const (
	AuditAllow = "allow"
	AuditDeny  = "deny"
	AuditError = "error"
)

// AuditEvent is one decision or action of a service, for writ's audit trail.
type AuditEvent struct {
	// Action is what was done or refused, e.g. orders:Get. Required.
	Action string `json:"action"`
	// Outcome is AuditAllow, AuditDeny or AuditError. Required.
	Outcome  string `json:"outcome"`
	Reason   string `json:"reason,omitempty"`
	Resource string `json:"resource,omitempty"`
	// RequestID defaults to the request id of the context (RequestID).
	RequestID string `json:"request_id,omitempty"`
	// TraceID defaults to the trace of the context: its OpenTelemetry span,
	// else its traceparent (Middleware, WithRequest).
	TraceID string `json:"trace_id,omitempty"`
	// Sub and ActorChain default to the identity of the context.
	Sub        string   `json:"sub,omitempty"`
	ActorChain []string `json:"actor_chain,omitempty"`
	// Time is when it happened, if not just now: writ stamps events with
	// the time it receives them, and accepts a Time of the last 24 hours.
	Time time.Time `json:"time,omitzero"`
	// Component is set by the sink: the service's name.
	Component string `json:"component"`
}

// AuditSink receives a service's audit events. Record never blocks on I/O
// and never fails the caller's operation.
type AuditSink interface {
	Record(ctx context.Context, e AuditEvent)
}

// complete fills e's defaults from ctx.
func (e *AuditEvent) complete(ctx context.Context, component string) {
	e.Component = component
	ri, _ := ctx.Value(requestKey{}).(requestInfo)
	if e.RequestID == "" {
		e.RequestID = ri.id
	}
	if e.TraceID == "" {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			e.TraceID = sc.TraceID().String()
		} else if tp := ri.traceparent; len(tp) == 55 && tp[2] == '-' && tp[35] == '-' && tp[3:35] != "00000000000000000000000000000000" {
			e.TraceID = strings.ToLower(tp[3:35])
		}
	}
	if id, ok := FromContext(ctx); ok && e.Sub == "" {
		e.Sub = id.Subject
		if e.ActorChain == nil {
			e.ActorChain = id.ActorChain
		}
	}
}

// clean makes e acceptable to writ's ingest endpoint, so that one odd
// event (a multi-line error as its reason, an overlong action) is recorded
// as well as it can be instead of failing the batch it travels in: text
// loses control characters and is cut to writ's limits, an unknown
// outcome becomes AuditError (named in the reason), a malformed trace id
// is dropped.
func (e *AuditEvent) clean() {
	switch e.Outcome {
	case AuditAllow, AuditDeny, AuditError:
	default:
		e.Reason = "outcome " + strconvQuote(e.Outcome) + ": " + e.Reason
		e.Outcome = AuditError
	}
	if e.Action == "" {
		e.Action = "unknown"
	}
	e.Action = auditevent.Clean(e.Action, auditevent.MaxAction)
	e.Reason = auditevent.Clean(e.Reason, auditevent.MaxReason)
	e.RequestID = auditevent.Clean(e.RequestID, auditevent.MaxRequestID)
	e.Sub = auditevent.Clean(e.Sub, auditevent.MaxSub)
	e.Resource = auditevent.Clean(e.Resource, auditevent.MaxResource)
	if len(e.TraceID) != 32 || strings.Trim(e.TraceID, "0123456789abcdef") != "" || e.TraceID == strings.Repeat("0", 32) {
		e.TraceID = ""
	}
	if len(e.ActorChain) > auditevent.MaxActors {
		e.ActorChain = e.ActorChain[len(e.ActorChain)-auditevent.MaxActors:] // the nearest actors
	}
	chain := make([]string, 0, len(e.ActorChain))
	for _, a := range e.ActorChain {
		if a = auditevent.Clean(a, auditevent.MaxActor); a != "" {
			chain = append(chain, a)
		}
	}
	e.ActorChain = chain
}

func strconvQuote(s string) string { return strconv.Quote(auditevent.Clean(s, 64)) }

// LogAuditSink keeps a service's audit events in its own log: one record
// per event at level Info, message "audit", the event's fields as
// attributes.
type LogAuditSink struct {
	Logger *slog.Logger // default slog.Default()
	// Component is the service's name.
	Component string
}

// Record implements AuditSink.
func (s LogAuditSink) Record(ctx context.Context, e AuditEvent) {
	e.complete(ctx, s.Component)
	logEvent(ctx, s.Logger, slog.LevelInfo, "audit", e)
}

func logEvent(ctx context.Context, l *slog.Logger, level slog.Level, msg string, e AuditEvent, extra ...slog.Attr) {
	if l == nil {
		l = slog.Default()
	}
	attrs := append([]slog.Attr{slog.String("component", e.Component), slog.String("action", e.Action), slog.String("outcome", e.Outcome),
		slog.String("reason", e.Reason), slog.String("resource", e.Resource), slog.String("request_id", e.RequestID),
		slog.String("trace_id", e.TraceID), slog.String("sub", e.Sub), slog.Any("actor_chain", e.ActorChain)}, extra...)
	if !e.Time.IsZero() {
		attrs = append(attrs, slog.Time("event_time", e.Time))
	}
	l.LogAttrs(ctx, level, msg, attrs...)
}

// AuditConfig configures an AuditClient.
type AuditConfig struct {
	// URL is writ's ingest endpoint: <identity listener URL>/audit/events.
	URL string
	// Component is the service's name, recorded as each event's component
	// (letters, digits, '.', '_', '-'; not one of writ's own components).
	Component string
	// Credentials are the service's client, which gets tokens with
	// AuditScope by the client_credentials grant.
	Credentials ClientCredentials
	// HTTPClient sends tokens requests and events; default a 10s-timeout client.
	HTTPClient *http.Client
	// QueueSize bounds the events waiting to be sent; default 10,000. When
	// it is full, Record drops the event and logs it to Log instead.
	QueueSize int
	// BatchSize is the most events sent in one request; default 100 (writ
	// accepts up to 500).
	BatchSize int
	// FlushInterval is the longest an event waits for a batch to fill;
	// default 1s.
	FlushInterval time.Duration
	// Log receives the events that could not be delivered (queue full,
	// refused by writ, writ unreachable after retries), so none is lost
	// silently; default slog.Default().
	Log *slog.Logger
}

// AuditClient sends a service's audit events to writ's trail in batches,
// in the background. It is safe for concurrent use; Close it on shutdown.
type AuditClient struct {
	cfg    AuditConfig
	ch     chan auditItem
	done   chan struct{}
	mu     sync.RWMutex
	closed bool

	dropped atomic.Int64

	tokMu    sync.Mutex
	tok      string
	tokUntil time.Time
}

// auditItem is an event, or a flush (flush set) or the last item (stop
// and flush set).
type auditItem struct {
	ev    AuditEvent
	flush chan error
	stop  bool
}

// NewAuditClient starts a client sending to cfg.URL.
func NewAuditClient(cfg AuditConfig) (*AuditClient, error) {
	if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sdk: audit: URL %q is not an http(s) URL", cfg.URL)
	}
	if err := auditevent.CheckComponent(cfg.Component); err != nil {
		return nil, fmt.Errorf("sdk: audit: %w", err) // writ would refuse every batch
	}
	if cfg.Credentials.TokenURL == "" || cfg.Credentials.ClientID == "" {
		return nil, errors.New("sdk: audit: Credentials are required")
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 10_000
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > 500 {
		cfg.BatchSize = 100
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = defaultClient
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	c := &AuditClient{cfg: cfg, ch: make(chan auditItem, cfg.QueueSize), done: make(chan struct{})}
	go c.run()
	return c, nil
}

// Record queues e, its defaults filled from ctx (request id, trace id,
// identity). It never blocks: with the queue full, or after Close, the
// event goes to the log instead.
func (c *AuditClient) Record(ctx context.Context, e AuditEvent) {
	e.complete(ctx, c.cfg.Component)
	e.clean()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.closed {
		select {
		case c.ch <- auditItem{ev: e}:
			return
		default:
		}
	}
	c.dropped.Add(1)
	logEvent(ctx, c.cfg.Log, slog.LevelWarn, "audit event not sent to writ (queue full or client closed)", e)
}

// Dropped returns how many events were not delivered to writ (and went to
// the log instead).
func (c *AuditClient) Dropped() int64 { return c.dropped.Load() }

// Flush sends every event recorded before it and returns the first
// delivery error, if any.
func (c *AuditClient) Flush(ctx context.Context) error {
	res := make(chan error, 1)
	select {
	case c.ch <- auditItem{flush: res}:
	case <-c.done:
		return errors.New("sdk: audit: client closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-res:
		return err
	case <-c.done:
		return errors.New("sdk: audit: client closed")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close sends what is queued and stops the client; events recorded after
// it go to the log.
func (c *AuditClient) Close(ctx context.Context) error {
	c.mu.Lock()
	first := !c.closed
	c.closed = true // no Record enqueues after this: the stop item is the last
	c.mu.Unlock()
	res := make(chan error, 1)
	if first {
		go func() { c.ch <- auditItem{flush: res, stop: true} }()
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-res:
		return err
	default:
		return nil
	}
}

func (c *AuditClient) run() {
	defer close(c.done)
	batch := make([]AuditEvent, 0, c.cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var failed error // the first delivery error since the last flush
	send := func() {
		if len(batch) > 0 {
			if err := c.deliver(batch); err != nil && failed == nil {
				failed = err
			}
			batch = batch[:0]
		}
		timer.Stop()
	}
	for {
		select {
		case it := <-c.ch:
			switch {
			case it.flush != nil:
				send()
				it.flush <- failed
				failed = nil
				if it.stop {
					return
				}
			default:
				batch = append(batch, it.ev)
				if len(batch) == 1 {
					timer.Reset(c.cfg.FlushInterval)
				}
				if len(batch) >= c.cfg.BatchSize {
					send()
				}
			}
		case <-timer.C:
			send()
		}
	}
}

// deliver posts batch, retrying transient failures a few times (about 15
// s in all); events it cannot deliver go to the log.
func (c *AuditClient) deliver(batch []AuditEvent) error {
	body, err := json.Marshal(batch)
	if err != nil {
		return c.undelivered(batch, err)
	}
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		retry, err := c.post(body)
		if err == nil {
			return nil
		}
		if !retry || attempt == 6 {
			return c.undelivered(batch, err)
		}
		time.Sleep(backoff)
		backoff *= 2
	}
}

func (c *AuditClient) undelivered(batch []AuditEvent, err error) error {
	c.dropped.Add(int64(len(batch)))
	for _, e := range batch {
		logEvent(context.Background(), c.cfg.Log, slog.LevelWarn, "audit event not delivered to writ", e, slog.String("err", err.Error()))
	}
	return fmt.Errorf("sdk: audit: %d events not delivered: %w", len(batch), err)
}

// post sends one batch; retry says whether trying again may help.
func (c *AuditClient) post(body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := c.token(ctx)
	if err != nil {
		var te *tokenError
		return !errors.As(err, &te) || te.status >= 500, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	var answer struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&answer)
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode == http.StatusUnauthorized: // the token may have been revoked or its key retired
		c.tokMu.Lock()
		c.tok = ""
		c.tokMu.Unlock()
		return true, fmt.Errorf("writ refused the token: %s %s", answer.Error, answer.ErrorDescription)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("writ answered %d", resp.StatusCode)
	}
	return false, fmt.Errorf("writ refused the events: %d %s %s", resp.StatusCode, answer.Error, answer.ErrorDescription)
}

// token returns an access token with AuditScope, from the
// client_credentials grant, reused until shortly before it expires.
func (c *AuditClient) token(ctx context.Context) (string, error) {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	if c.tok != "" && time.Now().Before(c.tokUntil) {
		return c.tok, nil
	}
	cr := c.cfg.Credentials
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {AuditScope}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cr.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(cr.ClientID), url.QueryEscape(cr.ClientSecret)) // RFC 6749 §2.3.1
	start := time.Now()
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken      string `json:"access_token"`
		ExpiresIn        int64  `json:"expires_in"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	derr := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	if resp.StatusCode != http.StatusOK || derr != nil || body.AccessToken == "" {
		return "", &tokenError{status: resp.StatusCode, code: body.Error, desc: body.ErrorDescription}
	}
	life := time.Duration(body.ExpiresIn) * time.Second
	c.tok, c.tokUntil = body.AccessToken, start.Add(life-min(life/10, time.Minute))
	return c.tok, nil
}

// tokenError is a refusal from the token endpoint (RFC 6749 §5.2).
type tokenError struct {
	status     int
	code, desc string
}

func (e *tokenError) Error() string {
	return fmt.Sprintf("token request refused: %d %s %s", e.status, e.code, e.desc)
}

var (
	_ AuditSink = (*AuditClient)(nil)
	_ AuditSink = LogAuditSink{}
)
