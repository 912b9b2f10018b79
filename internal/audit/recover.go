package audit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/writ-id/writ/internal/store"
)

// A writer that stops writing (its process crashed, or it lost the store)
// leaves its stream unclosed, which Verify would fail as OPEN for ever. A
// running writer with a signer therefore watches the other streams it sees
// and seals one that has not moved, by its own clock, for LiveWithin: a
// signed checkpoint of that stream, kind CheckpointRecovered, chained to
// its last event. It seals only a stream that is intact as far as it can
// tell — its chain holds, it begins with a signed opening checkpoint,
// every checkpoint is signed, it has not ended — so that nothing the key
// did not vouch for gets vouched for but the events after the stream's
// last checkpoint, which Verify counts (Recovery.Unvouched): a crash and a
// cut tail look alike there. From the seal on, the stream is frozen: a
// later cut before it breaks the chain. The seal takes the stream's next
// sequence number, so should its writer write again, one of the two fails
// on the store's uniqueness, and that writer goes on in a new stream
// (restream).

// recovery is a writer's watch over the other streams.
type recovery struct {
	mu    sync.Mutex // one recovery at a time
	watch map[string]watched
	ended map[string]bool // streams seen ended: never looked at again
	// sinceWalk counts findStreams' looks since it last walked every
	// stream (-1: never walked); sinceID is the last event id it had
	// looked as far as.
	sinceWalk int
	sinceID   int64
	full      bool // maxWatch was reached (logged once)
	overflow  bool // a stream went unwatched this look, the watch full
	closed    bool // the writer is closing: no more recoveries
	off       bool // WithoutRecovery
}

// watched is the latest event seen of a stream, and when this writer
// first saw it as the latest.
type watched struct {
	last    store.AuditEvent
	since   time.Time
	refused bool // not sealable as it stands (logged once)
}

// maxWatch bounds the streams a writer watches.
var maxWatch = 1024 // a variable for tests

// ends reports whether e ends its stream: a closing checkpoint, or the
// seal of a recovery.
func ends(e store.AuditEvent) bool {
	return e.Component == "audit" && e.Action == ActionCheckpoint && (e.Reason == CheckpointClose || e.Reason == CheckpointRecovered)
}

// latestOf returns the latest event of every stream but exclude among the
// trail's last refWindow events, and the id of the trail's last event.
func latestOf(ctx context.Context, st store.AuditLog, exclude string) (map[string]store.AuditEvent, int64, error) {
	last, err := st.LastAuditID(ctx)
	var evs []store.AuditEvent
	if err == nil && last > 0 {
		evs, err = st.ListAudit(ctx, store.AuditFilter{AfterID: max(0, last-refWindow), Limit: refWindow})
	}
	if err != nil {
		return nil, 0, err
	}
	latest := map[string]store.AuditEvent{}
	for _, e := range evs {
		if e.Stream != exclude {
			latest[e.Stream] = e // in id order: the stream's latest last
		}
	}
	return latest, last, nil
}

// recoverLoop looks for stopped writers every Heartbeat until the writer
// stops (a short-lived writer, a command's, never does); it runs apart
// from the writer's loop, which it never holds up.
func (w *Writer) recoverLoop() {
	t := time.NewTicker(Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.stopped:
			return
		}
		w.recover() // nothing once the writer is closing
	}
}

// Recover looks for stopped writers at once (see recover) and returns the
// names of the streams it sealed; a running writer does it every
// Heartbeat.
func (w *Writer) Recover(ctx context.Context) ([]string, error) {
	if w.signer == nil {
		return nil, errors.New("audit: a writer without a signer seals no stream")
	}
	w.rec.mu.Lock()
	closed := w.rec.closed
	w.rec.mu.Unlock()
	if closed {
		return nil, errors.New("audit: writer closed")
	}
	return w.recover(), ctx.Err()
}

