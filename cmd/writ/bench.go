package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/keys"
	"github.com/writ-id/writ/internal/store/postgres"
)

func cmdBench(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "gateway" {
		return cmdBenchGateway(args[1:], stdout, stderr)
	}
	fs := newFlags("bench", "writ bench [--postgres DSN] [--duration 5s] [--concurrency 4]", stderr)
	pg := fs.String("postgres", os.Getenv("WRIT_TEST_POSTGRES"), "also measure on PostgreSQL at this DSN (a temporary schema is created and dropped)")
	dur := fs.Duration("duration", 5*time.Second, "how long each measurement runs")
	conc := fs.Int("concurrency", 4, "concurrent clients")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dur <= 0 || *conc < 1 {
		return fmt.Errorf("%w: bench needs a positive --duration and --concurrency", errUsage)
	}
	ctx := context.Background()
	type row struct {
		backend, what string
		rate          float64
		note          string
	}
	var rows []row
	backends := []string{"sqlite"}
	if *pg != "" {
		backends = append(backends, "postgres")
	}
	for _, backend := range backends {
		dir, err := os.MkdirTemp("", "writ-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg, err := config.Parse(examples.ReferenceConfig, filepath.Join(dir, "writ.yaml"))
		if err != nil {
			return err
		}
		cfg.DataDir = filepath.Join(dir, "data")
		for _, l := range []*config.Listener{cfg.Serve.IDP, cfg.Serve.Identity, cfg.Serve.Objects, cfg.Serve.Gateway, cfg.Serve.Ops} {
			if l != nil {
				l.Listen, l.PublicURL = "127.0.0.1:0", ""
			}
		}
		if backend == "postgres" {
			dsn, drop, err := postgres.TempSchema(ctx, *pg, "writ_bench_")
			if err != nil {
				return err
			}
			defer drop()
			cfg.Store = dsn
			cfg.MasterKey = config.NewSecret(base64.StdEncoding.EncodeToString(keys.NewMasterKey().Derive("bench", 32)))
		}
		a, err := app.New(ctx, cfg, app.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Only: []string{app.IDP}})
		if err != nil {
			return err
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Serve(sctx) }()
		client := cip.New(cip.Options{Region: cfg.Region, BaseEndpoint: aws.String(a.URL(app.IDP)), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
		login := func() (*ciptypes.AuthenticationResultType, error) {
			out, err := client.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: ciptypes.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
				AuthParameters: map[string]string{"USERNAME": "bob", "PASSWORD": "Bob-Passw0rd1"}})
			if err != nil {
				return nil, err
			}
			return out.AuthenticationResult, nil
		}
		rate, err := measure(*dur, *conc, func() func() error {
			return func() error { _, err := login(); return err }
		})
		if err != nil {
			cancel()
			<-done
			return fmt.Errorf("%s logins: %w", backend, err)
		}
		rows = append(rows, row{backend, "logins/s (USER_PASSWORD_AUTH, argon2id 19 MiB t=2)", rate, ""})
		rate, err = measure(*dur, *conc, func() func() error {
			ar, err := login()
			if err != nil {
				return func() error { return err }
			}
			rt := ar.RefreshToken
			return func() error {
				out, err := client.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: ciptypes.AuthFlowTypeRefreshTokenAuth, ClientId: aws.String("demo-web"),
					AuthParameters: map[string]string{"REFRESH_TOKEN": aws.ToString(rt)}})
				if err != nil {
					return err
				}
				rt = out.AuthenticationResult.RefreshToken
				return nil
			}
		})
		if err != nil {
			cancel()
			<-done
			return fmt.Errorf("%s refreshes: %w", backend, err)
		}
		rows = append(rows, row{backend, "refreshes/s (REFRESH_TOKEN_AUTH, rotating)", rate, ""})
		tokenURL := a.URL(app.IDP) + "/" + cfg.UserPools[0].ID + "/oauth2/token"
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc}}
		rate, err = measure(*dur, *conc, func() func() error {
			return func() error {
				req, _ := http.NewRequest("POST", tokenURL, strings.NewReader("grant_type=client_credentials"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("orders-service", secretOf(cfg, "orders-service"))
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					return fmt.Errorf("token endpoint: %d", resp.StatusCode)
				}
				return nil
			}
		})
		if err != nil {
			cancel()
			<-done
			return fmt.Errorf("%s client_credentials: %w", backend, err)
		}
		rows = append(rows, row{backend, "client_credentials grants/s (ES256)", rate, ""})
		cancel()
		<-done
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "backend\tmeasure\trate\t\n")
	for _, r := range rows {
		if r.note != "" {
			fmt.Fprintf(tw, "%s\t%s\t-\t%s\n", r.backend, r.what, r.note)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t\n", r.backend, r.what, r.rate)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "(%d concurrent clients, %v each, this machine; compare ratios between rows of one run)\n", *conc, *dur)
	return nil
}

func secretOf(cfg *config.Config, clientID string) string {
	for _, p := range cfg.UserPools {
		if c, ok := p.Client(clientID); ok {
			return c.Secret.Reveal()
		}
	}
	return ""
}

// measure runs conc workers, each built by mk (setup outside the timed
// part), calling their op until d has passed, and returns ops per second.
func measure(d time.Duration, conc int, mk func() func() error) (float64, error) {
	ops := make([]func() error, conc)
	for i := range ops {
		ops[i] = mk()
	}
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for _, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := op(); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), firstErr
}
