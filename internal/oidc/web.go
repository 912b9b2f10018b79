package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"rsc.io/qr"

	"github.com/writ-id/writ/internal/awsjson"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// Lifetimes of the hosted flow's server-side state.
const (
	txLifetime      = 15 * time.Minute
	browserLifetime = time.Hour
)

// Session kinds used by the hosted pages.
const (
	kindAuthz    = "authz"
	kindBrowser  = "browser"
	kindCode     = "code"
	kindCodeUsed = "code-used"
)

// authzRequest is a validated /oauth2/authorize request.
type authzRequest struct {
	ClientID      string   `json:"c"`
	RedirectURI   string   `json:"r"`
	State         string   `json:"s,omitempty"`
	Nonce         string   `json:"n,omitempty"`
	Scope         []string `json:"sc"`
	CodeChallenge string   `json:"cc,omitempty"`
}

// browserSession is who is signed in to the hosted pages.
type browserSession struct {
	Sub      string   `json:"s"`
	Username string   `json:"u"`
	AuthTime int64    `json:"t"`
	AMR      []string `json:"a"`
}

// codeGrant is what an authorization code stands for.
type codeGrant struct {
	Req       authzRequest   `json:"q"`
	Who       browserSession `json:"w"`
	OriginJTI string         `json:"o"`
}

type page struct {
	Title, PoolName, Error, Notice, Base, CSRF, TX string
	Username, Email, Session, Secret               string
	QR                                             template.URL // a data: URL we build
	PasswordHelp, Link, LinkText                   string
	SignupAllowed                                  bool
}

func hashID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// basePath is the path of the pool's issuer (where its pages live).
func basePath(p *userpool.Pool) string {
	u, err := url.Parse(p.Issuer())
	if err != nil {
		return "/" + p.ID()
	}
	return u.Path
}

func secureCookies(p *userpool.Pool) bool { return strings.HasPrefix(p.Issuer(), "https://") }

func (h *Handler) render(w http.ResponseWriter, status int, name string, p *userpool.Pool, pg page) {
	pg.Base = basePath(p)
	pg.PoolName = p.Config().Name
	if pg.PoolName == "" {
		pg.PoolName = p.ID()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, pg); err != nil {
		h.log.Error("render page", "page", name, "err", err)
	}
}

// errorPage shows an error that must not be redirected (RFC 6749 §4.1.2.1).
func (h *Handler) errorPage(w http.ResponseWriter, p *userpool.Pool, status int, msg string) {
	h.render(w, status, "message", p, page{Title: "Something went wrong", Error: msg})
}

