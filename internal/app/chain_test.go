package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ci "github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
	"github.com/writ-id/writ/sdk"
)

// TestOneRequestAcrossEveryHop sends one request through gateway → orders →
// files, where orders also trades the caller's token at the identity pool
// and writes to the object store, and finds every hop's audit event under
// the one request id, with the actor chain.
func TestOneRequestAcrossEveryHop(t *testing.T) {
	var env *apptest.Env
	var orders, files http.Handler
	// The services are built on first use, once writ (their issuer) runs.
	lazy := func(h *http.Handler, mk func() http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if *h == nil {
				*h = mk()
			}
			(*h).ServeHTTP(w, r)
		})
	}
	issuer := func() string { return env.App.URL(app.IDP) + "/us-east-1_WritDemo1" }
	filesSrv := httptest.NewServer(lazy(&files, func() http.Handler {
		v := sdk.NewVerifier(sdk.Config{Issuer: issuer(), Audiences: []string{"files-service"}})
		return v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ := sdk.FromContext(r.Context())
			json.NewEncoder(w).Encode(map[string]any{"chain": id.ActorChain})
		}))
	}))
	defer filesSrv.Close()
	ordersSrv := httptest.NewServer(lazy(&orders, func() http.Handler {
		v := sdk.NewVerifier(sdk.Config{Issuer: issuer(), Audiences: []string{"demo-web"}})
		next := &http.Client{Transport: &sdk.Transport{Audience: "files-service",
			Exchange: &sdk.ClientCredentials{TokenURL: issuer() + "/oauth2/token", ClientID: "orders-service", ClientSecret: "orders-demo-secret"}}}
		return v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			id, _ := sdk.FromContext(ctx)
			// Hop: files, with a token bound to files-service.
			req, _ := http.NewRequestWithContext(ctx, "GET", filesSrv.URL+"/files/x", nil)
			resp, err := next.Do(req)
			if err != nil || resp.StatusCode != 200 {
				http.Error(w, "files failed", 502)
				return
			}
			resp.Body.Close()
			// Hop: identity pool, then the object store, under the same request id.
			withID := func(o *ci.Options) { o.APIOptions = append(o.APIOptions, sdk.RequestIDHeader(ctx)) }
			cic := ci.New(ci.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.App.URL(app.Identity)), Credentials: aws.AnonymousCredentials{}})
			logins := map[string]string{strings.TrimPrefix(issuer(), "http://"): id.Token}
			gid, err := cic.GetId(ctx, &ci.GetIdInput{IdentityPoolId: aws.String(env.Cfg.IdentityPools[0].ID), Logins: logins}, withID)
			if err != nil {
				http.Error(w, "GetId: "+err.Error(), 502)
				return
			}
			cr, err := cic.GetCredentialsForIdentity(ctx, &ci.GetCredentialsForIdentityInput{IdentityId: gid.IdentityId, Logins: logins}, withID)
			if err != nil {
				http.Error(w, "credentials: "+err.Error(), 502)
				return
			}
			s3c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.App.URL(app.Objects)), UsePathStyle: true,
				Credentials: credentials.NewStaticCredentialsProvider(aws.ToString(cr.Credentials.AccessKeyId), aws.ToString(cr.Credentials.SecretKey), aws.ToString(cr.Credentials.SessionToken))})
			_, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("writ-demo"), Key: aws.String("private/" + aws.ToString(gid.IdentityId) + "/order-1.json"),
				Body: strings.NewReader(`{"order":1}`)}, func(o *s3.Options) { o.APIOptions = append(o.APIOptions, sdk.RequestIDHeader(ctx)) })
			if err != nil {
				http.Error(w, "s3: "+err.Error(), 502)
				return
			}
			w.Write([]byte("ok"))
		}))
	}))
	defer ordersSrv.Close()
	env = apptest.Start(t, func(c *config.Config) {
		c.Gateway.Routes[0].Upstream = ordersSrv.URL // GET /orders/{id}, forward
	})
	ctx := context.Background()
	p, _ := env.App.Pools.Pool("us-east-1_WritDemo1")
	cl, _ := env.App.Core.Store.GetClient(ctx, "demo-web")
	u, _ := env.App.Core.Store.GetUser(ctx, "us-east-1_WritDemo1", "alice")
	tok, err := p.Issue(ctx, userpool.Grant{Client: cl, User: u, Scope: []string{"https://api.demo.local/orders.read"}, AuthTime: env.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", env.App.URL(app.Gateway)+"/orders/1", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("X-Request-Id", "chain-req-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	evs := env.AuditEvents(t, store.AuditFilter{RequestID: "chain-req-1"})
	var seen []string
	var exchangeChain []string
	for _, e := range evs {
		seen = append(seen, e.Component+":"+e.Action)
		if e.Action == "token.exchange" {
			exchangeChain = e.ActorChain
		}
		if e.Outcome != "allow" {
			t.Errorf("event %s %s: %s %s", e.Component, e.Action, e.Outcome, e.Reason)
		}
	}
	want := []string{"gateway:GET /orders/{id}", "idp:token.exchange", "identity:GetCredentialsForIdentity", "objects:s3:PutObject"}
	j := 0
	for _, s := range seen {
		if j < len(want) && s == want[j] {
			j++
		}
	}
	if j != len(want) {
		t.Fatalf("events of the request, in order: %v; want %v among them", seen, want)
	}
	if strings.Join(exchangeChain, ",") != "orders-service" {
		t.Errorf("exchange actor chain %v", exchangeChain)
	}
	// The trail verifies (the writer is live, so its stream is still open).
	rep, err := audit.Verify(ctx, env.App.Core.Store, app.AuditSigner(env.App.Core.Master), audit.VerifyOptions{Live: map[string]bool{env.App.Core.Audit.Stream(): true}})
	if err != nil || len(rep.Problems) != 0 || len(rep.Open) != 0 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}
