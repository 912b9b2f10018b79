package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/examples/files"
	"github.com/writ-id/writ/examples/orders"
	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
	"github.com/writ-id/writ/sdk"
)

func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "writ demo [--serve] [--data DIR]", stderr)
	serve := fs.Bool("serve", false, "keep serving the demo environment after the walkthrough (until Ctrl-C)")
	dataDir := fs.String("data", "", "data directory (default: a fresh temporary directory, removed afterwards)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir := *dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "writ-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	cfg, err := config.Parse(examples.ReferenceConfig, filepath.Join(dir, "writ.yaml"))
	if err != nil {
		return fmt.Errorf("reference configuration: %w", err)
	}
	cfg.DataDir = filepath.Join(dir, "writ-data")
	moved := freePorts(cfg)
	issuerURL := strings.TrimRight(cfg.Serve.IDP.PublicURL, "/") + "/" + cfg.UserPools[0].ID
	stopServices, err := startDemoServices(cfg, issuerURL)
	if err != nil {
		return err
	}
	defer stopServices()
	whoami := buildWhoami(cfg, stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(ctx, cfg, app.Options{Log: log})
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { served <- a.Serve(sctx) }()
	defer func() {
		cancel()
		<-served
	}()

	p := func(format string, args ...any) { fmt.Fprintf(stdout, format, args...) }
	idpURL := a.URL(app.IDP)
	poolID := cfg.UserPools[0].ID
	issuer := idpURL + "/" + poolID
	p("writ demo — the reference environment (examples/writ.yaml) in %s\n\n", dir)
	if moved {
		p("  (a reference port was taken, so listeners moved to free ports)\n")
	}
	p("  idp       %s   issuer %s\n", idpURL, issuer)
	p("  identity  %s   identity pools (Cognito Identity API) and STS\n", a.URL(app.Identity))
	p("  gateway   %s\n", a.URL(app.Gateway))
	p("  ops       %s   /healthz /readyz /metrics\n\n", a.URL(app.Ops))

	client := cip.New(cip.Options{Region: cfg.Region, BaseEndpoint: aws.String(idpURL), Credentials: aws.AnonymousCredentials{}})
	p("Step 1: alice signs in (password, then TOTP) with the AWS SDK for Go v2\n")
	init, err := client.InitiateAuth(ctx, &cip.InitiateAuthInput{
		AuthFlow: ciptypes.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"USERNAME": "alice", "PASSWORD": "Alice-Passw0rd"},
	})
	if err != nil {
		return fmt.Errorf("InitiateAuth: %w", err)
	}
	p("  InitiateAuth(USER_PASSWORD_AUTH)  → challenge %s\n", init.ChallengeName)
	code, err := userpool.TOTPNow(cfg.UserPools[0].Users[0].TOTPSecret.Reveal(), time.Now())
	if err != nil {
		return err
	}
	resp, err := client.RespondToAuthChallenge(ctx, &cip.RespondToAuthChallengeInput{
		ClientId: aws.String("demo-web"), ChallengeName: init.ChallengeName, Session: init.Session,
		ChallengeResponses: map[string]string{"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": code},
	})
	if err != nil {
		return fmt.Errorf("RespondToAuthChallenge: %w", err)
	}
	ar := resp.AuthenticationResult
	p("  RespondToAuthChallenge(SOFTWARE_TOKEN_MFA, code %s from her seed secret) → tokens, expires in %ds\n\n", code, ar.ExpiresIn)

	prov, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	idt, err := prov.Verifier(&oidc.Config{ClientID: "demo-web"}).Verify(ctx, aws.ToString(ar.IdToken))
	if err != nil {
		return fmt.Errorf("verify ID token: %w", err)
	}
	p("  ID token verified with coreos/go-oidc through %s/.well-known/jwks.json:\n", issuer)
	var idClaims map[string]any
	idt.Claims(&idClaims)
	printClaims(stdout, idClaims)
	p("  access token claims:\n")
	printClaims(stdout, unverifiedClaims(aws.ToString(ar.AccessToken)))

	p("\n  InitiateAuth(REFRESH_TOKEN_AUTH) → ")
	ref, err := client.InitiateAuth(ctx, &cip.InitiateAuthInput{
		AuthFlow: ciptypes.AuthFlowTypeRefreshTokenAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"REFRESH_TOKEN": aws.ToString(ar.RefreshToken)},
	})
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	rotated := ref.AuthenticationResult.RefreshToken != nil && aws.ToString(ref.AuthenticationResult.RefreshToken) != aws.ToString(ar.RefreshToken)
	p("new ID and access tokens (jti %v); refresh token rotated: %v\n", unverifiedClaims(aws.ToString(ref.AuthenticationResult.AccessToken))["jti"], rotated)
	_, err = client.InitiateAuth(ctx, &cip.InitiateAuthInput{
		AuthFlow: ciptypes.AuthFlowTypeRefreshTokenAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"REFRESH_TOKEN": "not-a-real-token"},
	})
	p("  a forged refresh token is refused: %v\n\n", errorCode(err))

	tokenURL := issuer + "/oauth2/token"
	p("Services get tokens of their own (client_credentials, x/oauth2):\n")
	cc := clientcredentials.Config{ClientID: "orders-service", ClientSecret: "orders-demo-secret", TokenURL: tokenURL}
	svcTok, err := cc.Token(ctx)
	if err != nil {
		return fmt.Errorf("client_credentials: %w", err)
	}
	sc := unverifiedClaims(svcTok.AccessToken)
	p("  orders-service → sub %v, scope %v, no refresh token: %v\n\n", sc["sub"], sc["scope"], svcTok.RefreshToken == "")

	p("Her identity travels with the request, bound to each hop (RFC 8693 token exchange):\n")
	hop1, err := demoExchange(ctx, tokenURL, "api-gateway", "gateway-demo-secret", aws.ToString(ar.AccessToken), "files-service")
	if err != nil {
		return err
	}
	hop2, err := demoExchange(ctx, tokenURL, "orders-service", "orders-demo-secret", hop1, "files-service")
	if err != nil {
		return err
	}
	ac := unverifiedClaims(aws.ToString(ar.AccessToken))
	p("  alice's access token: sub %v  client_id %v  (no act: nobody acts for her yet)\n", ac["sub"], ac["client_id"])
	for i, h := range []struct{ tok, by, what string }{{hop1, "api-gateway", "alice's token"}, {hop2, "orders-service", "hop 1's token"}} {
		c := unverifiedClaims(h.tok)
		act, _ := json.Marshal(c["act"])
		p("  hop %d: sub %v  aud %v  act %s\n", i+1, c["sub"], c["aud"], act)
		p("         %s exchanged %s; actors, newest first: %s\n", h.by, h.what, strings.Join(actorChain(c["act"]), " ← "))
	}
	p("\n")

	verifier := oauth2.GenerateVerifier()
	web := oauth2.Config{ClientID: "demo-web", RedirectURL: "http://127.0.0.1:8485/callback", Scopes: []string{"openid", "email", "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: issuer + "/oauth2/authorize", TokenURL: tokenURL}}
	p("Sign in through the hosted pages (authorization code + PKCE; run with --serve to keep them up):\n  %s\n", web.AuthCodeURL("demo", oauth2.S256ChallengeOption(verifier)))
	p("  then redeem the code from the callback with code_verifier=%s\n\n", verifier)

	p("Steps 2-4: through the gateway to the services behind it\n")
	webTok, err := hostedSignIn(ctx, issuer, cfg.UserPools[0].Users[0].TOTPSecret.Reveal())
	if err != nil {
		return fmt.Errorf("hosted sign-in: %w", err)
	}
	p("  alice signed in through the hosted pages (password + TOTP, code + PKCE): scope %q\n", unverifiedClaims(webTok)["scope"])
	gw := a.URL(app.Gateway)
	for _, call := range []struct{ method, path, tok string }{
		{"GET", "/orders/42", webTok},
		{"GET", "/files/reports/q3.txt", webTok},
		{"GET", "/whoami", webTok},
		{"GET", "/orders/42", aws.ToString(ar.AccessToken)},
		{"GET", "/orders/42", "forged." + webTok},
	} {
		if call.path == "/whoami" && !whoami {
			continue
		}
		status, body, reqID, err := gatewayCall(ctx, gw+call.path, call.method, call.tok)
		if err != nil {
			return err
		}
		p("  %s %s → %d (X-Request-Id %s)\n", call.method, call.path, status, reqID)
		if len(body) > 0 && status == 200 && call.path == "/whoami" {
			var out struct {
				Claims       map[string]string `json:"claims"`
				InvocationID string            `json:"invocation_id"`
			}
			json.Unmarshal(body, &out)
			p("    whoami (an aws-lambda-go function) saw username=%s cognito:groups=%s exp=%s, invocation %s\n",
				out.Claims["username"], out.Claims["cognito:groups"], out.Claims["exp"], out.InvocationID)
		} else if len(body) > 0 && status == 200 {
			printHops(stdout, body)
		}
	}
	if !whoami {
		p("  (GET /whoami was left out: examples/whoami could not be built here)\n")
	}
	p("  (her API-flow token lacks the orders.read scope: 403; a forged token: 401)\n\n")

	aliceCreds, err := demoStep5(ctx, stdout, a, cfg, aws.ToString(ar.IdToken), issuer)
	if err != nil {
		return fmt.Errorf("step 5: %w", err)
	}
	if err := demoStep6(ctx, stdout, a, cfg, client, issuer, aliceCreds); err != nil {
		return fmt.Errorf("step 6: %w", err)
	}
	p("Every hop above is in one audit trail: writ audit query -c FILE --request-id ID; writ audit verify checks it.\n")
	if *serve {
		p("\nServing until Ctrl-C. Sign in with the AWS SDK at %s (client demo-web).\n", idpURL)
		select {
		case <-ctx.Done():
		case err := <-served:
			served <- err
		}
	}
	return nil
}

// demoStep5 trades alice's ID token for role credentials at the identity
// pool (enhanced flow) and shows which role was chosen and why.
func demoStep5(ctx context.Context, w io.Writer, a *app.App, cfg *config.Config, idToken, issuer string) (demoCreds, error) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("Step 5: the identity pool trades her ID token for role credentials (Cognito Identity API, AWS SDK)\n")
	c := cognitoidentity.New(cognitoidentity.Options{Region: cfg.Region, BaseEndpoint: aws.String(a.URL(app.Identity)), Credentials: aws.AnonymousCredentials{}})
	poolID := cfg.IdentityPools[0].ID
	logins := map[string]string{strings.TrimPrefix(strings.TrimPrefix(issuer, "http://"), "https://"): idToken}
	creds, err := identityCreds(ctx, c, poolID, logins)
	if err != nil {
		return creds, err
	}
	sess, err := a.STS.Open(creds.ak, creds.token)
	if err != nil {
		return creds, err
	}
	p("  GetId → %s\n", creds.id)
	p("  GetCredentialsForIdentity → %s… (expires %s)\n", creds.ak[:8], sess.Expires.UTC().Format(time.RFC3339))
	a.Core.Audit.Flush(ctx)
	evs, _ := a.Core.Store.ListAudit(ctx, store.AuditFilter{Component: "identity", Outcome: "allow"})
	why := "?"
	if len(evs) > 0 {
		why = evs[len(evs)-1].Reason
	}
	p("  role %s — why (from the audit trail): %s\n", sess.Role, why)
	p("  session: aud %s, amr %v, principal tags %v\n", sess.Audience, sess.AMR[:1], sess.Tags)
	p("  the session token is sealed (AEAD, key from the master key): any replica verifies it with no lookup\n\n")
	return creds, nil
}

