package iam

import (
	"fmt"
	"strings"
)

// Principal is who makes a request, for resource and trust policies.
type Principal struct {
	// Type is AWS, Federated, Service or CanonicalUser.
	Type string
	// ID is an ARN, a federated provider (e.g. cognito-identity.amazonaws.com
	// or an OIDC provider ARN), or a service name.
	ID string
	// Aliases are other names a policy may give the same principal: for a
	// role session its role's ARN, for any principal of an account the
	// account (arn:aws:iam::<account>:root, or the bare account id).
	Aliases []string
}

// Request is what is being decided.
type Request struct {
	Action    string
	Resource  string
	Principal *Principal
	Context   Context
}

// Decision is the outcome of an evaluation and what decided it.
type Decision struct {
	Effect Effect
	// Policy names the policy set that decided ("identity", "session", …).
	Policy    string
	Statement int // index of the deciding statement; -1 when none
	Sid       string
	// Reason explains the decision in words (filled by Authorize and
	// Explain; Evaluate leaves it empty to stay allocation-free).
	Reason string
	stmt   *Statement
}

func (d Decision) String() string {
	return d.Effect.String() + ": " + d.Reason
}

// Evaluate returns Deny when a Deny statement applies, Allow when an Allow
// statement applies (and none denies), NoMatch otherwise. It does not
// allocate; Explain (or Authorize) puts the decision into words.
func (p *Policy) Evaluate(req *Request) Decision {
	allow := -1
	for i, st := range p.Statements {
		if !st.applies(req) {
			continue
		}
		if st.Effect == Deny {
			return Decision{Effect: Deny, Statement: i, Sid: st.Sid, stmt: st}
		}
		if allow < 0 {
			allow = i
		}
	}
	if allow >= 0 {
		st := p.Statements[allow]
		return Decision{Effect: Allow, Statement: allow, Sid: st.Sid, stmt: st}
	}
	return Decision{Effect: NoMatch, Statement: -1}
}

// describe puts an Allow or Deny decision into words.
func (d *Decision) describe() string {
	switch {
	case d.stmt == nil:
		return "implicitly denied"
	case d.Effect == Deny:
		return "explicitly denied by " + d.stmt.name()
	}
	return "allowed by " + d.stmt.name()
}

func (st *Statement) name() string {
	if st.Sid != "" {
		return fmt.Sprintf("statement %d (%s)", st.Index, st.Sid)
	}
	return fmt.Sprintf("statement %d", st.Index)
}

func (st *Statement) applies(req *Request) bool {
	return st.matchAction(req.Action) && st.matchResource(req) && st.matchPrincipal(req.Principal) && st.matchConditions(req.Context) < 0
}

func (st *Statement) matchAction(action string) bool {
	m := false
	for _, a := range st.actions {
		if globMatch(a, action, true) {
			m = true
			break
		}
	}
	return m != st.notAction
}

func (st *Statement) matchResource(req *Request) bool {
	if st.resources == nil { // trust policies
		return true
	}
	m := false
	for i := range st.resources {
		if r, ok := st.resources[i].resolveMatch(req.Context, req.Resource, matchResource, true); ok && r {
			m = true
			break
		}
	}
	return m != st.notResource
}

func matchResource(pattern, resource string) bool {
	return pattern == "*" || globMatch(pattern, resource, false)
}

func (st *Statement) matchPrincipal(p *Principal) bool {
	if st.principals == nil {
		return true
	}
	m := false
	if _, any := st.principals["*"]; any {
		m = true
	} else if p != nil {
	match:
		for _, v := range st.principals[p.Type] {
			if v == "*" || globMatch(v, p.ID, false) {
				m = true
				break
			}
			for _, a := range p.Aliases {
				if globMatch(v, a, false) {
					m = true
					break match
				}
			}
		}
	}
	return m != st.notPrincipal
}

// matchConditions returns the index of the first failing condition, or -1.
func (st *Statement) matchConditions(ctx Context) int {
	if ctx == nil {
		ctx = MapContext(nil)
	}
	for i := range st.conds {
		if !st.conds[i].eval(ctx) {
			return i
		}
	}
	return -1
}

// Explain tells why p gives req the decision it does, naming for an
// implicit deny the closest statement and what it lacked.
func (p *Policy) Explain(req *Request) string {
	d := p.Evaluate(req)
	if d.Effect != NoMatch {
		return d.describe()
	}
	var parts []string
	for _, st := range p.Statements {
		if st.Effect != Allow {
			continue
		}
		var why string
		switch {
		case !st.matchAction(req.Action):
			why = "action " + req.Action + " does not match"
		case !st.matchResource(req):
			why = "resource " + req.Resource + " does not match" + st.unresolved(req.Context)
		case !st.matchPrincipal(req.Principal):
			why = "principal does not match"
		default:
			i := st.matchConditions(req.Context)
			c := st.conds[i]
			vals, found := req.Context.Get(c.key)
			if !found {
				why = fmt.Sprintf("condition %s on %s failed: the key is absent", c.op, c.keyRaw)
			} else {
				why = fmt.Sprintf("condition %s on %s failed for %q", c.op, c.keyRaw, vals)
			}
		}
		parts = append(parts, st.name()+": "+why)
	}
	if len(parts) == 0 {
		return "implicitly denied: the policy has no Allow statement"
	}
	return "implicitly denied: no statement allows " + req.Action + " on " + req.Resource + " (" + strings.Join(parts, "; ") + ")"
}

func (st *Statement) unresolved(ctx Context) string {
	for _, t := range st.resources {
		for _, p := range t.parts {
			if p.key == "" || p.hasDefault {
				continue
			}
			if vs, ok := ctx.Get(p.key); !ok || len(vs) == 0 {
				return " (policy variable ${" + p.key + "} has no value)"
			}
		}
	}
	return ""
}

// Set is the policies of one kind that apply to a request, e.g. a role's
// identity policies.
type Set struct {
	Name     string
	Policies []*Policy
}

// Authorize combines policy sets as IAM does for one account: an explicit
// Deny in any set denies; otherwise the request is allowed only if the
// identity set allows it and every other non-empty set (session policy,
// permissions boundary) allows it too.
func Authorize(req *Request, identity Set, limits ...Set) Decision {
	all := append([]Set{identity}, limits...)
	decisions := make([]Decision, len(all))
	for i, s := range all {
		d := Decision{Effect: NoMatch, Statement: -1, Policy: s.Name}
		for _, p := range s.Policies {
			pd := p.Evaluate(req)
			pd.Policy = s.Name
			if pd.Effect == Deny {
				pd.Reason = s.Name + " policy: " + pd.describe()
				return pd
			}
			if pd.Effect == Allow && d.Effect != Allow {
				d = pd
			}
		}
		decisions[i] = d
	}
	for i, d := range decisions {
		if d.Effect == Allow {
			continue
		}
		if i > 0 && len(all[i].Policies) == 0 {
			continue // an absent session policy or boundary does not limit
		}
		reason := all[i].Name + " policy: implicitly denied"
		for _, p := range all[i].Policies {
			reason = all[i].Name + " policy: " + p.Explain(req)
			break
		}
		return Decision{Effect: NoMatch, Statement: -1, Policy: all[i].Name, Reason: reason}
	}
	d := decisions[0]
	d.Reason = identity.Name + " policy: " + d.describe()
	return d
}
