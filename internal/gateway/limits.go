package gateway

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/writ-id/writ/internal/config"
)

// limiter is a route's rate limit: a token bucket per caller (the token's
// sub, or the source address on routes without an authorizer and for
// requests whose token is refused) holding up
// to one second's worth of requests (at least one), refilled at rate per
// second.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds a limiter's memory: past it, buckets that have refilled
// (callers idle for a second or more, indistinguishable from new ones) are
// dropped.
const maxBuckets = 100_000

func newLimiter(rate float64, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: max(1, rate), now: now, buckets: map[string]*bucket{}}
}

// allow takes a token from who's bucket; when there is none it returns how
// long until there will be.
func (l *limiter) allow(who string) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[who]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[who] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
}

func (l *limiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets) // every caller is busy: start over rather than grow
	}
}

// cors is a route's CORS policy for browser clients. Preflight requests
// (OPTIONS with Origin and Access-Control-Request-Method) are answered by
// the gateway without authorization, as API Gateway does; other requests
// from an allowed origin get Access-Control-Allow-Origin on every response,
// refusals included.
type cors struct {
	anyOrigin bool
	origins   map[string]bool
	anyHeader bool
	headers   string // Access-Control-Allow-Headers
	maxAge    string // seconds, "" for none
}

func newCORS(c *config.CORS) (*cors, error) {
	p := &cors{origins: map[string]bool{}}
	if len(c.AllowOrigins) == 0 {
		return nil, errors.New("cors: allow_origins is empty")
	}
	for _, o := range c.AllowOrigins {
		if o == "*" {
			p.anyOrigin = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			return nil, errors.New("cors: allow_origins entry " + strconv.Quote(o) + " is not an origin (scheme://host[:port]) or *")
		}
		p.origins[o] = true
	}
	headers := c.AllowHeaders
	if len(headers) == 0 {
		headers = []string{"Authorization", "Content-Type"}
	}
	for _, h := range headers {
		if h == "*" {
			p.anyHeader = true
		}
	}
	p.headers = strings.Join(headers, ", ")
	if c.MaxAge > 0 {
		p.maxAge = strconv.Itoa(int(c.MaxAge / time.Second))
	}
	return p, nil
}

// allowOrigin returns the Access-Control-Allow-Origin value for origin,
// "" when it is not allowed.
func (p *cors) allowOrigin(origin string) string {
	switch {
	case origin == "":
		return ""
	case p.origins[origin]:
		return origin
	case p.anyOrigin:
		return "*"
	}
	return ""
}

// actual sets the CORS headers of a non-preflight response.
func (p *cors) actual(h http.Header, origin string) {
	h.Add("Vary", "Origin")
	if o := p.allowOrigin(origin); o != "" {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Expose-Headers", "X-Request-Id, WWW-Authenticate, Retry-After")
	}
}

// preflight answers a CORS preflight request for a route with a CORS
// policy: 204, with the Access-Control-Allow-* headers when the origin is
// allowed (without them the browser refuses the real request). It reports
// whether r was a preflight it answered.
func (g *Gateway) preflight(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodOptions {
		return false
	}
	origin, method := r.Header.Get("Origin"), r.Header.Get("Access-Control-Request-Method")
	if origin == "" || method == "" {
		return false
	}
	rt, _, _ := g.table.match(method, r.URL.Path)
	if rt == nil || rt.cors == nil {
		return false
	}
	p, h := rt.cors, w.Header()
	h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	if o := p.allowOrigin(origin); o != "" {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Methods", method)
		if p.anyHeader {
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
			}
		} else {
			h.Set("Access-Control-Allow-Headers", p.headers)
		}
		if p.maxAge != "" {
			h.Set("Access-Control-Max-Age", p.maxAge)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}
