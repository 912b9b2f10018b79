package audit_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/postgres"
	"github.com/writ-id/writ/internal/store/sqlite"
)

func openPostgres(t *testing.T) store.Store {
	t.Helper()
	if os.Getenv("WRIT_TEST_POSTGRES") == "" {
		t.Skip("WRIT_TEST_POSTGRES not set: PostgreSQL tests skipped")
	}
	return postgres.OpenTest(t)
}

type events struct {
	t   *testing.T
	st  store.AuditLog
	seq map[string]int64
}

// add appends one event per subject in subs on stream, in one batch, and
// returns their ids.
func (es *events) add(st store.AuditLog, stream string, subs ...string) []int64 {
	es.t.Helper()
	var evs []store.AuditEvent
	for _, sub := range subs {
		es.seq[stream]++
		evs = append(evs, store.AuditEvent{Stream: stream, Seq: es.seq[stream], Time: time.Now(), Component: "orders",
			Action: "read", Outcome: audit.Allow, Sub: sub, RequestID: fmt.Sprintf("%s-%d", stream, es.seq[stream])})
	}
	ids, err := st.AppendAudit(context.Background(), evs)
	if err != nil {
		es.t.Fatal(err)
	}
	return ids
}

func pollIDs(t *testing.T, fl *audit.Follower) []int64 {
	t.Helper()
	evs, err := fl.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	return ids
}

// A follower returns the history by its filter, then each new matching
// event once, on either store.
func TestFollowerFollows(t *testing.T) {
	for name, open := range map[string]func(*testing.T) store.Store{
		"sqlite":   func(t *testing.T) store.Store { return sqlite.OpenTest(t) },
		"postgres": openPostgres,
	} {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			es := &events{t: t, st: st, seq: map[string]int64{}}
			var want []int64
			for range 3 {
				ids := es.add(st, "w1", "dave", "carol", "dave", "dave")
				want = append(want, ids[1])
			}
			fl := audit.NewFollower(st, store.AuditFilter{Sub: "carol"})
			fl.Window = 5 // the first carol by the subject index, the others among the last ids
			if got := pollIDs(t, fl); !slices.Equal(got, want) {
				t.Fatalf("history: %v, want %v", got, want)
			}
			if got := pollIDs(t, fl); len(got) != 0 {
				t.Fatalf("again: %v", got)
			}
			ids := es.add(st, "w1", "carol", "dave", "carol")
			if got := pollIDs(t, fl); !slices.Equal(got, []int64{ids[0], ids[2]}) {
				t.Fatalf("new: %v, want %v", got, []int64{ids[0], ids[2]})
			}
			if fl.Open() != 0 {
				t.Fatalf("%d ids open with none missing", fl.Open())
			}
		})
	}
}

