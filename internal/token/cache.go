package token

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// KeyChecker is implemented by key sources that can tell cheaply whether a
// key is still published. CachingVerifier uses it, when present, to drop
// cached tokens whose key was withdrawn; otherwise it asks VerificationKey.
type KeyChecker interface {
	HasKey(kid string) bool
}

// CachingVerifier is a Verifier with a cache of verified tokens, so that a
// token seen before costs a hash and a map lookup instead of a signature
// verification.
//
// The cache is keyed by the SHA-256 of the token, bounded, and never
// returns a token at or past its exp (nor before its nbf), nor one signed
// by a key its source no longer publishes. Claims it returns are shared
// between callers and must not be modified. It is safe for concurrent use.
type CachingVerifier struct {
	V     Verifier
	cache *cache // nil when disabled

	hits, misses atomic.Int64
	results      [len(resultKinds)]atomic.Int64
}

// resultKinds name verification results, for metrics; the first is "valid"
// and the last "invalid" (any other failure).
var resultKinds = [...]struct {
	name string
	err  error
}{{"valid", nil}, {"malformed", ErrMalformed}, {"algorithm", ErrAlgorithm}, {"unknown_key", ErrUnknownKey},
	{"bad_signature", ErrSignature}, {"expired", ErrExpired}, {"not_yet_valid", ErrNotYetValid}, {"wrong_issuer", ErrIssuer},
	{"invalid", ErrInvalid}}

// VerifyStats counts a CachingVerifier's work since it started.
type VerifyStats struct {
	// Results counts verifications by result: valid, malformed, algorithm,
	// unknown_key, bad_signature, expired, not_yet_valid, wrong_issuer,
	// invalid.
	Results map[string]int64
	// CacheHits and CacheMisses count lookups of the verified-token cache.
	CacheHits, CacheMisses int64
}

// Stats returns the verifier's counters.
func (c *CachingVerifier) Stats() VerifyStats {
	s := VerifyStats{Results: map[string]int64{}, CacheHits: c.hits.Load(), CacheMisses: c.misses.Load()}
	for i, k := range resultKinds {
		s.Results[k.name] = c.results[i].Load()
	}
	return s
}

// Add adds o's counts to s.
func (s *VerifyStats) Add(o VerifyStats) {
	if s.Results == nil {
		s.Results = map[string]int64{}
	}
	for k, v := range o.Results {
		s.Results[k] += v
	}
	s.CacheHits += o.CacheHits
	s.CacheMisses += o.CacheMisses
}

func (c *CachingVerifier) count(err error) {
	for i, k := range resultKinds {
		if (err == nil && k.err == nil) || (err != nil && k.err != nil && errors.Is(err, k.err)) {
			c.results[i].Add(1)
			return
		}
	}
	c.results[len(resultKinds)-1].Add(1)
}

// NewCachingVerifier returns v with a cache of size tokens (a negative
// size disables the cache; zero means 100,000).
func NewCachingVerifier(v Verifier, size int) *CachingVerifier {
	c := &CachingVerifier{V: v}
	if size == 0 {
		size = 100_000
	}
	if size > 0 {
		c.cache = newCache(size)
	}
	return c
}

// Cached returns the number of tokens in the cache.
func (c *CachingVerifier) Cached() int {
	if c.cache == nil {
		return 0
	}
	return c.cache.len()
}

// Verify is Verifier.Verify, from the cache when raw was verified before.
func (c *CachingVerifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	claims, err := c.verify(ctx, raw)
	c.count(err)
	return claims, err
}

func (c *CachingVerifier) verify(ctx context.Context, raw string) (*Claims, error) {
	if c.cache == nil || len(raw) == 0 || len(raw) > MaxLength {
		return c.V.Verify(ctx, raw)
	}
	key := sha256.Sum256([]byte(raw))
	now := time.Now
	if c.V.Now != nil {
		now = c.V.Now
	}
	t := now().Unix()
	if e, ok := c.cache.get(key); ok && t < e.claims.Expiry && (e.claims.NotBefore == 0 || t >= e.claims.NotBefore) &&
		c.published(ctx, e.kid) {
		c.hits.Add(1)
		return e.claims, nil
	}
	c.misses.Add(1)
	claims, err := c.V.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if kid := headerKID(raw); kid != "" && t < claims.Expiry {
		c.cache.put(key, entry{claims: claims, kid: kid}, t)
	}
	return claims, nil
}

func (c *CachingVerifier) published(ctx context.Context, kid string) bool {
	if kc, ok := c.V.Keys.(KeyChecker); ok {
		return kc.HasKey(kid)
	}
	_, err := c.V.Keys.VerificationKey(ctx, kid)
	return err == nil
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
	claims *Claims
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
