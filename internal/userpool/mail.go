package userpool

import (
	"context"
	"fmt"
	"net/smtp"
	"strings"
	"time"

	"github.com/writ-id/writ/internal/store"
)

// Mailer delivers a message to one address.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// OutboxMailer keeps mail in the store's outbox, for `writ outbox` to show
// when no SMTP server is configured.
type OutboxMailer struct {
	Store store.Outbox
	Now   func() time.Time
}

// Send stores the message.
func (m OutboxMailer) Send(ctx context.Context, to, subject, body string) error {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	_, err := m.Store.EnqueueMail(ctx, store.Mail{To: to, Subject: subject, Body: body, CreatedAt: now()})
	return err
}

// SMTPMailer sends mail through an SMTP server.
type SMTPMailer struct {
	Addr     string
	From     string
	Username string
	Password string
}

// Send delivers the message.
func (m SMTPMailer) Send(ctx context.Context, to, subject, body string) error {
	if strings.ContainsAny(to+subject, "\r\n") {
		return fmt.Errorf("userpool: mail header contains a line break")
	}
	var auth smtp.Auth
	if m.Username != "" {
		host := m.Addr
		if i := strings.LastIndex(host, ":"); i >= 0 {
			host = host[:i]
		}
		auth = smtp.PlainAuth("", m.Username, m.Password, host)
	}
	msg := "From: " + m.From + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
	return smtp.SendMail(m.Addr, auth, m.From, []string{to}, []byte(msg))
}
