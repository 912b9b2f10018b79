package cognito_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/config"
)

// TestRefreshWithoutGrace: with tokens.refresh_grace written as 0s, a
// rotated refresh token presented again, even at once (the clock has not
// moved), is reuse: refused, its whole family revoked (the successor too)
// and its sign-in's access tokens with it.
func TestRefreshWithoutGrace(t *testing.T) {
	const tokens = "tokens: { id: 1h, access: 1h, refresh: 720h, rotate_refresh: true }"
	if !strings.Contains(string(examples.ReferenceConfig), tokens) {
		t.Fatal("the reference file's tokens line has changed")
	}
	src := strings.Replace(string(examples.ReferenceConfig), tokens,
		"tokens: { id: 1h, access: 1h, refresh: 720h, rotate_refresh: true, refresh_grace: 0s }", 1)
	parsed, err := config.Parse([]byte(src), filepath.Join(t.TempDir(), "writ.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if g := parsed.UserPools[0].Tokens.RefreshGrace; g != 0 {
		t.Fatalf("refresh_grace: 0s loaded as %v", g)
	}
	f := start(t, func(c *config.Config) { c.UserPools[0].Tokens = parsed.UserPools[0].Tokens })

	ar := f.signInAlice()
	// On a whole second (the store keeps times to the millisecond), the
	// retry below comes at the very instant of the first use as stored.
	now := f.Clock.Now()
	f.Clock.Advance(now.Truncate(time.Second).Add(time.Second).Sub(now))
	r1, err := f.refresh(ar.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	n1 := r1.AuthenticationResult
	if aws.ToString(n1.RefreshToken) == "" || aws.ToString(n1.RefreshToken) == aws.ToString(ar.RefreshToken) {
		t.Fatal("rotate_refresh: want a new refresh token")
	}
	if _, err := f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: n1.AccessToken}); err != nil {
		t.Fatalf("GetUser with the refreshed access token: %v", err)
	}
	// The immediate retry (a grace of 30 s would replay the same tokens).
	_, err = f.refresh(ar.RefreshToken)
	if e := wantCode(t, err, "NotAuthorizedException"); e.Message != "Refresh Token has been revoked" {
		t.Errorf("message %q", e.Message)
	}
	// The family is revoked: the unused successor is refused too.
	_, err = f.refresh(n1.RefreshToken)
	wantCode(t, err, "NotAuthorizedException")
	// And the sign-in's access tokens, first and refreshed.
	for _, at := range []*string{ar.AccessToken, n1.AccessToken} {
		_, err = f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: at})
		wantCode(t, err, "NotAuthorizedException")
	}

	// Another sign-in is untouched, and still rotates: its successor
	// works, however soon.
	f.Clock.Advance(time.Second)
	other := f.signInAlice()
	r2, err := f.refresh(other.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.refresh(r2.AuthenticationResult.RefreshToken); err != nil {
		t.Fatalf("refresh with the successor: %v", err)
	}
}