// csrf returns the CSRF token of the browser, setting the cookie when new.
func (h *Handler) csrf(w http.ResponseWriter, r *http.Request, p *userpool.Pool) string {
	if c, err := r.Cookie("writ_csrf"); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	v := randomString(32)
	http.SetCookie(w, &http.Cookie{Name: "writ_csrf", Value: v, Path: basePath(p) + "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: secureCookies(p)})
	return v
}

// checkCSRF compares the form's token with the cookie in constant time.
func checkCSRF(r *http.Request) bool {
	c, err := r.Cookie("writ_csrf")
	if err != nil || len(c.Value) < 32 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) == 1
}

func redirectWith(w http.ResponseWriter, r *http.Request, uri string, params url.Values) {
	u, _ := url.Parse(uri)
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	ctx := h.requestContext(r)
	q := r.URL.Query()
	c, err := p.Client(ctx, q.Get("client_id"))
	if err != nil || q.Get("client_id") == "" {
		h.errorPage(w, p, http.StatusBadRequest, "Unknown application (client_id). Nothing was sent back to it.")
		return
	}
	redirect := q.Get("redirect_uri")
	if !containsStr(c.RedirectURIs, redirect) {
		h.errorPage(w, p, http.StatusBadRequest, "The redirect_uri is not registered for this application. Nothing was sent back to it.")
		return
	}
	state := q.Get("state")
	fail := func(code, desc string) {
		params := url.Values{"error": {code}, "error_description": {desc}}
		if state != "" {
			params.Set("state", state)
		}
		redirectWith(w, r, redirect, params)
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	}
	if !userpool.HasFlow(c, "authorization_code") {
		fail("unauthorized_client", "this client may not use the authorization code flow")
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && c.Public:
		fail("invalid_request", "PKCE with S256 is required for public clients")
		return
	case challenge != "" && method != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case challenge != "" && (len(challenge) < 43 || len(challenge) > 128):
		fail("invalid_request", "malformed code_challenge")
		return
	}
	scope := c.Scopes
	if s := q.Get("scope"); s != "" {
		scope = strings.Fields(s)
		for _, x := range scope {
			if !containsStr(c.Scopes, x) {
				fail("invalid_scope", "scope "+x+" is not allowed for this client")
				return
			}
		}
	}
	prompt := q.Get("prompt")
	maxAge := -1
	if v := q.Get("max_age"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fail("invalid_request", "malformed max_age")
			return
		}
		maxAge = n
	}
	req := authzRequest{ClientID: c.ClientID, RedirectURI: redirect, State: state, Nonce: q.Get("nonce"), Scope: scope, CodeChallenge: challenge}
	if prompt != "login" {
		if bs, ok := h.browserSession(ctx, r, p); ok && (maxAge < 0 || h.now().Unix()-bs.AuthTime <= int64(maxAge)) {
			h.issueCode(w, r, p, req, bs)
			return
		}
	}
	if prompt == "none" {
		fail("login_required", "no signed-in session")
		return
	}
	tx := randomString(32)
	data, _ := json.Marshal(req)
	now := h.now()
	if err := h.store.CreateSession(ctx, store.Session{ID: hashID(tx), Kind: kindAuthz, PoolID: p.ID(), ClientID: c.ClientID,
		Data: data, CreatedAt: now, ExpiresAt: now.Add(txLifetime)}); err != nil {
		h.errorPage(w, p, http.StatusInternalServerError, "Internal error; please try again.")
		return
	}
	http.Redirect(w, r, basePath(p)+"/login?tx="+url.QueryEscape(tx), http.StatusFound)
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// browserSession returns the signed-in user of this browser, if the
// session is live and the user has not signed out or been disabled since.
func (h *Handler) browserSession(ctx context.Context, r *http.Request, p *userpool.Pool) (browserSession, bool) {
	ck, err := r.Cookie("writ_session")
	if err != nil || ck.Value == "" || len(ck.Value) > 256 {
		return browserSession{}, false
	}
	s, err := h.store.GetSession(ctx, hashID(ck.Value), h.now())
	if err != nil || s.Kind != kindBrowser || s.PoolID != p.ID() {
		return browserSession{}, false
	}
	var bs browserSession
	if json.Unmarshal(s.Data, &bs) != nil {
		return browserSession{}, false
	}
	u, err := h.svc.UserBySub(ctx, bs.Sub)
	if err != nil || !u.Enabled || (!u.RevokedBefore.IsZero() && bs.AuthTime < u.RevokedBefore.Unix()) {
		return browserSession{}, false
	}
	return bs, true
}

// loadTx returns the pending authorization request and its client.
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

const expiredTx = "This sign-in page has expired. Go back to the application and sign in again."

// form parses a hosted-page POST, checking CSRF and the transaction.
func (h *Handler) form(w http.ResponseWriter, r *http.Request) (*userpool.Pool, context.Context, authzRequest, store.Client, bool) {
	p, ok := h.pool(w, r)
	if !ok {
		return nil, nil, authzRequest{}, store.Client{}, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, p, http.StatusBadRequest, "The form could not be read.")
		return nil, nil, authzRequest{}, store.Client{}, false
	}
	if !checkCSRF(r) {
		h.errorPage(w, p, http.StatusForbidden, "The form expired or did not come from this site (CSRF check failed). Reload the page and try again.")
		return nil, nil, authzRequest{}, store.Client{}, false
	}
	ctx := h.requestContext(r)
	req, c, ok := h.loadTx(ctx, p, r.PostFormValue("tx"))
	if !ok {
		h.errorPage(w, p, http.StatusBadRequest, expiredTx)
		return nil, nil, authzRequest{}, store.Client{}, false
	}
	return p, ctx, req, c, true
}

func (h *Handler) pageFor(w http.ResponseWriter, r *http.Request, p *userpool.Pool, tx string) page {
	return page{CSRF: h.csrf(w, r, p), TX: tx, SignupAllowed: p.Config().SelfSignup == nil || *p.Config().SelfSignup,
		PasswordHelp: passwordHelp(p)}
}

