package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/keys"
	"github.com/writ-id/writ/internal/store"
)

func cmdAudit(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "query" && args[0] != "verify" && args[0] != "tail") {
		return fmt.Errorf("%w: audit query|verify|tail -c FILE", errUsage)
	}
	sub := args[0]
	fs := newFlags("audit "+sub, "writ audit "+sub+" -c FILE [filters]", stderr)
	file := fs.String("c", "", "configuration file (required)")
	reqID := fs.String("request-id", "", "only events of this request id")
	subj := fs.String("sub", "", "only events of this subject (sub)")
	comp := fs.String("component", "", "only events of this component (idp, gateway, …)")
	outcome := fs.String("outcome", "", "only this outcome (allow, deny, error)")
	since := fs.String("since", "", "only events at or after this time (RFC 3339, or a duration ago like 1h)")
	until := fs.String("until", "", "only events before this time (RFC 3339, or a duration ago)")
	asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
	liveWithin := fs.Duration("live-within", audit.LiveWithin, "verify: a stream without a closing checkpoint is being written when it checkpointed this recently (0: none is, the server is stopped)")
	var anchors, crashed anchorList
	fs.Var(&anchors, "anchor", "verify: an event (as an earlier verify printed it, ANCHOR: ...) that must still be in the trail; repeatable")
	fs.Var(&crashed, "crashed", "verify: a stream whose writer is known to have crashed: reported unclosed, not failed; repeatable")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: audit %s needs -c FILE", errUsage, sub)
	}
	switch *outcome {
	case "", audit.Allow, audit.Deny, audit.Error:
	default:
		return fmt.Errorf("%w: --outcome is allow, deny or error", errUsage)
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
	f := store.AuditFilter{RequestID: *reqID, Sub: *subj, Component: *comp, Outcome: *outcome}
	if f.Since, err = parseWhen(*since); err != nil {
		return fmt.Errorf("%w: --since: %v", errUsage, err)
	}
	if f.Until, err = parseWhen(*until); err != nil {
		return fmt.Errorf("%w: --until: %v", errUsage, err)
	}
	switch sub {
	case "verify":
		return auditVerify(ctx, cfg, st, *liveWithin, anchors, crashed, stdout)
	case "query":
		evs, err := audit.ListAll(ctx, st, f)
		if err != nil {
			return err
		}
		printEvents(stdout, evs, *asJSON, true)
		return nil
	default: // tail
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		header := true
		fl := audit.NewFollower(st, f)
		for {
			evs, err := fl.Poll(ctx)
			if err != nil && ctx.Err() == nil {
				return err
			}
			if len(evs) > 0 {
				printEvents(stdout, evs, *asJSON, header)
				header = false
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Parse(time.RFC3339, s)
}

func printEvents(w io.Writer, evs []store.AuditEvent, asJSON, header bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, e := range evs {
			chain := e.ActorChain
			if chain == nil {
				chain = []string{}
			}
			enc.Encode(map[string]any{"id": e.ID, "time": e.Time.Format(time.RFC3339Nano), "component": e.Component, "action": e.Action,
				"outcome": e.Outcome, "reason": e.Reason, "explanation": e.Explanation, "request_id": e.RequestID, "trace_id": e.TraceID,
				"sub": e.Sub, "username": e.Username, "client_id": e.ClientID, "actor_chain": chain, "identity_id": e.IdentityID,
				"role": e.Role, "resource": e.Resource, "source_ip": e.SourceIP, "pool_id": e.PoolID, "stream": e.Stream, "seq": e.Seq})
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "TIME\tCOMPONENT\tACTION\tOUTCOME\tWHO\tCLIENT\tACTORS\tREQUEST ID\tREASON")
	}
	for _, e := range evs {
		who := e.Username
		if who == "" {
			who = e.Sub
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format("2006-01-02T15:04:05.000Z07:00"), e.Component, e.Action, e.Outcome,
			dash(who), dash(e.ClientID), dash(strings.Join(e.ActorChain, ">")), dash(e.RequestID), dash(e.Reason))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var errAuditBroken = errors.New("audit trail verification failed")

func toSet(names []string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// anchorList is a repeatable flag (--anchor, --crashed).
type anchorList []string

func (a *anchorList) String() string     { return strings.Join(*a, ",") }
func (a *anchorList) Set(v string) error { *a = append(*a, v); return nil }

func auditVerify(ctx context.Context, cfg *config.Config, st store.AuditLog, liveWithin time.Duration, anchors, crashed []string, stdout io.Writer) error {
	if cfg.MasterKey.IsZero() {
		if _, err := os.Stat(cfg.DataDir + "/" + keys.MasterKeyFile); err != nil {
			return fmt.Errorf("no master key (master_key or %s/%s): checkpoints cannot be checked", cfg.DataDir, keys.MasterKeyFile)
		}
	}
	master, err := keys.LoadMasterKeys(cfg.DataDir, cfg.MasterKey.Reveal(), cfg.PreviousMasterKeyValues())
	if err != nil {
		return err
	}
	rep, err := audit.Verify(ctx, st, app.AuditSigner(master), audit.VerifyOptions{Now: time.Now(), LiveWithin: liveWithin, Anchors: anchors, Crashed: toSet(crashed)})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d events in %d streams, %d signed checkpoints\n", rep.Events, rep.Streams, rep.Checkpoints)
	for _, p := range rep.Problems {
		fmt.Fprintf(stdout, "BROKEN: %s\n", p)
	}
	for _, s := range rep.Crashed {
		fmt.Fprintf(stdout, "CRASHED: stream %s is not closed, as --crashed says: the events after its last checkpoint may be lost\n", s)
	}
	for _, r := range rep.Recovered {
		fmt.Fprintf(stdout, "RECOVERED: stream %s was sealed by a running writer after its own stopped writing (crashed, or lost the store): intact to its last checkpoint; %d events after it are vouched for by no signature, and events its writer had not stored are lost\n", r.Stream, r.Unvouched)
	}
	for _, s := range rep.Live {
		fmt.Fprintf(stdout, "LIVE: stream %s is being written: its writer checkpointed within %v\n", s, liveWithin)
	}
	for _, s := range rep.Open {
		fmt.Fprintf(stdout, "OPEN: stream %s has no closing checkpoint (nor one within --live-within %v): its writer crashed (say so with --crashed), or its tail was cut\n", s, liveWithin)
	}
	if len(rep.Problems) > 0 || len(rep.Open) > 0 {
		return errAuditBroken
	}
	if rep.Anchor != "" {
		// Kept elsewhere and given to a later verify (--anchor), it tells
		// a trail cut back past it.
		fmt.Fprintf(stdout, "ANCHOR: %s\n", rep.Anchor)
	}
	if len(rep.Live) > 0 {
		fmt.Fprintln(stdout, "OK: every chain is intact, and closed or being written")
		return nil
	}
	fmt.Fprintln(stdout, "OK: every chain is intact and closed")
	return nil
}
