// Package auditapi serves POST /audit/events, through which services add
// their own events to writ's audit trail. The caller authenticates with an
// OAuth 2.0 access token of one of writ's user pools carrying the scope
// writ/audit.write (usually a client_credentials token of the service's
// own client) and sends a JSON array of events, or JSON lines. Every event
// is validated before any is stored (all or nothing); accepted events go
// to the Recorder the handler was given (in writ, a writer stream of their
// own, so that the hash chain and `writ audit verify` cover them), with
// the client that sent them as their client_id.
package auditapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/auditevent"
	"github.com/writ-id/writ/internal/awsjson"
	"github.com/writ-id/writ/internal/token"
	"github.com/writ-id/writ/internal/tracing"
)

// Path is where the handler is served.
const Path = "/audit/events"

// Scope is the scope a token needs: resource server "writ", scope
// "audit.write".
const Scope = "writ/audit.write"

// Limits of one request.
const (
	MaxBody   = 1 << 20
	MaxEvents = 500
)

// Reserved are component names only writ itself writes under.
var Reserved = auditevent.Reserved

// Pool is a user pool whose access tokens are accepted.
type Pool struct {
	ID       string
	Verifier *token.Verifier // its Issuer names the pool's issuer
	// Components maps a client to the components it may post events as. A
	// client it does not list may post as any component not Reserved that
	// no other client is given.
	Components map[string][]string

	claimed map[string]string // component -> the client given it (New)
}

