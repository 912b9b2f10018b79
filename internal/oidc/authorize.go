package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// authzRequest is a validated authorization request, kept server-side
// while the browser signs in (its id, "tx", travels in the pages).
type authzRequest struct {
	ClientID      string   `json:"c"`
	RedirectURI   string   `json:"r"`
	State         string   `json:"s,omitempty"`
	Nonce         string   `json:"n,omitempty"`
	Scope         []string `json:"sc"`
	CodeChallenge string   `json:"cc,omitempty"`
	LoginHint     string   `json:"lh,omitempty"`
}

// Messages of the pages shown instead of redirecting (RFC 6749 §4.1.2.1).
const (
	msgUnknownClient = "Unknown application (client_id). Nothing was sent back to it."
	msgBadRedirect   = "The redirect_uri is not registered for this application. Nothing was sent back to it."
	msgRepeated      = "A parameter of the sign-in request appears more than once. Nothing was sent back to the application."
)

// maxParam bounds the length of state, nonce and login_hint.
const maxParam = 1024

// authorize is the authorization endpoint (RFC 6749 §4.1.1, OpenID
// Connect Core §3.1.2), for response_type=code. Until the client and its
// exactly matching redirect URI are known, errors are shown on a 400 page;
// after, they go back to the redirect URI with state. PKCE is S256 only
// and required of public clients, checked before any sign-in page. A live
// browser session skips the sign-in unless prompt=login or max_age say
// otherwise; prompt=none never shows a page.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	ctx := h.requestContext(r)
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, p, http.StatusBadRequest, "The sign-in request could not be read. Nothing was sent back to the application.")
		return
	}
	q := r.Form
	a, ok := h.readAuthz(w, r, p, q)
	if !ok {
		return
	}
	// max_age=0 asks for a fresh sign-in, like prompt=login (OpenID
	// Connect Core §3.1.2.1); a session made within the same second passes
	// any larger max_age. An id_token_hint names the user the client
	// expects: a session of another user is not reused (§3.1.2.1), so that
	// a silent renewal never switches users unseen.
	none := slices.Contains(a.prompt, "none")
	if !slices.Contains(a.prompt, "login") && a.maxAge != 0 {
		if bs, ok := h.browserSession(ctx, r, p); ok && (a.maxAge < 0 || h.now().Unix()-bs.AuthTime <= a.maxAge) {
			if a.hintSub == "" || bs.Sub == a.hintSub {
				h.issueCode(ctx, w, r, p, a.req, bs)
				return
			}
			if none {
				a.fail(errLoginRequired, "the signed-in user is not the one id_token_hint names")
				return
			}
		}
	}
	if none {
		a.fail(errLoginRequired, "no signed-in session")
		return
	}
	tx, err := h.beginTx(ctx, p, a.req)
	if err != nil {
		h.internalErrorPage(w, r, p, err)
		return
	}
	http.Redirect(w, r, basePath(p)+"/login?tx="+url.QueryEscape(tx), http.StatusFound)
}

// authz is an authorization request that readAuthz checked.
type authz struct {
	req    authzRequest
	prompt []string
	maxAge int64
	// hintSub is the user an id_token_hint names ("" without one).
	hintSub string
	// fail sends an error back to the client's redirect URI, with state.
	fail func(code, desc string)
}

// readAuthz checks an authorization request's parameters (q), its
// id_token_hint (Pool.IDTokenHint) included: before the client and an exactly
// matching redirect URI are known, errors are shown on a 400 page; after,
// they go back to the redirect URI with state. It reports false once it
// has answered.
func (h *Handler) readAuthz(w http.ResponseWriter, r *http.Request, p *userpool.Pool, q url.Values) (authz, bool) {
	ctx := h.requestContext(r)
	for _, k := range []string{"client_id", "redirect_uri", "state"} {
		if len(q[k]) > 1 {
			h.errorPage(w, p, http.StatusBadRequest, msgRepeated)
			return authz{}, false
		}
	}
	clientID := q.Get("client_id")
	c, err := p.Client(ctx, clientID)
	if err != nil || clientID == "" {
		h.errorPage(w, p, http.StatusBadRequest, msgUnknownClient)
		return authz{}, false
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" || !slices.Contains(c.RedirectURIs, redirect) {
		h.errorPage(w, p, http.StatusBadRequest, msgBadRedirect)
		return authz{}, false
	}
	state := q.Get("state")
	fail := func(code, desc string) {
		params := url.Values{"error": {code}, "error_description": {desc}}
		if state != "" {
			params.Set("state", state)
		}
		redirectWith(w, r, redirect, params)
	}
	req, prompt, maxAge, oerr := parseAuthz(q, c)
	if oerr != nil {
		fail(oerr.Code, oerr.Description)
		return authz{}, false
	}
	a := authz{req: req, prompt: prompt, maxAge: maxAge, fail: fail}
	if raw := q.Get("id_token_hint"); raw != "" {
		hc, err := p.IDTokenHint(ctx, raw)
		if err != nil {
			fail(errInvalidRequest, "id_token_hint is not an ID token of this issuer")
			return authz{}, false
		}
		a.hintSub = hc.Subject
	}
	return a, true
}

