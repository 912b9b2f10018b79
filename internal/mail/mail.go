// Package mail delivers the mail writ queues in the store's outbox (codes,
// invitations) over SMTP. Requests only queue a message, in the
// transaction that stores what it carries; a Sender (one per process, on
// any replica) claims each message, sends it and records the outcome,
// retrying with backoff. So a request never waits on an SMTP server: a
// slow or failing one slows no sign-up, and how long a request takes does
// not tell whether it mailed anyone.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/writ-id/writ/internal/store"
)

// SMTP is an SMTP server to send through.
type SMTP struct {
	// Addr is host:port.
	Addr string
	// From is the sender, bare or with a display name
	// ("Example <no-reply@example.com>").
	From string
	// Username and Password, when set, authenticate with PLAIN, which
	// net/smtp allows only over TLS or to localhost.
	Username, Password string
	// TLS is "starttls" (the default: STARTTLS whenever the server offers
	// it), "required" (STARTTLS, or the attempt fails) or "implicit" (TLS
	// from the first byte, as on port 465).
	TLS string
	// TLSConfig verifies the server (nil: its certificate for the host of
	// Addr, against the system's roots).
	TLSConfig *tls.Config
	// Timeout bounds one message's whole conversation (default 1 minute).
	Timeout time.Duration
}

// timeout is Timeout, or its default of 1 minute.
func (s SMTP) timeout() time.Duration {
	if s.Timeout <= 0 {
		return time.Minute
	}
	return s.Timeout
}

// Send delivers one message. It fails for good (isPermanent) only when
// the message cannot be sent at all or the server refuses its recipient
// or content for good (a 5xx reply to RCPT or DATA); a refusal at any
// earlier step (a wrong password, a sender refused) is the server's or
// the configuration's, and is worth another attempt once fixed. When ctx
// ends, the attempt ends too, unless the whole message was written: then
// the server's answer is awaited (within Timeout), so that a message it
// took is known to be sent.
func (s SMTP) Send(ctx context.Context, to, subject, body string) error {
	from, err := netmail.ParseAddress(s.From)
	if err != nil {
		return permanent{fmt.Errorf("the sender %q: %w", s.From, err)}
	}
	if strings.ContainsAny(to+subject, "\r\n") {
		return permanent{errors.New("a mail header contains a line break")}
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return permanent{fmt.Errorf("smtp address %q: %w", s.Addr, err)}
	}
	timeout := s.timeout()
	tlsConfig := s.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: host}
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var conn net.Conn
	if s.TLS == "implicit" {
		conn, err = (&tls.Dialer{Config: tlsConfig}).DialContext(dctx, "tcp", s.Addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(dctx, "tcp", s.Addr)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := dctx.Deadline()
	conn.SetDeadline(deadline) // a server that stops answering fails the attempt
	// written and the cut at ctx's end exclude each other: a cut after the
	// message went whole would fail an attempt the server took.
	var mu sync.Mutex
	written := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !written {
			conn.SetDeadline(time.Now())
		}
	})
	defer stop()
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(heloName()); err != nil {
		return err
	}
	if s.TLS != "implicit" {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConfig); err != nil {
				return err
			}
		} else if s.TLS == "required" {
			return errors.New("the server does not offer STARTTLS, which mail.tls: required asks for")
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return err
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return refused(err)
	}
	w, err := c.Data()
	if err != nil {
		return refused(err)
	}
	if _, err := w.Write(message(from, to, subject, body)); err != nil {
		return err
	}
	mu.Lock()
	if ctx.Err() != nil && !written { // cut already, or about to be
		mu.Unlock()
		return ctx.Err()
	}
	written = true
	mu.Unlock()
	if err := w.Close(); err != nil {
		return refused(err)
	}
	c.Quit() // the server took the message: a failed QUIT changes nothing
	return nil
}

// heloName is the name the sender greets the server with: this host's,
// when it is a domain name (relays may refuse a bare one), else
// "localhost".
func heloName() string {
	if h, err := os.Hostname(); err == nil && strings.Contains(h, ".") && !strings.ContainsAny(h, " \r\n") {
		return h
	}
	return "localhost"
}

