// Package identity serves identity pools (the Cognito Identity JSON API:
// GetId, GetCredentialsForIdentity, GetOpenIdToken) and STS
// (AssumeRoleWithWebIdentity, query protocol with XML answers) on one
// listener. Web-identity tokens are verified offline through their issuer's
// JWKS; credentials are sealed by the sts package.
package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/awsjson"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/iam"
	"github.com/writ-id/writ/internal/jwks"
	"github.com/writ-id/writ/internal/keys"
	"github.com/writ-id/writ/internal/sigv4"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/sts"
	"github.com/writ-id/writ/internal/token"
)

// CognitoProvider is the Federated principal and condition-key prefix of
// identity-pool OpenID tokens.
const CognitoProvider = "cognito-identity.amazonaws.com"

// KeyPool names the signing keys of the identity pools' OpenID tokens.
const KeyPool = "cognito-identity"

const keyPool = KeyPool

// Options are what the component needs besides its configuration.
type Options struct {
	// IDPURL is the idp's public URL (user-pool issuers hang off it).
	IDPURL string
	// PublicURL is this listener's public URL: the OpenID tokens' issuer.
	PublicURL string
	Store     store.Identities
	Keys      *keys.Manager
	STS       *sts.Service
	Audit     audit.Recorder
	Log       *slog.Logger
	Now       func() time.Time
	Client    *http.Client
}

// Handler serves the identity listener.
type Handler struct {
	cfg       *config.Config
	opts      Options
	issuer    string
	verifiers map[string]*token.CachingVerifier // issuer -> verifier
	own       *token.CachingVerifier
	cognito   http.Handler
	sts       http.Handler // serveSTS behind CORS
	sigv4     *sigv4.Verifier
	mux       *http.ServeMux
	stop      context.CancelFunc

	// logins caches identity id -> (pool, login key): an identity's login
	// never changes once stored, so every replica may keep it.
	loginsMu sync.RWMutex
	logins   map[string][2]string
}

// maxCachedLogins bounds the identity cache (it is cleared when full).
const maxCachedLogins = 100_000

// identityLogin is Store.IdentityLogin through the identity cache.
func (h *Handler) identityLogin(ctx context.Context, identityID string) (poolID, key string, err error) {
	h.loginsMu.RLock()
	v, ok := h.logins[identityID]
	h.loginsMu.RUnlock()
	if ok {
		return v[0], v[1], nil
	}
	poolID, key, err = h.opts.Store.IdentityLogin(ctx, identityID)
	if err != nil {
		return "", "", err
	}
	h.loginsMu.Lock()
	if h.logins == nil || len(h.logins) >= maxCachedLogins {
		h.logins = map[string][2]string{}
	}
	h.logins[identityID] = [2]string{poolID, key}
	h.loginsMu.Unlock()
	return poolID, key, nil
}

// New builds the handler and makes sure the OpenID signing key exists.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Handler, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if err := opts.Keys.Ensure(ctx, keyPool, keys.ES256); err != nil {
		return nil, err
	}
	bg, stop := context.WithCancel(context.Background())
	h := &Handler{cfg: cfg, opts: opts, issuer: strings.TrimRight(opts.PublicURL, "/"), verifiers: map[string]*token.CachingVerifier{}, stop: stop}
	// Verified tokens are cached (by hash, never past exp, nor once their
	// key is withdrawn): SDKs present the same token for every refresh of
	// their credentials.
	h.own = token.NewCachingVerifier(token.Verifier{Issuer: h.issuer, Keys: opts.Keys.Pool(keyPool), Now: opts.Now, Skew: 30 * time.Second}, 0)
	add := func(iss string) {
		iss = strings.TrimRight(iss, "/")
		if _, ok := h.verifiers[iss]; ok || iss == h.issuer {
			return
		}
		r := jwks.New(iss, jwks.Options{Client: opts.Client, Now: opts.Now})
		r.Start(bg)
		h.verifiers[iss] = token.NewCachingVerifier(token.Verifier{Issuer: iss, Keys: r, Now: opts.Now, Skew: 30 * time.Second}, 0)
	}
	for _, ip := range cfg.IdentityPools {
		for _, p := range ip.Providers {
			add(strings.TrimRight(opts.IDPURL, "/") + "/" + p.UserPool)
		}
	}
	for _, p := range cfg.IAM.OIDCProviders {
		add(p.URL)
	}
	h.cognito = &awsjson.Service{Prefix: "AWSCognitoIdentityService", Log: opts.Log, Ops: map[string]awsjson.Op{
		"GetId": h.getID, "GetCredentialsForIdentity": h.getCredentials, "GetOpenIdToken": h.getOpenIDToken}}
	h.sigv4 = &sigv4.Verifier{Service: "sts", Regions: []string{cfg.Region}, Source: sts.Source{STS: opts.STS, Users: cfg.IAM.Users}, Now: opts.Now,
		DefaultPresignExpiry: 15 * time.Minute}
	// Browser apps (Amplify) call both APIs: CORS, as awsjson serves it.
	h.sts = awsjson.CORSUnsigned(http.HandlerFunc(h.serveSTS), http.MethodGet, http.MethodPost)
	h.mux = http.NewServeMux()
	awsjson.HandleCORS(h.mux, "/.well-known/openid-configuration", http.HandlerFunc(h.discovery), http.MethodGet)
	awsjson.HandleCORS(h.mux, "/.well-known/jwks.json", http.HandlerFunc(h.jwks), http.MethodGet)
	return h, nil
}

