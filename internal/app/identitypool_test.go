package app_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
	"github.com/writ-id/writ/sdk"
)

// TestServiceReachesS3AsItsCaller: a service built on the SDK trades each
// caller's token for role credentials at the identity pool
// (sdk.IdentityPool) and reaches the object store with them: each caller
// writes and reads their own prefix and is refused another's; credentials
// are reused across requests with the same token; the identity pool and
// object store events carry the service's request id.
func TestServiceReachesS3AsItsCaller(t *testing.T) {
	env := apptest.Start(t)
	ctx := context.Background()
	issuer := env.App.URL(app.IDP) + "/us-east-1_WritDemo1"
	var exchanges atomic.Int64
	counting := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".GetCredentialsForIdentity") {
			exchanges.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	pool := &sdk.IdentityPool{Endpoint: env.App.URL(app.Identity), PoolID: "us-east-1:2a7c5e0e-6f43-4a8e-9a51-3f1f0c5d7b21", HTTPClient: counting}
	v := sdk.NewVerifier(sdk.Config{Issuer: issuer, Audiences: []string{"demo-web"}})
	defer v.Close()
	// The service: PUT /notes/{name} stores the body in the caller's own
	// prefix; GET /notes/{owner}/{name} reads anyone's (S3 decides).
	notes := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.App.URL(app.Objects)), UsePathStyle: true,
			Credentials: pool.Credentials(r.Context()), APIOptions: []func(*middleware.Stack) error{sdk.RequestIDHeader(r.Context())}})
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/notes/"), "/")
		var err error
		switch r.Method {
		case "PUT":
			var me string
			if me, err = pool.IdentityID(r.Context()); err == nil {
				body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
				_, err = c.PutObject(r.Context(), &s3.PutObjectInput{Bucket: aws.String("writ-demo"), Key: aws.String("private/" + me + "/" + parts[0]), Body: bytes.NewReader(body)})
				w.Header().Set("X-Identity", me)
			}
		case "GET":
			var out *s3.GetObjectOutput
			if out, err = c.GetObject(r.Context(), &s3.GetObjectInput{Bucket: aws.String("writ-demo"), Key: aws.String("private/" + parts[0] + "/" + parts[1])}); err == nil {
				io.Copy(w, out.Body)
				out.Body.Close()
			}
		}
		var ae smithy.APIError
		if errors.As(err, &ae) {
			http.Error(w, ae.ErrorCode(), http.StatusForbidden)
		} else if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})))
	defer notes.Close()

	p, _ := env.App.Pools.Pool("us-east-1_WritDemo1")
	cl, _ := env.App.Core.Store.GetClient(ctx, "demo-web")
	token := func(user string) string {
		u, _ := env.App.Core.Store.GetUser(ctx, "us-east-1_WritDemo1", user)
		tok, err := p.Issue(ctx, userpool.Grant{Client: cl, User: u, Scope: []string{"openid"}, AuthTime: env.Clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	alice, bob := token("alice"), token("bob")
	call := func(method, path, tok, body, reqID string) (int, string, http.Header) {
		req, _ := http.NewRequest(method, notes.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Request-Id", reqID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header
	}
	code, body, h := call("PUT", "/notes/todo.txt", alice, "alice's list", "ip-1")
	aliceID := h.Get("X-Identity")
	if code != 200 || aliceID == "" {
		t.Fatalf("alice stores her note: %d %s", code, body)
	}
	if code, body, _ := call("GET", "/notes/"+aliceID+"/todo.txt", alice, "", "ip-2"); code != 200 || body != "alice's list" {
		t.Fatalf("alice reads her note: %d %q", code, body)
	}
	if code, body, _ := call("GET", "/notes/"+aliceID+"/todo.txt", bob, "", "ip-3"); code != 403 || body != "AccessDenied" {
		t.Fatalf("bob reads alice's note: %d %q", code, body)
	}
	if code, body, h := call("PUT", "/notes/diary.txt", bob, "bob's", "ip-4"); code != 200 || h.Get("X-Identity") == aliceID {
		t.Fatalf("bob stores his note: %d %s", code, body)
	}
	if n := exchanges.Load(); n != 2 {
		t.Errorf("%d credential exchanges for two callers' tokens, want 2 (one per token)", n)
	}
	env.App.Core.Audit.Flush(ctx)
	evs, err := env.App.Core.Store.ListAudit(ctx, store.AuditFilter{RequestID: "ip-1"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Component+" "+e.Action] = true
	}
	if !seen["identity GetCredentialsForIdentity"] || !seen["objects s3:PutObject"] {
		t.Errorf("events of request ip-1: %v", seen)
	}
	// No identity in the context: no credentials.
	if _, err := pool.Credentials(ctx).Retrieve(ctx); err == nil {
		t.Error("credentials without an identity")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
