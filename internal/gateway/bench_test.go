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
	"github.com/writ-id/writ/internal/benchutil"
	"github.com/writ-id/writ/internal/gateway"
)

func tunedClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}}
}

func fetch(c *http.Client, u, auth string) error {
	return fetchAs(c, u, auth, "")
}

// fetchAs is fetch with the caller's X-Request-Id when reqID is set.
func fetchAs(c *http.Client, u, auth, reqID string) error {
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", auth)
	if reqID != "" {
		req.Header.Set("X-Request-Id", reqID)
	}
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
// machine, and the paths take turns in blocks of 1024 requests (one of the
// audit writer's batches, flushed inside its turn with the clients idle:
// see the "audit" sub-benchmark) so that load elsewhere slows them alike.
// It reports ops/s and CPU per request of each path and the throughput
// ratios; the "audit" sub-benchmark measures the audit trail's cost on its own, and
// the last one the unloaded p50/p99 the gateway adds over the plain proxy.
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
		rates := apptest.TakeTurns(b, names, 16, 1024, func(i int) error { return fetch(clients[i], cases[i].url, auth) },
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
	// The audit trail's cost alone: the bare gateway without and with it,
	// and nothing else, taking turns in blocks of 8192 requests (several
	// of the writer's batches, written while requests flow as in a server
	// under load). Each request carries a random X-Request-Id, as from
	// callers that trace, so the request index sees ids in no order. The
	// turn's last batch is flushed inside the turn, with the clients idle
	// meanwhile, which a server under load does not do: µs/flush of each
	// turn's µs/turn is what that costs the throughput ratio beyond the
	// CPU. Besides the ratios of the totals it reports the median over
	// pairs of turns, which a burst of load elsewhere moves less; the
	// machine is CPU-bound, so CPU per request is what bounds throughput.
	b.Run("audit", func(b *testing.B) {
		urls := []string{cases[3].url, cases[4].url}
		clients := []*http.Client{tunedClient(), tunedClient()}
		for i, u := range urls {
			get(b, clients[i], u, auth)
		}
		var flushed time.Duration
		const block = 8192
		res, err := benchutil.TakeTurns(2, 16, block, b.N, func(i int) error { return fetchAs(clients[i], urls[i], auth, benchutil.UUID()) },
			func(i int) {
				if i == 1 {
					t0 := time.Now()
					f.App.Core.Audit.Flush(context.Background())
					flushed += time.Since(t0)
				}
			})
		if err != nil {
			b.Fatal(err)
		}
		for i, name := range []string{cases[3].name, cases[4].name} {
			b.ReportMetric(res[i].Rate(), "ops/s-"+name)
			b.ReportMetric(res[i].CPUPerOp(), "cpu-µs/op-"+name)
		}
		turns := float64(res[1].Ops) / block
		b.ReportMetric(float64(flushed.Microseconds())/turns, "µs/flush")
		b.ReportMetric(float64(res[1].Elapsed.Microseconds())/turns, "µs/turn")
		b.ReportMetric(res[1].Rate()/res[0].Rate(), "audit-on/audit-off")
		b.ReportMetric(res[0].CPUPerOp()/res[1].CPUPerOp(), "cpu-audit-off/audit-on")
		b.ReportMetric(benchutil.PairedMedian(res[1], res[0], benchutil.Result.Rate), "median-audit-on/audit-off")
		b.ReportMetric(benchutil.PairedMedian(res[0], res[1], benchutil.Result.CPUPerOp), "median-cpu-audit-off/audit-on")
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