// Close stops background key refreshes.
func (h *Handler) Close() { h.stop() }

// ServeHTTP dispatches: Cognito Identity by X-Amz-Target, STS by Action,
// and the OpenID issuer's discovery documents. OPTIONS / (a browser's
// preflight, which names neither) is answered for both APIs.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/" && r.Header.Get("X-Amz-Target") != "":
		h.cognito.ServeHTTP(w, r)
	case r.URL.Path == "/" && (r.Method == http.MethodPost || r.Method == http.MethodOptions || r.URL.Query().Get("Action") != ""):
		h.sts.ServeHTTP(w, r)
	default:
		h.mux.ServeHTTP(w, r)
	}
}

func (h *Handler) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"issuer": h.issuer, "jwks_uri": h.issuer + "/.well-known/jwks.json",
		"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{keys.ES256}})
}

func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) {
	set, err := h.opts.Keys.JWKS(r.Context(), keyPool)
	if err != nil {
		http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(h.opts.Keys.JWKSMaxAge().Seconds())))
	writeJSON(w, set)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// login is a verified entry of a Logins map.
type login struct {
	key      string // the Logins key as the client sent it
	provider string // issuer without scheme
	issuer   string
	claims   *token.Claims
	pool     *config.IdentityProvider
}

// providerKey is an issuer without its scheme, as Logins and condition keys
// name providers.
func providerKey(issuer string) string {
	return strings.TrimPrefix(strings.TrimPrefix(issuer, "https://"), "http://")
}

func notAuthorized(msg string) *awsjson.Error { return awsjson.Errorf("NotAuthorizedException", msg) }

// identity is the store's login key of the identity l names: one per
// provider and subject.
func (l *login) identity() string { return l.provider + "|" + l.claims.Subject }

// errLoginsMismatch is Cognito's answer to logins that do not name the
// identity (or one identity).
func errLoginsMismatch() error {
	return notAuthorized("Logins don't match. Please include at least one valid login for this identity or identity pool.")
}

