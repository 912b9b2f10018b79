package apptest

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is a message an SMTPServer received.
type Message struct {
	From string
	To   []string
	// Data is the message as sent: headers and body.
	Data string
}

// SMTPServer is a real SMTP server (emersion/go-smtp) on a loopback port
// that keeps the messages it receives.
type SMTPServer struct {
	Addr string

	got      chan Message
	mu       sync.Mutex
	hold     chan struct{} // DATA waits while open
	failures []error       // RCPT answers these first, one each
	user     string
	pass     string
	authed   int
	held     int // messages waiting in Hold
}

// SMTPOptions configures StartSMTP.
type SMTPOptions struct {
	// TLS, when set, offers STARTTLS with it; with Implicit, the server
	// speaks TLS from the first byte instead (as on port 465).
	TLS      *tls.Config
	Implicit bool
	// Username and Password, when set, are required (AUTH PLAIN).
	Username, Password string
}

// StartSMTP starts an SMTP server for the test.
func StartSMTP(t testing.TB, o SMTPOptions) *SMTPServer {
	t.Helper()
	s := &SMTPServer{got: make(chan Message, 64), user: o.Username, pass: o.Password}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.TLSConfig = o.TLS
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	if o.Implicit {
		ln = tls.NewListener(ln, o.TLS)
		srv.TLSConfig = nil // no STARTTLS within TLS
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		s.Release()
		srv.Close()
	})
	return s
}

// Next waits for the next message received (failing the test after
// timeout).
func (s *SMTPServer) Next(t testing.TB, timeout time.Duration) Message {
	t.Helper()
	select {
	case m := <-s.got:
		return m
	case <-time.After(timeout):
		t.Fatalf("no mail within %v", timeout)
		return Message{}
	}
}

// Received returns a message received so far, if any, without waiting.
func (s *SMTPServer) Received() (Message, bool) {
	select {
	case m := <-s.got:
		return m, true
	default:
		return Message{}, false
	}
}

// Hold makes the server stall every message at DATA until Release: a
// server that stopped answering.
func (s *SMTPServer) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
}

// WaitHeld waits until a message is held (Hold): the client sent it
// whole and waits for the answer.
func (s *SMTPServer) WaitHeld(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		n := s.held
		s.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message held within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Release ends Hold.
func (s *SMTPServer) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// FailNext makes the next RCPT commands fail with these replies (say 451,
// try again later; or 550, no such mailbox), one each.
func (s *SMTPServer) FailNext(codes ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range codes {
		s.failures = append(s.failures, &smtp.SMTPError{Code: c, Message: "refused by the test"})
	}
}

// Authenticated is how many sessions authenticated.
func (s *SMTPServer) Authenticated() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authed
}

// NewSession implements smtp.Backend.
func (s *SMTPServer) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{s: s}, nil
}

type smtpSession struct {
	s      *SMTPServer
	authed bool
	msg    Message
}

func (x *smtpSession) AuthMechanisms() []string {
	if x.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != x.s.user || password != x.s.pass {
			// What Postfix and most servers answer (RFC 4954).
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		x.authed = true
		x.s.mu.Lock()
		x.s.authed++
		x.s.mu.Unlock()
		return nil
	}), nil
}

func (x *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.user != "" && !x.authed {
		return smtp.ErrAuthRequired
	}
	x.msg = Message{From: from}
	return nil
}

func (x *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if len(x.s.failures) > 0 {
		err := x.s.failures[0]
		x.s.failures = x.s.failures[1:]
		return err
	}
	x.msg.To = append(x.msg.To, to)
	return nil
}

func (x *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	hold := x.s.hold
	x.s.mu.Unlock()
	if hold != nil {
		x.s.mu.Lock()
		x.s.held++
		x.s.mu.Unlock()
		<-hold
		x.s.mu.Lock()
		x.s.held--
		x.s.mu.Unlock()
	}
	x.msg.Data = string(b)
	x.s.got <- x.msg
	return nil
}

func (x *smtpSession) Reset()        { x.msg = Message{} }
func (x *smtpSession) Logout() error { return nil }
