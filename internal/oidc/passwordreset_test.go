package oidc_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/smithy-go"
	"golang.org/x/oauth2"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/store"
)

// bobSession is one device of bob's, signed in with a password: tokens
// from the Cognito API, tokens from the hosted code flow (x/oauth2) and
// the hosted pages' session that flow left in its browser.
type bobSession struct {
	api *types.AuthenticationResultType
	web *oauth2.Token
	b   *browser
}

type resetFx struct {
	*fx
	t   *testing.T
	api *cip.Client // anonymous: the user's own operations
	adm *cip.Client // the reference admin IAM user, SigV4-signed
}

func startReset(t *testing.T) *resetFx {
	f := start(t)
	idp := aws.String(f.App.URL(app.IDP))
	return &resetFx{fx: f, t: t,
		api: cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: idp, Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1}),
		adm: cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: idp, RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")}),
	}
}

// apiSignIn signs bob in with USER_PASSWORD_AUTH.
func (f *resetFx) apiSignIn(pw string) *types.AuthenticationResultType {
	f.t.Helper()
	out, err := f.api.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"USERNAME": "bob", "PASSWORD": pw}})
	if err != nil || out.AuthenticationResult == nil {
		f.t.Fatalf("bob's sign-in with %q: %v", pw, err)
	}
	return out.AuthenticationResult
}

// webSignIn signs bob in on the hosted pages in b and redeems the code
// with x/oauth2.
func (f *resetFx) webSignIn(b *browser, pw string) *oauth2.Token {
	f.t.Helper()
	conf := f.webConfig()
	verifier, _ := pkce()
	page, _ := f.beginSignIn(b, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	form := hidden(page)
	form.Set("username", "bob")
	form.Set("password", pw)
	resp, _ := b.post(f.iss+"/login", form)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), redirectURI) || loc.Query().Get("code") == "" {
		f.t.Fatalf("bob's hosted sign-in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	tok, err := conf.Exchange(f.ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		f.t.Fatalf("code exchange: %v", err)
	}
	return tok
}

// signIn signs bob in on a new device, everywhere.
func (f *resetFx) signIn(pw string) bobSession {
	f.t.Helper()
	b := newBrowser(f.t)
	s := bobSession{api: f.apiSignIn(pw), web: f.webSignIn(b, pw), b: b}
	f.Clock.Advance(100 * time.Millisecond)
	return s
}

// silent asks for a code with prompt=none in b: "" when it gets one, else
// the error the client is sent back with.
func (f *resetFx) silent(b *browser) string {
	f.t.Helper()
	verifier, _ := pkce()
	resp, _ := b.get(f.webConfig().AuthCodeURL("p", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")))
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		return "no redirect"
	}
	if loc.Query().Get("code") != "" {
		return ""
	}
	return loc.Query().Get("error")
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return err.Error()
	}
	return "success"
}

func oauthCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	if err != nil {
		return err.Error()
	}
	return "success"
}

func (f *resetFx) refreshAPI(s bobSession) (*types.AuthenticationResultType, error) {
	out, err := f.api.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeRefreshTokenAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"REFRESH_TOKEN": aws.ToString(s.api.RefreshToken)}})
	if err != nil {
		return nil, err
	}
	return out.AuthenticationResult, nil
}

