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
	"text/tabwriter"
	"time"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/benchutil"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/gateway"
	"github.com/writ-id/writ/internal/userpool"
)

// cmdBenchGateway measures, in one run against the same upstream and with
// the same request (a valid access token in Authorization): direct
// requests, a plain httputil.ReverseProxy with a tuned idle pool, and the
// writ gateway on an authorized route (verified-token cache warm), as
// `writ serve` runs it (audit trail and metrics on), bare (no audit
// events) and bare with the audit trail, to show what the audit trail
// costs apart from authorization. The paths take turns (benchutil).
func cmdBenchGateway(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench gateway", "writ bench gateway [--duration 5s] [--concurrency 16]", stderr)
	dur := fs.Duration("duration", 5*time.Second, "how long each throughput measurement runs")
	conc := fs.Int("concurrency", 16, "concurrent clients")
	if err := parseFlags(fs, args); err != nil {
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
	audited, err := gateway.New(cfg, gateway.Options{IDPURL: a.URL(app.IDP), Audit: a.Core.Audit, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer audited.Close()
	auditedSrv := httptest.NewUnstartedServer(audited)
	auditedSrv.Config.MaxHeaderBytes = 64 << 10
	auditedSrv.Start()
	defer auditedSrv.Close()
	auth := "Bearer " + tok.AccessToken
	cases := []struct {
		name, url string
		audit     bool
	}{
		{"direct", up.URL + "/orders/1", false},
		{"plain ReverseProxy (tuned pool)", plainSrv.URL + "/orders/1", false},
		{"writ gateway as served (audit, metrics)", a.URL(app.Gateway) + "/orders/1", true},
		{"writ gateway, no audit", bareSrv.URL + "/orders/1", false},
		{"writ gateway, audit only", auditedSrv.URL + "/orders/1", true},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}}
	get := func(u string) error {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", auth)
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
	for _, cs := range cases {
		if err := get(cs.url); err != nil { // warm: connections, the verified-token cache
			return fmt.Errorf("%s: %w", cs.name, err)
		}
	}
	// Throughput: the paths take turns in blocks of 1024 requests (one
	// audit batch) until the time is up, so that load elsewhere on the
	// machine slows them alike; an audited path's rows are flushed inside
	// its own turn, with the clients idle meanwhile.
	const block = 1024
	acc := make([]benchutil.Result, len(cases))
	deadline := time.Now().Add(*dur * time.Duration(len(cases)))
	for time.Now().Before(deadline) {
		res, err := benchutil.TakeTurns(len(cases), *conc, block, block*len(cases), func(i int) error { return get(cases[i].url) },
			func(i int) {
				if cases[i].audit {
					a.Core.Audit.Flush(ctx)
				}
			})
		if err != nil {
			return err
		}
		for i, r := range res {
			acc[i].Ops, acc[i].Elapsed, acc[i].CPU = acc[i].Ops+r.Ops, acc[i].Elapsed+r.Elapsed, acc[i].CPU+r.CPU
		}
	}
	// Unloaded latency: sequential requests, the paths taking turns
	// request by request.
	lat := make([][]time.Duration, len(cases))
	for range 1000 {
		for i, cs := range cases {
			t0 := time.Now()
			if err := get(cs.url); err != nil {
				return err
			}
			lat[i] = append(lat[i], time.Since(t0))
		}
	}
	pct := func(i int, q float64) time.Duration {
		sort.Slice(lat[i], func(x, y int) bool { return lat[i][x] < lat[i][y] })
		return lat[i][int(float64(len(lat[i]))*q)]
	}
	base := acc[1].Rate()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "path\treq/s\tvs plain proxy\tCPU µs/req (all processes here)\tunloaded p50\tp99\t\n")
	for i, cs := range cases {
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f×\t%.0f\t%v\t%v\t\n", cs.name, acc[i].Rate(), acc[i].Rate()/base, acc[i].CPUPerOp(),
			pct(i, 0.5).Round(time.Microsecond), pct(i, 0.99).Round(time.Microsecond))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "the audit trail alone: %.2f× the gateway's throughput without it\n", acc[4].Rate()/acc[3].Rate())
	fmt.Fprintf(stdout, "unloaded p50 added over the plain proxy: %v as served, %v without audit (client, upstream and proxies share this machine's cores)\n",
		(pct(2, 0.5) - pct(1, 0.5)).Round(time.Microsecond), (pct(3, 0.5) - pct(1, 0.5)).Round(time.Microsecond))
	return nil
}
