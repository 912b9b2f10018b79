package gateway

import (
	"fmt"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/writ-id/writ/internal/config"
)

type segKind int

const (
	segGreedy segKind = iota // {name+}: the rest of the path
	segParam                 // {name}
	segLiteral
)

type segment struct {
	kind segKind
	text string // literal text or parameter name
}

// route is one compiled route.
type route struct {
	cfg    *config.Route
	key    string // "GET /orders/{id}"
	method string // GET, … or ANY
	segs   []segment

	upstream *url.URL               // nil for functions
	proxy    *httputil.ReverseProxy // nil for functions
	limit    *limiter               // nil: no rate limit
	cors     *cors                  // nil: no CORS
}

func compileRoute(rc *config.Route) (*route, error) {
	method, path, ok := strings.Cut(strings.TrimSpace(rc.Route), " ")
	if !ok {
		return nil, fmt.Errorf("gateway: route %q: want METHOD /path", rc.Route)
	}
	if _, _, err := config.ParseRoute(rc.Route); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	r := &route{cfg: rc, key: method + " " + strings.TrimSpace(path), method: method}
	for _, s := range strings.Split(strings.TrimPrefix(strings.TrimSpace(path), "/"), "/") {
		switch {
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "+}"):
			r.segs = append(r.segs, segment{segGreedy, s[1 : len(s)-2]})
		case strings.HasPrefix(s, "{"):
			r.segs = append(r.segs, segment{segParam, s[1 : len(s)-1]})
		default:
			r.segs = append(r.segs, segment{segLiteral, s})
		}
	}
	return r, nil
}

// moreSpecific orders routes: literal beats {param} beats {proxy+}, segment
// by segment; then longer beats shorter; then a method beats ANY.
func moreSpecific(a, b *route) bool {
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		if a.segs[i].kind != b.segs[i].kind {
			return a.segs[i].kind > b.segs[i].kind
		}
	}
	if len(a.segs) != len(b.segs) {
		return len(a.segs) > len(b.segs)
	}
	return a.method != "ANY" && b.method == "ANY"
}

// shape erases parameter names, for conflict detection.
func (r *route) shape() string {
	var b strings.Builder
	b.WriteString(r.method)
	for _, s := range r.segs {
		switch s.kind {
		case segLiteral:
			b.WriteString("/" + s.text)
		case segParam:
			b.WriteString("/{}")
		case segGreedy:
			b.WriteString("/{+}")
		}
	}
	return b.String()
}

// table matches requests to routes.
type table struct {
	routes []*route // most specific first
}

func newTable(rcs []config.Route) (*table, error) {
	t := &table{}
	seen := map[string]string{}
	for i := range rcs {
		r, err := compileRoute(&rcs[i])
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[r.shape()]; dup {
			return nil, fmt.Errorf("gateway: route %q conflicts with %q", r.key, prev)
		}
		seen[r.shape()] = r.key
		t.routes = append(t.routes, r)
	}
	sort.SliceStable(t.routes, func(i, j int) bool { return moreSpecific(t.routes[i], t.routes[j]) })
	return t, nil
}

// match returns the most specific route for method and path with its
// parameters, or, when routes match the path but not the method, the
// methods they allow. A GET route also serves HEAD.
func (t *table) match(method, path string) (*route, map[string]string, []string) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var allowed []string
	for _, r := range t.routes {
		params, ok := r.matchPath(parts)
		if !ok {
			continue
		}
		if r.method == "ANY" || r.method == method || (method == "HEAD" && r.method == "GET") {
			return r, params, nil
		}
		if !slices.Contains(allowed, r.method) {
			allowed = append(allowed, r.method)
		}
		if r.method == "GET" && !slices.Contains(allowed, "HEAD") {
			allowed = append(allowed, "HEAD")
		}
	}
	slices.Sort(allowed)
	return nil, nil, allowed
}

func (r *route) matchPath(parts []string) (map[string]string, bool) {
	var params map[string]string
	set := func(k, v string) {
		if params == nil {
			params = map[string]string{}
		}
		params[k] = v
	}
	for i, s := range r.segs {
		switch s.kind {
		case segGreedy:
			if i >= len(parts) || strings.Join(parts[i:], "/") == "" {
				return nil, false
			}
			set(s.text, strings.Join(parts[i:], "/"))
			return params, true
		case segParam:
			if i >= len(parts) || parts[i] == "" {
				return nil, false
			}
			set(s.text, parts[i])
		case segLiteral:
			if i >= len(parts) || parts[i] != s.text {
				return nil, false
			}
		}
	}
	return params, len(parts) == len(r.segs)
}
