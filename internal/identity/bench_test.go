package identity_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ci "github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/benchutil"
)

// benchSetup signs bob in and returns his identity, logins and OpenID token.
func benchSetup(b *testing.B) (*fx, *ci.GetIdOutput, map[string]string, *ci.GetOpenIdTokenOutput) {
	f := start(b, apptest.ClassicFlow)
	logins := map[string]string{f.loginKey(): f.signIn("bob", "Bob-Passw0rd1")}
	id, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: logins})
	if err != nil {
		b.Fatal(err)
	}
	oid, err := f.ci.GetOpenIdToken(f.ctx, &ci.GetOpenIdTokenInput{IdentityId: id.IdentityId, Logins: logins})
	if err != nil {
		b.Fatal(err)
	}
	return f, id, logins, oid
}

// BenchmarkIdentity measures GetCredentialsForIdentity (token
// verification, role resolution, trust policy, sealing) and
// AssumeRoleWithWebIdentity through the SDK clients and the HTTP handler, from 8 concurrent
// callers (client and server share the machine's cores).
func BenchmarkIdentity(b *testing.B) {
	f, id, logins, oid := benchSetup(b)
	b.Run("GetCredentialsForIdentity", func(b *testing.B) {
		start := time.Now()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: id.IdentityId, Logins: logins}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	})
	b.Run("AssumeRoleWithWebIdentity", func(b *testing.B) {
		start := time.Now()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(userRole),
					RoleSessionName: aws.String("bench"), WebIdentityToken: oid.Token}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	})
}

// BenchmarkIdentityHandler is the server's capacity alone: the requests the
// SDK clients send for GetCredentialsForIdentity and
// AssumeRoleWithWebIdentity, captured once, replayed to the identity
// listener over HTTP by 8 concurrent plain net/http callers (no SDK
// marshalling on the client side). It reports calls/s and the process's CPU
// per call.
func BenchmarkIdentityHandler(b *testing.B) {
	f, id, logins, oid := benchSetup(b)
	// Capture what the SDK clients send.
	type captured struct {
		header http.Header
		body   []byte
	}
	var last captured
	capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		last = captured{r.Header.Clone(), body}
		w.WriteHeader(500)
	}))
	defer capture.Close()
	opts := func(o *ci.Options) { o.BaseEndpoint = aws.String(capture.URL) }
	f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: id.IdentityId, Logins: logins}, opts)
	getCreds := last
	f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(userRole),
		RoleSessionName: aws.String("bench"), WebIdentityToken: oid.Token}, func(o *sts.Options) { o.BaseEndpoint = aws.String(capture.URL) })
	assume := last
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
	for _, c := range []struct {
		name string
		req  captured
		want string
	}{{"GetCredentialsForIdentity", getCreds, `"SessionToken"`}, {"AssumeRoleWithWebIdentity", assume, "<SessionToken>"}} {
		b.Run(c.name, func(b *testing.B) {
			call := func() error {
				req, _ := http.NewRequest("POST", f.App.URL(app.Identity)+"/", bytes.NewReader(c.req.body))
				req.Header = c.req.header.Clone()
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !bytes.Contains(body, []byte(c.want)) {
					return fmt.Errorf("%d %s", resp.StatusCode, body)
				}
				return nil
			}
			if err := call(); err != nil {
				b.Fatal(err)
			}
			start, cpu0 := time.Now(), benchutil.CPUTime()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := call(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
			if cpu := benchutil.CPUTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/call")
			}
		})
	}
}