// verifyLogins checks every token of a Logins map against the pool's
// providers: all must verify, or the call fails. They are taken in the
// order of their keys, so the answer never depends on map order, and they
// must all name one identity (the same provider and subject: two names of
// one provider with tokens of the same user are one login); logins of
// different users are refused rather than one of them picked.
func (h *Handler) verifyLogins(ctx context.Context, pool *config.IdentityPool, logins map[string]string) ([]login, error) {
	if len(logins) > 10 {
		return nil, awsjson.Errorf("InvalidParameterException", "Too many logins")
	}
	var out []login
	for _, key := range slices.Sorted(maps.Keys(logins)) {
		raw := logins[key]
		var prov *config.IdentityProvider
		var issuer string
		for i := range pool.Providers {
			p := &pool.Providers[i]
			iss := strings.TrimRight(h.opts.IDPURL, "/") + "/" + p.UserPool
			aws := "cognito-idp." + h.cfg.Region + ".amazonaws.com/" + p.UserPool
			if key == providerKey(iss) || key == aws || key == iss {
				prov, issuer = p, iss
				break
			}
		}
		if prov == nil {
			return nil, notAuthorized("Invalid login token. Issuer is not a provider of this identity pool: " + truncate(key, 100))
		}
		v := h.verifiers[issuer]
		c, err := v.Verify(ctx, raw)
		if err != nil {
			return nil, &awsjson.Error{Status: 400, Code: "NotAuthorizedException", Message: "Invalid login token. " + describe(err), Cause: err}
		}
		aud := c.ClientID
		if len(c.Audience) > 0 && c.TokenUse == token.UseID {
			aud = c.Audience[0]
		}
		ok := false
		for _, id := range prov.ClientIDs {
			ok = ok || id == aud
		}
		if !ok {
			return nil, notAuthorized("Invalid login token. Incorrect token audience.")
		}
		out = append(out, login{key: key, provider: providerKey(issuer), issuer: issuer, claims: c, pool: prov})
	}
	for i := range out {
		if out[i].identity() != out[0].identity() {
			return nil, errLoginsMismatch()
		}
	}
	return out, nil
}

