package oidc_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/writ-id/writ/internal/app"
)

const testOrigin = "http://127.0.0.1:9"

// corsDo sends a request with an Origin (and, when reqMethod is set, as a
// preflight asking for reqMethod and reqHeaders) and returns the answer.
func corsDo(t *testing.T, hc *http.Client, method, u, reqMethod, reqHeaders string, body url.Values) *http.Response {
	t.Helper()
	var req *http.Request
	if body != nil {
		req, _ = http.NewRequest(method, u, strings.NewReader(body.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, _ = http.NewRequest(method, u, nil)
	}
	req.Header.Set("Origin", testOrigin)
	if reqMethod != "" {
		req.Header.Set("Access-Control-Request-Method", reqMethod)
	}
	if reqHeaders != "" {
		req.Header.Set("Access-Control-Request-Headers", reqHeaders)
	}
	if hc == nil {
		hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// The Cognito API's preflight allows any origin the methods and headers
// the AWS SDK for JavaScript sends, without credentials; so do the OAuth
// endpoints' preflights, with their own methods.
func TestCORSPreflight(t *testing.T) {
	f := start(t)
	idp := f.App.URL(app.IDP)
	sdkHeaders := "amz-sdk-invocation-id,amz-sdk-request,cache-control,content-type,x-amz-target,x-amz-user-agent"
	for _, c := range []struct{ path, method, headers, methods string }{
		{"/", "POST", sdkHeaders, "POST"},
		{"/", "POST", "", "POST"},
		{"/" + poolID + "/.well-known/openid-configuration", "GET", "x-requested-with", "GET"},
		{"/" + poolID + "/.well-known/oauth-authorization-server", "GET", "", "GET"},
		{"/.well-known/oauth-authorization-server/" + poolID, "GET", "", "GET"},
		{"/" + poolID + "/.well-known/jwks.json", "GET", "", "GET"},
		{"/" + poolID + "/oauth2/token", "POST", "content-type", "POST"},
		{"/" + poolID + "/oauth2/revoke", "POST", "authorization,content-type", "POST"},
		{"/" + poolID + "/oauth2/introspect", "POST", "authorization,content-type", "POST"},
		{"/" + poolID + "/oauth2/userInfo", "GET", "authorization", "GET, POST"},
	} {
		resp := corsDo(t, nil, "OPTIONS", idp+c.path, c.method, c.headers, nil)
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
			t.Errorf("preflight %s %s: status %d", c.method, c.path, resp.StatusCode)
		}
		if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight %s: Allow-Origin %q, Allow-Credentials %q", c.path, h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Credentials"))
		}
		if got := h.Get("Access-Control-Allow-Methods"); got != c.methods {
			t.Errorf("preflight %s: Allow-Methods %q, want %q", c.path, got, c.methods)
		}
		allowed := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
		want := strings.Split(c.headers, ",")
		if c.headers == "" { // none asked for: what the SDK sends (unsigned, on the Cognito API)
			want = append(strings.Split(sdkHeaders, ","), "x-amz-date")
			if c.path != "/" {
				want = append(want, "authorization", "x-amz-security-token")
			}
		}
		if c.path == "/" && (strings.Contains(allowed, "authorization") || strings.Contains(allowed, "x-amz-security-token")) {
			t.Errorf("preflight to the Cognito API allows signed calls: %q", allowed)
		}
		for _, w := range want {
			if !strings.Contains(allowed, w) {
				t.Errorf("preflight %s asking for %q: Allow-Headers %q lacks %s", c.path, c.headers, allowed, w)
			}
		}
		if h.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight %s: no Access-Control-Max-Age", c.path)
		}
	}
	// A header name that is not a token is not echoed back.
	resp := corsDo(t, nil, "OPTIONS", idp+"/", "POST", "x-amz-target, bad header", nil)
	if got := resp.Header.Get("Access-Control-Allow-Headers"); strings.Contains(got, "bad header") {
		t.Errorf("Allow-Headers echoes a non-token: %q", got)
	}
}