func passwordHelp(p *userpool.Pool) string {
	pp := p.Config().PasswordPolicy
	parts := []string{fmt.Sprintf("At least %d characters", pp.MinLength)}
	for _, x := range []struct {
		on   bool
		what string
	}{{pp.RequireLowercase, "a lowercase letter"}, {pp.RequireUppercase, "an uppercase letter"}, {pp.RequireDigits, "a digit"}, {pp.RequireSymbols, "a symbol"}} {
		if x.on {
			parts = append(parts, x.what)
		}
	}
	return strings.Join(parts, ", ") + "."
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	tx := r.URL.Query().Get("tx")
	if _, _, ok := h.loadTx(h.requestContext(r), p, tx); !ok {
		h.errorPage(w, p, http.StatusBadRequest, expiredTx)
		return
	}
	pg := h.pageFor(w, r, p, tx)
	pg.Title = "Sign in"
	h.render(w, http.StatusOK, "login", p, pg)
}

func userMessage(err error) string {
	var ue *userpool.Error
	if errors.As(err, &ue) && ue.Code != userpool.CodeInternal {
		return ue.Message
	}
	return "Something went wrong; please try again."
}

func (h *Handler) loginPost(w http.ResponseWriter, r *http.Request) {
	p, ctx, _, c, ok := h.form(w, r)
	if !ok {
		return
	}
	tx := r.PostFormValue("tx")
	username := r.PostFormValue("username")
	res, err := p.WebPasswordAuth(ctx, c, username, r.PostFormValue("password"), awsjson.SourceIP(r))
	if err != nil {
		pg := h.pageFor(w, r, p, tx)
		pg.Title, pg.Error, pg.Username = "Sign in", userMessage(err), username
		h.render(w, http.StatusOK, "login", p, pg)
		return
	}
	h.next(w, r, p, ctx, c, tx, res)
}

// next shows the page for a sign-in step's result, or completes it.
func (h *Handler) next(w http.ResponseWriter, r *http.Request, p *userpool.Pool, ctx context.Context, c store.Client, tx string, res userpool.Result) {
	pg := h.pageFor(w, r, p, tx)
	pg.Session = res.Session
	switch {
	case res.Done:
		h.complete(w, r, p, ctx, tx, browserSession{Sub: res.User.Sub, Username: res.User.Username, AuthTime: res.AuthTime.Unix(), AMR: res.AMR})
	case res.Challenge == userpool.ChallengeSoftwareTokenMFA:
		pg.Title = "Two-step verification"
		h.render(w, http.StatusOK, "totp", p, pg)
	case res.Challenge == userpool.ChallengeNewPassword:
		pg.Title = "Choose a new password"
		pg.Notice = "Your account needs a new password before you continue."
		h.render(w, http.StatusOK, "newpassword", p, pg)
	case res.Challenge == userpool.ChallengeMFASetup:
		secret, next, err := p.AssociateSoftwareToken(ctx, "", res.Session)
		if err != nil {
			h.errorPage(w, p, http.StatusBadRequest, userMessage(err))
			return
		}
		h.renderEnrol(w, p, pg, res.User.Username, secret, next, "")
	default:
		h.errorPage(w, p, http.StatusBadRequest, "Unsupported sign-in step.")
	}
}

func (h *Handler) renderEnrol(w http.ResponseWriter, p *userpool.Pool, pg page, username, secret, session, errMsg string) {
	label := url.PathEscape(p.Config().Name + ":" + username)
	uri := "otpauth://totp/" + label + "?secret=" + secret + "&issuer=" + url.QueryEscape(p.Config().Name)
	code, err := qr.Encode(uri, qr.M)
	if err != nil {
		h.errorPage(w, p, http.StatusInternalServerError, "Could not draw the QR code.")
		return
	}
	code.Scale = 4
	pg.Title = "Set up two-step verification"
	pg.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(code.PNG()))
	pg.Secret, pg.Session, pg.Error = secret, session, errMsg
	h.render(w, http.StatusOK, "enrol", p, pg)
}

