package oidc

import (
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"
	"rsc.io/qr"

	"github.com/writ-id/writ/internal/awsjson"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// Names of the hosted pages' forms: each is a template of the same name
// and the CSRF token of each is good for it alone.
const (
	formLogin       = "login"
	formTOTP        = "totp"
	formEnrol       = "enrol"
	formNewPassword = "newpassword"
	formSignup      = "signup"
	formConfirm     = "confirm"
	formForgot      = "forgot"
	formReset       = "reset"
)

// page is what every template sees.
type page struct {
	Title, PoolName, Error, Notice, Base, CSRF, TX string
	Username, Email, Session, Secret               string
	QR                                             template.URL // a data: URL built here
	PasswordHelp                                   string
	SignupAllowed                                  bool
}

// render executes the page template name with pg and sends it with
// status. The page is rendered in full before anything is sent: if the
// template fails, the answer is a plain 500 (with an error id that is also
// logged), never a truncated page.
func (h *Handler) render(w http.ResponseWriter, status int, name string, p *userpool.Pool, pg page) {
	pg.Base = basePath(p)
	pg.PoolName = p.Config().Name
	if pg.PoolName == "" {
		pg.PoolName = p.ID()
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, pg); err != nil {
		id := uuid.NewString()
		h.log.Error("oidc: render page", "page", name, "error_id", id, "err", err)
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "Internal error; please try again (error id "+id+").", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	// No form-action: browsers apply it to the redirect that follows a
	// form post, and the last post of a sign-in redirects to the client.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage shows an error that must not be redirected to the client.
func (h *Handler) errorPage(w http.ResponseWriter, p *userpool.Pool, status int, msg string) {
	h.render(w, status, "message", p, page{Title: "Something went wrong", Error: msg})
}

// internalErrorPage logs err under a fresh id and shows the id.
func (h *Handler) internalErrorPage(w http.ResponseWriter, r *http.Request, p *userpool.Pool, err error) {
	id := uuid.NewString()
	h.log.Error("oidc: "+r.URL.Path, "error_id", id, "err", err)
	h.errorPage(w, p, http.StatusInternalServerError, "Internal error; please try again (error id "+id+").")
}

const expiredTx = "This sign-in page has expired. Go back to the application and sign in again."

// newPage returns the page for form within transaction tx, with its CSRF
// token.
func (h *Handler) newPage(w http.ResponseWriter, r *http.Request, p *userpool.Pool, form, tx, title string) page {
	return page{Title: title, CSRF: h.csrfToken(w, r, p, form, tx), TX: tx,
		SignupAllowed: signupAllowed(p), PasswordHelp: passwordHelp(p)}
}

func passwordHelp(p *userpool.Pool) string {
	pp := p.Config().PasswordPolicy
	parts := []string{fmt.Sprintf("At least %d characters", pp.MinLength)}
	for _, x := range []struct {
		on   bool
		what string
	}{{pp.RequireLowercase, "a lowercase letter"}, {pp.RequireUppercase, "an uppercase letter"}, {pp.RequireDigits, "a digit"}, {pp.RequireSymbols, "a symbol"}} {
		if x.on {
			parts = append(parts, x.what)
		}
	}
	return strings.Join(parts, ", ") + "."
}

// userMessage is the text shown for a failed step: the domain error's
// message, which never tells whether an account exists.
func userMessage(err error) string {
	var ue *userpool.Error
	if errors.As(err, &ue) && ue.Code != userpool.CodeInternal {
		return ue.Message
	}
	return "Something went wrong; please try again."
}

// isLimit reports whether err is one of the user pool's request limits:
// LimitExceededException (per user) or TooManyRequestsException (per
// source address).
func isLimit(err error) bool {
	var ue *userpool.Error
	return errors.As(err, &ue) && (ue.Code == userpool.CodeLimitExceeded || ue.Code == userpool.CodeTooManyRequests)
}

// posted is a hosted-page form that passed its checks.
type posted struct {
	p   *userpool.Pool
	ctx context.Context
	tx  string
	req authzRequest
	c   store.Client
}

// readForm parses a hosted-page POST of the named form, checking its CSRF
// token and its sign-in transaction; on failure it has answered.
func (h *Handler) readForm(w http.ResponseWriter, r *http.Request, form string) (posted, bool) {
	p, ok := h.pool(w, r)
	if !ok {
		return posted{}, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, p, http.StatusBadRequest, "The form could not be read.")
		return posted{}, false
	}
	if !checkCSRF(r, form) {
		h.errorPage(w, p, http.StatusForbidden, "The form expired or did not come from this site (CSRF check failed). Reload the page and try again.")
		return posted{}, false
	}
	ctx := h.requestContext(r)
	tx := r.PostFormValue("tx")
	req, c, ok := h.loadTx(ctx, p, tx)
	if !ok {
		h.errorPage(w, p, http.StatusBadRequest, expiredTx)
		return posted{}, false
	}
	return posted{p: p, ctx: ctx, tx: tx, req: req, c: c}, true
}

// formPage serves the GET of the sign-up or forgot-password page (form,
// at /<form>), which needs a live transaction or, as Cognito's, starts one
// from an authorization request's parameters.
func (h *Handler) formPage(form, title string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := h.pool(w, r)
		if !ok {
			return
		}
		q := r.URL.Query()
		tx := q.Get("tx")
		if tx == "" && q.Get("client_id") != "" {
			// As Cognito's /signup and /forgotPassword: the authorization
			// request's parameters start a transaction on this page.
			a, ok := h.readAuthz(w, r, p, q)
			if !ok {
				return
			}
			if slices.Contains(a.prompt, "none") {
				a.fail(errLoginRequired, "prompt=none: no page is shown") // as at the authorization endpoint
				return
			}
			if form == formSignup && !signupAllowed(p) {
				h.errorPage(w, p, http.StatusForbidden, "This service does not allow creating accounts.")
				return
			}
			tx, err := h.beginTx(h.requestContext(r), p, a.req)
			if err != nil {
				h.internalErrorPage(w, r, p, err)
				return
			}
			http.Redirect(w, r, basePath(p)+"/"+form+"?tx="+url.QueryEscape(tx), http.StatusFound)
			return
		}
		if _, _, ok := h.loadTx(h.requestContext(r), p, tx); !ok {
			h.errorPage(w, p, http.StatusBadRequest, expiredTx)
			return
		}
		pg := h.newPage(w, r, p, form, tx, title)
		if form == formSignup && !pg.SignupAllowed {
			h.errorPage(w, p, http.StatusForbidden, "This service does not allow creating accounts.")
			return
		}
		h.render(w, http.StatusOK, form, p, pg)
	}
}

// loginPage is the sign-in page of a transaction. Without one, as
// Cognito's /login, it takes the authorization request's parameters and
// starts one.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	tx := q.Get("tx")
	if tx == "" && q.Get("client_id") != "" {
		http.Redirect(w, r, basePath(p)+"/oauth2/authorize?"+r.URL.RawQuery, http.StatusFound)
		return
	}
	req, _, ok := h.loadTx(h.requestContext(r), p, tx)
	if !ok {
		h.errorPage(w, p, http.StatusBadRequest, expiredTx)
		return
	}
	pg := h.newPage(w, r, p, formLogin, tx, "Sign in")
	pg.Username = req.LoginHint
	h.render(w, http.StatusOK, formLogin, p, pg)
}

