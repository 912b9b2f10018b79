package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/writ-id/writ/internal/jwks"
	"github.com/writ-id/writ/internal/token"
	"github.com/writ-id/writ/internal/tracing"
)

// Config configures a Verifier.
type Config struct {
	// Issuer is the user pool's issuer URL (<idp public_url>/<pool id>);
	// its keys are found through <Issuer>/.well-known/openid-configuration.
	Issuer string
	// Audiences this service accepts, matched against aud, or against
	// client_id when the token has no aud (API Gateway's rule). Empty
	// accepts any audience: set it.
	Audiences []string
	// TokenUse lists the accepted token_use values; default ["access"].
	TokenUse []string
	// Scopes every request must carry (all of them).
	Scopes []string
	// Skew allowed on exp/nbf/iat; default 30s.
	Skew time.Duration
	// HTTPClient fetches discovery and JWKS; default a 10s-timeout client.
	HTTPClient *http.Client
	// CacheSize bounds the verified-token cache; default 100,000 tokens,
	// negative disables it.
	CacheSize int
	// TracerProvider makes Middleware's server spans (OpenTelemetry);
	// default otel.GetTracerProvider(), which records nothing until the
	// service installs a provider.
	TracerProvider trace.TracerProvider
}

// Verifier verifies tokens of one issuer offline. It is safe for
// concurrent use.
type Verifier struct {
	v      *jwks.Verifier
	req    token.Requirements
	tracer trace.Tracer
	stop   context.CancelFunc
}

// NewVerifier returns a Verifier and starts refreshing the issuer's keys
// in the background until Close.
func NewVerifier(cfg Config) *Verifier {
	if len(cfg.TokenUse) == 0 {
		cfg.TokenUse = []string{"access"}
	}
	v := jwks.NewVerifier(strings.TrimRight(cfg.Issuer, "/"), jwks.VerifierOptions{
		Options: jwks.Options{Client: cfg.HTTPClient}, Skew: cfg.Skew, CacheSize: cfg.CacheSize})
	ctx, stop := context.WithCancel(context.Background())
	v.Remote().Start(ctx)
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return &Verifier{v: v, stop: stop, tracer: tp.Tracer(tracing.ScopeName + "/sdk"),
		req: token.Requirements{TokenUse: cfg.TokenUse, Audiences: cfg.Audiences, Scopes: cfg.Scopes}}
}

// Close stops the background key refresh.
func (v *Verifier) Close() { v.stop() }

// Kinds of refusal: every error Verify returns is an *Error wrapping one
// of them.
var (
	// ErrUnauthorized: the token is missing or not acceptable (HTTP 401).
	ErrUnauthorized = errors.New("sdk: unauthorized")
	// ErrForbidden: a required scope is missing (HTTP 403).
	ErrForbidden = errors.New("sdk: forbidden")
	// ErrUnavailable: the issuer's keys could not be had, so no token can
	// be verified (HTTP 503): the service's failure, not the caller's.
	ErrUnavailable = errors.New("sdk: the issuer's keys are unavailable")
)

// Error is a refusal by Verify: what to answer (RFC 6750) and, apart, the
// cause, which is for logs only.
type Error struct {
	// Status is 401, 403, or 503 (ErrUnavailable).
	Status int
	// Code is the RFC 6750 error code: invalid_token or insufficient_scope,
	// or empty when the request carried no token (§3.1).
	Code string
	// Description is safe to show the caller (error_description).
	Description string
	// Scope names the scopes the resource needs (with insufficient_scope).
	Scope string
	// Err is the cause.
	Err error
}

// Challenge returns the WWW-Authenticate value that answers the refusal
// (RFC 6750 §3): without an error code when no token came.
func (e *Error) Challenge() string {
	if e.Code == "" {
		return `Bearer realm="writ"`
	}
	hdr := fmt.Sprintf(`Bearer realm="writ", error=%q, error_description=%q`, e.Code, e.Description)
	if e.Scope != "" {
		hdr += fmt.Sprintf(`, scope=%q`, e.Scope)
	}
	return hdr
}

func (e *Error) Error() string { return "sdk: " + e.Description + ": " + e.Err.Error() }

// Unwrap returns the kind (ErrUnauthorized or ErrForbidden) and the cause.
func (e *Error) Unwrap() []error {
	switch e.Status {
	case http.StatusServiceUnavailable:
		return []error{ErrUnavailable, e.Err}
	case http.StatusForbidden:
		return []error{ErrForbidden, e.Err}
	}
	return []error{ErrUnauthorized, e.Err}
}

func unauthorized(desc string, cause error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: desc, Err: cause}
}

