package awsjson

import (
	"net/http"
	"slices"
	"strings"
)

// CORS for the endpoints browser apps call with fetch or XHR: the Cognito
// IdP and Cognito Identity JSON APIs, STS, and the OAuth 2.0 / OIDC
// endpoints (discovery, JWKS, token, userInfo, revoke, introspect), as AWS
// answers them for the AWS SDK for JavaScript and Amplify. Every one of
// them authenticates with a token or a signature in the request's headers
// or body, never with a cookie, so any origin may call them and read the
// answer (Access-Control-Allow-Origin: *), and credentialed requests are
// never allowed (no Access-Control-Allow-Credentials: a browser sends no
// cookie with such a request, and refuses the answer to one that carried
// them). The hosted pages, which rely on the browser's cookies, must not
// be behind it.
//
// The headers are the same whatever the request's origin, so they are set
// on every answer (no Vary: Origin, and a cached JWKS or discovery
// document serves every origin).
//
// The AWS APIs (CORSUnsigned) allow unsigned calls only — those a browser
// app makes (Cognito user operations, GetId, GetCredentialsForIdentity,
// AssumeRoleWithWebIdentity): a SigV4-signed request gets no CORS headers
// and a preflight does not allow Authorization or X-Amz-Security-Token.
// Otherwise a page holding leaked access keys limited by aws:SourceIp
// could have a visitor's browser, inside that network, send its signed
// calls and read the answers.
const (
	// corsExposeHeaders are the response headers scripts may read besides
	// the CORS-safelisted ones: the request ids and error type the AWS SDK
	// reads, Date (its clock-skew correction) and the challenge of a
	// refused token.
	corsExposeHeaders = "x-amzn-RequestId, x-amzn-ErrorType, x-amz-request-id, Date, WWW-Authenticate, X-Request-Id"
	// corsAllowHeaders are the request headers a preflight allows when it
	// names none, or names one that is not a field name: what the AWS SDK
	// for JavaScript v3 and Amplify send.
	corsAllowHeaders = "content-type, x-amz-target, x-amz-user-agent, amz-sdk-invocation-id, amz-sdk-request, " +
		"authorization, x-amz-date, x-amz-security-token, x-amz-content-sha256, cache-control"
	// corsAllowUnsigned is corsAllowHeaders for CORSUnsigned.
	corsAllowUnsigned = "content-type, x-amz-target, x-amz-user-agent, amz-sdk-invocation-id, amz-sdk-request, " +
		"x-amz-date, x-amz-content-sha256, cache-control"
	// corsMaxAge is how long a browser may keep a preflight's answer
	// (seconds): Chromium's upper bound.
	corsMaxAge = "7200"
	// maxRequestHeaders bounds the Access-Control-Request-Headers echoed.
	maxRequestHeaders = 64
)

// CORS returns next behind the CORS policy above, for an endpoint that
// takes methods (e.g. "POST"). Every answer, refusals and errors included,
// carries Access-Control-Allow-Origin: * and Access-Control-Expose-Headers,
// so that a script reads a 400 or 401 as it reads a 200. OPTIONS never
// reaches next: a preflight (with Origin and Access-Control-Request-Method)
// gets 204 with Access-Control-Allow-Methods, Access-Control-Allow-Headers
// and Access-Control-Max-Age, any other OPTIONS 204 with Allow.
func CORS(next http.Handler, methods ...string) http.Handler { return cors(next, false, methods) }

// CORSUnsigned is CORS for unsigned calls only (see above): an AWS API's.
func CORSUnsigned(next http.Handler, methods ...string) http.Handler {
	return cors(next, true, methods)
}

func cors(next http.Handler, unsignedOnly bool, methods []string) http.Handler {
	methods = slices.Clone(methods)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if serveCORS(w, r, methods, unsignedOnly) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// signed reports whether r carries a SigV4 signature (header or query).
func signed(r *http.Request) bool {
	if strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-") {
		return true
	}
	q := r.URL.Query()
	return q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential")
}

// HandleCORS registers handler on mux for path with each of methods (GET
// also serves HEAD), behind CORS; every other method of path gets the same
// CORS headers too: OPTIONS its answer, the rest 405 with Allow.
func HandleCORS(mux *http.ServeMux, path string, handler http.Handler, methods ...string) {
	h := CORS(handler, methods...)
	for _, m := range methods {
		mux.Handle(m+" "+path, h)
	}
	mux.Handle(path, CORS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow(methods))
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	}), methods...))
}

// serveCORS sets the CORS headers of every answer (but a signed request's
// when unsignedOnly) and answers OPTIONS, reporting whether it did.
func serveCORS(w http.ResponseWriter, r *http.Request, methods []string, unsignedOnly bool) bool {
	h := w.Header()
	if r.Method != http.MethodOptions {
		if !unsignedOnly || !signed(r) {
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		return false
	}
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Allow", allow(methods))
	if r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
		h.Set("Access-Control-Allow-Headers", allowHeaders(r.Header.Values("Access-Control-Request-Headers"), unsignedOnly))
		h.Set("Access-Control-Max-Age", corsMaxAge)
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

// allow is the Allow header of an endpoint taking methods.
func allow(methods []string) string {
	all := slices.Clone(methods)
	if slices.Contains(all, http.MethodGet) && !slices.Contains(all, http.MethodHead) {
		all = append(all, http.MethodHead)
	}
	return strings.Join(append(all, http.MethodOptions), ", ")
}

// allowHeaders answers a preflight's Access-Control-Request-Headers: the
// names it asks for when every one is a field name (RFC 9110 §5.1: a
// token), else the headers the AWS SDK sends. Allowing any header is safe
// here: these endpoints read no ambient credential a header could unlock.
func allowHeaders(requested []string, unsignedOnly bool) string {
	fallback := corsAllowHeaders
	if unsignedOnly {
		fallback = corsAllowUnsigned
	}
	var names []string
	for _, v := range requested {
		for n := range strings.SplitSeq(v, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if !isToken(n) || len(names) == maxRequestHeaders {
				return fallback
			}
			n = strings.ToLower(n)
			if unsignedOnly && (n == "authorization" || n == "x-amz-security-token") {
				continue // a signed call: not allowed (see above)
			}
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return fallback
	}
	return strings.Join(names, ", ")
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
