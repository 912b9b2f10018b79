package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/writ-id/writ/internal/store"
)

// Supported signing algorithms.
const (
	ES256 = "ES256"
	EdDSA = "EdDSA"
	RS256 = "RS256"
)

// Options configure a Manager.
type Options struct {
	// ActivationDelay is how long a rotated-in key is published before it
	// signs. Default 10 minutes.
	ActivationDelay time.Duration
	// Reload is how often cached keys are re-read from the store, so that a
	// rotation done elsewhere is seen. Default 5 seconds.
	Reload time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// publishMargin keeps retired keys published past the last token they could
// have signed, covering replicas whose key cache is a Reload interval old.
const publishMargin = 5 * time.Minute

// Key is a signing key ready to use.
type Key struct {
	store.SigningKey
	public   jose.JSONWebKey
	signer   jose.Signer // typ JWT
	atSigner jose.Signer // typ at+jwt (RFC 9068 access tokens)
}

// Public returns the key's public JWK.
func (k *Key) Public() jose.JSONWebKey { return k.public }

// Algorithm returns the JWS algorithm the key signs with.
func (k *Key) Algorithm() string { return k.Alg }

// Sign signs payload as a compact JWS with header {alg, kid, typ}; typ is
// "JWT" or "at+jwt".
func (k *Key) Sign(payload []byte, typ string) (string, error) {
	s := k.signer
	if typ == "at+jwt" {
		s = k.atSigner
	}
	obj, err := s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	return obj.CompactSerialize()
}

// Manager keeps the signing keys of every pool.
type Manager struct {
	st     store.Store
	sealer *Sealer
	opts   Options

	mu    sync.Mutex
	pools map[string]*poolKeys
}

type poolKeys struct {
	loaded time.Time
	keys   []*Key
}

// NewManager returns a Manager over st, sealing private keys with master.
func NewManager(st store.Store, master *MasterKey, opts Options) *Manager {
	if opts.ActivationDelay == 0 {
		opts.ActivationDelay = 10 * time.Minute
	}
	if opts.Reload == 0 {
		opts.Reload = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Manager{st: st, sealer: master.Sealer("signing-key"), opts: opts, pools: map[string]*poolKeys{}}
}

// ActivationDelay returns the configured activation delay.
func (m *Manager) ActivationDelay() time.Duration { return m.opts.ActivationDelay }

// JWKSMaxAge is the Cache-Control max-age for JWKS responses: short enough
// that a verifier refreshes before a newly published key starts signing.
func (m *Manager) JWKSMaxAge() time.Duration {
	age := m.opts.ActivationDelay / 2
	if age > time.Hour {
		age = time.Hour
	}
	return age
}

// Ensure creates the pool's first key (active at once) when the pool has no
// key that signs now or later.
func (m *Manager) Ensure(ctx context.Context, poolID, alg string) error {
	now := m.opts.Now()
	err := m.st.InTx(ctx, func(tx store.Tx) error {
		ks, err := tx.ListSigningKeys(ctx, poolID)
		if err != nil {
			return err
		}
		for _, k := range ks {
			if k.RetiredAt.IsZero() || k.RetiredAt.After(now) {
				return nil
			}
		}
		sk, err := m.newKey(poolID, alg, now)
		if err != nil {
			return err
		}
		sk.ActiveAt = now
		return tx.CreateSigningKey(ctx, sk)
	})
	if err != nil {
		return fmt.Errorf("keys: ensure %s: %w", poolID, err)
	}
	m.invalidate(poolID)
	return nil
}

// Rotate publishes a new key for the pool that starts signing after the
// activation delay; the keys signing now retire at that moment and stay
// published until maxTokenLifetime (plus a margin) after it. It returns the
// new key.
func (m *Manager) Rotate(ctx context.Context, poolID, alg string, maxTokenLifetime time.Duration) (store.SigningKey, error) {
	now := m.opts.Now()
	sk, err := m.newKey(poolID, alg, now)
	if err != nil {
		return store.SigningKey{}, err
	}
	sk.ActiveAt = now.Add(m.opts.ActivationDelay)
	err = m.st.InTx(ctx, func(tx store.Tx) error {
		ks, err := tx.ListSigningKeys(ctx, poolID)
		if err != nil {
			return err
		}
		for _, k := range ks {
			if !k.RetiredAt.IsZero() && !k.RetiredAt.After(sk.ActiveAt) {
				continue // already retires before the new key activates
			}
			if _, err := tx.UpdateSigningKey(ctx, k.KID, func(k *store.SigningKey) error {
				k.RetiredAt = sk.ActiveAt
				k.PublishUntil = sk.ActiveAt.Add(maxTokenLifetime + publishMargin)
				return nil
			}); err != nil {
				return err
			}
		}
		return tx.CreateSigningKey(ctx, sk)
	})
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("keys: rotate %s: %w", poolID, err)
	}
	m.invalidate(poolID)
	if n, ok := m.st.(store.Notifier); ok {
		// Other replicas reload now rather than at their next poll.
		n.Notify(ctx, KeysChannel, poolID)
	}
	return sk, nil
}

// ErrNoKey reports a pool with no key that may sign now.
var ErrNoKey = errors.New("keys: no active signing key")

// Signer returns the key that signs for the pool now: the most recently
// activated key whose activation time has passed and that has not retired.
func (m *Manager) Signer(ctx context.Context, poolID string) (*Key, error) {
	ks, err := m.keys(ctx, poolID)
	if err != nil {
		return nil, err
	}
	now := m.opts.Now()
	var best *Key
	for _, k := range ks {
		if k.ActiveAt.After(now) || (!k.RetiredAt.IsZero() && !k.RetiredAt.After(now)) {
			continue
		}
		if best == nil || k.ActiveAt.After(best.ActiveAt) {
			best = k
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w for pool %s", ErrNoKey, poolID)
	}
	return best, nil
}

// Published returns the keys in the pool's JWKS now.
func (m *Manager) Published(ctx context.Context, poolID string) ([]*Key, error) {
	ks, err := m.keys(ctx, poolID)
	if err != nil {
		return nil, err
	}
	now := m.opts.Now()
	var out []*Key
	for _, k := range ks {
		if k.CreatedAt.After(now) || (!k.PublishUntil.IsZero() && !k.PublishUntil.After(now)) {
			continue
		}
		out = append(out, k)
	}
	return out, nil
}

// JWKS returns the pool's published key set.
func (m *Manager) JWKS(ctx context.Context, poolID string) (jose.JSONWebKeySet, error) {
	ks, err := m.Published(ctx, poolID)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(ks))}
	for _, k := range ks {
		set.Keys = append(set.Keys, k.public)
	}
	return set, nil
}

