package oidc_test

import (
	"context"
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
)

// beginSignIn starts an authorization request in b and returns the
// sign-in page and its transaction id.
func (f *fx) beginSignIn(b *browser, authURL string) (page, tx string) {
	f.t.Helper()
	resp, _ := b.get(authURL)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/login?tx=") {
		f.t.Fatalf("authorize: %d %s", resp.StatusCode, loc)
	}
	u, _ := url.Parse(loc)
	_, page = b.get(f.App.URL("idp") + loc)
	return page, u.Query().Get("tx")
}

func TestCSRFTokenIsPerFormAndBrowser(t *testing.T) {
	f := start(t)
	verifier, _ := pkce()
	authURL := f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))
	b := newBrowser(t)
	page, tx := f.beginSignIn(b, authURL)
	login := hidden(page)
	// The sign-in form's token does not work for another form.
	forgot := url.Values{"csrf": {login.Get("csrf")}, "tx": {tx}, "username": {"alice"}}
	if resp, body := b.post(f.iss+"/forgot", forgot); resp.StatusCode != 403 || !strings.Contains(body, "CSRF") {
		t.Fatalf("sign-in token on the reset form: %d", resp.StatusCode)
	}
	// Nor for another sign-in transaction of the same browser.
	_, tx2 := f.beginSignIn(b, authURL)
	other := url.Values{"csrf": {login.Get("csrf")}, "tx": {tx2}, "username": {"alice"}, "password": {"Alice-Passw0rd"}}
	if resp, _ := b.post(f.iss+"/login", other); resp.StatusCode != 403 {
		t.Fatalf("token of another transaction: %d", resp.StatusCode)
	}
	// Nor from another browser (whose CSRF cookie differs).
	b2 := newBrowser(t)
	f.beginSignIn(b2, authURL)
	stolen := url.Values{"csrf": {login.Get("csrf")}, "tx": {tx}, "username": {"alice"}, "password": {"Alice-Passw0rd"}}
	if resp, _ := b2.post(f.iss+"/login", stolen); resp.StatusCode != 403 {
		t.Fatalf("token used by another browser: %d", resp.StatusCode)
	}
	// The right form, transaction and browser get through to the TOTP step.
	login.Set("username", "alice")
	login.Set("password", "Alice-Passw0rd")
	if _, body := b.post(f.iss+"/login", login); !strings.Contains(body, "Two-step verification") {
		t.Fatalf("genuine post:\n%s", body)
	}
}