func (f *resetFx) refreshWeb(s bobSession) (*oauth2.Token, error) {
	return f.webConfig().TokenSource(f.ctx, &oauth2.Token{RefreshToken: s.web.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
}

// wantEnded checks that nothing of session s works any more.
func (f *resetFx) wantEnded(when string, s bobSession) {
	f.t.Helper()
	_, err := f.api.GetUser(f.ctx, &cip.GetUserInput{AccessToken: s.api.AccessToken})
	if c := apiCode(err); c != "NotAuthorizedException" {
		f.t.Errorf("%s: GetUser with the old access token: %s", when, c)
	}
	if status, _, _ := f.userInfo("Bearer " + s.web.AccessToken); status != http.StatusUnauthorized {
		f.t.Errorf("%s: userInfo with the old access token: %d", when, status)
	}
	_, err = f.refreshAPI(s)
	if c := apiCode(err); c != "NotAuthorizedException" {
		f.t.Errorf("%s: REFRESH_TOKEN_AUTH with the old refresh token: %s", when, c)
	}
	_, err = f.refreshWeb(s)
	if c := oauthCode(err); c != "invalid_grant" {
		f.t.Errorf("%s: refresh_token grant with the old refresh token: %s", when, c)
	}
	if e := f.silent(s.b); e != "login_required" {
		f.t.Errorf("%s: prompt=none in the old browser: %q, want login_required", when, e)
	}
}

// wantLive checks that every part of session s works (its refresh tokens
// are rotated).
func (f *resetFx) wantLive(when string, s bobSession) bobSession {
	f.t.Helper()
	if _, err := f.api.GetUser(f.ctx, &cip.GetUserInput{AccessToken: s.api.AccessToken}); err != nil {
		f.t.Errorf("%s: GetUser: %v", when, err)
	}
	if status, _, _ := f.userInfo("Bearer " + s.web.AccessToken); status != http.StatusOK {
		f.t.Errorf("%s: userInfo: %d", when, status)
	}
	if e := f.silent(s.b); e != "" {
		f.t.Errorf("%s: prompt=none: %q, want a code", when, e)
	}
	if ar, err := f.refreshAPI(s); err != nil {
		f.t.Errorf("%s: REFRESH_TOKEN_AUTH: %v", when, err)
	} else {
		s.api = ar
	}
	if tok, err := f.refreshWeb(s); err != nil {
		f.t.Errorf("%s: refresh_token grant: %v", when, err)
	} else {
		s.web = tok
	}
	return s
}

// wantSignOutAudited checks that the audit trail records the end of bob's
// sessions as GlobalSignOut does, saying why.
func (f *resetFx) wantSignOutAudited(why string) {
	f.t.Helper()
	evs := f.AuditEvents(f.t, store.AuditFilter{Component: "idp"})
	for _, e := range evs {
		if e.Action == "GlobalSignOut" && e.Username == "bob" && e.Outcome == "allow" && e.Sub != "" && strings.Contains(e.Reason, why) {
			return
		}
	}
	f.t.Errorf("no GlobalSignOut event for bob saying %q", why)
}

// A password reset, whichever way it is made, ends every session of the
// user as AdminUserGlobalSignOut does: the tokens from before (API and
// hosted code flow) are refused, refresh included, and so is the hosted
// pages' session, while a sign-in with the new password works.
func TestPasswordResetEndsEverySession(t *testing.T) {
	const oldPassword, newPassword = "Bob-Passw0rd1", "Bob-New-Passw0rd1"
	cases := []struct {
		name string
		// reset resets bob's password; why is what its audit event says.
		reset func(f *resetFx)
		why   string
		// usable makes the password bob signs in with afterwards (nil:
		// newPassword, set by reset).
		usable func(f *resetFx) string
	}{
		{name: "ConfirmForgotPassword", why: "ConfirmForgotPassword", reset: func(f *resetFx) {
			if _, err := f.api.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("bob")}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.api.ConfirmForgotPassword(f.ctx, &cip.ConfirmForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("bob"),
				ConfirmationCode: aws.String(lastCode(t, f.fx, "bob@example.com")), Password: aws.String(newPassword)}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "hosted forgot and reset pages", why: "ConfirmForgotPassword", reset: func(f *resetFx) {
			b := newBrowser(t) // bob's own, new browser
			verifier, _ := pkce()
			_, tx := f.beginSignIn(b, f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
			_, page := b.get(f.iss + "/forgot?tx=" + url.QueryEscape(tx))
			form := hidden(page)
			form.Set("username", "bob")
			_, page = b.post(f.iss+"/forgot", form)
			form = hidden(page)
			form.Set("username", "bob")
			form.Set("code", lastCode(t, f.fx, "bob@example.com"))
			form.Set("password", newPassword)
			if _, page = b.post(f.iss+"/reset", form); !strings.Contains(page, "Your password is changed") {
				t.Fatalf("after reset:\n%s", page)
			}
		}},
		{name: "AdminSetUserPassword permanent", why: "AdminSetUserPassword", reset: func(f *resetFx) {
			if _, err := f.adm.AdminSetUserPassword(f.ctx, &cip.AdminSetUserPasswordInput{UserPoolId: aws.String(poolID), Username: aws.String("bob"),
				Password: aws.String(newPassword), Permanent: true}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "AdminSetUserPassword temporary", why: "AdminSetUserPassword", reset: func(f *resetFx) {
			if _, err := f.adm.AdminSetUserPassword(f.ctx, &cip.AdminSetUserPasswordInput{UserPoolId: aws.String(poolID), Username: aws.String("bob"),
				Password: aws.String("Bob-Temp-Passw0rd1"), Permanent: false}); err != nil {
				t.Fatal(err)
			}
		}, usable: func(f *resetFx) string {
			out, err := f.api.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
				AuthParameters: map[string]string{"USERNAME": "bob", "PASSWORD": "Bob-Temp-Passw0rd1"}})
			if err != nil || out.ChallengeName != types.ChallengeNameTypeNewPasswordRequired {
				t.Fatalf("sign-in with the temporary password: %v %q", err, out.ChallengeName)
			}
			if _, err := f.api.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
				ChallengeName: out.ChallengeName, Session: out.Session,
				ChallengeResponses: map[string]string{"USERNAME": "bob", "NEW_PASSWORD": newPassword}}); err != nil {
				t.Fatal(err)
			}
			return newPassword
		}},
		{name: "AdminResetUserPassword", why: "AdminResetUserPassword", reset: func(f *resetFx) {
			if _, err := f.adm.AdminResetUserPassword(f.ctx, &cip.AdminResetUserPasswordInput{UserPoolId: aws.String(poolID), Username: aws.String("bob")}); err != nil {
				t.Fatal(err)
			}
		}, usable: func(f *resetFx) string {
			if _, err := f.api.ConfirmForgotPassword(f.ctx, &cip.ConfirmForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("bob"),
				ConfirmationCode: aws.String(lastCode(t, f.fx, "bob@example.com")), Password: aws.String(newPassword)}); err != nil {
				t.Fatal(err)
			}
			return newPassword
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := startReset(t)
			old, other := f.signIn(oldPassword), f.signIn(oldPassword)
			if e := f.silent(old.b); e != "" {
				t.Fatalf("prompt=none before the reset: %q", e)
			}
			c.reset(f)
			f.Clock.Advance(100 * time.Millisecond)
			f.wantEnded("after "+c.name, old)
			f.wantEnded("after "+c.name+", the other device", other)
			f.wantSignOutAudited(c.why)
			pw := newPassword
			if c.usable != nil {
				pw = c.usable(f)
			}
			if _, err := f.api.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
				AuthParameters: map[string]string{"USERNAME": "bob", "PASSWORD": oldPassword}}); apiCode(err) != "NotAuthorizedException" {
				t.Errorf("sign-in with the old password: %s", apiCode(err))
			}
			fresh := f.signIn(pw)
			f.wantLive("a sign-in with the new password", fresh)
			// A second on, the old sessions stay ended.
			f.Clock.Advance(2 * time.Second)
			f.wantEnded("two seconds later", old)
		})
	}
}

