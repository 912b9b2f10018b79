// Package sdk is what a Go service behind the writ gateway imports: an
// HTTP middleware that verifies the incoming token (offline, with keys from
// the issuer's JWKS) and puts the caller's identity in the request context,
// and an http.RoundTripper that carries that identity to the next service —
// the same token, or one exchanged for the next service's audience (RFC
// 8693) so that each hop's token names every actor before it.
package sdk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/writ-id/writ/internal/jwks"
	"github.com/writ-id/writ/internal/token"
)

// Identity is the verified caller of a request.
type Identity struct {
	// Subject is the user's sub (or a client's id for client tokens).
	Subject  string
	Username string
	// ClientID is the client the token was issued to (the latest actor for
	// exchanged tokens).
	ClientID string
	Audience []string
	Scopes   []string
	// ActorChain lists the services that acted for the subject, the most
	// recent first (from the act claim).
	ActorChain []string
	// Claims holds every claim of the token.
	Claims map[string]any
	// Token is the raw token, for forwarding.
	Token string
}

type identityKey struct{}
type requestKey struct{}

type requestInfo struct{ id, traceparent string }

// FromContext returns the identity the middleware stored.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok
}

// RequestID returns the X-Request-Id of the request being served.
func RequestID(ctx context.Context) string {
	ri, _ := ctx.Value(requestKey{}).(requestInfo)
	return ri.id
}

// Config configures a Verifier.
type Config struct {
	// Issuer is the user pool's issuer URL (<idp public_url>/<pool id>).
	Issuer string
	// Audiences this service accepts (aud, or client_id when aud is absent).
	Audiences []string
	// TokenUse accepted; default ["access"].
	TokenUse []string
	// Scopes every request must carry.
	Scopes []string
	// Skew allowed on exp/nbf; default 30s.
	Skew time.Duration
	// HTTPClient fetches discovery and JWKS; default a 10s-timeout client.
	HTTPClient *http.Client
}

// Verifier verifies tokens of one issuer offline.
type Verifier struct {
	cfg  Config
	v    *token.Verifier
	req  token.Requirements
	stop context.CancelFunc
}

// NewVerifier returns a Verifier and starts refreshing the issuer's keys
// in the background until Close.
func NewVerifier(cfg Config) *Verifier {
	if len(cfg.TokenUse) == 0 {
		cfg.TokenUse = []string{"access"}
	}
	if cfg.Skew == 0 {
		cfg.Skew = 30 * time.Second
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	remote := jwks.New(cfg.Issuer, jwks.Options{Client: cfg.HTTPClient})
	ctx, stop := context.WithCancel(context.Background())
	remote.Start(ctx)
	return &Verifier{cfg: cfg, stop: stop, v: &token.Verifier{Issuer: cfg.Issuer, Keys: remote, Skew: cfg.Skew},
		req: token.Requirements{TokenUse: cfg.TokenUse, Audiences: cfg.Audiences, Scopes: cfg.Scopes}}
}

// Close stops the background key refresh.
func (v *Verifier) Close() { v.stop() }

// ErrForbidden wraps refusals for a missing scope (HTTP 403, not 401).
var ErrForbidden = errors.New("sdk: forbidden")

// Verify checks raw and returns the identity it carries.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Identity, error) {
	c, err := v.v.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("sdk: %w", err)
	}
	if err := v.req.Check(c); err != nil {
		if errors.Is(err, token.ErrScope) {
			return nil, fmt.Errorf("%w: %w", ErrForbidden, err)
		}
		return nil, fmt.Errorf("sdk: %w", err)
	}
	return &Identity{Subject: c.Subject, Username: c.User(), ClientID: c.ClientID, Audience: c.Audience,
		Scopes: c.Scopes(), ActorChain: c.Act.Chain(), Claims: c.Raw, Token: raw}, nil
}