func (h *Handler) totpPost(w http.ResponseWriter, r *http.Request) {
	p, ctx, _, c, ok := h.form(w, r)
	if !ok {
		return
	}
	tx, session := r.PostFormValue("tx"), r.PostFormValue("session")
	res, err := p.Respond(ctx, c, userpool.ChallengeSoftwareTokenMFA, session, map[string]string{"SOFTWARE_TOKEN_MFA_CODE": strings.TrimSpace(r.PostFormValue("code"))})
	if err != nil {
		if _, live := p.SessionLive(ctx, session); !live {
			h.errorPage(w, p, http.StatusBadRequest, "Too many attempts or the page expired. Go back to the application and sign in again.")
			return
		}
		pg := h.pageFor(w, r, p, tx)
		pg.Title, pg.Error, pg.Session = "Two-step verification", "That code is not right. Check your authenticator app and try again.", session
		h.render(w, http.StatusOK, "totp", p, pg)
		return
	}
	h.next(w, r, p, ctx, c, tx, res)
}

func (h *Handler) enrolPost(w http.ResponseWriter, r *http.Request) {
	p, ctx, _, c, ok := h.form(w, r)
	if !ok {
		return
	}
	tx, session, secret := r.PostFormValue("tx"), r.PostFormValue("session"), r.PostFormValue("secret")
	next, err := p.VerifySoftwareToken(ctx, "", session, strings.TrimSpace(r.PostFormValue("code")))
	if err != nil {
		if _, live := p.SessionLive(ctx, session); !live {
			h.errorPage(w, p, http.StatusBadRequest, "The page expired. Go back to the application and sign in again.")
			return
		}
		h.renderEnrol(w, p, h.pageFor(w, r, p, tx), "", secret, session, "That code is not right. Enter the code your app shows now.")
		return
	}
	res, err := p.Respond(ctx, c, userpool.ChallengeMFASetup, next, nil)
	if err != nil {
		h.errorPage(w, p, http.StatusBadRequest, userMessage(err))
		return
	}
	h.next(w, r, p, ctx, c, tx, res)
}

func (h *Handler) newPasswordPost(w http.ResponseWriter, r *http.Request) {
	p, ctx, _, c, ok := h.form(w, r)
	if !ok {
		return
	}
	tx, session := r.PostFormValue("tx"), r.PostFormValue("session")
	res, err := p.Respond(ctx, c, userpool.ChallengeNewPassword, session, map[string]string{"NEW_PASSWORD": r.PostFormValue("password")})
	if err != nil {
		pg := h.pageFor(w, r, p, tx)
		pg.Title, pg.Error, pg.Session = "Choose a new password", userMessage(err), session
		h.render(w, http.StatusOK, "newpassword", p, pg)
		return
	}
	h.next(w, r, p, ctx, c, tx, res)
}

// complete signs the browser in and sends the code to the application.
func (h *Handler) complete(w http.ResponseWriter, r *http.Request, p *userpool.Pool, ctx context.Context, tx string, bs browserSession) {
	s, err := h.store.ConsumeSession(ctx, hashID(tx), h.now())
	var req authzRequest
	if err != nil || json.Unmarshal(s.Data, &req) != nil {
		h.errorPage(w, p, http.StatusBadRequest, expiredTx)
		return
	}
	sid := randomString(32)
	data, _ := json.Marshal(bs)
	now := h.now()
	if err := h.store.CreateSession(ctx, store.Session{ID: hashID(sid), Kind: kindBrowser, PoolID: p.ID(), Username: bs.Username,
		Data: data, CreatedAt: now, ExpiresAt: now.Add(browserLifetime)}); err != nil {
		h.errorPage(w, p, http.StatusInternalServerError, "Internal error; please try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "writ_session", Value: sid, Path: basePath(p) + "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: secureCookies(p), MaxAge: int(browserLifetime / time.Second)})
	h.issueCode(w, r, p, req, bs)
}

func (h *Handler) issueCode(w http.ResponseWriter, r *http.Request, p *userpool.Pool, req authzRequest, bs browserSession) {
	ctx := h.requestContext(r)
	code := randomString(32)
	data, _ := json.Marshal(codeGrant{Req: req, Who: bs, OriginJTI: uuid.NewString()})
	now := h.now()
	if err := h.store.CreateSession(ctx, store.Session{ID: hashID(code), Kind: kindCode, PoolID: p.ID(), ClientID: req.ClientID,
		Username: bs.Username, Data: data, CreatedAt: now, ExpiresAt: now.Add(p.Config().Tokens.Code)}); err != nil {
		h.errorPage(w, p, http.StatusInternalServerError, "Internal error; please try again.")
		return
	}
	params := url.Values{"code": {code}}
	if req.State != "" {
		params.Set("state", req.State)
	}
	redirectWith(w, r, req.RedirectURI, params)
}

