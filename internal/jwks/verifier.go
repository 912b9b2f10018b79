package jwks

import (
	"time"

	"github.com/writ-id/writ/internal/token"
)

// VerifierOptions tune a Verifier.
type VerifierOptions struct {
	// Options configure the Remote key set.
	Options
	// Skew is the clock skew allowed on exp, nbf and iat; default 30s.
	// A negative value allows none.
	Skew time.Duration
	// CacheSize bounds the verified-token cache; default 100,000 tokens.
	// A negative value disables the cache.
	CacheSize int
}

// Verifier verifies one issuer's tokens offline: signature with the key's
// own algorithm (token.Verifier), keys from the issuer's JWKS (Remote), and
// a cache of verified tokens (token.CachingVerifier) so that a token seen
// before costs a hash and a map lookup — never past its exp, nor once the
// issuer has withdrawn its key from the JWKS. Claims it returns are shared
// between callers and must not be modified.
//
// A Verifier is safe for concurrent use.
type Verifier struct {
	remote *Remote
	*token.CachingVerifier
}

// NewVerifier returns a Verifier for issuer. Call Start on its Remote (or
// let the first token fetch the keys) and cancel that context to stop.
func NewVerifier(issuer string, opts VerifierOptions) *Verifier {
	if opts.Skew == 0 {
		opts.Skew = 30 * time.Second
	} else if opts.Skew < 0 {
		opts.Skew = 0
	}
	r := New(issuer, opts.Options)
	return &Verifier{remote: r, CachingVerifier: token.NewCachingVerifier(
		token.Verifier{Issuer: r.issuer, Keys: r, Skew: opts.Skew, Now: r.opts.Now}, opts.CacheSize)}
}

// Remote returns the verifier's key set.
func (v *Verifier) Remote() *Remote { return v.remote }
