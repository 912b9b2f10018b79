package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/sqlite"
)

// recoverFixture is a trail with a clock the test moves.
type recoverFixture struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	signer *audit.Signer
	mu     sync.Mutex
	now    time.Time
}

func newRecoverFixture(t *testing.T, st store.Store) *recoverFixture {
	return &recoverFixture{t: t, ctx: context.Background(), st: st, now: time.Now(),
		signer: audit.NewSigner([]byte("0123456789abcdef0123456789abcdef"))}
}

func (f *recoverFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *recoverFixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *recoverFixture) writer() *audit.Writer {
	w := audit.NewWriter(f.st, f.signer, slog.New(slog.DiscardHandler), audit.WithClock(f.clock))
	f.t.Cleanup(func() { w.Close(context.Background()) })
	return w
}

func (f *recoverFixture) record(w *audit.Writer, actions ...string) {
	f.t.Helper()
	for _, a := range actions {
		w.Record(f.ctx, audit.Event{Component: "orders", Action: a, Outcome: audit.Allow})
	}
	if err := w.Flush(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

func (f *recoverFixture) recover(w *audit.Writer, want ...string) {
	f.t.Helper()
	sealed, err := w.Recover(f.ctx)
	slices.Sort(want)
	if err != nil || !slices.Equal(sealed, want) {
		f.t.Fatalf("sealed %v, %v; want %v", sealed, err, want)
	}
}

func (f *recoverFixture) verify() audit.Report {
	f.t.Helper()
	rep, err := audit.Verify(f.ctx, f.st, f.signer, audit.VerifyOptions{Now: f.clock(), LiveWithin: audit.LiveWithin})
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// forge appends events to stream after seq and prev, chained as anyone
// with write access to the table can chain them (the hash has no key).
func (f *recoverFixture) forge(stream string, seq int64, prev []byte, actions ...string) {
	f.t.Helper()
	var evs []store.AuditEvent
	for _, a := range actions {
		seq++
		e := store.AuditEvent{Stream: stream, Seq: seq, Time: f.clock().UTC().Truncate(time.Millisecond), Component: "idp",
			Action: a, Outcome: audit.Allow, Sub: "admin", PrevHash: prev}
		e.Hash = audit.Hash(e)
		prev, e.PrevHash = e.Hash, nil
		evs = append(evs, e)
	}
	if _, err := f.st.AppendAudit(f.ctx, evs); err != nil {
		f.t.Fatal(err)
	}
}

func recovered(rep audit.Report) []string {
	var names []string
	for _, r := range rep.Recovered {
		names = append(names, r.Stream)
	}
	return names
}

func hasProblem(rep audit.Report, stream, what string) bool {
	return slices.ContainsFunc(rep.Problems, func(p audit.Problem) bool { return p.Stream == stream && strings.Contains(p.What, what) })
}

// TestRecoverStoppedWriter: a writer that stops writing (crashed: no
// close) leaves its stream unclosed; once it has not moved for
// audit.LiveWithin by a running writer's clock, that writer seals it with
// a signed "recovered" checkpoint, and Verify passes it as recovered —
// counting the events after its last checkpoint, which no signature
// covers — instead of failing it as open. Should the writer taken for
// stopped write again, it goes on in a new stream and loses nothing, in
// batches as large as it likes. A seal is held to its signature and its
// link like any checkpoint, and nothing may follow it.
func TestRecoverStoppedWriter(t *testing.T) {
	for name, open := range map[string]func(*testing.T) store.Store{
		"sqlite":   func(t *testing.T) store.Store { return sqlite.OpenTest(t) },
		"postgres": openPostgres,
	} {
		t.Run(name, func(t *testing.T) { testRecover(t, open(t)) })
	}
}

func testRecover(t *testing.T, st store.Store) {
	f := newRecoverFixture(t, st)
	crashed := f.writer() // never closed: its process "crashed"
	f.record(crashed, "a1", "a2", "a3")
	closed := f.writer()
	f.record(closed, "c1")
	if err := closed.Close(f.ctx); err != nil {
		t.Fatal(err)
	}
	w := f.writer()
	f.record(w, "w1")
	f.recover(w) // not moved for long: its writer may be running

	f.advance(audit.LiveWithin + time.Second)
	f.record(w, "w2") // with a heartbeat checkpoint: running
	if rep := f.verify(); !slices.Equal(rep.Open, []string{crashed.Stream()}) {
		t.Fatalf("before the recovery: %+v", rep)
	}
	old := crashed.Stream()
	f.recover(w, old) // the closed stream is not sealed
	f.recover(w)      // once
	rep := f.verify()
	if len(rep.Problems) != 0 || len(rep.Open) != 0 || !slices.Equal(rep.Recovered, []audit.Recovery{{Stream: old, Unvouched: 3}}) || rep.Streams != 3 {
		t.Fatalf("after the recovery: %+v", rep)
	}
	seal, err := st.LastAuditEvent(f.ctx, old)
	if err != nil || seal.Seq != 5 || seal.Reason != audit.CheckpointRecovered || !strings.HasPrefix(seal.Resource, w.Stream()+"/") {
		t.Fatalf("the seal: %+v, %v", seal, err)
	}

	// The writer taken for stopped writes again, a batch past a periodic
	// checkpoint: a new stream, in which its events are, in order.
	var more []string
	for i := range 1200 {
		more = append(more, fmt.Sprint("b", i))
	}
	f.record(crashed, more...)
	if crashed.Stream() == old {
		t.Fatal("the sealed stream was written again")
	}
	evs, err := st.ListAudit(f.ctx, store.AuditFilter{Stream: crashed.Stream()})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range evs[1:] {
		if e.Action != audit.ActionCheckpoint {
			actions = append(actions, e.Action)
		}
	}
	if evs[0].Reason != audit.CheckpointOpen || !slices.Equal(actions, more) {
		t.Fatalf("the new stream begins with %s and holds %d events", evs[0].Reason, len(actions))
	}
	for _, x := range []*audit.Writer{crashed, w} {
		if err := x.Close(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	rep = f.verify()
	if len(rep.Problems) != 0 || len(rep.Open) != 0 || len(rep.Live) != 0 || !slices.Equal(recovered(rep), []string{old}) || rep.Streams != 4 {
		t.Fatalf("at the end: %+v", rep)
	}

	// Tampering: an event cut from before the seal; the seal altered (its
	// time, rehashed); the seal made a close; an event after the seal.
	all, err := st.ListAudit(f.ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	o := audit.VerifyOptions{Now: f.clock(), LiveWithin: audit.LiveWithin}
	at := func(seq int64) int {
		return slices.IndexFunc(all, func(e store.AuditEvent) bool { return e.Stream == old && e.Seq == seq })
	}
	i, s := at(4), at(5)
	if rep := verifyCopy(t, f.signer, slices.Delete(slices.Clone(all), i, i+1), o); !hasProblem(rep, old, "") || len(rep.Recovered) != 0 {
		t.Fatalf("an event cut before the seal: %+v", rep)
	}
	for what, change := range map[string]func(e *store.AuditEvent){
		"seal re-timed":     func(e *store.AuditEvent) { e.Time = e.Time.Add(-time.Hour) },
		"seal made a close": func(e *store.AuditEvent) { e.Reason = audit.CheckpointClose },
	} {
		forged := slices.Clone(all)
		e := &forged[s]
		change(e)
		e.PrevHash = all[i].Hash
		e.Hash, e.PrevHash = audit.Hash(*e), nil
		if rep := verifyCopy(t, f.signer, forged, o); !hasProblem(rep, old, "checkpoint signature is invalid") || len(rep.Recovered) != 0 {
			t.Fatalf("%s: %+v", what, rep)
		}
	}
	f.forge(old, seal.Seq, seal.Hash, "AdminDeleteUser")
	if rep := f.verify(); !hasProblem(rep, old, "an event after the stream's end") || len(rep.Recovered) != 0 {
		t.Fatalf("an event after the seal: %+v", rep)
	}
}

// TestRecoverSealsOnlyIntactStreams: a stream made up by someone without
// the key (no signed opening checkpoint), and events added after a close,
// are not sealed: Verify still fails them.
func TestRecoverSealsOnlyIntactStreams(t *testing.T) {
	f := newRecoverFixture(t, sqlite.OpenTest(t))
	x := f.writer()
	f.record(x, "x1")
	if err := x.Close(f.ctx); err != nil {
		t.Fatal(err)
	}
	last, err := f.st.LastAuditEvent(f.ctx, x.Stream())
	if err != nil {
		t.Fatal(err)
	}
	f.forge(x.Stream(), last.Seq, last.Hash, "AdminDeleteUser")
	f.forge("feedfacefeedface", 0, nil, "AdminDeleteUser", "AdminSetUserPassword")
	w := f.writer()
	f.record(w, "w1")
	f.recover(w)
	f.advance(audit.LiveWithin + time.Second)
	f.record(w, "w2")
	f.recover(w)
	rep := f.verify()
	if !hasProblem(rep, x.Stream(), "an event after the stream's end") || !slices.Equal(rep.Open, []string{"feedfacefeedface"}) || len(rep.Recovered) != 0 {
		t.Fatalf("forged streams: %+v", rep)
	}
}

// TestRecoverJudgesByItsOwnClock: a running writer whose last event
// carries an old time (an ingested event may be dated a day back) is not
// taken for stopped: a stream is sealed only once it has not moved, by the
// sealing writer's clock, for audit.LiveWithin.
func TestRecoverJudgesByItsOwnClock(t *testing.T) {
	f := newRecoverFixture(t, sqlite.OpenTest(t))
	ingested, core := f.writer(), f.writer()
	ingested.Record(f.ctx, audit.Event{Component: "svc", Action: "late", Outcome: audit.Allow, Time: f.clock().Add(-10 * time.Minute)})
	if err := ingested.Flush(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.recover(core)
	f.advance(audit.LiveWithin - time.Second)
	f.recover(core)
	f.record(ingested, "next") // it moved
	f.advance(2 * time.Second)
	f.recover(core)
	f.advance(audit.LiveWithin)
	f.recover(core, ingested.Stream())
}

// TestRecoverOutOfSight: a stopped writer's last event, once busy writers
// pushed it out of the trail's last events a writer reads, is still
// watched, and sealed.
func TestRecoverOutOfSight(t *testing.T) {
	f := newRecoverFixture(t, sqlite.OpenTest(t))
	stopped, w, busy := f.writer(), f.writer(), f.writer()
	f.record(stopped, "s1")
	f.recover(w) // sees it
	more := make([]string, 4200)
	for i := range more {
		more[i] = "busy"
	}
	f.record(busy, more...)
	f.advance(audit.LiveWithin + time.Second)
	f.record(busy, "busy")
	f.recover(w, stopped.Stream())
	if rep := f.verify(); len(rep.Problems) != 0 || !slices.Equal(recovered(rep), []string{stopped.Stream()}) {
		t.Fatalf("%+v", rep)
	}
}

// TestRecoverNeverSeen: a writer that stopped before this one started,
// its last events pushed out of the trail's last events by busy writers
// before this one ever looked, is found among the trail's streams, and
// sealed; a cleanly closed one is left alone.
func TestRecoverNeverSeen(t *testing.T) {
	f := newRecoverFixture(t, sqlite.OpenTest(t))
	stopped, closed, busy := f.writer(), f.writer(), f.writer()
	f.record(stopped, "s1")
	f.record(closed, "c1")
	if err := closed.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	more := make([]string, 4200)
	for i := range more {
		more[i] = "busy"
	}
	f.record(busy, more...)
	w := f.writer() // starts now: never saw stopped's events among the last ones
	f.recover(w)
	f.advance(audit.LiveWithin + time.Second)
	f.record(busy, "busy")
	f.recover(w, stopped.Stream())
	if rep := f.verify(); len(rep.Problems) != 0 || !slices.Equal(recovered(rep), []string{stopped.Stream()}) {
		t.Fatalf("%+v", rep)
	}
}

// TestRecoverBetweenLooks: a writer that started and stopped between two
// looks of a sealer, its events pushed out of the trail's last events by
// busy writers meanwhile, is found among the streams of what came since
// the last look, and sealed.
func TestRecoverBetweenLooks(t *testing.T) {
	f := newRecoverFixture(t, sqlite.OpenTest(t))
	w, busy := f.writer(), f.writer()
	f.record(busy, "busy")
	f.recover(w) // the first look: every stream
	stopped := f.writer()
	f.record(stopped, "s1")
	more := make([]string, 4200)
	for i := range more {
		more[i] = "busy"
	}
	f.record(busy, more...)
	f.recover(w) // sees it only among the streams of what came since
	f.advance(audit.LiveWithin + time.Second)
	f.record(busy, "busy")
	f.recover(w, stopped.Stream())
}

// lostAnswer is a store whose first multi-event append commits but
// answers an error, as a connection lost after the commit does.
type lostAnswer struct {
	store.Store
	once sync.Once
}

func (s *lostAnswer) AppendAudit(ctx context.Context, evs []store.AuditEvent) ([]int64, error) {
	ids, err := s.Store.AppendAudit(ctx, evs)
	lost := false
	if err == nil && len(evs) > 1 {
		s.once.Do(func() { lost = true })
	}
	if lost {
		return nil, errors.New("connection reset by peer")
	}
	return ids, err
}

// TestWriterLostAnswer: a batch that was committed though the store's
// answer was lost is not written again (nor moved to a new stream) when
// the retry finds its own rows.
func TestWriterLostAnswer(t *testing.T) {
	ctx := context.Background()
	st := &lostAnswer{Store: sqlite.OpenTest(t)}
	signer := audit.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	w := audit.NewWriter(st, signer, slog.New(slog.DiscardHandler))
	w.Record(ctx, audit.Event{Component: "orders", Action: "pay", Outcome: audit.Allow})
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	all, err := st.ListAudit(ctx, store.AuditFilter{Component: "orders"})
	if err != nil || len(all) != 1 {
		t.Fatalf("'pay' stored %d times, %v", len(all), err)
	}
	rep, err := audit.Verify(ctx, st, signer, audit.VerifyOptions{})
	if err != nil || len(rep.Problems) != 0 || len(rep.Open) != 0 || rep.Streams != 1 {
		t.Fatalf("%+v, %v", rep, err)
	}
}

// TestRecoverConcurrently: writers that look for stopped writers at once
// (PostgreSQL replicas) seal a stream once.
func TestRecoverConcurrently(t *testing.T) {
	f := newRecoverFixture(t, openPostgres(t))
	x := f.writer()
	f.record(x, "x1")
	var ws []*audit.Writer
	for range 4 {
		w := f.writer()
		f.record(w, "w")
		f.recover(w)
		ws = append(ws, w)
	}
	f.advance(audit.LiveWithin + time.Second)
	for _, w := range ws {
		f.record(w, "w2") // they are running
	}
	var mu sync.Mutex
	var sealed []string
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() {
			s, err := w.Recover(f.ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			sealed = append(sealed, s...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if !slices.Equal(sealed, []string{x.Stream()}) {
		t.Fatalf("sealed %v, want %s once", sealed, x.Stream())
	}
}
