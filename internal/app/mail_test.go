package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/store"
)

// TestUndeliveredMailWarned: started without mail.smtp on a store where
// mail queued for SMTP waits, writ says so (no sender here delivers it).
func TestUndeliveredMailWarned(t *testing.T) {
	dir := t.TempDir()
	env := apptest.StartDir(t, dir, apptest.CheapArgon2)
	if strings.Contains(env.Log.String(), "messages wait for SMTP delivery") {
		t.Fatal("warned with nothing waiting")
	}
	if _, err := env.App.Core.Store.EnqueueMail(context.Background(), store.Mail{To: "a@example.com", Subject: "Your code", Body: "code",
		CreatedAt: time.Now(), Deliver: true}); err != nil {
		t.Fatal(err)
	}
	env.Stop()
	again := apptest.StartDir(t, dir, apptest.CheapArgon2)
	if log := again.Log.String(); !strings.Contains(log, "messages wait for SMTP delivery") || !strings.Contains(log, "waiting=1") {
		t.Fatalf("no warning:\n%s", log)
	}
}
