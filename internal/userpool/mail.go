package userpool

import (
	"context"

	"github.com/writ-id/writ/internal/store"
)

// MailQueue queues the pools' mail in the store's outbox, in the transaction
// that stores what the mail carries (a code, a temporary password). A
// request never talks to an SMTP server itself (see package mail).
type MailQueue struct {
	// Deliver queues mail for the SMTP sender; without it, mail stays in
	// the outbox for `writ outbox` to show.
	Deliver bool
	// Wake, when set, tells this process's sender that mail is waiting.
	Wake func()
}

// queueMail queues a message to the address to in tx (nothing when no
// mailer is configured). The caller calls mailQueued once tx committed.
func (p *Pool) queueMail(ctx context.Context, tx store.Outbox, to, subject, body string) error {
	m := p.svc.deps.Mail
	if m == nil || to == "" {
		return nil
	}
	_, err := tx.EnqueueMail(ctx, store.Mail{To: to, Subject: subject, Body: body, CreatedAt: p.now(), Deliver: m.Deliver})
	return err
}

// mailQueued wakes the sender after a transaction that queued mail.
func (p *Pool) mailQueued() {
	if m := p.svc.deps.Mail; m != nil && m.Wake != nil {
		m.Wake()
	}
}
