package userpool_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// demoPool starts writ and returns the demo pool and its demo-web client,
// to call the pool's operations directly.
func demoPool(t *testing.T) (*apptest.Env, *userpool.Pool, store.Client) {
	env := apptest.Start(t)
	core := env.App.Core
	svc := userpool.New(env.Cfg, "http://127.0.0.1", userpool.Deps{Store: core.Store, Keys: core.Keys, Master: core.Master,
		Mail: &userpool.MailQueue{}, Now: env.Clock.Now, Argon2: apptest.CheapArgon2})
	p, c, err := svc.ClientPool(context.Background(), "demo-web")
	if err != nil {
		t.Fatal(err)
	}
	return env, p, c
}

// The per-source limits on code requests and codes given apply to a
// request with a source address, and not to one without (an internal
// caller), however many it makes.
func TestCodeLimitsPerSourceSkipCallersWithoutAddress(t *testing.T) {
	_, p, c := demoPool(t)
	ctx := context.Background()
	tooMany := func(err error) bool {
		var ue *userpool.Error
		return errors.As(err, &ue) && ue.Code == userpool.CodeTooManyRequests
	}
	for _, src := range []string{"", "127.0.0.9"} {
		for i := range 120 {
			user := fmt.Sprintf("nobody-%q-%d", src, i)
			_, sendErr := p.ForgotPassword(ctx, c, user, "", src)
			checkErr := p.ConfirmSignUp(ctx, c, user, "123456", "", src)
			if limited := src != "" && i >= 100; tooMany(sendErr) != limited || tooMany(checkErr) != limited {
				t.Fatalf("source %q, request %d: %v / %v (limited: %v)", src, i+1, sendErr, checkErr, limited)
			}
		}
	}
}

// Only failed codes count toward the per-source limit on codes given:
// one address (an office behind NAT) confirms any number of right codes,
// and its failures are still limited.
func TestCodeLimitPerSourceCountsFailures(t *testing.T) {
	env, p, c := demoPool(t)
	core, ctx := env.App.Core, context.Background()
	const office = "198.51.100.7"
	codeRE := regexp.MustCompile(`\b\d{6}\b`)
	var seen int64
	for i := range 120 {
		user := fmt.Sprintf("staff-%d", i)
		if _, _, err := p.SignUp(ctx, c, user, "Staff-Passw0rd1", "", []userpool.Attribute{{Name: "email", Value: user + "@example.com"}}, ""); err != nil {
			t.Fatal(err)
		}
		ms, err := core.Store.ListMail(ctx, seen)
		if err != nil || len(ms) != 1 {
			t.Fatalf("mail for %s: %v, %v", user, ms, err)
		}
		seen = ms[0].ID
		if err := p.ConfirmSignUp(ctx, c, user, codeRE.FindString(ms[0].Body), "", office); err != nil {
			t.Fatalf("right code %d from one address: %v", i+1, err)
		}
		if u, _ := core.Store.GetUser(ctx, env.Cfg.UserPools[0].ID, user); u.Status != store.StatusConfirmed {
			t.Fatalf("%s: %s", user, u.Status)
		}
	}
	for i := range 101 {
		err := p.ConfirmSignUp(ctx, c, fmt.Sprint("nobody-", i), "123456", "", office)
		var ue *userpool.Error
		if tooMany := errors.As(err, &ue) && ue.Code == userpool.CodeTooManyRequests; tooMany != (i == 100) {
			t.Fatalf("wrong code %d: %v", i+1, err)
		}
	}
}

// Sign-ups without an email address mail nothing and do not count toward
// the per-source limit on code requests (scripts create users that way);
// with one, the 101st from an address is refused and creates nothing.
func TestSignUpLimitPerSource(t *testing.T) {
	env, p, c := demoPool(t)
	ctx := context.Background()
	const src = "203.0.113.50"
	for i := range 150 {
		if _, _, err := p.SignUp(ctx, c, fmt.Sprintf("script-%d", i), "Script-Passw0rd1", "", nil, src); err != nil {
			t.Fatalf("sign-up %d without email: %v", i+1, err)
		}
	}
	for i := range 101 {
		user := fmt.Sprintf("mailed-%d", i)
		_, _, err := p.SignUp(ctx, c, user, "Mailed-Passw0rd1", "", []userpool.Attribute{{Name: "email", Value: user + "@example.com"}}, src)
		var ue *userpool.Error
		if tooMany := errors.As(err, &ue) && ue.Code == userpool.CodeTooManyRequests; tooMany != (i == 100) || !tooMany && err != nil {
			t.Fatalf("sign-up %d with email: %v", i+1, err)
		}
		_, err = env.App.Core.Store.GetUser(ctx, env.Cfg.UserPools[0].ID, user)
		if created := err == nil; created != (i < 100) {
			t.Fatalf("sign-up %d with email: user created %v (%v)", i+1, created, err)
		}
	}
}
