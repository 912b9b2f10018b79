package userpool

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/keys"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/token"
)

// ScopeAdmin is the scope of tokens from the Cognito API flows; it lets the
// token call the user's own-account operations.
const ScopeAdmin = "aws.cognito.signin.user.admin"

// Deps are what a Service needs from the rest of writ.
type Deps struct {
	Store  store.Store
	Keys   *keys.Manager
	Master *keys.MasterKey
	// Mail queues mail (nil: none is sent).
	Mail  *MailQueue
	Audit audit.Recorder
	Log   *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Argon2 overrides the password hashing cost (tests); zero: DefaultArgon2.
	Argon2 Argon2Params
}

// Service holds every user pool of a configuration.
type Service struct {
	deps        Deps
	cfg         *config.Config
	pools       map[string]*Pool
	order       []*Pool
	secretKeys  [][]byte // under the current master key first, then previous ones
	totpSealer  *keys.Sealer
	replay      *keys.Sealer
	dummyHash   string
	sourceLimit int
	// codeSendSourceLimit and codeCheckSourceLimit are the per-source
	// limits on code requests and codes given (see throttle.go).
	codeSendSourceLimit  int
	codeCheckSourceLimit int
	// decoyKey keys the masked destinations answered when no code is
	// sent (see decoyDelivery).
	decoyKey []byte
}

// Pool is one user pool.
type Pool struct {
	svc      *Service
	cfg      *config.UserPool
	issuer   string
	verifier *token.Verifier
	roles    map[string]string // group -> role ARN
	// userWritable are the custom attributes users may write themselves
	// (user_writable_attributes).
	userWritable map[string]bool
}

