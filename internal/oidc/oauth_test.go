package oidc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/token"
	"github.com/writ-id/writ/internal/userpool"
)

const poolID = "us-east-1_WritDemo1"

type fx struct {
	*apptest.Env
	t   testing.TB
	iss string
	ctx context.Context
}

func start(t *testing.T, opts ...apptest.Option) *fx {
	env := apptest.Start(t, opts...)
	return &fx{Env: env, t: t, iss: env.App.URL(app.IDP) + "/" + poolID, ctx: context.Background()}
}

// alice signs in with the AWS SDK (password + TOTP) and returns her tokens.
func (f *fx) alice() *types.AuthenticationResultType {
	f.t.Helper()
	c := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.IDP)), Credentials: aws.AnonymousCredentials{}})
	out, err := c.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"USERNAME": "alice", "PASSWORD": "Alice-Passw0rd"}})
	if err != nil {
		f.t.Fatal(err)
	}
	code, _ := userpool.TOTPNow("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", f.Clock.Now())
	r, err := c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"), ChallengeName: out.ChallengeName,
		Session: out.Session, ChallengeResponses: map[string]string{"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": code}})
	if err != nil {
		f.t.Fatal(err)
	}
	f.Clock.Advance(30 * time.Second)
	return r.AuthenticationResult
}

// post sends a form to an endpoint with optional basic auth and returns
// status, decoded JSON and headers.
func (f *fx) post(path string, form url.Values, user, pass string) (int, map[string]any, http.Header) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.iss+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m, resp.Header
}

// userInfo calls /oauth2/userInfo with the given Authorization header
// (none when empty) and returns the status, the WWW-Authenticate challenge
// and the decoded body.
func (f *fx) userInfo(authorization string) (int, string, map[string]any) {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.iss+"/oauth2/userInfo", nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), m
}

func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.40q", tok)
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func TestDiscoveryAdvertisesEndpoints(t *testing.T) {
	f := start(t)
	prov, err := oidc.NewProvider(f.ctx, f.iss)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	prov.Claims(&d)
	if prov.Endpoint().TokenURL != f.iss+"/oauth2/token" || d["userinfo_endpoint"] != f.iss+"/oauth2/userInfo" ||
		d["revocation_endpoint"] != f.iss+"/oauth2/revoke" || d["introspection_endpoint"] != f.iss+"/oauth2/introspect" {
		t.Fatalf("discovery: %v", d)
	}
	if prov.Endpoint().AuthURL != f.iss+"/oauth2/authorize" || d["end_session_endpoint"] != f.iss+"/logout" ||
		d["jwks_uri"] != f.iss+"/.well-known/jwks.json" || d["issuer"] != f.iss {
		t.Fatalf("discovery: %v", d)
	}
	if pkce, _ := json.Marshal(d["code_challenge_methods_supported"]); string(pkce) != `["S256"]` {
		t.Errorf("code_challenge_methods_supported = %s, want only S256", pkce)
	}
	if algs, _ := json.Marshal(d["id_token_signing_alg_values_supported"]); string(algs) != `["ES256"]` {
		t.Errorf("id_token_signing_alg_values_supported = %s, want the pool's ES256", algs)
	}
	gts, _ := json.Marshal(d["grant_types_supported"])
	ams, _ := json.Marshal(d["token_endpoint_auth_methods_supported"])
	for _, want := range []string{`"authorization_code"`, "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"} {
		if !strings.Contains(string(gts), want) {
			t.Errorf("grant_types_supported lacks %s", want)
		}
	}
	for _, want := range []string{"client_secret_basic", "client_secret_post", "private_key_jwt"} {
		if !strings.Contains(string(ams), want) {
			t.Errorf("token_endpoint_auth_methods_supported lacks %s", want)
		}
	}
}