// redeemCode is the authorization_code grant.
func (h *Handler) redeemCode(ctx context.Context, p *userpool.Pool, c store.Client, code, redirectURI, verifier string) (userpool.Tokens, error) {
	invalid := func(desc string) error { return &userpool.OAuthError{Code: "invalid_grant", Description: desc} }
	if code == "" || len(code) > 256 {
		return userpool.Tokens{}, &userpool.OAuthError{Code: "invalid_request", Description: "code is required"}
	}
	id := hashID(code)
	now := h.now()
	s, err := h.store.ConsumeSession(ctx, id, now)
	if err != nil {
		// A code used before: revoke what it issued (RFC 6749 §4.1.2).
		if used, err := h.store.GetSession(ctx, id+":used", now); err == nil {
			var g codeGrant
			if json.Unmarshal(used.Data, &g) == nil {
				if err := p.RevokeSignIn(ctx, g.OriginJTI); err != nil {
					return userpool.Tokens{}, err
				}
			}
			return userpool.Tokens{}, invalid("authorization code already used; the tokens it issued are revoked")
		}
		return userpool.Tokens{}, invalid("invalid or expired authorization code")
	}
	var g codeGrant
	if s.Kind != kindCode || s.PoolID != p.ID() || json.Unmarshal(s.Data, &g) != nil {
		return userpool.Tokens{}, invalid("invalid authorization code")
	}
	if g.Req.ClientID != c.ClientID {
		return userpool.Tokens{}, invalid("the code was issued to another client")
	}
	if g.Req.RedirectURI != redirectURI {
		return userpool.Tokens{}, invalid("redirect_uri does not match the authorization request")
	}
	if g.Req.CodeChallenge != "" {
		if len(verifier) < 43 || len(verifier) > 128 {
			return userpool.Tokens{}, invalid("code_verifier missing or malformed")
		}
		sum := sha256.Sum256([]byte(verifier))
		if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.Req.CodeChallenge)) != 1 {
			return userpool.Tokens{}, invalid("code_verifier does not match the code_challenge")
		}
	} else if verifier != "" {
		return userpool.Tokens{}, invalid("no code_challenge was sent for this code")
	}
	if err := h.store.CreateSession(ctx, store.Session{ID: id + ":used", Kind: kindCodeUsed, PoolID: p.ID(), ClientID: c.ClientID,
		Data: s.Data, CreatedAt: now, ExpiresAt: now.Add(p.Config().Tokens.Refresh)}); err != nil {
		return userpool.Tokens{}, err
	}
	u, err := h.svc.UserBySub(ctx, g.Who.Sub)
	if err != nil || !u.Enabled {
		return userpool.Tokens{}, invalid("the user is no longer active")
	}
	return p.Issue(ctx, userpool.Grant{Client: c, User: u, Scope: g.Req.Scope, IDToken: containsStr(g.Req.Scope, "openid"),
		Refresh: userpool.HasFlow(c, "refresh_token"), AuthTime: time.Unix(g.Who.AuthTime, 0), AMR: g.Who.AMR, Nonce: g.Req.Nonce,
		OriginJTI: g.OriginJTI})
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	ctx := h.requestContext(r)
	q := r.URL.Query()
	target := q.Get("logout_uri")
	if target == "" {
		target = q.Get("post_logout_redirect_uri")
	}
	clientID := q.Get("client_id")
	var c store.Client
	if clientID != "" || target != "" {
		var err error
		c, err = p.Client(ctx, clientID)
		if err != nil {
			h.errorPage(w, p, http.StatusBadRequest, "Unknown application (client_id).")
			return
		}
		if target != "" && !containsStr(c.LogoutURIs, target) {
			h.errorPage(w, p, http.StatusBadRequest, "The sign-out redirect address is not registered for this application.")
			return
		}
	}
	if ck, err := r.Cookie("writ_session"); err == nil && ck.Value != "" && len(ck.Value) <= 256 {
		h.store.DeleteSession(ctx, hashID(ck.Value))
	}
	http.SetCookie(w, &http.Cookie{Name: "writ_session", Value: "", Path: basePath(p) + "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: secureCookies(p)})
	if target == "" {
		h.render(w, http.StatusOK, "message", p, page{Title: "Signed out", Notice: "You are signed out."})
		return
	}
	params := url.Values{}
	if s := q.Get("state"); s != "" {
		params.Set("state", s)
	}
	redirectWith(w, r, target, params)
}

func (h *Handler) simplePage(name, title string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := h.pool(w, r)
		if !ok {
			return
		}
		tx := r.URL.Query().Get("tx")
		if _, _, ok := h.loadTx(h.requestContext(r), p, tx); !ok {
			h.errorPage(w, p, http.StatusBadRequest, expiredTx)
			return
		}
		pg := h.pageFor(w, r, p, tx)
		pg.Title = title
		if name == "signup" && !pg.SignupAllowed {
			h.errorPage(w, p, http.StatusForbidden, "This service does not allow creating accounts.")
			return
		}
		h.render(w, http.StatusOK, name, p, pg)
	}
}

