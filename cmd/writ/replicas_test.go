package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/smithy-go"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/keys"
	"github.com/writ-id/writ/internal/store/postgres"
)

// replicaConfig writes a reference configuration that keeps its state in
// PostgreSQL (a fresh schema) with a shared master key.
func replicaConfig(t *testing.T, dsn, master, lbHost string) string {
	t.Helper()
	dir := t.TempDir()
	s := string(examples.ReferenceConfig)
	s = regexp.MustCompile(`listen: 127\.0\.0\.1:\d+`).ReplaceAllString(s, "listen: 127.0.0.1:0")
	// Replicas behind one load balancer share one public URL, hence one
	// issuer: the idp's public URL (and every issuer naming it) is the load
	// balancer's, while each replica listens on its own port.
	s = strings.ReplaceAll(s, "127.0.0.1:8400", lbHost)
	s = "store: " + dsn + "\nmaster_key: " + master + "\n" + s
	path := filepath.Join(dir, "writ.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func apiErrCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// replicaSet is two `writ serve` processes on one fresh PostgreSQL schema,
// with one master key and one public URL for the idp (a balancer in front
// of both). Each replica has its own file (its own listeners), one store.
type replicaSet struct {
	a, b        *server
	lb          *balancer
	dsn, master string
}

func startReplicas(t *testing.T) replicaSet {
	t.Helper()
	rs := replicaSet{dsn: postgres.TestSchema(t), master: base64.StdEncoding.EncodeToString(keys.NewMasterKey().Derive("test", 32)),
		lb: newBalancer(t)}
	rs.a = startServe(t, replicaConfig(t, rs.dsn, rs.master, rs.lb.host()))
	rs.b = startServe(t, replicaConfig(t, rs.dsn, rs.master, rs.lb.host()))
	rs.lb.set(rs.a.url("idp"), rs.b.url("idp"))
	return rs
}

// TestTwoReplicasOnPostgres runs two `writ serve` processes on one
// PostgreSQL database and checks that they act as one service.
func TestTwoReplicasOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	rs := startReplicas(t)
	a, b, lb, dsn, master := rs.a, rs.b, rs.lb, rs.dsn, rs.master
	ctx := context.Background()
	client := func(s *server) *cip.Client {
		return cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url("idp")), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	}
	ca, cb := client(a), client(b)
	signIn := func(c *cip.Client) *types.AuthenticationResultType {
		t.Helper()
		out, err := c.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
			AuthParameters: map[string]string{"USERNAME": "bob", "PASSWORD": "Bob-Passw0rd1"}})
		if err != nil || out.AuthenticationResult == nil {
			t.Fatalf("sign-in: %v", err)
		}
		return out.AuthenticationResult
	}
	refresh := func(c *cip.Client, rt *string) (*types.AuthenticationResultType, error) {
		out, err := c.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeRefreshTokenAuth, ClientId: aws.String("demo-web"),
			AuthParameters: map[string]string{"REFRESH_TOKEN": aws.ToString(rt)}})
		if err != nil {
			return nil, err
		}
		return out.AuthenticationResult, nil
	}

	t.Run("sign in on one, refresh on the other", func(t *testing.T) {
		ar := signIn(ca)
		r, err := refresh(cb, ar.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cb.GetUser(ctx, &cip.GetUserInput{AccessToken: ar.AccessToken}); err != nil {
			t.Fatalf("GetUser on B with A's token: %v", err)
		}
		if _, err := refresh(ca, r.RefreshToken); err != nil {
			t.Fatalf("refresh B's successor on A: %v", err)
		}
	})

	t.Run("concurrent refresh races", func(t *testing.T) {
		for round := 0; round < 5; round++ {
			ar := signIn(ca)
			var wg sync.WaitGroup
			res := make([]*types.AuthenticationResultType, 6)
			errs := make([]error, 6)
			for i := range res {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := ca
					if i%2 == 1 {
						c = cb
					}
					res[i], errs[i] = refresh(c, ar.RefreshToken)
				}()
			}
			wg.Wait()
			var winner string
			for i, r := range res {
				if errs[i] != nil {
					t.Fatalf("round %d: racer %d refused within the grace period: %v", round, i, errs[i])
				}
				if winner == "" {
					winner = aws.ToString(r.RefreshToken)
				} else if aws.ToString(r.RefreshToken) != winner {
					t.Fatalf("round %d: two successors issued for one refresh token", round)
				}
			}
			// The family is whole: the one successor works.
			if _, err := refresh(cb, aws.String(winner)); err != nil {
				t.Fatalf("round %d: successor refused after the race: %v", round, err)
			}
		}
	})

	t.Run("global sign-out on one is seen by the other", func(t *testing.T) {
		ar := signIn(ca)
		if _, err := cb.GlobalSignOut(ctx, &cip.GlobalSignOutInput{AccessToken: ar.AccessToken}); err != nil {
			t.Fatal(err)
		}
		if _, err := refresh(ca, ar.RefreshToken); apiErrCode(err) != "NotAuthorizedException" {
			t.Fatalf("refresh on A after sign-out on B: %v", err)
		}
		if _, err := ca.GetUser(ctx, &cip.GetUserInput{AccessToken: ar.AccessToken}); apiErrCode(err) != "NotAuthorizedException" {
			t.Fatalf("GetUser on A after sign-out on B: %v", err)
		}
	})

	t.Run("concurrent GetId on both replicas gives one identity", func(t *testing.T) {
		for _, s := range []*server{a, b} {
			for i := 0; s.url("identity") == "" && i < 100; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
		for round := 0; round < 3; round++ {
			idTok := aws.ToString(signIn(ca).IdToken)
			logins := map[string]string{lb.host() + "/us-east-1_WritDemo1": idTok}
			if round > 0 { // a new subject each round: a fresh user
				name := fmt.Sprintf("racer%d", round)
				adm := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(b.url("idp")), RetryMaxAttempts: 1,
					Credentials: credentials.NewStaticCredentialsProvider("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")})
				if _, err := adm.AdminCreateUser(ctx, &cip.AdminCreateUserInput{UserPoolId: aws.String("us-east-1_WritDemo1"), Username: aws.String(name),
					MessageAction: types.MessageActionTypeSuppress, TemporaryPassword: aws.String("Racer-Passw0rd1")}); err != nil {
					t.Fatal(err)
				}
				if _, err := adm.AdminSetUserPassword(ctx, &cip.AdminSetUserPasswordInput{UserPoolId: aws.String("us-east-1_WritDemo1"),
					Username: aws.String(name), Password: aws.String("Racer-Passw0rd1"), Permanent: true}); err != nil {
					t.Fatal(err)
				}
				out, err := cb.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
					AuthParameters: map[string]string{"USERNAME": name, "PASSWORD": "Racer-Passw0rd1"}})
				if err != nil {
					t.Fatal(err)
				}
				logins = map[string]string{lb.host() + "/us-east-1_WritDemo1": aws.ToString(out.AuthenticationResult.IdToken)}
			}
			var wg sync.WaitGroup
			ids := make([]string, 8)
			errs := make([]error, 8)
			for i := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := a
					if i%2 == 1 {
						s = b
					}
					c := cognitoidentity.New(cognitoidentity.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url("identity")),
						Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
					out, err := c.GetId(ctx, &cognitoidentity.GetIdInput{IdentityPoolId: aws.String("us-east-1:2a7c5e0e-6f43-4a8e-9a51-3f1f0c5d7b21"), Logins: logins})
					errs[i] = err
					if err == nil {
						ids[i] = aws.ToString(out.IdentityId)
					}
				}()
			}
			wg.Wait()
			for i := range ids {
				if errs[i] != nil {
					t.Fatalf("round %d: GetId %d: %v", round, i, errs[i])
				}
				if ids[i] != ids[0] {
					t.Fatalf("round %d: replicas disagree on the identity: %v", round, ids)
				}
			}
		}
	})

	t.Run("key rotation on one is published by the other", func(t *testing.T) {
		cfg := replicaConfig(t, dsn, master, lb.host())
		out, err := exec.Command(writBinary(t), "keys", "rotate", "-c", cfg).CombinedOutput()
		if err != nil {
			t.Fatalf("keys rotate: %v\n%s", err, out)
		}
		kid := regexp.MustCompile(`new key (\S+)`).FindStringSubmatch(string(out))[1]
		jwks := func(s *server) []string {
			resp, err := http.Get(s.url("idp") + "/us-east-1_WritDemo1/.well-known/jwks.json")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var set jose.JSONWebKeySet
			if err := jsonDecode(resp, &set); err != nil {
				t.Fatal(err)
			}
			var kids []string
			for _, k := range set.Keys {
				kids = append(kids, k.KeyID)
			}
			return kids
		}
		// Within 2 s, well under the 5 s poll: the rotation was announced
		// (LISTEN/NOTIFY) and both replicas reloaded at once.
		deadline := time.Now().Add(2 * time.Second)
		for _, s := range []*server{a, b} {
			for !strings.Contains(strings.Join(jwks(s), ","), kid) {
				if time.Now().After(deadline) {
					t.Fatalf("replica did not publish the rotated key %s: %v", kid, jwks(s))
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		// Both still sign with the old key (the new one activates later),
		// and each verifies the other's tokens.
		arA, arB := signIn(ca), signIn(cb)
		if _, err := cb.GetUser(ctx, &cip.GetUserInput{AccessToken: arA.AccessToken}); err != nil {
			t.Fatal(err)
		}
		if _, err := ca.GetUser(ctx, &cip.GetUserInput{AccessToken: arB.AccessToken}); err != nil {
			t.Fatal(err)
		}
	})
}

// balancer is a tiny round-robin load balancer in front of the replicas'
// idp listeners: their shared public URL.
type balancer struct {
	srv      *httptest.Server
	mu       sync.Mutex
	backends []*url.URL
	n        int
}

func newBalancer(t *testing.T) *balancer {
	lb := &balancer{}
	lb.srv = httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		lb.mu.Lock()
		var u *url.URL
		if len(lb.backends) > 0 {
			u = lb.backends[lb.n%len(lb.backends)]
			lb.n++
		}
		lb.mu.Unlock()
		if u == nil {
			u, _ = url.Parse("http://127.0.0.1:1")
		}
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
	}})
	t.Cleanup(lb.srv.Close)
	return lb
}

func (lb *balancer) host() string { return strings.TrimPrefix(lb.srv.URL, "http://") }

func (lb *balancer) set(urls ...string) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.backends = nil
	for _, s := range urls {
		u, _ := url.Parse(s)
		lb.backends = append(lb.backends, u)
	}
}
