package app_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ci "github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/keys"
	"github.com/writ-id/writ/internal/sts"
	"github.com/writ-id/writ/internal/userpool"
)

func newMasterKey(t *testing.T) string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// aliceSignIn signs alice in with her password and TOTP code and returns
// her ID token.
func aliceSignIn(t *testing.T, env *apptest.Env) string {
	t.Helper()
	ctx := context.Background()
	c := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.App.URL(app.IDP)), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	out, err := c.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"USERNAME": "alice", "PASSWORD": "Alice-Passw0rd"}})
	if err != nil {
		t.Fatalf("alice's password: %v", err)
	}
	code, _ := userpool.TOTPNow("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", env.Clock.Now())
	r, err := c.RespondToAuthChallenge(ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"), ChallengeName: out.ChallengeName,
		Session: out.Session, ChallengeResponses: map[string]string{"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": code}})
	if err != nil {
		log := env.Log.String()
		t.Fatalf("alice's TOTP code (secret sealed at rest): %v\n%s", err, log[max(0, len(log)-1500):])
	}
	env.Clock.Advance(30 * time.Second)
	return aws.ToString(r.AuthenticationResult.IdToken)
}

// TestMasterKeyRotation: writ restarted with a new master_key and the old
// one in previous_master_keys keeps everything made under the old key —
// sealed signing keys and TOTP secrets, issued session tokens, client
// secrets, audit checkpoints — and makes new values under the new key.
func TestMasterKeyRotation(t *testing.T) {
	dir := t.TempDir()
	oldKey, newKey := newMasterKey(t), newMasterKey(t)
	ctx := context.Background()
	env := apptest.StartDir(t, dir, apptest.CheapArgon2, func(c *config.Config) { c.MasterKey = config.NewSecret(oldKey) })
	idTok := aliceSignIn(t, env)
	cic := ci.New(ci.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.App.URL(app.Identity)), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	logins := map[string]string{strings.TrimPrefix(env.App.URL(app.IDP), "http://") + "/us-east-1_WritDemo1": idTok}
	id, err := cic.GetId(ctx, &ci.GetIdInput{IdentityPoolId: aws.String("us-east-1:2a7c5e0e-6f43-4a8e-9a51-3f1f0c5d7b21"), Logins: logins})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cic.GetCredentialsForIdentity(ctx, &ci.GetCredentialsForIdentityInput{IdentityId: id.IdentityId, Logins: logins})
	if err != nil {
		t.Fatal(err)
	}
	ak, tok := aws.ToString(creds.Credentials.AccessKeyId), aws.ToString(creds.Credentials.SessionToken)
	env.App.Core.Audit.Flush(ctx)
	env.Stop()

	env2 := apptest.StartDir(t, dir, apptest.CheapArgon2, func(c *config.Config) {
		c.MasterKey = config.NewSecret(newKey)
		c.PreviousMasterKeys = []config.Secret{config.NewSecret(oldKey)}
	})
	env2.Clock.Advance(90 * time.Second) // past the TOTP window used before the restart
	if s, err := env2.App.STS.Open(ak, tok); err != nil || s.IdentityID != aws.ToString(id.IdentityId) {
		t.Fatalf("credentials issued under the old key: %v", err)
	}
	aliceSignIn(t, env2) // signing key and TOTP secret sealed under the old key
	cc := clientcredentials.Config{ClientID: "orders-service", ClientSecret: "orders-demo-secret",
		TokenURL: env2.App.URL(app.IDP) + "/us-east-1_WritDemo1/oauth2/token"}
	if _, err := cc.Token(ctx); err != nil {
		t.Fatalf("client secret after rotation: %v", err)
	}
	env2.App.Core.Audit.Flush(ctx)
	master, err := keys.LoadMasterKeys(env2.Cfg.DataDir, newKey, []string{oldKey})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, env2.App.Core.Store, app.AuditSigner(master), audit.VerifyOptions{})
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("audit trail across the rotation: %v %v", err, rep.Problems)
	}
	// Without the old key, what it sealed no longer opens.
	newOnly, _ := keys.ParseMasterKey(newKey)
	bare, err := sts.New(env2.Cfg, newOnly, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bare.Open(ak, tok); err == nil {
		t.Fatal("a session sealed under the old key opened without it")
	}
	// New credentials are sealed under the new key alone. (The restarted
	// idp listens elsewhere: its issuer, hence the identity, is new.)
	cic2 := ci.New(ci.Options{Region: "us-east-1", BaseEndpoint: aws.String(env2.App.URL(app.Identity)), Credentials: aws.AnonymousCredentials{}})
	logins2 := map[string]string{strings.TrimPrefix(env2.App.URL(app.IDP), "http://") + "/us-east-1_WritDemo1": aliceSignIn(t, env2)}
	id2, err := cic2.GetId(ctx, &ci.GetIdInput{IdentityPoolId: aws.String("us-east-1:2a7c5e0e-6f43-4a8e-9a51-3f1f0c5d7b21"), Logins: logins2})
	if err != nil {
		t.Fatal(err)
	}
	creds2, err := cic2.GetCredentialsForIdentity(ctx, &ci.GetCredentialsForIdentityInput{IdentityId: id2.IdentityId, Logins: logins2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bare.Open(aws.ToString(creds2.Credentials.AccessKeyId), aws.ToString(creds2.Credentials.SessionToken)); err != nil {
		t.Fatalf("new credentials need the old key: %v", err)
	}
	env2.Stop()

	// Reseal what is kept at rest, then run on the new key alone: the
	// sealed signing keys and TOTP secrets are the new key's now.
	cfg3 := *env2.Cfg
	cfg3.PreviousMasterKeys = []config.Secret{config.NewSecret(oldKey)}
	core, err := app.OpenCore(ctx, &cfg3, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	nk, nu, err := app.Reseal(ctx, core)
	core.Close(ctx)
	if err != nil || nk < 2 || nu < 1 {
		t.Fatalf("reseal: %d signing keys, %d users, %v", nk, nu, err)
	}
	env3 := apptest.StartDir(t, dir, apptest.CheapArgon2, func(c *config.Config) { c.MasterKey = config.NewSecret(newKey) })
	env3.Clock.Advance(3 * time.Minute) // past the TOTP windows used before
	aliceSignIn(t, env3)
	if _, err := env3.App.STS.Open(aws.ToString(creds2.Credentials.AccessKeyId), aws.ToString(creds2.Credentials.SessionToken)); err != nil {
		t.Fatalf("credentials sealed under the new key: %v", err)
	}
	if _, err := env3.App.STS.Open(ak, tok); err == nil {
		t.Fatal("credentials sealed under the dropped key still open")
	}
}
