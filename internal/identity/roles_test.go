package identity_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ci "github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
)

// credsRole signs user in, trades the ID token through the identity pool
// and returns the role of the credentials it gets (or the error).
func (f *fx) credsRole(user, pw string) (string, error) {
	f.t.Helper()
	logins := map[string]string{f.loginKey(): f.signIn(user, pw)}
	id, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: logins})
	if err != nil {
		return "", err
	}
	out, err := f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: id.IdentityId, Logins: logins})
	if err != nil {
		return "", err
	}
	s, err := f.App.STS.Open(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SessionToken))
	if err != nil {
		f.t.Fatal(err)
	}
	return s.Role, nil
}

func withRules(ambiguous string, rules ...config.RoleRule) func(*config.Config) {
	return func(c *config.Config) {
		p := &c.IdentityPools[0].Providers[0]
		p.RoleResolution, p.Ambiguous, p.Rules = "rules", ambiguous, rules
	}
}

// TestRulesRoleResolution: the first matching rule picks the role; each
// match type works on the token's claims; no match falls back to the
// authenticated role, or is refused when the pool says deny.
func TestRulesRoleResolution(t *testing.T) {
	staff := func(claim, match, value string) config.RoleRule {
		return config.RoleRule{Claim: claim, Match: match, Value: value, Role: "demo-staff"}
	}
	for _, c := range []struct {
		name      string
		ambiguous string
		rules     []config.RoleRule
		alice     string // role alice gets ("" = refused)
		bob       string
	}{
		{"Equals on a custom attribute", "", []config.RoleRule{staff("custom:department", "Equals", "engineering")}, "demo-staff", "demo-user"},
		{"Contains on the groups claim", "", []config.RoleRule{staff("cognito:groups", "Contains", "staff")}, "demo-staff", "demo-user"},
		{"StartsWith on the email", "", []config.RoleRule{staff("email", "StartsWith", "bob@")}, "demo-user", "demo-staff"},
		// A rule's claim must be in the token: NotEqual on a missing claim
		// does not match (bob has no department).
		{"NotEqual on another value matches", "", []config.RoleRule{staff("custom:department", "NotEqual", "sales")}, "demo-staff", "demo-user"},
		{"NotEqual on a missing claim does not match", "deny", []config.RoleRule{staff("custom:department", "NotEqual", "engineering")}, "", ""},
		{"first match wins", "", []config.RoleRule{
			{Claim: "email", Match: "Contains", Value: "@example.com", Role: "demo-user"},
			staff("custom:department", "Equals", "engineering")}, "demo-user", "demo-user"},
		{"no match with deny", "deny", []config.RoleRule{staff("custom:department", "Equals", "engineering")}, "demo-staff", ""},
		{"Equals is exact", "deny", []config.RoleRule{staff("custom:department", "Equals", "Engineering")}, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := start(t, withRules(c.ambiguous, c.rules...))
			for _, u := range []struct{ name, pw, want string }{{"alice", "Alice-Passw0rd", c.alice}, {"bob", "Bob-Passw0rd1", c.bob}} {
				got, err := f.credsRole(u.name, u.pw)
				if u.want == "" {
					wantCode(t, err, "NotAuthorizedException")
					continue
				}
				if err != nil || got != u.want {
					t.Fatalf("%s: role %q, err %v; want %s", u.name, got, err, u.want)
				}
			}
		})
	}
}

