package main

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/writ-id/writ/internal/userpool"
)

// TestLogsHoldNoSecrets runs writ at debug level through sign-ins, a failed
// sign-in, refreshes, client credentials and a token exchange, then greps
// everything it logged for the secrets and tokens it handled.
func TestLogsHoldNoSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append([]byte("log: { level: debug, format: json }\n"), b...), 0o600)
	s := startServe(t, cfg)
	ctx := context.Background()
	idp := s.url("idp")
	iss := idp + "/us-east-1_WritDemo1"
	c := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(idp), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	secrets := []string{"Alice-Passw0rd", "Wrong-Passw0rd9", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "orders-demo-secret", "gateway-demo-secret", "writ-demo-admin-secret"}

	c.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"USERNAME": "alice", "PASSWORD": "Wrong-Passw0rd9"}})
	out, err := c.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"USERNAME": "alice", "PASSWORD": "Alice-Passw0rd"}})
	if err != nil {
		t.Fatal(err)
	}
	code, _ := userpool.TOTPNow("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", time.Now())
	// A wrong code first (it is a secret too), then the right one.
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	c.RespondToAuthChallenge(ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"), ChallengeName: out.ChallengeName,
		Session: out.Session, ChallengeResponses: map[string]string{"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": wrong}})
	r, err := c.RespondToAuthChallenge(ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"), ChallengeName: out.ChallengeName,
		Session: out.Session, ChallengeResponses: map[string]string{"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": code}})
	if err != nil {
		t.Fatal(err)
	}
	ar := r.AuthenticationResult
	secrets = append(secrets, aws.ToString(out.Session), aws.ToString(ar.AccessToken), aws.ToString(ar.IdToken), aws.ToString(ar.RefreshToken), code, wrong)
	ref, err := c.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeRefreshTokenAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"REFRESH_TOKEN": aws.ToString(ar.RefreshToken)}})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, aws.ToString(ref.AuthenticationResult.RefreshToken))
	cc := clientcredentials.Config{ClientID: "orders-service", ClientSecret: "orders-demo-secret", TokenURL: iss + "/oauth2/token"}
	svc, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, svc.AccessToken)
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {aws.ToString(ar.AccessToken)},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {"files-service"}}
	req, _ := http.NewRequest("POST", iss+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("api-gateway", "gateway-demo-secret")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	// A gateway request with her token, and one with a forged one.
	for _, tok := range []string{aws.ToString(ar.AccessToken), "forged-token-value-xyz"} {
		req, _ := http.NewRequest("GET", s.url("gateway")+"/orders/1", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	secrets = append(secrets, "forged-token-value-xyz")
	s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done
	logs := s.log()
	if !strings.Contains(logs, `"level":"DEBUG"`) && !strings.Contains(logs, `"msg":"listening"`) {
		t.Fatalf("expected JSON logs:\n%.500s", logs)
	}
	for _, sec := range secrets {
		if sec != "" && strings.Contains(logs, sec) {
			t.Errorf("the logs contain a secret (%.12s…)", sec)
		}
	}
}
