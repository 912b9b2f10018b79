package jwks

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/writ-id/writ/internal/token"
)

// VerifierOptions tune a Verifier.
type VerifierOptions struct {
	// Options configure the Remote key set.
	Options
	// Skew is the clock skew allowed on exp, nbf and iat; default 30s.
	Skew time.Duration
	// CacheSize bounds the verified-token cache; default 100,000 tokens.
	// A negative value disables the cache.
	CacheSize int
}

// Verifier verifies one issuer's tokens offline: signature with the key's
// own algorithm (token.Verifier), keys from the issuer's JWKS (Remote), and
// a cache of verified tokens so that a token seen before costs a hash and a
// map lookup.
//
// The cache is keyed by the SHA-256 of the token, bounded, and never
// returns a token at or past its exp (nor before its nbf), nor one signed
// by a key the issuer has since withdrawn from its JWKS. Claims it returns
// are shared between callers and must not be modified.
//
// A Verifier is safe for concurrent use.
type Verifier struct {
	remote *Remote
	v      token.Verifier
	now    func() time.Time
	cache  *cache // nil when disabled
}

// NewVerifier returns a Verifier for issuer. Call Start on its Remote (or
// let the first token fetch the keys) and cancel that context to stop.
func NewVerifier(issuer string, opts VerifierOptions) *Verifier {
	if opts.Skew == 0 {
		opts.Skew = 30 * time.Second
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 100_000
	}
	r := New(issuer, opts.Options)
	v := &Verifier{remote: r, now: r.opts.Now,
		v: token.Verifier{Issuer: r.issuer, Keys: r, Skew: opts.Skew, Now: r.opts.Now}}
	if opts.CacheSize > 0 {
		v.cache = newCache(opts.CacheSize)
	}
	return v
}

// Remote returns the verifier's key set.
func (v *Verifier) Remote() *Remote { return v.remote }

// Cached returns the number of tokens in the verified-token cache.
func (v *Verifier) Cached() int {
	if v.cache == nil {
		return 0
	}
	return v.cache.len()
}

// Verify returns the claims of raw after checking its signature, issuer
// and time claims (token.Verifier.Verify), from the cache when raw was
// verified before. Audience, token use and scopes are the caller's to
// check (token.Requirements).
func (v *Verifier) Verify(ctx context.Context, raw string) (*token.Claims, error) {
	if v.cache == nil || len(raw) == 0 || len(raw) > token.MaxLength {
		return v.v.Verify(ctx, raw)
	}
	key := sha256.Sum256([]byte(raw))
	now := v.now().Unix()
	if e, ok := v.cache.get(key); ok && now < e.claims.Expiry && (e.claims.NotBefore == 0 || now >= e.claims.NotBefore) &&
		v.remote.has(e.kid) {
		return e.claims, nil
	}
	c, err := v.v.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if kid := headerKID(raw); kid != "" && now < c.Expiry {
		v.cache.put(key, entry{claims: c, kid: kid}, now)
	}
	return c, nil
}

// headerKID reads the kid of a token whose signature was verified.
func headerKID(raw string) string {
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	var hdr struct {
		KID string `json:"kid"`
	}
	if json.Unmarshal(b, &hdr) != nil {
		return ""
	}
	return hdr.KID
}

type entry struct {
	claims *token.Claims
	kid    string
}

// cache is the verified-token cache: 16 shards, each a map bounded to its
// share of the size, so that readers on many cores do not contend on one
// lock.
type cache struct {
	shards [16]shard
	max    int // per shard
}

type shard struct {
	mu sync.RWMutex
	m  map[[32]byte]entry
}

func newCache(size int) *cache {
	c := &cache{max: max(1, size/16)}
	for i := range c.shards {
		c.shards[i].m = map[[32]byte]entry{}
	}
	return c
}

func (c *cache) get(k [32]byte) (entry, bool) {
	s := &c.shards[k[0]&15]
	s.mu.RLock()
	e, ok := s.m[k]
	s.mu.RUnlock()
	return e, ok
}

// put stores e; a full shard first drops its expired entries, then, if
// still full, about a tenth of the rest (map order: arbitrary).
func (c *cache) put(k [32]byte, e entry, now int64) {
	s := &c.shards[k[0]&15]
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.max {
		for key, old := range s.m {
			if now >= old.claims.Expiry {
				delete(s.m, key)
			}
		}
		if len(s.m) >= c.max {
			drop := len(s.m) - c.max + max(1, c.max/10)
			for key := range s.m {
				if drop <= 0 {
					break
				}
				delete(s.m, key)
				drop--
			}
		}
	}
	s.m[k] = e
}

func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