func (h *Handler) loginPost(w http.ResponseWriter, r *http.Request) {
	f, ok := h.readForm(w, r, formLogin)
	if !ok {
		return
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	res, err := f.p.WebPasswordAuth(f.ctx, f.c, username, r.PostFormValue("password"), awsjson.SourceIP(r))
	if err != nil {
		pg := h.newPage(w, r, f.p, formLogin, f.tx, "Sign in")
		pg.Error, pg.Username = userMessage(err), username
		h.render(w, http.StatusOK, formLogin, f.p, pg)
		return
	}
	h.next(w, r, f, res)
}

// next shows the page for a sign-in step's result, or completes the
// sign-in.
func (h *Handler) next(w http.ResponseWriter, r *http.Request, f posted, res userpool.Result) {
	switch {
	case res.Done:
		h.complete(w, r, f, browserSession{Sub: res.User.Sub, Username: res.User.Username, AuthTime: res.AuthTime.Unix(), AMR: res.AMR})
	case res.Challenge == userpool.ChallengeSoftwareTokenMFA:
		pg := h.newPage(w, r, f.p, formTOTP, f.tx, "Two-step verification")
		pg.Session = res.Session
		h.render(w, http.StatusOK, formTOTP, f.p, pg)
	case res.Challenge == userpool.ChallengeNewPassword:
		pg := h.newPage(w, r, f.p, formNewPassword, f.tx, "Choose a new password")
		pg.Session = res.Session
		pg.Notice = "Your account needs a new password before you continue."
		h.render(w, http.StatusOK, formNewPassword, f.p, pg)
	case res.Challenge == userpool.ChallengeMFASetup:
		secret, session, err := f.p.AssociateSoftwareToken(f.ctx, "", res.Session)
		if err != nil {
			h.errorPage(w, f.p, http.StatusBadRequest, userMessage(err))
			return
		}
		h.renderEnrol(w, r, f, res.User.Username, secret, session, "")
	default:
		h.errorPage(w, f.p, http.StatusBadRequest, "Unsupported sign-in step.")
	}
}

// renderEnrol shows TOTP enrolment: the otpauth URI as a QR code drawn
// here (a PNG data URL, no external request) and the secret as text.
func (h *Handler) renderEnrol(w http.ResponseWriter, r *http.Request, f posted, username, secret, session, errMsg string) {
	name := f.p.Config().Name
	if name == "" {
		name = f.p.ID()
	}
	uri := (&url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + name + ":" + username,
		RawQuery: url.Values{"secret": {secret}, "issuer": {name}}.Encode()}).String()
	code, err := qr.Encode(uri, qr.M)
	if err != nil {
		h.internalErrorPage(w, r, f.p, err)
		return
	}
	code.Scale = 4
	pg := h.newPage(w, r, f.p, formEnrol, f.tx, "Set up two-step verification")
	pg.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(code.PNG()))
	pg.Secret, pg.Session, pg.Error, pg.Username = secret, session, errMsg, username
	h.render(w, http.StatusOK, formEnrol, f.p, pg)
}

