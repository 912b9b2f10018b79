package sdk

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/writ-id/writ/internal/tracing"
)

// ClientCredentials are a service's own client, for exchanges.
type ClientCredentials struct {
	// TokenURL is the pool's token endpoint (<issuer>/oauth2/token).
	TokenURL     string
	ClientID     string
	ClientSecret string
}

// Exchanger trades tokens (RFC 8693 token exchange) as one client for
// tokens bound to another audience. Each result is cached per (subject
// token, audience) until shortly before it expires, or MaxCache, whichever
// comes first, and concurrent calls for the same pair share one exchange.
// The zero value is not usable: set Credentials. An Exchanger is safe for
// concurrent use.
type Exchanger struct {
	Credentials ClientCredentials
	// HTTPClient reaches the token endpoint; default a 10s-timeout client.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MaxCache bounds how long an exchanged token is reused: the token
	// endpoint refuses the exchange of a revoked subject token, which a
	// cached result would hide until it expires. Default 5 minutes.
	MaxCache time.Duration

	cache flightCache[exchangeKey, string]
}

// DefaultMaxCache is how long an Exchanger reuses an exchanged token at
// most, unless its MaxCache says otherwise.
const DefaultMaxCache = 5 * time.Minute

// ExchangeError is a refusal from the token endpoint (RFC 6749 §5.2).
type ExchangeError struct {
	Status      int
	Code        string // e.g. invalid_grant, invalid_target, unauthorized_client
	Description string
}

func (e *ExchangeError) Error() string {
	return fmt.Sprintf("sdk: token exchange refused: %d %s %s", e.Status, e.Code, e.Description)
}

type exchangeKey struct {
	subject  [32]byte // SHA-256 of the subject token
	audience string
}

// Exchange returns an access token for audience on behalf of the subject
// of subjectToken (an access token), whose act claim names this client
// after the actors already in subjectToken. The request id in ctx
// (WithRequest, Middleware) is sent along.
func (x *Exchanger) Exchange(ctx context.Context, subjectToken, audience string) (string, error) {
	key := exchangeKey{sha256.Sum256([]byte(subjectToken)), audience}
	return x.cache.get(ctx, key, x.now, func(ctx context.Context) (string, time.Time, error) {
		return x.post(ctx, subjectToken, audience)
	})
}

func (x *Exchanger) now() time.Time {
	if x.Now != nil {
		return x.Now()
	}
	return time.Now()
}

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// subjectTokenType names what the subject token is (RFC 8693 §3), which
// the token endpoint checks: an ID token (token_use "id", which a route
// accepting ID tokens passes on) or an access token. The claim is only
// read: the token endpoint verifies the token.
func subjectTokenType(subject string) string {
	if parts := strings.Split(subject, "."); len(parts) == 3 {
		var c struct {
			TokenUse string `json:"token_use"`
		}
		if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil && json.Unmarshal(b, &c) == nil && c.TokenUse == "id" {
			return "urn:ietf:params:oauth:token-type:id_token"
		}
	}
	return "urn:ietf:params:oauth:token-type:access_token"
}

// post performs one exchange; the token may be reused until its lifetime
// less a tenth (at most a minute) has passed.
func (x *Exchanger) post(ctx context.Context, subject, audience string) (string, time.Time, error) {
	c := x.Credentials
	if c.TokenURL == "" || c.ClientID == "" {
		return "", time.Time{}, errors.New("sdk: exchange: no client credentials")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject},
		"subject_token_type": {subjectTokenType(subject)}, "audience": {audience}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sdk: exchange: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret)) // RFC 6749 §2.3.1
	if id := RequestID(ctx); id != "" {
		req.Header.Set("X-Request-Id", id)
	}
	status := 0
	if parent := trace.SpanFromContext(ctx); parent.IsRecording() {
		sctx, span := tracing.StartClient(ctx, parent.TracerProvider().Tracer(tracing.ScopeName+"/sdk"), "token exchange", req)
		defer func() { tracing.EndHTTP(span, status, "", false) }()
		tracing.Inject(sctx, req.Header)
		req = req.WithContext(sctx)
	} else if ri, _ := ctx.Value(requestKey{}).(requestInfo); ri.traceparent != "" {
		req.Header.Set("traceparent", ri.traceparent) // the caller's trace, as Transport passes it on
	}
	hc := x.HTTPClient
	if hc == nil {
		hc = defaultClient
	}
	start := x.now()
	resp, err := hc.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sdk: exchange: %w", err)
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	var body struct {
		AccessToken      string `json:"access_token"`
		ExpiresIn        int64  `json:"expires_in"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	derr := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 64<<10)).Decode(&body)
	if resp.StatusCode != http.StatusOK || derr != nil || body.AccessToken == "" {
		return "", time.Time{}, &ExchangeError{Status: resp.StatusCode, Code: body.Error, Description: body.ErrorDescription}
	}
	life := time.Duration(body.ExpiresIn) * time.Second
	maxCache := x.MaxCache
	if maxCache <= 0 {
		maxCache = DefaultMaxCache
	}
	return body.AccessToken, start.Add(min(life-min(life/10, time.Minute), maxCache)), nil
}
