package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/smithy-go"
)

// TestPostgresRestart restarts the PostgreSQL server under two replicas
// taking sign-ups: no acknowledged sign-up is lost, and both replicas
// recover by themselves. It needs WRIT_TEST_POSTGRES_RESTART, a command
// that restarts the server (.ci/run sets it and runs this test on its own,
// after the suite, so that restarting the server disturbs no other test).
func TestPostgresRestart(t *testing.T) {
	restart := os.Getenv("WRIT_TEST_POSTGRES_RESTART")
	if restart == "" {
		t.Skip("WRIT_TEST_POSTGRES_RESTART not set: PostgreSQL restart test skipped (.ci/run runs it separately)")
	}
	rs := startReplicas(t)
	a, b := rs.a, rs.b
	ctx := context.Background()
	clients := []*cip.Client{}
	for _, s := range []*server{a, b} {
		clients = append(clients, cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url("idp")),
			Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1}))
	}
	signUp := func(c *cip.Client, name string) error {
		_, err := c.SignUp(ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String(name), Password: aws.String("Passw0rd-Long-1")})
		return err
	}
	var mu sync.Mutex
	var acked []string
	var failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("pg-%d-%d", w, i)
				if err := signUp(clients[w%2], name); err == nil {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				} else {
					failures.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	if out, err := exec.Command("sh", "-c", restart).CombinedOutput(); err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("restart PostgreSQL: %v\n%s", err, out)
	}
	// Both replicas recover by themselves.
	deadline := time.Now().Add(30 * time.Second)
	for i, c := range clients {
		for {
			err := signUp(c, fmt.Sprintf("after-restart-%d-%d", i, time.Now().UnixNano()))
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("replica %d did not recover after the restart: %v", i, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(acked) < 5 {
		t.Fatalf("only %d sign-ups acknowledged", len(acked))
	}
	for _, name := range acked {
		err := signUp(clients[0], name)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "UsernameExistsException" {
			t.Fatalf("acknowledged sign-up %s lost across the restart: %v", name, err)
		}
	}
	t.Logf("%d sign-ups acknowledged (%d refused while the server restarted), none lost", len(acked), failures.Load())
}
