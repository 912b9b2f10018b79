package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/awsjson"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// Grant types.
const (
	grantAuthorizationCode = "authorization_code"
	grantClientCredentials = "client_credentials"
	grantRefreshToken      = "refresh_token"
	grantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	assertionJWTBearer     = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

const maxForm = 64 << 10

// oauthError renders an OAuth error response (RFC 6749 §5.2).
func writeOAuthError(w http.ResponseWriter, err error) {
	var oe *userpool.OAuthError
	if !errors.As(err, &oe) {
		var ue *userpool.Error
		if errors.As(err, &ue) {
			switch ue.Code {
			case userpool.CodeNotAuthorized:
				oe = &userpool.OAuthError{Code: "invalid_grant", Description: ue.Message}
			case userpool.CodeInternal:
				oe = &userpool.OAuthError{Code: "server_error", Description: "internal error"}
			default:
				oe = &userpool.OAuthError{Code: "invalid_request", Description: ue.Message}
			}
		} else {
			oe = &userpool.OAuthError{Code: "server_error", Description: "internal error"}
		}
	}
	status := http.StatusBadRequest
	switch oe.Code {
	case "invalid_client":
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Basic realm="writ", error="invalid_client"`)
	case "server_error":
		status = http.StatusInternalServerError
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": oe.Code, "error_description": oe.Description})
}

// parseForm reads an application/x-www-form-urlencoded POST body.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		return nil, &userpool.OAuthError{Code: "invalid_request", Description: "use POST"}
	}
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		return nil, &userpool.OAuthError{Code: "invalid_request", Description: "Content-Type must be application/x-www-form-urlencoded"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return nil, &userpool.OAuthError{Code: "invalid_request", Description: "malformed or oversized form body"}
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, &userpool.OAuthError{Code: "invalid_request", Description: "parameter " + k + " repeated"}
		}
	}
	return r.PostForm, nil
}

// authenticateClient implements client_secret_basic, client_secret_post,
// private_key_jwt and public clients (client_id only).
func (h *Handler) authenticateClient(ctx context.Context, r *http.Request, p *userpool.Pool, form url.Values) (store.Client, error) {
	bad := &userpool.OAuthError{Code: "invalid_client", Description: "client authentication failed"}
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil || form.Get("client_secret") != "" {
			return store.Client{}, bad
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	assertion := form.Get("client_assertion")
	if assertion != "" {
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
// registered JWKS; its jti is single use.
func (h *Handler) privateKeyJWT(ctx context.Context, p *userpool.Pool, id, assertion string) (store.Client, error) {
	bad := &userpool.OAuthError{Code: "invalid_client", Description: "client authentication failed"}
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256})
	if err != nil {
		return store.Client{}, bad
	}
	var claims jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return store.Client{}, bad
	}
	if id == "" {
		id = claims.Subject
	}
	c, err := p.Client(ctx, id)
	if err != nil || len(c.JWKS) == 0 {
		return store.Client{}, bad
	}
	var set jose.JSONWebKeySet
	if json.Unmarshal(c.JWKS, &set) != nil || len(tok.Headers) != 1 {
		return store.Client{}, bad
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) == 0 && tok.Headers[0].KeyID == "" {
		keys = set.Keys
	}
	var verified jwt.Claims
	ok := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != tok.Headers[0].Algorithm {
			continue
		}
		if tok.Claims(k.Key, &verified) == nil {
			ok = true
			break
		}
	}
	if !ok {
		return store.Client{}, bad
	}
	now := h.now()
	err = verified.ValidateWithLeeway(jwt.Expected{Issuer: c.ClientID, Subject: c.ClientID,
		AnyAudience: jwt.Audience{p.Issuer() + "/oauth2/token", p.Issuer()}, Time: now}, 30*time.Second)
	if err != nil || verified.Expiry == nil || verified.ID == "" {
		return store.Client{}, bad
	}
	if err := h.store.UseOnce(ctx, "client-assertion/"+c.ClientID+"/"+verified.ID, verified.Expiry.Time().Add(time.Minute), now); err != nil {
		return store.Client{}, bad
	}
	return c, nil
}

func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	ctx := h.requestContext(r)
	form, err := parseForm(w, r)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	c, err := h.authenticateClient(ctx, r, p, form)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	grant := form.Get("grant_type")
	flow := map[string]string{grantAuthorizationCode: "authorization_code", grantClientCredentials: "client_credentials", grantRefreshToken: "refresh_token", grantTokenExchange: "token_exchange"}[grant]
	if flow == "" {
		writeOAuthError(w, &userpool.OAuthError{Code: "unsupported_grant_type", Description: "unsupported grant_type " + fmt.Sprintf("%.40q", grant)})
		return
	}
	if !userpool.HasFlow(c, flow) {
		writeOAuthError(w, &userpool.OAuthError{Code: "unauthorized_client", Description: "this client may not use " + grant})
		return
	}
	var body map[string]any
	switch grant {
	case grantAuthorizationCode:
		t, err := h.redeemCode(ctx, p, c, form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier"))
		if err != nil {
			writeOAuthError(w, err)
			return
		}
		body = map[string]any{"access_token": t.AccessToken, "token_type": "Bearer", "expires_in": t.ExpiresIn}
		if t.IDToken != "" {
			body["id_token"] = t.IDToken
		}
		if t.RefreshToken != "" {
			body["refresh_token"] = t.RefreshToken
		}
	case grantClientCredentials:
		if c.Public {
			writeOAuthError(w, &userpool.OAuthError{Code: "unauthorized_client", Description: "public clients cannot use client_credentials"})
			return
		}
		t, err := p.ClientCredentials(ctx, c, strings.Fields(form.Get("scope")))
		if err != nil {
			writeOAuthError(w, err)
			return
		}
		body = map[string]any{"access_token": t.AccessToken, "token_type": "Bearer", "expires_in": t.ExpiresIn}
	case grantRefreshToken:
		rt := form.Get("refresh_token")
		if rt == "" {
			writeOAuthError(w, &userpool.OAuthError{Code: "invalid_request", Description: "refresh_token is required"})
			return
		}
		t, err := p.Refresh(ctx, c, rt)
		if err != nil {
			writeOAuthError(w, err)
			return
		}
		body = map[string]any{"access_token": t.AccessToken, "id_token": t.IDToken, "token_type": "Bearer", "expires_in": t.ExpiresIn}
		if t.RefreshToken != "" {
			body["refresh_token"] = t.RefreshToken
		}
	case grantTokenExchange:
		aud := form.Get("audience")
		if aud == "" {
			aud = form.Get("resource")
		} else if res := form.Get("resource"); res != "" && res != aud {
			writeOAuthError(w, &userpool.OAuthError{Code: "invalid_target", Description: "audience and resource differ"})
			return
		}
		if rt := form.Get("requested_token_type"); rt != "" && rt != userpool.TokenTypeAccess {
			writeOAuthError(w, &userpool.OAuthError{Code: "invalid_request", Description: "only access tokens can be requested"})
			return
		}
		if form.Get("actor_token") != "" {
			writeOAuthError(w, &userpool.OAuthError{Code: "invalid_request", Description: "actor_token is not supported: the authenticated client is the actor"})
			return
		}
		res, err := p.Exchange(ctx, userpool.Exchange{Client: c, SubjectToken: form.Get("subject_token"),
			SubjectTokenType: form.Get("subject_token_type"), Audience: aud, Scope: strings.Fields(form.Get("scope"))})
		if err != nil {
			writeOAuthError(w, err)
			return
		}
		body = map[string]any{"access_token": res.AccessToken, "issued_token_type": userpool.TokenTypeAccess,
			"token_type": "Bearer", "expires_in": res.ExpiresIn, "scope": strings.Join(res.Scope, " ")}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, body)
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	ctx := h.requestContext(r)
	form, err := parseForm(w, r)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	c, err := h.authenticateClient(ctx, r, p, form)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeOAuthError(w, &userpool.OAuthError{Code: "invalid_request", Description: "token is required"})
		return
	}
	if strings.Count(tok, ".") == 2 {
		writeOAuthError(w, &userpool.OAuthError{Code: "unsupported_token_type", Description: "only refresh tokens can be revoked"})
		return
	}
	if err := p.RevokeRefresh(ctx, c, tok); err != nil {
		var ue *userpool.Error
		if errors.As(err, &ue) && ue.Code == userpool.CodeNotAuthorized {
			// RFC 7009 §2.1: a token of another client is not revoked, and
			// the answer does not say so.
			w.WriteHeader(http.StatusOK)
			return
		}
		writeOAuthError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) introspect(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	ctx := h.requestContext(r)
	form, err := parseForm(w, r)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	c, err := h.authenticateClient(ctx, r, p, form)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	if c.Public {
		writeOAuthError(w, &userpool.OAuthError{Code: "invalid_client", Description: "introspection is for confidential clients"})
		return
	}
	if form.Get("token") == "" {
		writeOAuthError(w, &userpool.OAuthError{Code: "invalid_request", Description: "token is required"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, p.Introspect(ctx, form.Get("token")))
}

func (h *Handler) userInfo(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	auth := r.Header.Get("Authorization")
	raw, found := strings.CutPrefix(auth, "Bearer ")
	if !found || raw == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="writ"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_request", "error_description": "a Bearer access token is required"})
		return
	}
	info, err := p.UserInfo(h.requestContext(r), strings.TrimSpace(raw))
	if err != nil {
		var oe *userpool.OAuthError
		if !errors.As(err, &oe) {
			oe = &userpool.OAuthError{Code: "invalid_token", Description: "the access token is invalid"}
		}
		status := http.StatusUnauthorized
		if oe.Code == "insufficient_scope" {
			status = http.StatusForbidden
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error=%q, error_description=%q`, oe.Code, oe.Description))
		writeJSON(w, status, map[string]string{"error": oe.Code, "error_description": oe.Description})
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (h *Handler) requestContext(r *http.Request) context.Context {
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 128 {
		id = audit.NewRequestID()
	}
	return audit.WithRequest(r.Context(), audit.RequestInfo{ID: id, SourceIP: awsjson.SourceIP(r), TraceID: awsjson.TraceID(r.Header.Get("traceparent"))})
}
