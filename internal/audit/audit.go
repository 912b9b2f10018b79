package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/writ-id/writ/internal/store"
)

// Outcomes.
const (
	Allow = "allow"
	Deny  = "deny"
	Error = "error"
)

// Event is one audited decision or action.
type Event struct {
	Time        time.Time
	Component   string // idp, identity, objects, gateway, or a service's name
	Action      string // e.g. InitiateAuth, token.exchange, s3:GetObject
	Outcome     string // Allow, Deny or Error
	Reason      string
	Explanation string
	PoolID      string
	Sub         string
	Username    string
	ClientID    string
	ActorChain  []string
	IdentityID  string
	Role        string
	Resource    string
	RequestID   string
	TraceID     string
	SourceIP    string
}

// Recorder records events. Record never fails the caller's operation: a
// recorder that cannot persist logs the failure and retries.
type Recorder interface {
	Record(ctx context.Context, e Event)
}

// RequestInfo identifies the request an event belongs to.
type RequestInfo struct {
	ID       string
	TraceID  string
	SourceIP string
}

type reqKey struct{}

// WithRequest returns ctx carrying info.
func WithRequest(ctx context.Context, info RequestInfo) context.Context {
	return context.WithValue(ctx, reqKey{}, info)
}

// Request returns the request info in ctx (zero when none).
func Request(ctx context.Context) RequestInfo {
	info, _ := ctx.Value(reqKey{}).(RequestInfo)
	return info
}

