package keys_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/writ-id/writ/internal/keys"
	"github.com/writ-id/writ/internal/store/sqlite"
	"github.com/writ-id/writ/internal/token"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestMasterKeyCreatedOnceWithMode0600(t *testing.T) {
	dir := t.TempDir()
	k1, err := keys.LoadOrCreateMasterKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, keys.MasterKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("master key mode %v", fi.Mode().Perm())
	}
	k2, err := keys.LoadOrCreateMasterKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	sealed := k1.Sealer("x").Seal([]byte("hello"), []byte("ad"))
	if pt, err := k2.Sealer("x").Open(sealed, []byte("ad")); err != nil || string(pt) != "hello" {
		t.Fatalf("reloaded key cannot open: %v", err)
	}
	if _, err := k2.Sealer("y").Open(sealed, []byte("ad")); err == nil {
		t.Error("a sealer for another purpose opened the value")
	}
	if _, err := k2.Sealer("x").Open(sealed, []byte("other")); err == nil {
		t.Error("opened with the wrong associated data")
	}
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	if _, err := k2.Sealer("x").Open(tampered, []byte("ad")); err == nil {
		t.Error("opened a tampered value")
	}
	if s := k1.String(); strings.Contains(s, "=") || s != "[master key]" {
		t.Errorf("String() = %q", s)
	}
	if _, err := keys.ParseMasterKey("c2hvcnQ="); err == nil {
		t.Error("accepted a short master key")
	}
}

func newManager(t *testing.T, c *clock) (*keys.Manager, func() *keys.Manager) {
	t.Helper()
	st := sqlite.OpenTest(t)
	master := keys.NewMasterKey()
	mk := func() *keys.Manager {
		return keys.NewManager(st, master, keys.Options{ActivationDelay: 10 * time.Minute, Reload: time.Second, Now: c.Now})
	}
	return mk(), mk
}

func TestAlgorithms(t *testing.T) {
	for _, alg := range []string{keys.ES256, keys.EdDSA, keys.RS256} {
		t.Run(alg, func(t *testing.T) {
			c := &clock{t: time.Now()}
			m, _ := newManager(t, c)
			ctx := context.Background()
			if err := m.Ensure(ctx, "pool", alg); err != nil {
				t.Fatal(err)
			}
			k, err := m.Signer(ctx, "pool")
			if err != nil {
				t.Fatal(err)
			}
			raw, err := token.Mint(k, map[string]any{"iss": "https://iss", "sub": "s", "exp": c.Now().Add(time.Hour).Unix()})
			if err != nil {
				t.Fatal(err)
			}
			v := &token.Verifier{Issuer: "https://iss", Keys: m.Pool("pool"), Now: c.Now}
			if _, err := v.Verify(ctx, raw); err != nil {
				t.Fatalf("verify: %v", err)
			}
			set, _ := m.JWKS(ctx, "pool")
			if len(set.Keys) != 1 || set.Keys[0].Algorithm != alg || !set.Keys[0].IsPublic() {
				t.Fatalf("JWKS %+v", set)
			}
			switch set.Keys[0].Key.(type) {
			case *ecdsa.PublicKey, ed25519.PublicKey, *rsa.PublicKey:
			default:
				t.Fatalf("JWKS key type %T", set.Keys[0].Key)
			}
		})
	}
}

// TestRotationNeverBreaksAVerifier follows a verifier that caches the JWKS
// for its max-age, through two rotations: every token signed at any moment
// verifies with the JWKS the verifier holds, and retired keys stay
// published until their last token expires.
func TestRotationNeverBreaksAVerifier(t *testing.T) {
	c := &clock{t: time.Now()}
	m, newReplica := newManager(t, c)
	replica := newReplica() // a second process on the same store
	ctx := context.Background()
	const life = time.Hour
	if err := m.Ensure(ctx, "pool", keys.ES256); err != nil {
		t.Fatal(err)
	}
	maxAge := m.JWKSMaxAge()
	if maxAge >= m.ActivationDelay() {
		t.Fatalf("JWKS max-age %v must be below the activation delay %v", maxAge, m.ActivationDelay())
	}
	var cached jose.JSONWebKeySet
	var fetched time.Time
	verify := func(raw string) error {
		if c.Now().Sub(fetched) >= maxAge {
			cached, _ = replica.JWKS(ctx, "pool")
			fetched = c.Now()
		}
		v := &token.Verifier{Issuer: "i", Keys: staticKeys(cached), Now: c.Now}
		_, err := v.Verify(ctx, raw)
		return err
	}
	type signed struct {
		raw string
		exp time.Time
	}
	var issued []signed
	kids := map[string]bool{}
	step := time.Minute
	for i := 0; i < 200; i++ {
		if i == 20 || i == 100 {
			if _, err := m.Rotate(ctx, "pool", keys.ES256, life); err != nil {
				t.Fatal(err)
			}
		}
		for _, mgr := range []*keys.Manager{m, replica} {
			k, err := mgr.Signer(ctx, "pool")
			if err != nil {
				t.Fatal(err)
			}
			kids[k.KID] = true
			raw, _ := token.Mint(k, map[string]any{"iss": "i", "sub": "s", "exp": c.Now().Add(life).Unix()})
			issued = append(issued, signed{raw, c.Now().Add(life)})
		}
		for _, s := range issued {
			if c.Now().Before(s.exp.Add(-time.Second)) {
				if err := verify(s.raw); err != nil {
					t.Fatalf("minute %d: a live token failed to verify: %v", i, err)
				}
			}
		}
		c.add(step)
	}
	if len(kids) != 3 {
		t.Fatalf("signed with %d keys, want 3 (two rotations)", len(kids))
	}
	// Long after, only the newest key is published.
	c.add(3 * time.Hour)
	set, _ := m.JWKS(ctx, "pool")
	if len(set.Keys) != 1 {
		t.Fatalf("retired keys still published long after expiry: %d keys", len(set.Keys))
	}
}

