package main

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/smithy-go"
	"golang.org/x/oauth2"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
)

var hiddenFieldRE = regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`)

// `writ users set-password` ends every session of the user, as
// `writ users sign-out` does: the tokens from before are refused, refresh
// included, and so is the hosted pages' session of the user's browser,
// while a sign-in with the new password works.
func TestSetPasswordEndsSessions(t *testing.T) {
	env := apptest.Start(t)
	ctx := context.Background()
	s := regexp.MustCompile(`idp:\s+\{[^}]*\}`).ReplaceAllString(string(examples.ReferenceConfig),
		"idp: { listen: "+env.Cfg.Serve.IDP.Listen+", public_url: "+env.App.URL(app.IDP)+" }")
	file := filepath.Join(t.TempDir(), "writ.yaml")
	if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	iss := env.App.URL(app.IDP) + "/us-east-1_WritDemo1"
	api := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.App.URL(app.IDP)),
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	signIn := func(pw string) *types.AuthenticationResultType {
		t.Helper()
		out, err := api.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
			AuthParameters: map[string]string{"USERNAME": "bob", "PASSWORD": pw}})
		if err != nil || out.AuthenticationResult == nil {
			t.Fatalf("bob's sign-in: %v", err)
		}
		return out.AuthenticationResult
	}
	apiCode := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return "success"
	}
	refresh := func(ar *types.AuthenticationResultType) error {
		_, err := api.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeRefreshTokenAuth, ClientId: aws.String("demo-web"),
			AuthParameters: map[string]string{"REFRESH_TOKEN": aws.ToString(ar.RefreshToken)}})
		return err
	}
	// A browser signed in on the hosted pages.
	conf := oauth2.Config{ClientID: "demo-web", RedirectURL: "http://127.0.0.1:8485/callback", Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: iss + "/oauth2/authorize", TokenURL: iss + "/oauth2/token"}}
	newBrowser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	do := func(resp *http.Response, err error) (*http.Response, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	browserSignIn := func(b *http.Client, pw string) {
		t.Helper()
		resp, _ := do(b.Get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))))
		_, page := do(b.Get(env.App.URL(app.IDP) + resp.Header.Get("Location")))
		form := url.Values{}
		for _, m := range hiddenFieldRE.FindAllStringSubmatch(page, -1) {
			form.Set(m[1], html.UnescapeString(m[2]))
		}
		form.Set("username", "bob")
		form.Set("password", pw)
		if resp, _ := do(b.PostForm(iss+"/login", form)); resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "code=") {
			t.Fatalf("bob's hosted sign-in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	silent := func(b *http.Client) string {
		t.Helper()
		resp, _ := do(b.Get(conf.AuthCodeURL("p", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none"))))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc.Query().Get("code") != "" {
			return ""
		}
		return loc.Query().Get("error")
	}

	old := signIn("Bob-Passw0rd1")
	b := newBrowser()
	browserSignIn(b, "Bob-Passw0rd1")
	if e := silent(b); e != "" {
		t.Fatalf("prompt=none before set-password: %q", e)
	}
	env.Clock.Advance(100 * time.Millisecond) // the test's clock stands still otherwise
	var out, errb bytes.Buffer
	if code := run([]string{"users", "set-password", "-c", file, "--as", "admin", "bob", "Bob-New-Passw0rd1"}, &out, &errb); code != 0 {
		t.Fatalf("set-password: %d %s%s", code, out.String(), errb.String())
	}
	_, err := api.GetUser(ctx, &cip.GetUserInput{AccessToken: old.AccessToken})
	if c := apiCode(err); c != "NotAuthorizedException" {
		t.Errorf("GetUser with the old access token: %s", c)
	}
	if c := apiCode(refresh(old)); c != "NotAuthorizedException" {
		t.Errorf("refresh with the old refresh token: %s", c)
	}
	if e := silent(b); e != "login_required" {
		t.Errorf("prompt=none in the old browser: %q, want login_required", e)
	}
	// The new password signs in, on the API and the hosted pages.
	env.Clock.Advance(100 * time.Millisecond)
	fresh := signIn("Bob-New-Passw0rd1")
	if _, err := api.GetUser(ctx, &cip.GetUserInput{AccessToken: fresh.AccessToken}); err != nil {
		t.Errorf("GetUser after a new sign-in: %v", err)
	}
	if err := refresh(fresh); err != nil {
		t.Errorf("refresh after a new sign-in: %v", err)
	}
	b2 := newBrowser()
	browserSignIn(b2, "Bob-New-Passw0rd1")
	if e := silent(b2); e != "" {
		t.Errorf("prompt=none after a new hosted sign-in: %q", e)
	}
}
