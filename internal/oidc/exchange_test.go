package oidc_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/smithy-go"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
)

// TestTokenExchangeOfAnIDToken: the subject may be the user's ID token; the
// result is an access token for the audience with the same sub, the amr
// and auth_time of the sign-in, and the caller as actor.
func TestTokenExchangeOfAnIDToken(t *testing.T) {
	f := start(t)
	ar := f.alice()
	idt := claims(t, aws.ToString(ar.IdToken))
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {aws.ToString(ar.IdToken)},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}, "resource": {"files-service"}}
	status, body, _ := f.post("/oauth2/token", form, "orders-service", "orders-demo-secret")
	if status != 200 {
		t.Fatalf("exchange of an ID token: %d %v", status, body)
	}
	c := claims(t, body["access_token"].(string))
	act, _ := json.Marshal(c["act"])
	if c["token_use"] != "access" || c["aud"] != "files-service" || c["sub"] != idt["sub"] || c["auth_time"] != idt["auth_time"] ||
		string(act) != `{"client_id":"orders-service","sub":"orders-service"}` {
		t.Fatalf("claims %v", c)
	}
	if c["exp"].(float64) > idt["exp"].(float64) {
		t.Error("outlives the subject token")
	}
	// The declared type must match the token: an ID token is no access
	// token, nor the other way round; the generic JWT type takes either.
	for _, x := range []struct {
		subject, typ string
		want         int
	}{
		{aws.ToString(ar.IdToken), "urn:ietf:params:oauth:token-type:access_token", 400},
		{aws.ToString(ar.AccessToken), "urn:ietf:params:oauth:token-type:id_token", 400},
		{aws.ToString(ar.IdToken), "urn:ietf:params:oauth:token-type:jwt", 200},
		{aws.ToString(ar.AccessToken), "urn:ietf:params:oauth:token-type:jwt", 200},
	} {
		form.Set("subject_token", x.subject)
		form.Set("subject_token_type", x.typ)
		status, body, _ := f.post("/oauth2/token", form, "orders-service", "orders-demo-secret")
		if status != x.want || (x.want == 400 && body["error"] != "invalid_request") {
			t.Errorf("%s token as %s: %d %v", claims(t, x.subject)["token_use"], x.typ, status, body)
		}
	}
}

func TestTokenExchangeRequestChecks(t *testing.T) {
	f := start(t, func(c *config.Config) {
		// A public client allowed the grant in its config still cannot use it:
		// it cannot authenticate, so it cannot be an actor.
		web := &c.UserPools[0].Clients[0]
		web.Flows = append(web.Flows, "token_exchange")
		web.ExchangeAudiences = []string{"files-service"}
	})
	at := aws.ToString(f.alice().AccessToken)
	for name, c := range map[string]struct {
		client, secret string
		extra          url.Values
		code           string
	}{
		"public client":           {"", "", url.Values{"client_id": {"demo-web"}, "audience": {"files-service"}}, "unauthorized_client"},
		"audience and resource":   {"orders-service", "orders-demo-secret", url.Values{"audience": {"files-service"}, "resource": {"https://elsewhere"}}, "invalid_target"},
		"resource not allowed":    {"orders-service", "orders-demo-secret", url.Values{"resource": {"https://elsewhere"}}, "invalid_target"},
		"refresh token requested": {"orders-service", "orders-demo-secret", url.Values{"audience": {"files-service"}, "requested_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}, "invalid_request"},
		"no subject token type":   {"orders-service", "orders-demo-secret", url.Values{"audience": {"files-service"}, "subject_token_type": {""}}, "invalid_request"},
		"saml subject":            {"orders-service", "orders-demo-secret", url.Values{"audience": {"files-service"}, "subject_token_type": {"urn:ietf:params:oauth:token-type:saml2"}}, "invalid_request"},
		"wrong secret":            {"orders-service", "nope", url.Values{"audience": {"files-service"}}, "invalid_client"},
	} {
		t.Run(name, func(t *testing.T) {
			status, body := exchange(f, c.client, c.secret, at, c.extra)
			want := 400
			if c.code == "invalid_client" {
				want = 401
			}
			if status != want || body["error"] != c.code {
				t.Fatalf("got %d %v, want %d %s", status, body, want, c.code)
			}
		})
	}
	// A client-credentials token names no user: it cannot be exchanged.
	_, cc, _ := f.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "files-service", "files-demo-secret")
	if status, body := exchange(f, "orders-service", "orders-demo-secret", cc["access_token"].(string), url.Values{"audience": {"files-service"}}); status != 400 || body["error"] != "invalid_request" {
		t.Fatalf("exchange of a client token: %d %v", status, body)
	}
}

// TestExchangedTokenCannotActOnTheAccount: the account scope (the Cognito
// user API) is the user's own: a token exchanged for a service carries it
// not (openid in its place), cannot ask for it, and a token with an actor is refused there
// whatever its scope (GetUser, DeleteUser, TOTP setup all read the same
// check), so a service downstream cannot delete the user or replace the
// user's second factor.
func TestExchangedTokenCannotActOnTheAccount(t *testing.T) {
	f := start(t)
	at := aws.ToString(f.alice().AccessToken)
	if !strings.Contains(claims(t, at)["scope"].(string), "aws.cognito.signin.user.admin") {
		t.Fatalf("alice's own token lacks the account scope: %v", claims(t, at)["scope"])
	}
	status, body := exchange(f, "orders-service", "orders-demo-secret", at, url.Values{"audience": {"files-service"}})
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, body)
	}
	xt := body["access_token"].(string)
	if strings.Contains(claims(t, xt)["scope"].(string), "aws.cognito.signin.user.admin") || strings.Contains(body["scope"].(string), "aws.cognito.signin.user.admin") {
		t.Fatalf("the exchanged token carries the account scope: %v", body)
	}
	status, body = exchange(f, "orders-service", "orders-demo-secret", at, url.Values{"audience": {"files-service"}, "scope": {"aws.cognito.signin.user.admin"}})
	if status != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("asking for the account scope: %d %v", status, body)
	}
	c := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.IDP)), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	_, err := c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: aws.String(xt)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "NotAuthorizedException" {
		t.Fatalf("GetUser with an exchanged token: %v", err)
	}
	if _, err := c.DeleteUser(f.ctx, &cip.DeleteUserInput{AccessToken: aws.String(xt)}); !errors.As(err, &ae) || ae.ErrorCode() != "NotAuthorizedException" {
		t.Fatalf("DeleteUser with an exchanged token: %v", err)
	}
	if _, err := c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: aws.String(at)}); err != nil {
		t.Fatalf("alice's own token: %v", err)
	}
	// What the account scope let read, the user's claims, openid still
	// reads.
	if st, raw, m := f.userInfo("Bearer " + xt); st != 200 || m["sub"] != claims(t, at)["sub"] {
		t.Fatalf("userInfo with the exchanged token: %d %s", st, raw)
	}
}