// Options configure a Handler.
type Options struct {
	Pools []Pool
	// Recorder stores accepted events.
	Recorder audit.Recorder
	// Flush, when set, is called before answering, so that 200 means the
	// events are stored (202 when it did not finish in time).
	Flush func(context.Context) error
	Log   *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Handler serves Path.
type Handler struct {
	opts  Options
	pools map[string]Pool // by issuer
}

// New returns a Handler.
func New(opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	h := &Handler{opts: opts, pools: map[string]Pool{}}
	for _, p := range opts.Pools {
		p.claimed = map[string]string{}
		for client, comps := range p.Components {
			for _, c := range comps {
				p.claimed[c] = client
			}
		}
		h.pools[p.Verifier.Issuer] = p
	}
	return h
}

// Event is one event as a service sends it. Component, Action and Outcome
// are required; the rest is optional.
type Event struct {
	// Component is the sending service's name (not one of Reserved).
	Component string `json:"component"`
	Action    string `json:"action"`
	// Outcome is allow, deny or error.
	Outcome   string `json:"outcome"`
	Reason    string `json:"reason,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// TraceID is a W3C trace id: 32 lower-case hex digits.
	TraceID    string   `json:"trace_id,omitempty"`
	Sub        string   `json:"sub,omitempty"`
	ActorChain []string `json:"actor_chain,omitempty"`
	Resource   string   `json:"resource,omitempty"`
	// Time is when it happened (RFC 3339), at most a day ago and 5 minutes
	// ahead; default when writ receives it.
	Time *time.Time `json:"time,omitempty"`
}

// apiError is a refusal, rendered as an OAuth 2.0 error (RFC 6749 §5.2,
// RFC 6750 §3).
type apiError struct {
	status int
	code   string // "" for a request without credentials (RFC 6750 §3.1)
	desc   string
	cause  error // for the log only
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.desc) }

func invalidRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", desc: fmt.Sprintf(format, args...)}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, status, err := h.serve(w, r)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{status: http.StatusInternalServerError, code: "server_error", desc: "internal error", cause: err}
		}
		h.writeError(w, r, ae)
		return
	}
	writeJSON(w, status, map[string]int{"accepted": n})
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (int, int, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return 0, 0, &apiError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "use POST"}
	}
	claims, pool, err := h.authenticate(r)
	if err != nil {
		return 0, 0, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return 0, 0, &apiError{status: http.StatusRequestEntityTooLarge, code: "invalid_request", desc: fmt.Sprintf("the body exceeds %d bytes", MaxBody)}
		}
		return 0, 0, invalidRequest("the body could not be read")
	}
	evs, err := decode(body)
	if err != nil {
		return 0, 0, err
	}
	now := h.opts.Now()
	allowed := pool.Components[claims.ClientID]
	for i := range evs {
		if err := validate(&evs[i], now); err != nil {
			return 0, 0, invalidRequest("events[%d].%s", i, err)
		}
		if len(allowed) > 0 && !slices.Contains(allowed, evs[i].Component) {
			return 0, 0, &apiError{status: http.StatusForbidden, code: "insufficient_scope",
				desc: fmt.Sprintf("events[%d].component: this client posts events only as %s", i, strings.Join(allowed, ", "))}
		}
		if owner, ok := pool.claimed[evs[i].Component]; ok && owner != claims.ClientID {
			return 0, 0, &apiError{status: http.StatusForbidden, code: "insufficient_scope",
				desc: fmt.Sprintf("events[%d].component: %s is another client's", i, evs[i].Component)}
		}
	}
	ctx := context.Background() // the events carry their own request ids, not this call's
	for _, e := range evs {
		ev := audit.Event{Component: e.Component, Action: e.Action, Outcome: e.Outcome, Reason: e.Reason, RequestID: e.RequestID,
			TraceID: e.TraceID, Sub: e.Sub, ActorChain: e.ActorChain, Resource: e.Resource,
			ClientID: claims.ClientID, PoolID: pool.ID, SourceIP: remoteIP(r)}
		if e.Time != nil {
			ev.Time = *e.Time
		}
		h.opts.Recorder.Record(ctx, ev)
	}
	h.opts.Log.Debug("audit: events ingested", "client_id", claims.ClientID, "events", len(evs))
	if h.opts.Flush != nil {
		fctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if err := h.opts.Flush(fctx); err != nil {
			return len(evs), http.StatusAccepted, nil
		}
	}
	return len(evs), http.StatusOK, nil
}

// authenticate verifies the bearer token: an access token of one of the
// pools, with Scope.
func (h *Handler) authenticate(r *http.Request) (*token.Claims, Pool, error) {
	raw := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(raw) < 7 || !strings.EqualFold(raw[:7], "bearer ") {
		return nil, Pool{}, &apiError{status: http.StatusUnauthorized, desc: "a bearer token is required"}
	}
	raw = strings.TrimSpace(raw[7:])
	pool, ok := h.pools[issuerOf(raw)]
	if !ok {
		return nil, Pool{}, &apiError{status: http.StatusUnauthorized, code: "invalid_token", desc: "the token is not from a user pool of this writ"}
	}
	c, err := pool.Verifier.Verify(r.Context(), raw)
	if err != nil {
		return nil, Pool{}, &apiError{status: http.StatusUnauthorized, code: "invalid_token", desc: "the token is not valid", cause: err}
	}
	if c.TokenUse != token.UseAccess {
		return nil, Pool{}, &apiError{status: http.StatusUnauthorized, code: "invalid_token", desc: "an access token is required"}
	}
	tracing.SetIdentity(r.Context(), tracing.Identity{Sub: c.Subject, ClientID: c.ClientID, PoolID: pool.ID})
	if !c.HasScope(Scope) {
		return nil, Pool{}, &apiError{status: http.StatusForbidden, code: "insufficient_scope", desc: "the token lacks the scope " + Scope}
	}
	return c, pool, nil
}

// issuerOf reads the iss claim of a JWT without verifying it, to pick
// the verifier that then checks everything.
func issuerOf(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || len(raw) > token.MaxLength {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return c.Iss
}

// decode reads a JSON array of events or a sequence of JSON objects (JSON
// lines), unknown fields refused.
func decode(body []byte) ([]Event, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, invalidRequest("no events")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var evs []Event
	if body[0] == '[' {
		if err := dec.Decode(&evs); err != nil {
			return nil, invalidRequest("the body is not a JSON array of events: %s", jsonError(err))
		}
		if dec.More() || dec.InputOffset() != int64(len(body)) {
			return nil, invalidRequest("data after the JSON array")
		}
	} else {
		for {
			var e Event
			err := dec.Decode(&e)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, invalidRequest("events[%d] is not a JSON event object: %s", len(evs), jsonError(err))
			}
			if evs = append(evs, e); len(evs) > MaxEvents {
				break
			}
		}
	}
	switch {
	case len(evs) == 0:
		return nil, invalidRequest("no events")
	case len(evs) > MaxEvents:
		return nil, invalidRequest("more than %d events in one request", MaxEvents)
	}
	return evs, nil
}

// jsonError is the part of a decoding error safe and useful to show.
func jsonError(err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return fmt.Sprintf("field %s: wrong type", ute.Field)
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return strings.TrimPrefix(msg, "json: ")
}

var (
	traceIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// validate checks e; the error names the field.
func validate(e *Event, now time.Time) error {
	if err := auditevent.CheckComponent(e.Component); err != nil {
		return err
	}
	switch {
	case e.Action == "":
		return errors.New("action: required")
	case e.Outcome != audit.Allow && e.Outcome != audit.Deny && e.Outcome != audit.Error:
		return errors.New("outcome: must be allow, deny or error")
	case e.TraceID != "" && (!traceIDRE.MatchString(e.TraceID) || e.TraceID == strings.Repeat("0", 32)):
		return errors.New("trace_id: must be 32 lower-case hex digits, not all zero")
	case len(e.ActorChain) > auditevent.MaxActors:
		return fmt.Errorf("actor_chain: at most %d actors", auditevent.MaxActors)
	}
	if e.Time != nil && (e.Time.Before(now.Add(-24*time.Hour)) || e.Time.After(now.Add(5*time.Minute))) {
		return errors.New("time: must be within the last 24 hours (and not ahead of writ's clock by more than 5 minutes)")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"action", e.Action, auditevent.MaxAction}, {"reason", e.Reason, auditevent.MaxReason}, {"request_id", e.RequestID, auditevent.MaxRequestID},
		{"sub", e.Sub, auditevent.MaxSub}, {"resource", e.Resource, auditevent.MaxResource}} {
		if err := auditevent.CheckText(f.v, f.max); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	for i, a := range e.ActorChain {
		if a == "" {
			return fmt.Errorf("actor_chain[%d]: empty", i)
		}
		if err := auditevent.CheckText(a, auditevent.MaxActor); err != nil {
			return fmt.Errorf("actor_chain[%d]: %w", i, err)
		}
	}
	return nil
}

func remoteIP(r *http.Request) string { return awsjson.SourceIP(r) }

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	switch e.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		hdr := `Bearer realm="writ"`
		if e.code != "" {
			hdr += fmt.Sprintf(`, error=%q, error_description=%q`, e.code, e.desc)
		}
		if e.status == http.StatusForbidden {
			hdr += fmt.Sprintf(`, scope=%q`, Scope)
		}
		w.Header().Set("WWW-Authenticate", hdr)
	}
	if e.status >= 500 {
		h.opts.Log.Error("audit: ingest refused", "status", e.status, "error", e.code, "description", e.desc, "cause", e.cause,
			"source_ip", remoteIP(r))
	} else {
		h.opts.Log.Info("audit: ingest refused", "status", e.status, "error", e.code, "description", e.desc, "cause", e.cause,
			"source_ip", remoteIP(r))
	}
	code := e.code
	if code == "" {
		code = "invalid_token" // the body still says what is wrong
	}
	writeJSON(w, e.status, map[string]string{"error": code, "error_description": e.desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
