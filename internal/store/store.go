// Package store defines writ's persistence contract: one narrow interface per
// aggregate (users, groups, clients, refresh tokens, auth sessions, one-time
// markers, counters, signing keys, codes, outbox, audit), embedded into Store
// for wiring. Backends (sqlite, postgres) implement every interface and must
// pass the conformance suite in storetest.
//
// Contract for all backends:
//   - Get* on a missing row returns an error wrapping ErrNotFound.
//   - Create* on an existing key returns an error wrapping ErrConflict.
//   - Update* runs fn inside a transaction on the current row; if fn returns
//     an error nothing is written and that error is returned unchanged.
//     Concurrent updates of one row are serialized: no update is lost.
//   - Tx runs fn in one transaction: every write inside commits together or
//     not at all. A backend may retry fn on a serialization failure, so fn
//     must have no side effects outside the Tx it receives.
//   - Times are stored with at least millisecond precision and returned in UTC.
//   - Nothing in this package reads the clock: callers pass now.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is wrapped by every error that reports a missing row.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is wrapped by every error that reports an existing key on
// create, or a single-use marker used a second time.
var ErrConflict = errors.New("store: conflict")

// User statuses, as Cognito names them.
const (
	StatusUnconfirmed         = "UNCONFIRMED"
	StatusConfirmed           = "CONFIRMED"
	StatusForceChangePassword = "FORCE_CHANGE_PASSWORD"
	StatusResetRequired       = "RESET_REQUIRED"
)

// User is one account in a user pool. Username is unique per pool and Sub
// (a UUID) is unique globally.
type User struct {
	PoolID        string
	Username      string
	Sub           string
	Email         string
	EmailVerified bool
	// Attributes holds every other attribute, including "custom:*" ones.
	Attributes map[string]string
	Status     string
	Enabled    bool
	// PasswordHash is a PHC-style argon2id string; never the password.
	PasswordHash string
	// TOTPSecret is the enrolled TOTP secret sealed with the master key
	// (empty when none is enrolled). TOTPPending is a secret being enrolled.
	TOTPSecret   []byte
	TOTPPending  []byte
	TOTPEnabled  bool
	MFAPreferred bool
	Groups       []string
	// RevokedBefore: tokens issued to this user before this instant are
	// refused by online checks (GlobalSignOut).
	RevokedBefore time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Users stores user accounts.
type Users interface {
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, poolID, username string) (User, error)
	GetUserBySub(ctx context.Context, sub string) (User, error)
	// UpdateUser applies fn to the stored user and writes the result. fn may
	// not change PoolID, Username or Sub.
	UpdateUser(ctx context.Context, poolID, username string, fn func(*User) error) (User, error)
	DeleteUser(ctx context.Context, poolID, username string) error
	// ListUsers returns users of a pool ordered by username, starting after
	// the username `after` (empty: from the start), at most limit (0: all).
	ListUsers(ctx context.Context, poolID, after string, limit int) ([]User, error)
}

