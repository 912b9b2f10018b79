package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/writ-id/writ/internal/iam"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func cmdPolicy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "check" && args[0] != "simulate") {
		return fmt.Errorf("%w: policy check FILE | policy simulate --policy FILE --action A --resource R [--context key=value ...]", errUsage)
	}
	if args[0] == "check" {
		fs := newFlags("policy check", "writ policy check [--trust] FILE", stderr)
		trust := fs.Bool("trust", false, "the file is a role trust policy (Principal, no Resource)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: policy check needs one FILE", errUsage)
		}
		p, err := loadPolicy(fs.Arg(0), *trust)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: OK (version %s, %d statements)\n", fs.Arg(0), p.Version, len(p.Statements))
		return nil
	}
	fs := newFlags("policy simulate", "writ policy simulate --policy FILE [--session FILE] [--boundary FILE] --action A --resource R [--context key=value ...]", stderr)
	policy := fs.String("policy", "", "identity policy file (required)")
	session := fs.String("session", "", "session policy file")
	boundary := fs.String("boundary", "", "permissions boundary file")
	action := fs.String("action", "", "action, e.g. s3:GetObject (required)")
	resource := fs.String("resource", "", "resource ARN (required)")
	var ctxs multiFlag
	fs.Var(&ctxs, "context", "condition key=value (repeat; repeat a key for several values)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *policy == "" || *action == "" || *resource == "" {
		return fmt.Errorf("%w: policy simulate needs --policy, --action and --resource", errUsage)
	}
	sets := []iam.Set{}
	for _, f := range []struct{ name, file string }{{"identity", *policy}, {"session", *session}, {"boundary", *boundary}} {
		s := iam.Set{Name: f.name}
		if f.file != "" {
			p, err := loadPolicy(f.file, false)
			if err != nil {
				return err
			}
			s.Policies = []*iam.Policy{p}
		}
		sets = append(sets, s)
	}
	ctx := iam.MapContext{}
	for _, kv := range ctxs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("%w: --context %q is not key=value", errUsage, kv)
		}
		vs, _ := ctx.Get(strings.ToLower(k))
		ctx.Set(k, append(vs, v)...)
	}
	d := iam.Authorize(&iam.Request{Action: *action, Resource: *resource, Context: ctx}, sets[0], sets[1:]...)
	fmt.Fprintf(stdout, "%s\n%s\n", map[iam.Effect]string{iam.Allow: "ALLOW", iam.Deny: "DENY (explicit)", iam.NoMatch: "DENY (implicit)"}[d.Effect], d.Reason)
	if d.Effect != iam.Allow {
		return errDenied
	}
	return nil
}

var errDenied = fmt.Errorf("the request is denied")

func loadPolicy(path string, trust bool) (*iam.Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kind := iam.Identity
	if trust {
		kind = iam.Trust
	}
	return iam.ParseKind(b, kind)
}
