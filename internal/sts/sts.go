// Package sts owns temporary credentials and roles: credentials are sealed,
// not stored (the session token is an AEAD seal of everything needed to
// verify and authorize a request signed with them), roles come from the
// configuration with their trust and permission policies parsed by the
// iam package, and AssumeRoleWithWebIdentity decides who may take a role.
package sts

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/iam"
	"github.com/writ-id/writ/internal/keys"
)

// Session is what a session token carries.
type Session struct {
	AccessKeyID string            `json:"k"`
	Secret      string            `json:"s"`
	Role        string            `json:"r"`
	SessionName string            `json:"n"`
	Subject     string            `json:"sub"`
	IdentityID  string            `json:"id,omitempty"`
	Provider    string            `json:"p"`
	Audience    string            `json:"aud,omitempty"`
	AMR         []string          `json:"amr,omitempty"`
	Tags        map[string]string `json:"t,omitempty"`
	// Transitive are the keys of Tags that a role session assumed with
	// these credentials inherits (AssumeRole's TransitiveTagKeys).
	Transitive    []string        `json:"tt,omitempty"`
	SessionPolicy json.RawMessage `json:"sp,omitempty"`
	ActorChain    []string        `json:"act,omitempty"`
	Expires       time.Time       `json:"e"`
}

// Credentials are issued temporary credentials.
type Credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Expires                                    time.Time
}

// Role is a configured role, parsed.
type Role struct {
	Name       string
	ARN        string
	MaxSession time.Duration
	Trust      *iam.Policy
	Policy     *iam.Policy
	Boundary   *iam.Policy
}

// Service issues and opens credentials.
type Service struct {
	account string
	sealer  *keys.Sealer
	roles   map[string]*Role
	now     func() time.Time
	// users are the IAM users' parsed policies, by access key.
	users map[string]*iam.Policy

	// opened caches sessions by the SHA-256 of their token: a token always
	// opens to the same session, so each request after a client's first
	// skips the base64, the AEAD and the JSON.
	mu     sync.Mutex
	opened map[[32]byte]*Session
}

// maxOpened bounds the cache of opened sessions; a random entry makes room.
const maxOpened = 4096

// New parses the roles of cfg.
func New(cfg *config.Config, master *keys.MasterKey, now func() time.Time) (*Service, error) {
	if now == nil {
		now = time.Now
	}
	s := &Service{account: cfg.Account, sealer: master.Sealer("sts-session"), roles: map[string]*Role{}, now: now}
	for _, rc := range cfg.IAM.Roles {
		r := &Role{Name: rc.Name, ARN: config.RoleARN(cfg.Account, rc.Name), MaxSession: rc.MaxSession}
		var err error
		if r.Trust, err = iam.ParseKind(rc.Trust.Bytes(), iam.Trust); err != nil {
			return nil, fmt.Errorf("sts: role %s trust: %w", rc.Name, err)
		}
		if !rc.Policy.IsZero() {
			if r.Policy, err = iam.Parse(rc.Policy.Bytes()); err != nil {
				return nil, fmt.Errorf("sts: role %s policy: %w", rc.Name, err)
			}
		}
		if !rc.Boundary.IsZero() {
			if r.Boundary, err = iam.Parse(rc.Boundary.Bytes()); err != nil {
				return nil, fmt.Errorf("sts: role %s boundary: %w", rc.Name, err)
			}
		}
		s.roles[rc.Name] = r
	}
	s.users = map[string]*iam.Policy{}
	for _, u := range cfg.IAM.Users {
		if p, err := iam.Parse(u.Policy.Bytes()); err == nil {
			s.users[u.AccessKeyID] = p // one that does not parse grants nothing (CallerOf)
		}
	}
	return s, nil
}

// Role returns a role by name or ARN.
func (s *Service) Role(nameOrARN string) (*Role, bool) {
	name := nameOrARN
	if strings.HasPrefix(nameOrARN, "arn:") {
		prefix := "arn:aws:iam::" + s.account + ":role/"
		if !strings.HasPrefix(nameOrARN, prefix) {
			return nil, false
		}
		name = strings.TrimPrefix(nameOrARN, prefix)
	}
	r, ok := s.roles[name]
	return r, ok
}

// Account returns the account id.
func (s *Service) Account() string { return s.account }

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Issue seals a new session into credentials.
func (s *Service) Issue(sess Session) (Credentials, error) {
	var id [10]byte
	rand.Read(id[:])
	var sec [30]byte
	rand.Read(sec[:])
	sess.AccessKeyID = "ASIA" + b32.EncodeToString(id[:])
	sess.Secret = base64.StdEncoding.EncodeToString(sec[:])
	b, err := json.Marshal(sess)
	if err != nil {
		return Credentials{}, fmt.Errorf("sts: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(s.sealer.Seal(b, []byte("writ-sts-v1")))
	return Credentials{AccessKeyID: sess.AccessKeyID, SecretAccessKey: sess.Secret, SessionToken: tok, Expires: sess.Expires}, nil
}

// ErrInvalidToken reports a session token that is corrupt, forged or not
// for the access key.
var ErrInvalidToken = errors.New("sts: invalid session token")

// ErrExpired reports expired credentials.
var ErrExpired = errors.New("sts: credentials expired")

// Open returns the session of a token presented with accessKeyID, without
// any store lookup. Sessions are cached: the maps and slices of the one
// returned are shared and must not be modified.
func (s *Service) Open(accessKeyID, token string) (Session, error) {
	if len(token) > 8192 {
		return Session{}, ErrInvalidToken
	}
	id := sha256.Sum256([]byte(token))
	s.mu.Lock()
	cached := s.opened[id]
	s.mu.Unlock()
	if cached != nil {
		if cached.AccessKeyID != accessKeyID {
			return Session{}, ErrInvalidToken
		}
		if !s.now().Before(cached.Expires) {
			return *cached, ErrExpired
		}
		return *cached, nil
	}
	sess, err := s.open(accessKeyID, token)
	if err == nil {
		s.mu.Lock()
		if s.opened == nil {
			s.opened = make(map[[32]byte]*Session)
		}
		for k := range s.opened {
			if len(s.opened) < maxOpened {
				break
			}
			delete(s.opened, k)
		}
		s.opened[id] = &sess
		s.mu.Unlock()
	}
	return sess, err
}

func (s *Service) open(accessKeyID, token string) (Session, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return Session{}, ErrInvalidToken
	}
	b, err := s.sealer.Open(raw, []byte("writ-sts-v1"))
	if err != nil {
		return Session{}, ErrInvalidToken
	}
	var sess Session
	if json.Unmarshal(b, &sess) != nil || sess.AccessKeyID != accessKeyID {
		return Session{}, ErrInvalidToken
	}
	if !s.now().Before(sess.Expires) {
		return sess, ErrExpired
	}
	return sess, nil
}

// AssumedRoleARN is the ARN of a role session.
func (s *Service) AssumedRoleARN(role, session string) string {
	return "arn:aws:sts::" + s.account + ":assumed-role/" + role + "/" + session
}
