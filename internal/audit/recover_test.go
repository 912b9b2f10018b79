package audit_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/sqlite"
)

// TestRecoverStoppedWriter: a writer that stops writing (crashed: no close)
// leaves its stream unclosed; once its last event is audit.LiveWithin old,
// a running writer seals it with a signed "recovered" checkpoint, and
// Verify passes it as recovered instead of failing it as open. Should the
// writer that was taken for stopped write again, it goes on in a new
// stream and loses nothing. A seal is held to its signature and its link
// like any checkpoint.
func TestRecoverStoppedWriter(t *testing.T) {
	for name, open := range map[string]func(*testing.T) store.Store{
		"sqlite":   func(t *testing.T) store.Store { return sqlite.OpenTest(t) },
		"postgres": openPostgres,
	} {
		t.Run(name, func(t *testing.T) { testRecover(t, open(t)) })
	}
}

func testRecover(t *testing.T, st store.Store) {
	ctx := context.Background()
	signer := audit.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	now := time.Now()
	clock := func() time.Time { return now }
	quiet := slog.New(slog.DiscardHandler)
	record := func(w *audit.Writer, actions ...string) {
		t.Helper()
		for _, a := range actions {
			w.Record(ctx, audit.Event{Component: "orders", Action: a, Outcome: audit.Allow})
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	recover := func(w *audit.Writer, want ...string) {
		t.Helper()
		sealed, err := w.Recover(ctx)
		if err != nil || !slices.Equal(sealed, want) {
			t.Fatalf("sealed %v, %v; want %v", sealed, err, want)
		}
	}
	verify := func() audit.Report {
		t.Helper()
		rep, err := audit.Verify(ctx, st, signer, audit.VerifyOptions{Now: now, LiveWithin: audit.LiveWithin})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	crashed := audit.NewWriter(st, signer, quiet, audit.WithClock(clock)) // never closed
	record(crashed, "a1", "a2", "a3")
	closed := audit.NewWriter(st, signer, quiet, audit.WithClock(clock))
	record(closed, "c1")
	if err := closed.Close(ctx); err != nil {
		t.Fatal(err)
	}
	w := audit.NewWriter(st, signer, quiet, audit.WithClock(clock))
	record(w, "w1")
	recover(w) // its last event is young: its writer may be running

	now = now.Add(audit.LiveWithin + time.Second)
	record(w, "w2") // with a heartbeat checkpoint: running
	if rep := verify(); !slices.Equal(rep.Open, []string{crashed.Stream()}) {
		t.Fatalf("before the recovery: %+v", rep)
	}
	old := crashed.Stream()
	recover(w, old) // the closed stream is not sealed
	recover(w)      // once
	rep := verify()
	if len(rep.Problems) != 0 || len(rep.Open) != 0 || !slices.Equal(rep.Recovered, []string{old}) || rep.Streams != 3 {
		t.Fatalf("after the recovery: %+v", rep)
	}
	seal, err := st.LastAuditEvent(ctx, old)
	if err != nil || seal.Seq != 5 || seal.Reason != audit.CheckpointRecovered || !strings.HasPrefix(seal.Resource, w.Stream()+"/") {
		t.Fatalf("the seal: %+v, %v", seal, err)
	}

	// The writer taken for stopped writes again: a new stream, in which
	// its events are, in order.
	record(crashed, "a4", "a5")
	if crashed.Stream() == old {
		t.Fatal("the sealed stream was written again")
	}
	evs, err := st.ListAudit(ctx, store.AuditFilter{Stream: crashed.Stream()})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Action)
	}
	if !slices.Equal(actions, []string{audit.ActionCheckpoint, "a4", "a5"}) {
		t.Fatalf("the new stream holds %v", actions)
	}
	if err := crashed.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rep = verify()
	if len(rep.Problems) != 0 || len(rep.Open) != 0 || len(rep.Live) != 0 || !slices.Equal(rep.Recovered, []string{old}) || rep.Streams != 4 {
		t.Fatalf("at the end: %+v", rep)
	}

	// Tampering: an event cut from before the seal; a seal signed with
	// another key; a seal made to look like a close.
	all, err := st.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(all, func(e store.AuditEvent) bool { return e.Stream == old && e.Seq == 4 })
	o := audit.VerifyOptions{Now: now, LiveWithin: audit.LiveWithin}
	if rep := verifyCopy(t, signer, slices.Delete(slices.Clone(all), i, i+1), o); !slices.ContainsFunc(rep.Problems,
		func(p audit.Problem) bool { return p.Stream == old && p.Seq == 5 }) || len(rep.Recovered) != 0 {
		t.Fatalf("an event cut before the seal: %+v", rep)
	}
	other := audit.NewSigner([]byte("another key, another key, anothe"))
	if rep := verifyCopy(t, other, all, o); len(rep.Problems) == 0 || len(rep.Recovered) != 0 {
		t.Fatalf("under another key: %+v", rep)
	}
	relabeled := slices.Clone(all)
	s := &relabeled[slices.IndexFunc(all, func(e store.AuditEvent) bool { return e.Stream == old && e.Seq == 5 })]
	s.Reason, s.PrevHash = audit.CheckpointClose, all[i].Hash
	s.Hash, s.PrevHash = audit.Hash(*s), nil
	if rep := verifyCopy(t, signer, relabeled, o); !slices.ContainsFunc(rep.Problems, func(p audit.Problem) bool {
		return p.Stream == old && strings.Contains(p.What, "checkpoint signature is invalid")
	}) || len(rep.Recovered) != 0 {
		t.Fatalf("a seal relabeled: %+v", rep)
	}
}

// TestRecoverOutOfSight: a stopped writer's last event, once busy writers
// pushed it out of the trail's last events a writer reads, is still
// watched, and sealed.
func TestRecoverOutOfSight(t *testing.T) {
	ctx := context.Background()
	st := sqlite.OpenTest(t)
	signer := audit.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	now := time.Now()
	clock := func() time.Time { return now }
	stopped := audit.NewWriter(st, signer, slog.New(slog.DiscardHandler), audit.WithClock(clock))
	stopped.Record(ctx, audit.Event{Component: "orders", Action: "read", Outcome: audit.Allow})
	w := audit.NewWriter(st, signer, slog.New(slog.DiscardHandler), audit.WithClock(clock))
	w.Record(ctx, audit.Event{Component: "orders", Action: "read", Outcome: audit.Allow})
	for _, w := range []*audit.Writer{stopped, w} {
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Another replica's busy stream (its chain is not what this tests).
	busy := make([]store.AuditEvent, 5000)
	for i := range busy {
		busy[i] = store.AuditEvent{Stream: "busy", Seq: int64(i + 1), Time: now, Component: "orders", Action: "read", Outcome: audit.Allow, Hash: []byte{1}}
	}
	if _, err := st.AppendAudit(ctx, busy); err != nil {
		t.Fatal(err)
	}
	now = now.Add(audit.LiveWithin + time.Second)
	want := []string{stopped.Stream(), "busy"}
	slices.Sort(want)
	if sealed, err := w.Recover(ctx); err != nil || !slices.Equal(sealed, want) {
		t.Fatalf("sealed %v, %v; want %v", sealed, err, want)
	}
}
