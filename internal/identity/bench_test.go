package identity_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ci "github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// BenchmarkIdentity measures GetCredentialsForIdentity (token
// verification, role resolution, trust policy, sealing) and
// AssumeRoleWithWebIdentity through the SDK clients and the HTTP handler, from 8 concurrent
// callers (client and server share the machine's cores).
func BenchmarkIdentity(b *testing.B) {
	f := start(b)
	tok := f.signIn("bob", "Bob-Passw0rd1")
	logins := map[string]string{f.loginKey(): tok}
	id, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: logins})
	if err != nil {
		b.Fatal(err)
	}
	oid, err := f.ci.GetOpenIdToken(f.ctx, &ci.GetOpenIdTokenInput{IdentityId: id.IdentityId, Logins: logins})
	if err != nil {
		b.Fatal(err)
	}
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
