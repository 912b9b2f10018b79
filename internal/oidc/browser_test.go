package oidc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/userpool"
)

// chrome starts headless Chromium from WRIT_TEST_CHROMIUM, or skips.
func chrome(t *testing.T) context.Context {
	t.Helper()
	return apptest.Chrome(t)
}

// relyingParty is an application: its callback exchanges the code with x/oauth2
// and shows who signed in.
type relyingParty struct {
	srv      *httptest.Server
	conf     *oauth2.Config
	verifier string
	mu       sync.Mutex
	tok      *oauth2.Token
	err      error
}

func newApp(t *testing.T) *relyingParty {
	a := &relyingParty{verifier: oauth2.GenerateVerifier()}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if e := r.URL.Query().Get("error"); e != "" {
			a.err = fmt.Errorf("authorize error %s", e)
			fmt.Fprintf(w, "<p id=result>error %s</p>", e)
			return
		}
		a.tok, a.err = a.conf.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(a.verifier))
		if a.err != nil {
			fmt.Fprintf(w, "<p id=result>error</p>")
			return
		}
		fmt.Fprintf(w, "<p id=result>signed in as %s</p>", claims(t, a.tok.AccessToken)["username"])
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *relyingParty) option() func(*config.Config) {
	return func(c *config.Config) {
		c.UserPools[0].Clients[0].RedirectURIs = append(c.UserPools[0].Clients[0].RedirectURIs, a.srv.URL+"/callback")
	}
}

func (a *relyingParty) start(f *fx) string {
	a.conf = &oauth2.Config{ClientID: "demo-web", RedirectURL: a.srv.URL + "/callback", Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: f.iss + "/oauth2/authorize", TokenURL: f.iss + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	return a.conf.AuthCodeURL("browser-state", oauth2.S256ChallengeOption(a.verifier))
}

func TestBrowserSignInWithTOTP(t *testing.T) {
	ctx := chrome(t)
	a := newApp(t)
	f := start(t, a.option())
	var title, result string
	err := chromedp.Run(ctx,
		chromedp.Navigate(a.start(f)),
		chromedp.WaitVisible("#username"),
		chromedp.SendKeys("#username", "alice"),
		chromedp.SendKeys("#password", "Alice-Passw0rd"),
		chromedp.Submit("#password"),
		chromedp.WaitVisible("#code"),
		chromedp.Title(&title),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, "Two-step verification") {
		t.Fatalf("after password: title %q", title)
	}
	code, _ := userpool.TOTPNow("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", f.Clock.Now())
	err = chromedp.Run(ctx,
		chromedp.SendKeys("#code", code),
		chromedp.Submit("#code"),
		chromedp.WaitVisible("#result"),
		chromedp.Text("#result", &result),
	)
	if err != nil {
		t.Fatal(err)
	}
	if result != "signed in as alice" {
		t.Fatalf("relying party says %q (err %v)", result, a.err)
	}
	// A second sign-in from the same browser skips the password.
	a.verifier = oauth2.GenerateVerifier()
	if err := chromedp.Run(ctx, chromedp.Navigate(a.start(f)), chromedp.WaitVisible("#result"), chromedp.Text("#result", &result)); err != nil {
		t.Fatal(err)
	}
	if result != "signed in as alice" {
		t.Fatalf("second sign-in: %q", result)
	}
}

func TestBrowserTOTPEnrolment(t *testing.T) {
	ctx := chrome(t)
	a := newApp(t)
	f := start(t, a.option(), func(c *config.Config) { c.UserPools[0].MFA = "required" })
	var secret, result string
	var qrOK bool
	err := chromedp.Run(ctx,
		chromedp.Navigate(a.start(f)),
		chromedp.WaitVisible("#username"),
		chromedp.SendKeys("#username", "bob"),
		chromedp.SendKeys("#password", "Bob-Passw0rd1"),
		chromedp.Submit("#password"),
		chromedp.WaitVisible("#totp-secret"),
		chromedp.Text("#totp-secret", &secret),
		chromedp.Evaluate(`(() => { const i = document.querySelector("img.qr"); return i.complete && i.naturalWidth > 50 })()`, &qrOK),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !qrOK {
		t.Error("the QR code image did not render")
	}
	code, err := userpool.TOTPNow(secret, f.Clock.Now())
	if err != nil {
		t.Fatalf("secret shown on the page %q: %v", secret, err)
	}
	err = chromedp.Run(ctx,
		chromedp.SendKeys("#code", code),
		chromedp.Submit("#code"),
		chromedp.WaitVisible("#result"),
		chromedp.Text("#result", &result),
	)
	if err != nil {
		t.Fatal(err)
	}
	if result != "signed in as bob" {
		t.Fatalf("relying party says %q (err %v)", result, a.err)
	}
}
