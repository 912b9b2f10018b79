package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/writ-id/writ/internal/store"
)

// Checkpoint actions. A checkpoint is itself a chained event of its stream
// whose Explanation is an HMAC (key derived from the master key) over the
// stream, its sequence number and the hash of the event before it, so that
// nobody without the key can forge one after cutting the tail.
const (
	ActionCheckpoint = "audit.checkpoint"
	CheckpointClose  = "close"
	CheckpointTimed  = "periodic"
)

// Signer computes checkpoint MACs.
type Signer struct{ keys [][]byte }

// NewSigner returns a Signer over keys (derive them from the master key):
// checkpoints are signed with the first and accepted under any, so that
// checkpoints signed before a master-key rotation still verify.
func NewSigner(keys ...[]byte) *Signer { return &Signer{keys: keys} }

func (s *Signer) mac(stream string, seq int64, prev []byte) string {
	return macWith(s.keys[0], stream, seq, prev)
}

// valid reports whether sig is the checkpoint MAC under any of the keys.
func (s *Signer) valid(stream string, seq int64, prev []byte, sig string) bool {
	ok := false
	for _, k := range s.keys {
		ok = hmac.Equal([]byte(macWith(k, stream, seq, prev)), []byte(sig)) || ok
	}
	return ok
}

func macWith(key []byte, stream string, seq int64, prev []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(stream))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	m.Write(n[:])
	m.Write(prev)
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
	// Open lists streams that do not end with a closing checkpoint: their
	// writer is running or crashed, or their tail was cut.
	Open []string
}

// Verify checks every stream's hash chain and checkpoints. live names
// streams still being written (not expected to be closed).
func Verify(ctx context.Context, st store.AuditLog, s *Signer, live map[string]bool) (Report, error) {
	var rep Report
	streams := map[string][]store.AuditEvent{}
	var after int64
	for {
		evs, err := st.ListAudit(ctx, store.AuditFilter{AfterID: after, Limit: 5000})
		if err != nil {
			return rep, err
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			streams[e.Stream] = append(streams[e.Stream], e)
			after = e.ID
		}
		rep.Events += len(evs)
	}
	names := make([]string, 0, len(streams))
	for n := range streams {
		names = append(names, n)
	}
	sort.Strings(names)
	rep.Streams = len(names)
	for _, name := range names {
		evs := streams[name]
		var prev []byte
		var broken bool
		for i, e := range evs {
			// An event is hashed with the hash of the one before it. Rows
			// written before writ stopped storing it again carry it: it
			// must be that hash.
			stored := e.PrevHash
			e.PrevHash = prev
			problem := ""
			switch {
			case e.Seq != int64(i+1):
				problem = fmt.Sprintf("sequence gap or reorder: expected seq %d", i+1)
			case len(stored) > 0 && !hmac.Equal(stored, prev):
				problem = "link to the previous event does not match (an event before it was removed, reordered or altered)"
			case !hmac.Equal(Hash(e), e.Hash):
				problem = "contents do not match its hash (the event was altered)"
				if len(stored) == 0 {
					problem = "contents do not match its hash (the event, or the hash of the event before it, was altered)"
				}
			case e.Action == ActionCheckpoint && (s == nil || !s.valid(e.Stream, e.Seq, e.PrevHash, e.Explanation)):
				problem = "checkpoint signature is invalid"
			}
			if problem != "" {
				rep.Problems = append(rep.Problems, Problem{Stream: name, Seq: e.Seq, ID: e.ID, What: problem})
				broken = true
				break // the first broken link of the stream is what matters
			}
			if e.Action == ActionCheckpoint {
				rep.Checkpoints++
			}
			prev = e.Hash
		}
		last := evs[len(evs)-1]
		if !broken && !live[name] && !(last.Action == ActionCheckpoint && last.Reason == CheckpointClose) {
			rep.Open = append(rep.Open, name)
		}
	}
	return rep, nil
}
