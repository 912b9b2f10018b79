package userpool_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/userpool"
)

// The per-source limits on code requests and codes given apply to a
// request with a source address, and not to one without (an internal
// caller), however many it makes.
func TestCodeLimitsPerSourceSkipCallersWithoutAddress(t *testing.T) {
	env := apptest.Start(t)
	core := env.App.Core
	svc := userpool.New(env.Cfg, "http://127.0.0.1", userpool.Deps{Store: core.Store, Keys: core.Keys, Master: core.Master,
		Mailer: userpool.OutboxMailer{Store: core.Store}, Now: env.Clock.Now, Argon2: apptest.CheapArgon2})
	ctx := context.Background()
	p, c, err := svc.ClientPool(ctx, "demo-web")
	if err != nil {
		t.Fatal(err)
	}
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