// Verify checks raw (a bare token, without "Bearer ") and returns the
// identity it carries, or an *Error.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Identity, error) {
	if raw == "" {
		return nil, &Error{Status: http.StatusUnauthorized, Description: "no token", Err: errors.New("no token")}
	}
	c, err := v.v.Verify(ctx, raw)
	if errors.Is(err, token.ErrKeysUnavailable) {
		return nil, &Error{Status: http.StatusServiceUnavailable, Description: "the issuer's keys are unavailable", Err: err}
	}
	if err != nil {
		return nil, unauthorized(describe(err), err)
	}
	if err := v.req.Check(c); err != nil {
		switch {
		case errors.Is(err, token.ErrScope):
			return nil, &Error{Status: http.StatusForbidden, Code: "insufficient_scope", Description: "the token lacks a required scope",
				Scope: strings.Join(v.req.Scopes, " "), Err: err}
		case errors.Is(err, token.ErrAudience):
			return nil, unauthorized("the token does not have a valid audience", err)
		}
		return nil, unauthorized("the token's token_use is not accepted here", err)
	}
	return &Identity{Subject: c.Subject, Username: c.User(), ClientID: c.ClientID, Audience: c.Audience,
		Scopes: c.Scopes(), ActorChain: c.Act.Chain(), Claims: c.Raw, Token: raw}, nil
}

// Bearer returns the token of r's Authorization header: after "Bearer ",
// or the whole value when it has no scheme (as API Gateway accepts).
// Credentials of another scheme (Basic …) are no token.
func Bearer(r *http.Request) string {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	scheme, rest, ok := strings.Cut(h, " ")
	switch {
	case !ok && strings.EqualFold(h, "bearer"):
		return "" // "Bearer " with its space trimmed
	case !ok:
		return h
	case strings.EqualFold(scheme, "bearer"):
		return strings.TrimSpace(rest)
	}
	return ""
}

// describe is the public reason for a refusal (error_description).
func describe(err error) string {
	switch {
	case errors.Is(err, token.ErrExpired):
		return "the token has expired"
	case errors.Is(err, token.ErrNotYetValid):
		return "the token is not valid yet"
	case errors.Is(err, token.ErrIssuer):
		return "the token has the wrong issuer"
	case errors.Is(err, token.ErrUnknownKey), errors.Is(err, token.ErrSignature), errors.Is(err, token.ErrAlgorithm):
		return "the token signature could not be verified"
	}
	return "the token is malformed"
}

// Middleware verifies the bearer token of every request (the
// Authorization header, with or without the "Bearer " prefix) and puts the
// Identity, the request's X-Request-Id and its traceparent in the request
// context. It answers refusals itself, as the gateway does: 401 with
// WWW-Authenticate: Bearer realm="writ", error="invalid_token" (without an
// error code when no token came), or 403 with error="insufficient_scope"
// and the scopes needed, and a {"message": …} body.
//
// Each request gets an OpenTelemetry server span (Config.TracerProvider)
// continuing the caller's traceparent, with the caller's identity as
// attributes (TraceIdentity) and named after the ServeMux pattern that
// served it, if any; Transport's client spans are its children.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := v.tracer.Start(tracing.Extract(r.Context(), r.Header), r.Method, serverKind)
		if span.IsRecording() {
			span.SetAttributes(tracing.ServerAttributes(r)...)
			sw := &tracing.StatusWriter{ResponseWriter: w, Code: http.StatusOK}
			w = sw
			defer func() {
				tracing.EndHTTP(span, sw.Code, r.Header.Get("X-Request-Id"), true)
			}()
		}
		id, err := v.Verify(ctx, Bearer(r))
		if err != nil {
			e := err.(*Error)
			if e.Status != http.StatusServiceUnavailable {
				w.Header().Set("WWW-Authenticate", e.Challenge())
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(e.Status)
			fmt.Fprintf(w, `{"message":%s}`, strconv.Quote(http.StatusText(e.Status)))
			return
		}
		TraceIdentity(ctx, id)
		ctx = NewContext(ctx, id)
		ctx = WithRequest(ctx, r.Header.Get("X-Request-Id"), r.Header.Get("traceparent"))
		r = r.WithContext(ctx)
		next.ServeHTTP(w, r)
		if r.Pattern != "" && span.IsRecording() { // set by a ServeMux below
			name := r.Pattern
			if !strings.Contains(name, " ") {
				name = r.Method + " " + name
			}
			span.SetName(name)
			span.SetAttributes(attribute.String("http.route", name[strings.IndexByte(name, ' ')+1:]))
		}
	})
}

var serverKind = trace.WithSpanKind(trace.SpanKindServer)

// TraceIdentity records id on the OpenTelemetry span of ctx (enduser.id,
// writ.sub, writ.client_id, writ.actor_chain), as Middleware does: call it
// after Verify where a request is not served through Middleware.
func TraceIdentity(ctx context.Context, id *Identity) {
	if id != nil {
		tracing.SetIdentity(ctx, tracing.Identity{Sub: id.Subject, ClientID: id.ClientID, ActorChain: id.ActorChain})
	}
}