// On PostgreSQL an append that took lower ids can commit after one that
// took higher ids (replicas append at once): the follower still returns
// it, once it commits; ids of an append that rolled back are looked for
// until Grace has passed.
func TestFollowerLateCommits(t *testing.T) {
	st := openPostgres(t)
	ctx := context.Background()
	es := &events{t: t, st: st, seq: map[string]int64{}}
	es.add(st, "w1", "carol")
	fl := audit.NewFollower(st, store.AuditFilter{Sub: "carol"})
	if got := pollIDs(t, fl); len(got) != 1 {
		t.Fatalf("history: %v", got)
	}

	late, release, done := make(chan []int64, 1), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- st.InTx(ctx, func(tx store.Tx) error {
			late <- es.add(tx, "w2", "carol", "dave")
			<-release
			return nil
		})
	}()
	lateIDs := <-late
	next := es.add(st, "w1", "carol")
	if next[0] < lateIDs[1] {
		t.Fatalf("ids %v then %v: the test needs the uncommitted ones lower", lateIDs, next)
	}
	if got := pollIDs(t, fl); !slices.Equal(got, next) {
		t.Fatalf("before the late commit: %v, want %v", got, next)
	}
	if fl.Open() != 2 {
		t.Fatalf("%d ids open, want the 2 uncommitted", fl.Open())
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := pollIDs(t, fl); !slices.Equal(got, lateIDs[:1]) {
		t.Fatalf("after the late commit: %v, want %v", got, lateIDs[:1])
	}
	if fl.Open() != 0 {
		t.Fatalf("%d ids open after they committed", fl.Open())
	}

	// An append that rolls back leaves its ids missing for good.
	boom := errors.New("boom")
	err := st.InTx(ctx, func(tx store.Tx) error {
		es.add(tx, "w3", "carol")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	after := es.add(st, "w1", "carol")
	if got := pollIDs(t, fl); !slices.Equal(got, after) || fl.Open() != 1 {
		t.Fatalf("after a rollback: %v with %d open, want %v with 1", got, fl.Open(), after)
	}
	fl.Grace = 0
	if got := pollIDs(t, fl); len(got) != 0 || fl.Open() != 0 {
		t.Fatalf("after the grace: %v with %d open", got, fl.Open())
	}
}

// Replicas appending at once, their transactions committing out of id
// order: a follower polling all along returns every event exactly once.
func TestFollowerConcurrentAppends(t *testing.T) {
	st := openPostgres(t)
	ctx := context.Background()
	fl := audit.NewFollower(st, store.AuditFilter{})
	var got []int64
	poll := func() {
		ids := pollIDs(t, fl)
		if !slices.IsSorted(ids) {
			t.Errorf("a poll out of order: %v", ids)
		}
		got = append(got, ids...)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("replica-%d", w)
			for b := range 40 {
				err := st.InTx(ctx, func(tx store.Tx) error {
					var evs []store.AuditEvent
					for i := range 10 {
						evs = append(evs, store.AuditEvent{Stream: stream, Seq: int64(b*10 + i + 1), Time: time.Now(),
							Component: "gateway", Action: "GET /", Outcome: audit.Allow})
					}
					if _, err := tx.AppendAudit(ctx, evs); err != nil {
						return err
					}
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond) // commit later than others took ids
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	go func() { wg.Wait(); close(stop) }()
	polls := 0
	for running := true; running; polls++ {
		select {
		case <-stop:
			running = false
		case <-time.After(time.Millisecond):
		}
		poll()
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := st.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, e := range all {
		want = append(want, e.ID)
	}
	slices.Sort(got)
	if len(want) != 1600 || !slices.Equal(got, want) {
		t.Fatalf("over %d polls: %d events followed (%d distinct), %d stored", polls, len(got), len(slices.Compact(slices.Clone(got))), len(want))
	}
	if fl.Open() != 0 {
		t.Fatalf("%d ids open after every append committed", fl.Open())
	}
}

// failingLog fails the ListAudit call numbered fail (from 1).
type failingLog struct {
	store.AuditLog
	calls, fail int
}

func (l *failingLog) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	if l.calls++; l.calls == l.fail {
		return nil, errors.New("store unreachable")
	}
	return l.AuditLog.ListAudit(ctx, f)
}

// A poll that fails part-way (after it found an open id, before it read
// the new ones) loses nothing: the next poll returns both.
func TestFollowerFailedPoll(t *testing.T) {
	st := openPostgres(t)
	ctx := context.Background()
	es := &events{t: t, st: st, seq: map[string]int64{}}
	log := &failingLog{AuditLog: st}
	fl := audit.NewFollower(log, store.AuditFilter{})
	late, release, done := make(chan []int64, 1), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- st.InTx(ctx, func(tx store.Tx) error {
			late <- es.add(tx, "w2", "carol")
			<-release
			return nil
		})
	}()
	lateIDs := <-late
	first := es.add(st, "w1", "dave")
	if got := pollIDs(t, fl); !slices.Equal(got, first) || fl.Open() != 1 {
		t.Fatalf("first poll: %v with %d open", got, fl.Open())
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	second := es.add(st, "w1", "dave")
	log.calls, log.fail = 0, 2 // the open id's read succeeds, the new ids' fails
	if _, err := fl.Poll(ctx); err == nil {
		t.Fatal("a poll whose store failed reported no error")
	}
	if got := pollIDs(t, fl); !slices.Equal(got, append(lateIDs, second...)) || fl.Open() != 0 {
		t.Fatalf("after a failed poll: %v with %d open, want %v", got, fl.Open(), append(lateIDs, second...))
	}
}