// Middleware verifies the Authorization bearer token of every request and
// puts the Identity in its context; it answers 401 (invalid or missing
// token) or 403 (missing scope) with a WWW-Authenticate header itself. It
// also keeps the request's X-Request-Id and traceparent for Transport.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := strings.TrimSpace(r.Header.Get("Authorization"))
		if len(raw) > 7 && strings.EqualFold(raw[:7], "bearer ") {
			raw = strings.TrimSpace(raw[7:])
		}
		id, err := v.Verify(r.Context(), raw)
		if err != nil {
			status, code := http.StatusUnauthorized, "invalid_token"
			if errors.Is(err, ErrForbidden) {
				status, code = http.StatusForbidden, "insufficient_scope"
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error=%q`, code))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"message":%q}`, http.StatusText(status))
			return
		}
		ctx := context.WithValue(r.Context(), identityKey{}, id)
		ctx = context.WithValue(ctx, requestKey{}, requestInfo{id: r.Header.Get("X-Request-Id"), traceparent: r.Header.Get("traceparent")})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// ClientCredentials are a service's own client, for exchanges.
type ClientCredentials struct {
	// TokenURL is the pool's token endpoint (<issuer>/oauth2/token).
	TokenURL     string
	ClientID     string
	ClientSecret string
}

// Transport carries the identity in each outgoing request's context to the
// next service. With Exchange set it trades the token for one bound to
// Audience (cached until shortly before expiry); otherwise it forwards the
// token unchanged. X-Request-Id and traceparent are passed on.
type Transport struct {
	// Base is the underlying transport; default http.DefaultTransport.
	Base http.RoundTripper
	// Exchange, when set, is the client that performs token exchanges.
	Exchange *ClientCredentials
	// Audience is the next service's audience (required with Exchange).
	Audience string

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	token string
	until time.Time
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
	out := r.Clone(r.Context())
	tok := id.Token
	if t.Exchange != nil {
		var err error
		if tok, err = t.exchange(r.Context(), base, id.Token); err != nil {
			return nil, err
		}
	}
	out.Header.Set("Authorization", "Bearer "+tok)
	if ri, ok := r.Context().Value(requestKey{}).(requestInfo); ok {
		if ri.id != "" && out.Header.Get("X-Request-Id") == "" {
			out.Header.Set("X-Request-Id", ri.id)
		}
		if ri.traceparent != "" && out.Header.Get("traceparent") == "" {
			out.Header.Set("traceparent", ri.traceparent)
		}
	}
	return base.RoundTrip(out)
}

func (t *Transport) exchange(ctx context.Context, base http.RoundTripper, subject string) (string, error) {
	sum := sha256.Sum256([]byte(subject))
	key := hex.EncodeToString(sum[:])
	now := time.Now()
	t.mu.Lock()
	if c, ok := t.cache[key]; ok && now.Before(c.until) {
		t.mu.Unlock()
		return c.token, nil
	}
	t.mu.Unlock()
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {t.Audience}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Exchange.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("sdk: exchange: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(t.Exchange.ClientID), url.QueryEscape(t.Exchange.ClientSecret))
	if id := RequestID(ctx); id != "" {
		req.Header.Set("X-Request-Id", id)
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return "", fmt.Errorf("sdk: exchange: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 64<<10)).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("sdk: exchange refused: %d %s", resp.StatusCode, body.Error)
	}
	life := time.Duration(body.ExpiresIn) * time.Second
	t.mu.Lock()
	if t.cache == nil || len(t.cache) > 10_000 {
		t.cache = map[string]cached{}
	}
	t.cache[key] = cached{token: body.AccessToken, until: now.Add(life - life/10)}
	t.mu.Unlock()
	return body.AccessToken, nil
}

// RequestIDHeader returns an aws-sdk-go-v2 API option that sends the
// request id of ctx (the request this service is serving) with an AWS SDK
// call, so writ's identity and object components audit it under the same
// id: append it to a client's Options.APIOptions.
func RequestIDHeader(ctx context.Context) func(*middleware.Stack) error {
	id := RequestID(ctx)
	return func(stack *middleware.Stack) error {
		if id == "" {
			return nil
		}
		return smithyhttp.AddHeaderValue("X-Request-Id", id)(stack)
	}
}
