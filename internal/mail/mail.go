// Package mail delivers the mail writ queues in the store's outbox (codes,
// invitations) over SMTP. Requests only queue a message, in the
// transaction that stores what it carries; a Sender (one per process, on
// any replica) claims each message, sends it and records the outcome,
// retrying with backoff. So a request never waits on an SMTP server: a
// slow or failing one slows no sign-up, and how long a request takes does
// not tell whether it mailed anyone.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/writ-id/writ/internal/store"
)

// SMTP is an SMTP server to send through.
type SMTP struct {
	// Addr is host:port.
	Addr string
	From string
	// Username and Password, when set, authenticate with PLAIN, which
	// net/smtp allows only over TLS (STARTTLS) or to localhost.
	Username, Password string
	// Timeout bounds one message's whole conversation (default 1 minute).
	Timeout time.Duration
	// TLS configures STARTTLS, used whenever the server offers it (nil:
	// verify the server's certificate for the host of Addr).
	TLS *tls.Config
}

// Send delivers one message. An error from the server is a
// *textproto.Error carrying its reply code.
func (s SMTP) Send(ctx context.Context, to, subject, body string) error {
	if strings.ContainsAny(to+subject+s.From, "\r\n") {
		return permanent{errors.New("a mail header contains a line break")}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return permanent{fmt.Errorf("smtp address %q: %w", s.Addr, err)}
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline) // a server that stops answering fails the attempt
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := s.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: host}
		}
		if err := c.StartTLS(cfg); err != nil {
			return err
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return err
		}
	}
	if err := c.Mail(s.From); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	msg := "From: " + s.From + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// permanent marks an error that no retry can mend.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// isPermanent reports whether a delivery attempt failed for good: a
// message writ cannot send, or the server's 5xx reply (a mailbox that does
// not exist, a sender refused). Anything else (a 4xx reply, a network
// error, a timeout) is tried again.
func isPermanent(err error) bool {
	var p permanent
	if errors.As(err, &p) {
		return true
	}
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500 && te.Code < 600
}

// Outbox is the part of the store a Sender uses.
type Outbox interface {
	ClaimMail(ctx context.Context, now time.Time, lease time.Duration) (store.Mail, bool, error)
	RetryMail(ctx context.Context, id int64, next time.Time, why string) error
	EndMail(ctx context.Context, id int64, now time.Time, why string) error
}

const (
	// lease is how long a claimed message is the claimer's: longer than
	// an attempt can take (SMTP.Timeout), so that only a sender that died
	// mid-attempt lets another take it over.
	lease = 3 * time.Minute
	// maxAttempts bounds the tries of one message: with backoff, about
	// an hour, the life of a password reset code.
	maxAttempts = 8
	// poll is how often a sender looks for mail other replicas queued
	// (its own it hears of through Wake).
	poll = 5 * time.Second
)

// backoff is the wait before attempt n+1 after n failed ones: 15 s,
// doubling, at most 15 minutes.
func backoff(n int) time.Duration {
	d := 15 * time.Second
	for i := 1; i < n && d < 15*time.Minute; i++ {
		d *= 2
	}
	return min(d, 15*time.Minute)
}

// Sender delivers queued mail: Run claims every message that is due and
// sends it through SMTP.
type Sender struct {
	Store Outbox
	SMTP  SMTP
	Log   *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sent, when set, hears the outcome of each attempt: "sent",
	// "retry" or "failed".
	Sent func(outcome string)
	wake chan struct{}
}

// NewSender returns a sender for st through server.
func NewSender(st Outbox, server SMTP, log *slog.Logger, now func() time.Time) *Sender {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sender{Store: st, SMTP: server, Log: log, Now: now, wake: make(chan struct{}, 1)}
}

// Wake tells the sender that mail was queued, so that it sends it now
// rather than at its next poll. It never blocks.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run delivers mail until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		s.DeliverDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// DeliverDue sends every message that is due, one after another, and
// returns when none is left (or ctx ends).
func (s *Sender) DeliverDue(ctx context.Context) {
	for ctx.Err() == nil {
		m, ok, err := s.Store.ClaimMail(ctx, s.Now(), lease)
		if err != nil {
			if ctx.Err() == nil {
				s.Log.Warn("mail: cannot read the outbox", "err", err)
			}
			return
		}
		if !ok {
			return
		}
		s.deliver(ctx, m)
	}
}

// deliver makes one attempt at m and records its outcome. The log names
// the message by id, never its body (a code) nor its address.
func (s *Sender) deliver(ctx context.Context, m store.Mail) {
	err := s.SMTP.Send(ctx, m.To, m.Subject, m.Body)
	now := s.Now()
	outcome := "sent"
	var rerr error
	switch {
	case err == nil:
		rerr = s.Store.EndMail(ctx, m.ID, now, "")
	case isPermanent(err) || m.Attempts >= maxAttempts:
		outcome = "failed"
		why := err.Error()
		if !isPermanent(err) {
			why = fmt.Sprintf("gave up after %d attempts: %s", m.Attempts, why)
		}
		s.Log.Warn("mail: delivery failed; giving up", "mail_id", m.ID, "attempts", m.Attempts, "err", err)
		rerr = s.Store.EndMail(ctx, m.ID, now, why)
	default:
		outcome = "retry"
		next := now.Add(backoff(m.Attempts))
		s.Log.Warn("mail: delivery failed; will try again", "mail_id", m.ID, "attempts", m.Attempts, "retry_at", next, "err", err)
		rerr = s.Store.RetryMail(ctx, m.ID, next, err.Error())
	}
	if rerr != nil && ctx.Err() == nil {
		// The lease runs out and the message is tried again: sent twice
		// at worst, never lost.
		s.Log.Warn("mail: cannot record a delivery", "mail_id", m.ID, "outcome", outcome, "err", rerr)
	}
	if s.Sent != nil {
		s.Sent(outcome)
	}
}