// Answers to a browser app, errors and refusals included, are readable
// from any origin with the headers clients read exposed; the authorization
// endpoint and the hosted pages, which rely on cookies, answer no CORS at
// all, to a preflight or not.
func TestCORSOnAPIsNotOnHostedPages(t *testing.T) {
	f := start(t)
	idp := f.App.URL(app.IDP)
	readable := func(what string, resp *http.Response, status int, expose ...string) {
		t.Helper()
		h := resp.Header
		if resp.StatusCode != status {
			t.Errorf("%s: status %d, want %d", what, resp.StatusCode, status)
		}
		if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: Allow-Origin %q, Allow-Credentials %q", what, h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Credentials"))
		}
		exposed := strings.ToLower(h.Get("Access-Control-Expose-Headers"))
		for _, e := range expose {
			if !strings.Contains(exposed, strings.ToLower(e)) {
				t.Errorf("%s: Expose-Headers %q lacks %s", what, exposed, e)
			}
		}
	}
	readable("discovery", corsDo(t, nil, "GET", f.iss+"/.well-known/openid-configuration", "", "", nil), 200)
	readable("jwks", corsDo(t, nil, "GET", f.iss+"/.well-known/jwks.json", "", "", nil), 200)
	readable("unknown pool", corsDo(t, nil, "GET", idp+"/us-east-1_Nope/.well-known/jwks.json", "", "", nil), 404)
	readable("token, bad code", corsDo(t, nil, "POST", f.iss+"/oauth2/token", "", "", url.Values{"grant_type": {"authorization_code"},
		"code": {"nope"}, "client_id": {"demo-web"}, "redirect_uri": {redirectURI}, "code_verifier": {strings.Repeat("v", 43)}}), 400)
	readable("token, bad client", corsDo(t, nil, "POST", f.iss+"/oauth2/token", "", "", url.Values{"grant_type": {"client_credentials"},
		"client_id": {"orders-service"}, "client_secret": {"wrong"}}), 401, "WWW-Authenticate")
	readable("token by GET", corsDo(t, nil, "GET", f.iss+"/oauth2/token", "", "", nil), 405)
	readable("revoke", corsDo(t, nil, "POST", f.iss+"/oauth2/revoke", "", "", url.Values{"token": {"nope"}, "client_id": {"demo-web"}}), 200)
	readable("introspect", corsDo(t, nil, "POST", f.iss+"/oauth2/introspect", "", "", url.Values{"token": {"nope"}}), 401)
	readable("userInfo", corsDo(t, nil, "GET", f.iss+"/oauth2/userInfo", "", "", nil), 401, "WWW-Authenticate")
	readable("Cognito API", corsDo(t, nil, "POST", idp+"/", "", "", nil), 400, "x-amzn-RequestId", "x-amzn-ErrorType", "Date")

	// The hosted flow: authorize, the sign-in page it leads to, and the
	// other pages.
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	verifier, _ := pkce()
	authURL := f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))
	resp := corsDo(t, hc, "GET", authURL, "", "", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/login?tx=") {
		t.Fatalf("authorize: %d %s", resp.StatusCode, loc)
	}
	hosted := map[string]*http.Response{"authorize": resp}
	hosted["login page"] = corsDo(t, hc, "GET", idp+loc, "", "", nil)
	if hosted["login page"].StatusCode != 200 {
		t.Fatalf("login page: %d", hosted["login page"].StatusCode)
	}
	for name, c := range map[string]struct {
		method, path, reqMethod string
		form                    url.Values
	}{
		"authorize by POST":    {"POST", "/oauth2/authorize", "", url.Values{"client_id": {"demo-web"}}},
		"authorize preflight":  {"OPTIONS", "/oauth2/authorize", "GET", nil},
		"login post":           {"POST", "/login", "", url.Values{"username": {"alice"}}},
		"login preflight":      {"OPTIONS", "/login", "POST", nil},
		"signup page":          {"GET", "/signup", "", nil},
		"forgot page":          {"GET", "/forgot", "", nil},
		"logout":               {"GET", "/logout", "", nil},
		"logout preflight":     {"OPTIONS", "/logout", "POST", nil},
		"login/totp preflight": {"OPTIONS", "/login/totp", "POST", nil},
	} {
		hosted[name] = corsDo(t, hc, c.method, f.iss+c.path, c.reqMethod, "", c.form)
	}
	for name, resp := range hosted {
		for k := range resp.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s (%d) answers %s: %q", name, resp.StatusCode, k, resp.Header.Get(k))
			}
		}
	}
}
