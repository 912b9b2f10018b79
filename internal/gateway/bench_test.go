package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/gateway"
)

func tunedClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}}
}

func get(b *testing.B, c *http.Client, u, auth string) {
	req, _ := http.NewRequest("GET", u, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// BenchmarkGateway compares, in one run against the same upstream: direct
// requests, a plain httputil.ReverseProxy with a tuned idle pool, and the
// writ gateway on an authorized route (verified-token cache warm). Compare
// the ns/op of the sub-benchmarks: their ratio is what the gateway costs.
// It also reports the unloaded p50/p99 the gateway adds over the plain proxy.
func BenchmarkGateway(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	plain := httputil.NewSingleHostReverseProxy(target)
	plain.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}
	plainSrv := httptest.NewServer(plain)
	defer plainSrv.Close()

	f := startWithUpstream(b, up.URL)
	tok := f.issue("demo-web", "alice", "https://api.demo.local/orders.read")
	// The same gateway without audit events, to show what the audit trail costs.
	quiet, err := gateway.New(f.Cfg, gateway.Options{IDPURL: f.App.URL(app.IDP)})
	if err != nil {
		b.Fatal(err)
	}
	defer quiet.Close()
	quietSrv := httptest.NewServer(quiet)
	defer quietSrv.Close()
	cases := []struct {
		name, url, auth string
	}{
		{"direct", up.URL + "/orders/1", ""},
		{"plain-proxy", plainSrv.URL + "/orders/1", ""},
		{"writ-gateway", f.gw + "/orders/1", "Bearer " + tok.AccessToken},
		{"writ-gateway-no-audit", quietSrv.URL + "/orders/1", "Bearer " + tok.AccessToken},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			client := tunedClient()
			get(b, client, c.url, c.auth) // warm: connections and the verified-token cache
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					get(b, client, c.url, c.auth)
				}
			})
		})
	}
	// Unloaded latency: p50 and p99 of sequential requests, reported by a
	// sub-benchmark (a parent with sub-benchmarks prints no metrics).
	b.Run("unloaded-latency", func(b *testing.B) {
		lat := map[string][2]time.Duration{}
		for _, c := range cases {
			client := tunedClient()
			get(b, client, c.url, c.auth)
			var ds []time.Duration
			for i := 0; i < 2000; i++ {
				t0 := time.Now()
				get(b, client, c.url, c.auth)
				ds = append(ds, time.Since(t0))
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			lat[c.name] = [2]time.Duration{ds[len(ds)/2], ds[len(ds)*99/100]}
		}
		for b.Loop() {
		}
		b.ReportMetric(float64(lat["writ-gateway"][0]-lat["plain-proxy"][0])/1e3, "µs-p50-added")
		b.ReportMetric(float64(lat["writ-gateway"][1]-lat["plain-proxy"][1])/1e3, "µs-p99-added")
	})
}
