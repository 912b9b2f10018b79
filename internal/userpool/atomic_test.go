package userpool_test

import (
	"context"
	"errors"
	"regexp"
	"testing"

	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// failingCodes is a store whose PutCode fails, in a transaction or not, as
// a store that goes away mid-request does.
type failingCodes struct{ store.Store }

type failingTx struct{ store.Tx }

func (failingTx) PutCode(context.Context, store.Code) error { return errors.New("connection lost") }

func (f failingCodes) PutCode(context.Context, store.Code) error {
	return errors.New("connection lost")
}
func (f failingCodes) InTx(ctx context.Context, fn func(store.Tx) error) error {
	return f.Store.InTx(ctx, func(tx store.Tx) error { return fn(failingTx{tx}) })
}

// A change and the code that goes with it are one write: when the code
// cannot be stored, the change is not made either (AdminResetUserPassword
// leaves no user RESET_REQUIRED and signed out without a code; an email
// change leaves no unverified address without its code).
func TestChangeAndItsCodeAreOneWrite(t *testing.T) {
	env := apptest.Start(t)
	core, ctx := env.App.Core, context.Background()
	svc := userpool.New(env.Cfg, "http://127.0.0.1", userpool.Deps{Store: failingCodes{core.Store}, Keys: core.Keys, Master: core.Master,
		Mail: &userpool.MailQueue{}, Now: env.Clock.Now, Argon2: apptest.CheapArgon2})
	p, _, err := svc.ClientPool(ctx, "demo-web")
	if err != nil {
		t.Fatal(err)
	}
	pool := env.Cfg.UserPools[0].ID
	before, _ := core.Store.GetUser(ctx, pool, "alice")
	if err := p.AdminResetPassword(ctx, "alice"); err == nil {
		t.Fatal("AdminResetPassword succeeded without its code")
	}
	if err := p.AdminUpdateAttributes(ctx, "alice", []userpool.Attribute{{Name: "email", Value: "alice@new.example.com"}}); err == nil {
		t.Fatal("AdminUpdateAttributes succeeded without the new address's code")
	}
	after, _ := core.Store.GetUser(ctx, pool, "alice")
	if after.Status != before.Status || !after.RevokedBefore.Equal(before.RevokedBefore) || after.Email != before.Email || !after.EmailVerified {
		t.Fatalf("alice changed: %s %v %s %v, was %s %v %s", after.Status, after.RevokedBefore, after.Email, after.EmailVerified,
			before.Status, before.RevokedBefore, before.Email)
	}
	if ms, _ := core.Store.ListMail(ctx, 0); len(ms) != 0 {
		t.Fatalf("mail queued: %+v", ms)
	}
}

// A reset code sent before an administrator gave the user a temporary
// password sets no password afterwards: the first sign-in with the
// temporary one sets it.
func TestOldResetCodeAfterTemporaryPassword(t *testing.T) {
	env, p, c := demoPool(t)
	ctx := context.Background()
	if _, err := p.ForgotPassword(ctx, c, "bob", "", ""); err != nil {
		t.Fatal(err)
	}
	ms, err := env.App.Core.Store.ListMail(ctx, 0)
	if err != nil || len(ms) == 0 {
		t.Fatalf("no mail: %v", err)
	}
	code := regexp.MustCompile(`\b\d{6}\b`).FindString(ms[len(ms)-1].Body)
	if err := p.AdminSetPassword(ctx, "bob", "Temp-Passw0rd9", false); err != nil {
		t.Fatal(err)
	}
	err = p.ConfirmForgotPassword(ctx, c, "bob", code, "Attacker-Passw0rd1", "", "")
	var ue *userpool.Error
	if !errors.As(err, &ue) || ue.Code != userpool.CodeNotAuthorized {
		t.Fatalf("ConfirmForgotPassword with the old code: %v", err)
	}
	if u, _ := env.App.Core.Store.GetUser(ctx, env.Cfg.UserPools[0].ID, "bob"); u.Status != store.StatusForceChangePassword {
		t.Fatalf("bob is %s", u.Status)
	}
}

// A group from the configuration whose name the API would refuse (a
// space) is still updated.
func TestConfiguredGroupUpdates(t *testing.T) {
	env := apptest.Start(t, func(c *config.Config) {
		c.UserPools[0].Groups = append(c.UserPools[0].Groups, config.Group{Name: "Team A", Precedence: new(3)})
	})
	ctx := context.Background()
	p, _, err := env.App.Pools.ClientPool(ctx, "demo-web")
	if err != nil {
		t.Fatal(err)
	}
	d := "new description"
	if g, err := env.App.Pools.UpdateGroup(ctx, p, "Team A", userpool.GroupUpdate{Description: &d}); err != nil || g.Description != d {
		t.Fatalf("UpdateGroup of a configured group: %+v %v", g, err)
	}
}
