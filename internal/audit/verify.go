package audit

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/writ-id/writ/internal/store"
)

// Checkpoint actions. A checkpoint is itself a chained event of its stream
// whose Explanation is an HMAC (key derived from the master key) over the
// whole checkpoint — stream, sequence number, time, kind and the hash of
// the event before it ("v2:" and the hex) — so that nobody without the key
// can forge one after cutting the tail, nor turn a periodic checkpoint into
// a closing one. Checkpoints written before v2 are a bare hex HMAC over the
// stream, sequence number and previous hash.
const (
	ActionCheckpoint = "audit.checkpoint"
	CheckpointClose  = "close"
	CheckpointTimed  = "periodic"
	// CheckpointHeartbeat is written by an idle writer every Heartbeat, so
	// that Verify tells a running writer's stream from one whose tail was
	// cut.
	CheckpointHeartbeat = "heartbeat"
	// CheckpointOpen begins a writer's stream.
	CheckpointOpen = "open"
	// CheckpointRecovered ends the stream of a writer that stopped
	// writing; another writer wrote it (Writer.Recover).
	CheckpointRecovered = "recovered"
)

// Heartbeat is how often a running writer writes a checkpoint at the
// latest, and LiveWithin how recent a stream's last checkpoint must be, by
// default, for Verify to count its writer as running.
const (
	Heartbeat  = time.Minute
	LiveWithin = 3 * Heartbeat
)

// Signer computes checkpoint MACs.
type Signer struct{ keys [][]byte }

// NewSigner returns a Signer over keys (derive them from the master key):
// checkpoints are signed with the first and accepted under any, so that
// checkpoints signed before a master-key rotation still verify.
func NewSigner(keys ...[]byte) *Signer { return &Signer{keys: keys} }

// sign returns the checkpoint e's MAC (v2).
func (s *Signer) sign(e store.AuditEvent) string {
	return "v2:" + macWith(s.keys[0], e, true)
}

// valid reports whether e's Explanation is its checkpoint MAC under any of
// the keys: of v2, or of v1 (written before v2; it does not cover the
// checkpoint's kind and time).
func (s *Signer) valid(e store.AuditEvent) bool {
	sig, v2 := strings.CutPrefix(e.Explanation, "v2:")
	ok := false
	for _, k := range s.keys {
		ok = hmac.Equal([]byte(macWith(k, e, v2)), []byte(sig)) || ok
	}
	return ok
}

// macWith is a checkpoint's MAC under key: v2 over the hash of the whole
// checkpoint (stream, sequence, time, kind, every field, and the hash
// before it) without its own signature; v1 over the stream, sequence and
// hash before it only.
func macWith(key []byte, e store.AuditEvent, v2 bool) string {
	m := hmac.New(sha256.New, key)
	if v2 {
		e.Explanation = ""
		m.Write([]byte("writ-audit-checkpoint-v2"))
		m.Write(Hash(e))
		return hex.EncodeToString(m.Sum(nil))
	}
	m.Write([]byte(e.Stream))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	m.Write(n[:])
	m.Write(e.PrevHash)
	return hex.EncodeToString(m.Sum(nil))
}

// Problem is one finding of Verify.
type Problem struct {
	Stream string
	Seq    int64
	ID     int64
	What   string
}

func (p Problem) String() string {
	return fmt.Sprintf("stream %s, seq %d (row %d): %s", p.Stream, p.Seq, p.ID, p.What)
}

// Report is the result of Verify.
type Report struct {
	Events, Streams, Checkpoints int
	// Problems lists broken links, the first of each stream first.
	Problems []Problem
	// Open lists streams that do not end with a closing checkpoint and
	// whose last checkpoint is older than LiveWithin: their writer
	// crashed, or their tail was cut.
	Open []string
	// Live lists streams that do not end with a closing checkpoint but
	// whose last checkpoint is at most LiveWithin old: their writer is
	// running (it writes one every Heartbeat).
	Live []string
	// Anchor is the trail's last event (Reference), to keep elsewhere and
	// give a later verification (VerifyOptions.Anchors).
	Anchor string
	// Crashed lists the unclosed streams VerifyOptions.Crashed names.
	Crashed []string
	// Recovered lists the streams another writer sealed after their
	// writer stopped writing (CheckpointRecovered).
	Recovered []Recovery
}

