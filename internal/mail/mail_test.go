package mail_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/mail"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/sqlite"
)

var ctx = context.Background()

// clock is a settable time.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "writ.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func queue(t *testing.T, st store.Store, to, body string, at time.Time) int64 {
	t.Helper()
	id, err := st.EnqueueMail(ctx, store.Mail{To: to, Subject: "Your code", Body: body, CreatedAt: at, Deliver: true})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func outbox(t *testing.T, st store.Store) map[int64]store.Mail {
	t.Helper()
	ms, err := st.ListMail(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]store.Mail{}
	for _, m := range ms {
		out[m.ID] = m
	}
	return out
}

func sender(st store.Store, srv *apptest.SMTPServer, c *clock) (*mail.Sender, map[string]int) {
	s := mail.NewSender(st, mail.SMTP{Addr: srv.Addr, From: "no-reply@writ.test", Timeout: 5 * time.Second}, nil, c.Now)
	counts := map[string]int{}
	s.Sent = func(outcome string) { counts[outcome]++ }
	return s, counts
}

func TestSenderDelivers(t *testing.T) {
	st, srv := openStore(t), apptest.StartSMTP(t, apptest.SMTPOptions{})
	c := &clock{time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	a := queue(t, st, "alice@example.com", "Your code is 123456", c.t)
	b := queue(t, st, "bob@example.com", "Your code is 654321", c.t)
	s, counts := sender(st, srv, c)
	s.DeliverDue(ctx)
	for _, want := range []struct{ to, code string }{{"alice@example.com", "123456"}, {"bob@example.com", "654321"}} {
		m := srv.Next(t, 5*time.Second)
		if m.From != "no-reply@writ.test" || len(m.To) != 1 || m.To[0] != want.to || !strings.Contains(m.Data, "Subject: Your code\r\n") ||
			!strings.Contains(m.Data, "To: <"+want.to+">\r\n") || !strings.HasSuffix(m.Data, "Your code is "+want.code+"\r\n") {
			t.Fatalf("received %+v, want to %s with code %s", m, want.to, want.code)
		}
	}
	box := outbox(t, st)
	for _, id := range []int64{a, b} {
		m := box[id]
		// Sent, and the code no longer at rest in the store.
		if !m.DoneAt.Equal(c.t) || m.LastError != "" || m.Body != "" || m.Attempts != 1 {
			t.Fatalf("mail %d after delivery: %+v", id, m)
		}
	}
	if counts["sent"] != 2 || len(counts) != 1 {
		t.Fatalf("outcomes %v", counts)
	}
	// Nothing is sent twice.
	s.DeliverDue(ctx)
	if m, ok := srv.Received(); ok {
		t.Fatalf("sent again: %+v", m)
	}
}

func TestSenderRetriesAndGivesUp(t *testing.T) {
	st, srv := openStore(t), apptest.StartSMTP(t, apptest.SMTPOptions{})
	c := &clock{time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	s, counts := sender(st, srv, c)

	// 451 (try again later): the mail waits 15 s, then goes.
	id := queue(t, st, "alice@example.com", "code 1", c.t)
	srv.FailNext(451)
	s.DeliverDue(ctx)
	m := outbox(t, st)[id]
	if !m.DoneAt.IsZero() || m.Attempts != 1 || !m.NextAt.Equal(c.t.Add(15*time.Second)) || !strings.Contains(m.LastError, "451") || m.Body != "code 1" {
		t.Fatalf("after a 451: %+v", m)
	}
	c.t = c.t.Add(10 * time.Second)
	s.DeliverDue(ctx) // not due yet
	if _, ok := srv.Received(); ok {
		t.Fatal("retried before its time")
	}
	c.t = c.t.Add(5 * time.Second)
	s.DeliverDue(ctx)
	if got := srv.Next(t, 5*time.Second); got.To[0] != "alice@example.com" {
		t.Fatalf("retry sent %+v", got)
	}
	if m := outbox(t, st)[id]; m.DoneAt.IsZero() || m.LastError != "" || m.Attempts != 2 {
		t.Fatalf("after the retry: %+v", m)
	}

	// 550 (no such mailbox): given up at once.
	id = queue(t, st, "nobody@example.com", "code 2", c.t)
	srv.FailNext(550)
	s.DeliverDue(ctx)
	if m := outbox(t, st)[id]; !m.DoneAt.Equal(c.t) || !strings.Contains(m.LastError, "550") || m.Body != "" {
		t.Fatalf("after a 550: %+v", m)
	}

	// A server that keeps answering 4xx: given up after 10 attempts,
	// backing off 15 s, 30 s, 1 min, … 15 min: about an hour.
	id = queue(t, st, "carol@example.com", "code 3", c.t)
	var waits []time.Duration
	for range 10 {
		srv.FailNext(421)
		before := c.t
		s.DeliverDue(ctx)
		m := outbox(t, st)[id]
		if !m.DoneAt.IsZero() {
			break
		}
		waits = append(waits, m.NextAt.Sub(before))
		c.t = m.NextAt
	}
	m = outbox(t, st)[id]
	if m.DoneAt.IsZero() || m.Attempts != 10 || !strings.HasPrefix(m.LastError, "gave up after 10 attempts: ") || m.Body != "" {
		t.Fatalf("after 10 failures: %+v", m)
	}
	want := []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
		15 * time.Minute, 15 * time.Minute, 15 * time.Minute}
	if len(waits) != len(want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	if counts["sent"] != 1 || counts["retry"] != 10 || counts["failed"] != 2 {
		t.Fatalf("outcomes %v", counts)
	}
}

// TestSenderTakesOverAbandonedMail: mail claimed by a sender that died
// mid-attempt is sent by another once the claim's lease ran out.
func TestSenderTakesOverAbandonedMail(t *testing.T) {
	st, srv := openStore(t), apptest.StartSMTP(t, apptest.SMTPOptions{})
	c := &clock{time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	id := queue(t, st, "alice@example.com", "code", c.t)
	if _, ok, err := st.ClaimMail(ctx, c.t, 3*time.Minute); !ok || err != nil { // the sender that died
		t.Fatal(ok, err)
	}
	s, _ := sender(st, srv, c)
	c.t = c.t.Add(2 * time.Minute)
	s.DeliverDue(ctx)
	if _, ok := srv.Received(); ok {
		t.Fatal("took over mail still claimed")
	}
	c.t = c.t.Add(time.Minute)
	s.DeliverDue(ctx)
	srv.Next(t, 5*time.Second)
	if m := outbox(t, st)[id]; m.DoneAt.IsZero() || m.Attempts != 2 {
		t.Fatalf("after the takeover: %+v", m)
	}
}

// TestSenderStalledServer: a server that stops answering fails the attempt
// at the sender's timeout, and the mail waits for a retry.
func TestSenderStalledServer(t *testing.T) {
	st, srv := openStore(t), apptest.StartSMTP(t, apptest.SMTPOptions{})
	c := &clock{time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	id := queue(t, st, "alice@example.com", "code", c.t)
	srv.Hold()
	s := mail.NewSender(st, mail.SMTP{Addr: srv.Addr, From: "no-reply@writ.test", Timeout: 300 * time.Millisecond}, nil, c.Now)
	s.DeliverDue(ctx)
	if m := outbox(t, st)[id]; !m.DoneAt.IsZero() || m.Attempts != 1 || !strings.Contains(m.LastError, "timeout") {
		t.Fatalf("after a stalled server: %+v", m)
	}
}

// TestSenderSTARTTLSAndAuth: with a server offering STARTTLS, the sender
// upgrades before it authenticates; wrong credentials fail for good.
func TestSenderSTARTTLSAndAuth(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := apptest.StartSMTP(t, apptest.SMTPOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, Username: "writ", Password: "s3cret"})
	st := openStore(t)
	c := &clock{time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	ok := queue(t, st, "alice@example.com", "code 1", c.t)
	server := mail.SMTP{Addr: srv.Addr, From: "no-reply@writ.test", Username: "writ", Password: "s3cret", TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}
	mail.NewSender(st, server, nil, c.Now).DeliverDue(ctx)
	srv.Next(t, 5*time.Second)
	if srv.Authenticated() != 1 || !outbox(t, st)[ok].DoneAt.Equal(c.t) {
		t.Fatalf("authenticated %d, mail %+v", srv.Authenticated(), outbox(t, st)[ok])
	}

	// A wrong password is the configuration's fault, not the message's:
	// the message waits for another attempt (once it is fixed).
	bad := queue(t, st, "bob@example.com", "code 2", c.t)
	server.Password = "wrong"
	mail.NewSender(st, server, nil, c.Now).DeliverDue(ctx)
	m := outbox(t, st)[bad]
	if !m.DoneAt.IsZero() || m.Body != "code 2" || !strings.Contains(m.LastError, "535") || strings.Contains(m.LastError, "wrong") {
		t.Fatalf("with a wrong password: %+v", m)
	}
	must(t, st.EndMail(ctx, outbox(t, st)[bad], c.t, "test: done with"))

	// A certificate the sender does not trust: no credentials go out.
	untrusted := queue(t, st, "carol@example.com", "code 3", c.t)
	server.Password, server.TLSConfig = "s3cret", &tls.Config{ServerName: "127.0.0.1"}
	mail.NewSender(st, server, nil, c.Now).DeliverDue(ctx)
	if m := outbox(t, st)[untrusted]; !m.DoneAt.IsZero() || !strings.Contains(m.LastError, "certificate") || srv.Authenticated() != 1 {
		t.Fatalf("with an untrusted certificate: %+v (authenticated %d)", m, srv.Authenticated())
	}
}

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSenderTLSModes: "required" sends nothing to a server without
// STARTTLS (and tries again later); "implicit" speaks TLS from the first
// byte.
func TestSenderTLSModes(t *testing.T) {
	cert, pool := selfSigned(t)
	st := openStore(t)
	c := &clock{time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}

	plain := apptest.StartSMTP(t, apptest.SMTPOptions{})
	id := queue(t, st, "alice@example.com", "code 1", c.t)
	mail.NewSender(st, mail.SMTP{Addr: plain.Addr, From: "no-reply@writ.test", TLS: "required"}, nil, c.Now).DeliverDue(ctx)
	if m := outbox(t, st)[id]; !m.DoneAt.IsZero() || !strings.Contains(m.LastError, "does not offer STARTTLS") {
		t.Fatalf("required TLS, none offered: %+v", m)
	}
	if m, ok := plain.Received(); ok {
		t.Fatalf("sent in clear: %+v", m)
	}
	must(t, st.EndMail(ctx, outbox(t, st)[id], c.t, "test: done with"))

	implicit := apptest.StartSMTP(t, apptest.SMTPOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, Implicit: true,
		Username: "writ", Password: "s3cret"})
	id = queue(t, st, "alice@example.com", "code 2", c.t)
	mail.NewSender(st, mail.SMTP{Addr: implicit.Addr, From: "no-reply@writ.test", TLS: "implicit", Username: "writ", Password: "s3cret",
		TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}, nil, c.Now).DeliverDue(ctx)
	implicit.Next(t, 5*time.Second)
	if m := outbox(t, st)[id]; m.DoneAt.IsZero() || m.LastError != "" || implicit.Authenticated() != 1 {
		t.Fatalf("implicit TLS: %+v", m)
	}
}

// TestMessageFormat: the sender's display name, a Message-ID, and a body
// in any script arrive intact (quoted-printable, decoded by the reader).
func TestMessageFormat(t *testing.T) {
	st, srv := openStore(t), apptest.StartSMTP(t, apptest.SMTPOptions{})
	c := &clock{time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	body := "Your username is Zoë-Ωμέγα-ユーザー and your temporary password is Tmp-123456789abc9a\n" + strings.Repeat("long line ", 30)
	queue(t, st, "zoe@example.com", body, c.t)
	mail.NewSender(st, mail.SMTP{Addr: srv.Addr, From: "Writ Example <no-reply@example.com>"}, nil, c.Now).DeliverDue(ctx)
	got := srv.Next(t, 5*time.Second)
	msg, err := netmail.ReadMessage(strings.NewReader(got.Data))
	if err != nil {
		t.Fatal(err)
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Writ Example" || from[0].Address != "no-reply@example.com" || got.From != "no-reply@example.com" {
		t.Fatalf("from %v %v (envelope %q)", from, err, got.From)
	}
	if id := msg.Header.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Fatalf("Message-ID %q", id)
	}
	for _, line := range strings.Split(got.Data, "\r\n") {
		if len(line) > 78 {
			t.Fatalf("a line of %d characters: %q", len(line), line)
		}
	}
	if msg.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
		t.Fatalf("headers %v", msg.Header)
	}
	decoded, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	// (the message's last line ends as every line of a message does)
	if err != nil || strings.TrimSuffix(string(decoded), "\r\n") != strings.ReplaceAll(body, "\n", "\r\n") {
		t.Fatalf("body %q %v", decoded, err)
	}
}

// TestSenderStopMidSend: a sender stopped (its context ended, as at
// shutdown) while the server is still taking a message it was sent
// whole waits for the answer and records the message sent: it goes once.
// One stopped before the message was written gives it back untried, for
// the next sender.
func TestSenderStopMidSend(t *testing.T) {
	st, srv := openStore(t), apptest.StartSMTP(t, apptest.SMTPOptions{})
	c := &clock{time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	id := queue(t, st, "alice@example.com", "code 1", c.t)
	srv.Hold() // answers the message's final dot only once released
	s := mail.NewSender(st, mail.SMTP{Addr: srv.Addr, From: "no-reply@writ.test", Timeout: 30 * time.Second}, nil, c.Now)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(runCtx); close(done) }()
	srv.WaitHeld(t, 10*time.Second)
	stop()
	srv.Release()
	<-done
	srv.Next(t, 5*time.Second)
	if m := outbox(t, st)[id]; m.DoneAt.IsZero() || m.LastError != "" || m.Body != "" {
		t.Fatalf("after a stop mid-send: %+v", m)
	}
	s.DeliverDue(ctx)
	if m, ok := srv.Received(); ok {
		t.Fatalf("sent twice: %+v", m)
	}

	// A server that never greets: the stop ends the attempt at once, and
	// the message waits for the next sender, due now.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // silent
		}
	}()
	id = queue(t, st, "bob@example.com", "code 2", c.t)
	s = mail.NewSender(st, mail.SMTP{Addr: ln.Addr().String(), From: "no-reply@writ.test", Timeout: time.Hour}, nil, c.Now)
	runCtx, stop = context.WithCancel(ctx)
	done = make(chan struct{})
	go func() { s.Run(runCtx); close(done) }()
	for outbox(t, st)[id].Attempts == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	<-done // long before the hour
	// Given back untried: due at once, the attempt not counted.
	if m := outbox(t, st)[id]; !m.DoneAt.IsZero() || !m.NextAt.IsZero() || m.Attempts != 0 || m.LastError != "" || m.Body != "code 2" {
		t.Fatalf("after a stop mid-greeting: %+v", m)
	}
}

// TestQuitFailureAfterAcceptedMessage: once the server said it took the
// message, a QUIT that goes unanswered does not make it go again.
func TestQuitFailureAfterAcceptedMessage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		io.WriteString(conn, "220 test ESMTP\r\n")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
			case strings.HasPrefix(cmd, "EHLO"):
				io.WriteString(conn, "250 test\r\n")
			case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"):
				io.WriteString(conn, "250 ok\r\n")
			case cmd == "DATA":
				io.WriteString(conn, "354 go on\r\n")
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
				}
				io.WriteString(conn, "250 queued\r\n")
			case cmd == "QUIT":
				select {} // never answers
			}
		}
	}()
	st := openStore(t)
	c := &clock{time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	id := queue(t, st, "alice@example.com", "code", c.t)
	mail.NewSender(st, mail.SMTP{Addr: ln.Addr().String(), From: "no-reply@writ.test", Timeout: 500 * time.Millisecond}, nil, c.Now).DeliverDue(ctx)
	if m := outbox(t, st)[id]; m.DoneAt.IsZero() || m.LastError != "" {
		t.Fatalf("a message the server took: %+v", m)
	}
}