// New builds the Service for cfg's user pools. issuerBase is the idp's
// public URL; each pool's issuer is issuerBase + "/" + pool id.
func New(cfg *config.Config, issuerBase string, d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Argon2 == (Argon2Params{}) {
		d.Argon2 = DefaultArgon2
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	s := &Service{
		deps:        d,
		cfg:         cfg,
		pools:       map[string]*Pool{},
		secretKeys:  d.Master.DeriveAll("client-secret", 32),
		totpSealer:  d.Master.Sealer("totp"),
		replay:      d.Master.Sealer("refresh-replay"),
		dummyHash:   HashPassword("writ-dummy-password", d.Argon2),
		sourceLimit: 100,
		decoyKey:    d.Master.Derive("decoy-destination", 32),

		codeSendSourceLimit:  defaultCodeSendSourceLimit,
		codeCheckSourceLimit: defaultCodeCheckSourceLimit,
	}
	issuerBase = strings.TrimRight(issuerBase, "/")
	for i := range cfg.UserPools {
		pc := &cfg.UserPools[i]
		p := &Pool{svc: s, cfg: pc, issuer: issuerBase + "/" + pc.ID, roles: map[string]string{}, userWritable: map[string]bool{}}
		for _, a := range pc.UserWritableAttributes {
			p.userWritable[a] = true
		}
		p.verifier = &token.Verifier{Issuer: p.issuer, Keys: d.Keys.Pool(pc.ID), Now: d.Now}
		for _, g := range pc.Groups {
			if g.Role != "" {
				p.roles[g.Name] = config.RoleARN(cfg.Account, g.Role)
			}
		}
		s.pools[pc.ID] = p
		s.order = append(s.order, p)
	}
	return s
}

// Pool returns the pool with id.
func (s *Service) Pool(id string) (*Pool, bool) {
	p, ok := s.pools[id]
	return p, ok
}

// Pools returns every pool in configuration order.
func (s *Service) Pools() []*Pool { return s.order }

// ID returns the pool id.
func (p *Pool) ID() string { return p.cfg.ID }

// Issuer returns the pool's issuer URL.
func (p *Pool) Issuer() string { return p.issuer }

// Config returns the pool's configuration.
func (p *Pool) Config() *config.UserPool { return p.cfg }

// Verifier returns the pool's token verifier.
func (p *Pool) Verifier() *token.Verifier { return p.verifier }

// IDTokenHint reads an id_token_hint: an ID token this pool issued
// (signature, issuer, token_use id), expired or not. A hint whose key the
// pool no longer publishes (an RP keeping the ID token of a sign-in from
// before a rotation) or cannot load is read without its signature, if it
// names this issuer. It returns the hint's claims; a hint grants nothing,
// it only narrows a request (whose logout URIs apply, whose browser
// session may be reused).
func (p *Pool) IDTokenHint(ctx context.Context, raw string) (*token.Claims, error) {
	v := *p.verifier
	v.AllowExpired = true
	c, err := v.Verify(ctx, raw)
	if errors.Is(err, token.ErrUnknownKey) || errors.Is(err, token.ErrKeysUnavailable) {
		c, err = token.Unverified(raw)
	}
	switch {
	case err != nil:
		return nil, err
	case c.Issuer != p.issuer || c.TokenUse != token.UseID:
		return nil, errors.New("userpool: id_token_hint is not an ID token of this pool")
	}
	return c, nil
}

// Keys returns the pool's signing-key manager.
func (p *Pool) Keys() *keys.Manager { return p.svc.deps.Keys }

func (p *Pool) now() time.Time { return p.svc.deps.Now() }

func (p *Pool) st() store.Store { return p.svc.deps.Store }

func (p *Pool) record(ctx context.Context, e audit.Event) {
	if p.svc.deps.Audit == nil {
		return
	}
	e.Component = "idp"
	e.PoolID = p.cfg.ID
	p.svc.deps.Audit.Record(ctx, e)
}

// HashClientSecret returns the keyed hash stored for a client secret.
func (s *Service) HashClientSecret(secret string) []byte {
	return hashSecret(s.secretKeys[0], secret)
}

func hashSecret(key []byte, secret string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// CheckClientSecret compares secret with a stored hash in constant time,
// under the current master key or a previous one (a hash stored before a
// rotation).
func (s *Service) CheckClientSecret(c store.Client, secret string) bool {
	return s.checkHash(secret, c.SecretHash)
}

// checkHash compares secret with a keyed hash (HashClientSecret) in
// constant time, under the current master key or a previous one.
func (s *Service) checkHash(secret string, hash []byte) bool {
	if len(hash) == 0 {
		return false
	}
	ok := 0
	for _, k := range s.secretKeys {
		ok |= subtle.ConstantTimeCompare(hashSecret(k, secret), hash)
	}
	return ok == 1
}

// Client returns the pool's app client with id (ResourceNotFoundException
// when unknown or of another pool).
func (p *Pool) Client(ctx context.Context, clientID string) (store.Client, error) {
	c, err := p.st().GetClient(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.PoolID != p.cfg.ID) {
		return store.Client{}, newErr(CodeResourceNotFound, "User pool client "+clientID+" does not exist.")
	}
	if err != nil {
		return store.Client{}, internal(err)
	}
	return c, nil
}

// ClientPool finds the pool owning an app client.
func (s *Service) ClientPool(ctx context.Context, clientID string) (*Pool, store.Client, error) {
	c, err := s.deps.Store.GetClient(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, store.Client{}, newErr(CodeResourceNotFound, "User pool client "+clientID+" does not exist.")
	}
	if err != nil {
		return nil, store.Client{}, internal(err)
	}
	p, ok := s.pools[c.PoolID]
	if !ok {
		return nil, store.Client{}, newErr(CodeResourceNotFound, "User pool client "+clientID+" does not exist.")
	}
	return p, c, nil
}

// HasFlow reports whether client c may use flow.
func HasFlow(c store.Client, flow string) bool {
	for _, f := range c.Flows {
		if f == flow {
			return true
		}
	}
	return false
}

// SecretHash computes Cognito's SECRET_HASH for a username and client.
func SecretHash(clientSecret, username, clientID string) string {
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte(username + clientID))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// checkSecretHash verifies SECRET_HASH for confidential clients, as
// Cognito does. The store keeps only a keyed hash of each client secret,
// so the HMAC is recomputed from the secret in the configuration (every
// client comes from configuration today).
func (p *Pool) checkSecretHash(c store.Client, username, secretHash string) error {
	if c.Public || len(c.SecretHash) == 0 {
		return nil
	}
	secret, ok := p.svc.clientSecrets()[c.ClientID]
	if !ok || secretHash == "" {
		return newErr(CodeNotAuthorized, "Unable to verify secret hash for client "+c.ClientID)
	}
	want := SecretHash(secret, username, c.ClientID)
	if subtle.ConstantTimeCompare([]byte(want), []byte(secretHash)) != 1 {
		return newErr(CodeNotAuthorized, "Unable to verify secret hash for client "+c.ClientID)
	}
	return nil
}

func (s *Service) clientSecrets() map[string]string {
	m := map[string]string{}
	for _, pc := range s.cfg.UserPools {
		for _, c := range pc.Clients {
			if !c.Secret.IsZero() {
				m[c.ClientID] = c.Secret.Reveal()
			}
		}
	}
	return m
}

// randomToken returns a URL-safe random string of n bytes of entropy.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashID returns the store id of an opaque token or session string.
func hashID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Seed creates the pool's groups, clients and resource servers from
// configuration (replacing stored ones) and its users when missing, and
// makes sure the pool has a signing key. It is idempotent.
func (p *Pool) Seed(ctx context.Context) error {
	now := p.now()
	st := p.st()
	if err := p.Keys().Ensure(ctx, p.cfg.ID, p.cfg.SigningAlg); err != nil {
		return err
	}
	for _, g := range p.cfg.Groups {
		want := store.Group{PoolID: p.cfg.ID, Name: g.Name, Description: g.Description,
			Precedence: g.Precedence, RoleARN: p.roles[g.Name], CreatedAt: now, UpdatedAt: now}
		// A group as configured stays as it is, its LastModifiedDate with it.
		old, err := st.GetGroup(ctx, p.cfg.ID, g.Name)
		switch {
		case err == nil && old.Description == want.Description && comparePrecedence(old.Precedence, want.Precedence) == 0 &&
			old.RoleARN == want.RoleARN:
			continue
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("userpool: seed group %s: %w", g.Name, err)
		}
		if err := st.PutGroup(ctx, want); err != nil {
			return fmt.Errorf("userpool: seed group %s: %w", g.Name, err)
		}
	}
	for _, rs := range p.cfg.ResourceServers {
		if err := st.PutResourceServer(ctx, store.ResourceServer{PoolID: p.cfg.ID, Identifier: rs.Identifier,
			Name: rs.Name, Scopes: rs.Scopes}); err != nil {
			return fmt.Errorf("userpool: seed resource server %s: %w", rs.Identifier, err)
		}
	}
	for _, c := range p.cfg.Clients {
		sc := store.Client{PoolID: p.cfg.ID, ClientID: c.ClientID, Name: c.Name, Public: c.Public,
			Flows: c.Flows, RedirectURIs: c.RedirectURIs, LogoutURIs: c.LogoutURIs, Scopes: c.Scopes,
			ExchangeAudiences: c.ExchangeAudiences, CreatedAt: now, UpdatedAt: now}
		if c.JWKS != "" {
			sc.JWKS = []byte(c.JWKS)
		}
		if !c.Secret.IsZero() {
			sc.SecretHash = p.svc.HashClientSecret(c.Secret.Reveal())
		}
		if err := st.PutClient(ctx, sc); err != nil {
			return fmt.Errorf("userpool: seed client %s: %w", c.ClientID, err)
		}
	}
	for _, u := range p.cfg.Users {
		_, err := st.GetUser(ctx, p.cfg.ID, u.Username)
		if err == nil {
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("userpool: seed user %s: %w", u.Username, err)
		}
		su := store.User{PoolID: p.cfg.ID, Username: u.Username, Sub: uuid.NewString(), Email: u.Email,
			EmailVerified: u.EmailVerified, Attributes: map[string]string{}, Status: store.StatusConfirmed,
			Enabled: true, Groups: u.Groups, CreatedAt: now, UpdatedAt: now}
		// As the admin API sets them: flags lower-cased, a phone number
		// unverified unless phone_number_verified says otherwise.
		var attrs []Attribute
		for _, k := range slices.Sorted(maps.Keys(u.Attributes)) {
			attrs = append(attrs, Attribute{Name: k, Value: u.Attributes[k]})
		}
		setAttrs(&su, attrs)
		if !u.Password.IsZero() {
			su.PasswordHash = HashPassword(u.Password.Reveal(), p.svc.deps.Argon2)
		} else {
			su.Status = store.StatusResetRequired
		}
		if !u.TOTPSecret.IsZero() {
			raw, err := decodeTOTPSecret(u.TOTPSecret.Reveal())
			if err != nil {
				return fmt.Errorf("userpool: seed user %s: totp_secret: %w", u.Username, err)
			}
			su.TOTPSecret = p.sealTOTP(su.Sub, raw)
			su.TOTPEnabled, su.MFAPreferred = true, true
		}
		if err := st.CreateUser(ctx, su); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("userpool: seed user %s: %w", u.Username, err)
		}
	}
	return nil
}

// ResealTOTP seals the pool's TOTP secrets (enrolled and pending) again
// under the current master key (after a rotation, so that the previous
// master key can be dropped) and returns how many users it changed.
func ResealTOTP(ctx context.Context, st store.Store, master *keys.MasterKey, poolID string) (int, error) {
	sealer := master.Sealer("totp")
	n, after := 0, ""
	for {
		us, err := st.ListUsers(ctx, poolID, after, 500)
		if err != nil {
			return n, err
		}
		for _, u := range us {
			if len(u.TOTPSecret) == 0 && len(u.TOTPPending) == 0 {
				continue
			}
			changed := false
			_, err := st.UpdateUser(ctx, poolID, u.Username, func(su *store.User) error {
				ad := []byte(poolID + "/" + su.Sub)
				for _, f := range []*[]byte{&su.TOTPSecret, &su.TOTPPending} {
					if len(*f) == 0 {
						continue
					}
					v, ch, err := sealer.Reseal(*f, ad)
					if err != nil {
						return fmt.Errorf("userpool: TOTP secret of %s: %w", su.Username, err)
					}
					*f, changed = v, changed || ch
				}
				return nil
			})
			if err != nil {
				return n, err
			}
			if changed {
				n++
			}
		}
		if len(us) < 500 {
			return n, nil
		}
		after = us[len(us)-1].Username
	}
}

func (p *Pool) sealTOTP(sub string, secret []byte) []byte {
	return p.svc.totpSealer.Seal(secret, []byte(p.cfg.ID+"/"+sub))
}

func (p *Pool) openTOTP(sub string, sealed []byte) ([]byte, error) {
	return p.svc.totpSealer.Open(sealed, []byte(p.cfg.ID+"/"+sub))
}

// groupRoles returns, for a user's ID token, the role ARNs of its groups
// that have one, by precedence (lowest first, unset last), and the
// preferred role: the role of the group that ranks first, or of the groups
// tied first when they all name the same role (none when they name
// different ones), as Cognito's cognito:roles and cognito:preferred_role.
// It reads the groups as stored (from groups), so that CreateGroup and
// UpdateGroup count as much as the configuration.
func (p *Pool) groupRoles(ctx context.Context, groups store.Groups, u store.User) (roles []string, preferred string, err error) {
	var gs []store.Group
	for _, name := range u.Groups {
		g, err := groups.GetGroup(ctx, p.cfg.ID, name)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since the user's row was read
		}
		if err != nil {
			return nil, "", err
		}
		if g.RoleARN != "" {
			gs = append(gs, g)
		}
	}
	if len(gs) == 0 {
		return nil, "", nil
	}
	slices.SortStableFunc(gs, func(a, b store.Group) int { return comparePrecedence(a.Precedence, b.Precedence) })
	preferred = gs[0].RoleARN
	for _, g := range gs {
		if !slices.Contains(roles, g.RoleARN) {
			roles = append(roles, g.RoleARN)
		}
		if comparePrecedence(g.Precedence, gs[0].Precedence) == 0 && g.RoleARN != gs[0].RoleARN {
			preferred = ""
		}
	}
	return roles, preferred, nil
}

// comparePrecedence orders group precedences: lower first, unset last.
func comparePrecedence(a, b *int) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return cmp.Compare(*a, *b)
}
