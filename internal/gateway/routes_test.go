package gateway

import (
	"strings"
	"testing"

	"github.com/writ-id/writ/internal/config"
)

func routesOf(keys ...string) []config.Route {
	var rs []config.Route
	for _, k := range keys {
		rs = append(rs, config.Route{Route: k, Upstream: "http://127.0.0.1:1"})
	}
	return rs
}

func TestMostSpecificRouteWins(t *testing.T) {
	tab, err := newTable(routesOf(
		"ANY /{proxy+}",
		"GET /orders",
		"GET /orders/{id}",
		"ANY /orders/{id}",
		"GET /orders/special",
		"POST /orders/{id}/items/{item}",
		"ANY /orders/{id}/{rest+}",
		"GET /{a}/b",
		"GET /a/{b}",
		"DELETE /files/{proxy+}",
	))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, want string
		params             map[string]string
	}{
		{"GET", "/orders/special", "GET /orders/special", nil},                    // literal beats {param}
		{"GET", "/orders/42", "GET /orders/{id}", map[string]string{"id": "42"}},  // a method beats ANY
		{"PUT", "/orders/42", "ANY /orders/{id}", map[string]string{"id": "42"}},  // ANY takes the others
		{"HEAD", "/orders/42", "GET /orders/{id}", map[string]string{"id": "42"}}, // GET serves HEAD
		{"POST", "/orders/1/items/2", "POST /orders/{id}/items/{item}", map[string]string{"id": "1", "item": "2"}},
		{"GET", "/orders/1/items/2", "ANY /orders/{id}/{rest+}", map[string]string{"id": "1", "rest": "items/2"}}, // {param} beats {proxy+}
		{"GET", "/orders", "GET /orders", nil},
		{"GET", "/a/b", "GET /a/{b}", map[string]string{"b": "b"}}, // the first differing segment decides
		{"GET", "/x/b", "GET /{a}/b", map[string]string{"a": "x"}},
		{"GET", "/anything/else/here", "ANY /{proxy+}", map[string]string{"proxy": "anything/else/here"}},
		{"DELETE", "/files/a/b", "DELETE /files/{proxy+}", map[string]string{"proxy": "a/b"}},
		{"GET", "/files/a/b", "ANY /{proxy+}", map[string]string{"proxy": "files/a/b"}},
	}
	for _, c := range cases {
		r, params, _ := tab.match(c.method, c.path)
		if r == nil || r.key != c.want {
			t.Errorf("%s %s matched %v, want %s", c.method, c.path, r, c.want)
			continue
		}
		if len(params) != len(c.params) {
			t.Errorf("%s %s: params %v, want %v", c.method, c.path, params, c.params)
		}
		for k, v := range c.params {
			if params[k] != v {
				t.Errorf("%s %s: params %v, want %v", c.method, c.path, params, c.params)
			}
		}
	}
}

func TestNoMatchAndAllowedMethods(t *testing.T) {
	tab, err := newTable(routesOf("GET /orders/{id}", "DELETE /orders/{id}", "PUT /orders/{id}", "GET /files/{proxy+}"))
	if err != nil {
		t.Fatal(err)
	}
	r, _, allowed := tab.match("POST", "/orders/1")
	if r != nil || strings.Join(allowed, ",") != "DELETE,GET,HEAD,PUT" {
		t.Errorf("POST /orders/1: %v, allowed %v", r, allowed)
	}
	for _, p := range []string{"/orders", "/orders/", "/orders/1/2", "/files", "/files/", "/nope", "/"} {
		if r, _, allowed := tab.match("GET", p); r != nil || len(allowed) != 0 {
			t.Errorf("GET %s matched %v (allowed %v), want 404", p, r, allowed)
		}
	}
}

func TestConflictingRoutesAreRefused(t *testing.T) {
	for _, pair := range [][2]string{
		{"GET /orders/{id}", "GET /orders/{name}"},
		{"ANY /files/{proxy+}", "ANY /files/{path+}"},
		{"GET /a", "GET /a"},
	} {
		if _, err := newTable(routesOf(pair[0], pair[1])); err == nil || !strings.Contains(err.Error(), "conflicts") {
			t.Errorf("%q and %q: %v", pair[0], pair[1], err)
		}
	}
	for _, bad := range []string{"GET orders", "FETCH /x", "GET /{proxy+}/x", "/x"} {
		if _, err := newTable(routesOf(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// Different methods, or a literal beside a parameter, do not conflict.
	if _, err := newTable(routesOf("GET /a/{id}", "ANY /a/{id}", "PUT /a/{id}", "GET /a/b")); err != nil {
		t.Error(err)
	}
}
