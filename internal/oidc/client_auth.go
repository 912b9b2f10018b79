package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// assertionJWTBearer is the client_assertion_type of private_key_jwt
// (RFC 7523 §2.2).
const assertionJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionAlgs are the signature algorithms accepted in client assertions.
var assertionAlgs = []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"}

// maxAssertionLife bounds how far ahead a client assertion's exp may lie,
// which bounds how long its jti must be remembered.
const maxAssertionLife = time.Hour

// authenticateClient identifies the client of a token, revocation or
// introspection request: client_secret_basic, client_secret_post,
// private_key_jwt (RFC 7523), or a public client naming itself with
// client_id. Any failure is invalid_client, without saying why.
func (h *Handler) authenticateClient(ctx context.Context, r *http.Request, p *userpool.Pool, form url.Values) (store.Client, error) {
	bad := oauthError(errInvalidClient, "client authentication failed")
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both parts are form-urlencoded before encoding.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil || form.Get("client_secret") != "" {
			return store.Client{}, bad
		}
		if fid := form.Get("client_id"); fid != "" && fid != id {
			return store.Client{}, bad
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if assertion := form.Get("client_assertion"); assertion != "" {
		if form.Get("client_assertion_type") != assertionJWTBearer || basic || secret != "" {
			return store.Client{}, bad
		}
		return h.privateKeyJWT(ctx, p, id, assertion)
	}
	if id == "" {
		return store.Client{}, bad
	}
	c, err := p.Client(ctx, id)
	if err != nil {
		bad.Cause = err
		return store.Client{}, bad
	}
	if c.Public {
		if secret != "" {
			return store.Client{}, bad
		}
		return c, nil
	}
	if !h.svc.CheckClientSecret(c, secret) {
		return store.Client{}, bad
	}
	return c, nil
}

// privateKeyJWT verifies an RFC 7523 client assertion against the client's
// registered JWKS: iss and sub are the client, aud is the token endpoint
// or the issuer, exp is near, and the jti is single use.
func (h *Handler) privateKeyJWT(ctx context.Context, p *userpool.Pool, id, assertion string) (store.Client, error) {
	bad := oauthError(errInvalidClient, "client authentication failed")
	algs := make([]jose.SignatureAlgorithm, len(assertionAlgs))
	for i, a := range assertionAlgs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	tok, err := jwt.ParseSigned(assertion, algs)
	if err != nil || len(tok.Headers) != 1 {
		return store.Client{}, bad
	}
	if id == "" {
		var unverified jwt.Claims
		if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
			return store.Client{}, bad
		}
		id = unverified.Subject
	}
	if id == "" {
		return store.Client{}, bad
	}
	c, err := p.Client(ctx, id)
	if err != nil || c.Public || len(c.JWKS) == 0 {
		return store.Client{}, bad
	}
	var set jose.JSONWebKeySet
	if json.Unmarshal(c.JWKS, &set) != nil {
		return store.Client{}, bad
	}
	hdr := tok.Headers[0]
	keys := set.Keys
	if hdr.KeyID != "" {
		keys = set.Key(hdr.KeyID)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if (k.Algorithm != "" && k.Algorithm != hdr.Algorithm) || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if tok.Claims(k.Key, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return store.Client{}, bad
	}
	now := h.now()
	err = claims.ValidateWithLeeway(jwt.Expected{Issuer: c.ClientID, Subject: c.ClientID,
		AnyAudience: jwt.Audience{p.Issuer() + "/oauth2/token", p.Issuer()}, Time: now}, 30*time.Second)
	if err != nil || claims.Expiry == nil || claims.ID == "" || claims.Expiry.Time().After(now.Add(maxAssertionLife)) {
		return store.Client{}, bad
	}
	key := "client-assertion/" + p.ID() + "/" + c.ClientID + "/" + claims.ID
	if err := h.store.UseOnce(ctx, key, claims.Expiry.Time().Add(time.Minute), now); errors.Is(err, store.ErrConflict) {
		return store.Client{}, bad // a replayed assertion
	} else if err != nil {
		return store.Client{}, err
	}
	return c, nil
}

// clientForm parses a form-encoded POST to a client endpoint and
// authenticates its client (token, revocation, introspection).
func (h *Handler) clientForm(ctx context.Context, w http.ResponseWriter, r *http.Request, p *userpool.Pool) (url.Values, store.Client, error) {
	form, err := parseForm(w, r)
	if err != nil {
		return nil, store.Client{}, err
	}
	c, err := h.authenticateClient(ctx, r, p, form)
	if err != nil {
		return nil, store.Client{}, err
	}
	return form, c, nil
}