type staticKeys jose.JSONWebKeySet

func (s staticKeys) VerificationKey(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	for _, k := range s.Keys {
		if k.KeyID == kid {
			return k, nil
		}
	}
	return jose.JSONWebKey{}, os.ErrNotExist
}

func TestNeverSignsWithUnpublishedKey(t *testing.T) {
	c := &clock{t: time.Now()}
	m, _ := newManager(t, c)
	ctx := context.Background()
	m.Ensure(ctx, "pool", keys.ES256)
	newKey, err := m.Rotate(ctx, "pool", keys.ES256, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		k, _ := m.Signer(ctx, "pool")
		pub, _ := m.Published(ctx, "pool")
		found := false
		for _, p := range pub {
			found = found || p.KID == k.KID
		}
		if !found {
			t.Fatalf("signing key %s is not published", k.KID)
		}
		if (k.KID == newKey.KID) != !c.Now().Before(newKey.ActiveAt) {
			t.Fatalf("at +%d min signing with %s; new key activates at %v", i, k.KID, newKey.ActiveAt)
		}
		c.add(time.Minute)
	}
}

func TestWrongMasterKeyIsReported(t *testing.T) {
	st := sqlite.OpenTest(t)
	ctx := context.Background()
	m1 := keys.NewManager(st, keys.NewMasterKey(), keys.Options{})
	if err := m1.Ensure(ctx, "pool", keys.ES256); err != nil {
		t.Fatal(err)
	}
	m2 := keys.NewManager(st, keys.NewMasterKey(), keys.Options{})
	if _, err := m2.Signer(ctx, "pool"); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("want a master-key error, got %v", err)
	}
}

// TestSealerAcrossRotation: a value sealed under a master key opens under
// a new key that lists it as previous, also in the format sealed values had
// before key ids (format byte 1, no id); new values are sealed under the
// new key; a key that is not listed opens nothing.
func TestSealerAcrossRotation(t *testing.T) {
	old, cur, other := keys.NewMasterKey(), keys.NewMasterKey(), keys.NewMasterKey()
	sealed := old.Sealer("x").Seal([]byte("hello"), []byte("ad"))
	rotated := cur.WithPrevious(other, old)
	if pt, err := rotated.Sealer("x").Open(sealed, []byte("ad")); err != nil || string(pt) != "hello" {
		t.Fatalf("a value sealed before the rotation: %v", err)
	}
	legacy := append([]byte{1}, sealed[2:]...) // format 1: no key id
	if pt, err := rotated.Sealer("x").Open(legacy, []byte("ad")); err != nil || string(pt) != "hello" {
		t.Fatalf("a value in the format before key ids: %v", err)
	}
	if _, err := cur.Sealer("x").Open(sealed, []byte("ad")); err == nil {
		t.Error("opened without the key that sealed it")
	}
	fresh := rotated.Sealer("x").Seal([]byte("new"), []byte("ad"))
	if pt, err := cur.Sealer("x").Open(fresh, []byte("ad")); err != nil || string(pt) != "new" {
		t.Fatalf("new values must be sealed under the current key: %v", err)
	}
	if _, err := old.Sealer("x").Open(fresh, []byte("ad")); err == nil {
		t.Error("a previous key opened a value sealed after the rotation")
	}
	for _, bad := range [][]byte{nil, {2}, {3, 0, 0}, {2, fresh[1]}} {
		if _, err := rotated.Sealer("x").Open(bad, []byte("ad")); err == nil {
			t.Errorf("opened %v", bad)
		}
	}
	if all := rotated.DeriveAll("l", 32); len(all) != 3 || string(all[0]) != string(cur.Derive("l", 32)) || string(all[2]) != string(old.Derive("l", 32)) {
		t.Error("DeriveAll: the current key's first, then the previous ones in order")
	}
}

// TestResealWhenKeyIDsCollide: a key id is one byte, so a previous key
// can share the current key's (1 in 256). Reseal must still move a value
// sealed under the previous key to the current one, or dropping the
// previous key loses it.
func TestResealWhenKeyIDsCollide(t *testing.T) {
	cur := keys.NewMasterKey()
	curID := cur.Sealer("x").Seal(nil, nil)[1]
	var old *keys.MasterKey
	for range 100000 {
		if k := keys.NewMasterKey(); k.Sealer("x").Seal(nil, nil)[1] == curID {
			old = k
			break
		}
	}
	if old == nil {
		t.Fatal("no colliding key found")
	}
	sealed := old.Sealer("x").Seal([]byte("hello"), []byte("ad"))
	rotated := cur.WithPrevious(old).Sealer("x")
	resealed, changed, err := rotated.Reseal(sealed, []byte("ad"))
	if err != nil || !changed {
		t.Fatalf("Reseal of a value under the previous key: changed %v, %v", changed, err)
	}
	if pt, err := cur.Sealer("x").Open(resealed, []byte("ad")); err != nil || string(pt) != "hello" {
		t.Fatalf("the resealed value does not open under the current key alone: %v", err)
	}
	if again, changed, err := rotated.Reseal(resealed, []byte("ad")); err != nil || changed || string(again) != string(resealed) {
		t.Fatalf("Reseal of a current value: changed %v, %v", changed, err)
	}
}
