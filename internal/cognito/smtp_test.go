package cognito_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
)

// mailedCode returns the code in a message the SMTP server received for to.
func mailedCode(t *testing.T, m apptest.Message, to string) string {
	t.Helper()
	if len(m.To) != 1 || m.To[0] != to || !strings.Contains(m.Data, "To: <"+to+">\r\n") {
		t.Fatalf("mail %+v, want one to %s", m, to)
	}
	c := codeRE.FindStringSubmatch(m.Data)
	if c == nil {
		t.Fatalf("no code in %q", m.Data)
	}
	return c[1]
}

// TestCodesBySMTP: with mail.smtp set, codes reach the user through the
// SMTP server, sent after the request that asked for them has answered:
// a stalled server slows no request, and the code waits in the outbox
// until it goes (then its body is erased).
func TestCodesBySMTP(t *testing.T) {
	srv := apptest.StartSMTP(t, apptest.SMTPOptions{})
	f := start(t, func(c *config.Config) { c.Mail.SMTP = srv.Addr; c.Mail.From = "auth@writ.test" })

	// Sign-up: the confirmation code arrives by SMTP.
	_, err := f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("carol"),
		Password: aws.String("Carol-Passw0rd"), UserAttributes: []types.AttributeType{{Name: aws.String("email"), Value: aws.String("carol@example.com")}}})
	if err != nil {
		t.Fatal(err)
	}
	m := srv.Next(t, 10*time.Second)
	if m.From != "auth@writ.test" {
		t.Fatalf("from %q", m.From)
	}
	code := mailedCode(t, m, "carol@example.com")
	if _, err := f.c.ConfirmSignUp(f.ctx, &cip.ConfirmSignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("carol"),
		ConfirmationCode: aws.String(code)}); err != nil {
		t.Fatal(err)
	}

	// A stalled server: ForgotPassword answers all the same (the server
	// holds every message until released), and the code goes once it
	// answers again.
	srv.Hold()
	out, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	if d := aws.ToString(out.CodeDeliveryDetails.Destination); d != "a***@e***" {
		t.Fatalf("destination %q", d)
	}
	if m, ok := srv.Received(); ok {
		t.Fatalf("received while stalled: %+v", m)
	}
	srv.Release()
	code = mailedCode(t, srv.Next(t, 30*time.Second), "alice@example.com")
	if _, err := f.c.ConfirmForgotPassword(f.ctx, &cip.ConfirmForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("alice"),
		ConfirmationCode: aws.String(code), Password: aws.String("Alice-N3w-Passw0rd")}); err != nil {
		t.Fatal(err)
	}

	// Sent mail keeps no code at rest, once the sender recorded it (a
	// moment after the server took it).
	var ms []store.Mail
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if ms, err = f.App.Core.Store.ListMail(f.ctx, 0); err != nil {
			t.Fatal(err)
		}
		if len(ms) == 2 && !ms[0].DoneAt.IsZero() && !ms[1].DoneAt.IsZero() || time.Now().After(deadline) {
			break
		}
	}
	if len(ms) != 2 {
		t.Fatalf("outbox holds %d messages, want 2", len(ms))
	}
	for _, m := range ms {
		if !m.Deliver || m.DoneAt.IsZero() || m.Body != "" || m.LastError != "" {
			t.Fatalf("outbox after delivery: %+v", m)
		}
	}
	sent := apptest.ScrapeMetrics(t, f.App.URL(app.Ops))["writ_mail_deliveries_total"]
	if sent == nil || len(sent.Metric) != 1 || sent.Metric[0].GetLabel()[0].GetValue() != "sent" || sent.Metric[0].GetCounter().GetValue() != 2 {
		t.Fatalf("writ_mail_deliveries_total: %v", sent)
	}
}

// TestUnknownUserSendsNothingBySMTP: ForgotPassword for an unknown user
// answers as for a known one and queues nothing.
func TestUnknownUserSendsNothingBySMTP(t *testing.T) {
	srv := apptest.StartSMTP(t, apptest.SMTPOptions{})
	f := start(t, func(c *config.Config) { c.Mail.SMTP = srv.Addr })
	out, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("mallory")})
	if err != nil || out.CodeDeliveryDetails == nil || !strings.Contains(aws.ToString(out.CodeDeliveryDetails.Destination), "***@") {
		t.Fatalf("ForgotPassword(unknown): %+v %v", out, err)
	}
	if ms, _ := f.App.Core.Store.ListMail(f.ctx, 0); len(ms) != 0 {
		t.Fatalf("queued for an unknown user: %+v", ms)
	}
}