func TestDiscoveryFollowsThePoolAlgorithm(t *testing.T) {
	f := start(t, func(c *config.Config) { c.UserPools[0].SigningAlg = "EdDSA" })
	// RFC 8414 clients read the same document at the OAuth well-known path.
	resp, err := http.Get(f.iss + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	json.NewDecoder(resp.Body).Decode(&d)
	if algs, _ := json.Marshal(d["id_token_signing_alg_values_supported"]); string(algs) != `["EdDSA"]` || d["token_endpoint"] != f.iss+"/oauth2/token" {
		t.Fatalf("metadata: algs %s, token_endpoint %v", algs, d["token_endpoint"])
	}
	// RFC 8414 §3.1 puts the well-known segment before the issuer's path:
	// the same document is there.
	resp, err = http.Get(f.App.URL(app.IDP) + "/.well-known/oauth-authorization-server/" + poolID)
	if err != nil {
		t.Fatal(err)
	}
	var d2 map[string]any
	json.NewDecoder(resp.Body).Decode(&d2)
	resp.Body.Close()
	if a, b := fmt.Sprint(d), fmt.Sprint(d2); resp.StatusCode != 200 || a != b {
		t.Fatalf("metadata at the RFC 8414 location: %d\n%s\nwant\n%s", resp.StatusCode, b, a)
	}
	for _, u := range []string{"/us-east-1_Nope/.well-known/openid-configuration", "/.well-known/oauth-authorization-server/us-east-1_Nope"} {
		resp, _ = http.Get(f.App.URL(app.IDP) + u)
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("unknown pool at %s: %d", u, resp.StatusCode)
		}
	}
}

func TestClientCredentials(t *testing.T) {
	f := start(t)
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cc := clientcredentials.Config{ClientID: "orders-service", ClientSecret: "orders-demo-secret", TokenURL: f.iss + "/oauth2/token", AuthStyle: style}
		tok, err := cc.Token(f.ctx)
		if err != nil {
			t.Fatalf("style %v: %v", style, err)
		}
		if tok.RefreshToken != "" || tok.TokenType != "Bearer" {
			t.Errorf("refresh token %q type %q", tok.RefreshToken, tok.TokenType)
		}
		c := claims(t, tok.AccessToken)
		if c["sub"] != "orders-service" || c["client_id"] != "orders-service" || c["scope"] != "https://api.demo.local/files.read" || c["token_use"] != "access" {
			t.Errorf("claims %v", c)
		}
		// The token verifies with go-oidc through the JWKS, but never as
		// an ID token of the client (it has no aud, as Cognito's).
		prov, _ := oidc.NewProvider(f.ctx, f.iss)
		if _, err := prov.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(f.ctx, tok.AccessToken); err != nil {
			t.Errorf("verify: %v", err)
		}
		if _, err := prov.Verifier(&oidc.Config{ClientID: "orders-service"}).Verify(f.ctx, tok.AccessToken); err == nil {
			t.Error("the access token passes as orders-service's ID token")
		}
	}
	// Explicit allowed scope; a scope the client may not have.
	cc := clientcredentials.Config{ClientID: "orders-service", ClientSecret: "orders-demo-secret", TokenURL: f.iss + "/oauth2/token",
		Scopes: []string{"https://api.demo.local/orders.write"}}
	_, err := cc.Token(f.ctx)
	wantOAuth(t, err, "invalid_scope")
	// Wrong secret: 401 invalid_client with WWW-Authenticate.
	status, body, h := f.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "orders-service", "wrong")
	if status != 401 || body["error"] != "invalid_client" || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("wrong secret: %d %v %q", status, body, h.Get("WWW-Authenticate"))
	}
	// A grant the client may not use.
	status, body, _ = f.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "files-service", "files-demo-secret")
	if status != 200 {
		t.Fatalf("files-service client_credentials: %d %v", status, body)
	}
	status, body, _ = f.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"demo-web"}}, "", "")
	if status != 400 || body["error"] != "unauthorized_client" {
		t.Fatalf("public client: %d %v", status, body)
	}
	status, body, _ = f.post("/oauth2/token", url.Values{"grant_type": {"password"}}, "orders-service", "orders-demo-secret")
	if status != 400 || body["error"] != "unsupported_grant_type" {
		t.Fatalf("password grant: %d %v", status, body)
	}
	// A missing grant_type is a malformed request (RFC 6749 §5.2).
	status, body, _ = f.post("/oauth2/token", url.Values{"scope": {"https://api.demo.local/files.read"}}, "orders-service", "orders-demo-secret")
	if status != 400 || body["error"] != "invalid_request" {
		t.Fatalf("no grant_type: %d %v", status, body)
	}
	status, body, _ = f.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "nobody", "x")
	if status != 401 || body["error"] != "invalid_client" {
		t.Fatalf("unknown client: %d %v", status, body)
	}
}

