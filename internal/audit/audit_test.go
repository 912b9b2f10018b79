package audit_test

import (
	"context"
	"encoding/hex"
	"log/slog"
	"testing"

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
	rep, err := audit.Verify(ctx, st, signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || len(rep.Open) != 0 || rep.Events != 3 {
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