type demoCreds struct{ id, ak, secret, token string }

func identityCreds(ctx context.Context, c *cognitoidentity.Client, poolID string, logins map[string]string) (demoCreds, error) {
	id, err := c.GetId(ctx, &cognitoidentity.GetIdInput{IdentityPoolId: aws.String(poolID), Logins: logins})
	if err != nil {
		return demoCreds{}, err
	}
	out, err := c.GetCredentialsForIdentity(ctx, &cognitoidentity.GetCredentialsForIdentityInput{IdentityId: id.IdentityId, Logins: logins})
	if err != nil {
		return demoCreds{}, err
	}
	return demoCreds{id: aws.ToString(id.IdentityId), ak: aws.ToString(out.Credentials.AccessKeyId),
		secret: aws.ToString(out.Credentials.SecretKey), token: aws.ToString(out.Credentials.SessionToken)}, nil
}

// demoStep6 uses the credentials on the object store: alice writes and
// reads her prefix and is refused bob's, with the refusal explained.
func demoStep6(ctx context.Context, w io.Writer, a *app.App, cfg *config.Config, idp *cip.Client, issuer string, alice demoCreds) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("Step 6: the credentials reach the object store (S3 API, AWS SDK), checked against the role's IAM policy\n")
	out, err := idp.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: ciptypes.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"USERNAME": "bob", "PASSWORD": "Bob-Passw0rd1"}})
	if err != nil || out.AuthenticationResult == nil {
		return fmt.Errorf("bob's sign-in: %v", err)
	}
	ic := cognitoidentity.New(cognitoidentity.Options{Region: cfg.Region, BaseEndpoint: aws.String(a.URL(app.Identity)), Credentials: aws.AnonymousCredentials{}})
	bob, err := identityCreds(ctx, ic, cfg.IdentityPools[0].ID,
		map[string]string{strings.TrimPrefix(strings.TrimPrefix(issuer, "http://"), "https://"): aws.ToString(out.AuthenticationResult.IdToken)})
	if err != nil {
		return err
	}
	s3For := func(c demoCreds) *s3.Client {
		return s3.New(s3.Options{Region: cfg.Region, BaseEndpoint: aws.String(a.URL(app.Objects)), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(c.ak, c.secret, c.token)})
	}
	as, bs := s3For(alice), s3For(bob)
	bucket := cfg.Objects.Buckets[0]
	aliceKey, bobKey := "private/"+alice.id+"/notes.txt", "private/"+bob.id+"/diary.txt"
	if _, err := bs.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(bobKey), Body: strings.NewReader("bob's diary")}); err != nil {
		return fmt.Errorf("bob's PutObject: %w", err)
	}
	if _, err := as.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(aliceKey), Body: strings.NewReader("alice's notes")}); err != nil {
		return fmt.Errorf("alice's PutObject: %w", err)
	}
	got, err := as.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(aliceKey)})
	if err != nil {
		return fmt.Errorf("alice's GetObject: %w", err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	p("  alice PutObject + GetObject s3://%s/%s → %q\n", bucket, aliceKey, body)
	_, err = as.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(bobKey)})
	p("  alice GetObject s3://%s/%s (bob's) → %s\n", bucket, bobKey, errorCode(err))
	a.Core.Audit.Flush(ctx)
	evs, _ := a.Core.Store.ListAudit(ctx, store.AuditFilter{Component: "objects", Outcome: "deny"})
	if len(evs) > 0 {
		p("    why: %s\n", evs[len(evs)-1].Explanation)
	}
	p("\n")
	return nil
}