// TestUnauthenticatedFlow: a pool that allows guests gives an identity and
// guest-role credentials without any login; GetOpenIdToken says so in
// amr; the guest role's trust can refuse authenticated-only access; and a
// pool that stops allowing guests refuses their identities.
func TestUnauthenticatedFlow(t *testing.T) {
	guestTrust := `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
	  "Principal": {"Federated": "cognito-identity.amazonaws.com"}, "Action": "sts:AssumeRoleWithWebIdentity",
	  "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": "` + identPool + `"},
	    "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "unauthenticated"}}}]}`
	guest := func(c *config.Config) {
		c.IdentityPools[0].AllowUnauthenticated = true
		c.IdentityPools[0].AllowClassicFlow = true
		c.IdentityPools[0].UnauthenticatedRole = "demo-guest"
		c.IAM.Roles = append(c.IAM.Roles, config.Role{Name: "demo-guest", Trust: config.NewPolicyDoc([]byte(guestTrust)),
			Policy: config.NewPolicyDoc([]byte(`{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/public/*"}]}`))})
	}
	f := start(t, guest)
	id, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool)})
	if err != nil {
		t.Fatalf("guest GetId: %v", err)
	}
	id2, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool)})
	if err != nil || aws.ToString(id2.IdentityId) == aws.ToString(id.IdentityId) {
		t.Fatalf("each guest gets an identity of its own: %v %v", id2, err)
	}
	out, err := f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: id.IdentityId})
	if err != nil {
		t.Fatalf("guest credentials: %v", err)
	}
	s, err := f.App.STS.Open(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SessionToken))
	if err != nil || s.Role != "demo-guest" || s.IdentityID != aws.ToString(id.IdentityId) {
		t.Fatalf("guest session %+v, %v", s, err)
	}
	ot, err := f.ci.GetOpenIdToken(f.ctx, &ci.GetOpenIdTokenInput{IdentityId: id.IdentityId})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(aws.ToString(ot.Token), []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var cl struct {
		Sub string   `json:"sub"`
		Aud string   `json:"aud"`
		Amr []string `json:"amr"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&cl); err != nil || cl.Sub != aws.ToString(id.IdentityId) || cl.Aud != identPool ||
		strings.Join(cl.Amr, ",") != "unauthenticated" {
		t.Fatalf("guest OpenID token claims %+v, %v", cl, err)
	}
	// A signed-in user's identity cannot be used without its login.
	logins := map[string]string{f.loginKey(): f.signIn("alice", "Alice-Passw0rd")}
	aid, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: logins})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: aid.IdentityId})
	wantCode(t, err, "NotAuthorizedException")

	// The guest role's trust refuses an authenticated web identity: to the
	// caller, as Cognito answers, a misconfigured pool, with none of the
	// policy's reasons (those go to the audit trail).
	f2 := start(t, guest, func(c *config.Config) {
		c.IdentityPools[0].AuthenticatedRole = "demo-guest"
		c.IdentityPools[0].Providers[0].RoleResolution = ""
	})
	_, err = f2.credsRole("bob", "Bob-Passw0rd1")
	wantCode(t, err, "InvalidIdentityPoolConfigurationException")
	if strings.Contains(err.Error(), "statement") || strings.Contains(err.Error(), "amr") {
		t.Errorf("the refusal explains the trust policy to the caller: %v", err)
	}
	if evs := f2.AuditEvents(t, store.AuditFilter{Component: "identity"}); len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Reason, "trust policy") {
		t.Errorf("the audit trail lacks the trust policy's reason: %+v", evs)
	}

	// A pool without guests refuses guest identities, even old ones.
	f3 := start(t)
	_, err = f3.ci.GetId(f3.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool)})
	wantCode(t, err, "NotAuthorizedException")
}

// TestCustomRoleArnAmongTokenRoles: with token role resolution, a
// CustomRoleArn may name any role of the token's cognito:roles (carol is in
// staff and customers); one outside them is refused; without one,
// cognito:preferred_role decides.
func TestCustomRoleArnAmongTokenRoles(t *testing.T) {
	f := start(t, func(c *config.Config) {
		c.UserPools[0].Users = append(c.UserPools[0].Users, config.User{Username: "carol", Password: config.NewSecret("Carol-Passw0rd1"),
			Email: "carol@example.com", EmailVerified: true, Groups: []string{"staff", "customers"}})
	})
	logins := map[string]string{f.loginKey(): f.signIn("carol", "Carol-Passw0rd1")}
	id, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: logins})
	if err != nil {
		t.Fatal(err)
	}
	roleOf := func(custom string) (string, error) {
		in := &ci.GetCredentialsForIdentityInput{IdentityId: id.IdentityId, Logins: logins}
		if custom != "" {
			in.CustomRoleArn = aws.String(custom)
		}
		out, err := f.ci.GetCredentialsForIdentity(f.ctx, in)
		if err != nil {
			return "", err
		}
		s, err := f.App.STS.Open(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SessionToken))
		return s.Role, err
	}
	for custom, want := range map[string]string{"": "demo-staff", userRole: "demo-user", "arn:aws:iam::000000000000:role/demo-staff": "demo-staff"} {
		if got, err := roleOf(custom); err != nil || got != want {
			t.Errorf("CustomRoleArn %q: %q %v, want %q", custom, got, err, want)
		}
	}
	if _, err := roleOf("arn:aws:iam::000000000000:role/ops"); code(err) != "NotAuthorizedException" {
		t.Errorf("a CustomRoleArn outside cognito:roles: %v", err)
	}
}