func TestAuthorizeByPostLoginHintAndPrompt(t *testing.T) {
	f := start(t)
	b := newBrowser(t)
	verifier, challenge := pkce()
	form := url.Values{"response_type": {"code"}, "client_id": {"demo-web"}, "redirect_uri": {redirectURI}, "state": {"p"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "scope": {"openid"}, "login_hint": {"alice"}}
	// OpenID Connect Core §3.1.2.1: the authorization endpoint takes POST too.
	resp, _ := b.post(f.iss+"/oauth2/authorize", form)
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/login?tx=") {
		t.Fatalf("POST authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := b.get(f.App.URL("idp") + resp.Header.Get("Location"))
	if !strings.Contains(page, `name="username" value="alice"`) {
		t.Fatalf("login_hint not filled in:\n%s", page)
	}
	// Cognito's /login with the authorization parameters starts the same flow.
	resp, _ = b.get(f.iss + "/login?" + form.Encode())
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/"+poolID+"/oauth2/authorize?") {
		t.Fatalf("/login with authorize parameters: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for name, c := range map[string]struct {
		k, v, code string
	}{
		"prompt none with login": {"prompt", "none login", "invalid_request"},
		"unknown prompt":         {"prompt", "sometimes", "invalid_request"},
		"request object":         {"request", "eyJhbGciOiJub25lIn0.e30.", "request_not_supported"},
		"fragment response mode": {"response_mode", "fragment", "invalid_request"},
		"challenge too short":    {"code_challenge", "abc", "invalid_request"},
		"negative max_age":       {"max_age", "-1", "invalid_request"},
	} {
		q := url.Values{}
		for k, v := range form {
			q[k] = v
		}
		q.Set(c.k, c.v)
		resp, _ := b.get(f.iss + "/oauth2/authorize?" + q.Encode())
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != c.code || loc.Query().Get("state") != "p" {
			t.Errorf("%s: %d %s", name, resp.StatusCode, loc)
		}
	}
	// A repeated client_id is not guessed at: a page, no redirect.
	resp, _ = b.get(f.iss + "/oauth2/authorize?" + form.Encode() + "&client_id=demo-web")
	if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
		t.Fatalf("repeated client_id: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// prompt=none with a signed-in browser answers with a code at once.
	f.signInWeb(b, f.webConfig().AuthCodeURL("first", oauth2.S256ChallengeOption(verifier)))
	resp, _ = b.get(f.webConfig().AuthCodeURL("silent", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")))
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc == nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "silent" {
		t.Fatalf("prompt=none with a session: %s", resp.Header.Get("Location"))
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	f := start(t)
	b := newBrowser(t)
	verifier, _ := pkce()
	page, tx := f.beginSignIn(b, f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	form := hidden(page)
	form.Set("username", "bob")
	form.Set("password", "Bob-Passw0rd1") // bob has no TOTP and MFA is optional
	resp, err := b.hc.PostForm(f.iss+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "writ_session" {
			session = c
		}
	}
	if resp.StatusCode != http.StatusFound || session == nil {
		t.Fatalf("sign-in (tx %s): %d, cookies %v", tx, resp.StatusCode, resp.Cookies())
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Secure || session.Path != "/"+poolID+"/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, not Secure on http, path of the pool", session)
	}
}

func TestLogout(t *testing.T) {
	f := start(t)
	b := newBrowser(t)
	conf := f.webConfig()
	verifier, _ := pkce()
	tok, idt := f.signInWebTokens(b, verifier)
	// A hint writ did not sign (another signature, the access token, a
	// token of another issuer) is refused like one naming another client.
	parts := strings.Split(idt, ".")
	forgedPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"aud":"demo-web","iss":"http://evil.example","exp":1,"token_use":"id"}`))
	// RP-initiated logout: the client comes from id_token_hint; the URI must
	// be registered for it; a hint naming another client is refused.
	for name, q := range map[string]url.Values{
		"forged signature": {"id_token_hint": {parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))},
			"post_logout_redirect_uri": {"http://127.0.0.1:8485/"}},
		"forged claims":   {"id_token_hint": {parts[0] + "." + forgedPayload + "." + parts[2]}, "post_logout_redirect_uri": {"http://127.0.0.1:8485/"}},
		"an access token": {"id_token_hint": {tok.AccessToken}, "client_id": {"demo-web"}, "post_logout_redirect_uri": {"http://127.0.0.1:8485/"}},
		"unregistered":    {"id_token_hint": {idt}, "post_logout_redirect_uri": {"http://127.0.0.1:8485/elsewhere"}},
		"other client":    {"id_token_hint": {idt}, "client_id": {"orders-service"}, "post_logout_redirect_uri": {"http://127.0.0.1:8485/"}},
		"no client":       {"logout_uri": {"http://127.0.0.1:8485/"}},
		"unknown":         {"client_id": {"nope"}, "logout_uri": {"http://127.0.0.1:8485/"}},
	} {
		resp, _ := b.get(f.iss + "/logout?" + q.Encode())
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d %s", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// None of those signed the browser out.
	resp, _ := b.get(conf.AuthCodeURL("still", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")))
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("code") == "" {
		t.Fatalf("session lost by a refused logout: %s", resp.Header.Get("Location"))
	}
	// The hint may have expired (OpenID Connect RP-Initiated Logout §2):
	// it names the sign-in to end, it grants nothing. (Two hours on, the
	// browser signs in again, so that the logout has a session to end.)
	f.Clock.Advance(2 * time.Hour)
	f.signInWeb(b, conf.AuthCodeURL("again", oauth2.S256ChallengeOption(verifier)))
	q := url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {"http://127.0.0.1:8485/"}, "state": {"bye"}}
	resp, _ = b.get(f.iss + "/logout?" + q.Encode())
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://127.0.0.1:8485/?state=bye" {
		t.Fatalf("logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = b.get(conf.AuthCodeURL("after", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")))
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none after logout: %s", resp.Header.Get("Location"))
	}
	// Cognito's other form: sign out, then sign in again at the authorization endpoint.
	f.signInWeb(b, conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier)))
	_, challenge := pkce()
	q = url.Values{"client_id": {"demo-web"}, "response_type": {"code"}, "redirect_uri": {redirectURI}, "state": {"again"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	resp, _ = b.get(f.iss + "/logout?" + q.Encode())
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/"+poolID+"/oauth2/authorize?") {
		t.Fatalf("logout then sign in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = b.get(f.App.URL("idp") + resp.Header.Get("Location"))
	if !strings.Contains(resp.Header.Get("Location"), "/login?tx=") {
		t.Fatalf("after logout the sign-in page is shown again: %s", resp.Header.Get("Location"))
	}
	// Without a client the page just says so.
	resp, body := b.get(f.iss + "/logout")
	if resp.StatusCode != 200 || !strings.Contains(body, "You are signed out.") || !strings.Contains(body, "</html>") {
		t.Fatalf("plain logout page: %d\n%s", resp.StatusCode, body)
	}
	if logs := f.Log.String(); strings.Contains(logs, "render page") {
		t.Errorf("a page failed to render:\n%s", logs)
	}
}

// startWithPortal runs writ with one more client, "portal": a
// confidential web client (secret portal-secret-1) of the hosted pages,
// and returns its x/oauth2 configuration.
func startWithPortal(t *testing.T) (*fx, *oauth2.Config) {
	const portalCB = "http://127.0.0.1:8485/portal"
	f := start(t, func(c *config.Config) {
		c.UserPools[0].Clients = append(c.UserPools[0].Clients, config.Client{ClientID: "portal", Secret: config.NewSecret("portal-secret-1"),
			Flows: []string{"authorization_code", "refresh_token"}, RedirectURIs: []string{portalCB}, Scopes: []string{"openid", "email"}})
	})
	return f, &oauth2.Config{ClientID: "portal", ClientSecret: "portal-secret-1", RedirectURL: portalCB, Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: f.iss + "/oauth2/authorize", TokenURL: f.iss + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
}

// TestConfidentialClientHostedPages: a confidential web client's users sign
// up and sign in through the hosted pages; the client redeems its code with
// its secret (PKCE optional for it).
func TestConfidentialClientHostedPages(t *testing.T) {
	f, conf := startWithPortal(t)
	b := newBrowser(t)
	_, tx := f.beginSignIn(b, conf.AuthCodeURL("c", oidc.Nonce("n1")))
	_, page := b.get(f.iss + "/signup?tx=" + url.QueryEscape(tx))
	form := hidden(page)
	form.Set("username", "carol")
	form.Set("email", "carol@example.com")
	form.Set("password", "Carol-Passw0rd")
	_, page = b.post(f.iss+"/signup", form)
	if !strings.Contains(page, "Confirm your account") {
		t.Fatalf("sign-up for a confidential client:\n%s", page)
	}
	form = hidden(page)
	form.Set("username", "carol")
	form.Set("code", lastCode(t, f, "carol@example.com"))
	_, page = b.post(f.iss+"/confirm", form)
	form = hidden(page)
	form.Set("username", "carol")
	form.Set("password", "Carol-Passw0rd")
	resp, page := b.post(f.iss+"/login", form)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("sign-in: %d %s\n%s", resp.StatusCode, loc, page)
	}
	bad := *conf
	bad.ClientSecret = "wrong"
	_, err := bad.Exchange(context.Background(), loc.Query().Get("code"))
	wantOAuth(t, err, "invalid_client")
	// The wrong secret did not spend the code.
	tok, err := conf.Exchange(context.Background(), loc.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	prov, _ := oidc.NewProvider(context.Background(), f.iss)
	idt, err := prov.Verifier(&oidc.Config{ClientID: "portal"}).Verify(context.Background(), tok.Extra("id_token").(string))
	if err != nil || idt.Nonce != "n1" || claims(t, tok.AccessToken)["username"] != "carol" {
		t.Fatalf("tokens: %v nonce %q", err, idt.Nonce)
	}
}

// TestCookiesSecureBehindHTTPS: with an https public URL (TLS ended by a
// proxy in front of writ) the hosted pages' cookies are Secure, and
// discovery names https endpoints.
func TestCookiesSecureBehindHTTPS(t *testing.T) {
	var listen string
	f := start(t, func(c *config.Config) {
		listen = c.Serve.IDP.Listen
		c.Serve.IDP.PublicURL = "https://" + listen
		c.RelocateIDP("http://"+listen, "https://"+listen)
	})
	direct := "http://" + listen + "/" + poolID
	b := newBrowser(t)
	resp, _ := b.get(direct + "/.well-known/openid-configuration")
	if resp.StatusCode != 200 {
		t.Fatalf("discovery: %d", resp.StatusCode)
	}
	_, challenge := pkce()
	q := url.Values{"response_type": {"code"}, "client_id": {"demo-web"}, "redirect_uri": {redirectURI},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	resp, _ = b.get(direct + "/oauth2/authorize?" + q.Encode())
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	resp, page := b.get("http://" + listen + resp.Header.Get("Location"))
	var csrf *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "writ_csrf" {
			csrf = c
		}
	}
	if csrf == nil || !csrf.Secure || !csrf.HttpOnly || csrf.SameSite != http.SameSiteLaxMode {
		t.Fatalf("CSRF cookie behind https: %+v", csrf)
	}
	// A browser on https sends the Secure cookie back; this client is on
	// plain http, so it does that by hand. bob has no TOTP: signed in.
	form := hidden(page)
	form.Set("username", "bob")
	form.Set("password", "Bob-Passw0rd1")
	req, _ := http.NewRequest("POST", direct+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: csrf.Name, Value: csrf.Value})
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "writ_session" {
			session = c
		}
	}
	if resp.StatusCode != http.StatusFound || session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie behind https: %d %+v", resp.StatusCode, session)
	}
	if !strings.HasPrefix(f.iss, "https://") {
		t.Fatalf("issuer %s", f.iss)
	}
}

// TestMaxAgeZeroAlwaysSignsInAgain: max_age=0 is prompt=login (OpenID
// Connect Core §3.1.2.1), even for a session made in the same second.
func TestMaxAgeZeroAlwaysSignsInAgain(t *testing.T) {
	f := start(t)
	b := newBrowser(t)
	verifier, _ := pkce()
	conf := f.webConfig()
	// bob has no second factor: the password alone signs him in, and the
	// clock does not move.
	page, _ := f.beginSignIn(b, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	form := hidden(page)
	form.Set("username", "bob")
	form.Set("password", "Bob-Passw0rd1")
	if resp, page := b.post(f.iss+"/login", form); resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), redirectURI) {
		t.Fatalf("bob's sign-in: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	for _, c := range []struct {
		maxAge    string
		wantLogin bool
	}{{"0", true}, {"60", false}} {
		resp, _ := b.get(conf.AuthCodeURL("m", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("max_age", c.maxAge)))
		if got := strings.Contains(resp.Header.Get("Location"), "/login?tx="); resp.StatusCode != http.StatusFound || got != c.wantLogin {
			t.Errorf("max_age=%s right after signing in: %d %s", c.maxAge, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// TestIntrospectionOfAnotherClientsTokens: any confidential client may
// introspect an access token (resource servers must), but a refresh token
// or an ID token only the client it was issued to (RFC 7662 §4).
func TestIntrospectionOfAnotherClientsTokens(t *testing.T) {
	f, conf := startWithPortal(t)
	b := newBrowser(t)
	page, _ := f.beginSignIn(b, conf.AuthCodeURL("c"))
	form := hidden(page)
	form.Set("username", "bob")
	form.Set("password", "Bob-Passw0rd1")
	resp, _ := b.post(f.iss+"/login", form)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	tok, err := conf.Exchange(context.Background(), loc.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	idt, _ := tok.Extra("id_token").(string)
	for _, c := range []struct {
		name, token, client, secret string
		active                      bool
	}{
		{"own access token", tok.AccessToken, "portal", "portal-secret-1", true},
		{"own refresh token", tok.RefreshToken, "portal", "portal-secret-1", true},
		{"own ID token", idt, "portal", "portal-secret-1", true},
		{"another's access token", tok.AccessToken, "orders-service", "orders-demo-secret", true},
		{"another's refresh token", tok.RefreshToken, "orders-service", "orders-demo-secret", false},
		{"another's ID token", idt, "orders-service", "orders-demo-secret", false},
	} {
		status, body, _ := f.post("/oauth2/introspect", url.Values{"token": {c.token}}, c.client, c.secret)
		if status != 200 || body["active"] != c.active {
			t.Errorf("%s: %d %v", c.name, status, body)
		}
		if !c.active && len(body) != 1 {
			t.Errorf("%s: an inactive answer tells more than active=false: %v", c.name, body)
		}
	}
}

// TestGlobalSignOutWithinOneSecond: a sign-out refuses every token and
// browser session made before it, even in the same wall-clock second
// (where iat and auth_time cannot tell), and a sign-in right after it, in
// that same second, works.
func TestGlobalSignOutWithinOneSecond(t *testing.T) {
	f := start(t)
	api := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.IDP)), Credentials: aws.AnonymousCredentials{}})
	signIn := func() *types.AuthenticationResultType {
		t.Helper()
		out, err := api.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
			AuthParameters: map[string]string{"USERNAME": "bob", "PASSWORD": "Bob-Passw0rd1"}})
		if err != nil || out.AuthenticationResult == nil {
			t.Fatalf("bob's sign-in: %v", err)
		}
		return out.AuthenticationResult
	}
	browserSignIn := func(b *browser) {
		t.Helper()
		verifier, _ := pkce()
		page, _ := f.beginSignIn(b, f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
		form := hidden(page)
		form.Set("username", "bob")
		form.Set("password", "Bob-Passw0rd1")
		if resp, _ := b.post(f.iss+"/login", form); resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), redirectURI) {
			t.Fatalf("bob's hosted sign-in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	silent := func(b *browser) bool {
		verifier, _ := pkce()
		resp, _ := b.get(f.webConfig().AuthCodeURL("p", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return loc != nil && loc.Query().Get("code") != ""
	}
	check := func(when string, tok *types.AuthenticationResultType, want bool) {
		t.Helper()
		at := aws.ToString(tok.AccessToken)
		if status, _, _ := f.userInfo("Bearer " + at); (status == 200) != want {
			t.Errorf("%s: userInfo %d", when, status)
		}
		if _, body, _ := f.post("/oauth2/introspect", url.Values{"token": {at}}, "orders-service", "orders-demo-secret"); body["active"] != want {
			t.Errorf("%s: introspection %v", when, body)
		}
		if _, err := api.GetUser(f.ctx, &cip.GetUserInput{AccessToken: tok.AccessToken}); (err == nil) != want {
			t.Errorf("%s: GetUser: %v", when, err)
		}
		if status, body := exchange(f, "api-gateway", "gateway-demo-secret", at, url.Values{"audience": {"files-service"}}); (status == 200) != want {
			t.Errorf("%s: exchange %d %v", when, status, body)
		}
	}
	// Everything below happens within one second: 0.1 s, 0.4 s, 0.7 s.
	now := f.Clock.Now()
	f.Clock.Advance(now.Truncate(time.Second).Add(time.Second + 100*time.Millisecond).Sub(now))
	first, other := signIn(), signIn()
	before := newBrowser(t)
	browserSignIn(before)
	check("before the sign-out", other, true)
	f.Clock.Advance(300 * time.Millisecond)
	if _, err := api.GlobalSignOut(f.ctx, &cip.GlobalSignOutInput{AccessToken: first.AccessToken}); err != nil {
		t.Fatal(err)
	}
	check("a sign-in earlier in the sign-out's second", other, false)
	if silent(before) {
		t.Error("a browser session earlier in the sign-out's second still signs in")
	}
	f.Clock.Advance(300 * time.Millisecond)
	fresh := signIn()
	check("a sign-in later in the sign-out's second", fresh, true)
	after := newBrowser(t)
	browserSignIn(after)
	if !silent(after) {
		t.Error("a browser session made after the sign-out, in its second, does not sign in")
	}
	// Its refresh, still in that second, gives tokens of the same sign-in.
	ref, err := api.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeRefreshTokenAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"REFRESH_TOKEN": aws.ToString(fresh.RefreshToken)}})
	if err != nil {
		t.Fatal(err)
	}
	check("a refresh later in the sign-out's second", ref.AuthenticationResult, true)
	if f.Clock.Now().Unix() != now.Unix()+1 {
		t.Fatal("the test left its second")
	}
	// And a second later, nothing has changed.
	f.Clock.Advance(time.Second)
	check("the next second, the earlier sign-in", other, false)
	check("the next second, the later sign-in", fresh, true)
}

// The hosted /forgot page answers every user alike, with its generic
// notice: one with a verified address (who gets a code), one without, a
// disabled one and an unknown one.
func TestHostedForgotLooksAlikeForEveryUser(t *testing.T) {
	f := start(t, func(c *config.Config) {
		c.UserPools[0].Users = append(c.UserPools[0].Users,
			config.User{Username: "uma", Password: config.NewSecret("Uma-Passw0rd12"), Email: "uma@example.com"},
			config.User{Username: "dan", Password: config.NewSecret("Dan-Passw0rd12"), Email: "dan@example.com", EmailVerified: true})
	})
	if _, err := f.App.Core.Store.UpdateUser(f.ctx, poolID, "dan", func(u *store.User) error {
		u.Enabled = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	verifier, _ := pkce()
	authURL := f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))
	for _, user := range []string{"alice", "uma", "dan", "nobody"} {
		b := newBrowser(t)
		_, tx := f.beginSignIn(b, authURL)
		_, page := b.get(f.iss + "/forgot?tx=" + url.QueryEscape(tx))
		form := hidden(page)
		form.Set("username", user)
		resp, page := b.post(f.iss+"/forgot", form)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "If the account exists, we sent it a reset code.") ||
			strings.Contains(page, `class="error"`) {
			t.Errorf("%s: %d\n%s", user, resp.StatusCode, page)
		}
	}
	ms, _ := f.App.Core.Store.ListMail(f.ctx, 0)
	for _, m := range ms {
		if m.To != "alice@example.com" {
			t.Errorf("mail to %s", m.To)
		}
	}
}

// The hosted sign-up page refuses a malformed email address: it shows the
// form again with the error and what was typed, creates no user and mails
// nothing; the form it shows then signs up with a good address.
func TestHostedSignUpRefusesMalformedEmail(t *testing.T) {
	f := start(t)
	b := newBrowser(t)
	verifier, _ := pkce()
	_, tx := f.beginSignIn(b, f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	_, page := b.get(f.iss + "/signup?tx=" + url.QueryEscape(tx))
	for _, email := range []string{"dora@@example.com", "dora@example..com", "Dora <dora@example.com>", "dora@"} {
		form := hidden(page)
		form.Set("username", "dora")
		form.Set("email", email)
		form.Set("password", "Dora-Passw0rd")
		var resp *http.Response
		resp, page = b.post(f.iss+"/signup", form)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/`+poolID+`/signup"`) ||
			!strings.Contains(page, `role="alert">Invalid email address format.</p>`) ||
			!strings.Contains(page, `value="`+html.EscapeString(email)+`"`) {
			t.Fatalf("%q: %d\n%s", email, resp.StatusCode, page)
		}
	}
	if _, err := f.App.Core.Store.GetUser(f.ctx, poolID, "dora"); err == nil {
		t.Error("a malformed address created the user")
	}
	if ms, _ := f.App.Core.Store.ListMail(f.ctx, 0); len(ms) != 0 {
		t.Errorf("a malformed address was mailed: %d messages", len(ms))
	}
	form := hidden(page)
	form.Set("username", "dora")
	form.Set("email", "dora@example.com")
	form.Set("password", "Dora-Passw0rd")
	if _, page = b.post(f.iss+"/signup", form); !strings.Contains(page, "Confirm your account") {
		t.Fatalf("sign-up with a good address:\n%s", page)
	}
}

// An id_token_hint names the user the client expects: the signed-in
// browser's session is reused only for that user; prompt=none with
// another user signed in is login_required; without prompt=none the
// sign-in page is shown; a hint writ did not sign is invalid_request.
func TestAuthorizeIDTokenHint(t *testing.T) {
	f := start(t)
	b := newBrowser(t)
	verifier, _ := pkce()
	tok, aliceID := f.signInWebTokens(b, verifier)
	c := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.IDP)), Credentials: aws.AnonymousCredentials{}})
	out, err := c.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"USERNAME": "bob", "PASSWORD": "Bob-Passw0rd1"}})
	if err != nil {
		t.Fatal(err)
	}
	bobID := aws.ToString(out.AuthenticationResult.IdToken)
	authorize := func(hint string, prompt ...string) *http.Response {
		opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("id_token_hint", hint)}
		if len(prompt) > 0 {
			opts = append(opts, oauth2.SetAuthURLParam("prompt", prompt[0]))
		}
		resp, _ := b.get(f.webConfig().AuthCodeURL("h", opts...))
		return resp
	}
	if loc, _ := url.Parse(authorize(aliceID, "none").Header.Get("Location")); loc.Query().Get("code") == "" {
		t.Errorf("alice's hint with alice signed in: %s", loc)
	}
	if loc, _ := url.Parse(authorize(bobID, "none").Header.Get("Location")); loc.Query().Get("error") != "login_required" {
		t.Errorf("bob's hint with alice signed in, prompt=none: %s", loc)
	}
	if resp := authorize(bobID); !strings.Contains(resp.Header.Get("Location"), "/login?tx=") {
		t.Errorf("bob's hint with alice signed in: %s, want the sign-in page", resp.Header.Get("Location"))
	}
	parts := strings.Split(aliceID, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	if loc, _ := url.Parse(authorize(forged, "none").Header.Get("Location")); loc.Query().Get("error") != "invalid_request" {
		t.Errorf("a forged hint: %s", loc)
	}
	// A token writ signed that is not an ID token is no hint either.
	if loc, _ := url.Parse(authorize(tok.AccessToken, "none").Header.Get("Location")); loc.Query().Get("error") != "invalid_request" {
		t.Errorf("an access token as hint: %s", loc)
	}
	// The sign-up page's entry checks the same, and prompt=none shows no page.
	for _, c := range []struct{ hint, prompt, want string }{{forged, "", "invalid_request"}, {aliceID, "none", "login_required"}} {
		q := url.Values{"client_id": {"demo-web"}, "response_type": {"code"}, "redirect_uri": {redirectURI}, "id_token_hint": {c.hint},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
		if c.prompt != "" {
			q.Set("prompt", c.prompt)
		}
		resp, _ := b.get(f.iss + "/signup?" + q.Encode())
		if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != c.want {
			t.Errorf("/signup hint %.10s… prompt %q: %d %s, want %s", c.hint, c.prompt, resp.StatusCode, loc, c.want)
		}
	}
}

// An RP that kept the ID token of a sign-in from before a key rotation
// logs the user out with it once writ no longer publishes that key: the
// hint still names the client (and the session ends), while a hint with a
// bad signature under a published key is still refused.
func TestLogoutWithAHintOfARotatedKey(t *testing.T) {
	f := start(t)
	b := newBrowser(t)
	conf := f.webConfig()
	verifier, _ := pkce()
	_, idt := f.signInWebTokens(b, verifier)
	if _, err := f.App.Core.Keys.Rotate(f.ctx, poolID, "ES256", time.Hour); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(2 * time.Hour) // past the old key's publication
	f.signInWeb(b, conf.AuthCodeURL("again", oauth2.S256ChallengeOption(verifier)))
	q := url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {"http://127.0.0.1:8485/"}}
	resp, _ := b.get(f.iss + "/logout?" + q.Encode())
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://127.0.0.1:8485/" {
		t.Fatalf("logout with a rotated-out hint: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = b.get(conf.AuthCodeURL("after", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")))
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none after logout: %s", resp.Header.Get("Location"))
	}
}

// signInWebTokens signs alice in through the hosted pages in b and
// redeems the code: the tokens and the ID token.
func (f *fx) signInWebTokens(b *browser, verifier string) (*oauth2.Token, string) {
	f.t.Helper()
	conf := f.webConfig()
	back := f.signInWeb(b, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	tok, err := conf.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		f.t.Fatal(err)
	}
	return tok, tok.Extra("id_token").(string)
}