// startDemoServices runs the orders and files services on the upstream
// addresses the reference routes name (or free ports when taken).
func startDemoServices(cfg *config.Config, issuer string) (func(), error) {
	listen := func(addr string) (net.Listener, error) {
		if ln, err := net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		return net.Listen("tcp", "127.0.0.1:0")
	}
	filesLn, err := listen("127.0.0.1:8412")
	if err != nil {
		return nil, err
	}
	ordersLn, err := listen("127.0.0.1:8411")
	if err != nil {
		filesLn.Close()
		return nil, err
	}
	filesURL, ordersURL := "http://"+filesLn.Addr().String(), "http://"+ordersLn.Addr().String()
	for i := range cfg.Gateway.Routes {
		switch cfg.Gateway.Routes[i].Upstream {
		case "http://127.0.0.1:8411":
			cfg.Gateway.Routes[i].Upstream = ordersURL
		case "http://127.0.0.1:8412":
			cfg.Gateway.Routes[i].Upstream = filesURL
		}
	}
	secret := ""
	if c, ok := cfg.UserPools[0].Client("orders-service"); ok {
		secret = c.Secret.Reveal()
	}
	fh, fstop := files.New(issuer)
	oh, ostop := orders.New(issuer, filesURL, sdk.ClientCredentials{TokenURL: issuer + "/oauth2/token", ClientID: "orders-service", ClientSecret: secret})
	fs, os := &http.Server{Handler: fh, ReadHeaderTimeout: 10 * time.Second}, &http.Server{Handler: oh, ReadHeaderTimeout: 10 * time.Second}
	go fs.Serve(filesLn)
	go os.Serve(ordersLn)
	return func() { fs.Close(); os.Close(); fstop(); ostop() }, nil
}

