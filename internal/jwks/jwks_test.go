package jwks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/jwks"
	"github.com/writ-id/writ/internal/token"
)

const poolID = "us-east-1_WritDemo1"

// mint signs a token with the pool's current key, as the idp does.
func mint(t *testing.T, env *apptest.Env) string {
	t.Helper()
	k, err := env.App.Core.Keys.Signer(context.Background(), poolID)
	if err != nil {
		t.Fatal(err)
	}
	iss := env.App.URL(app.IDP) + "/" + poolID
	raw, err := token.Mint(k, map[string]any{"iss": iss, "sub": "s", "exp": env.Clock.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestRemoteFollowsRotationAndSurvivesIssuerOutage(t *testing.T) {
	env := apptest.Start(t)
	ctx := context.Background()
	iss := env.App.URL(app.IDP) + "/" + poolID
	clock := apptest.NewClock(time.Now())
	r := jwks.New(iss, jwks.Options{Now: clock.Now, MinRefetch: 10 * time.Second})
	v := &token.Verifier{Issuer: iss, Keys: r}
	if _, err := v.Verify(ctx, mint(t, env)); err != nil {
		t.Fatalf("first verification (discovers and fetches): %v", err)
	}
	if f, _ := r.Stats(); f != 1 {
		t.Fatalf("fetches = %d", f)
	}
	// Tokens under unknown kids refetch at most once per MinRefetch.
	forged := "eyJhbGciOiJFUzI1NiIsImtpZCI6Im5vcGUifQ.eyJpc3MiOiJ4In0.AAAA"
	for i := 0; i < 5; i++ {
		if _, err := v.Verify(ctx, forged); !errors.Is(err, token.ErrUnknownKey) {
			t.Fatalf("forged kid: %v", err)
		}
	}
	clock.Advance(11 * time.Second)
	v.Verify(ctx, forged)
	v.Verify(ctx, forged)
	if f, _ := r.Stats(); f != 2 {
		t.Fatalf("unknown kids caused %d fetches, want 2 (rate-limited)", f)
	}
	// A rotation whose new key is already signing (no activation delay
	// here: the worst case) is picked up through the unknown-kid refetch.
	if _, err := env.App.Core.Keys.Rotate(ctx, poolID, "ES256", time.Hour); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(11 * time.Minute)
	env.App.Core.Keys.Reload()
	clock.Advance(11 * time.Second)
	if _, err := v.Verify(ctx, mint(t, env)); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	// The issuer goes away: cached keys keep verifying.
	good := mint(t, env)
	env.App.Stop()
	time.Sleep(100 * time.Millisecond)
	clock.Advance(time.Minute)
	if err := r.Refresh(ctx); err == nil {
		t.Fatal("refresh with the issuer down succeeded")
	}
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatalf("issuer down, cached key: %v", err)
	}
}