func wantOAuth(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

func TestPrivateKeyJWT(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	f := start(t, func(c *config.Config) {
		c.UserPools[0].Clients = append(c.UserPools[0].Clients, config.Client{ClientID: "jwt-client", Flows: []string{"client_credentials"},
			Scopes: []string{"https://api.demo.local/orders.read"}, JWKS: string(set)})
	})
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: "k1"}}, nil)
	assertion := func(jti string, aud string, exp time.Time) string {
		s, _ := jwt.Signed(signer).Claims(jwt.Claims{Issuer: "jwt-client", Subject: "jwt-client", Audience: jwt.Audience{aud},
			ID: jti, Expiry: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(time.Now())}).Serialize()
		return s
	}
	form := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	}
	a := assertion("j1", f.iss+"/oauth2/token", time.Now().Add(time.Minute))
	status, body, _ := f.post("/oauth2/token", form(a), "", "")
	if status != 200 || claims(t, body["access_token"].(string))["sub"] != "jwt-client" {
		t.Fatalf("private_key_jwt: %d %v", status, body)
	}
	// Replayed assertion, wrong audience, expired, signed by another key.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	os, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: other, KeyID: "k1"}}, nil)
	forged, _ := jwt.Signed(os).Claims(jwt.Claims{Issuer: "jwt-client", Subject: "jwt-client", Audience: jwt.Audience{f.iss}, ID: "j9", Expiry: jwt.NewNumericDate(time.Now().Add(time.Minute))}).Serialize()
	for name, bad := range map[string]string{
		"replayed":  a,
		"wrong aud": assertion("j2", "https://elsewhere/token", time.Now().Add(time.Minute)),
		"expired":   assertion("j3", f.iss, time.Now().Add(-time.Hour)),
		"forged":    forged,
		"not a JWT": "abc",
	} {
		status, body, _ := f.post("/oauth2/token", form(bad), "", "")
		if status != 401 || body["error"] != "invalid_client" {
			t.Errorf("%s: %d %v", name, status, body)
		}
	}
}

