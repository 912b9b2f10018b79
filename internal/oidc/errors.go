package oidc

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/writ-id/writ/internal/userpool"
)

// OAuth 2.0 error codes (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC
// 7009 §2.2.1, RFC 8693 §2.2.2, OpenID Connect Core §3.1.2.6).
const (
	errInvalidRequest          = "invalid_request"
	errInvalidClient           = "invalid_client"
	errInvalidGrant            = "invalid_grant"
	errUnauthorizedClient      = "unauthorized_client"
	errUnsupportedGrantType    = "unsupported_grant_type"
	errUnsupportedResponseType = "unsupported_response_type"
	errUnsupportedTokenType    = "unsupported_token_type"
	errInvalidScope            = "invalid_scope"
	errInvalidTarget           = "invalid_target"
	errInvalidToken            = "invalid_token"
	errInsufficientScope       = "insufficient_scope"
	errLoginRequired           = "login_required"
	errServerError             = "server_error"
)

// oauthError returns a fresh OAuth error whose code and description are
// safe to show the client.
func oauthError(code, desc string) *userpool.OAuthError {
	return &userpool.OAuthError{Code: code, Description: desc}
}

// asOAuth turns any error of the token, revocation and introspection
// endpoints into an OAuth error: domain errors map to their nearest code
// and anything else is a server_error.
func asOAuth(err error) *userpool.OAuthError {
	var oe *userpool.OAuthError
	if errors.As(err, &oe) {
		return oe
	}
	var ue *userpool.Error
	if errors.As(err, &ue) {
		switch ue.Code {
		case userpool.CodeNotAuthorized:
			return &userpool.OAuthError{Code: errInvalidGrant, Description: ue.Message, Cause: err}
		case userpool.CodeInternal:
		default:
			return &userpool.OAuthError{Code: errInvalidRequest, Description: ue.Message, Cause: err}
		}
	}
	return &userpool.OAuthError{Code: errServerError, Description: "internal error", Cause: err}
}

// writeOAuthError renders err as an RFC 6749 §5.2 JSON error: 401 with
// WWW-Authenticate for invalid_client, 500 (with an error id that is also
// logged) for server_error, 400 otherwise.
func (h *Handler) writeOAuthError(w http.ResponseWriter, r *http.Request, err error) {
	oe := asOAuth(err)
	status := http.StatusBadRequest
	desc := oe.Description
	switch oe.Code {
	case errInvalidClient:
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Basic realm="writ", error="invalid_client"`)
	case errServerError:
		status = http.StatusInternalServerError
		id := uuid.NewString()
		desc = "internal error (id " + id + ")"
		h.log.Error("oidc: "+r.URL.Path, "error_id", id, "err", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, map[string]string{"error": oe.Code, "error_description": desc})
}

// maxForm bounds the body of every form the endpoints read.
const maxForm = 64 << 10

// parseForm reads an application/x-www-form-urlencoded POST body (RFC 6749
// §3.2), refusing repeated parameters.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, oauthError(errInvalidRequest, "Content-Type must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return nil, oauthError(errInvalidRequest, "malformed or oversized form body")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, oauthError(errInvalidRequest, fmt.Sprintf("parameter %.40q is repeated", k))
		}
	}
	return r.PostForm, nil
}
