package oidc_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/writ-id/writ/internal/config"
)

var (
	inputRE  = regexp.MustCompile(`<input ([^>]*)>`)
	attrRE   = regexp.MustCompile(`([a-z-]+)(?:="([^"]*)")?`)
	labelRE  = regexp.MustCompile(`<label for="([^"]+)">[^<]+</label>`)
	idRE     = regexp.MustCompile(` id="([^"]+)"`)
	extAsset = regexp.MustCompile(`(?i)(src|href)="(https?:)?//|<script|<link `)
)

// checkPage asserts what every hosted page promises: each visible field
// has a label, every aria-describedby names an element of the page, an
// error is announced and tied to the fields, nothing is loaded from
// elsewhere and no script is needed.
func checkPage(t *testing.T, name, page string, wantError bool) {
	t.Helper()
	ids := map[string]bool{}
	for _, m := range idRE.FindAllStringSubmatch(page, -1) {
		ids[m[1]] = true
	}
	labels := map[string]bool{}
	for _, m := range labelRE.FindAllStringSubmatch(page, -1) {
		labels[m[1]] = true
	}
	fields, autofocus := 0, 0
	for _, m := range inputRE.FindAllStringSubmatch(page, -1) {
		attrs := map[string]string{}
		for _, a := range attrRE.FindAllStringSubmatch(m[1], -1) {
			attrs[a[1]] = a[2]
		}
		if attrs["type"] == "hidden" {
			continue
		}
		fields++
		if _, ok := attrs["autofocus"]; ok {
			autofocus++
		}
		if !labels[attrs["id"]] {
			t.Errorf("%s: field %q has no label", name, attrs["name"])
		}
		for _, id := range strings.Fields(attrs["aria-describedby"]) {
			if !ids[id] {
				t.Errorf("%s: field %q is described by missing element %q", name, attrs["name"], id)
			}
		}
		if wantError && !strings.Contains(attrs["aria-describedby"], "form-error") && fields == 1 {
			t.Errorf("%s: the error is not tied to the first field", name)
		}
	}
	if fields == 0 || autofocus != 1 {
		t.Errorf("%s: %d fields, %d with autofocus (want exactly one)", name, fields, autofocus)
	}
	if wantError && !strings.Contains(page, `id="form-error" role="alert"`) {
		t.Errorf("%s: error not announced", name)
	}
	if extAsset.MatchString(page) {
		t.Errorf("%s: loads an external asset or a script", name)
	}
	if !strings.Contains(page, `<html lang="en">`) || !strings.Contains(page, "<title>") {
		t.Errorf("%s: no language or title", name)
	}
}

func TestHostedPagesAreAccessible(t *testing.T) {
	f := start(t, func(c *config.Config) { c.UserPools[0].MFA = "required" })
	b := newBrowser(t)
	verifier, _ := pkce()
	page, tx := f.beginSignIn(b, f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	checkPage(t, "sign in", page, false)
	form := hidden(page)
	form.Set("username", "alice")
	form.Set("password", "wrong-Passw0rd")
	_, page = b.post(f.iss+"/login", form)
	checkPage(t, "sign in with an error", page, true)
	form = hidden(page)
	form.Set("username", "alice")
	form.Set("password", "Alice-Passw0rd")
	_, page = b.post(f.iss+"/login", form)
	checkPage(t, "TOTP", page, false)
	form = hidden(page)
	form.Set("code", "12345")
	_, page = b.post(f.iss+"/login/totp", form)
	checkPage(t, "TOTP with an error", page, true)

	b2 := newBrowser(t)
	page, _ = f.beginSignIn(b2, f.webConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	form = hidden(page)
	form.Set("username", "bob")
	form.Set("password", "Bob-Passw0rd1")
	_, page = b2.post(f.iss+"/login", form)
	checkPage(t, "TOTP enrolment", page, false)
	if !strings.Contains(page, `<img class="qr" src="data:image/png;base64,`) || !strings.Contains(page, `alt="`) {
		t.Error("enrolment: no local QR image with a text alternative")
	}
	form = hidden(page)
	form.Set("code", "12345")
	_, page = b2.post(f.iss+"/login/enrol", form)
	checkPage(t, "TOTP enrolment with an error", page, true)

	for _, p := range []string{"signup", "forgot"} {
		_, page = b.get(f.iss + "/" + p + "?tx=" + url.QueryEscape(tx))
		checkPage(t, p, page, false)
	}
	form = hidden(page) // forgot
	form.Set("username", "alice")
	_, page = b.post(f.iss+"/forgot", form)
	checkPage(t, "reset", page, false)
	form = hidden(page)
	form.Set("username", "alice")
	form.Set("code", "000000")
	form.Set("password", "short")
	_, page = b.post(f.iss+"/reset", form)
	checkPage(t, "reset with an error", page, true)

	_, page = b.get(f.iss + "/signup?tx=" + url.QueryEscape(tx))
	form = hidden(page)
	form.Set("username", "erin")
	form.Set("email", "erin@example.com")
	form.Set("password", "Erin-Passw0rd")
	_, page = b.post(f.iss+"/signup", form)
	checkPage(t, "confirm", page, false)
	form = hidden(page)
	form.Set("username", "erin")
	form.Set("code", "999999")
	_, page = b.post(f.iss+"/confirm", form)
	checkPage(t, "confirm with an error", page, true)
}
