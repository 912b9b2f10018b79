package iam_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/writ-id/writ/internal/iam"
)

type goldenCase struct {
	Name     string          `json:"name"`
	Kind     string          `json:"kind"`
	Policy   json.RawMessage `json:"policy"`
	Session  json.RawMessage `json:"session"`
	Boundary json.RawMessage `json:"boundary"`
	Request  struct {
		Action    string              `json:"action"`
		Resource  string              `json:"resource"`
		Principal *iam.Principal      `json:"principal"`
		Context   map[string][]string `json:"context"`
	} `json:"request"`
	Want struct {
		Effect string `json:"effect"`
		Sid    string `json:"sid"`
		Reason string `json:"reason"`
	} `json:"want"`
}

// TestGoldenDecisions runs testdata/decisions.json: each case is a policy
// (with an optional session policy or boundary), a request and the
// expected decision with what decided it.
func TestGoldenDecisions(t *testing.T) {
	b, err := os.ReadFile("testdata/decisions.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 80 {
		t.Fatalf("only %d golden cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			kind := iam.Identity
			if c.Kind == "trust" {
				kind = iam.Trust
			}
			parse := func(raw json.RawMessage) []*iam.Policy {
				if len(raw) == 0 {
					return nil
				}
				p, err := iam.ParseKind(raw, kind)
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				return []*iam.Policy{p}
			}
			req := &iam.Request{Action: c.Request.Action, Resource: c.Request.Resource, Principal: c.Request.Principal,
				Context: iam.NewContext(c.Request.Context)}
			d := iam.Authorize(req, iam.Set{Name: "identity", Policies: parse(c.Policy)},
				iam.Set{Name: "session", Policies: parse(c.Session)}, iam.Set{Name: "boundary", Policies: parse(c.Boundary)})
			if d.Effect.String() != c.Want.Effect {
				t.Fatalf("got %s (%s), want %s", d.Effect, d.Reason, c.Want.Effect)
			}
			if c.Want.Sid != "" && d.Sid != c.Want.Sid {
				t.Errorf("decided by %q (%s), want Sid %q", d.Sid, d.Reason, c.Want.Sid)
			}
			if c.Want.Reason != "" && !strings.Contains(d.Reason, c.Want.Reason) {
				t.Errorf("reason %q lacks %q", d.Reason, c.Want.Reason)
			}
		})
	}
}

func TestParseErrorsHavePaths(t *testing.T) {
	for doc, want := range map[string]string{
		`{"Statement":[]}`: "Statement: empty",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"a":"b"}}}]}`: `Statement[0].Condition.StringEqualz: unknown operator`,
		`{"Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}`:                                                               "Statement[0].Effect",
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","NotAction":"s3:x","Resource":"*"}]}`:                                            "Statement[0]: needs exactly one of Action and NotAction",
		`{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}`:                                                                              "Statement[0]: needs exactly one of Resource and NotResource",
		`{"Statement":[{"Effect":"Allow","Action":"GetObject","Resource":"*"}]}`:                                                          "Statement[0].Action[0]",
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Principal":"*"}]}`:                                               "an identity policy has no Principal",
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Colour":"blue"}]}`:                                               "Statement[0].Colour: unknown element",
		`{"Version":"2013-01-01","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`:                                        "Version",
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NumericEquals":{"k":"x"}}}]}`:                       `Condition.NumericEquals.k[0]: not a number`,
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"IpAddress":{"k":"300.1.1.1"}}}]}`:                   "not an IP address",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:${aws:username"}]}`:                       "unterminated policy variable",
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"ForSomeValues:StringEquals":{"k":"x"}}}]}`:          "unknown set qualifier",
		`not json`: "not a JSON object",
	} {
		_, err := iam.Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\n  got %v\n  want …%s…", doc, err, want)
		}
	}
	if _, err := iam.ParseKind([]byte(`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*","Principal":"*"}]}`), iam.Trust); err == nil {
		t.Error("a trust policy with a Resource parsed")
	}
}

// TestImportsStayPure keeps the policy engine free of I/O dependencies.
func TestImportsStayPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/writ-id/writ/internal/iam" {
			continue
		}
		if dep == "net/http" || dep == "net" || strings.HasPrefix(dep, "github.com/writ-id/writ/internal/") || dep == "database/sql" {
			t.Errorf("internal/iam depends on %s", dep)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/decisions.json")
	var cases []goldenCase
	json.Unmarshal(b, &cases)
	for _, c := range cases {
		f.Add([]byte(c.Policy), c.Request.Action, c.Request.Resource)
	}
	f.Fuzz(func(t *testing.T, doc []byte, action, resource string) {
		for _, kind := range []iam.Kind{iam.Identity, iam.Trust, iam.Resource} {
			p, err := iam.ParseKind(doc, kind)
			if err != nil {
				continue
			}
			req := &iam.Request{Action: action, Resource: resource, Principal: &iam.Principal{Type: "AWS", ID: resource},
				Context: iam.NewContext(map[string][]string{"aws:username": {action}, "aws:sourceip": {"10.0.0.1"}})}
			p.Evaluate(req)
			p.Explain(req)
		}
	})
}

func BenchmarkEvaluate(b *testing.B) {
	p := iam.MustParse(`{"Version":"2012-10-17","Statement":[
		{"Sid":"Deny","Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"},
		{"Sid":"List","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::writ-demo","Condition":{"StringLike":{"s3:prefix":["private/${cognito-identity.amazonaws.com:sub}/*"]}}},
		{"Sid":"Team","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::writ-demo/teams/${aws:PrincipalTag/department}/*"},
		{"Sid":"TLS","Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}},
		{"Sid":"Own","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::writ-demo/private/${cognito-identity.amazonaws.com:sub}/*"}]}`)
	req := &iam.Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::writ-demo/private/us-east-1:1234/report.pdf",
		Context: iam.NewContext(map[string][]string{"cognito-identity.amazonaws.com:sub": {"us-east-1:1234"},
			"aws:PrincipalTag/department": {"engineering"}, "aws:SecureTransport": {"true"}})}
	if d := p.Evaluate(req); d.Effect != iam.Allow || d.Sid != "Own" {
		b.Fatalf("decision %+v", d)
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Evaluate(req)
	}
}
