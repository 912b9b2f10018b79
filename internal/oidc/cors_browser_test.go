package oidc_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/writ-id/writ/internal/app"
)

// corsPage is a browser app on another origin, calling writ with fetch()
// as oidc-client-ts and Amplify do: discovery and JWKS, the Cognito IdP
// API (a refused password, then bob's sign-in: the SDK's headers, so a
// preflight), userInfo with and without a token, the Cognito Identity API
// (GetId, GetCredentialsForIdentity), STS, and the token endpoint with a
// bad code. It writes what each call returned into #out, then adds #done.
const corsPage = `<!doctype html>
<title>app</title>
<pre id=out></pre>
<script>
const cfg = %s;
const out = {};
async function step(name, f) {
  try { out[name] = await f(); } catch (e) { out[name] = {error: String(e)}; }
}
async function amz(endpoint, target, body) {
  const r = await fetch(endpoint + "/", {method: "POST", body: JSON.stringify(body), headers: {
    "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target,
    "X-Amz-User-Agent": "aws-sdk-js/3.700.0 ua/2.1 os/other lang/js md/browser#Chromium api/cognito#3.700.0",
    "amz-sdk-invocation-id": "8d5b8f6e-6a6c-4c57-9a35-0c1e8a7e1f00", "amz-sdk-request": "attempt=1; max=3",
    "Cache-Control": "no-store"}});
  return {status: r.status, requestId: r.headers.get("x-amzn-requestid"), errorType: r.headers.get("x-amzn-errortype"),
    date: r.headers.get("date"), body: await r.json()};
}
(async () => {
  let auth = {}, identityId = "";
  await step("discovery", async () => {
    const r = await fetch(cfg.issuer + "/.well-known/openid-configuration");
    const d = await r.json();
    return {status: r.status, issuer: d.issuer, endpoints: [d.jwks_uri, d.userinfo_endpoint, d.token_endpoint]};
  });
  await step("jwks", async () => {
    const r = await fetch(cfg.issuer + "/.well-known/jwks.json");
    const j = await r.json();
    return {status: r.status, keys: j.keys.length};
  });
  await step("badPassword", async () => amz(cfg.idp, "AWSCognitoIdentityProviderService.InitiateAuth",
    {AuthFlow: "USER_PASSWORD_AUTH", ClientId: "demo-web", AuthParameters: {USERNAME: "bob", PASSWORD: "not-bobs-password"}}));
  await step("initiateAuth", async () => {
    const r = await amz(cfg.idp, "AWSCognitoIdentityProviderService.InitiateAuth",
      {AuthFlow: "USER_PASSWORD_AUTH", ClientId: "demo-web", AuthParameters: {USERNAME: "bob", PASSWORD: "Bob-Passw0rd1"}});
    auth = r.body.AuthenticationResult || {};
    return {status: r.status, requestId: r.requestId, date: r.date, idToken: !!auth.IdToken, accessToken: !!auth.AccessToken};
  });
  await step("userInfo", async () => {
    const r = await fetch(cfg.issuer + "/oauth2/userInfo", {headers: {Authorization: "Bearer " + auth.AccessToken}});
    const j = await r.json();
    return {status: r.status, username: j.username};
  });
  await step("userInfoNoToken", async () => {
    const r = await fetch(cfg.issuer + "/oauth2/userInfo");
    return {status: r.status, challenge: r.headers.get("www-authenticate")};
  });
  await step("getId", async () => {
    const r = await amz(cfg.identity, "AWSCognitoIdentityService.GetId",
      {IdentityPoolId: cfg.identityPool, Logins: {[cfg.loginKey]: auth.IdToken}});
    identityId = r.body.IdentityId || "";
    return {status: r.status, requestId: r.requestId, identityId: identityId};
  });
  await step("getCredentials", async () => {
    const r = await amz(cfg.identity, "AWSCognitoIdentityService.GetCredentialsForIdentity",
      {IdentityId: identityId, Logins: {[cfg.loginKey]: auth.IdToken}});
    return {status: r.status, accessKeyId: (r.body.Credentials || {}).AccessKeyId || ""};
  });
  await step("sts", async () => {
    const r = await fetch(cfg.identity + "/", {method: "POST", body: new URLSearchParams({Action: "AssumeRoleWithWebIdentity",
      Version: "2011-06-15", RoleArn: cfg.role, RoleSessionName: "browser", WebIdentityToken: "not-a-token"})});
    const x = new DOMParser().parseFromString(await r.text(), "text/xml");
    return {status: r.status, code: x.querySelector("Code")?.textContent, requestId: r.headers.get("x-amzn-requestid")};
  });
  await step("badCode", async () => {
    const r = await fetch(cfg.issuer + "/oauth2/token", {method: "POST", body: new URLSearchParams({grant_type: "authorization_code",
      code: "no-such-code", client_id: "demo-web", redirect_uri: cfg.redirectURI, code_verifier: "v".repeat(43)})});
    const j = await r.json();
    return {status: r.status, error: j.error};
  });
  document.getElementById("out").textContent = JSON.stringify(out);
  const done = document.createElement("p");
  done.id = "done";
  done.textContent = "done";
  document.body.append(done);
})();
</script>`