// Lookup returns the published key with id kid. An unknown kid causes one
// reload from the store, at most once a second per pool.
func (m *Manager) Lookup(ctx context.Context, poolID, kid string) (*Key, error) {
	for attempt := 0; attempt < 2; attempt++ {
		ks, err := m.Published(ctx, poolID)
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			if k.KID == kid {
				return k, nil
			}
		}
		if attempt > 0 || !m.mayReload(poolID) {
			break
		}
	}
	return nil, fmt.Errorf("keys: unknown kid %q", kid)
}

// mayReload invalidates the pool's cache unless it was loaded within the
// last second, and reports whether it did.
func (m *Manager) mayReload(poolID string) bool {
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if pk := m.pools[poolID]; pk != nil && now.Sub(pk.loaded) < time.Second {
		return false
	}
	delete(m.pools, poolID)
	return true
}

// PoolKeys adapts a Manager to one pool's verification keys
// (token.KeySource).
type PoolKeys struct {
	m    *Manager
	pool string
}

// Pool returns the verification key source of a pool.
func (m *Manager) Pool(poolID string) PoolKeys { return PoolKeys{m: m, pool: poolID} }

// VerificationKey returns the published public key with id kid.
func (p PoolKeys) VerificationKey(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	k, err := p.m.Lookup(ctx, p.pool, kid)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	return k.public, nil
}

// KeysChannel is the notification channel of key changes.
const KeysChannel = "writ_keys"

// Follow reloads keys whenever another process announces a key change,
// when the store can notify (PostgreSQL); polling every Reload interval
// remains the fallback. It returns at once; the listening ends with ctx.
func (m *Manager) Follow(ctx context.Context) {
	if n, ok := m.st.(store.Notifier); ok {
		go n.Listen(ctx, KeysChannel, func(poolID string) { m.invalidate(poolID) })
	}
}

// Reload drops cached keys so the next call re-reads the store.
func (m *Manager) Reload() {
	m.mu.Lock()
	m.pools = map[string]*poolKeys{}
	m.mu.Unlock()
}