// Recovery is a stream a running writer sealed after its own writer
// stopped writing (see Writer.Recover): intact up to its last checkpoint,
// and then Unvouched events no signature covers (a crash and a cut look
// alike there), and the events its writer had not stored yet are lost.
type Recovery struct {
	Stream    string
	Unvouched int
}

// VerifyOptions say which streams Verify takes for being written.
type VerifyOptions struct {
	// Now and LiveWithin: a stream without a closing checkpoint whose last
	// checkpoint (or, before any, first event) is at most LiveWithin before
	// Now is being written (Report.Live); 0 takes no stream for being
	// written (a stopped server's trail).
	Now        time.Time
	LiveWithin time.Duration
	// Live names streams being written whatever their checkpoints.
	Live map[string]bool
	// Anchors are events (Reference) that must still be in the trail, as
	// a verification recorded them (Report.Anchor): a trail cut back past
	// them, across every stream, is caught.
	Anchors []string
	// Crashed names streams an operator knows their writer crashed:
	// unclosed, they are reported (Report.Crashed), not failed.
	Crashed map[string]bool
}

// Verify checks every stream's hash chain and checkpoints.
func Verify(ctx context.Context, st store.AuditLog, s *Signer, o VerifyOptions) (Report, error) {
	var rep Report
	all, err := ListAll(ctx, st, store.AuditFilter{})
	if err != nil {
		return rep, err
	}
	// Ids skipped while paging are read once more: on PostgreSQL a batch
	// that took lower ids can commit after a later page was read, and its
	// stream would show a gap that is not there.
	late, err := reread(ctx, st, all)
	if err != nil {
		return rep, err
	}
	if len(late) > 0 {
		all = append(all, late...)
		slices.SortFunc(all, func(a, b store.AuditEvent) int { return cmp.Compare(a.ID, b.ID) })
	}
	streams := map[string][]store.AuditEvent{}
	for _, e := range all {
		streams[e.Stream] = append(streams[e.Stream], e)
	}
	rep.Events = len(all)
	if len(all) > 0 {
		rep.Anchor = Reference(all[len(all)-1])
	}
	names := make([]string, 0, len(streams))
	for n := range streams {
		names = append(names, n)
	}
	sort.Strings(names)
	rep.Streams = len(names)
	for _, name := range names {
		c := checkChain(streams[name], s, func(ref string) string { return missing(streams, ref) })
		rep.Checkpoints += c.checkpoints
		switch {
		case c.problem != nil:
			rep.Problems = append(rep.Problems, *c.problem)
		case c.recovered:
			rep.Recovered = append(rep.Recovered, Recovery{Stream: name, Unvouched: c.unvouched})
		case c.ended || o.Live[name]:
		case o.Crashed[name]:
			rep.Crashed = append(rep.Crashed, name)
		case o.LiveWithin > 0 && o.Now.Sub(c.lastCheckpoint) <= o.LiveWithin:
			rep.Live = append(rep.Live, name)
		default:
			rep.Open = append(rep.Open, name)
		}
	}
	for _, a := range o.Anchors {
		if what := missing(streams, a); what != "" {
			stream, _, _ := strings.Cut(a, "/")
			rep.Problems = append(rep.Problems, Problem{Stream: stream, What: "the anchor " + a + ", " + what})
		}
	}
	return rep, nil
}

// chain is what checkChain found of a stream.
type chain struct {
	problem        *Problem // the first broken link; the rest is not looked at
	checkpoints    int
	opened         bool // it begins with a signed opening checkpoint
	ended          bool // by a close or a recovery's seal
	recovered      bool // by a recovery's seal
	unvouched      int  // events after the last checkpoint (before the seal, when recovered)
	lastCheckpoint time.Time
}

