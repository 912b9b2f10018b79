package jwks_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/jwks"
	"github.com/writ-id/writ/internal/token"
)

// issuer is a fake OpenID issuer whose published keys the test controls.
type issuer struct {
	srv   *httptest.Server
	mu    sync.Mutex
	keys  map[string]*ecdsa.PrivateKey
	jwks  atomic.Int64 // JWKS fetches
	clock *apptest.Clock
}

func newIssuer(t *testing.T) *issuer {
	is := &issuer{keys: map[string]*ecdsa.PrivateKey{}, clock: apptest.NewClock(time.Unix(1_800_000_000, 0))}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		base := "http://" + r.Host // the issuer as the client reached it
		json.NewEncoder(w).Encode(map[string]string{"issuer": base, "jwks_uri": base + "/jwks.json"})
	})
	mux.HandleFunc("/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		is.jwks.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		var set jose.JSONWebKeySet
		for kid, k := range is.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"})
		}
		json.NewEncoder(w).Encode(set)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.addKey("k1")
	return is
}

func (is *issuer) addKey(kid string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is.mu.Lock()
	is.keys[kid] = k
	is.mu.Unlock()
}

func (is *issuer) withdraw(kid string) {
	is.mu.Lock()
	delete(is.keys, kid)
	is.mu.Unlock()
}

func (is *issuer) mint(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	is.mu.Lock()
	k := is.keys[kid]
	is.mu.Unlock()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{"iss": is.srv.URL, "sub": "s", "exp": is.clock.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := jws.CompactSerialize()
	return raw
}

// TestVerifierCache: a token verified once is served from the cache (the
// same claims), never at or past its exp, and not once its key has been
// withdrawn from the issuer's JWKS.
func TestVerifierCache(t *testing.T) {
	is := newIssuer(t)
	ctx := context.Background()
	v := jwks.NewVerifier(is.srv.URL, jwks.VerifierOptions{Options: jwks.Options{Now: is.clock.Now, MinRefetch: time.Second}, Skew: 30 * time.Second})

	tok := is.mint(t, "k1", map[string]any{"exp": is.clock.Now().Add(time.Minute).Unix()})
	c1, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := v.Verify(ctx, tok)
	if err != nil || c2 != c1 || v.Cached() != 1 {
		t.Fatalf("second verification was not served from the cache: %v, same=%v, cached=%d", err, c2 == c1, v.Cached())
	}

	// Never past exp: at exp the cache misses, and the verifier (with its
	// skew) decides; past exp+skew the token is refused.
	is.clock.Advance(time.Minute)
	if c, err := v.Verify(ctx, tok); err != nil || c == c1 {
		t.Fatalf("at exp the cached claims were served (err %v)", err)
	}
	is.clock.Advance(31 * time.Second)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("past exp+skew: %v", err)
	}

	// A key withdrawn from the JWKS stops its cached tokens at the next
	// refresh, before they expire.
	is.addKey("k2")
	tok2 := is.mint(t, "k2", nil)
	if _, err := v.Verify(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	is.withdraw("k2")
	if _, err := v.Verify(ctx, tok2); err != nil {
		t.Fatalf("before the refresh the cached token still verifies: %v", err)
	}
	if err := v.Remote().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok2); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("token under a withdrawn key: %v", err)
	}

	// Refused tokens are not cached.
	bad := is.mint(t, "k1", map[string]any{"iss": "https://elsewhere"})
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(ctx, bad); !errors.Is(err, token.ErrIssuer) {
			t.Fatalf("wrong issuer: %v", err)
		}
	}
}

func TestVerifierCacheIsBounded(t *testing.T) {
	is := newIssuer(t)
	ctx := context.Background()
	v := jwks.NewVerifier(is.srv.URL, jwks.VerifierOptions{Options: jwks.Options{Now: is.clock.Now}, CacheSize: 160})
	for i := 0; i < 2000; i++ {
		if _, err := v.Verify(ctx, is.mint(t, "k1", map[string]any{"jti": fmt.Sprint(i)})); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.Cached(); n > 160 || n < 100 {
		t.Fatalf("cache holds %d tokens, bound 160", n)
	}
}

// TestFirstFetchFailureIsRateLimited: with the issuer unreachable from
// the start, a flood of tokens fetches at most once a second, and each
// fails fast instead of queueing behind a fetch.
func TestFirstFetchFailureIsRateLimited(t *testing.T) {
	is := newIssuer(t)
	var down atomic.Bool
	down.Store(true)
	var hits atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		is.srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer front.Close()
	clock := apptest.NewClock(time.Now())
	v := jwks.NewVerifier(front.URL, jwks.VerifierOptions{Options: jwks.Options{Now: clock.Now}})
	tok := is.mint(t, "k1", map[string]any{"iss": front.URL, "exp": time.Now().Add(time.Hour).Unix()})
	for i := 0; i < 20; i++ {
		if _, err := v.Verify(context.Background(), tok); err == nil {
			t.Fatal("verified with no keys")
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d fetches while the issuer was down, want 1", n)
	}
	// The issuer answers again: after a second, the next token fetches.
	down.Store(false)
	clock.Advance(1100 * time.Millisecond)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("issuer back: %v", err)
	}
}

// TestStartBeforeTheIssuer: a verifier started while its issuer is not up
// yet (services starting together) verifies the first token as soon as the
// issuer answers: a failed scheduled fetch does not hold back that token.
func TestStartBeforeTheIssuer(t *testing.T) {
	is := newIssuer(t)
	var up atomic.Bool
	var hits atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		is.srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer front.Close()
	v := jwks.NewVerifier(front.URL, jwks.VerifierOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v.Remote().Start(ctx)
	for hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	up.Store(true)
	tok := is.mint(t, "k1", map[string]any{"iss": front.URL, "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("first token once the issuer is up: %v", err)
	}
}