// ChangePassword, by a signed-in user who knows the password, keeps the
// session it is called with (its access token and its sign-in's refresh
// token) and ends every other: another sign-in's tokens and the hosted
// pages' sessions.
func TestChangePasswordEndsOtherSessions(t *testing.T) {
	const oldPassword, newPassword = "Bob-Passw0rd1", "Bob-New-Passw0rd1"
	f := startReset(t)
	caller, other := f.signIn(oldPassword), f.signIn(oldPassword)
	// Past the second of the sign-ins, so that their tokens' iat is
	// plainly before the change.
	f.Clock.Advance(1500 * time.Millisecond)
	if _, err := f.api.ChangePassword(f.ctx, &cip.ChangePasswordInput{AccessToken: caller.api.AccessToken,
		PreviousPassword: aws.String(oldPassword), ProposedPassword: aws.String(newPassword)}); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(100 * time.Millisecond)
	f.wantSignOutAudited("ChangePassword")
	f.wantEnded("the other device", other)

	// The calling sign-in goes on: its access token, its refresh token,
	// and the tokens and refresh tokens that refresh gives.
	if _, err := f.api.GetUser(f.ctx, &cip.GetUserInput{AccessToken: caller.api.AccessToken}); err != nil {
		t.Errorf("GetUser with the calling access token: %v", err)
	}
	ref, err := f.refreshAPI(caller)
	if err != nil {
		t.Fatalf("refresh of the calling sign-in: %v", err)
	}
	if _, err := f.api.GetUser(f.ctx, &cip.GetUserInput{AccessToken: ref.AccessToken}); err != nil {
		t.Errorf("GetUser with the refreshed access token: %v", err)
	}
	kept := caller
	kept.api = ref
	if ar, err := f.refreshAPI(kept); err != nil {
		t.Errorf("refresh with the rotated refresh token: %v", err)
	} else {
		kept.api = ar
	}
	// The caller's other sign-in (hosted code flow) and its browser
	// session are other sessions: ended.
	if status, _, _ := f.userInfo("Bearer " + caller.web.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("userInfo with the caller's hosted sign-in's token: %d", status)
	}
	if _, err := f.refreshWeb(caller); oauthCode(err) != "invalid_grant" {
		t.Errorf("refresh of the caller's hosted sign-in: %s", oauthCode(err))
	}
	if e := f.silent(caller.b); e != "login_required" {
		t.Errorf("prompt=none in the caller's browser: %q", e)
	}

	// The new password signs in; the old one does not.
	if _, err := f.api.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"USERNAME": "bob", "PASSWORD": oldPassword}}); apiCode(err) != "NotAuthorizedException" {
		t.Errorf("sign-in with the old password: %s", apiCode(err))
	}
	fresh := f.wantLive("a sign-in with the new password", f.signIn(newPassword))

	// Later on, the calling sign-in still works and the other does not.
	f.Clock.Advance(2 * time.Second)
	if _, err := f.api.GetUser(f.ctx, &cip.GetUserInput{AccessToken: caller.api.AccessToken}); err != nil {
		t.Errorf("GetUser with the calling access token, later: %v", err)
	}
	f.wantEnded("the other device, later", other)

	// A later sign-out everywhere ends the kept sign-in too.
	if _, err := f.api.GlobalSignOut(f.ctx, &cip.GlobalSignOutInput{AccessToken: fresh.api.AccessToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.api.GetUser(f.ctx, &cip.GetUserInput{AccessToken: caller.api.AccessToken}); apiCode(err) != "NotAuthorizedException" {
		t.Errorf("GetUser with the kept access token after GlobalSignOut: %s", apiCode(err))
	}
	if _, err := f.refreshAPI(kept); apiCode(err) != "NotAuthorizedException" {
		t.Errorf("refresh of the kept sign-in after GlobalSignOut: %s", apiCode(err))
	}
}

// TestCodeIssuedBeforeSignOutIsRefused: an authorization code issued
// before a sign-out everywhere (or a password reset) is refused at the
// token endpoint: the tokens it would give, issued after, would outlive
// the sign-out.
func TestCodeIssuedBeforeSignOutIsRefused(t *testing.T) {
	f := startReset(t)
	b := newBrowser(t)
	conf := f.webConfig()
	verifier, _ := pkce()
	page, _ := f.beginSignIn(b, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	form := hidden(page)
	form.Set("username", "bob")
	form.Set("password", "Bob-Passw0rd1")
	resp, _ := b.post(f.iss+"/login", form)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	f.Clock.Advance(100 * time.Millisecond)
	if _, err := f.adm.AdminUserGlobalSignOut(f.ctx, &cip.AdminUserGlobalSignOutInput{UserPoolId: aws.String(poolID), Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(100 * time.Millisecond)
	_, err := conf.Exchange(f.ctx, code, oauth2.VerifierOption(verifier))
	if oauthCode(err) != "invalid_grant" {
		t.Fatalf("a code from before the sign-out: %v", err)
	}
}
