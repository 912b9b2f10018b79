package token_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/writ-id/writ/internal/token"
)

type keySet map[string]jose.JSONWebKey

func (s keySet) VerificationKey(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return jose.JSONWebKey{}, os.ErrNotExist
}

type signer struct{ s jose.Signer }

func (s signer) Sign(p []byte, typ string) (string, error) {
	o, err := s.s.Sign(p)
	if err != nil {
		return "", err
	}
	return o.CompactSerialize()
}

func setup(t *testing.T) (*ecdsa.PrivateKey, keySet, token.Signer) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv, keySet{"k1": {Key: &priv.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}, signer{s}
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestVerifyAcceptsGoodAndRefusesAttacks(t *testing.T) {
	priv, ks, s := setup(t)
	now := time.Now()
	v := &token.Verifier{Issuer: "https://iss/pool", Keys: ks, Skew: 30 * time.Second, Now: func() time.Time { return now }}
	claims := func(extra map[string]any) map[string]any {
		m := map[string]any{"iss": "https://iss/pool", "sub": "u1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "token_use": "access", "act": map[string]any{"sub": "svc-a", "act": map[string]any{"sub": "svc-b"}}}
		for k, x := range extra {
			if x == nil {
				delete(m, k)
			} else {
				m[k] = x
			}
		}
		return m
	}
	good, _ := token.Mint(s, claims(nil))
	c, err := v.Verify(context.Background(), good)
	if err != nil {
		t.Fatalf("good token: %v", err)
	}
	if c.Subject != "u1" || strings.Join(c.Act.Chain(), ",") != "svc-a,svc-b" || c.Raw["token_use"] != "access" {
		t.Fatalf("claims %+v", c)
	}

	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	hs := func(payload map[string]any) string {
		h := b64(map[string]any{"alg": "HS256", "kid": "k1", "typ": "JWT"}) + "." + b64(payload)
		m := hmac.New(sha256.New, pubDER)
		m.Write([]byte(h))
		return h + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	parts := strings.Split(good, ".")
	mint := func(m map[string]any) string { tok, _ := token.Mint(s, m); return tok }
	attacks := map[string]struct {
		tok  string
		want error
	}{
		"alg none":          {b64(map[string]any{"alg": "none", "kid": "k1"}) + "." + b64(claims(nil)) + ".", token.ErrMalformed},
		"HS256 with pubkey": {hs(claims(nil)), token.ErrMalformed},
		"unknown kid":       {b64(map[string]any{"alg": "ES256", "kid": "k9"}) + "." + parts[1] + "." + parts[2], token.ErrUnknownKey},
		"no kid":            {b64(map[string]any{"alg": "ES256"}) + "." + parts[1] + "." + parts[2], token.ErrUnknownKey},
		"payload swapped":   {parts[0] + "." + b64(claims(map[string]any{"sub": "admin"})) + "." + parts[2], token.ErrSignature},
		"expired":           {mint(claims(map[string]any{"exp": now.Add(-time.Minute).Unix()})), token.ErrExpired},
		"no exp":            {mint(claims(map[string]any{"exp": nil})), token.ErrExpired},
		"not yet valid":     {mint(claims(map[string]any{"nbf": now.Add(time.Hour).Unix()})), token.ErrNotYetValid},
		"issued in future":  {mint(claims(map[string]any{"iat": now.Add(time.Hour).Unix()})), token.ErrNotYetValid},
		"wrong issuer":      {mint(claims(map[string]any{"iss": "https://evil/pool"})), token.ErrIssuer},
		"truncated":         {good[:len(good)-10], token.ErrSignature},
		"garbage":           {"not.a.jwt", token.ErrMalformed},
		"oversized":         {strings.Repeat("a", 100<<10), token.ErrMalformed},
		"jku header":        {b64(map[string]any{"alg": "ES256", "kid": "k9", "jku": "http://127.0.0.1:1/jwks"}) + "." + parts[1] + "." + parts[2], token.ErrUnknownKey},
	}
	for name, a := range attacks {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), a.tok)
			if !errors.Is(err, token.ErrInvalid) || !errors.Is(err, a.want) {
				t.Fatalf("got %v, want %v", err, a.want)
			}
		})
	}
	// Within the skew, a just-expired token still passes.
	justExpired := mint(claims(map[string]any{"exp": now.Add(-10 * time.Second).Unix()}))
	if _, err := v.Verify(context.Background(), justExpired); err != nil {
		t.Errorf("token expired within skew refused: %v", err)
	}
	// A key whose JWK names another algorithm is refused even with a valid signature.
	ks["k1"] = jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "k1", Algorithm: "RS256"}
	if _, err := v.Verify(context.Background(), good); !errors.Is(err, token.ErrAlgorithm) {
		t.Errorf("algorithm mismatch: %v", err)
	}
}

func TestUnverifiedIssuer(t *testing.T) {
	_, _, s := setup(t)
	tok, _ := token.Mint(s, map[string]any{"iss": "https://a/b"})
	if iss, ok := token.UnverifiedIssuer(tok); !ok || iss != "https://a/b" {
		t.Fatalf("got %q %v", iss, ok)
	}
	for _, bad := range []string{"", "a.b", "a.!!!.c", strings.Repeat("x", 20000)} {
		if _, ok := token.UnverifiedIssuer(bad); ok {
			t.Errorf("UnverifiedIssuer(%.10q) ok", bad)
		}
	}
}

func BenchmarkMintES256(b *testing.B) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	js, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: "k1"}}, nil)
	s := signer{js}
	claims := map[string]any{"iss": "https://iss/pool", "sub": "u1", "iat": 1, "exp": 2, "token_use": "access", "scope": "a b c", "client_id": "c", "jti": "x"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.Mint(s, claims); err != nil {
			b.Fatal(err)
		}
	}
}