func (m *Manager) invalidate(poolID string) {
	m.mu.Lock()
	delete(m.pools, poolID)
	m.mu.Unlock()
}

func (m *Manager) keys(ctx context.Context, poolID string) ([]*Key, error) {
	now := m.opts.Now()
	m.mu.Lock()
	pk := m.pools[poolID]
	m.mu.Unlock()
	if pk != nil && now.Sub(pk.loaded) < m.opts.Reload && !now.Before(pk.loaded) {
		return pk.keys, nil
	}
	rows, err := m.st.ListSigningKeys(ctx, poolID)
	if err != nil {
		if pk != nil { // keep serving from cache while the store is away
			return pk.keys, nil
		}
		return nil, fmt.Errorf("keys: load %s: %w", poolID, err)
	}
	// Reuse already-opened keys.
	old := map[string]*Key{}
	if pk != nil {
		for _, k := range pk.keys {
			old[k.KID] = k
		}
	}
	ks := make([]*Key, 0, len(rows))
	for _, r := range rows {
		if k, ok := old[r.KID]; ok {
			k2 := *k
			k2.SigningKey = r
			ks = append(ks, &k2)
			continue
		}
		k, err := m.open(r)
		if err != nil {
			return nil, err
		}
		ks = append(ks, k)
	}
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].CreatedAt.Before(ks[j].CreatedAt) })
	m.mu.Lock()
	m.pools[poolID] = &poolKeys{loaded: now, keys: ks}
	m.mu.Unlock()
	return ks, nil
}

func (m *Manager) newKey(poolID, alg string, now time.Time) (store.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case ES256, "":
		alg = ES256
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return store.SigningKey{}, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("keys: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("keys: %w", err)
	}
	kidRaw := make([]byte, 12)
	rand.Read(kidRaw)
	kid := base64.RawURLEncoding.EncodeToString(kidRaw)
	pub := jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}
	pubJSON, err := json.Marshal(pub)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("keys: %w", err)
	}
	return store.SigningKey{
		KID:           kid,
		PoolID:        poolID,
		Alg:           alg,
		PrivateSealed: m.sealer.Seal(der, []byte(kid)),
		PublicJWK:     pubJSON,
		CreatedAt:     now,
	}, nil
}

// Reseal seals the pool's private keys again under the current master key
// (after a rotation, so that the previous master key can be dropped) and
// returns how many it changed.
func (m *Manager) Reseal(ctx context.Context, poolID string) (int, error) {
	ks, err := m.st.ListSigningKeys(ctx, poolID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range ks {
		changed := false
		_, err := m.st.UpdateSigningKey(ctx, k.KID, func(r *store.SigningKey) error {
			sealed, ch, err := m.sealer.Reseal(r.PrivateSealed, []byte(r.KID))
			if err != nil {
				return fmt.Errorf("keys: key %s: %w", r.KID, err)
			}
			r.PrivateSealed, changed = sealed, ch
			return nil
		})
		if err != nil {
			return n, err
		}
		if changed {
			n++
		}
	}
	return n, nil
}

func (m *Manager) open(r store.SigningKey) (*Key, error) {
	der, err := m.sealer.Open(r.PrivateSealed, []byte(r.KID))
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w (is this the master key the data was created with?)", r.KID, err)
	}
	p, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", r.KID, err)
	}
	priv, ok := p.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: key %s is not a signer", r.KID)
	}
	var pub jose.JSONWebKey
	if err := json.Unmarshal(r.PublicJWK, &pub); err != nil {
		return nil, fmt.Errorf("keys: key %s public JWK: %w", r.KID, err)
	}
	s, err := newJoseSigner(r.Alg, r.KID, priv, "JWT")
	if err != nil {
		return nil, err
	}
	as, err := newJoseSigner(r.Alg, r.KID, priv, "at+jwt")
	if err != nil {
		return nil, err
	}
	return &Key{SigningKey: r, public: pub, signer: s, atSigner: as}, nil
}

func newJoseSigner(alg, kid string, priv crypto.Signer, typ string) (jose.Signer, error) {
	var key any = priv
	if k, ok := priv.(ed25519.PrivateKey); ok {
		key = k
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		return nil, fmt.Errorf("keys: signer: %w", err)
	}
	return s, nil
}
