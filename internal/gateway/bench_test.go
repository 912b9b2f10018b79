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
	req.Header.Set("Authorization", auth)
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

// BenchmarkGateway compares, in one run against the same upstream and with
// the same request (a valid access token in Authorization): direct
// requests, a plain httputil.ReverseProxy with a tuned idle pool, and the
// writ gateway on an authorized route (verified-token cache warm) — as
// `writ serve` runs it (audit trail and metrics on) and bare (no audit
// events). 16 concurrent clients; client, proxies and upstream share the
// machine. Compare the ns/op of the sub-benchmarks: their ratio is the
// throughput ratio. The last sub-benchmark reports the unloaded p50/p99
// the gateway adds over the plain proxy.
func BenchmarkGateway(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	plain := httputil.NewSingleHostReverseProxy(target)
	plain.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}
	plainSrv := httptest.NewServer(plain)
	defer plainSrv.Close()

	f := startWithUpstream(b, up.URL)
	auth := "Bearer " + f.issue("demo-web", "alice", "https://api.demo.local/orders.read").AccessToken
	bare, err := gateway.New(f.Cfg, gateway.Options{IDPURL: f.App.URL(app.IDP)})
	if err != nil {
		b.Fatal(err)
	}
	defer bare.Close()
	bareSrv := httptest.NewServer(bare)
	defer bareSrv.Close()
	cases := []struct{ name, url string }{
		{"direct", up.URL + "/orders/1"},
		{"plain-proxy", plainSrv.URL + "/orders/1"},
		{"writ-gateway", f.gw + "/orders/1"},
		{"writ-gateway-no-audit", bareSrv.URL + "/orders/1"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			client := tunedClient()
			get(b, client, c.url, auth) // warm: connections and the verified-token cache
			cpu0 := cpuTime()
			b.ResetTimer()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					get(b, client, c.url, auth)
				}
			})
			b.StopTimer()
			if cpu := cpuTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
			}
		})
	}
	// Unloaded latency: p50 and p99 of sequential requests, reported by a
	// sub-benchmark (a parent with sub-benchmarks prints no metrics).
	b.Run("unloaded-latency", func(b *testing.B) {
		lat := map[string][2]time.Duration{}
		for _, c := range cases {
			client := tunedClient()
			get(b, client, c.url, auth)
			var ds []time.Duration
			for i := 0; i < 3000; i++ {
				t0 := time.Now()
				get(b, client, c.url, auth)
				ds = append(ds, time.Since(t0))
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			lat[c.name] = [2]time.Duration{ds[len(ds)/2], ds[len(ds)*99/100]}
		}
		for b.Loop() {
		}
		us := func(d time.Duration) float64 { return float64(d) / 1e3 }
		b.ReportMetric(us(lat["plain-proxy"][0]), "µs-p50-plain")
		b.ReportMetric(us(lat["writ-gateway"][0]-lat["plain-proxy"][0]), "µs-p50-added")
		b.ReportMetric(us(lat["writ-gateway"][1]-lat["plain-proxy"][1]), "µs-p99-added")
		b.ReportMetric(us(lat["writ-gateway-no-audit"][0]-lat["plain-proxy"][0]), "µs-p50-added-no-audit")
	})
}
