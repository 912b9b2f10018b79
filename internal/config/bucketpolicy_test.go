package config_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/config"
)

// TestBucketPolicies: objects.bucket_policies holds one policy per
// configured bucket, parsed at load time as a resource policy (Principal
// required) whose every Resource lies in its bucket; each mistake is an
// error naming its YAML path.
func TestBucketPolicies(t *testing.T) {
	withPolicies := func(policies string) []byte {
		src := strings.Replace(string(examples.ReferenceConfig), "objects:\n  buckets: [writ-demo]\n",
			"objects:\n  buckets: [writ-demo, reports]\n  bucket_policies:\n"+policies, 1)
		if !strings.Contains(src, "bucket_policies") {
			t.Fatal("the reference configuration's objects section moved")
		}
		return []byte(src)
	}
	good := `    writ-demo: |
      {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::writ-demo/archive/*"},
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:role/demo-user"}, "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::writ-demo"}]}
    reports:
      Version: "2012-10-17"
      Statement:
        - {Effect: Allow, Principal: {AWS: "arn:aws:iam::000000000000:role/demo-staff"}, Action: "s3:GetObject", Resource: "arn:aws:s3:::reports/${aws:PrincipalTag/department}/*"}
`
	c, err := config.Parse(withPolicies(good), filepath.Join(t.TempDir(), "writ.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Objects.BucketPolicies) != 2 || !strings.Contains(string(c.Objects.BucketPolicies["reports"].Bytes()), "demo-staff") {
		t.Fatalf("bucket policies: %v", c.Objects.BucketPolicies)
	}
	for _, bad := range []struct{ policies, want string }{
		{"    writ-demo: '" + `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/*"}]}` + "'\n",
			"objects.bucket_policies.writ-demo: Statement[0]: needs exactly one of Principal and NotPrincipal (line "},
		{"    writ-demo: '" + `{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo-other/*"}]}` + "'\n",
			`objects.bucket_policies.writ-demo: Statement[0].Resource[0]: "arn:aws:s3:::writ-demo-other/*" is not in bucket writ-demo`},
		{"    reports: '" + `{"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "NotResource": ["arn:aws:s3:::reports/*", "*"]}]}` + "'\n",
			`objects.bucket_policies.reports: Statement[0].NotResource[1]: "*" is not in bucket reports`},
		{"    reports: '" + `{"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reports/*"}]}` + "'\n",
			`objects.bucket_policies.reports: Statement[0].Effect: must be "Allow" or "Deny"`},
		{"    reports: '" + `{"Statement": [{"Effect": "Allow", "Principal": {"Someone": "x"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reports/*"}]}` + "'\n",
			`objects.bucket_policies.reports: Statement[0].Principal.Someone: unknown principal type`},
		{"    nowhere: '" + `{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::nowhere/*"}]}` + "'\n",
			`objects.bucket_policies.nowhere: no bucket "nowhere" under objects.buckets`},
		{"    reports: '{\"Version\": \"2012-10-17\"}'\n",
			`objects.bucket_policies.reports: policy document has no Statement`},
	} {
		_, err := config.Parse(withPolicies(bad.policies), filepath.Join(t.TempDir(), "writ.yaml"))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s\n  got  %v\n  want %s", bad.policies, err, bad.want)
		}
	}
}