// Group is a user-pool group.
type Group struct {
	PoolID      string
	Name        string
	Description string
	// Precedence orders a user's groups for the roles in its tokens
	// (lowest first); nil, the default, comes after every value.
	Precedence *int
	RoleARN    string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Groups stores user-pool groups.
type Groups interface {
	// PutGroup creates or replaces a group.
	PutGroup(ctx context.Context, g Group) error
	GetGroup(ctx context.Context, poolID, name string) (Group, error)
	ListGroups(ctx context.Context, poolID string) ([]Group, error)
	DeleteGroup(ctx context.Context, poolID, name string) error
}

// Client is an app client of a user pool.
type Client struct {
	PoolID   string
	ClientID string
	Name     string
	// SecretHash is a keyed hash of the client secret; empty for public clients.
	SecretHash        []byte
	Public            bool
	Flows             []string
	RedirectURIs      []string
	LogoutURIs        []string
	Scopes            []string
	ExchangeAudiences []string
	// JWKS holds the client's public keys for private_key_jwt (JSON), if any.
	JWKS      []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Clients stores app clients. Client ids are unique globally.
type Clients interface {
	// PutClient creates or replaces a client.
	PutClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, clientID string) (Client, error)
	ListClients(ctx context.Context, poolID string) ([]Client, error)
	DeleteClient(ctx context.Context, clientID string) error
}

// ResourceServer is an API with custom scopes (<Identifier>/<scope>).
type ResourceServer struct {
	PoolID     string
	Identifier string
	Name       string
	Scopes     []string
}

// ResourceServers stores resource servers.
type ResourceServers interface {
	PutResourceServer(ctx context.Context, rs ResourceServer) error
	ListResourceServers(ctx context.Context, poolID string) ([]ResourceServer, error)
	DeleteResourceServer(ctx context.Context, poolID, identifier string) error
}

// RefreshToken is the stored state of one opaque refresh token. ID is a hash
// of the token; the token itself is never stored.
type RefreshToken struct {
	ID       string
	PoolID   string
	ClientID string
	Username string
	Sub      string
	// FamilyID is shared by every token rotated from one sign-in.
	FamilyID string
	Scope    string
	AuthTime time.Time
	AMR      []string
	// OriginJTI is the jti of the sign-in event (constant across refreshes).
	OriginJTI string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is set when the token was rotated; SuccessorID names the token
	// issued in its place. Replay holds what a retried request within the
	// grace period gets back (sealed), so a lost response can be repeated.
	UsedAt      time.Time
	SuccessorID string
	Replay      []byte
	Revoked     bool
}

// RefreshTokens stores refresh tokens.
type RefreshTokens interface {
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	GetRefreshToken(ctx context.Context, id string) (RefreshToken, error)
	UpdateRefreshToken(ctx context.Context, id string, fn func(*RefreshToken) error) (RefreshToken, error)
	// RevokeRefreshFamily marks every token of the family revoked and
	// returns how many rows changed.
	RevokeRefreshFamily(ctx context.Context, familyID string) (int, error)
	// RevokeUserRefreshTokens revokes every refresh token of a user.
	RevokeUserRefreshTokens(ctx context.Context, poolID, username string) (int, error)
}

// Session is short-lived server-side state behind an opaque session string
// (auth challenges, hosted-page logins, authorization codes). ID is a hash
// of the string handed out.
type Session struct {
	ID        string
	Kind      string
	PoolID    string
	ClientID  string
	Username  string
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Sessions stores single-use sessions.
type Sessions interface {
	CreateSession(ctx context.Context, s Session) error
	// ConsumeSession deletes and returns the session atomically, so that of
	// two concurrent callers exactly one gets it. An expired session (at
	// now) is deleted and reported as ErrNotFound.
	ConsumeSession(ctx context.Context, id string, now time.Time) (Session, error)
	// GetSession returns a live session without consuming it.
	GetSession(ctx context.Context, id string, now time.Time) (Session, error)
	DeleteSession(ctx context.Context, id string) error
}

// OneTime records single-use markers, such as a TOTP code used in its window.
type OneTime interface {
	// UseOnce records key until expires. It returns ErrConflict when the key
	// is already recorded and not yet expired at now.
	UseOnce(ctx context.Context, key string, expires, now time.Time) error
}

// Counters are fixed-window counters for throttling.
type Counters interface {
	// Incr adds one to the counter key and returns the new count. A counter
	// whose window (started at its first hit) has passed restarts at 1.
	Incr(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
	// Count returns the counter's value at now (0 when absent or expired).
	Count(ctx context.Context, key string, now time.Time) (int, error)
	ResetCounter(ctx context.Context, key string) error
}

// SigningKey is one key of a pool. The private key is sealed with the master
// key. A key is published (in JWKS) from CreatedAt until PublishUntil, and
// signs from ActiveAt until RetiredAt (zero: not retired).
type SigningKey struct {
	KID           string
	PoolID        string
	Alg           string
	PrivateSealed []byte
	PublicJWK     []byte
	CreatedAt     time.Time
	ActiveAt      time.Time
	RetiredAt     time.Time
	PublishUntil  time.Time
}

// SigningKeys stores signing keys.
type SigningKeys interface {
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns every key of the pool, oldest first.
	ListSigningKeys(ctx context.Context, poolID string) ([]SigningKey, error)
	UpdateSigningKey(ctx context.Context, kid string, fn func(*SigningKey) error) (SigningKey, error)
	DeleteSigningKey(ctx context.Context, kid string) error
}

// Code is a confirmation or password-reset code. Key names its purpose and
// user (e.g. "confirm/<pool>/<username>").
type Code struct {
	Key       string
	CodeHash  []byte
	Attempts  int
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Codes stores verification codes.
type Codes interface {
	// PutCode creates or replaces the code at Key.
	PutCode(ctx context.Context, c Code) error
	GetCode(ctx context.Context, key string) (Code, error)
	UpdateCode(ctx context.Context, key string, fn func(*Code) error) (Code, error)
	DeleteCode(ctx context.Context, key string) error
}

// Mail is a message in the outbox: kept there for `writ outbox` to show
// (no SMTP server configured), or waiting for the sender to deliver it.
type Mail struct {
	ID        int64
	To        string
	Subject   string
	Body      string // erased once delivery ends (it may hold a code)
	CreatedAt time.Time
	// Deliver marks mail for the SMTP sender; the rest tracks delivery.
	Deliver  bool
	Attempts int
	// NextAt is when the sender may next try (a claim holds it until its
	// lease ends); DoneAt when delivery ended, zero until then.
	NextAt, DoneAt time.Time
	// LastError is why the last attempt failed: with DoneAt set, why the
	// sender gave up.
	LastError string
}

// Outbox stores outgoing mail.
type Outbox interface {
	// EnqueueMail stores m and returns its id.
	EnqueueMail(ctx context.Context, m Mail) (int64, error)
	// ListMail returns messages with id > afterID, oldest first.
	ListMail(ctx context.Context, afterID int64) ([]Mail, error)
	// ClaimMail takes the oldest mail waiting for delivery whose NextAt
	// has come, counts the attempt and holds it until now+lease; ok is
	// false when none waits. Concurrent claims never take the same mail
	// while its lease runs.
	ClaimMail(ctx context.Context, now time.Time, lease time.Duration) (m Mail, ok bool, err error)
	// RetryMail puts mail m, as ClaimMail returned it, back to wait until
	// next, recording why the attempt failed.
	RetryMail(ctx context.Context, m Mail, next time.Time, why string) error
	// EndMail ends delivery of mail m, as ClaimMail returned it, at now:
	// sent (why empty) or given up (why says why). Its body is erased.
	//
	// Both change m only while it is still the claim that returned it
	// (the same attempt): ErrNotFound when delivery ended or another
	// claim took it since (its lease ran out: a stalled sender, clocks
	// apart), so that a stale sender cannot undo a newer attempt's
	// outcome.
	EndMail(ctx context.Context, m Mail, now time.Time, why string) error
	// ReleaseMail gives mail m, as ClaimMail returned it, back
	// untried: due at once, its attempt not counted, its last error kept
	// (a sender stopping mid-attempt).
	ReleaseMail(ctx context.Context, m Mail) error
}

// AuditEvent is one row of the audit trail.
type AuditEvent struct {
	// ID is assigned by the store on append (monotonic per database).
	ID int64
	// Stream names the writer (one per process); Seq counts within it.
	Stream      string
	Seq         int64
	Time        time.Time
	Component   string
	Action      string
	Outcome     string
	Reason      string
	Explanation string
	PoolID      string
	Sub         string
	Username    string
	ClientID    string
	ActorChain  []string
	IdentityID  string
	Role        string
	Resource    string
	RequestID   string
	TraceID     string
	SourceIP    string
	PrevHash    []byte
	Hash        []byte
	// Malformed, set by the store on reading, says what about the stored
	// row no writer writes (a record that is not JSON, or with a key
	// writers never write, or one key twice — which SQL and the decoder
	// would read differently); "" for a row as written. It is not hashed:
	// verification fails such a row.
	Malformed string
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	RequestID string
	Sub       string
	Component string
	Outcome   string
	Stream    string
	Since     time.Time
	Until     time.Time
	AfterID   int64
	Limit     int
}

// Matches reports whether f selects e, as ListAudit does (Limit aside):
// times compare in the milliseconds the store keeps.
func (f AuditFilter) Matches(e *AuditEvent) bool {
	eq := func(want, got string) bool { return want == "" || want == got }
	return e.ID > f.AfterID && eq(f.RequestID, e.RequestID) && eq(f.Sub, e.Sub) && eq(f.Component, e.Component) &&
		eq(f.Outcome, e.Outcome) && eq(f.Stream, e.Stream) &&
		(f.Since.IsZero() || e.Time.UnixMilli() >= f.Since.UnixMilli()) &&
		(f.Until.IsZero() || e.Time.UnixMilli() < f.Until.UnixMilli())
}

// AuditLog stores audit events.
type AuditLog interface {
	// AppendAudit stores the events in one transaction, in order, and
	// returns their ids.
	AppendAudit(ctx context.Context, events []AuditEvent) ([]int64, error)
	// ListAudit returns matching events ordered by ID.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// LastAuditID returns the id of the last event stored (0 if none).
	LastAuditID(ctx context.Context) (int64, error)
	// LastAuditEvent returns the event of stream with the highest
	// sequence number, or ErrNotFound.
	LastAuditEvent(ctx context.Context, stream string) (AuditEvent, error)
	// AuditStreams names the streams of the trail after after (""
	// for the first), in name order, at most limit of them.
	AuditStreams(ctx context.Context, after string, limit int) ([]string, error)
	// AuditStreamsSince names the streams with events of id > afterID.
	AuditStreamsSince(ctx context.Context, afterID int64) ([]string, error)
}

// Identities maps identity-pool logins to identity ids (Cognito Identity).
type Identities interface {
	// GetOrCreateIdentity returns the identity id of login (e.g.
	// "<provider>|<sub>") in an identity pool, storing newID for it when it
	// has none. Of concurrent callers with different newIDs, all get the
	// same id.
	GetOrCreateIdentity(ctx context.Context, poolID, login, newID string, now time.Time) (id string, created bool, err error)
	// IdentityLogin returns the pool and login of an identity id.
	IdentityLogin(ctx context.Context, identityID string) (poolID, login string, err error)
}

// Notifier is implemented by stores that several processes share
// (PostgreSQL): a change made by one process (a key rotation) reaches the
// others at once instead of at their next poll.
type Notifier interface {
	// Notify sends payload on channel to every listener.
	Notify(ctx context.Context, channel, payload string) error
	// Listen calls fn for every notification on channel until ctx ends,
	// reconnecting after failures.
	Listen(ctx context.Context, channel string, fn func(payload string))
}

// Tx is every aggregate interface, bound to one transaction.
type Tx interface {
	Identities
	Users
	Groups
	Clients
	ResourceServers
	RefreshTokens
	Sessions
	OneTime
	Counters
	SigningKeys
	Codes
	Outbox
	AuditLog
}

// Store is the whole persistence layer. Methods called directly on a Store
// each run in their own transaction.
type Store interface {
	Tx
	// InTx runs fn in one transaction (see the package contract).
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// DeleteExpired removes sessions, one-time markers, counters, codes and
	// refresh tokens that expired before now, and keys past PublishUntil.
	DeleteExpired(ctx context.Context, now time.Time) error
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	Close() error
}
