// Package jwks keeps a remote issuer's signing keys for offline token
// verification: it discovers the JWKS through the issuer's OpenID
// configuration, caches the keys, refreshes them in the background as the
// JWKS Cache-Control allows, refetches (rate-limited) when a token names an
// unknown kid, and keeps serving cached keys while the issuer is down.
//
// Remote implements token.KeySource.
package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/writ-id/writ/internal/token"
)

// Options tune a Remote.
type Options struct {
	// Client fetches discovery and JWKS; default a client with a 10s timeout.
	Client *http.Client
	// MinRefetch is the least time between two fetches triggered by unknown
	// kids. Default 10s.
	MinRefetch time.Duration
	// MinAge and MaxAge bound the background refresh interval taken from
	// the JWKS Cache-Control max-age. Defaults 30s and 1h.
	MinAge, MaxAge time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Remote is the cached key set of one issuer.
type Remote struct {
	issuer string
	opts   Options

	mu       sync.RWMutex
	keys     map[string]jose.JSONWebKey
	jwksURI  string
	fetched  time.Time
	lastTry  time.Time
	maxAge   time.Duration
	fetchMu  sync.Mutex
	fetches  atomic.Int64
	failures atomic.Int64
}

// New returns a Remote for issuer. Nothing is fetched until the first use
// or Start.
func New(issuer string, opts Options) *Remote {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.MinRefetch == 0 {
		opts.MinRefetch = 10 * time.Second
	}
	if opts.MinAge == 0 {
		opts.MinAge = 30 * time.Second
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Remote{issuer: strings.TrimRight(issuer, "/"), opts: opts, keys: map[string]jose.JSONWebKey{}}
}

// Issuer returns the issuer URL.
func (r *Remote) Issuer() string { return r.issuer }

// Stats reports fetch counts (for metrics and tests).
func (r *Remote) Stats() (fetches, failures int) {
	return int(r.fetches.Load()), int(r.failures.Load())
}

// ErrUnknownKey reports a kid the issuer does not publish.
var ErrUnknownKey = errors.New("jwks: unknown key id")

// VerificationKey returns the key with id kid. When kid is not cached it
// fetches the JWKS again, at most once per MinRefetch (once per second
// while no fetch has ever succeeded), so that tokens under made-up kids
// cannot make writ hammer the issuer. A caller that meets an unknown kid
// while a fetch is in flight waits for that fetch rather than failing.
func (r *Remote) VerificationKey(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	r.mu.RLock()
	k, ok := r.keys[kid]
	never := r.fetched.IsZero()
	r.mu.RUnlock()
	if ok {
		return k, nil
	}
	every := r.opts.MinRefetch
	if never {
		every = min(every, time.Second)
	}
	err := r.refresh(ctx, every)
	r.mu.RLock()
	k, ok = r.keys[kid]
	never = r.fetched.IsZero()
	r.mu.RUnlock()
	if ok {
		return k, nil
	}
	if never {
		if err == nil {
			err = errors.New("the key set could not be fetched yet")
		}
		return jose.JSONWebKey{}, fmt.Errorf("jwks: %w: %v", token.ErrKeysUnavailable, err)
	}
	return jose.JSONWebKey{}, fmt.Errorf("%w %q at %s", ErrUnknownKey, kid, r.issuer)
}

// Fetched reports whether a fetch of the key set has ever succeeded.
func (r *Remote) Fetched() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return !r.fetched.IsZero()
}

// HasKey reports whether kid is in the cached key set.
func (r *Remote) HasKey(kid string) bool {
	r.mu.RLock()
	_, ok := r.keys[kid]
	r.mu.RUnlock()
	return ok
}

// Refresh fetches the key set now.
func (r *Remote) Refresh(ctx context.Context) error { return r.refresh(ctx, 0) }

// refresh fetches once; concurrent callers share one fetch. A fetch tried
// less than every ago is not repeated (every 0: always fetch).
func (r *Remote) refresh(ctx context.Context, every time.Duration) error {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	now := r.opts.Now()
	r.mu.RLock()
	recent := !r.lastTry.IsZero() && now.Sub(r.lastTry) < every
	r.mu.RUnlock()
	if recent {
		return nil
	}
	r.mu.Lock()
	prev := r.lastTry
	r.lastTry = now
	r.mu.Unlock()
	r.fetches.Add(1)
	keys, maxAge, err := r.fetch(ctx)
	if err != nil {
		r.failures.Add(1)
		if every == 0 {
			// A failed scheduled fetch does not hold back the next token
			// that needs the keys.
			r.mu.Lock()
			r.lastTry = prev
			r.mu.Unlock()
		}
		return err
	}
	r.mu.Lock()
	r.keys, r.fetched, r.maxAge = keys, now, maxAge
	r.mu.Unlock()
	return nil
}

func (r *Remote) fetch(ctx context.Context) (map[string]jose.JSONWebKey, time.Duration, error) {
	r.mu.RLock()
	uri := r.jwksURI
	r.mu.RUnlock()
	if uri == "" {
		var d struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if _, err := r.getJSON(ctx, r.issuer+"/.well-known/openid-configuration", &d); err != nil {
			return nil, 0, err
		}
		if d.Issuer != r.issuer {
			return nil, 0, fmt.Errorf("jwks: discovery issuer %q does not match %q", d.Issuer, r.issuer)
		}
		if d.JWKSURI == "" {
			return nil, 0, errors.New("jwks: discovery has no jwks_uri")
		}
		uri = d.JWKSURI
		r.mu.Lock()
		r.jwksURI = uri
		r.mu.Unlock()
	}
	var set jose.JSONWebKeySet
	h, err := r.getJSON(ctx, uri, &set)
	if err != nil {
		return nil, 0, err
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.KeyID == "" || !k.IsPublic() || !k.Valid() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		keys[k.KeyID] = k
	}
	return keys, r.clampAge(maxAge(h.Get("Cache-Control"))), nil
}

func (r *Remote) getJSON(ctx context.Context, url string, v any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: fetch %s: status %d", url, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch %s: %w", url, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("jwks: decode %s: %w", url, err)
	}
	return resp.Header, nil
}

func maxAge(cc string) time.Duration {
	for _, part := range strings.Split(cc, ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	return 0
}

func (r *Remote) clampAge(d time.Duration) time.Duration {
	if d < r.opts.MinAge {
		return r.opts.MinAge
	}
	if d > r.opts.MaxAge {
		return r.opts.MaxAge
	}
	return d
}

// Start refreshes the key set in the background, every max-age (from the
// JWKS Cache-Control, bounded by MinAge and MaxAge), retrying sooner after
// a failure (from half a second, doubling, while no fetch has succeeded
// yet), until ctx ends. Cached keys keep serving while fetches fail.
func (r *Remote) Start(ctx context.Context) {
	go func() {
		backoff := 500 * time.Millisecond
		for {
			err := r.Refresh(ctx)
			r.mu.RLock()
			wait, never := r.maxAge, r.fetched.IsZero()
			r.mu.RUnlock()
			switch {
			case err != nil && never:
				wait = min(backoff, r.opts.MinAge/2)
				backoff *= 2
			case err != nil || wait == 0:
				wait = r.opts.MinAge / 2
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
}
