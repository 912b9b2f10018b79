package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// Cookies of the hosted pages, scoped to the pool's path.
const (
	cookieSession = "writ_session"
	cookieCSRF    = "writ_csrf"
)

// Lifetimes of the hosted flow's server-side state.
const (
	// txLifetime is how long a sign-in started at /oauth2/authorize may take.
	txLifetime = 15 * time.Minute
	// browserLifetime is how long a browser stays signed in (Cognito: 1 h).
	browserLifetime = time.Hour
)

// Kinds of store.Session kept by the endpoints.
const (
	kindAuthz    = "authz"     // a pending authorization request (tx)
	kindBrowser  = "browser"   // a signed-in browser
	kindCode     = "code"      // an unredeemed authorization code
	kindCodeUsed = "code-used" // a redeemed code, kept to detect replay
)

// browserSession is who is signed in to the hosted pages of one browser.
type browserSession struct {
	Sub      string   `json:"s"`
	Username string   `json:"u"`
	AuthTime int64    `json:"t"`
	AMR      []string `json:"a"`
}

// hashID is how secrets handed to browsers and clients (transaction ids,
// session cookies, codes) are stored: never in the clear.
func hashID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// basePath is the path of the pool's issuer, under which its pages live.
func basePath(p *userpool.Pool) string {
	u, err := url.Parse(p.Issuer())
	if err != nil || u.Path == "" {
		return "/" + p.ID()
	}
	return strings.TrimSuffix(u.Path, "/")
}

// secureCookies reports whether the pool is served over https, where its
// cookies are marked Secure.
func secureCookies(p *userpool.Pool) bool { return strings.HasPrefix(p.Issuer(), "https://") }

func setCookie(w http.ResponseWriter, p *userpool.Pool, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: basePath(p) + "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secureCookies(p)})
}

// csrfToken returns the CSRF token for one form of one sign-in
// transaction: an HMAC, keyed by the browser's random CSRF cookie, of the
// form's name and the transaction. The cookie is set when missing. A token
// is therefore good only for that form, that transaction and that browser.
func (h *Handler) csrfToken(w http.ResponseWriter, r *http.Request, p *userpool.Pool, form, tx string) string {
	secret := ""
	if c, err := r.Cookie(cookieCSRF); err == nil && len(c.Value) >= 43 && len(c.Value) <= 64 {
		secret = c.Value
	} else {
		secret = randomString(32)
		setCookie(w, p, cookieCSRF, secret, 0)
		// Later tokens in this response use the new cookie.
		r.AddCookie(&http.Cookie{Name: cookieCSRF, Value: secret})
	}
	return formMAC(secret, form, tx)
}

func formMAC(secret, form, tx string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("writ-csrf\x00" + form + "\x00" + tx))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF verifies a posted form's CSRF token against the browser's
// cookie, in constant time.
func checkCSRF(r *http.Request, form string) bool {
	c, err := r.Cookie(cookieCSRF)
	if err != nil || len(c.Value) < 43 || len(c.Value) > 64 {
		return false
	}
	want := formMAC(c.Value, form, r.PostFormValue("tx"))
	return hmac.Equal([]byte(want), []byte(r.PostFormValue("csrf")))
}

// browserSession returns the signed-in user of this browser, if the
// session is live and the user is enabled and has not signed out
// everywhere (GlobalSignOut) since.
func (h *Handler) browserSession(ctx context.Context, r *http.Request, p *userpool.Pool) (browserSession, bool) {
	ck, err := r.Cookie(cookieSession)
	if err != nil || ck.Value == "" || len(ck.Value) > 256 {
		return browserSession{}, false
	}
	s, err := h.store.GetSession(ctx, hashID(ck.Value), h.now())
	if err != nil || s.Kind != kindBrowser || s.PoolID != p.ID() {
		return browserSession{}, false
	}
	var bs browserSession
	if json.Unmarshal(s.Data, &bs) != nil {
		return browserSession{}, false
	}
	u, err := h.svc.UserBySub(ctx, bs.Sub)
	if err != nil || u.PoolID != p.ID() || !u.Enabled {
		return browserSession{}, false
	}
	// AuthTime is in whole seconds: the session's creation tells a sign-in
	// in the sign-out's own second from one before it.
	if rb := u.RevokedBefore; !rb.IsZero() && (bs.AuthTime < rb.Unix() || s.CreatedAt.Before(rb)) {
		return browserSession{}, false
	}
	return bs, true
}

// signIn starts a browser session for bs, replacing any earlier one of
// this browser.
func (h *Handler) signIn(ctx context.Context, w http.ResponseWriter, r *http.Request, p *userpool.Pool, bs browserSession) error {
	h.endBrowserSession(ctx, r)
	sid := randomString(32)
	data, _ := json.Marshal(bs)
	now := h.now()
	if err := h.store.CreateSession(ctx, store.Session{ID: hashID(sid), Kind: kindBrowser, PoolID: p.ID(), Username: bs.Username,
		Data: data, CreatedAt: now, ExpiresAt: now.Add(browserLifetime)}); err != nil {
		return err
	}
	setCookie(w, p, cookieSession, sid, int(browserLifetime/time.Second))
	return nil
}

// endBrowserSession deletes the browser's session, if any.
func (h *Handler) endBrowserSession(ctx context.Context, r *http.Request) {
	if ck, err := r.Cookie(cookieSession); err == nil && ck.Value != "" && len(ck.Value) <= 256 {
		if err := h.store.DeleteSession(ctx, hashID(ck.Value)); err != nil && !errors.Is(err, store.ErrNotFound) {
			h.log.Warn("oidc: delete browser session", "err", err)
		}
	}
}