// checkChain checks a stream's events (in id order): each links to the one
// before it and matches its hash, each checkpoint is signed and the events
// of other streams it names are there (missing says what is wrong with
// one; nil checks none), and nothing follows the stream's end.
func checkChain(evs []store.AuditEvent, s *Signer, missing func(ref string) string) chain {
	var c chain
	var prev []byte
	for i, e := range evs {
		// An event is hashed with the hash of the one before it. Rows
		// written before writ stopped storing it again carry it: it must
		// be that hash.
		stored := e.PrevHash
		e.PrevHash = prev
		problem := ""
		switch {
		case e.Malformed != "":
			problem = "the stored row was altered: " + e.Malformed
		case e.Seq != int64(i+1):
			problem = fmt.Sprintf("sequence gap or reorder: expected seq %d", i+1)
		case len(stored) > 0 && !hmac.Equal(stored, prev):
			problem = "link to the previous event does not match (an event before it was removed, reordered or altered)"
		case !hmac.Equal(Hash(e), e.Hash):
			problem = "contents do not match its hash (the event was altered)"
			if len(stored) == 0 {
				problem = "contents do not match its hash (the event, or the hash of the event before it, was altered)"
			}
		case c.ended:
			problem = "an event after the stream's end (its closing checkpoint or recovery seal): added after it"
		case e.Action == ActionCheckpoint:
			if s == nil || !s.valid(e) {
				problem = "checkpoint signature is invalid"
				break
			}
			// A checkpoint names the latest events of the other streams
			// its writer saw: a stream removed whole does not go unseen.
			if missing != nil {
				for _, ref := range strings.Fields(e.Resource) {
					if what := missing(ref); what != "" {
						problem = "the event of another stream this checkpoint names, " + what
						break
					}
				}
			}
			if problem != "" {
				break
			}
			// A closing checkpoint ends the stream (one of v1, written
			// before the signature covered the kind, is taken at its
			// word), as a recovery's seal does; the last checkpoint vouches
			// for the writer's life and the events before it.
			c.opened = c.opened || i == 0 && e.Reason == CheckpointOpen
			c.recovered = e.Reason == CheckpointRecovered
			c.ended = e.Reason == CheckpointClose || c.recovered
			c.checkpoints++
			c.lastCheckpoint = e.Time
			if !c.recovered {
				c.unvouched = 0
			}
		default:
			c.unvouched++
		}
		if problem != "" {
			c.problem = &Problem{Stream: e.Stream, Seq: e.Seq, ID: e.ID, What: problem}
			return c
		}
		prev = e.Hash
	}
	return c
}

// ListAll returns every event f selects (its Limit aside), reading them
// in pages.
func ListAll(ctx context.Context, st store.AuditLog, f store.AuditFilter) ([]store.AuditEvent, error) {
	var out []store.AuditEvent
	for {
		f.Limit = 5000
		evs, err := st.ListAudit(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
		if len(evs) < f.Limit {
			return out, nil
		}
		f.AfterID = evs[len(evs)-1].ID
	}
}

// reread reads the ids missing between those of all (in id order) once
// more, in runs of nearby ids, and returns the events found.
func reread(ctx context.Context, st store.AuditLog, all []store.AuditEvent) ([]store.AuditEvent, error) {
	var found []store.AuditEvent
	for i := 1; i < len(all); {
		if all[i].ID == all[i-1].ID+1 {
			i++
			continue
		}
		from, to := all[i-1].ID, all[i].ID // the run lies between these
		for i++; i < len(all) && all[i].ID-to <= 5000; i++ {
			to = all[i].ID
		}
		for after := from; after < to; {
			evs, err := st.ListAudit(ctx, store.AuditFilter{AfterID: after, Limit: 5000})
			if err != nil {
				return nil, err
			}
			for _, e := range evs {
				if e.ID >= to {
					break
				}
				if _, seen := slices.BinarySearchFunc(all, e.ID, func(x store.AuditEvent, id int64) int { return cmp.Compare(x.ID, id) }); !seen {
					found = append(found, e)
				}
			}
			if len(evs) < 5000 {
				break
			}
			after = evs[len(evs)-1].ID
		}
	}
	return found, nil
}

// missing says what is wrong with the event ref (Reference) names: its
// stream is missing, or the event, or it was altered; "" when it is there.
func missing(streams map[string][]store.AuditEvent, ref string) string {
	parts := strings.Split(ref, "/")
	if len(parts) != 3 {
		return "is not a reference <stream>/<seq>/<hash>"
	}
	evs, ok := streams[parts[0]]
	if !ok {
		return "is in stream " + parts[0] + ", which is missing: its events were removed"
	}
	seq, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "is not a reference <stream>/<seq>/<hash>"
	}
	// In an intact stream the event of seq n is its nth: look there
	// first, then through the stream (a broken one).
	i := int(seq - 1)
	if seq < 1 || seq > int64(len(evs)) || evs[i].Seq != seq {
		i = slices.IndexFunc(evs, func(e store.AuditEvent) bool { return e.Seq == seq })
	}
	if i < 0 {
		return "seq " + parts[1] + " of stream " + parts[0] + ", is missing: events were removed"
	}
	if hex.EncodeToString(evs[i].Hash) != parts[2] {
		return "seq " + parts[1] + " of stream " + parts[0] + ", was altered"
	}
	return ""
}