// TestBrowserAppCallsAPIsCrossOrigin: a page served from another origin
// (another port of 127.0.0.1) reads every answer of the endpoints a
// browser app calls with fetch — successes, 400s and 401s alike — in
// headless Chromium, which enforces CORS (preflights included).
func TestBrowserAppCallsAPIsCrossOrigin(t *testing.T) {
	ctx := chrome(t)
	f := start(t)
	idp, identity := f.App.URL(app.IDP), f.App.URL(app.Identity)
	cfg, _ := json.Marshal(map[string]string{"issuer": f.iss, "idp": idp, "identity": identity,
		"identityPool": "us-east-1:2a7c5e0e-6f43-4a8e-9a51-3f1f0c5d7b21", "loginKey": strings.TrimPrefix(f.iss, "http://"),
		"role": "arn:aws:iam::000000000000:role/demo-user", "redirectURI": redirectURI})
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, corsPage, cfg)
	}))
	t.Cleanup(page.Close)
	if strings.HasPrefix(idp, page.URL) || !strings.HasPrefix(page.URL, "http://127.0.0.1:") {
		t.Fatalf("the page (%s) must be another origin than writ (%s)", page.URL, idp)
	}
	var raw string
	if err := chromedp.Run(ctx, chromedp.Navigate(page.URL), chromedp.WaitVisible("#done"), chromedp.Text("#out", &raw)); err != nil {
		t.Fatal(err)
	}
	type result struct {
		Error       string   `json:"error"` // a fetch that threw (CORS refused), or OAuth's error code
		Status      int      `json:"status"`
		RequestID   string   `json:"requestId"`
		ErrorType   string   `json:"errorType"`
		Date        string   `json:"date"`
		Issuer      string   `json:"issuer"`
		Endpoints   []string `json:"endpoints"`
		Keys        int      `json:"keys"`
		IDToken     bool     `json:"idToken"`
		AccessToken bool     `json:"accessToken"`
		Username    string   `json:"username"`
		Challenge   string   `json:"challenge"`
		IdentityID  string   `json:"identityId"`
		AccessKeyID string   `json:"accessKeyId"`
		Code        string   `json:"code"`
		Body        struct {
			Type string `json:"__type"`
		} `json:"body"`
	}
	var got map[string]result
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("page results %q: %v", raw, err)
	}
	t.Logf("page results: %s", raw)
	check := func(name string, ok bool) {
		t.Helper()
		if r := got[name]; !ok {
			t.Errorf("%s: %+v", name, r)
		}
	}
	r := got["discovery"]
	check("discovery", r.Status == 200 && r.Issuer == f.iss &&
		strings.Join(r.Endpoints, " ") == f.iss+"/.well-known/jwks.json "+f.iss+"/oauth2/userInfo "+f.iss+"/oauth2/token")
	r = got["jwks"]
	check("jwks", r.Status == 200 && r.Keys > 0)
	r = got["badPassword"]
	check("badPassword", r.Status == 400 && r.Body.Type == "NotAuthorizedException" && r.ErrorType == "NotAuthorizedException" && r.RequestID != "")
	r = got["initiateAuth"]
	check("initiateAuth", r.Status == 200 && r.IDToken && r.AccessToken && r.RequestID != "" && r.Date != "")
	r = got["userInfo"]
	check("userInfo", r.Status == 200 && r.Username == "bob")
	r = got["userInfoNoToken"]
	check("userInfoNoToken", r.Status == 401 && strings.HasPrefix(r.Challenge, "Bearer"))
	r = got["getId"]
	check("getId", r.Status == 200 && strings.HasPrefix(r.IdentityID, "us-east-1:") && r.RequestID != "")
	r = got["getCredentials"]
	check("getCredentials", r.Status == 200 && r.AccessKeyID != "")
	r = got["sts"]
	check("sts", r.Status == 400 && r.Code == "InvalidIdentityToken" && r.RequestID != "")
	r = got["badCode"]
	check("badCode", r.Status == 400 && r.Error == "invalid_grant")
}
