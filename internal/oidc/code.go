package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// codeGrant is what an authorization code stands for.
type codeGrant struct {
	Req authzRequest   `json:"q"`
	Who browserSession `json:"w"`
	// OriginJTI is the origin_jti of every token the code issues, so that
	// a replayed code can revoke them all.
	OriginJTI string `json:"o"`
}

// usedCodeMemory is how long a redeemed code is remembered so that a
// replay revokes what it issued (RFC 6749 §4.1.2); the refresh lifetime
// when shorter.
const usedCodeMemory = 24 * time.Hour

// issueCode sends the browser back to the client with a new single-use
// code for req, signed in as bs.
func (h *Handler) issueCode(ctx context.Context, w http.ResponseWriter, r *http.Request, p *userpool.Pool, req authzRequest, bs browserSession) {
	code := randomString(32)
	data, _ := json.Marshal(codeGrant{Req: req, Who: bs, OriginJTI: uuid.NewString()})
	now := h.now()
	if err := h.store.CreateSession(ctx, store.Session{ID: hashID(code), Kind: kindCode, PoolID: p.ID(), ClientID: req.ClientID,
		Username: bs.Username, Data: data, CreatedAt: now, ExpiresAt: now.Add(p.Config().Tokens.Code)}); err != nil {
		h.internalErrorPage(w, r, p, err)
		return
	}
	params := url.Values{"code": {code}}
	if req.State != "" {
		params.Set("state", req.State)
	}
	redirectWith(w, r, req.RedirectURI, params)
}

// authorizationCodeGrant redeems a code (RFC 6749 §4.1.3, RFC 7636 §4.6):
// once, by the client it was issued to, with the same redirect_uri and the
// PKCE verifier when a challenge was sent. A code presented again revokes
// every token it issued.
func (h *Handler) authorizationCodeGrant(ctx context.Context, p *userpool.Pool, c store.Client, form url.Values) (map[string]any, error) {
	code, redirectURI, verifier := form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier")
	invalid := func(desc string) error { return oauthError(errInvalidGrant, desc) }
	if code == "" || len(code) > 256 {
		return nil, oauthError(errInvalidRequest, "code is required")
	}
	id := hashID(code)
	now := h.now()
	s, err := h.store.ConsumeSession(ctx, id, now)
	if errors.Is(err, store.ErrNotFound) {
		if used, err := h.store.GetSession(ctx, id+":used", now); err == nil {
			var g codeGrant
			if json.Unmarshal(used.Data, &g) == nil {
				if err := p.RevokeSignIn(ctx, g.OriginJTI); err != nil {
					return nil, err
				}
			}
			return nil, invalid("authorization code already used; the tokens it issued are revoked")
		}
		return nil, invalid("invalid or expired authorization code")
	}
	if err != nil {
		return nil, err
	}
	// The code is spent from here on, whatever the outcome.
	var g codeGrant
	if s.Kind != kindCode || s.PoolID != p.ID() || json.Unmarshal(s.Data, &g) != nil {
		return nil, invalid("invalid authorization code")
	}
	if g.Req.ClientID != c.ClientID {
		return nil, invalid("the code was issued to another client")
	}
	if g.Req.RedirectURI != redirectURI {
		return nil, invalid("redirect_uri does not match the authorization request")
	}
	if g.Req.CodeChallenge != "" {
		if !validVerifier(verifier) {
			return nil, invalid("code_verifier missing or malformed")
		}
		sum := sha256.Sum256([]byte(verifier))
		if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.Req.CodeChallenge)) != 1 {
			return nil, invalid("code_verifier does not match the code_challenge")
		}
	} else if verifier != "" {
		return nil, invalid("no code_challenge was sent for this code")
	}
	memory := min(usedCodeMemory, p.Config().Tokens.Refresh)
	if err := h.store.CreateSession(ctx, store.Session{ID: id + ":used", Kind: kindCodeUsed, PoolID: p.ID(), ClientID: c.ClientID,
		Data: s.Data, CreatedAt: now, ExpiresAt: now.Add(memory)}); err != nil {
		return nil, err
	}
	u, err := h.svc.UserBySub(ctx, g.Who.Sub)
	if err != nil || u.PoolID != p.ID() || !u.Enabled {
		return nil, invalid("the user is no longer active")
	}
	if s.CreatedAt.Before(u.RevokedBefore) {
		// Issued before the user's sign-out everywhere or password reset:
		// the tokens it would give (issued now) would outlive that.
		return nil, invalid("the user signed out after this code was issued")
	}
	t, err := p.Issue(ctx, userpool.Grant{Client: c, User: u, Scope: g.Req.Scope, IDToken: slices.Contains(g.Req.Scope, "openid"),
		Refresh: userpool.HasFlow(c, "refresh_token"), AuthTime: time.Unix(g.Who.AuthTime, 0), AMR: g.Who.AMR, Nonce: g.Req.Nonce,
		OriginJTI: g.OriginJTI})
	if err != nil {
		return nil, err
	}
	return tokenBody(t), nil
}

// validVerifier reports whether v is a well-formed code_verifier (RFC 7636
// §4.1): 43 to 128 unreserved characters.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, r := range v {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' || r == '~') {
			return false
		}
	}
	return true
}
