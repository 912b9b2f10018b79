package sdk

import (
	"context"
	"sync"
	"time"
)

// flightCache keeps values by key until they expire, and runs one fetch
// per key at a time: callers that find one running wait for its result
// (or their context). The zero value is ready to use.
type flightCache[K comparable, V any] struct {
	mu       sync.Mutex
	vals     map[K]cachedValue[V]
	inflight map[K]*flight[V]
}

type cachedValue[V any] struct {
	v     V
	until time.Time
}

type flight[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// maxCached bounds a flightCache; past it, expired entries go first, then
// everything (the next calls fetch again).
const maxCached = 100_000

// get returns key's value while now() is before its until, else what
// fetch returns, kept until the time fetch gives. fetch runs without the
// caller's cancellation: other callers may be waiting on it.
func (c *flightCache[K, V]) get(ctx context.Context, key K, now func() time.Time, fetch func(context.Context) (V, time.Time, error)) (V, error) {
	c.mu.Lock()
	if e, ok := c.vals[key]; ok && now().Before(e.until) {
		c.mu.Unlock()
		return e.v, nil
	}
	if c.inflight == nil {
		c.vals, c.inflight = map[K]cachedValue[V]{}, map[K]*flight[V]{}
	}
	f, busy := c.inflight[key]
	if !busy {
		f = &flight[V]{done: make(chan struct{})}
		c.inflight[key] = f
	}
	c.mu.Unlock()
	if busy {
		select {
		case <-f.done:
			return f.v, f.err
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
	v, until, err := fetch(context.WithoutCancel(ctx))
	f.v, f.err = v, err
	c.mu.Lock()
	delete(c.inflight, key)
	if t := now(); err == nil && until.After(t) {
		if len(c.vals) >= maxCached {
			for k, e := range c.vals {
				if !t.Before(e.until) {
					delete(c.vals, k)
				}
			}
			if len(c.vals) >= maxCached {
				clear(c.vals)
			}
		}
		c.vals[key] = cachedValue[V]{v, until}
	}
	c.mu.Unlock()
	close(f.done)
	return v, err
}
