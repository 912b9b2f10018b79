package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/gateway"
)

func tunedClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}}
}

func fetch(c *http.Client, u, auth string) error {
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", auth)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func get(b *testing.B, c *http.Client, u, auth string) {
	if err := fetch(c, u, auth); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkGateway compares, in one run against the same upstream and with
// the same request (a valid access token in Authorization): direct
// requests, a plain httputil.ReverseProxy with a tuned idle pool, and the
// writ gateway on an authorized route (verified-token cache warm) — as
// `writ serve` runs it (audit trail and metrics on) and bare (no audit
// events), and bare with the audit trail (what the audit trail alone
// costs). 16 concurrent clients; client, proxies and upstream share the
// machine, and the paths take turns in blocks of 256 requests
// (apptest.TakeTurns) so that load elsewhere slows them alike. It reports
// ops/s and CPU per request of each path and the throughput ratios; the
// last sub-benchmark reports the unloaded p50/p99 the gateway adds over the
// plain proxy.
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
	// The bare gateway with the audit trail (the app's writer): against the
	// bare one, what the audit trail alone costs.
	audited, err := gateway.New(f.Cfg, gateway.Options{IDPURL: f.App.URL(app.IDP), Audit: f.App.Core.Audit})
	if err != nil {
		b.Fatal(err)
	}
	defer audited.Close()
	auditedSrv := httptest.NewServer(audited)
	defer auditedSrv.Close()
	cases := []struct{ name, url string }{
		{"direct", up.URL + "/orders/1"},
		{"plain-proxy", plainSrv.URL + "/orders/1"},
		{"writ-gateway", f.gw + "/orders/1"},
		{"writ-gateway-no-audit", bareSrv.URL + "/orders/1"},
		{"writ-gateway-bare-audit", auditedSrv.URL + "/orders/1"},
	}
	b.Run("throughput", func(b *testing.B) {
		names := make([]string, len(cases))
		clients := make([]*http.Client, len(cases))
		for i, c := range cases {
			names[i], clients[i] = c.name, tunedClient()
			get(b, clients[i], c.url, auth) // warm: connections and the verified-token cache
		}
		rates := apptest.TakeTurns(b, names, 16, 256, func(i int) error { return fetch(clients[i], cases[i].url, auth) },
			func(i int) {
				if cases[i].name == "writ-gateway" || cases[i].name == "writ-gateway-bare-audit" {
					f.App.Core.Audit.Flush(context.Background()) // its audit rows are its cost
				}
			})
		b.ReportMetric(rates[2]/rates[1], "gateway/plain")
		b.ReportMetric(rates[3]/rates[1], "no-audit/plain")
		b.ReportMetric(rates[2]/rates[3], "served/no-audit")
		b.ReportMetric(rates[4]/rates[3], "audit-on/audit-off")
	})
	// Unloaded latency: p50 and p99 of sequential requests, the paths
	// taking turns request by request, reported by a sub-benchmark (a
	// parent with sub-benchmarks prints no metrics).
	b.Run("unloaded-latency", func(b *testing.B) {
		clients := make([]*http.Client, len(cases))
		ds := make([][]time.Duration, len(cases))
		for i, c := range cases {
			clients[i] = tunedClient()
			get(b, clients[i], c.url, auth)
		}
		for range 3000 {
			for i, c := range cases {
				t0 := time.Now()
				get(b, clients[i], c.url, auth)
				ds[i] = append(ds[i], time.Since(t0))
			}
		}
		lat := map[string][2]time.Duration{}
		for i, c := range cases {
			sort.Slice(ds[i], func(x, y int) bool { return ds[i][x] < ds[i][y] })
			lat[c.name] = [2]time.Duration{ds[i][len(ds[i])/2], ds[i][len(ds[i])*99/100]}
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