// recover reads the trail's last events and every stream's name, watches
// the unclosed streams, and seals those that have not moved for
// LiveWithin.
func (w *Writer) recover() []string {
	w.rec.mu.Lock()
	defer w.rec.mu.Unlock()
	if w.rec.closed {
		return nil
	}
	if w.rec.watch == nil {
		w.rec.watch, w.rec.ended, w.rec.sinceWalk = map[string]watched{}, map[string]bool{}, -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	self := w.Stream()
	now := w.now()
	w.rec.overflow = false
	latest, last, err := latestOf(ctx, w.st, self)
	if err != nil {
		w.log.Warn("audit: cannot read the trail's last events to look for stopped writers", "err", err)
		w.rec.sinceWalk = -1 // what this look missed, the next one's walk finds
	} else {
		for name, e := range latest {
			w.observe(name, e, now)
		}
		w.findStreams(latest, last, self, now)
	}
	var sealed []string
	for name, wt := range w.rec.watch {
		if wt.refused || now.Sub(wt.since) < LiveWithin {
			continue
		}
		last, err := w.st.LastAuditEvent(ctx, name)
		switch {
		case errors.Is(err, store.ErrNotFound) || err == nil && ends(last):
			delete(w.rec.watch, name)
			w.rec.ended[name] = true
			continue
		case err != nil:
			w.log.Warn("audit: cannot read a stream's last event", "stream", name, "err", err)
			continue
		case last.Seq != wt.last.Seq:
			w.rec.watch[name] = watched{last: last, since: now}
			continue
		}
		if problem := w.sealable(ctx, name, last); problem != "" {
			w.log.Warn("audit: a stream whose writer stopped is not sealed, as it is not intact: verify reports it",
				"stream", name, "problem", problem)
			wt.refused = true
			w.rec.watch[name] = wt
			continue
		}
		seal := store.AuditEvent{Stream: name, Seq: last.Seq + 1, Time: now.UTC().Truncate(time.Millisecond), Component: "audit",
			Action: ActionCheckpoint, Outcome: Allow, Reason: CheckpointRecovered, PrevHash: last.Hash}
		if mine, err := w.st.LastAuditEvent(ctx, self); err == nil {
			seal.Resource = Reference(mine) // who sealed it
		}
		seal.Explanation = w.signer.sign(seal)
		seal.Hash = Hash(seal)
		seal.PrevHash = nil
		if _, err := w.st.AppendAudit(ctx, []store.AuditEvent{seal}); err != nil {
			if errors.Is(err, store.ErrConflict) { // its writer wrote on, or another sealed it
				w.rec.watch[name] = watched{last: last, since: now}
			} else {
				w.log.Warn("audit: cannot seal a stopped writer's stream", "stream", name, "err", err)
			}
			continue
		}
		delete(w.rec.watch, name)
		w.rec.ended[name] = true
		w.log.Warn("audit: sealed the stream of a writer that stopped writing (crashed, or lost the store)",
			"stream", name, "last_seq", last.Seq, "unmoved_since", wt.since)
		sealed = append(sealed, name)
	}
	slices.Sort(sealed)
	return sealed
}

// walkEvery is how many looks apart findStreams walks every stream.
const walkEvery = 10

// findStreams watches, besides those among the trail's last events
// (latest, read up to the trail's last id, last), every other stream of the trail that has not ended: a writer
// that stopped before this one started, or whose last events busier
// writers pushed out of the trail's last events before this one looked.
// It walks every stream (one index seek each) at its first look and every
// walkEvery looks after, and after a look that could not read a stream:
// the walk finds what the others missed (a batch that committed after a
// look though its ids were below it, as on PostgreSQL; a stream beyond
// maxWatch while the watch was full). In between, the trail's last
// events covering what came since, it looks only when more came than
// they hold, at the streams of what came since. It reads an unwatched
// stream's last event, and an ended one's never again.
func (w *Writer) findStreams(latest map[string]store.AuditEvent, last int64, self string, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var names []string
	var err error
	walk := w.rec.sinceWalk < 0 || w.rec.sinceWalk >= walkEvery
	switch {
	case walk:
		for after := ""; ; {
			page, err := w.st.AuditStreams(ctx, after, 256)
			if err != nil {
				w.log.Warn("audit: cannot list the trail's streams to look for stopped writers", "err", err)
				return
			}
			names = append(names, page...)
			if len(page) < 256 {
				break
			}
			after = page[len(page)-1]
		}
	case last-w.rec.sinceID > refWindow/2: // half: the window was read a moment before last
		// From refWindow ids before the last look: a batch that took its
		// ids before it and committed after it (PostgreSQL) is seen.
		if names, err = w.st.AuditStreamsSince(ctx, max(0, w.rec.sinceID-refWindow)); err != nil {
			w.log.Warn("audit: cannot list the trail's streams to look for stopped writers", "err", err)
			return
		}
	}
	missed := false
	for _, name := range names {
		if _, seen := latest[name]; seen || name == self || w.rec.ended[name] {
			continue
		}
		if _, watched := w.rec.watch[name]; watched {
			continue
		}
		e, err := w.st.LastAuditEvent(ctx, name)
		switch {
		case err == nil:
			w.observe(name, e, now)
		case !errors.Is(err, store.ErrNotFound):
			missed = true
		}
	}
	w.rec.sinceID = last
	switch {
	case missed || w.rec.overflow:
		w.rec.sinceWalk = -1 // walk again at the next look
	case walk:
		w.rec.sinceWalk = 0
	default:
		w.rec.sinceWalk++
	}
}

// observe notes e as the latest event of stream name seen at now.
func (w *Writer) observe(name string, e store.AuditEvent, now time.Time) {
	wt, ok := w.rec.watch[name]
	switch {
	case ends(e):
		delete(w.rec.watch, name)
		w.rec.ended[name] = true
	case ok && wt.last.Seq >= e.Seq:
	case ok || len(w.rec.watch) < maxWatch:
		w.rec.watch[name] = watched{last: e, since: now}
	default:
		w.rec.overflow = true // looked for again once the watch has room
		if !w.rec.full {
			w.rec.full = true
			w.log.Warn("audit: watching as many streams as a writer watches for stopped writers; further ones wait their turn", "max", maxWatch)
		}
	}
}

// sealable reads stream name and says what keeps it from being sealed
// after last: "" when it is intact up to last, begins with a signed
// opening checkpoint and has not ended.
func (w *Writer) sealable(ctx context.Context, name string, last store.AuditEvent) string {
	evs, err := ListAll(ctx, w.st, store.AuditFilter{Stream: name})
	if err != nil {
		return "cannot be read: " + err.Error()
	}
	c := checkChain(evs, w.signer, nil)
	switch {
	case c.problem != nil:
		return c.problem.What
	case c.ended:
		return "it has ended"
	case !c.opened:
		return "it does not begin with a signed opening checkpoint"
	case len(evs) == 0 || evs[len(evs)-1].Seq != last.Seq:
		return "it moved while it was read"
	}
	return ""
}
