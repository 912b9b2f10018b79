package identity_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/writ-id/writ/internal/app"
)

// corsRequest sends a request from a browser app's origin: a preflight
// when reqMethod is set.
func corsRequest(t *testing.T, method, u, reqMethod, reqHeaders string, header http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Origin", "http://127.0.0.1:9")
	if reqMethod != "" {
		req.Header.Set("Access-Control-Request-Method", reqMethod)
		req.Header.Set("Access-Control-Request-Headers", reqHeaders)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestCORS: the identity listener's APIs answer a browser app's preflight
// (Amplify's GetId and GetCredentialsForIdentity, STS) and every answer,
// refusals included, is readable from any origin, without credentials.
func TestCORS(t *testing.T) {
	f := start(t)
	base := f.App.URL(app.Identity)
	resp, _ := corsRequest(t, "OPTIONS", base+"/", "POST", "amz-sdk-invocation-id,amz-sdk-request,content-type,x-amz-target,x-amz-user-agent", nil, "")
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "x-amz-target") ||
		h.Get("Access-Control-Max-Age") == "" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}

	readable := func(what string, resp *http.Response, status int) {
		t.Helper()
		h := resp.Header
		if resp.StatusCode != status || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: %d, want %d, with %v", what, resp.StatusCode, status, h)
		}
		exposed := strings.ToLower(h.Get("Access-Control-Expose-Headers"))
		for _, e := range []string{"x-amzn-requestid", "x-amzn-errortype", "date"} {
			if !strings.Contains(exposed, e) {
				t.Errorf("%s: Expose-Headers %q lacks %s", what, exposed, e)
			}
		}
	}
	amz := http.Header{"Content-Type": {"application/x-amz-json-1.1"}}
	idTok := f.signIn("bob", "Bob-Passw0rd1")
	getID := func(token string) string {
		b, _ := json.Marshal(map[string]any{"IdentityPoolId": identPool, "Logins": map[string]string{f.loginKey(): token}})
		return string(b)
	}
	amz.Set("X-Amz-Target", "AWSCognitoIdentityService.GetId")
	resp, body := corsRequest(t, "POST", base+"/", "", "", amz, getID(idTok))
	readable("GetId", resp, 200)
	if !strings.Contains(string(body), `"IdentityId":"us-east-1:`) {
		t.Errorf("GetId: %s", body)
	}
	resp, _ = corsRequest(t, "POST", base+"/", "", "", amz, getID("not-a-token"))
	readable("GetId refused", resp, 400)
	amz.Set("X-Amz-Target", "AWSCognitoIdentityService.NoSuchOperation")
	resp, _ = corsRequest(t, "POST", base+"/", "", "", amz, "{}")
	readable("unknown operation", resp, 400)

	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	resp, body = corsRequest(t, "POST", base+"/", "", "", form, url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
		"RoleArn": {userRole}, "RoleSessionName": {"browser"}, "WebIdentityToken": {"not-a-token"}}.Encode())
	readable("STS refused", resp, 400)
	if !strings.Contains(string(body), "<Code>InvalidIdentityToken</Code>") {
		t.Errorf("STS: %s", body)
	}
	resp, _ = corsRequest(t, "GET", base+"/?Action=GetCallerIdentity&Version=2011-06-15", "", "", nil, "")
	readable("STS GetCallerIdentity unsigned", resp, resp.StatusCode)
	if resp.StatusCode < 400 {
		t.Errorf("unsigned GetCallerIdentity: %d", resp.StatusCode)
	}
	// Signed calls are not for browsers (a page could have a visitor's
	// browser send them from inside its network): a preflight does not
	// allow Authorization.
	resp, _ = corsRequest(t, "OPTIONS", base+"/", "GET", "authorization,x-amz-date", nil, "")
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") ||
		strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "authorization") {
		t.Errorf("STS preflight: %d %v", resp.StatusCode, resp.Header)
	}

	// The OpenID issuer of the identity pools' tokens.
	for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/jwks.json"} {
		resp, _ = corsRequest(t, "GET", base+p, "", "", nil, "")
		readable(p, resp, 200)
	}
}