func describe(err error) string {
	switch {
	case errors.Is(err, token.ErrExpired):
		return "Token expired."
	case errors.Is(err, token.ErrIssuer):
		return "Issuer mismatch."
	}
	return "Token is not valid."
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// idRE is the form of identity pool and identity ids (<region>:<uuid>).
var idRE = regexp.MustCompile(`^[\w-]+:[0-9a-f-]+$`)

// validID refuses an id that is not of the form AWS's API model requires,
// as the service does before looking it up.
func validID(name, id string) error {
	if len(id) < 1 || len(id) > 55 || !idRE.MatchString(id) {
		return awsjson.Errorf("InvalidParameterException", "1 validation error detected: Value at '"+name+
			"' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w-]+:[0-9a-f-]+")
	}
	return nil
}

func (h *Handler) pool(id string) (*config.IdentityPool, error) {
	if err := validID("identityPoolId", id); err != nil {
		return nil, err
	}
	for i := range h.cfg.IdentityPools {
		if h.cfg.IdentityPools[i].ID == id {
			return &h.cfg.IdentityPools[i], nil
		}
	}
	return nil, awsjson.Errorf("ResourceNotFoundException", "IdentityPool '"+truncate(id, 60)+"' not found.")
}

func (h *Handler) getID(ctx context.Context, r *http.Request, body []byte) (any, error) {
	var in struct {
		IdentityPoolId string
		AccountId      string
		Logins         map[string]string
	}
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	pool, err := h.pool(in.IdentityPoolId)
	if err != nil {
		return nil, err
	}
	id, err := h.identityFor(ctx, pool, in.Logins)
	if err != nil {
		return nil, err
	}
	return map[string]string{"IdentityId": id}, nil
}

// identityFor verifies the logins and returns (creating) their identity.
func (h *Handler) identityFor(ctx context.Context, pool *config.IdentityPool, logins map[string]string) (string, error) {
	ls, err := h.verifyLogins(ctx, pool, logins)
	if err != nil {
		h.record(ctx, "GetId", pool.ID, "", err)
		return "", err
	}
	key := "unauthenticated|" + uuid.NewString()
	if len(ls) == 0 {
		if !pool.AllowUnauthenticated {
			return "", notAuthorized("Unauthenticated access is not supported for this identity pool.")
		}
	} else {
		key = ls[0].identity() // every login names it (verifyLogins)
	}
	id, _, err := h.opts.Store.GetOrCreateIdentity(ctx, pool.ID, key, h.cfg.Region+":"+uuid.NewString(), h.opts.Now())
	if err != nil {
		return "", err
	}
	return id, nil
}

// resolve checks that the logins belong to the identity, and returns the
// (single) verified login, if any.
func (h *Handler) resolve(ctx context.Context, identityID string, logins map[string]string) (*config.IdentityPool, *login, error) {
	if err := validID("identityId", identityID); err != nil {
		return nil, nil, err
	}
	poolID, key, err := h.identityLogin(ctx, identityID)
	if err != nil {
		return nil, nil, awsjson.Errorf("ResourceNotFoundException", "Identity '"+truncate(identityID, 60)+"' not found.")
	}
	pool, err := h.pool(poolID)
	if err != nil {
		return nil, nil, err
	}
	ls, err := h.verifyLogins(ctx, pool, logins)
	if err != nil {
		return nil, nil, err
	}
	if len(ls) == 0 {
		if !strings.HasPrefix(key, "unauthenticated|") {
			return nil, nil, errLoginsMismatch()
		}
		if !pool.AllowUnauthenticated {
			return nil, nil, notAuthorized("Unauthenticated access is not supported for this identity pool.")
		}
		return pool, nil, nil
	}
	if key != ls[0].identity() { // every login names the same (verifyLogins)
		return nil, nil, errLoginsMismatch()
	}
	return pool, &ls[0], nil
}

func (h *Handler) getOpenIDToken(ctx context.Context, r *http.Request, body []byte) (any, error) {
	var in struct {
		IdentityId string
		Logins     map[string]string
	}
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	pool, l, err := h.resolve(ctx, in.IdentityId, in.Logins)
	if err != nil {
		return nil, err
	}
	if !pool.AllowClassicFlow {
		return nil, awsjson.Errorf("InvalidParameterException", "Basic (classic) flow is not enabled, please use enhanced flow.")
	}
	key, err := h.opts.Keys.Signer(ctx, keyPool)
	if err != nil {
		return nil, err
	}
	now := h.opts.Now()
	amr := []string{"unauthenticated"}
	if l != nil {
		amr = []string{"authenticated", l.provider, l.provider + ":" + l.claims.Subject}
	}
	tok, err := token.Mint(key, map[string]any{"iss": h.issuer, "sub": in.IdentityId, "aud": pool.ID, "amr": amr,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": uuid.NewString()})
	if err != nil {
		return nil, err
	}
	return map[string]string{"IdentityId": in.IdentityId, "Token": tok}, nil
}

func (h *Handler) getCredentials(ctx context.Context, r *http.Request, body []byte) (any, error) {
	var in struct {
		IdentityId    string
		Logins        map[string]string
		CustomRoleArn string
	}
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	pool, l, err := h.resolve(ctx, in.IdentityId, in.Logins)
	if err != nil {
		return nil, err
	}
	roleName, why, err := h.chooseRole(pool, l, in.CustomRoleArn)
	if err != nil {
		h.record(ctx, "GetCredentialsForIdentity", pool.ID, in.IdentityId, err)
		return nil, err
	}
	role, ok := h.opts.STS.Role(roleName)
	if !ok {
		return nil, awsjson.Errorf("InvalidIdentityPoolConfigurationException", "Invalid identity pool configuration. Check assigned IAM roles for this pool.")
	}
	amr := []string{"unauthenticated"}
	sub := in.IdentityId
	var tags map[string]string
	if l != nil {
		amr = []string{"authenticated", l.provider, l.provider + ":" + l.claims.Subject}
		tags = map[string]string{}
		for tag, claim := range pool.PrincipalTags {
			if v, ok := l.claims.Raw[claim].(string); ok {
				tags[tag] = v
			}
		}
	}
	ctxKeys := iam.MapContext{}
	ctxKeys.Set(CognitoProvider+":aud", pool.ID)
	ctxKeys.Set(CognitoProvider+":sub", in.IdentityId)
	ctxKeys.Set(CognitoProvider+":amr", amr...)
	ctxKeys.Set("aws:SourceIp", awsjson.SourceIP(r))
	d := iam.Authorize(&iam.Request{Action: "sts:AssumeRoleWithWebIdentity", Principal: &iam.Principal{Type: "Federated", ID: CognitoProvider},
		Context: ctxKeys}, iam.Set{Name: "trust", Policies: []*iam.Policy{role.Trust}})
	if d.Effect != iam.Allow {
		// The caller is told what Cognito tells it; the policy's reasons
		// are for the operator (the audit trail and the log), not for it.
		err := &awsjson.Error{Status: 400, Code: "InvalidIdentityPoolConfigurationException",
			Message: "Invalid identity pool configuration. Check assigned IAM roles for this pool.", Cause: errors.New("trust policy: " + d.Reason)}
		h.record(ctx, "GetCredentialsForIdentity", pool.ID, in.IdentityId, errors.New("the role's trust policy does not allow this identity: "+d.Reason))
		return nil, err
	}
	creds, err := h.opts.STS.Issue(sts.Session{Role: role.Name, SessionName: "CognitoIdentityCredentials", Subject: sub,
		IdentityID: in.IdentityId, Provider: CognitoProvider, Audience: pool.ID, AMR: amr, Tags: tags,
		Expires: h.opts.Now().Add(time.Hour)})
	if err != nil {
		return nil, err
	}
	h.opts.Audit.Record(ctx, audit.Event{Component: "identity", Action: "GetCredentialsForIdentity", Outcome: audit.Allow,
		Reason: "role " + role.Name + " (" + why + "); trust: " + d.Reason, IdentityID: in.IdentityId, Role: role.Name, Sub: subOf(l)})
	return map[string]any{"IdentityId": in.IdentityId, "Credentials": map[string]any{"AccessKeyId": creds.AccessKeyID,
		"SecretKey": creds.SecretAccessKey, "SessionToken": creds.SessionToken, "Expiration": creds.Expires.Unix()}}, nil
}

// VerifyStats sums the handler's token verifications by result and its
// verified-token cache hits and misses.
func (h *Handler) VerifyStats() token.VerifyStats {
	s := h.own.Stats()
	for _, v := range h.verifiers {
		s.Add(v.Stats())
	}
	return s
}

func subOf(l *login) string {
	if l == nil {
		return ""
	}
	return l.claims.Subject
}

// chooseRole applies the pool's role resolution.
func (h *Handler) chooseRole(pool *config.IdentityPool, l *login, custom string) (string, string, error) {
	if l == nil {
		if pool.UnauthenticatedRole == "" {
			return "", "", awsjson.Errorf("InvalidIdentityPoolConfigurationException", "No unauthenticated role is configured.")
		}
		return pool.UnauthenticatedRole, "unauthenticated role", nil
	}
	ambiguous := func(why string) (string, string, error) {
		if l.pool.Ambiguous == "deny" {
			return "", "", notAuthorized("Ambiguous role mapping rules for: " + l.key)
		}
		return pool.AuthenticatedRole, why + "; the authenticated role", nil
	}
	switch l.pool.RoleResolution {
	case "token":
		// A CustomRoleArn must be one of the token's cognito:roles; without
		// one, cognito:preferred_role decides.
		if custom != "" {
			roles, _ := l.claims.Raw["cognito:roles"].([]any)
			for _, x := range roles {
				if s, _ := x.(string); s == custom {
					if r, ok := h.opts.STS.Role(s); ok {
						return r.Name, "CustomRoleArn among cognito:roles", nil
					}
				}
			}
			return "", "", notAuthorized("CustomRoleArn is not among the roles the token names")
		}
		if pr, ok := l.claims.Raw["cognito:preferred_role"].(string); ok {
			if r, ok := h.opts.STS.Role(pr); ok {
				return r.Name, "cognito:preferred_role", nil
			}
		}
		return ambiguous("no usable role in the token")
	case "rules":
		for _, rule := range l.pool.Rules {
			raw, present := l.claims.Raw[rule.Claim]
			if !present {
				continue // a rule's claim must be in the token, whatever the match
			}
			v := fmt.Sprint(raw)
			var m bool
			switch rule.Match {
			case "Equals":
				m = v == rule.Value
			case "Contains":
				m = strings.Contains(v, rule.Value)
			case "StartsWith":
				m = strings.HasPrefix(v, rule.Value)
			case "NotEqual":
				m = v != rule.Value
			}
			if m {
				return rule.Role, "rule " + rule.Claim + " " + rule.Match + " " + rule.Value, nil
			}
		}
		return ambiguous("no rule matched")
	}
	return pool.AuthenticatedRole, "authenticated role", nil
}

func (h *Handler) record(ctx context.Context, action, pool, identityID string, err error) {
	if h.opts.Audit == nil {
		return
	}
	e := audit.Event{Component: "identity", Action: action, Outcome: audit.Deny, IdentityID: identityID, Resource: pool}
	if err != nil {
		e.Reason = err.Error()
	}
	h.opts.Audit.Record(ctx, e)
}

func sourceIP(r *http.Request) string { return awsjson.SourceIP(r) }
