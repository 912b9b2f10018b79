// Package storetest is the store conformance suite: every backend must pass
// Run unchanged (STYLE.md habit 1).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/store"
)

// Run runs the suite; open returns a fresh, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Users", testUsers},
		{"UserConcurrentUpdates", testUserConcurrentUpdates},
		{"Groups", testGroups},
		{"ClientsAndResourceServers", testClients},
		{"RefreshTokens", testRefreshTokens},
		{"Sessions", testSessions},
		{"SessionConsumeRace", testSessionRace},
		{"OneTime", testOneTime},
		{"Counters", testCounters},
		{"SigningKeys", testSigningKeys},
		{"Codes", testCodes},
		{"Outbox", testOutbox},
		{"MailDelivery", testMailDelivery},
		{"MailClaimRace", testMailClaimRace},
		{"Audit", testAudit},
		{"TxAtomicity", testTx},
		{"DeleteExpired", testDeleteExpired},
		{"Identities", testIdentities},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var ctx = context.Background()

// t0 has millisecond precision, as the contract promises to keep.
var t0 = time.UnixMilli(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).UnixMilli() + 123).UTC()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got %v, want %v", err, target)
	}
}

func user(pool, name string) store.User {
	return store.User{PoolID: pool, Username: name, Sub: "sub-" + pool + "-" + name, Email: name + "@example.com",
		EmailVerified: true, Attributes: map[string]string{"custom:department": "eng", "name": "N"},
		Status: store.StatusConfirmed, Enabled: true, PasswordHash: "$argon2id$x", TOTPSecret: []byte{1, 2, 3},
		Groups: []string{"staff", "b"}, CreatedAt: t0, UpdatedAt: t0}
}

