package cognito_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/writ-id/writ/internal/app"
)

// TestCORS: the Cognito IdP API answers a browser app (the AWS SDK for
// JavaScript, Amplify) from any origin, without credentials: the preflight
// allows POST and the SDK's headers, and every answer — a sign-in, a
// refused password, an unsigned Admin* call — is readable, with the
// request id and error type exposed.
func TestCORS(t *testing.T) {
	f := start(t)
	u := f.App.URL(app.IDP) + "/"
	send := func(method, target, body string, preflight bool) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		req.Header.Set("Origin", "http://127.0.0.1:9")
		if preflight {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "amz-sdk-invocation-id,amz-sdk-request,content-type,x-amz-target,x-amz-user-agent")
		} else {
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", "AWSCognitoIdentityProviderService."+target)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, _ := send("OPTIONS", "", "", true)
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" ||
		h.Get("Access-Control-Allow-Methods") != "POST" || h.Get("Access-Control-Max-Age") == "" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}
	for _, want := range []string{"content-type", "x-amz-target", "x-amz-user-agent", "amz-sdk-invocation-id", "amz-sdk-request"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
			t.Errorf("preflight: Allow-Headers %q lacks %s", h.Get("Access-Control-Allow-Headers"), want)
		}
	}
	// OPTIONS without CORS headers is answered too (Allow), never dispatched.
	req, _ := http.NewRequest("OPTIONS", u, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Allow"), "POST") {
		t.Fatalf("plain OPTIONS: %v %v", resp, err)
	}

	for _, c := range []struct {
		target, body string
		status       int
		errType      string
	}{
		{"InitiateAuth", `{"AuthFlow":"USER_PASSWORD_AUTH","ClientId":"demo-web","AuthParameters":{"USERNAME":"bob","PASSWORD":"Bob-Passw0rd1"}}`, 200, ""},
		{"InitiateAuth", `{"AuthFlow":"USER_PASSWORD_AUTH","ClientId":"demo-web","AuthParameters":{"USERNAME":"bob","PASSWORD":"wrong"}}`, 400, "NotAuthorizedException"},
		{"AdminGetUser", `{"UserPoolId":"` + poolID + `","Username":"bob"}`, 0, ""}, // unsigned: refused, however
		{"NoSuchOperation", `{}`, 400, "UnknownOperationException"},
	} {
		resp, body := send("POST", c.target, c.body, false)
		h := resp.Header
		if c.status == 0 {
			if resp.StatusCode < 400 || h.Get("X-Amzn-ErrorType") == "" {
				t.Errorf("%s: %d %s", c.target, resp.StatusCode, body)
			}
		} else if resp.StatusCode != c.status || h.Get("X-Amzn-ErrorType") != c.errType {
			t.Errorf("%s: %d %s", c.target, resp.StatusCode, body)
		}
		if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: Allow-Origin %q", c.target, h.Get("Access-Control-Allow-Origin"))
		}
		exposed := strings.ToLower(h.Get("Access-Control-Expose-Headers"))
		for _, e := range []string{"x-amzn-requestid", "x-amzn-errortype", "date"} {
			if !strings.Contains(exposed, e) {
				t.Errorf("%s: Expose-Headers %q lacks %s", c.target, exposed, e)
			}
		}
	}
}