// NewRequestID returns a new request id: a UUID version 7 (RFC 9562) in
// text form — unique, unguessable in its 74 random bits, and ordered by
// time, so that the audit trail's request-id index grows at its end
// instead of touching a random page per event.
func NewRequestID() string {
	var b [16]byte
	rand.Read(b[6:])
	ms := uint64(time.Now().UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Writer appends events to the store asynchronously in batches, chaining
// each event to the previous one of its stream by hash.
//
// Recording an event appends it to a buffer under a mutex; the writer
// goroutine is woken only when the buffer turns non-empty, fills a batch,
// or a flush is asked for; it lingers so that a busy component's events
// share one transaction (group commit), then takes the whole buffer. A full buffer
// makes recorders wait (back-pressure) instead of dropping events.
type Writer struct {
	st     store.AuditLog
	signer *Signer
	stream string
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	space   *sync.Cond // signalled when the writer takes the buffer
	buf     []item
	closed  bool
	wake    chan struct{} // capacity 1
	stopped chan struct{}

	seq    int64
	prev   []byte
	lastCP time.Time // when the writer last wrote a checkpoint
	refsAt time.Time // when a checkpoint last named the other streams

	rec recovery // see recover.go
}

type item struct {
	ev    store.AuditEvent
	flush chan struct{}
}

// maxBuffered bounds the events waiting for the writer.
const maxBuffered = 8192

// NewWriter returns a Writer appending to st under a fresh random stream
// name, and starts its background loop. With a signer it writes signed
// checkpoints (every 1000 events and at Close). Close flushes and stops it.
func NewWriter(st store.AuditLog, signer *Signer, log *slog.Logger, opts ...WriterOption) *Writer {
	if log == nil {
		log = slog.Default()
	}
	w := &Writer{
		st:      st,
		signer:  signer,
		stream:  newStream(),
		log:     log,
		now:     time.Now,
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	for _, o := range opts {
		o(w)
	}
	w.space = sync.NewCond(&w.mu)
	w.lastCP = w.now() // the first heartbeat comes a Heartbeat after the start
	go w.run()
	if signer != nil && !w.rec.off {
		go w.recoverLoop()
	}
	return w
}

// newStream returns a fresh random stream name.
func newStream() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// A WriterOption changes a Writer.
type WriterOption func(*Writer)

// WithoutRecovery keeps the writer from looking for stopped writers every
// Heartbeat (Recover still does it): for a second writer of a process
// whose first one does.
func WithoutRecovery() WriterOption { return func(w *Writer) { w.rec.off = true } }

// WithClock makes the writer read the time (of events it stamps and of its
// checkpoints) from now.
func WithClock(now func() time.Time) WriterOption { return func(w *Writer) { w.now = now } }

// Stream returns the writer's stream name.
// It changes when another writer took this one for stopped (see restream).
func (w *Writer) Stream() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stream
}

// Record queues e, filling Time and the request info from ctx when unset.
func (w *Writer) Record(ctx context.Context, e Event) {
	if e.Time.IsZero() {
		e.Time = w.now()
	}
	info := Request(ctx)
	if e.RequestID == "" {
		e.RequestID = info.ID
	}
	if e.TraceID == "" {
		e.TraceID = info.TraceID
	}
	if e.SourceIP == "" {
		e.SourceIP = info.SourceIP
	}
	if !w.enqueue(item{ev: toStore(e)}) {
		w.log.Error("audit: event after close", "action", e.Action)
	}
}

// enqueue adds it to the buffer, waiting while the buffer is full, and
// wakes the writer when the buffer was empty (or it is a flush). It
// reports false once the writer is closed.
func (w *Writer) enqueue(it item) bool {
	w.mu.Lock()
	for len(w.buf) >= maxBuffered && !w.closed {
		w.space.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.buf = append(w.buf, it)
	wake := len(w.buf) == 1 || len(w.buf) == batchSize
	w.mu.Unlock()
	if wake || it.flush != nil {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// Flush waits until every event recorded before it is stored.
func (w *Writer) Flush(ctx context.Context) error {
	done := make(chan struct{})
	if !w.enqueue(item{flush: done}) {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-w.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes pending events and stops the writer.
func (w *Writer) Close(ctx context.Context) error {
	// No recovery outlives it (the store may close next): one under way
	// is waited for.
	w.rec.mu.Lock()
	w.rec.closed = true
	w.rec.mu.Unlock()
	err := w.Flush(ctx)
	w.mu.Lock()
	w.closed = true
	w.space.Broadcast()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case <-w.stopped:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// linger is how long the writer waits for more events after the first of
// a batch, so that busy components commit a few times a second rather than
// once per event (group commit): a transaction's fixed cost (writing and
// syncing its pages, checkpoints) is most of an event's when batches are
// small. An event is durable within linger of being recorded, or at once
// when a Flush (the ingest endpoint's, before it answers) or Close asks.
const linger = 200 * time.Millisecond

// batchSize is how many events make a batch worth writing without waiting
// out the linger: a busy gateway fills one in a fraction of it. A
// transaction holds up to twice as many less one (a batch and a rest).
const batchSize = 1024

func (w *Writer) run() {
	defer close(w.stopped)
	var batch []store.AuditEvent
	var flushes []chan struct{}
	var spare []item // the buffer before last, cleared: recorders fill it next
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	// An idle writer with a signer writes a heartbeat checkpoint every
	// Heartbeat (looking twice as often, so that no more than 1.5
	// Heartbeat pass between two), so that Verify tells its stream
	// (running) from one whose tail was cut.
	heartbeat := time.NewTicker(Heartbeat / 2)
	defer heartbeat.Stop()
	for {
		select {
		case <-w.wake:
		case <-heartbeat.C:
			if w.signer != nil && w.seq > 0 && w.now().Sub(w.lastCP) >= Heartbeat {
				w.mu.Lock()
				idle := len(w.buf) == 0 && !w.closed
				w.mu.Unlock()
				if idle {
					w.write(w.checkpoint(nil, CheckpointHeartbeat))
				}
			}
			continue
		}
		// Linger for company unless a flush waits, the batch is full or
		// the writer is closing.
		w.mu.Lock()
		urgent := w.closed || len(w.buf) >= batchSize || hasFlush(w.buf)
		w.mu.Unlock()
		if !urgent {
			timer.Reset(linger)
		wait:
			for {
				select {
				case <-timer.C:
					break wait
				case <-w.wake: // a flush, or the writer closing
					w.mu.Lock()
					urgent = w.closed || len(w.buf) >= batchSize || hasFlush(w.buf)
					w.mu.Unlock()
					if urgent {
						timer.Stop()
						break wait
					}
				}
			}
		}
		w.mu.Lock()
		items := w.buf
		w.buf = spare[:0]
		closed := w.closed
		w.space.Broadcast()
		w.mu.Unlock()
		// Batches of batchSize events, the last one taking the rest: a
		// rest shorter than a batch would be a transaction (and a sync)
		// of its own for a handful of events.
		events, left := 0, 0
		for _, it := range items {
			if it.flush == nil {
				left++
			}
		}
		for _, it := range items {
			if it.flush == nil && w.seq == 0 && w.signer != nil {
				// A stream begins with a signed checkpoint: its time vouches
				// for the writer's life from the start, and it names the
				// other streams (see references).
				batch = w.checkpoint(batch, CheckpointOpen)
			}
			w.add(&batch, &flushes, it)
			if it.flush == nil {
				events, left = events+1, left-1
			}
			if events >= batchSize && left >= batchSize {
				w.writeBatch(batch)
				batch, events = batch[:0], 0
			}
		}
		w.writeBatch(batch)
		for _, f := range flushes {
			close(f)
		}
		clear(batch)
		clear(items)
		batch, flushes, spare = batch[:0], flushes[:0], items
		if closed {
			if w.signer != nil && w.seq > 0 {
				w.write(w.checkpoint(nil, CheckpointClose))
			}
			return
		}
	}
}

func hasFlush(items []item) bool {
	for i := len(items) - 1; i >= 0; i-- {
		if items[i].flush != nil {
			return true
		}
	}
	return false
}

// writeBatch writes batch, with a signed checkpoint after every 1000th
// event of the stream, or when the last one is a Heartbeat old.
func (w *Writer) writeBatch(batch []store.AuditEvent) {
	switch {
	case w.signer == nil || len(batch) == 0:
	case w.seq/1000 != (w.seq-int64(len(batch)))/1000:
		batch = w.checkpoint(batch, CheckpointTimed)
	case w.now().Sub(w.lastCP) >= Heartbeat:
		batch = w.checkpoint(batch, CheckpointHeartbeat)
	}
	w.write(batch)
}

// checkpoint appends a signed checkpoint event to batch.
func (w *Writer) checkpoint(batch []store.AuditEvent, kind string) []store.AuditEvent {
	w.seq++
	e := store.AuditEvent{Stream: w.stream, Seq: w.seq, Time: w.now().UTC().Truncate(time.Millisecond), Component: "audit", Action: ActionCheckpoint,
		Outcome: Allow, Reason: kind, PrevHash: w.prev}
	if kind == CheckpointOpen || e.Time.Sub(w.refsAt) >= Heartbeat {
		e.Resource, w.refsAt = w.references(), e.Time
	}
	e.Explanation = w.signer.sign(e)
	e.Hash = Hash(e)
	w.prev, w.lastCP = e.Hash, e.Time
	e.PrevHash = nil // see add
	return append(batch, e)
}

// refWindow is how many of the trail's last events a checkpoint looks at
// for the other streams' latest.
const refWindow = 4096

// references names (Reference, space-separated) the latest event of every
// other stream among the trail's last refWindow events, for a checkpoint to
// carry, signed: a stream's opening checkpoint, and one a Heartbeat at
// least. A stream removed whole then breaks the checkpoints of the streams
// that ran with it or began after it. "" when there is none or the trail
// cannot be read.
func (w *Writer) references() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	latest, _, err := latestOf(ctx, w.st, w.stream)
	if err != nil {
		w.log.Warn("audit: cannot read the trail's last events; this checkpoint names no other stream", "err", err)
		return ""
	}
	refs := make([]string, 0, len(latest))
	for _, e := range latest {
		refs = append(refs, Reference(e))
	}
	slices.Sort(refs)
	return strings.Join(refs, " ")
}

// Reference names event e of the trail (stream, sequence number and hash)
// for a checkpoint or as an anchor: "<stream>/<seq>/<hash hex>".
func Reference(e store.AuditEvent) string {
	return e.Stream + "/" + strconv.FormatInt(e.Seq, 10) + "/" + hex.EncodeToString(e.Hash)
}

func (w *Writer) add(batch *[]store.AuditEvent, flushes *[]chan struct{}, it item) {
	if it.flush != nil {
		*flushes = append(*flushes, it.flush)
		return
	}
	w.seq++
	it.ev.Stream, it.ev.Seq, it.ev.PrevHash = w.stream, w.seq, w.prev
	it.ev.Hash = Hash(it.ev)
	w.prev = it.ev.Hash
	// The previous event's hash is in the hash but not stored again:
	// Verify takes it from that event. A fifth of a gateway event's row
	// less to write.
	it.ev.PrevHash = nil
	*batch = append(*batch, it.ev)
}

func (w *Writer) write(batch []store.AuditEvent) {
	if len(batch) == 0 {
		return
	}
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		_, err := w.st.AppendAudit(context.Background(), batch)
		if err == nil {
			return
		}
		if errors.Is(err, store.ErrConflict) {
			// Another writer sealed this stream (recover), or an earlier
			// attempt committed though its answer was lost.
			last, lerr := w.st.LastAuditEvent(context.Background(), w.stream)
			switch end := batch[len(batch)-1]; {
			case lerr == nil && last.Seq == end.Seq && bytes.Equal(last.Hash, end.Hash):
				return
			case lerr == nil && last.Seq == batch[0].Seq && last.Reason == CheckpointRecovered && ends(last):
				if batch = w.restream(batch); len(batch) == 0 {
					return
				}
				continue
			}
		}
		if attempt >= 20 {
			w.log.Error("audit: dropping events after repeated store failures", "events", len(batch), "err", err)
			return
		}
		w.log.Warn("audit: append failed, retrying", "err", err)
		time.Sleep(backoff)
		if backoff < 2*time.Second {
			backoff *= 2
		}
	}
}

// restream moves the writer to a new stream after another writer sealed
// its own (see recover): it was taken for stopped. It returns batch's
// events chained anew in the new stream (after its opening checkpoint), its
// checkpoints dropped but the close.
func (w *Writer) restream(batch []store.AuditEvent) []store.AuditEvent {
	old := w.stream
	w.mu.Lock()
	w.stream = newStream()
	w.mu.Unlock()
	w.seq, w.prev, w.refsAt = 0, nil, time.Time{}
	w.log.Warn("audit: another writer sealed this writer's stream, taking it for stopped; going on in a new stream",
		"stream", old, "new_stream", w.stream)
	var out []store.AuditEvent
	closing := false
	for _, e := range batch {
		if e.Component == "audit" && e.Action == ActionCheckpoint {
			closing = e.Reason == CheckpointClose
			continue
		}
		if w.seq == 0 && w.signer != nil {
			out = w.checkpoint(out, CheckpointOpen)
		}
		w.seq++
		e.Stream, e.Seq, e.PrevHash = w.stream, w.seq, w.prev
		e.Hash = Hash(e)
		w.prev = e.Hash
		e.PrevHash = nil
		out = append(out, e)
	}
	if closing && w.seq > 0 {
		out = w.checkpoint(out, CheckpointClose)
	}
	return out
}

// toStore converts e, with every string made valid UTF-8 (invalid bytes
// become U+FFFD) before it is hashed, so that what the store keeps as
// text reads back exactly and the hash still holds.
func toStore(e Event) store.AuditEvent {
	chain := e.ActorChain
	for i, a := range e.ActorChain {
		if !utf8.ValidString(a) {
			if &chain[0] == &e.ActorChain[0] {
				chain = slices.Clone(chain) // the caller's slice stays as it is
			}
			chain[i] = valid(a)
		}
	}
	return store.AuditEvent{
		Time: e.Time.UTC(), Component: valid(e.Component), Action: valid(e.Action), Outcome: valid(e.Outcome),
		Reason: valid(e.Reason), Explanation: valid(e.Explanation), PoolID: valid(e.PoolID), Sub: valid(e.Sub),
		Username: valid(e.Username), ClientID: valid(e.ClientID), ActorChain: chain,
		IdentityID: valid(e.IdentityID), Role: valid(e.Role), Resource: valid(e.Resource), RequestID: valid(e.RequestID),
		TraceID: valid(e.TraceID), SourceIP: valid(e.SourceIP),
	}
}

func valid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Hash returns the chain hash of e: SHA-256 over a canonical,
// length-prefixed encoding of every field but ID and Hash (PrevHash
// included, which links the chain). The encoding is built in one buffer
// and hashed at once: a busy writer hashes every event.
func Hash(e store.AuditEvent) []byte {
	var buf [1024]byte
	b := buf[:0]
	str := func(s string) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(len("writ-audit-v1")))
	b = append(b, "writ-audit-v1"...)
	str(e.Stream)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixMilli()))
	for _, s := range [...]string{e.Component, e.Action, e.Outcome, e.Reason, e.Explanation, e.PoolID, e.Sub,
		e.Username, e.ClientID, e.IdentityID, e.Role, e.Resource, e.RequestID, e.TraceID, e.SourceIP} {
		str(s)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(len(e.ActorChain)))
	for _, a := range e.ActorChain {
		str(a)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(len(e.PrevHash)))
	b = append(b, e.PrevHash...)
	sum := sha256.Sum256(b)
	return sum[:]
}

// ErrBroken reports a broken hash chain.
var ErrBroken = errors.New("audit: chain broken")