// parseAuthz validates the parameters after client_id and redirect_uri.
// maxAge is -1 when absent.
func parseAuthz(q url.Values, c store.Client) (req authzRequest, prompt []string, maxAge int64, _ *userpool.OAuthError) {
	for k, v := range q {
		if len(v) > 1 {
			return req, nil, 0, oauthError(errInvalidRequest, "parameter "+k+" is repeated")
		}
	}
	if q.Get("request") != "" || q.Get("request_uri") != "" {
		return req, nil, 0, oauthError("request_not_supported", "request objects are not supported")
	}
	switch q.Get("response_type") {
	case "code":
	case "":
		return req, nil, 0, oauthError(errInvalidRequest, "response_type is required")
	default:
		return req, nil, 0, oauthError(errUnsupportedResponseType, "only response_type=code is supported")
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return req, nil, 0, oauthError(errInvalidRequest, "only response_mode=query is supported")
	}
	if !userpool.HasFlow(c, "authorization_code") {
		return req, nil, 0, oauthError(errUnauthorizedClient, "this client may not use the authorization code flow")
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && c.Public:
		return req, nil, 0, oauthError(errInvalidRequest, "PKCE with code_challenge_method=S256 is required for public clients")
	case challenge == "" && method != "":
		return req, nil, 0, oauthError(errInvalidRequest, "code_challenge_method without code_challenge")
	case challenge != "" && method != "S256":
		// RFC 7636 §4.3: an absent method means plain, which is refused.
		return req, nil, 0, oauthError(errInvalidRequest, "code_challenge_method must be S256")
	case challenge != "" && !validChallenge(challenge):
		return req, nil, 0, oauthError(errInvalidRequest, "malformed code_challenge")
	}
	// An empty scope, or one of spaces alone, is an omitted scope: the
	// client's default (RFC 6749 §3.3).
	scope := c.Scopes
	if s := strings.Fields(q.Get("scope")); len(s) > 0 {
		scope = s
		for _, x := range scope {
			if !slices.Contains(c.Scopes, x) {
				return req, nil, 0, oauthError(errInvalidScope, "scope "+x+" is not allowed for this client")
			}
		}
	}
	for _, k := range []string{"state", "nonce", "login_hint"} {
		if len(q.Get(k)) > maxParam {
			return req, nil, 0, oauthError(errInvalidRequest, k+" is too long")
		}
	}
	prompt = strings.Fields(q.Get("prompt"))
	for _, v := range prompt {
		switch v {
		case "none", "login", "consent", "select_account":
		default:
			return req, nil, 0, oauthError(errInvalidRequest, "unknown prompt value")
		}
	}
	if slices.Contains(prompt, "none") && len(prompt) > 1 {
		return req, nil, 0, oauthError(errInvalidRequest, "prompt=none cannot be combined with other values")
	}
	maxAge = -1
	if v := q.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return req, nil, 0, oauthError(errInvalidRequest, "malformed max_age")
		}
		maxAge = n
	}
	req = authzRequest{ClientID: c.ClientID, RedirectURI: q.Get("redirect_uri"), State: q.Get("state"), Nonce: q.Get("nonce"),
		Scope: scope, CodeChallenge: challenge, LoginHint: q.Get("login_hint")}
	return req, prompt, maxAge, nil
}

// validChallenge reports whether s can be an S256 code_challenge: the
// base64url encoding (no padding) of a SHA-256 hash.
func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// beginTx stores a pending authorization request and returns its id.
func (h *Handler) beginTx(ctx context.Context, p *userpool.Pool, req authzRequest) (string, error) {
	tx := randomString(32)
	data, _ := json.Marshal(req)
	now := h.now()
	err := h.store.CreateSession(ctx, store.Session{ID: hashID(tx), Kind: kindAuthz, PoolID: p.ID(), ClientID: req.ClientID,
		Data: data, CreatedAt: now, ExpiresAt: now.Add(txLifetime)})
	return tx, err
}

// loadTx returns a pending authorization request and its client.
func (h *Handler) loadTx(ctx context.Context, p *userpool.Pool, tx string) (authzRequest, store.Client, bool) {
	if tx == "" || len(tx) > 256 {
		return authzRequest{}, store.Client{}, false
	}
	s, err := h.store.GetSession(ctx, hashID(tx), h.now())
	if err != nil || s.Kind != kindAuthz || s.PoolID != p.ID() {
		return authzRequest{}, store.Client{}, false
	}
	var req authzRequest
	if json.Unmarshal(s.Data, &req) != nil {
		return authzRequest{}, store.Client{}, false
	}
	c, err := p.Client(ctx, req.ClientID)
	if err != nil {
		return authzRequest{}, store.Client{}, false
	}
	return req, c, true
}

// redirectWith redirects to uri (a registered redirect or logout URI) with
// params added to its query.
func redirectWith(w http.ResponseWriter, r *http.Request, uri string, params url.Values) {
	u, err := url.Parse(uri)
	if err != nil {
		http.Error(w, "bad redirect URI", http.StatusInternalServerError)
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}
