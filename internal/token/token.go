package token

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Signer signs a JWS payload; keys.Key implements it.
type Signer interface {
	Sign(payload []byte, typ string) (string, error)
}

// AccessTokenHash returns the at_hash of accessToken for an ID token
// signed with alg (OpenID Connect Core §3.1.3.6): the left half of its
// hash under the algorithm's hash function (SHA-512 for EdDSA, as OpenID
// settled for Ed25519), base64url; "" for an algorithm it does not know.
func AccessTokenHash(alg, accessToken string) string {
	var sum []byte
	switch alg {
	case "ES256", "RS256", "PS256":
		s := sha256.Sum256([]byte(accessToken))
		sum = s[:16]
	case "EdDSA", "ES512", "RS512", "PS512":
		s := sha512.Sum512([]byte(accessToken))
		sum = s[:32]
	default:
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

// Mint signs claims as a compact JWT. Access tokens get typ "at+jwt"
// (RFC 9068), others "JWT".
func Mint(s Signer, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	typ := "JWT"
	if claims["token_use"] == UseAccess {
		typ = "at+jwt"
	}
	return s.Sign(payload, typ)
}

// MaxLength bounds the size of a token accepted for verification.
const MaxLength = 16 << 10

// Verification errors; every error Verify returns wraps ErrInvalid and
// usually one of the more specific ones.
var (
	ErrInvalid     = errors.New("token: invalid")
	ErrMalformed   = errors.New("token: malformed")
	ErrAlgorithm   = errors.New("token: algorithm not allowed")
	ErrUnknownKey  = errors.New("token: unknown signing key")
	ErrSignature   = errors.New("token: bad signature")
	ErrExpired     = errors.New("token: expired")
	ErrNotYetValid = errors.New("token: not yet valid")
	ErrIssuer      = errors.New("token: wrong issuer")
	// ErrKeysUnavailable: the issuer's keys could not be had (never
	// fetched): the token may be good, the verifier cannot tell. Not an
	// ErrInvalid.
	ErrKeysUnavailable = errors.New("token: the issuer's keys are unavailable")
)

func invalid(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: %w: "+format, append([]any{ErrInvalid, kind}, args...)...)
}

// KeySource finds a verification key by kid. The returned JWK's Algorithm
// is authoritative: a token whose header names another algorithm is refused.
type KeySource interface {
	VerificationKey(ctx context.Context, kid string) (jose.JSONWebKey, error)
}

// AllowedAlgorithms are the only JWS algorithms writ signs or accepts.
var AllowedAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256}

// Verifier checks a token's signature, issuer and time claims.
type Verifier struct {
	// Issuer must equal iss exactly.
	Issuer string
	Keys   KeySource
	// Skew is the allowed clock skew for exp, nbf and iat.
	Skew time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// AllowExpired takes a token past its exp (its nbf and iat still
	// hold): for an id_token_hint, which names a sign-in that may have
	// ended, never for a token that grants anything.
	AllowExpired bool
}

// Verify parses and verifies raw and returns its claims. It does not check
// audience, token use or scopes: callers do, for their own rules.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) == 0 || len(raw) > MaxLength {
		return nil, invalid(ErrMalformed, "length %d", len(raw))
	}
	jws, err := jose.ParseSigned(raw, AllowedAlgorithms)
	if err != nil {
		return nil, invalid(ErrMalformed, "%v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid(ErrMalformed, "want one signature")
	}
	h := jws.Signatures[0].Protected
	if h.KeyID == "" {
		return nil, invalid(ErrUnknownKey, "no kid")
	}
	key, err := v.Keys.VerificationKey(ctx, h.KeyID)
	if errors.Is(err, ErrKeysUnavailable) {
		return nil, err
	}
	if err != nil {
		return nil, invalid(ErrUnknownKey, "%v", err)
	}
	if key.Algorithm == "" || key.Algorithm != h.Algorithm {
		return nil, invalid(ErrAlgorithm, "header %q, key %q", h.Algorithm, key.Algorithm)
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, invalid(ErrSignature, "%v", err)
	}
	return v.check(payload)
}

// parseClaims decodes a token's payload.
func parseClaims(payload []byte) (*Claims, error) {
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalid(ErrMalformed, "claims: %v", err)
	}
	if err := json.Unmarshal(payload, &c.Raw); err != nil {
		return nil, invalid(ErrMalformed, "claims: %v", err)
	}
	return &c, nil
}

func (v *Verifier) check(payload []byte) (*Claims, error) {
	c, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	if c.Issuer != v.Issuer {
		return nil, invalid(ErrIssuer, "%q", c.Issuer)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now().Unix()
	skew := int64(v.Skew / time.Second)
	if c.Expiry == 0 || (t >= c.Expiry+skew && !v.AllowExpired) {
		return nil, invalid(ErrExpired, "exp %d", c.Expiry)
	}
	if c.NotBefore != 0 && t+skew < c.NotBefore {
		return nil, invalid(ErrNotYetValid, "nbf %d", c.NotBefore)
	}
	if c.IssuedAt != 0 && t+skew < c.IssuedAt {
		return nil, invalid(ErrNotYetValid, "iat %d", c.IssuedAt)
	}
	return c, nil
}

// Unverified decodes a token's claims without verifying anything: to
// route a token to its verifier (its iss), or to read what only narrows a
// request. Never trust the result for anything it grants.
func Unverified(raw string) (*Claims, error) {
	if len(raw) > MaxLength {
		return nil, invalid(ErrMalformed, "length %d", len(raw))
	}
	parts := strings.SplitN(raw, ".", 4)
	if len(parts) != 3 {
		return nil, invalid(ErrMalformed, "want three parts")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, invalid(ErrMalformed, "payload: %v", err)
	}
	return parseClaims(payload)
}

// UnverifiedIssuer reads iss from a token without verifying it, to route
// the token to the right verifier. Never trust the result for anything else.
func UnverifiedIssuer(raw string) (string, bool) {
	c, err := Unverified(raw)
	if err != nil || c.Issuer == "" {
		return "", false
	}
	return c.Issuer, true
}
