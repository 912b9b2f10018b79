package sts_test

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/keys"
	"github.com/writ-id/writ/internal/sts"
)

// TestOpenCached: a token opens to its session again and again (from the
// cache after the first time) and is still refused with another access
// key, once expired, or altered; concurrent opens agree.
func TestOpenCached(t *testing.T) {
	cfg, err := config.Parse(examples.ReferenceConfig, filepath.Join(t.TempDir(), "writ.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := sts.New(cfg, keys.NewMasterKey(), clock)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := s.Issue(sts.Session{Role: "demo-user", SessionName: "s", Subject: "alice", Provider: "cognito-identity.amazonaws.com",
		Tags: map[string]string{"department": "eng"}, Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				sess, err := s.Open(creds.AccessKeyID, creds.SessionToken)
				if err != nil || sess.Subject != "alice" || sess.Secret != creds.SecretAccessKey || sess.Tags["department"] != "eng" {
					t.Errorf("open: %v %+v", err, sess)
					return
				}
			}
		}()
	}
	wg.Wait()
	other, _ := s.Issue(sts.Session{Role: "demo-user", SessionName: "o", Expires: now.Add(time.Hour)})
	if _, err := s.Open(other.AccessKeyID, creds.SessionToken); !errors.Is(err, sts.ErrInvalidToken) {
		t.Errorf("cached token with another access key: %v", err)
	}
	if _, err := s.Open(creds.AccessKeyID, creds.SessionToken[:len(creds.SessionToken)-2]+"AA"); !errors.Is(err, sts.ErrInvalidToken) {
		t.Errorf("altered token: %v", err)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if _, err := s.Open(creds.AccessKeyID, creds.SessionToken); !errors.Is(err, sts.ErrExpired) {
		t.Errorf("cached session past its expiry: %v", err)
	}
}
