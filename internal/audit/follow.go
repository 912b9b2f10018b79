package audit

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"time"

	"github.com/writ-id/writ/internal/store"
)

// A Follower reads a trail's events as they are stored (writ audit tail):
// each matching event once, none missed.
//
// Ids are not stored in the order they were taken. On PostgreSQL several
// replicas append at once, and a batch that took lower ids can commit
// after one that took higher ids, so "after the last id seen" misses it.
// A Follower therefore reads every id up to the last one stored and keeps
// those it did not find, the open ids, looking for them again at every
// poll until Grace has passed since it first missed them: an id still
// missing then belonged to a transaction that rolled back (a failed
// append the writer retried) or to a removed row.
type Follower struct {
	st     store.AuditLog
	filter store.AuditFilter
	// Grace is how long an id that is missing is looked for.
	Grace time.Duration
	// Window is how many ids below the last one stored may still belong
	// to transactions in progress: the first poll reads those as it reads
	// new ones (the older ones by the filter), and a gap in the ids wider
	// than Window is not looked for.
	Window int64

	started bool
	hi      int64               // every id ≤ hi was read, or is open
	open    map[int64]time.Time // when each open id was first missed
}

// NewFollower returns a Follower of the events f selects after f.AfterID
// (f.Limit aside).
func NewFollower(st store.AuditLog, f store.AuditFilter) *Follower {
	f.Limit = 0
	return &Follower{st: st, filter: f, Grace: time.Minute, Window: 1 << 16, hi: f.AfterID,
		open: map[int64]time.Time{}}
}

// followPage is how many events one read of a poll returns at most.
const followPage = 5000

// Poll returns the matching events stored since the last poll (at the
// first, every one stored), in id order. A poll that fails changes
// nothing: the next one returns what it would have.
func (fl *Follower) Poll(ctx context.Context) ([]store.AuditEvent, error) {
	last, err := fl.st.LastAuditID(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.AuditEvent
	hi, open, now := fl.hi, maps.Clone(fl.open), time.Now()
	// miss opens the ids between from and to (both excluded). A gap wider
	// than Window is not one of transactions still running (a sequence
	// moved on, or rows were removed) and is not looked for.
	miss := func(from, to int64) {
		if to-from-1 <= fl.Window {
			for id := from + 1; id < to; id++ {
				open[id] = now
			}
		}
	}
	if !fl.started {
		// History below the window: by the filter (the store's indexes),
		// the ids there long settled.
		if base := last - fl.Window; base > hi {
			f := fl.filter
			f.AfterID, f.Limit = hi, followPage
			for {
				evs, err := fl.st.ListAudit(ctx, f)
				if err != nil {
					return nil, err
				}
				for _, e := range evs {
					if e.ID <= base {
						out = append(out, e)
					}
				}
				if len(evs) < f.Limit || evs[len(evs)-1].ID >= base {
					break
				}
				f.AfterID = evs[len(evs)-1].ID
			}
			hi = base
		}
	}
	// Open ids that are stored now, in runs of nearby ids: one read each.
	ids := slices.Sorted(maps.Keys(open))
	for i := 0; i < len(ids); {
		from, to := ids[i], ids[i]
		for i++; i < len(ids) && ids[i]-to <= followPage; i++ {
			to = ids[i]
		}
		for after := from - 1; after < to; {
			evs, err := fl.st.ListAudit(ctx, store.AuditFilter{AfterID: after, Limit: followPage})
			if err != nil {
				return nil, err
			}
			for _, e := range evs {
				if e.ID > to {
					break
				}
				if _, ok := open[e.ID]; ok {
					delete(open, e.ID)
					out = fl.keep(out, e)
				}
			}
			if len(evs) < followPage {
				break
			}
			after = evs[len(evs)-1].ID
		}
	}
	// New ids, up to the last one stored when the poll began.
	after := hi
	for after < last {
		evs, err := fl.st.ListAudit(ctx, store.AuditFilter{AfterID: after, Limit: followPage})
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			if e.ID > last {
				break
			}
			miss(after, e.ID)
			out = fl.keep(out, e)
			after = e.ID
		}
		if len(evs) < followPage || evs[len(evs)-1].ID >= last {
			break
		}
	}
	miss(after, last+1)
	for id, since := range open {
		if now.Sub(since) >= fl.Grace {
			delete(open, id)
		}
	}
	fl.started, fl.hi, fl.open = true, max(hi, last), open
	slices.SortFunc(out, func(a, b store.AuditEvent) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (fl *Follower) keep(out []store.AuditEvent, e store.AuditEvent) []store.AuditEvent {
	if fl.filter.Matches(&e) {
		out = append(out, e)
	}
	return out
}

// Open returns how many ids the Follower still looks for.
func (fl *Follower) Open() int { return len(fl.open) }
