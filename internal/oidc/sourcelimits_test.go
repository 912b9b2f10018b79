package oidc_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/smithy-go"
	"golang.org/x/oauth2"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/store"
)

// browserFrom is a browser whose connections come from the loopback
// address ip (such as 127.0.0.2), sharing the cookies of b: the same
// browser seen from another source address.
func browserFrom(b *browser, ip string) *browser {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	b.t.Cleanup(tr.CloseIdleConnections)
	return &browser{t: b.t, hc: &http.Client{Jar: b.hc.Jar, Transport: tr, CheckRedirect: b.hc.CheckRedirect}}
}

func wantAPICode(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

// The hosted pages share the per-source limits of the code operations
// with the Cognito API: once an address has asked for 100 codes (here
// through the API, for usernames nobody has), /forgot and /signup show
// the limit and mail nothing; once it has given 100 codes, /reset and
// /confirm refuse even the right code. The same forms work from another
// address.
func TestHostedPagesLimitedPerSource(t *testing.T) {
	f := start(t)
	api := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.IDP)),
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	here := newBrowser(t)
	there := browserFrom(here, "127.0.0.2")
	verifier, _ := pkce()
	_, tx := f.beginSignIn(here, f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	_, forgotPage := here.get(f.iss + "/forgot?tx=" + url.QueryEscape(tx))
	_, signupPage := here.get(f.iss + "/signup?tx=" + url.QueryEscape(tx))

	for i := range 100 {
		if _, err := api.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"),
			Username: aws.String(fmt.Sprintf("nobody-%d", i))}); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	const sendLimit = "Too many code requests from this address; try again later."
	form := hidden(forgotPage)
	form.Set("username", "alice")
	if _, page := here.post(f.iss+"/forgot", form); !strings.Contains(page, sendLimit) || strings.Contains(page, "If the account exists") {
		t.Fatalf("/forgot past the limit:\n%s", page)
	}
	signup := hidden(signupPage)
	signup.Set("username", "dora")
	signup.Set("email", "dora@example.com")
	signup.Set("password", "Dora-Passw0rd")
	if _, page := here.post(f.iss+"/signup", signup); !strings.Contains(page, sendLimit) {
		t.Fatalf("/signup past the limit:\n%s", page)
	}
	if _, err := f.App.Core.Store.GetUser(f.ctx, poolID, "dora"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused sign-up created the user (%v)", err)
	}
	if ms, _ := f.App.Core.Store.ListMail(f.ctx, 0); len(ms) != 0 {
		t.Errorf("refused requests mailed %d messages", len(ms))
	}

	// From another address both pages work.
	_, resetPage := there.post(f.iss+"/forgot", form)
	if !strings.Contains(resetPage, "If the account exists, we sent it a reset code.") {
		t.Fatalf("/forgot from another address:\n%s", resetPage)
	}
	resetCode := lastCode(t, f, "alice@example.com")
	_, confirmPage := there.post(f.iss+"/signup", signup)
	if !strings.Contains(confirmPage, "Confirm your account") {
		t.Fatalf("/signup from another address:\n%s", confirmPage)
	}
	confirmCode := lastCode(t, f, "dora@example.com")

	for i := range 100 {
		_, err := api.ConfirmSignUp(f.ctx, &cip.ConfirmSignUpInput{ClientId: aws.String("demo-web"),
			Username: aws.String(fmt.Sprintf("nobody-%d", i)), ConfirmationCode: aws.String("123456")})
		wantAPICode(t, err, "CodeMismatchException")
	}
	const checkLimit = "Too many failed code attempts from this address; try again later."
	reset := hidden(resetPage)
	reset.Set("username", "alice")
	reset.Set("code", resetCode)
	reset.Set("password", "Alice-New-Passw0rd1")
	if _, page := here.post(f.iss+"/reset", reset); !strings.Contains(page, checkLimit) {
		t.Fatalf("/reset past the limit:\n%s", page)
	}
	confirm := hidden(confirmPage)
	confirm.Set("username", "dora")
	confirm.Set("code", confirmCode)
	if _, page := here.post(f.iss+"/confirm", confirm); !strings.Contains(page, checkLimit) {
		t.Fatalf("/confirm past the limit:\n%s", page)
	}
	// The right codes still work from another address.
	if _, page := there.post(f.iss+"/reset", reset); !strings.Contains(page, "Your password is changed") {
		t.Fatalf("/reset from another address:\n%s", page)
	}
	if _, page := there.post(f.iss+"/confirm", confirm); !strings.Contains(page, "Your account is confirmed") {
		t.Fatalf("/confirm from another address:\n%s", page)
	}
}