func TestRefreshWithXOAuth2(t *testing.T) {
	f := start(t)
	ar := f.alice()
	conf := oauth2.Config{ClientID: "demo-web", Endpoint: oauth2.Endpoint{TokenURL: f.iss + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	ts := conf.TokenSource(f.ctx, &oauth2.Token{RefreshToken: aws.ToString(ar.RefreshToken), Expiry: time.Now().Add(-time.Minute)})
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.RefreshToken == aws.ToString(ar.RefreshToken) || tok.Extra("id_token") == nil {
		t.Fatalf("refresh: rotated %v, id_token %v", tok.RefreshToken != aws.ToString(ar.RefreshToken), tok.Extra("id_token") != nil)
	}
	// A retry whose response was lost, inside the grace period and before
	// the successor is used, gets the same tokens back.
	f.Clock.Advance(10 * time.Second)
	retry, err := conf.TokenSource(f.ctx, &oauth2.Token{RefreshToken: aws.ToString(ar.RefreshToken)}).Token()
	if err != nil || retry.RefreshToken != tok.RefreshToken || retry.AccessToken != tok.AccessToken {
		t.Fatalf("retry in grace: err %v, same refresh token %v", err, err == nil && retry.RefreshToken == tok.RefreshToken)
	}
	// Once the successor is used, the old token is never in grace: it
	// revokes the whole family, the newest token included.
	tok2, err := conf.TokenSource(f.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if status, _, _ := f.userInfo("Bearer " + tok2.AccessToken); status != 200 {
		t.Fatalf("userInfo before the reuse: %d", status)
	}
	_, err = conf.TokenSource(f.ctx, &oauth2.Token{RefreshToken: aws.ToString(ar.RefreshToken)}).Token()
	wantOAuth(t, err, "invalid_grant")
	_, err = conf.TokenSource(f.ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
	wantOAuth(t, err, "invalid_grant")
	// The reuse revokes the sign-in's access tokens as well.
	for name, at := range map[string]string{"first": aws.ToString(ar.AccessToken), "newest": tok2.AccessToken} {
		if status, challenge, _ := f.userInfo("Bearer " + at); status != 401 || !strings.Contains(challenge, `error="invalid_token"`) {
			t.Errorf("userInfo with the %s access token after reuse: %d %q", name, status, challenge)
		}
		if status, body, _ := f.post("/oauth2/introspect", url.Values{"token": {at}}, "orders-service", "orders-demo-secret"); status != 200 || body["active"] != false {
			t.Errorf("introspect the %s access token after reuse: %d %v", name, status, body)
		}
	}
	// Another client cannot use alice's refresh token.
	ar = f.alice()
	// orders-service lacks the refresh_token flow.
	status, body, _ := f.post("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {aws.ToString(ar.RefreshToken)}}, "orders-service", "orders-demo-secret")
	if status != 400 || body["error"] != "unauthorized_client" {
		t.Fatalf("refresh by another client: %d %v", status, body)
	}
}

func exchange(f *fx, client, secret, subject string, extra url.Values) (int, map[string]any) {
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}
	for k, v := range extra {
		form[k] = v
	}
	status, body, _ := f.post("/oauth2/token", form, client, secret)
	return status, body
}

func TestTokenExchangeChain(t *testing.T) {
	f := start(t)
	ar := f.alice()
	at := aws.ToString(ar.AccessToken)
	aliceClaims := claims(t, at)
	// Hop 1: the gateway trades alice's token for one bound to files-service.
	status, body := exchange(f, "api-gateway", "gateway-demo-secret", at, url.Values{"audience": {"files-service"}})
	if status != 200 || body["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" {
		t.Fatalf("exchange 1: %d %v", status, body)
	}
	hop1 := body["access_token"].(string)
	c1 := claims(t, hop1)
	if c1["aud"] != "files-service" || c1["sub"] != aliceClaims["sub"] || c1["auth_time"] != aliceClaims["auth_time"] {
		t.Fatalf("hop 1 claims: %v", c1)
	}
	if act, _ := json.Marshal(c1["act"]); string(act) != `{"client_id":"api-gateway","sub":"api-gateway"}` {
		t.Errorf("hop 1 act = %s", act)
	}
	if amr, _ := json.Marshal(c1["amr"]); string(amr) != `["pwd","otp","mfa"]` {
		t.Errorf("amr not carried: %s", amr)
	}
	if c1["exp"].(float64) > aliceClaims["exp"].(float64) {
		t.Error("exchanged token outlives its subject")
	}
	// Hop 2: orders-service trades that token again: the earlier actor nests inside.
	status, body = exchange(f, "orders-service", "orders-demo-secret", hop1, url.Values{"resource": {"files-service"}})
	if status != 200 {
		t.Fatalf("exchange 2: %d %v", status, body)
	}
	c2 := claims(t, body["access_token"].(string))
	if act, _ := json.Marshal(c2["act"]); string(act) != `{"act":{"client_id":"api-gateway","sub":"api-gateway"},"client_id":"orders-service","sub":"orders-service"}` {
		t.Errorf("hop 2 act = %s", act)
	}
	// Scopes only narrow (the account scope never passes: see
	// TestExchangedTokenCannotActOnTheAccount).
	ctx := context.Background()
	pool, _ := f.App.Pools.Pool(poolID)
	web, _ := f.App.Core.Store.GetClient(ctx, "demo-web")
	alice, _ := f.App.Core.Store.GetUser(ctx, poolID, "alice")
	scoped, err := pool.Issue(ctx, userpool.Grant{Client: web, User: alice, Scope: []string{"openid", "https://api.demo.local/orders.read", "aws.cognito.signin.user.admin"},
		AuthTime: f.Clock.Now(), AMR: []string{"pwd"}})
	if err != nil {
		t.Fatal(err)
	}
	status, body = exchange(f, "api-gateway", "gateway-demo-secret", scoped.AccessToken, url.Values{"audience": {"files-service"}})
	if status != 200 || body["scope"] != "openid https://api.demo.local/orders.read" {
		t.Fatalf("keeping the subject's scopes: %d %v", status, body)
	}
	status, body = exchange(f, "api-gateway", "gateway-demo-secret", scoped.AccessToken, url.Values{"audience": {"files-service"}, "scope": {"https://api.demo.local/orders.read"}})
	if status != 200 || body["scope"] != "https://api.demo.local/orders.read" {
		t.Fatalf("narrowing: %d %v", status, body)
	}
	status, body = exchange(f, "api-gateway", "gateway-demo-secret", at, url.Values{"audience": {"files-service"}, "scope": {"https://api.demo.local/orders.write"}})
	if status != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("widening: %d %v", status, body)
	}
	// The audit trail has both exchanges with their chains.
	evs := f.AuditEvents(t, store.AuditFilter{Component: "idp"})
	found := false
	for _, e := range evs {
		if e.Action == "token.exchange" && e.Outcome == "allow" && strings.Join(e.ActorChain, ">") == "orders-service>api-gateway" && e.Sub == aliceClaims["sub"] {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit event with the two-hop chain among %d exchange events", len(evs))
	}
}

func TestTokenExchangeRefusals(t *testing.T) {
	f := start(t, func(c *config.Config) { c.UserPools[0].MaxActorChain = 1 })
	ar := f.alice()
	at := aws.ToString(ar.AccessToken)
	cases := []struct {
		name, client, secret, subject string
		extra                         url.Values
		code                          string
	}{
		{"audience not allowed", "api-gateway", "gateway-demo-secret", at, url.Values{"audience": {"orders-service"}}, "invalid_target"},
		{"no audience", "api-gateway", "gateway-demo-secret", at, nil, "invalid_target"},
		{"garbage subject", "api-gateway", "gateway-demo-secret", "not-a-token", url.Values{"audience": {"files-service"}}, "invalid_request"},
		{"client without the grant", "files-service", "files-demo-secret", at, url.Values{"audience": {"files-service"}}, "unauthorized_client"},
		{"actor token", "api-gateway", "gateway-demo-secret", at, url.Values{"audience": {"files-service"}, "actor_token": {"x"}}, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := exchange(f, c.client, c.secret, c.subject, c.extra)
			if status != 400 || body["error"] != c.code {
				t.Fatalf("got %d %v, want %s", status, body, c.code)
			}
		})
	}
	// Chain deeper than the bound (1 here).
	_, body := exchange(f, "api-gateway", "gateway-demo-secret", at, url.Values{"audience": {"files-service"}})
	hop1, _ := body["access_token"].(string)
	status, body := exchange(f, "orders-service", "orders-demo-secret", hop1, url.Values{"audience": {"files-service"}})
	if status != 400 || body["error"] != "invalid_request" || !strings.Contains(body["error_description"].(string), "deep") {
		t.Fatalf("deep chain: %d %v", status, body)
	}
	// A token of another issuer (signed by a key writ never published).
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	os, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: other, KeyID: "x"}}, nil)
	foreign, _ := jwt.Signed(os).Claims(map[string]any{"iss": "https://evil.example/pool", "sub": claims(t, at)["sub"], "token_use": "access",
		"exp": time.Now().Add(time.Hour).Unix(), "scope": "aws.cognito.signin.user.admin"}).Serialize()
	if status, body := exchange(f, "api-gateway", "gateway-demo-secret", foreign, url.Values{"audience": {"files-service"}}); status != 400 || body["error"] != "invalid_request" {
		t.Fatalf("foreign issuer: %d %v", status, body)
	}
	// may_act in the subject token is honoured: only the named party may act.
	key, err := f.App.Core.Keys.Signer(f.ctx, poolID)
	if err != nil {
		t.Fatal(err)
	}
	ac := claims(t, at)
	mayAct := func(actor string) string {
		m := map[string]any{"iss": f.iss, "sub": ac["sub"], "token_use": "access", "client_id": "demo-web", "username": "alice",
			"scope": ac["scope"], "iat": f.Clock.Now().Unix(), "exp": f.Clock.Now().Add(time.Hour).Unix(), "may_act": map[string]any{"sub": actor}}
		tok, err := token.Mint(key, m)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if status, body := exchange(f, "api-gateway", "gateway-demo-secret", mayAct("orders-service"), url.Values{"audience": {"files-service"}}); status != 400 || body["error"] != "unauthorized_client" {
		t.Fatalf("may_act naming another party: %d %v", status, body)
	}
	if status, body := exchange(f, "api-gateway", "gateway-demo-secret", mayAct("api-gateway"), url.Values{"audience": {"files-service"}}); status != 200 {
		t.Fatalf("may_act naming the caller: %d %v", status, body)
	}
	// An expired subject token.
	f.Clock.Advance(2 * time.Hour)
	if status, body := exchange(f, "api-gateway", "gateway-demo-secret", at, url.Values{"audience": {"files-service"}}); status != 400 || body["error"] != "invalid_request" {
		t.Fatalf("expired subject: %d %v", status, body)
	}
}

func TestRevokeIntrospectUserInfo(t *testing.T) {
	f := start(t)
	ar := f.alice()
	at, rt := aws.ToString(ar.AccessToken), aws.ToString(ar.RefreshToken)
	// userInfo with the access token.
	req, _ := http.NewRequest("GET", f.iss+"/oauth2/userInfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if resp.StatusCode != 200 || info["username"] != "alice" || info["email"] != "alice@example.com" || info["custom:department"] != "engineering" {
		t.Fatalf("userInfo: %d %v", resp.StatusCode, info)
	}
	req.Header.Set("Authorization", "Bearer garbage")
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("userInfo with a bad token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// No credentials: a bare challenge and no error code (RFC 6750 §3.1).
	for _, authz := range []string{"", "Bearer ", "Bearer    ", "Basic b3JkZXJzLXNlcnZpY2U6b3JkZXJzLWRlbW8tc2VjcmV0"} {
		status, challenge, body := f.userInfo(authz)
		if _, hasCode := body["error"]; status != 401 || challenge != `Bearer realm="writ"` || hasCode {
			t.Errorf("userInfo with Authorization %q: %d %q %v", authz, status, challenge, body)
		}
	}
	// An ID token is not an access token: 401 invalid_token, not 403.
	status, challenge, body := f.userInfo("Bearer " + aws.ToString(ar.IdToken))
	if status != 401 || !strings.Contains(challenge, `error="invalid_token"`) || body["error"] != "invalid_token" {
		t.Fatalf("userInfo with an ID token: %d %q %v", status, challenge, body)
	}
	// An access token without openid (or the admin scope) lacks the scope.
	cc := clientcredentials.Config{ClientID: "orders-service", ClientSecret: "orders-demo-secret", TokenURL: f.iss + "/oauth2/token"}
	cct, err := cc.Token(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status, challenge, _ := f.userInfo("Bearer " + cct.AccessToken); status != 403 || !strings.Contains(challenge, `error="insufficient_scope"`) {
		t.Fatalf("userInfo without openid: %d %q", status, challenge)
	}
	// Introspection is for confidential clients.
	status, body, _ = f.post("/oauth2/introspect", url.Values{"token": {at}}, "orders-service", "orders-demo-secret")
	if status != 200 || body["active"] != true || body["username"] != "alice" {
		t.Fatalf("introspect: %d %v", status, body)
	}
	// Another client's refresh token is not for orders-service to see.
	status, body, _ = f.post("/oauth2/introspect", url.Values{"token": {rt}}, "orders-service", "orders-demo-secret")
	if status != 200 || body["active"] != false {
		t.Fatalf("introspect another client's refresh token: %d %v", status, body)
	}
	status, _, _ = f.post("/oauth2/introspect", url.Values{"token": {at}, "client_id": {"demo-web"}}, "", "")
	if status != 401 {
		t.Fatalf("public client introspecting: %d", status)
	}
	// Revoke (RFC 7009): an access token is an unsupported type; the refresh
	// token's family goes, and so do the access tokens of that sign-in.
	status, body, _ = f.post("/oauth2/revoke", url.Values{"token": {at}, "client_id": {"demo-web"}}, "", "")
	if status != 400 || body["error"] != "unsupported_token_type" {
		t.Fatalf("revoke access token: %d %v", status, body)
	}
	// Another client's revocation answers 200 (RFC 7009 §2.1: the token is
	// not its to revoke, and the answer does not say so) and revokes nothing.
	status, _, _ = f.post("/oauth2/revoke", url.Values{"token": {rt}}, "orders-service", "orders-demo-secret")
	if status != 200 {
		t.Fatalf("another client revoking: %d", status)
	}
	if status, body, _ = f.post("/oauth2/introspect", url.Values{"token": {at}}, "orders-service", "orders-demo-secret"); status != 200 || body["active"] != true {
		t.Fatalf("after another client's revocation, the sign-in's access token: %d %v", status, body)
	}
	status, _, _ = f.post("/oauth2/revoke", url.Values{"token": {rt}, "client_id": {"demo-web"}}, "", "")
	if status != 200 {
		t.Fatalf("revoke: %d", status)
	}
	status, _, _ = f.post("/oauth2/revoke", url.Values{"token": {"unknown"}, "client_id": {"demo-web"}}, "", "")
	if status != 200 {
		t.Fatalf("revoke unknown token: %d", status)
	}
	for _, tok := range []string{at, rt} {
		status, body, _ = f.post("/oauth2/introspect", url.Values{"token": {tok}}, "orders-service", "orders-demo-secret")
		if status != 200 || body["active"] != false {
			t.Fatalf("after revoke: %d %v", status, body)
		}
	}
	// Malformed requests.
	req, _ = http.NewRequest("POST", f.iss+"/oauth2/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("JSON body: %d", resp.StatusCode)
	}
	// Only the form media type itself (RFC 6749 §3.2), with parameters if any.
	for ct, want := range map[string]int{
		"application/x-www-form-urlencodedXYZ":             400,
		"application/x-www-form-urlencoded-evil":           400,
		"text/plain":                                       400,
		"application/x-www-form-urlencoded":                200,
		"Application/X-WWW-Form-Urlencoded":                200,
		"application/x-www-form-urlencoded; charset=utf-8": 200,
	} {
		req, _ := http.NewRequest("POST", f.iss+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", ct)
		req.SetBasicAuth("orders-service", "orders-demo-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 400 && (m["error"] != "invalid_request" || !strings.Contains(m["error_description"].(string), "Content-Type"))) {
			t.Errorf("Content-Type %q: %d %v", ct, resp.StatusCode, m)
		}
	}
	big := url.Values{"grant_type": {"client_credentials"}, "x": {strings.Repeat("a", 100<<10)}}
	if status, body, _ := f.post("/oauth2/token", big, "orders-service", "orders-demo-secret"); status != 400 || body["error"] != "invalid_request" {
		t.Fatalf("oversized form: %d %v", status, body)
	}
}