func (h *Handler) totpPost(w http.ResponseWriter, r *http.Request) {
	f, ok := h.readForm(w, r, formTOTP)
	if !ok {
		return
	}
	session := r.PostFormValue("session")
	res, err := f.p.Respond(f.ctx, f.c, userpool.ChallengeSoftwareTokenMFA, session,
		map[string]string{"SOFTWARE_TOKEN_MFA_CODE": strings.TrimSpace(r.PostFormValue("code"))}, awsjson.SourceIP(r))
	if err != nil {
		if _, live := f.p.SessionLive(f.ctx, session); !live {
			h.errorPage(w, f.p, http.StatusBadRequest, "Too many attempts, or the page expired. Go back to the application and sign in again.")
			return
		}
		pg := h.newPage(w, r, f.p, formTOTP, f.tx, "Two-step verification")
		pg.Error, pg.Session = "That code is not right. Check your authenticator app and try again.", session
		h.render(w, http.StatusOK, formTOTP, f.p, pg)
		return
	}
	h.next(w, r, f, res)
}

func (h *Handler) enrolPost(w http.ResponseWriter, r *http.Request) {
	f, ok := h.readForm(w, r, formEnrol)
	if !ok {
		return
	}
	session, secret := r.PostFormValue("session"), r.PostFormValue("secret")
	next, err := f.p.VerifySoftwareToken(f.ctx, "", session, strings.TrimSpace(r.PostFormValue("code")))
	if err != nil {
		username, live := f.p.SessionLive(f.ctx, session)
		if !live {
			h.errorPage(w, f.p, http.StatusBadRequest, "Too many attempts, or the page expired. Go back to the application and sign in again.")
			return
		}
		h.renderEnrol(w, r, f, username, secret, session, "That code is not right. Enter the code your app shows now.")
		return
	}
	res, err := f.p.Respond(f.ctx, f.c, userpool.ChallengeMFASetup, next, nil, awsjson.SourceIP(r))
	if err != nil {
		h.errorPage(w, f.p, http.StatusBadRequest, userMessage(err))
		return
	}
	h.next(w, r, f, res)
}

func (h *Handler) newPasswordPost(w http.ResponseWriter, r *http.Request) {
	f, ok := h.readForm(w, r, formNewPassword)
	if !ok {
		return
	}
	session := r.PostFormValue("session")
	res, err := f.p.Respond(f.ctx, f.c, userpool.ChallengeNewPassword, session, map[string]string{"NEW_PASSWORD": r.PostFormValue("password")}, awsjson.SourceIP(r))
	if err != nil {
		if _, live := f.p.SessionLive(f.ctx, session); !live {
			h.errorPage(w, f.p, http.StatusBadRequest, "The page expired. Go back to the application and sign in again.")
			return
		}
		pg := h.newPage(w, r, f.p, formNewPassword, f.tx, "Choose a new password")
		pg.Error, pg.Session = userMessage(err), session
		h.render(w, http.StatusOK, formNewPassword, f.p, pg)
		return
	}
	h.next(w, r, f, res)
}

