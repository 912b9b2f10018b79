package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/jwks"
	"github.com/writ-id/writ/internal/token"
)

// authorizer is a JWT authorizer: one issuer, its accepted audiences and
// token uses, and a cache of verified tokens.
type authorizer struct {
	cfg      *config.Authorizer
	keys     *jwks.Remote
	verifier *token.Verifier
	cache    *verifiedCache
	now      func() time.Time
}

// authError is a refusal: 401 (invalid_token) or 403 (insufficient_scope).
type authError struct {
	status      int
	code        string
	description string
	scope       string
}

func (e *authError) Error() string { return "gateway: " + e.code + ": " + e.description }

func unauthorized(desc string) *authError {
	return &authError{status: http.StatusUnauthorized, code: "invalid_token", description: desc}
}

// bearer extracts the token from the Authorization header (with or without
// the Bearer prefix, as API Gateway accepts).
func bearer(r *http.Request) string {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return h
}

// authorize verifies raw for a route requiring scopes.
func (a *authorizer) authorize(ctx context.Context, raw string, scopes []string) (*token.Claims, *authError) {
	if raw == "" {
		return nil, unauthorized("no token")
	}
	key := sha256.Sum256([]byte(raw))
	now := a.now()
	c, ok := a.cache.get(key, now)
	if !ok {
		var err error
		c, err = a.verifier.Verify(ctx, raw)
		if err != nil {
			return nil, unauthorized(describe(err))
		}
		a.cache.put(key, c)
	}
	req := token.Requirements{TokenUse: a.cfg.TokenUse, Audiences: a.cfg.Audiences, Scopes: scopes}
	switch err := req.Check(c); {
	case errors.Is(err, token.ErrTokenUse):
		return nil, unauthorized("the token's token_use is not accepted here")
	case errors.Is(err, token.ErrAudience):
		return nil, unauthorized("the token does not have a valid audience")
	case errors.Is(err, token.ErrScope):
		return nil, &authError{status: http.StatusForbidden, code: "insufficient_scope",
			description: "the token lacks a required scope", scope: strings.Join(scopes, " ")}
	}
	return c, nil
}

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

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// verifiedCache maps SHA-256(token) to its verified claims, bounded in
// size, never returning claims past their exp.
type verifiedCache struct {
	mu  sync.RWMutex
	m   map[[32]byte]*token.Claims
	max int
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{m: make(map[[32]byte]*token.Claims, max), max: max}
}

func (c *verifiedCache) get(k [32]byte, now time.Time) (*token.Claims, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || now.Unix() >= v.Expiry || (v.NotBefore != 0 && now.Unix() < v.NotBefore) {
		return nil, false
	}
	return v, true
}

func (c *verifiedCache) put(k [32]byte, v *token.Claims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Evict about a tenth, arbitrary entries (map order), first the expired.
		now := time.Now().Unix()
		n := 0
		for key, e := range c.m {
			if e.Expiry <= now || n < c.max/10 {
				delete(c.m, key)
				n++
			}
		}
	}
	c.m[k] = v
}

func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
