package oidc

import (
	"net/http"
	"net/url"
	"slices"
)

// logout signs the browser out of the hosted pages (Cognito's /logout,
// also the end_session_endpoint of OpenID Connect RP-Initiated Logout).
// The client is client_id, or the audience of id_token_hint. With
// logout_uri (or post_logout_redirect_uri) registered for that client, the
// browser goes there with state; with response_type and redirect_uri, as
// in Cognito, it goes back to the authorization endpoint to sign in again;
// otherwise a "signed out" page is shown. An unknown client or an
// unregistered URI is a 400 page and nobody is signed out.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	ctx := h.requestContext(r)
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, p, http.StatusBadRequest, "The sign-out request could not be read.")
		return
	}
	q := r.Form
	target := q.Get("logout_uri")
	if target == "" {
		target = q.Get("post_logout_redirect_uri")
	}
	reauth := q.Get("response_type") != "" && q.Get("redirect_uri") != ""
	clientID := q.Get("client_id")
	if hint := q.Get("id_token_hint"); hint != "" {
		var aud []string
		hc, err := p.IDTokenHint(ctx, hint)
		if err == nil {
			aud = hc.Audience
		}
		if err != nil || len(aud) == 0 || (clientID != "" && !slices.Contains(aud, clientID)) || (clientID == "" && len(aud) != 1) {
			h.errorPage(w, p, http.StatusBadRequest, "The id_token_hint does not name this application.")
			return
		}
		if clientID == "" {
			clientID = aud[0]
		}
	}
	if clientID != "" || target != "" || reauth {
		c, err := p.Client(ctx, clientID)
		if err != nil || clientID == "" {
			h.errorPage(w, p, http.StatusBadRequest, "Unknown application (client_id).")
			return
		}
		if target != "" && !slices.Contains(c.LogoutURIs, target) {
			h.errorPage(w, p, http.StatusBadRequest, "The sign-out redirect address is not registered for this application.")
			return
		}
	}
	h.endBrowserSession(ctx, r)
	setCookie(w, p, cookieSession, "", -1)
	switch {
	case target != "":
		params := url.Values{}
		if s := q.Get("state"); s != "" {
			params.Set("state", s)
		}
		redirectWith(w, r, target, params)
	case reauth:
		// The authorization endpoint checks the redirect URI and the rest.
		params := url.Values{}
		for _, k := range []string{"client_id", "response_type", "redirect_uri", "state", "scope", "nonce", "code_challenge", "code_challenge_method"} {
			if v := q.Get(k); v != "" {
				params.Set(k, v)
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, basePath(p)+"/oauth2/authorize?"+params.Encode(), http.StatusFound)
	default:
		h.render(w, http.StatusOK, "message", p, page{Title: "Signed out", Notice: "You are signed out."})
	}
}