// complete signs the browser in, ends the transaction and sends the code
// to the client.
func (h *Handler) complete(w http.ResponseWriter, r *http.Request, f posted, bs browserSession) {
	s, err := h.store.ConsumeSession(f.ctx, hashID(f.tx), h.now())
	var req authzRequest
	if err != nil || json.Unmarshal(s.Data, &req) != nil {
		h.errorPage(w, f.p, http.StatusBadRequest, expiredTx)
		return
	}
	if err := h.signIn(f.ctx, w, r, f.p, bs); err != nil {
		h.internalErrorPage(w, r, f.p, err)
		return
	}
	h.issueCode(f.ctx, w, r, f.p, req, bs)
}

func (h *Handler) signupPost(w http.ResponseWriter, r *http.Request) {
	f, ok := h.readForm(w, r, formSignup)
	if !ok {
		return
	}
	if !(f.p.Config().SelfSignup == nil || *f.p.Config().SelfSignup) {
		h.errorPage(w, f.p, http.StatusForbidden, "This service does not allow creating accounts.")
		return
	}
	username, email := strings.TrimSpace(r.PostFormValue("username")), strings.TrimSpace(r.PostFormValue("email"))
	_, _, err := f.p.SignUp(f.ctx, f.c, username, r.PostFormValue("password"), f.p.HostedSecretHash(f.c, username),
		[]userpool.Attribute{{Name: "email", Value: email}}, awsjson.SourceIP(r))
	if err != nil {
		pg := h.newPage(w, r, f.p, formSignup, f.tx, "Create an account")
		pg.Error, pg.Username, pg.Email = userMessage(err), username, email
		h.render(w, http.StatusOK, formSignup, f.p, pg)
		return
	}
	pg := h.newPage(w, r, f.p, formConfirm, f.tx, "Confirm your account")
	pg.Notice, pg.Username = "We sent a confirmation code to "+email+".", username
	h.render(w, http.StatusOK, formConfirm, f.p, pg)
}

func (h *Handler) confirmPost(w http.ResponseWriter, r *http.Request) {
	f, ok := h.readForm(w, r, formConfirm)
	if !ok {
		return
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	if err := f.p.ConfirmSignUp(f.ctx, f.c, username, strings.TrimSpace(r.PostFormValue("code")), f.p.HostedSecretHash(f.c, username), awsjson.SourceIP(r)); err != nil {
		pg := h.newPage(w, r, f.p, formConfirm, f.tx, "Confirm your account")
		pg.Error, pg.Username = userMessage(err), username
		h.render(w, http.StatusOK, formConfirm, f.p, pg)
		return
	}
	pg := h.newPage(w, r, f.p, formLogin, f.tx, "Sign in")
	pg.Notice, pg.Username = "Your account is confirmed. Sign in to continue.", username
	h.render(w, http.StatusOK, formLogin, f.p, pg)
}

func (h *Handler) forgotPost(w http.ResponseWriter, r *http.Request) {
	f, ok := h.readForm(w, r, formForgot)
	if !ok {
		return
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	// Every answer but the request limits (per user and per source, which
	// hold for unknown users too) gets the same page: it must not tell
	// whether the account exists.
	if _, err := f.p.ForgotPassword(f.ctx, f.c, username, f.p.HostedSecretHash(f.c, username), awsjson.SourceIP(r)); isLimit(err) {
		pg := h.newPage(w, r, f.p, formForgot, f.tx, "Reset your password")
		pg.Error, pg.Username = userMessage(err), username
		h.render(w, http.StatusOK, formForgot, f.p, pg)
		return
	}
	pg := h.newPage(w, r, f.p, formReset, f.tx, "Reset your password")
	pg.Notice, pg.Username = "If the account exists, we sent it a reset code.", username
	h.render(w, http.StatusOK, formReset, f.p, pg)
}

func (h *Handler) resetPost(w http.ResponseWriter, r *http.Request) {
	f, ok := h.readForm(w, r, formReset)
	if !ok {
		return
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	err := f.p.ConfirmForgotPassword(f.ctx, f.c, username, strings.TrimSpace(r.PostFormValue("code")), r.PostFormValue("password"),
		f.p.HostedSecretHash(f.c, username), awsjson.SourceIP(r))
	if err != nil {
		pg := h.newPage(w, r, f.p, formReset, f.tx, "Reset your password")
		pg.Error, pg.Username = userMessage(err), username
		h.render(w, http.StatusOK, formReset, f.p, pg)
		return
	}
	pg := h.newPage(w, r, f.p, formLogin, f.tx, "Sign in")
	pg.Notice, pg.Username = "Your password is changed. Sign in with the new one.", username
	h.render(w, http.StatusOK, formLogin, f.p, pg)
}

// signupAllowed reports whether the pool lets users create accounts on
// the hosted pages (self_signup, on by default).
func signupAllowed(p *userpool.Pool) bool {
	return p.Config().SelfSignup == nil || *p.Config().SelfSignup
}
