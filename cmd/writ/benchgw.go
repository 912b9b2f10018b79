package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/gateway"
	"github.com/writ-id/writ/internal/userpool"
)

// cmdBenchGateway measures, in one run against the same upstream and with
// the same request (a valid access token in Authorization): direct
// requests, a plain httputil.ReverseProxy with a tuned idle pool, and the
// writ gateway on an authorized route (verified-token cache warm), as
// `writ serve` runs it (audit trail and metrics on) and bare (no audit
// events), to show what the audit trail costs apart from authorization.
func cmdBenchGateway(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench gateway", "writ bench gateway [--duration 5s] [--concurrency 16]", stderr)
	dur := fs.Duration("duration", 5*time.Second, "how long each throughput measurement runs")
	conc := fs.Int("concurrency", 16, "concurrent clients")
	if err := fs.Parse(args); err != nil {
		return err
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	plain := httputil.NewSingleHostReverseProxy(target)
	plain.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}
	plainSrv := httptest.NewServer(plain)
	defer plainSrv.Close()

	dir, err := os.MkdirTemp("", "writ-bench-gw-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg, err := config.Parse(examples.ReferenceConfig, filepath.Join(dir, "writ.yaml"))
	if err != nil {
		return err
	}
	cfg.DataDir = filepath.Join(dir, "data")
	freePorts(cfg)
	for _, l := range []*config.Listener{cfg.Serve.Gateway, cfg.Serve.Ops} {
		l.Listen, l.PublicURL = "127.0.0.1:0", ""
	}
	cfg.Gateway.Functions = nil
	routes := cfg.Gateway.Routes[:0]
	for _, r := range cfg.Gateway.Routes {
		if r.Upstream != "" {
			r.Upstream = up.URL
			routes = append(routes, r)
		}
	}
	cfg.Gateway.Routes = routes
	ctx := context.Background()
	a, err := app.New(ctx, cfg, app.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Only: []string{app.IDP, app.Gateway}})
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Serve(sctx) }()
	defer func() { cancel(); <-done }()
	p, _ := a.Pools.Pool(cfg.UserPools[0].ID)
	c, err := a.Core.Store.GetClient(ctx, "demo-web")
	if err != nil {
		return err
	}
	u, err := a.Core.Store.GetUser(ctx, p.ID(), "alice")
	if err != nil {
		return err
	}
	tok, err := p.Issue(ctx, userpool.Grant{Client: c, User: u, Scope: []string{"https://api.demo.local/orders.read"}, AuthTime: time.Now()})
	if err != nil {
		return err
	}
	bare, err := gateway.New(cfg, gateway.Options{IDPURL: a.URL(app.IDP), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer bare.Close()
	bareSrv := httptest.NewUnstartedServer(bare)
	bareSrv.Config.MaxHeaderBytes = 64 << 10
	bareSrv.Start()
	defer bareSrv.Close()
	auth := "Bearer " + tok.AccessToken
	cases := []struct{ name, url, auth string }{
		{"direct", up.URL + "/orders/1", auth},
		{"plain ReverseProxy (tuned pool)", plainSrv.URL + "/orders/1", auth},
		{"writ gateway (JWT authorizer, audit on)", a.URL(app.Gateway) + "/orders/1", auth},
		{"writ gateway (JWT authorizer, no audit)", bareSrv.URL + "/orders/1", auth},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}}
	get := func(u, auth string) error {
		req, _ := http.NewRequest("GET", u, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
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
	type result struct {
		rps, cpuUS float64
		p50, p99   time.Duration
	}
	results := map[string]result{}
	for _, cs := range cases {
		if err := get(cs.url, cs.auth); err != nil {
			return fmt.Errorf("%s: %w", cs.name, err)
		}
		var n atomic.Int64
		cpu0 := cpuTime()
		start := time.Now()
		deadline := start.Add(*dur)
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for i := 0; i < *conc; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					if err := get(cs.url, cs.auth); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return fmt.Errorf("%s: %w", cs.name, err)
		}
		elapsed := time.Since(start)
		cpu := cpuTime() - cpu0
		var lat []time.Duration
		for i := 0; i < 1000; i++ {
			t0 := time.Now()
			if err := get(cs.url, cs.auth); err != nil {
				return err
			}
			lat = append(lat, time.Since(t0))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		results[cs.name] = result{rps: float64(n.Load()) / elapsed.Seconds(), cpuUS: float64(cpu.Microseconds()) / float64(n.Load()),
			p50: lat[len(lat)/2], p99: lat[len(lat)*99/100]}
	}
	base := results[cases[1].name]
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "path\treq/s\tvs plain proxy\tCPU µs/req (all processes here)\tunloaded p50\tp99\t\n")
	for _, cs := range cases {
		r := results[cs.name]
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f×\t%.0f\t%v\t%v\t\n", cs.name, r.rps, r.rps/base.rps, r.cpuUS, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond))
	}
	tw.Flush()
	g, n := results[cases[2].name], results[cases[3].name]
	fmt.Fprintf(stdout, "unloaded p50 added over the plain proxy: %v by the gateway, %v without audit (client, upstream and proxies share this machine's cores)\n",
		(g.p50 - base.p50).Round(time.Microsecond), (n.p50 - base.p50).Round(time.Microsecond))
	return nil
}