func (h *Handler) signupPost(w http.ResponseWriter, r *http.Request) {
	p, ctx, _, c, ok := h.form(w, r)
	if !ok {
		return
	}
	tx := r.PostFormValue("tx")
	pg := h.pageFor(w, r, p, tx)
	pg.Username, pg.Email = r.PostFormValue("username"), r.PostFormValue("email")
	_, _, err := p.SignUp(ctx, c, pg.Username, r.PostFormValue("password"), "", []userpool.Attribute{{Name: "email", Value: pg.Email}})
	if err != nil {
		pg.Title, pg.Error = "Create an account", userMessage(err)
		h.render(w, http.StatusOK, "signup", p, pg)
		return
	}
	pg.Title, pg.Notice = "Confirm your account", "We sent a confirmation code to "+pg.Email+"."
	h.render(w, http.StatusOK, "confirm", p, pg)
}

func (h *Handler) confirmPost(w http.ResponseWriter, r *http.Request) {
	p, ctx, _, c, ok := h.form(w, r)
	if !ok {
		return
	}
	tx := r.PostFormValue("tx")
	pg := h.pageFor(w, r, p, tx)
	pg.Username = r.PostFormValue("username")
	if err := p.ConfirmSignUp(ctx, c, pg.Username, strings.TrimSpace(r.PostFormValue("code")), ""); err != nil {
		pg.Title, pg.Error = "Confirm your account", userMessage(err)
		h.render(w, http.StatusOK, "confirm", p, pg)
		return
	}
	pg.Title, pg.Notice = "Sign in", "Your account is confirmed. Sign in to continue."
	h.render(w, http.StatusOK, "login", p, pg)
}

func (h *Handler) forgotPost(w http.ResponseWriter, r *http.Request) {
	p, ctx, _, c, ok := h.form(w, r)
	if !ok {
		return
	}
	tx := r.PostFormValue("tx")
	pg := h.pageFor(w, r, p, tx)
	pg.Username = r.PostFormValue("username")
	if _, err := p.ForgotPassword(ctx, c, pg.Username, ""); err != nil {
		pg.Title, pg.Error = "Reset your password", userMessage(err)
		h.render(w, http.StatusOK, "forgot", p, pg)
		return
	}
	pg.Title, pg.Notice = "Reset your password", "If the account exists, we sent it a reset code."
	h.render(w, http.StatusOK, "reset", p, pg)
}

func (h *Handler) resetPost(w http.ResponseWriter, r *http.Request) {
	p, ctx, _, c, ok := h.form(w, r)
	if !ok {
		return
	}
	tx := r.PostFormValue("tx")
	pg := h.pageFor(w, r, p, tx)
	pg.Username = r.PostFormValue("username")
	if err := p.ConfirmForgotPassword(ctx, c, pg.Username, strings.TrimSpace(r.PostFormValue("code")), r.PostFormValue("password"), ""); err != nil {
		pg.Title, pg.Error = "Reset your password", userMessage(err)
		h.render(w, http.StatusOK, "reset", p, pg)
		return
	}
	pg.Title, pg.Notice = "Sign in", "Your password is changed. Sign in with the new one."
	h.render(w, http.StatusOK, "login", p, pg)
}