// message is the message as sent: its headers, and its body in
// quoted-printable, which keeps any text (a username in any script) in
// short 7-bit lines.
func message(from *netmail.Address, to, subject, body string) []byte {
	var b bytes.Buffer
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	id := make([]byte, 16)
	rand.Read(id)
	b.WriteString("From: " + from.String() + "\r\nTo: <" + to + ">\r\nSubject: " + mime.QEncoding.Encode("utf-8", subject) +
		"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\nMessage-ID: <" + hex.EncodeToString(id) + "@" + domain + ">" +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n")))
	qp.Close()
	return b.Bytes()
}

// permanent marks an error that no retry can mend.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// refused makes the server's 5xx refusal of a recipient or a message
// permanent: another attempt would get the same answer.
func refused(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 {
		return permanent{err}
	}
	return err
}

// isPermanent reports whether a delivery attempt failed for good.
func isPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Outbox is the part of the store a Sender uses.
type Outbox interface {
	ClaimMail(ctx context.Context, now time.Time, lease time.Duration) (store.Mail, bool, error)
	RetryMail(ctx context.Context, m store.Mail, next time.Time, why string) error
	EndMail(ctx context.Context, m store.Mail, now time.Time, why string) error
	ReleaseMail(ctx context.Context, m store.Mail) error
}

const (
	// minLease is how long a claimed message is the claimer's at least
	// (see Sender.lease): longer than an attempt can take, so that only a
	// sender that died mid-attempt lets another take it over.
	minLease = 3 * time.Minute
	// maxAttempts bounds the tries of one message: with backoff (15 s,
	// doubling to 15 min) about an hour, the life of a password reset
	// code.
	maxAttempts = 10
	// poll is how often a sender looks for mail other replicas queued
	// (its own it hears of through Wake).
	poll = 5 * time.Second
	// recordTimeout bounds recording an attempt's outcome, which is done
	// even when the sender is stopping.
	recordTimeout = 10 * time.Second
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
// sends it through SMTP. Make one with NewSender.
type Sender struct {
	Store Outbox
	SMTP  SMTP
	Log   *slog.Logger
	// Now is the clock.
	Now func() time.Time
	// Sent, when set, hears the outcome of each attempt: "sent", "retry"
	// (tried again later), "failed" (given up) or "released" (cut short
	// by a stop, given back untried).
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

// lease is how long a claim holds: an attempt (SMTP.Timeout) and the
// recording of its outcome, with room to spare.
func (s *Sender) lease() time.Duration {
	return max(minLease, s.SMTP.timeout()+recordTimeout+time.Minute)
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
		m, ok, err := s.Store.ClaimMail(ctx, s.Now(), s.lease())
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

// deliver makes one attempt at m and records its outcome, even when ctx
// ended meanwhile (the process stopping): an attempt cut short goes back
// untried, due at once, for this or another sender. The log names the message
// by id, never its body (a code); the server's reply it logs may echo the
// address.
func (s *Sender) deliver(ctx context.Context, m store.Mail) {
	err := s.SMTP.Send(ctx, m.To, m.Subject, m.Body)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	now := s.Now()
	outcome := "sent"
	var rerr error
	switch {
	case err == nil:
		rerr = s.Store.EndMail(rctx, m, now, "")
	case ctx.Err() != nil && !isPermanent(err):
		outcome = "released" // cut short: given back untried
		rerr = s.Store.ReleaseMail(rctx, m)
	case isPermanent(err) || m.Attempts >= maxAttempts:
		outcome = "failed"
		why := err.Error()
		if !isPermanent(err) {
			why = fmt.Sprintf("gave up after %d attempts: %s", m.Attempts, why)
		}
		s.Log.Warn("mail: delivery failed; giving up", "mail_id", m.ID, "attempts", m.Attempts, "err", err)
		rerr = s.Store.EndMail(rctx, m, now, why)
	default:
		outcome = "retry"
		next := now.Add(backoff(m.Attempts))
		s.Log.Warn("mail: delivery failed; will try again", "mail_id", m.ID, "attempts", m.Attempts, "retry_at", next, "err", err)
		rerr = s.Store.RetryMail(rctx, m, next, err.Error())
	}
	if rerr != nil {
		// The lease runs out and the message is tried again (or another
		// sender's claim took it meanwhile): sent twice at worst, never
		// lost.
		s.Log.Warn("mail: cannot record a delivery", "mail_id", m.ID, "outcome", outcome, "err", rerr)
	}
	if s.Sent != nil {
		s.Sent(outcome)
	}
}