func testUsers(t *testing.T, s store.Store) {
	u := user("p1", "alice")
	must(t, s.CreateUser(ctx, u))
	wantErr(t, s.CreateUser(ctx, u), store.ErrConflict)
	dupSub := user("p1", "other")
	dupSub.Sub = u.Sub
	wantErr(t, s.CreateUser(ctx, dupSub), store.ErrConflict)
	got, err := s.GetUser(ctx, "p1", "alice")
	must(t, err)
	if got.Sub != u.Sub || got.Email != u.Email || !got.EmailVerified || got.Attributes["custom:department"] != "eng" ||
		!bytes.Equal(got.TOTPSecret, u.TOTPSecret) || got.TOTPPending != nil && len(got.TOTPPending) != 0 ||
		len(got.Groups) != 2 || got.Groups[0] != "staff" || !got.CreatedAt.Equal(t0) || got.CreatedAt.Location() != time.UTC ||
		!got.RevokedBefore.IsZero() || !got.Enabled || got.Status != store.StatusConfirmed {
		t.Fatalf("round trip: %+v", got)
	}
	bySub, err := s.GetUserBySub(ctx, u.Sub)
	must(t, err)
	if bySub.Username != "alice" {
		t.Fatalf("by sub: %+v", bySub)
	}
	_, err = s.GetUser(ctx, "p2", "alice")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetUserBySub(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	boom := errors.New("boom")
	_, err = s.UpdateUser(ctx, "p1", "alice", func(u *store.User) error { u.Email = "x"; return boom })
	wantErr(t, err, boom)
	if got, _ := s.GetUser(ctx, "p1", "alice"); got.Email != u.Email {
		t.Fatal("failed update wrote")
	}
	up, err := s.UpdateUser(ctx, "p1", "alice", func(u *store.User) error {
		u.Email, u.Enabled, u.RevokedBefore, u.TOTPPending = "new@example.com", false, t0.Add(time.Second), []byte("p")
		delete(u.Attributes, "name")
		return nil
	})
	must(t, err)
	got, _ = s.GetUser(ctx, "p1", "alice")
	if got.Email != "new@example.com" || got.Enabled || !got.RevokedBefore.Equal(t0.Add(time.Second)) || string(got.TOTPPending) != "p" ||
		len(got.Attributes) != 1 || up.Email != got.Email {
		t.Fatalf("after update: %+v", got)
	}
	_, err = s.UpdateUser(ctx, "p1", "nobody", func(*store.User) error { return nil })
	wantErr(t, err, store.ErrNotFound)

	for _, n := range []string{"dave", "carol", "bob", "eve"} {
		must(t, s.CreateUser(ctx, user("p1", n)))
	}
	must(t, s.CreateUser(ctx, user("p2", "zed")))
	all, err := s.ListUsers(ctx, "p1", "", 0)
	must(t, err)
	names := ""
	for _, u := range all {
		names += u.Username + ","
	}
	if names != "alice,bob,carol,dave,eve," {
		t.Fatalf("list order: %s", names)
	}
	page, err := s.ListUsers(ctx, "p1", "bob", 2)
	must(t, err)
	if len(page) != 2 || page[0].Username != "carol" || page[1].Username != "dave" {
		t.Fatalf("paging: %+v", page)
	}
	must(t, s.DeleteUser(ctx, "p1", "eve"))
	wantErr(t, s.DeleteUser(ctx, "p1", "eve"), store.ErrNotFound)
	_, err = s.GetUser(ctx, "p1", "eve")
	wantErr(t, err, store.ErrNotFound)
}

func testUserConcurrentUpdates(t *testing.T, s store.Store) {
	must(t, s.CreateUser(ctx, user("p", "u")))
	var wg sync.WaitGroup
	const n = 20
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := s.UpdateUser(ctx, "p", "u", func(u *store.User) error {
				u.Groups = append(u.Groups, fmt.Sprint(i))
				return nil
			})
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	got, _ := s.GetUser(ctx, "p", "u")
	if len(got.Groups) != 2+n {
		t.Fatalf("lost updates: %d groups, want %d", len(got.Groups), 2+n)
	}
}

func testGroups(t *testing.T, s store.Store) {
	prec := func(n int) *int { return &n }
	t1 := t0.Add(time.Hour)
	must(t, s.PutGroup(ctx, store.Group{PoolID: "p", Name: "b", Precedence: prec(10), RoleARN: "arn:b", CreatedAt: t0, UpdatedAt: t0}))
	must(t, s.PutGroup(ctx, store.Group{PoolID: "p", Name: "a", Precedence: prec(1), RoleARN: "arn:a", CreatedAt: t0, UpdatedAt: t0}))
	must(t, s.PutGroup(ctx, store.Group{PoolID: "p", Name: "c", RoleARN: "arn:c", CreatedAt: t0, UpdatedAt: t0}))
	// A replacement keeps the creation time and takes the rest.
	must(t, s.PutGroup(ctx, store.Group{PoolID: "p", Name: "b", Precedence: prec(5), RoleARN: "arn:b2", Description: "d", CreatedAt: t1, UpdatedAt: t1}))
	g, err := s.GetGroup(ctx, "p", "b")
	must(t, err)
	if g.Precedence == nil || *g.Precedence != 5 || g.RoleARN != "arn:b2" || g.Description != "d" || !g.CreatedAt.Equal(t0) || !g.UpdatedAt.Equal(t1) {
		t.Fatalf("replace: %+v", g)
	}
	if g, err := s.GetGroup(ctx, "p", "c"); err != nil || g.Precedence != nil {
		t.Fatalf("a group without precedence: %+v %v", g, err)
	}
	// Precedence order, unset last.
	gs, err := s.ListGroups(ctx, "p")
	must(t, err)
	if len(gs) != 3 || gs[0].Name != "a" || gs[1].Name != "b" || gs[2].Name != "c" {
		t.Fatalf("list: %+v", gs)
	}
	// Setting it back to unset.
	must(t, s.PutGroup(ctx, store.Group{PoolID: "p", Name: "b", RoleARN: "arn:b2", CreatedAt: t1, UpdatedAt: t1}))
	if g, err := s.GetGroup(ctx, "p", "b"); err != nil || g.Precedence != nil {
		t.Fatalf("precedence unset again: %+v %v", g, err)
	}
	must(t, s.DeleteGroup(ctx, "p", "a"))
	wantErr(t, s.DeleteGroup(ctx, "p", "a"), store.ErrNotFound)
	_, err = s.GetGroup(ctx, "p", "a")
	wantErr(t, err, store.ErrNotFound)
}

func testClients(t *testing.T, s store.Store) {
	c := store.Client{PoolID: "p", ClientID: "web", Name: "Web", Public: true, Flows: []string{"authorization_code"},
		RedirectURIs: []string{"http://x/cb"}, Scopes: []string{"openid"}, CreatedAt: t0, UpdatedAt: t0}
	must(t, s.PutClient(ctx, c))
	c2 := store.Client{PoolID: "p", ClientID: "svc", SecretHash: []byte{9, 9}, Flows: []string{"client_credentials"},
		ExchangeAudiences: []string{"files"}, JWKS: []byte(`{"keys":[]}`), CreatedAt: t0, UpdatedAt: t0}
	must(t, s.PutClient(ctx, c2))
	got, err := s.GetClient(ctx, "svc")
	must(t, err)
	if !bytes.Equal(got.SecretHash, []byte{9, 9}) || got.Public || got.ExchangeAudiences[0] != "files" || string(got.JWKS) != `{"keys":[]}` ||
		got.RedirectURIs == nil || len(got.RedirectURIs) != 0 {
		t.Fatalf("client: %+v", got)
	}
	c.Name = "Web 2"
	must(t, s.PutClient(ctx, c))
	if got, _ := s.GetClient(ctx, "web"); got.Name != "Web 2" || !got.Public {
		t.Fatalf("replace: %+v", got)
	}
	cs, err := s.ListClients(ctx, "p")
	must(t, err)
	if len(cs) != 2 {
		t.Fatalf("list: %d", len(cs))
	}
	must(t, s.DeleteClient(ctx, "web"))
	_, err = s.GetClient(ctx, "web")
	wantErr(t, err, store.ErrNotFound)

	must(t, s.PutResourceServer(ctx, store.ResourceServer{PoolID: "p", Identifier: "https://api", Scopes: []string{"r", "w"}}))
	must(t, s.PutResourceServer(ctx, store.ResourceServer{PoolID: "p", Identifier: "https://api", Scopes: []string{"r"}}))
	rs, err := s.ListResourceServers(ctx, "p")
	must(t, err)
	if len(rs) != 1 || len(rs[0].Scopes) != 1 {
		t.Fatalf("resource servers: %+v", rs)
	}
	must(t, s.DeleteResourceServer(ctx, "p", "https://api"))
	wantErr(t, s.DeleteResourceServer(ctx, "p", "https://api"), store.ErrNotFound)
}

func rt(id, fam, user string) store.RefreshToken {
	return store.RefreshToken{ID: id, PoolID: "p", ClientID: "c", Username: user, Sub: "s-" + user, FamilyID: fam,
		Scope: "a b", AuthTime: t0, AMR: []string{"pwd"}, OriginJTI: "o", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
}

func testRefreshTokens(t *testing.T, s store.Store) {
	must(t, s.CreateRefreshToken(ctx, rt("1", "f1", "alice")))
	wantErr(t, s.CreateRefreshToken(ctx, rt("1", "f1", "alice")), store.ErrConflict)
	must(t, s.CreateRefreshToken(ctx, rt("2", "f1", "alice")))
	must(t, s.CreateRefreshToken(ctx, rt("3", "f2", "alice")))
	must(t, s.CreateRefreshToken(ctx, rt("4", "f3", "bob")))
	got, err := s.GetRefreshToken(ctx, "1")
	must(t, err)
	if got.FamilyID != "f1" || got.AMR[0] != "pwd" || !got.AuthTime.Equal(t0) || got.Revoked || !got.UsedAt.IsZero() {
		t.Fatalf("round trip: %+v", got)
	}
	_, err = s.UpdateRefreshToken(ctx, "1", func(r *store.RefreshToken) error {
		r.UsedAt, r.SuccessorID, r.Replay = t0.Add(time.Second), "2", []byte("sealed")
		return nil
	})
	must(t, err)
	got, _ = s.GetRefreshToken(ctx, "1")
	if got.SuccessorID != "2" || string(got.Replay) != "sealed" || !got.UsedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("update: %+v", got)
	}
	n, err := s.RevokeRefreshFamily(ctx, "f1")
	must(t, err)
	if n != 2 {
		t.Fatalf("revoked %d in family, want 2", n)
	}
	if n, _ := s.RevokeRefreshFamily(ctx, "f1"); n != 0 {
		t.Fatalf("second revoke changed %d rows", n)
	}
	if g, _ := s.GetRefreshToken(ctx, "3"); g.Revoked {
		t.Fatal("other family revoked")
	}
	n, err = s.RevokeUserRefreshTokens(ctx, "p", "alice")
	must(t, err)
	if n != 1 {
		t.Fatalf("user revoke changed %d, want 1", n)
	}
	if g, _ := s.GetRefreshToken(ctx, "4"); g.Revoked {
		t.Fatal("bob's token revoked")
	}
	_, err = s.GetRefreshToken(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UpdateRefreshToken(ctx, "nope", func(*store.RefreshToken) error { return nil })
	wantErr(t, err, store.ErrNotFound)
}

func testSessions(t *testing.T, s store.Store) {
	sess := store.Session{ID: "s1", Kind: "auth", PoolID: "p", ClientID: "c", Username: "u", Data: []byte(`{"a":1}`),
		CreatedAt: t0, ExpiresAt: t0.Add(3 * time.Minute)}
	must(t, s.CreateSession(ctx, sess))
	wantErr(t, s.CreateSession(ctx, sess), store.ErrConflict)
	got, err := s.GetSession(ctx, "s1", t0)
	must(t, err)
	if string(got.Data) != `{"a":1}` {
		t.Fatalf("get: %+v", got)
	}
	_, err = s.GetSession(ctx, "s1", t0.Add(4*time.Minute))
	wantErr(t, err, store.ErrNotFound)
	got, err = s.ConsumeSession(ctx, "s1", t0.Add(time.Minute))
	must(t, err)
	if got.Username != "u" {
		t.Fatalf("consume: %+v", got)
	}
	_, err = s.ConsumeSession(ctx, "s1", t0.Add(time.Minute))
	wantErr(t, err, store.ErrNotFound)
	// An expired session is deleted and reported as not found.
	sess.ID = "s2"
	must(t, s.CreateSession(ctx, sess))
	_, err = s.ConsumeSession(ctx, "s2", t0.Add(time.Hour))
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetSession(ctx, "s2", t0)
	wantErr(t, err, store.ErrNotFound)
	sess.ID = "s3"
	must(t, s.CreateSession(ctx, sess))
	must(t, s.DeleteSession(ctx, "s3"))
	wantErr(t, s.DeleteSession(ctx, "s3"), store.ErrNotFound)
}

func testSessionRace(t *testing.T, s store.Store) {
	for round := 0; round < 5; round++ {
		id := fmt.Sprint("race-", round)
		must(t, s.CreateSession(ctx, store.Session{ID: id, Kind: "k", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.ConsumeSession(ctx, id, t0); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("consume: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d winners", round, wins.Load())
		}
	}
}

func testOneTime(t *testing.T, s store.Store) {
	must(t, s.UseOnce(ctx, "k", t0.Add(time.Minute), t0))
	wantErr(t, s.UseOnce(ctx, "k", t0.Add(time.Minute), t0.Add(30*time.Second)), store.ErrConflict)
	must(t, s.UseOnce(ctx, "k", t0.Add(3*time.Minute), t0.Add(2*time.Minute))) // expired: reusable
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.UseOnce(ctx, "race", t0.Add(time.Minute), t0); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, store.ErrConflict) {
				t.Errorf("use once: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d winners", wins.Load())
	}
}

func testCounters(t *testing.T, s store.Store) {
	w := 15 * time.Minute
	for i := 1; i <= 3; i++ {
		n, err := s.Incr(ctx, "c", w, t0.Add(time.Duration(i)*time.Minute))
		must(t, err)
		if n != i {
			t.Fatalf("incr %d: %d", i, n)
		}
	}
	if n, _ := s.Count(ctx, "c", t0.Add(10*time.Minute)); n != 3 {
		t.Fatalf("count %d", n)
	}
	if n, _ := s.Count(ctx, "c", t0.Add(20*time.Minute)); n != 0 {
		t.Fatalf("count after window %d", n)
	}
	if n, _ := s.Incr(ctx, "c", w, t0.Add(20*time.Minute)); n != 1 {
		t.Fatalf("new window starts at 1, got %d", n)
	}
	must(t, s.ResetCounter(ctx, "c"))
	if n, _ := s.Count(ctx, "c", t0); n != 0 {
		t.Fatalf("after reset %d", n)
	}
	if n, _ := s.Count(ctx, "never", t0); n != 0 {
		t.Fatal("absent counter non-zero")
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, err := s.Incr(ctx, "par", w, t0); must(t, err) }()
	}
	wg.Wait()
	if n, _ := s.Count(ctx, "par", t0); n != 20 {
		t.Fatalf("concurrent incr lost updates: %d", n)
	}
}

func testSigningKeys(t *testing.T, s store.Store) {
	k1 := store.SigningKey{KID: "k1", PoolID: "p", Alg: "ES256", PrivateSealed: []byte{1}, PublicJWK: []byte("{}"), CreatedAt: t0, ActiveAt: t0}
	k2 := store.SigningKey{KID: "k2", PoolID: "p", Alg: "ES256", PrivateSealed: []byte{2}, PublicJWK: []byte("{}"), CreatedAt: t0.Add(time.Minute), ActiveAt: t0.Add(11 * time.Minute)}
	must(t, s.CreateSigningKey(ctx, k2))
	must(t, s.CreateSigningKey(ctx, k1))
	wantErr(t, s.CreateSigningKey(ctx, k1), store.ErrConflict)
	must(t, s.CreateSigningKey(ctx, store.SigningKey{KID: "o", PoolID: "other", Alg: "EdDSA", PrivateSealed: []byte{3}, PublicJWK: []byte("{}"), CreatedAt: t0}))
	ks, err := s.ListSigningKeys(ctx, "p")
	must(t, err)
	if len(ks) != 2 || ks[0].KID != "k1" || ks[1].KID != "k2" {
		t.Fatalf("list (oldest first): %+v", ks)
	}
	_, err = s.UpdateSigningKey(ctx, "k1", func(k *store.SigningKey) error {
		k.RetiredAt, k.PublishUntil = t0.Add(11*time.Minute), t0.Add(2*time.Hour)
		k.PrivateSealed = []byte{9} // sealed again (master-key rotation)
		return nil
	})
	must(t, err)
	ks, _ = s.ListSigningKeys(ctx, "p")
	if !ks[0].RetiredAt.Equal(t0.Add(11*time.Minute)) || !ks[0].PublishUntil.Equal(t0.Add(2*time.Hour)) || !bytes.Equal(ks[0].PrivateSealed, []byte{9}) {
		t.Fatalf("update: %+v", ks[0])
	}
	must(t, s.DeleteSigningKey(ctx, "k1"))
	wantErr(t, s.DeleteSigningKey(ctx, "k1"), store.ErrNotFound)
}

func testCodes(t *testing.T, s store.Store) {
	must(t, s.PutCode(ctx, store.Code{Key: "confirm/p/u", CodeHash: []byte{1}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	must(t, s.PutCode(ctx, store.Code{Key: "confirm/p/u", CodeHash: []byte{2}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	c, err := s.GetCode(ctx, "confirm/p/u")
	must(t, err)
	if !bytes.Equal(c.CodeHash, []byte{2}) || c.Attempts != 0 {
		t.Fatalf("replace: %+v", c)
	}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateCode(ctx, "confirm/p/u", func(c *store.Code) error { c.Attempts++; return nil })
			must(t, err)
		}()
	}
	wg.Wait()
	if c, _ := s.GetCode(ctx, "confirm/p/u"); c.Attempts != 10 {
		t.Fatalf("attempts %d, want 10 (lost updates)", c.Attempts)
	}
	must(t, s.DeleteCode(ctx, "confirm/p/u"))
	_, err = s.GetCode(ctx, "confirm/p/u")
	wantErr(t, err, store.ErrNotFound)
}

func testOutbox(t *testing.T, s store.Store) {
	id1, err := s.EnqueueMail(ctx, store.Mail{To: "a@x", Subject: "s1", Body: "b1", CreatedAt: t0})
	must(t, err)
	id2, err := s.EnqueueMail(ctx, store.Mail{To: "b@x", Subject: "s2", Body: "b2", CreatedAt: t0})
	must(t, err)
	if id2 <= id1 {
		t.Fatalf("ids %d %d", id1, id2)
	}
	ms, err := s.ListMail(ctx, 0)
	must(t, err)
	if len(ms) != 2 || ms[0].To != "a@x" || ms[1].Body != "b2" || ms[1].ID != id2 {
		t.Fatalf("list: %+v", ms)
	}
	ms, _ = s.ListMail(ctx, id1)
	if len(ms) != 1 || ms[0].ID != id2 {
		t.Fatalf("after: %+v", ms)
	}
	// Mail kept for `writ outbox` is never claimed for delivery.
	if _, ok, err := s.ClaimMail(ctx, t0.Add(time.Hour), time.Minute); err != nil || ok {
		t.Fatalf("claimed kept mail: %v %v", ok, err)
	}
	// It goes 7 days after it was made, when no code in it works; so does
	// mail for SMTP never delivered (no sender ran, or SMTP was turned
	// off).
	id3, err := s.EnqueueMail(ctx, store.Mail{To: "c@x", Subject: "s3", Body: "b3", CreatedAt: t0.Add(time.Hour)})
	must(t, err)
	_, err = s.EnqueueMail(ctx, store.Mail{To: "d@x", Subject: "s4", Body: "b4", CreatedAt: t0, Deliver: true})
	must(t, err)
	must(t, s.DeleteExpired(ctx, t0.Add(7*24*time.Hour+time.Minute)))
	if ms, _ = s.ListMail(ctx, 0); len(ms) != 1 || ms[0].ID != id3 {
		t.Fatalf("after 7 days: %+v", ms)
	}
}

func testMailDelivery(t *testing.T, s store.Store) {
	later := t0.Add(time.Minute)
	id1, err := s.EnqueueMail(ctx, store.Mail{To: "a@x", Subject: "s1", Body: "code 1", CreatedAt: t0, Deliver: true})
	must(t, err)
	id2, err := s.EnqueueMail(ctx, store.Mail{To: "b@x", Subject: "s2", Body: "code 2", CreatedAt: t0, Deliver: true, NextAt: later})
	must(t, err)
	// Oldest first, and only what is due.
	m1, ok, err := s.ClaimMail(ctx, t0, time.Minute)
	must(t, err)
	if !ok || m1.ID != id1 || m1.Body != "code 1" || m1.Attempts != 1 || !m1.Deliver || !m1.NextAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("claim: %v %+v", ok, m1)
	}
	// A claimed mail is held for its lease; the other is not due yet.
	if m, ok, err := s.ClaimMail(ctx, t0.Add(time.Second), time.Minute); err != nil || ok {
		t.Fatalf("claimed again: %v %+v %v", ok, m, err)
	}
	// Given back untried (a sender stopping): due at once, the attempt
	// not counted; the claim given back is stale.
	must(t, s.ReleaseMail(ctx, m1))
	wantErr(t, s.ReleaseMail(ctx, m1), store.ErrNotFound)
	m1, ok, err = s.ClaimMail(ctx, t0.Add(time.Second), time.Minute)
	must(t, err)
	if !ok || m1.ID != id1 || m1.Attempts != 1 {
		t.Fatalf("claim after release: %v %+v", ok, m1)
	}
	must(t, s.RetryMail(ctx, m1, t0.Add(2*time.Minute), "421 try later"))
	m2, ok, err := s.ClaimMail(ctx, later, time.Minute)
	must(t, err)
	if !ok || m2.ID != id2 {
		t.Fatalf("claim due: %v %+v", ok, m2)
	}
	must(t, s.EndMail(ctx, m2, later, ""))
	// Ended mail is not claimed again, nor ended twice.
	again, ok, err := s.ClaimMail(ctx, t0.Add(2*time.Minute), time.Minute)
	must(t, err)
	if !ok || again.ID != id1 || again.Attempts != 2 || again.LastError != "421 try later" {
		t.Fatalf("claim retried: %v %+v", ok, again)
	}
	// The first claim of id1 is stale now: it changes nothing.
	wantErr(t, s.EndMail(ctx, m1, t0.Add(2*time.Minute), ""), store.ErrNotFound)
	wantErr(t, s.RetryMail(ctx, m1, t0.Add(2*time.Minute), "x"), store.ErrNotFound)
	must(t, s.EndMail(ctx, again, t0.Add(2*time.Minute), "550 no such user"))
	wantErr(t, s.EndMail(ctx, again, t0.Add(3*time.Minute), ""), store.ErrNotFound)
	wantErr(t, s.RetryMail(ctx, m2, t0.Add(3*time.Minute), "x"), store.ErrNotFound)
	if _, ok, err := s.ClaimMail(ctx, t0.Add(time.Hour), time.Minute); err != nil || ok {
		t.Fatalf("claimed ended mail: %v %v", ok, err)
	}
	ms, err := s.ListMail(ctx, 0)
	must(t, err)
	if len(ms) != 2 || ms[0].Body != "" || ms[0].LastError != "550 no such user" || !ms[0].DoneAt.Equal(t0.Add(2*time.Minute)) ||
		ms[1].Body != "" || ms[1].LastError != "" || !ms[1].DoneAt.Equal(later) {
		t.Fatalf("ended mail: %+v", ms)
	}
	// Ended mail goes a day after it ended (id2 first); waiting mail stays.
	id3, err := s.EnqueueMail(ctx, store.Mail{To: "c@x", Subject: "s3", Body: "code 3", CreatedAt: t0, Deliver: true})
	must(t, err)
	must(t, s.DeleteExpired(ctx, t0.Add(24*time.Hour+90*time.Second)))
	ms, err = s.ListMail(ctx, 0)
	must(t, err)
	if len(ms) != 2 || ms[0].ID != id1 || ms[1].ID != id3 {
		t.Fatalf("after expiry: %+v", ms)
	}
}

// testMailClaimRace has senders claim at once: each mail is taken by
// exactly one of them.
func testMailClaimRace(t *testing.T, s store.Store) {
	const n = 20
	for i := range n {
		_, err := s.EnqueueMail(ctx, store.Mail{To: fmt.Sprintf("u%d@x", i), Subject: "s", Body: "b", CreatedAt: t0, Deliver: true})
		must(t, err)
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, ok, err := s.ClaimMail(ctx, t0, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					return
				}
				mu.Lock()
				seen[m.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d of %d mails claimed", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("mail %d claimed %d times", id, k)
		}
	}
}

func testAudit(t *testing.T, s store.Store) {
	ev := func(stream string, seq int64, comp, req, sub, outcome string, at time.Time) store.AuditEvent {
		return store.AuditEvent{Stream: stream, Seq: seq, Time: at, Component: comp, Action: "a", Outcome: outcome,
			RequestID: req, Sub: sub, ActorChain: []string{"svc-b", "svc-a"}, PrevHash: []byte{byte(seq)}, Hash: []byte{byte(seq + 1)}}
	}
	ids, err := s.AppendAudit(ctx, []store.AuditEvent{
		ev("w1", 1, "idp", "r1", "alice", "allow", t0), ev("w1", 2, "gateway", "r1", "alice", "deny", t0.Add(time.Second)),
		ev("w2", 1, "idp", "r2", "bob", "allow", t0.Add(2*time.Second)),
	})
	must(t, err)
	if len(ids) != 3 || !(ids[0] < ids[1] && ids[1] < ids[2]) {
		t.Fatalf("ids %v", ids)
	}
	_, err = s.AppendAudit(ctx, []store.AuditEvent{ev("w1", 3, "idp", "", "", "allow", t0), ev("w1", 2, "idp", "", "", "allow", t0)})
	wantErr(t, err, store.ErrConflict)
	if last, err := s.LastAuditID(ctx); err != nil || last != ids[2] {
		t.Fatalf("last audit id %d, %v; want %d", last, err, ids[2])
	}
	all, err := s.ListAudit(ctx, store.AuditFilter{})
	must(t, err)
	if len(all) != 3 {
		t.Fatalf("a failed append wrote part of its batch: %d events", len(all))
	}
	// check also holds AuditFilter.Matches to what the store selects (a
	// follower filters the events it reads with it).
	check := func(f store.AuditFilter, want int) []store.AuditEvent {
		t.Helper()
		es, err := s.ListAudit(ctx, f)
		must(t, err)
		if len(es) != want {
			t.Fatalf("filter %+v: %d events, want %d", f, len(es), want)
		}
		var matched []int64
		for i := range all {
			if f.Matches(&all[i]) && (f.Limit == 0 || len(matched) < f.Limit) {
				matched = append(matched, all[i].ID)
			}
		}
		var got []int64
		for _, e := range es {
			got = append(got, e.ID)
		}
		if !slices.Equal(got, matched) {
			t.Fatalf("filter %+v: the store selected %v, Matches %v", f, got, matched)
		}
		return es
	}
	es := check(store.AuditFilter{RequestID: "r1"}, 2)
	if es[0].Seq != 1 || es[1].Component != "gateway" || es[1].ActorChain[1] != "svc-a" || !es[0].Time.Equal(t0) || !bytes.Equal(es[1].Hash, []byte{3}) {
		t.Fatalf("round trip: %+v", es)
	}
	check(store.AuditFilter{Sub: "bob"}, 1)
	check(store.AuditFilter{Component: "idp"}, 2)
	check(store.AuditFilter{Outcome: "deny"}, 1)
	check(store.AuditFilter{Since: t0.Add(time.Second)}, 2)
	check(store.AuditFilter{Until: t0.Add(time.Second)}, 1)
	check(store.AuditFilter{AfterID: ids[0], Limit: 1}, 1)
	check(store.AuditFilter{Stream: "w2"}, 1)
	if last, err := s.LastAuditEvent(ctx, "w1"); err != nil || last.ID != ids[1] || last.Seq != 2 || last.Component != "gateway" || !bytes.Equal(last.Hash, []byte{3}) {
		t.Fatalf("last event of w1: %+v, %v", last, err)
	}
	_, err = s.LastAuditEvent(ctx, "w3")
	wantErr(t, err, store.ErrNotFound)
	if got, err := s.AuditStreamsSince(ctx, ids[1]); err != nil || !slices.Equal(got, []string{"w2"}) {
		t.Fatalf("streams since %d: %v, %v", ids[1], got, err)
	}
	if got, err := s.AuditStreamsSince(ctx, ids[2]); err != nil || len(got) != 0 {
		t.Fatalf("streams since the last: %v, %v", got, err)
	}
	// Every stream, once, in name order, paged.
	for _, c := range []struct {
		after string
		limit int
		want  []string
	}{{"", 10, []string{"w1", "w2"}}, {"", 1, []string{"w1"}}, {"w1", 10, []string{"w2"}}, {"w2", 10, nil}} {
		if got, err := s.AuditStreams(ctx, c.after, c.limit); err != nil || !slices.Equal(got, c.want) {
			t.Fatalf("streams after %q (%d): %v, %v; want %v", c.after, c.limit, got, err, c.want)
		}
	}

	// Lookups by request id and subject seek bucket by bucket (4096 rows
	// each): they find events in every bucket, in order, and page across
	// buckets with AfterID and Limit.
	var many []store.AuditEvent
	for i := range 10000 {
		e := ev("w4", int64(i+1), "gateway", fmt.Sprintf("f%d", i), "filler", "allow", t0.Add(time.Duration(i)*time.Millisecond))
		switch i {
		case 10, 5000, 9000:
			e.RequestID = "rx"
		case 3, 4100, 8200, 9999:
			e.Sub = "carol"
		}
		if i == 9000 {
			e.Sub = "carol"
		}
		many = append(many, e)
	}
	manyIDs, err := s.AppendAudit(ctx, many)
	must(t, err)
	all, err = s.ListAudit(ctx, store.AuditFilter{})
	must(t, err)
	if last, err := s.LastAuditID(ctx); err != nil || last != manyIDs[len(manyIDs)-1] {
		t.Fatalf("last audit id %d, %v; want %d", last, err, manyIDs[len(manyIDs)-1])
	}
	seqs := func(es []store.AuditEvent) []int64 {
		var out []int64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	if got := seqs(check(store.AuditFilter{RequestID: "rx"}, 3)); !slices.Equal(got, []int64{11, 5001, 9001}) {
		t.Fatalf("request rx: seqs %v", got)
	}
	if got := seqs(check(store.AuditFilter{Sub: "carol"}, 5)); !slices.Equal(got, []int64{4, 4101, 8201, 9001, 10000}) {
		t.Fatalf("sub carol: seqs %v", got)
	}
	if got := seqs(check(store.AuditFilter{Sub: "carol", RequestID: "rx"}, 1)); got[0] != 9001 {
		t.Fatalf("sub carol, request rx: seqs %v", got)
	}
	page := check(store.AuditFilter{Sub: "carol", Limit: 2}, 2)
	if got := seqs(check(store.AuditFilter{Sub: "carol", AfterID: page[1].ID, Limit: 2}, 2)); !slices.Equal(got, []int64{8201, 9001}) {
		t.Fatalf("sub carol, second page: seqs %v", got)
	}
	check(store.AuditFilter{Sub: "carol", AfterID: manyIDs[len(manyIDs)-1]}, 0)
	check(store.AuditFilter{Sub: "carol", Since: t0.Add(8200 * time.Millisecond), Until: t0.Add(9500 * time.Millisecond)}, 2)
	check(store.AuditFilter{RequestID: "f7777", Component: "gateway"}, 1)
	check(store.AuditFilter{RequestID: "nobody"}, 0)

	// Every field comes back as it went in, whatever its characters.
	full := OddAuditEvent("w3", 1)
	_, err = s.AppendAudit(ctx, []store.AuditEvent{full})
	must(t, err)
	all, err = s.ListAudit(ctx, store.AuditFilter{})
	must(t, err)
	got := check(store.AuditFilter{Stream: "w3"}, 1)[0]
	full.ID = got.ID
	if !reflect.DeepEqual(got, full) {
		t.Fatalf("round trip of every field:\n got %#v\nwant %#v", got, full)
	}
}

// OddAuditEvent returns an event with every field set, in characters that
// need escaping in JSON and SQL.
func OddAuditEvent(stream string, seq int64) store.AuditEvent {
	return store.AuditEvent{Stream: stream, Seq: seq, Time: t0.Add(time.Duration(seq) * time.Millisecond), Component: "orders",
		Action: "GET /orders/{id}", Outcome: "deny", Reason: "quote \" backslash \\ newline \n tab \t nul \x00 bell \x07",
		Explanation: `{"policy":"p1","effect":"Deny"}`, PoolID: "us-east-1_Pool", Sub: "sub-' OR 1=1 --", Username: "zoë 名前 🚀",
		ClientID: "client\u2028line", ActorChain: []string{"svc-b", "svc \"a\""}, IdentityID: "us-east-1:id", Role: "arn:aws:iam::000000000000:role/r",
		Resource: "arn:aws:s3:::bucket/key with spaces", RequestID: fmt.Sprintf("req-%d", seq), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		SourceIP: "::1", PrevHash: bytes.Repeat([]byte{byte(seq)}, 32), Hash: bytes.Repeat([]byte{byte(seq + 1)}, 32)}
}

func testTx(t *testing.T, s store.Store) {
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx store.Tx) error {
		must(t, tx.CreateUser(ctx, user("p", "a")))
		must(t, tx.CreateRefreshToken(ctx, rt("t1", "f", "a")))
		if _, err := tx.GetUser(ctx, "p", "a"); err != nil {
			t.Errorf("read own write in tx: %v", err)
		}
		return boom
	})
	wantErr(t, err, boom)
	_, err = s.GetUser(ctx, "p", "a")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, "t1")
	wantErr(t, err, store.ErrNotFound)
	must(t, s.InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateUser(ctx, user("p", "a")); err != nil {
			return err
		}
		_, err := tx.UpdateUser(ctx, "p", "a", func(u *store.User) error { u.Email = "tx@x"; return nil })
		return err
	}))
	if u, _ := s.GetUser(ctx, "p", "a"); u.Email != "tx@x" {
		t.Fatalf("committed tx: %+v", u)
	}
	// Concurrent read-modify-write transactions do not lose updates.
	must(t, s.PutCode(ctx, store.Code{Key: "n", CodeHash: []byte{0}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			must(t, s.InTx(ctx, func(tx store.Tx) error {
				c, err := tx.GetCode(ctx, "n")
				if err != nil {
					return err
				}
				c.Attempts++
				return tx.PutCode(ctx, c)
			}))
		}()
	}
	wg.Wait()
	if c, _ := s.GetCode(ctx, "n"); c.Attempts != 10 {
		t.Fatalf("tx increments lost: %d", c.Attempts)
	}
}

func testDeleteExpired(t *testing.T, s store.Store) {
	must(t, s.CreateSession(ctx, store.Session{ID: "old", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}))
	must(t, s.CreateSession(ctx, store.Session{ID: "new", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	must(t, s.CreateRefreshToken(ctx, rt("old", "f", "u")))
	must(t, s.PutCode(ctx, store.Code{Key: "c", CodeHash: []byte{1}, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}))
	must(t, s.UseOnce(ctx, "once", t0.Add(time.Minute), t0))
	must(t, s.CreateSigningKey(ctx, store.SigningKey{KID: "gone", PoolID: "p", Alg: "ES256", PrivateSealed: []byte{1}, PublicJWK: []byte("{}"),
		CreatedAt: t0, ActiveAt: t0, RetiredAt: t0.Add(time.Minute), PublishUntil: t0.Add(30 * time.Minute)}))
	must(t, s.CreateSigningKey(ctx, store.SigningKey{KID: "live", PoolID: "p", Alg: "ES256", PrivateSealed: []byte{1}, PublicJWK: []byte("{}"),
		CreatedAt: t0, ActiveAt: t0}))
	must(t, s.DeleteExpired(ctx, t0.Add(2*time.Hour)))
	_, err := s.GetSession(ctx, "new", t0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, "old")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetCode(ctx, "c")
	wantErr(t, err, store.ErrNotFound)
	must(t, s.UseOnce(ctx, "once", t0.Add(3*time.Hour), t0)) // the old marker is gone
	ks, _ := s.ListSigningKeys(ctx, "p")
	if len(ks) != 1 || ks[0].KID != "live" {
		t.Fatalf("keys after cleanup: %+v", ks)
	}
}

func testIdentities(t *testing.T, s store.Store) {
	id, created, err := s.GetOrCreateIdentity(ctx, "pool", "idp|alice", "us-east-1:1111", t0)
	must(t, err)
	if id != "us-east-1:1111" || !created {
		t.Fatalf("first: %s %v", id, created)
	}
	id, created, err = s.GetOrCreateIdentity(ctx, "pool", "idp|alice", "us-east-1:2222", t0)
	must(t, err)
	if id != "us-east-1:1111" || created {
		t.Fatalf("second: %s %v", id, created)
	}
	if id, _, _ := s.GetOrCreateIdentity(ctx, "other", "idp|alice", "us-east-1:3333", t0); id != "us-east-1:3333" {
		t.Fatalf("another pool shares the id: %s", id)
	}
	pool, login, err := s.IdentityLogin(ctx, "us-east-1:1111")
	must(t, err)
	if pool != "pool" || login != "idp|alice" {
		t.Fatalf("login of id: %s %s", pool, login)
	}
	_, _, err = s.IdentityLogin(ctx, "us-east-1:none")
	wantErr(t, err, store.ErrNotFound)
	// Concurrent first calls for one login agree on one id.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, _, err := s.GetOrCreateIdentity(ctx, "pool", "idp|bob", fmt.Sprintf("us-east-1:b%d", i), t0)
			must(t, err)
			ids[i] = id
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent GetOrCreateIdentity gave %v", ids)
		}
	}
}
