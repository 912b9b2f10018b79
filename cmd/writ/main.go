// Command writ runs writ, a self-hosted identity chain for microservices:
// user pools with MFA, an API gateway, identity pools and STS, and an
// S3-compatible object store, speaking AWS's wire protocols.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
)

const usage = `writ — a self-hosted identity chain for microservices.

Usage:
  writ serve -c FILE [--only COMPONENT[,COMPONENT]]   run the components FILE lists
  writ demo                                           run the reference environment and walk the chain
  writ config check FILE                              validate a configuration file
  writ keys rotate -c FILE [--pool ID]                publish a new signing key (activates after keys.activation_delay)
  writ keys list -c FILE                              list signing keys and their schedule
  writ keys reseal -c FILE                            seal signing keys and TOTP secrets again under master_key (after a rotation)
  writ audit query -c FILE [--request-id ID] [--sub S] [--component C] [--outcome O] [--since T] [--until T] [--json]
  writ audit verify -c FILE [--live-within D] [--anchor A] [--crashed S]   check the audit trail's hash chains and signed checkpoints
  writ audit tail -c FILE                             follow new audit events
  writ policy check [--trust] FILE                     validate an IAM policy document (every error with its JSON path)
  writ policy simulate --policy FILE --action A --resource R [--context k=v ...]   decide a request and say why
  writ users list|get|create|delete|disable|enable|set-password|add-to-group|... -c FILE   manage users (signed admin API)
  writ outbox -c FILE                                 print mail waiting in the outbox (codes when no SMTP is set)
  writ bench [--postgres DSN]                         measure logins/s and refreshes/s on SQLite (and PostgreSQL)
  writ bench gateway                                  measure the gateway against a direct call and a plain reverse proxy
  writ version                                        print the version

Run 'writ COMMAND --help' for a command's options.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks errors that should print usage and exit 2.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	con := &console{Writer: stderr}
	stderr = con
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(args[1:], stdout, stderr)
	case "config":
		err = cmdConfig(args[1:], stdout, stderr)
	case "keys":
		err = cmdKeys(args[1:], stdout, stderr)
	case "outbox":
		err = cmdOutbox(args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(args[1:], stdout, stderr)
	case "audit":
		err = cmdAudit(args[1:], stdout, stderr)
	case "policy":
		err = cmdPolicy(args[1:], stdout, stderr)
	case "users":
		err = cmdUsers(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "writ: version takes no argument %q\n", args[1])
			return 2
		}
		fmt.Fprintln(stdout, "writ", version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "writ: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case con.usageShown:
		// The flag package has printed the error and the usage.
		return 2
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "writ:", strings.TrimPrefix(err.Error(), "usage: "))
		return 2
	default:
		fmt.Fprintln(stderr, "writ:", err)
		return 1
	}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// console is the stderr run gives a command. It notes when a FlagSet of
// newFlags has shown its usage: that happens on -h and on a bad flag, which
// the flag package prints with the usage; run then exits 2 without
// printing the error again.
type console struct {
	io.Writer
	usageShown bool
}

// newFlags returns a FlagSet that reports a bad flag (once, with the
// usage) and returns its error for the command to return.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		if c, ok := stderr.(*console); ok {
			c.usageShown = true
		}
		fmt.Fprintf(stderr, "Usage: %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses the flags of a command that takes no positional
// argument: one left over is a usage error, not silently ignored.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s takes no argument %q", errUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}

// parseInterspersed parses flags before, between and after positional
// arguments (fs.Parse stops at the first positional argument) and returns
// the positional arguments in order. Every argument after "--" is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if endsWithTerminator(fs, args[:len(args)-len(rest)]) || len(rest) == 0 {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// endsWithTerminator reports whether the flags fs parsed, parsed, end with
// "--" that ends the flags (rather than being a flag's value).
func endsWithTerminator(fs *flag.FlagSet, parsed []string) bool {
	for i := 0; i < len(parsed); i++ {
		a := parsed[i]
		if a == "--" {
			return i == len(parsed)-1
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if hasValue {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				i++ // the next argument is its value
			}
		}
	}
	return false
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if cfg != nil {
		switch cfg.Log.Level {
		case "debug":
			level = slog.LevelDebug
		case "warn":
			level = slog.LevelWarn
		case "error":
			level = slog.LevelError
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg != nil && cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "writ serve -c FILE [--only COMPONENT[,COMPONENT]]", stderr)
	file := fs.String("c", "", "configuration file (required)")
	only := fs.String("only", "", "run only these components (comma-separated: idp, identity, objects, gateway, ops)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: serve needs -c FILE", errUsage)
	}
	cfg, err := config.Load(*file)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	for _, w := range cfg.Warnings {
		log.Warn("config: "+w.Msg, "path", w.Path, "line", w.Line)
	}
	var comps []string
	if *only != "" {
		for _, c := range strings.Split(*only, ",") {
			c = strings.TrimSpace(c)
			switch c {
			case app.IDP, app.Identity, app.Objects, app.Gateway, app.Ops:
			default:
				return fmt.Errorf("%w: --only: unknown component %q", errUsage, c)
			}
			comps = append(comps, c)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(ctx, cfg, app.Options{Only: comps, Log: log})
	if err != nil {
		return err
	}
	err = a.Serve(ctx)
	log.Info("stopped")
	return err
}

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return fmt.Errorf("%w: config check FILE", errUsage)
	}
	fs := newFlags("config check", "writ config check FILE", stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: config check needs one FILE", errUsage)
	}
	cfg, err := config.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", fs.Arg(0), w)
	}
	fmt.Fprintf(stdout, "%s: OK (%d user pools, %d identity pools, %d roles, %d routes)\n", fs.Arg(0),
		len(cfg.UserPools), len(cfg.IdentityPools), len(cfg.IAM.Roles), len(cfg.Gateway.Routes))
	return nil
}

func cmdKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "rotate" && args[0] != "list" && args[0] != "reseal") {
		return fmt.Errorf("%w: keys rotate|list|reseal -c FILE", errUsage)
	}
	sub := args[0]
	fs := newFlags("keys "+sub, "writ keys "+sub+" -c FILE [--pool ID]", stderr)
	file := fs.String("c", "", "configuration file (required)")
	pool := fs.String("pool", "", "only this user pool (default: every pool)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: keys %s needs -c FILE", errUsage, sub)
	}
	cfg, err := config.Load(*file)
	if err != nil {
		return err
	}
	if err := app.RequireStore(cfg); err != nil {
		return err
	}
	ctx := context.Background()
	core, err := app.OpenCore(ctx, cfg, newLogger(cfg, stderr), nil)
	if err != nil {
		return err
	}
	defer core.Close(ctx)
	if sub == "reseal" {
		nk, nu, err := app.Reseal(ctx, core)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "sealed again under the current master key: %d signing keys, the TOTP secrets of %d users\n", nk, nu)
		return nil
	}
	found := false
	for i := range cfg.UserPools {
		p := &cfg.UserPools[i]
		if *pool != "" && p.ID != *pool {
			continue
		}
		found = true
		if sub == "rotate" {
			if err := core.Keys.Ensure(ctx, p.ID, p.SigningAlg); err != nil {
				return err
			}
			k, err := core.Keys.Rotate(ctx, p.ID, p.SigningAlg, app.MaxTokenLifetime(p))
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: new key %s (%s) published now, signs from %s\n", p.ID, k.KID, k.Alg,
				k.ActiveAt.Format(time.RFC3339))
			continue
		}
		ks, err := core.Store.ListSigningKeys(ctx, p.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s:\n", p.ID)
		for _, k := range ks {
			fmt.Fprintf(stdout, "  %s %-5s created %s  signs from %s  retires %s  published until %s\n", k.KID, k.Alg,
				k.CreatedAt.Format(time.RFC3339), k.ActiveAt.Format(time.RFC3339), fmtTime(k.RetiredAt), fmtTime(k.PublishUntil))
		}
	}
	if !found {
		return fmt.Errorf("no user pool %q in %s", *pool, *file)
	}
	return nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func cmdOutbox(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("outbox", "writ outbox -c FILE", stderr)
	file := fs.String("c", "", "configuration file (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: outbox needs -c FILE", errUsage)
	}
	cfg, err := config.Load(*file)
	if err != nil {
		return err
	}
	if err := app.RequireStore(cfg); err != nil {
		return err
	}
	ctx := context.Background()
	st, err := app.OpenStore(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	ms, err := st.ListMail(ctx, 0)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		fmt.Fprintln(stdout, "outbox is empty")
	}
	for _, m := range ms {
		fmt.Fprintf(stdout, "#%d %s  to %s  %q%s\n", m.ID, m.CreatedAt.Format(time.RFC3339), m.To, m.Subject, mailState(m))
		if m.Body != "" {
			fmt.Fprintf(stdout, "  %s\n", m.Body)
		}
	}
	return nil
}

// mailState says where the delivery of m stands ("" for mail kept in the
// outbox, with no SMTP server configured).
func mailState(m store.Mail) string {
	switch {
	case !m.Deliver:
		return ""
	case !m.DoneAt.IsZero() && m.LastError == "":
		return "  sent " + fmtTime(m.DoneAt)
	case !m.DoneAt.IsZero():
		return fmt.Sprintf("  FAILED after %d attempts: %s", m.Attempts, m.LastError)
	case m.Attempts == 0:
		return "  waiting"
	case m.LastError == "":
		return "  sending (claimed until " + fmtTime(m.NextAt) + ")"
	default:
		return fmt.Sprintf("  waiting: %d attempts, next %s, last error: %s", m.Attempts, fmtTime(m.NextAt), m.LastError)
	}
}
