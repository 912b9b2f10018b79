package oidc_test

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/userpool"
)

const redirectURI = "http://127.0.0.1:8485/callback"

// browser is a cookie-keeping HTTP client that does not follow redirects,
// so each hop of the flow can be checked.
type browser struct {
	t  *testing.T
	hc *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.hc.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.hc.PostForm(u, form)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`)

// hidden returns the hidden fields of a page.
func hidden(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

func pkce() (verifier, challenge string) {
	verifier = oauth2.GenerateVerifier()
	return verifier, oauth2.S256ChallengeFromVerifier(verifier)
}

func (f *fx) webConfig() *oauth2.Config {
	return &oauth2.Config{ClientID: "demo-web", RedirectURL: redirectURI, Scopes: []string{"openid", "email", "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: f.iss + "/oauth2/authorize", TokenURL: f.iss + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
}

// signInWeb drives the hosted pages for alice (password + TOTP) and returns
// the redirect to the application.
func (f *fx) signInWeb(b *browser, authURL string) *url.URL {
	f.t.Helper()
	resp, _ := b.get(authURL)
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/login?tx=") {
		f.t.Fatalf("authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	login := f.App.URL("idp") + resp.Header.Get("Location")
	_, page := b.get(login)
	form := hidden(page)
	form.Set("username", "alice")
	form.Set("password", "Alice-Passw0rd")
	_, page = b.post(f.iss+"/login", form)
	if !strings.Contains(page, "Two-step verification") {
		f.t.Fatalf("want the TOTP page, got:\n%s", page)
	}
	form = hidden(page)
	code, _ := userpool.TOTPNow("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", f.Clock.Now())
	form.Set("code", code)
	resp, page = b.post(f.iss+"/login/totp", form)
	if resp.StatusCode != http.StatusFound {
		f.t.Fatalf("after TOTP: %d\n%s", resp.StatusCode, page)
	}
	f.Clock.Advance(30 * time.Second)
	u, _ := url.Parse(resp.Header.Get("Location"))
	return u
}

func TestAuthorizationCodeFlowWithPKCE(t *testing.T) {
	f := start(t)
	b := newBrowser(t)
	conf := f.webConfig()
	verifier, _ := pkce()
	back := f.signInWeb(b, conf.AuthCodeURL("st-123", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-456")))
	if back.Scheme+"://"+back.Host+back.Path != redirectURI || back.Query().Get("state") != "st-123" || back.Query().Get("code") == "" {
		t.Fatalf("redirect back: %s", back)
	}
	ctx := context.Background()
	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	prov, _ := oidc.NewProvider(ctx, f.iss)
	idt, err := prov.Verifier(&oidc.Config{ClientID: "demo-web"}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	if idt.Nonce != "n-456" || tok.RefreshToken == "" {
		t.Fatalf("nonce %q, refresh %v", idt.Nonce, tok.RefreshToken != "")
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	if c := claims(t, tok.AccessToken); c["scope"] != "openid email profile" || c["username"] != "alice" {
		t.Errorf("access token: %v", c)
	}
	info, err := prov.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Email != "alice@example.com" {
		t.Fatalf("userInfo via go-oidc: %v %+v", err, info)
	}

	// The same code again: refused, and what it issued is revoked.
	_, err = conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	wantOAuth(t, err, "invalid_grant")
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	wantOAuth(t, err, "invalid_grant")
	if _, err := prov.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("userInfo with the access token of a replayed code: %v", err)
	}

	// A second authorize rides the browser session: no password.
	verifier2, _ := pkce()
	resp, _ := b.get(conf.AuthCodeURL("again", oauth2.S256ChallengeOption(verifier2)))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" || loc.Query().Get("state") != "again" {
		t.Fatalf("silent re-authorize: %d %s", resp.StatusCode, loc)
	}
	// prompt=login and max_age force the sign-in page.
	for _, opt := range []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0")} {
		f.Clock.Advance(2 * time.Second)
		resp, _ = b.get(conf.AuthCodeURL("x", oauth2.S256ChallengeOption(verifier2), opt))
		if !strings.Contains(resp.Header.Get("Location"), "/login?tx=") {
			t.Errorf("forced login: %s", resp.Header.Get("Location"))
		}
	}
	// Sign out at /logout, only to a registered URI.
	resp, _ = b.get(f.iss + "/logout?client_id=demo-web&logout_uri=" + url.QueryEscape("http://evil.example/"))
	if resp.StatusCode != 400 {
		t.Fatalf("unregistered logout_uri: %d", resp.StatusCode)
	}
	resp, _ = b.get(f.iss + "/logout?client_id=demo-web&logout_uri=" + url.QueryEscape("http://127.0.0.1:8485/"))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://127.0.0.1:8485/" {
		t.Fatalf("logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = b.get(conf.AuthCodeURL("y", oauth2.S256ChallengeOption(verifier2), oauth2.SetAuthURLParam("prompt", "none")))
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none after logout: %s", resp.Header.Get("Location"))
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	f := start(t)
	b := newBrowser(t)
	_, challenge := pkce()
	base := url.Values{"response_type": {"code"}, "client_id": {"demo-web"}, "redirect_uri": {redirectURI}, "state": {"s"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "scope": {"openid"}}
	with := func(k, v string) string {
		q := url.Values{}
		for kk, vv := range base {
			q[kk] = vv
		}
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return f.iss + "/oauth2/authorize?" + q.Encode()
	}
	// Shown on a page, never redirected.
	for name, u := range map[string]string{
		"unknown client":        with("client_id", "nope"),
		"unregistered redirect": with("redirect_uri", "http://127.0.0.1:8485/callback/evil"),
		"redirect with query":   with("redirect_uri", redirectURI+"?x=1"),
		"other port":            with("redirect_uri", "http://127.0.0.1:8486/callback"),
		"https scheme":          with("redirect_uri", "https://127.0.0.1:8485/callback"),
		"no redirect":           with("redirect_uri", ""),
	} {
		resp, body := b.get(u)
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(body, "Nothing was sent back") {
			t.Errorf("%s: %d %q", name, resp.StatusCode, resp.Header.Get("Location"))
		}
		// The whole page, not one cut short by a failed template.
		if !strings.Contains(body, "</html>") {
			t.Errorf("%s: incomplete page:\n%s", name, body)
		}
	}
	// Redirected with the error, before any sign-in page.
	for name, c := range map[string]struct{ u, code string }{
		"no PKCE (public client)": {with("code_challenge", ""), "invalid_request"},
		"plain PKCE":              {with("code_challenge_method", "plain"), "invalid_request"},
		"token response type":     {with("response_type", "token"), "unsupported_response_type"},
		"no response type":        {with("response_type", ""), "invalid_request"},
		"scope not allowed":       {with("scope", "openid https://api.demo.local/files.read"), "invalid_scope"},
		"prompt none":             {with("prompt", "none"), "login_required"},
	} {
		resp, _ := b.get(c.u)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 302 || loc.Query().Get("error") != c.code || loc.Query().Get("state") != "s" || strings.Contains(loc.Path, "login") {
			t.Errorf("%s: %d %s", name, resp.StatusCode, loc)
		}
	}
}

func TestCodeRedemptionRefusals(t *testing.T) {
	f := start(t)
	conf := f.webConfig()
	ctx := context.Background()
	newCode := func() (code, verifier string) {
		verifier, _ = pkce()
		u := f.signInWeb(newBrowser(t), conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
		return u.Query().Get("code"), verifier
	}
	code, _ := newCode()
	_, err := conf.Exchange(ctx, code) // no verifier
	wantOAuth(t, err, "invalid_grant")
	code, _ = newCode()
	_, err = conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	wantOAuth(t, err, "invalid_grant")
	code, v := newCode()
	other := *conf
	other.RedirectURL = "http://127.0.0.1:8485/other"
	_, err = other.Exchange(ctx, code, oauth2.VerifierOption(v))
	wantOAuth(t, err, "invalid_grant")
	code, v = newCode()
	f.Clock.Advance(6 * time.Minute)
	_, err = conf.Exchange(ctx, code, oauth2.VerifierOption(v))
	wantOAuth(t, err, "invalid_grant")
}

func TestCSRFAndExpiredPages(t *testing.T) {
	f := start(t)
	b := newBrowser(t)
	verifier, _ := pkce()
	resp, _ := b.get(f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	_, page := b.get(f.App.URL("idp") + resp.Header.Get("Location"))
	form := hidden(page)
	form.Set("username", "alice")
	form.Set("password", "Alice-Passw0rd")
	noCSRF := url.Values{"tx": {form.Get("tx")}, "username": {"alice"}, "password": {"Alice-Passw0rd"}}
	resp, body := b.post(f.iss+"/login", noCSRF)
	if resp.StatusCode != 403 || !strings.Contains(body, "CSRF") {
		t.Fatalf("missing CSRF token: %d", resp.StatusCode)
	}
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("csrf", strings.Repeat("x", 43))
	if resp, _ := b.post(f.iss+"/login", bad); resp.StatusCode != 403 {
		t.Fatalf("wrong CSRF token: %d", resp.StatusCode)
	}
	// A wrong password re-renders the form with the error tied to the fields.
	wrong := url.Values{}
	for k, v := range form {
		wrong[k] = v
	}
	wrong.Set("password", "nope-Passw0rd")
	_, body = b.post(f.iss+"/login", wrong)
	if !strings.Contains(body, `role="alert"`) || !strings.Contains(body, "Incorrect username or password.") || !strings.Contains(body, `aria-describedby="form-error"`) {
		t.Fatalf("error page:\n%s", body)
	}
	f.Clock.Advance(16 * time.Minute)
	if resp, body := b.post(f.iss+"/login", form); resp.StatusCode != 400 || !strings.Contains(body, "expired") {
		t.Fatalf("expired transaction: %d", resp.StatusCode)
	}
}

func TestHostedSignUpAndReset(t *testing.T) {
	f := start(t)
	b := newBrowser(t)
	verifier, _ := pkce()
	resp, _ := b.get(f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	tx := strings.TrimPrefix(resp.Header.Get("Location"), "/"+poolID+"/login?tx=")
	tx, _ = url.QueryUnescape(tx)
	_, page := b.get(f.iss + "/signup?tx=" + url.QueryEscape(tx))
	form := hidden(page)
	form.Set("username", "dora")
	form.Set("email", "dora@example.com")
	form.Set("password", "Dora-Passw0rd")
	_, page = b.post(f.iss+"/signup", form)
	if !strings.Contains(page, "Confirm your account") {
		t.Fatalf("after sign-up:\n%s", page)
	}
	form = hidden(page)
	form.Set("username", "dora")
	form.Set("code", lastCode(t, f, "dora@example.com"))
	_, page = b.post(f.iss+"/confirm", form)
	if !strings.Contains(page, "Your account is confirmed") {
		t.Fatalf("after confirm:\n%s", page)
	}
	form = hidden(page)
	form.Set("username", "dora")
	form.Set("password", "Dora-Passw0rd")
	resp, _ = b.post(f.iss+"/login", form)
	if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), redirectURI+"?code=") {
		t.Fatalf("dora sign-in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Forgot and reset.
	b2 := newBrowser(t)
	resp, _ = b2.get(f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	tx, _ = url.QueryUnescape(strings.TrimPrefix(resp.Header.Get("Location"), "/"+poolID+"/login?tx="))
	_, page = b2.get(f.iss + "/forgot?tx=" + url.QueryEscape(tx))
	form = hidden(page)
	form.Set("username", "dora")
	_, page = b2.post(f.iss+"/forgot", form)
	form = hidden(page)
	form.Set("username", "dora")
	form.Set("code", lastCode(t, f, "dora@example.com"))
	form.Set("password", "Dora-New-Passw0rd")
	_, page = b2.post(f.iss+"/reset", form)
	if !strings.Contains(page, "Your password is changed") {
		t.Fatalf("after reset:\n%s", page)
	}
}

var mailCodeRE = regexp.MustCompile(`\b(\d{6})\b`)

func lastCode(t *testing.T, f *fx, addr string) string {
	t.Helper()
	ms, _ := f.App.Core.Store.ListMail(f.ctx, 0)
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].To == addr {
			return mailCodeRE.FindString(ms[i].Body)
		}
	}
	t.Fatalf("no mail to %s", addr)
	return ""
}

func TestHostedEnrolmentWhenMFARequired(t *testing.T) {
	f := start(t, func(c *config.Config) { c.UserPools[0].MFA = "required" })
	b := newBrowser(t)
	verifier, _ := pkce()
	resp, _ := b.get(f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	_, page := b.get(f.App.URL("idp") + resp.Header.Get("Location"))
	form := hidden(page)
	form.Set("username", "bob")
	form.Set("password", "Bob-Passw0rd1")
	_, page = b.post(f.iss+"/login", form)
	if !strings.Contains(page, "data:image/png;base64,") || !strings.Contains(page, `id="totp-secret"`) {
		t.Fatalf("enrolment page:\n%s", page)
	}
	form = hidden(page)
	secret := form.Get("secret")
	form.Set("code", "000000")
	if c, _ := userpool.TOTPNow(secret, f.Clock.Now()); c == "000000" {
		form.Set("code", "111111")
	}
	_, page = b.post(f.iss+"/login/enrol", form)
	if !strings.Contains(page, "That code is not right") {
		t.Fatalf("wrong enrolment code:\n%s", page)
	}
	form = hidden(page)
	c, _ := userpool.TOTPNow(secret, f.Clock.Now())
	form.Set("code", c)
	resp, page = b.post(f.iss+"/login/enrol", form)
	if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), redirectURI) {
		t.Fatalf("after enrolment: %d\n%s", resp.StatusCode, page)
	}
}

var _ = errors.New

// TestRefreshKeepsTheSignInsIDTokenChoice: a sign-in without openid has no
// ID token, and neither do its refreshes; one with openid keeps getting one.
func TestRefreshKeepsTheSignInsIDTokenChoice(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	for _, c := range []struct {
		scopes []string
		wantID bool
	}{{[]string{"email"}, false}, {[]string{"openid", "email"}, true}} {
		conf := f.webConfig()
		conf.Scopes = c.scopes
		verifier, _ := pkce()
		back := f.signInWeb(newBrowser(t), conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
		tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Extra("id_token") != nil; got != c.wantID || tok.RefreshToken == "" {
			t.Fatalf("scope %v: id_token %v, refresh token %v", c.scopes, got, tok.RefreshToken != "")
		}
		tok.Expiry = time.Now().Add(-time.Minute)
		next, err := conf.TokenSource(ctx, tok).Token()
		if err != nil {
			t.Fatal(err)
		}
		if got := next.Extra("id_token") != nil; got != c.wantID {
			t.Errorf("scope %v: refresh gave id_token %v, want %v", c.scopes, got, c.wantID)
		}
		if s := claims(t, next.AccessToken)["scope"]; s != strings.Join(c.scopes, " ") {
			t.Errorf("scope %v: refreshed access token has scope %v", c.scopes, s)
		}
	}
}

// TestBlankScopeIsTheDefault: a scope of spaces alone is an omitted scope,
// so the client's default scopes are granted, not an empty scope.
func TestBlankScopeIsTheDefault(t *testing.T) {
	f := start(t)
	conf := f.webConfig()
	conf.Scopes = []string{"   "}
	verifier, _ := pkce()
	back := f.signInWeb(newBrowser(t), conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	tok, err := conf.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(f.Cfg.UserPools[0].Clients[0].Scopes, " ")
	if s := claims(t, tok.AccessToken)["scope"]; s != want || tok.Extra("scope") != want {
		t.Fatalf("scope %q (response %v), want the client's default %q", s, tok.Extra("scope"), want)
	}
}

// As Cognito's, the sign-up and forgot-password pages take an
// authorization request's parameters (an app links to them directly):
// they start a sign-in and show the page; a bad redirect URI is the same
// 400 page as at the authorization endpoint.
func TestSignUpPageFromAuthorizationParameters(t *testing.T) {
	f := start(t)
	b := newBrowser(t)
	_, challenge := pkce()
	q := url.Values{"client_id": {"demo-web"}, "response_type": {"code"}, "redirect_uri": {redirectURI}, "state": {"st"},
		"scope": {"openid"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	for _, page := range []string{"signup", "forgot"} {
		resp, _ := b.get(f.iss + "/" + page + "?" + q.Encode())
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/"+poolID+"/"+page+"?tx=") {
			t.Fatalf("/%s with authorization parameters: %d %s", page, resp.StatusCode, loc)
		}
		resp, body := b.get(f.App.URL("idp") + loc)
		if resp.StatusCode != 200 || !strings.Contains(body, `name="tx"`) {
			t.Fatalf("/%s page: %d\n%s", page, resp.StatusCode, body)
		}
	}
	bad := url.Values{"client_id": {"demo-web"}, "response_type": {"code"}, "redirect_uri": {"https://evil.example/cb"}}
	if resp, _ := b.get(f.iss + "/signup?" + bad.Encode()); resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
		t.Errorf("/signup with an unregistered redirect URI: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}
