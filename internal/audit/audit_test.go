package audit_test

import (
	"context"
	"encoding/hex"
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
	"github.com/writ-id/writ/internal/store/storetest"
)

// TestInvalidUTF8 records an event whose strings are not valid UTF-8 (a
// service's odd input): it is stored with U+FFFD in their place, its chain
// verifies, and the caller's actor chain is left as it was.
func TestInvalidUTF8(t *testing.T) {
	st := sqlite.OpenTest(t)
	signer := audit.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	w := audit.NewWriter(st, signer, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	chain := []string{"svc-\xffb", "svc-a"}
	w.Record(ctx, audit.Event{Component: "orders", Action: "read", Outcome: audit.Allow, Reason: "bad \xc3\x28 byte",
		Username: "ok", ActorChain: chain, RequestID: "r1"})
	w.Record(ctx, audit.Event{Component: "orders", Action: "read", Outcome: audit.Allow, Reason: "fine", RequestID: "r2"})
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if chain[0] != "svc-\xffb" {
		t.Errorf("the caller's actor chain changed: %q", chain)
	}
	evs, err := st.ListAudit(ctx, store.AuditFilter{RequestID: "r1"})
	if err != nil || len(evs) != 1 {
		t.Fatalf("%v %v", evs, err)
	}
	if evs[0].Reason != "bad \uFFFD( byte" || evs[0].ActorChain[0] != "svc-\uFFFDb" || evs[0].ActorChain[1] != "svc-a" {
		t.Errorf("stored: reason %q, chain %q", evs[0].Reason, evs[0].ActorChain)
	}
	rep, err := audit.Verify(ctx, st, signer, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || len(rep.Open) != 0 || rep.Events != 4 { // the stream's opening checkpoint and 3 events
		t.Fatalf("verify: %+v", rep)
	}
}

// TestHashKnownAnswer pins the chain hash's canonical encoding: stored
// chains verify only while it stays the same.
func TestHashKnownAnswer(t *testing.T) {
	got := hex.EncodeToString(audit.Hash(storetest.OddAuditEvent("s", 7)))
	if want := "93a815b2eff49da236a45837c552c47ef8dd4d9b26c8dc55fd5cab311c17152d"; got != want {
		t.Fatalf("Hash = %s, want %s", got, want)
	}
}

// verifyCopy stores evs (as another trail would hold them: fresh ids) in a
// new store and verifies it with signer and o.
func verifyCopy(t *testing.T, signer *audit.Signer, evs []store.AuditEvent, o audit.VerifyOptions) audit.Report {
	t.Helper()
	ctx := context.Background()
	st := sqlite.OpenTest(t)
	evs = slices.Clone(evs)
	for i := range evs {
		evs[i].ID = 0
	}
	if len(evs) > 0 {
		if _, err := st.AppendAudit(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := audit.Verify(ctx, st, signer, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestVerifyLinks: a writer's rows do not store the previous event's hash
// again, and Verify takes it from that event. The chain verifies with its
// signed checkpoints; an event altered with its hash recomputed breaks the
// next one; a removed event is a gap; and rows that store the link (as
// writers did before, and as migration 3 moved them) have it checked.
func TestVerifyLinks(t *testing.T) {
	ctx := context.Background()
	signer := audit.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	st := sqlite.OpenTest(t)
	w := audit.NewWriter(st, signer, slog.New(slog.DiscardHandler))
	for i := range 2500 {
		w.Record(ctx, audit.Event{Component: "gateway", Action: "GET /orders/{id}", Outcome: audit.Allow, Sub: "alice", RequestID: fmt.Sprint("r", i)})
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := st.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if len(e.PrevHash) != 0 {
			t.Fatalf("seq %d stores the previous hash", e.Seq)
		}
	}
	verify := func(evs []store.AuditEvent) audit.Report {
		t.Helper()
		return verifyCopy(t, signer, evs, audit.VerifyOptions{})
	}
	if rep := verify(slices.Clone(evs)); len(rep.Problems) != 0 || len(rep.Open) != 0 || rep.Events != 2504 || rep.Checkpoints != 4 {
		t.Fatalf("intact: %+v", rep)
	}
	problem := func(rep audit.Report, seq int64, what string) {
		t.Helper()
		if len(rep.Problems) != 1 || rep.Problems[0].Seq != seq || !strings.Contains(rep.Problems[0].What, what) {
			t.Fatalf("want seq %d %q, got %+v", seq, what, rep.Problems)
		}
	}
	// Altered, with its hash made to match: the next event does not.
	edited := slices.Clone(evs)
	edited[99].Outcome = audit.Deny
	edited[99].PrevHash = edited[98].Hash
	edited[99].Hash = audit.Hash(edited[99])
	edited[99].PrevHash = nil
	problem(verify(edited), 101, "the hash of the event before it")
	// Altered as it is: itself.
	edited = slices.Clone(evs)
	edited[99].Outcome = audit.Deny
	problem(verify(edited), 100, "contents do not match")
	// Removed.
	problem(verify(slices.Delete(slices.Clone(evs), 499, 500)), 501, "sequence gap")
	// Rows that store the link: it must be the previous event's hash.
	legacy := slices.Clone(evs)
	for i := 1; i < len(legacy); i++ {
		legacy[i].PrevHash = legacy[i-1].Hash
	}
	if rep := verify(slices.Clone(legacy)); len(rep.Problems) != 0 {
		t.Fatalf("stored links: %+v", rep.Problems)
	}
	legacy[1199].PrevHash = legacy[1197].Hash
	problem(verify(legacy), 1200, "link to the previous event does not match")
}

// TestVerifyLiveOpenAndRelabeled: a stream without a closing checkpoint is
// a running writer's while its last checkpoint (a heartbeat at the latest
// every audit.Heartbeat, or its first event before any) is recent, and
// open — crashed, or its tail cut — once it is not. A checkpoint's
// signature covers its kind: a periodic checkpoint left last by a cut and
// relabeled "close" (its hash recomputed) is refused.
func TestVerifyLiveOpenAndRelabeled(t *testing.T) {
	st := sqlite.OpenTest(t)
	signer := audit.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	now := time.Now()
	clock := func() time.Time { return now }
	w := audit.NewWriter(st, signer, slog.New(slog.DiscardHandler), audit.WithClock(clock))
	ctx := context.Background()
	record := func(n int) {
		t.Helper()
		for range n {
			w.Record(ctx, audit.Event{Component: "orders", Action: "read", Outcome: audit.Allow})
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(at time.Time) audit.Report {
		t.Helper()
		rep, err := audit.Verify(ctx, st, signer, audit.VerifyOptions{Now: at, LiveWithin: audit.LiveWithin})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	record(3)
	if rep := verify(now); len(rep.Live) != 1 || len(rep.Open) != 0 || len(rep.Problems) != 0 {
		t.Fatalf("a young running stream: %+v", rep)
	}
	// Past a heartbeat, the next batch carries a checkpoint, which keeps
	// the stream live for audit.LiveWithin more.
	now = now.Add(audit.Heartbeat + time.Second)
	record(1)
	if rep := verify(now.Add(audit.LiveWithin - time.Second)); len(rep.Live) != 1 || rep.Checkpoints != 2 { // opening, heartbeat
		t.Fatalf("after a heartbeat: %+v", rep)
	}
	if rep := verify(now.Add(audit.LiveWithin + time.Second)); len(rep.Open) != 1 || len(rep.Live) != 0 {
		t.Fatalf("a stream silent past audit.LiveWithin: %+v", rep)
	}
	// An operator who knows its writer crashed says so: reported, not failed.
	rep, err := audit.Verify(ctx, st, signer, audit.VerifyOptions{Now: now.Add(time.Hour), LiveWithin: audit.LiveWithin,
		Crashed: map[string]bool{w.Stream(): true}})
	if err != nil || len(rep.Open) != 0 || !slices.Equal(rep.Crashed, []string{w.Stream()}) {
		t.Fatalf("a stream said to have crashed: %+v %v", rep, err)
	}
	// 1000 more events: a periodic checkpoint, then a few events and the
	// close.
	record(1000)
	record(5)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rep := verify(now.Add(time.Hour)); len(rep.Problems) != 0 || len(rep.Open) != 0 || len(rep.Live) != 0 {
		t.Fatalf("a closed stream: %+v", rep)
	}
	// Cut the tail after the periodic checkpoint and relabel it "close".
	all, _ := st.ListAudit(ctx, store.AuditFilter{})
	cp := -1
	for i, e := range all {
		if e.Action == audit.ActionCheckpoint && e.Reason == audit.CheckpointTimed {
			cp = i
		}
	}
	if cp < 0 {
		t.Fatal("no periodic checkpoint")
	}
	forged := slices.Clone(all[:cp+1])
	last := &forged[cp]
	last.Reason = audit.CheckpointClose
	last.PrevHash = forged[cp-1].Hash
	last.Hash = audit.Hash(*last)
	last.PrevHash = nil
	rep = verifyCopy(t, signer, forged, audit.VerifyOptions{Now: now.Add(time.Hour), LiveWithin: audit.LiveWithin})
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].What, "checkpoint signature is invalid") {
		t.Fatalf("a periodic checkpoint relabeled as the close: %+v", rep)
	}
}

// TestVerifyRemovedStreams: a stream's first checkpoint names the trail's
// last event when its writer began, so a stream removed whole is seen by
// the stream that began after it; an anchor a verification gave catches a
// trail cut back across every stream.
func TestVerifyRemovedStreams(t *testing.T) {
	ctx := context.Background()
	signer := audit.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	st := sqlite.OpenTest(t)
	var streams []string
	for i := range 3 {
		w := audit.NewWriter(st, signer, slog.New(slog.DiscardHandler))
		for j := range 5 {
			w.Record(ctx, audit.Event{Component: "orders", Action: "read", Outcome: audit.Allow, RequestID: fmt.Sprint(i, "-", j)})
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, w.Stream())
	}
	all, err := st.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(evs []store.AuditEvent, anchors ...string) audit.Report {
		t.Helper()
		return verifyCopy(t, signer, evs, audit.VerifyOptions{Anchors: anchors})
	}
	without := func(stream string) []store.AuditEvent {
		return slices.DeleteFunc(slices.Clone(all), func(e store.AuditEvent) bool { return e.Stream == stream })
	}
	rep := verify(all)
	if len(rep.Problems) != 0 || len(rep.Open) != 0 || rep.Streams != 3 || rep.Anchor != audit.Reference(all[len(all)-1]) {
		t.Fatalf("intact: %+v", rep)
	}
	anchor := rep.Anchor
	// The first or the middle stream removed whole: the next one says so.
	for _, gone := range streams[:2] {
		rep := verify(without(gone))
		if len(rep.Problems) == 0 {
			t.Errorf("stream %s removed: %+v", gone, rep)
		}
		for _, p := range rep.Problems {
			if !strings.Contains(p.What, "stream "+gone+", which is missing") {
				t.Errorf("stream %s removed: %s", gone, p)
			}
		}
	}
	// The last one removed: only the anchor of an earlier verification
	// tells; so does it when the whole trail is gone.
	if rep := verify(without(streams[2])); len(rep.Problems) != 0 {
		t.Errorf("the newest stream removed, no anchor: %+v", rep.Problems)
	}
	for name, evs := range map[string][]store.AuditEvent{"the newest stream": without(streams[2]), "every stream": nil} {
		rep := verify(evs, anchor)
		if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].What, "the anchor "+anchor) {
			t.Errorf("%s removed, with the anchor: %+v", name, rep.Problems)
		}
	}
}

// TestVerifyForgedAndConcurrentStreams: a stream rewritten without its
// signed checkpoints (renumbered, rehashed, its times put in the future)
// is not taken for live; and a stream that ran alongside another, removed
// whole, breaks the checkpoints of the streams that saw it.
func TestVerifyForgedAndConcurrentStreams(t *testing.T) {
	ctx := context.Background()
	signer := audit.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	st := sqlite.OpenTest(t)
	a := audit.NewWriter(st, signer, slog.New(slog.DiscardHandler))
	b := audit.NewWriter(st, signer, slog.New(slog.DiscardHandler))
	for i := range 6 {
		for _, w := range []*audit.Writer{a, b} {
			w.Record(ctx, audit.Event{Component: "orders", Action: "read", Outcome: audit.Allow, RequestID: fmt.Sprint(w.Stream(), i)})
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, w := range []*audit.Writer{a, b} {
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c := audit.NewWriter(st, signer, slog.New(slog.DiscardHandler))
	c.Record(ctx, audit.Event{Component: "orders", Action: "read", Outcome: audit.Allow})
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	all, err := st.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(evs []store.AuditEvent) audit.Report {
		t.Helper()
		return verifyCopy(t, signer, evs, audit.VerifyOptions{Now: time.Now(), LiveWithin: audit.LiveWithin})
	}
	if rep := verify(all); len(rep.Problems) != 0 || len(rep.Open) != 0 || len(rep.Live) != 0 || rep.Streams != 3 {
		t.Fatalf("intact: %+v", rep)
	}
	for _, gone := range []string{a.Stream(), b.Stream()} {
		rep := verify(slices.DeleteFunc(slices.Clone(all), func(e store.AuditEvent) bool { return e.Stream == gone }))
		if len(rep.Problems) == 0 {
			t.Errorf("stream %s, which ran alongside another, removed whole: %+v", gone, rep)
		}
	}
	// c's stream rewritten from its first event on, without checkpoints,
	// its times a century ahead.
	var forged []store.AuditEvent
	var prev []byte
	for _, e := range all {
		if e.Stream != c.Stream() || e.Action == audit.ActionCheckpoint {
			continue
		}
		e.Seq = int64(len(forged) + 1)
		e.Time = e.Time.AddDate(100, 0, 0)
		e.PrevHash = prev
		e.Hash = audit.Hash(e)
		prev, e.PrevHash = e.Hash, nil
		forged = append(forged, e)
	}
	rest := slices.DeleteFunc(slices.Clone(all), func(e store.AuditEvent) bool { return e.Stream == c.Stream() })
	rep := verify(append(rest, forged...))
	if !slices.Contains(rep.Open, c.Stream()) || len(rep.Live) != 0 {
		t.Fatalf("a stream rewritten without its checkpoints: %+v", rep)
	}
}

// hidingLog answers its first read from the start without the events of
// hidden ids, as a PostgreSQL trail answers while the batch holding them
// has not committed yet, and every later read in full.
type hidingLog struct {
	store.AuditLog
	hidden map[int64]bool
}

func (l *hidingLog) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	evs, err := l.AuditLog.ListAudit(ctx, f)
	if f.AfterID == 0 {
		evs = slices.DeleteFunc(evs, func(e store.AuditEvent) bool { return l.hidden[e.ID] })
	}
	return evs, err
}

// A batch that commits while Verify pages through the trail (out of id
// order, on PostgreSQL) is read again, not reported as a gap.
func TestVerifyRereadsLateBatches(t *testing.T) {
	ctx := context.Background()
	signer := audit.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	st := sqlite.OpenTest(t)
	w := audit.NewWriter(st, signer, slog.New(slog.DiscardHandler))
	for i := range 20 {
		w.Record(ctx, audit.Event{Component: "orders", Action: "read", Outcome: audit.Allow, RequestID: fmt.Sprint(i)})
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, &hidingLog{AuditLog: st, hidden: map[int64]bool{8: true, 9: true, 10: true}}, signer, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || len(rep.Open) != 0 || rep.Events != 22 {
		t.Fatalf("a batch committed while verify read: %+v", rep)
	}
}

// gatedLog holds the first AppendAudit until release is closed and
// records how many events each call carried.
type gatedLog struct {
	store.AuditLog
	release chan struct{}
	mu      sync.Mutex
	sizes   []int
}

func (g *gatedLog) AppendAudit(ctx context.Context, evs []store.AuditEvent) ([]int64, error) {
	g.mu.Lock()
	first := len(g.sizes) == 0
	g.sizes = append(g.sizes, len(evs))
	g.mu.Unlock()
	if first {
		<-g.release
	}
	return g.AuditLog.AppendAudit(ctx, evs)
}

// Events that queued while a write was under way go in batches of 1024,
// the last one taking the rest: a few events past a whole batch do not
// make a transaction (and a sync) of their own.
func TestBacklogRestJoinsTheLastBatch(t *testing.T) {
	st := sqlite.OpenTest(t)
	g := &gatedLog{AuditLog: st, release: make(chan struct{})}
	w := audit.NewWriter(g, nil, slog.New(slog.DiscardHandler), audit.WithoutRecovery())
	ctx := context.Background()
	ev := audit.Event{Component: "gateway", Action: "GET /orders/{id}", Outcome: audit.Allow}
	w.Record(ctx, ev)
	// The first batch (one event) is held in AppendAudit; 2048+5 more
	// queue meanwhile.
	for {
		g.mu.Lock()
		n := len(g.sizes)
		g.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for range 2048 + 5 {
		w.Record(ctx, ev)
	}
	close(g.release)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.sizes, []int{1, 1024, 1024 + 5}) {
		t.Fatalf("batches of %v events, want [1 1024 1029]", g.sizes)
	}
	if n, err := st.LastAuditID(ctx); err != nil || n != 1+2048+5 {
		t.Fatalf("%d events stored (%v), want %d", n, err, 1+2048+5)
	}
}