// buildWhoami compiles examples/whoami to the path the reference
// configuration names (./bin/whoami beside the file). Without a Go
// toolchain and the source tree, the function and its route are dropped.
func buildWhoami(cfg *config.Config, stderr io.Writer) bool {
	if len(cfg.Gateway.Functions) == 0 {
		return false
	}
	bin := cfg.Gateway.Functions[0].Command[0]
	out, err := exec.Command("go", "build", "-o", bin, "github.com/writ-id/writ/examples/whoami").CombinedOutput()
	if err == nil {
		return true
	}
	fmt.Fprintf(stderr, "writ demo: cannot build examples/whoami (%v); the function route is left out\n%s", err, out)
	cfg.Gateway.Functions = nil
	routes := cfg.Gateway.Routes[:0]
	for _, r := range cfg.Gateway.Routes {
		if r.Function == "" {
			routes = append(routes, r)
		}
	}
	cfg.Gateway.Routes = routes
	return false
}

// hostedSignIn signs alice in through the hosted pages as a browser would
// (authorize, sign-in form, TOTP form) and redeems the code with PKCE.
func hostedSignIn(ctx context.Context, issuer, totpSecret string) (string, error) {
	jar, _ := cookiejar.New(nil)
	var callback *url.URL
	hc := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), "http://127.0.0.1:8485/callback") {
			callback = r.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	conf := oauth2.Config{ClientID: "demo-web", RedirectURL: "http://127.0.0.1:8485/callback",
		Scopes:   []string{"openid", "email", "https://api.demo.local/orders.read", "https://api.demo.local/orders.write"},
		Endpoint: oauth2.Endpoint{AuthURL: issuer + "/oauth2/authorize", TokenURL: issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	page, err := fetch(hc, "GET", conf.AuthCodeURL("demo", oauth2.S256ChallengeOption(verifier)), nil)
	if err != nil {
		return "", err
	}
	form := hiddenFields(page)
	form.Set("username", "alice")
	form.Set("password", "Alice-Passw0rd")
	if page, err = fetch(hc, "POST", issuer+"/login", form); err != nil {
		return "", err
	}
	form = hiddenFields(page)
	code, err := userpool.TOTPNow(totpSecret, time.Now().Add(30*time.Second)) // the step after the API sign-in's
	if err != nil {
		return "", err
	}
	form.Set("code", code)
	if _, err = fetch(hc, "POST", issuer+"/login/totp", form); err != nil {
		return "", err
	}
	if callback == nil {
		return "", fmt.Errorf("no redirect back to the application")
	}
	tok, err := conf.Exchange(ctx, callback.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`)

func hiddenFields(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

func fetch(hc *http.Client, method, u string, form url.Values) (string, error) {
	var resp *http.Response
	var err error
	if method == "POST" {
		resp, err = hc.PostForm(u, form)
	} else {
		resp, err = hc.Get(u)
	}
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(b), err
}

func gatewayCall(ctx context.Context, u, method, tok string) (int, []byte, string, error) {
	req, _ := http.NewRequestWithContext(ctx, method, u, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, resp.Header.Get("X-Request-Id"), nil
}

// printHops prints what each service behind the gateway saw.
func printHops(w io.Writer, body []byte) {
	var hop map[string]any
	if json.Unmarshal(body, &hop) != nil {
		return
	}
	for hop != nil {
		if hop["actor_chain"] == nil {
			hop["actor_chain"] = "none"
		}
		aud := hop["aud"]
		if a, _ := aud.([]any); len(a) == 0 {
			aud = fmt.Sprintf("none (the user's access token, client_id %v)", hop["client_id"])
		}
		fmt.Fprintf(w, "    %-7v saw sub %v (%v)  aud %v  actors %v  request id %v\n", hop["service"], hop["sub"], hop["username"],
			aud, hop["actor_chain"], hop["request_id"])
		next, _ := hop["files_saw"].(map[string]any)
		hop = next
	}
}

// actorChain lists the actors of an act claim, the most recent first.
func actorChain(act any) []string {
	var out []string
	for m, ok := act.(map[string]any); ok; m, ok = m["act"].(map[string]any) {
		out = append(out, fmt.Sprint(m["sub"]))
	}
	return out
}

// demoExchange trades subject for a token bound to audience, as client.
func demoExchange(ctx context.Context, tokenURL, client, secret, subject, audience string) (string, error) {
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {audience}}
	req, _ := http.NewRequestWithContext(ctx, "POST", tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("token exchange by %s: %d %s %v", client, resp.StatusCode, out.Error, err)
	}
	return out.AccessToken, nil
}

// freePorts moves listeners whose reference port is taken to a free port.
func freePorts(cfg *config.Config) bool {
	moved := false
	for _, l := range []*config.Listener{cfg.Serve.IDP, cfg.Serve.Identity, cfg.Serve.Objects, cfg.Serve.Gateway, cfg.Serve.Ops} {
		if l == nil {
			continue
		}
		ln, err := net.Listen("tcp", l.Listen)
		if err == nil {
			ln.Close()
			continue
		}
		moved = true
		if l != cfg.Serve.IDP {
			l.Listen, l.PublicURL = "127.0.0.1:0", ""
			continue
		}
		// The idp's address is named by issuers elsewhere in the file: pick
		// a free port now and move them with it.
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			l.Listen, l.PublicURL = "127.0.0.1:0", ""
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		cfg.RelocateIDP(l.PublicURL, "http://"+addr)
		l.Listen, l.PublicURL = addr, "http://"+addr
	}
	return moved
}

func unverifiedClaims(tok string) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func printClaims(w io.Writer, m map[string]any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, _ := json.Marshal(m[k])
		fmt.Fprintf(w, "    %-24s %s\n", k, v)
	}
}

func errorCode(err error) string {
	if err == nil {
		return "accepted (unexpected)"
	}
	var api interface{ ErrorCode() string }
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return err.Error()
}
