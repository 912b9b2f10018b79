package iam

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Effect is a statement's effect, or a decision.
type Effect int

const (
	// NoMatch is an implicit deny: nothing allowed the request.
	NoMatch Effect = iota
	Allow
	Deny
)

func (e Effect) String() string {
	switch e {
	case Allow:
		return "Allow"
	case Deny:
		return "Deny"
	}
	return "NoMatch"
}

// Policy is a parsed, valid policy document.
type Policy struct {
	Version    string
	ID         string
	Statements []*Statement
	raw        []byte
}

// Statement is one statement of a policy.
type Statement struct {
	Index        int
	Sid          string
	Effect       Effect
	actions      []string // lower-cased patterns
	notAction    bool
	resources    []template
	notResource  bool
	principals   map[string][]string // type -> values; "*" key for any
	notPrincipal bool
	conds        []condition
}

// Bytes returns the document as it was given.
func (p *Policy) Bytes() []byte { return p.raw }

// Resources returns the statement's Resource patterns as written (variables
// unresolved), or its NotResource patterns with not set; none for a trust
// policy.
func (st *Statement) Resources() (patterns []string, not bool) {
	for _, t := range st.resources {
		patterns = append(patterns, t.raw)
	}
	return patterns, st.notResource
}

// Error is a policy that could not be parsed, with the JSON path of the
// problem.
type Error struct {
	Path string
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return "iam: " + e.Msg
	}
	return "iam: " + e.Path + ": " + e.Msg
}

func errorf(path, format string, args ...any) *Error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Kind says which elements a policy must or may have.
type Kind int

const (
	// Identity policies (also session policies and boundaries) have
	// Resource and no Principal.
	Identity Kind = iota
	// Resource policies (bucket policies) have Resource and Principal.
	Resource
	// Trust policies (roles) have Principal and no Resource.
	Trust
)

// Parse parses an identity (or session, or boundary) policy.
func Parse(doc []byte) (*Policy, error) { return ParseKind(doc, Identity) }

// MustParse is Parse for tests and constants; it panics on error.
func MustParse(doc string) *Policy {
	p, err := Parse([]byte(doc))
	if err != nil {
		panic(err)
	}
	return p
}

// ParseKind parses a policy of the given kind.
func ParseKind(doc []byte, kind Kind) (*Policy, error) {
	if len(doc) > 128<<10 {
		return nil, errorf("", "policy is larger than 128 KiB")
	}
	var top map[string]json.RawMessage
	if err := strictUnmarshal(doc, &top); err != nil {
		return nil, errorf("", "not a JSON object: %v", err)
	}
	p := &Policy{Version: "2008-10-17", raw: append([]byte(nil), doc...)}
	for k, v := range top {
		switch k {
		case "Version":
			if err := json.Unmarshal(v, &p.Version); err != nil || (p.Version != "2012-10-17" && p.Version != "2008-10-17") {
				return nil, errorf("Version", `must be "2012-10-17" or "2008-10-17"`)
			}
		case "Id":
			if err := json.Unmarshal(v, &p.ID); err != nil {
				return nil, errorf("Id", "must be a string")
			}
		case "Statement":
		default:
			return nil, errorf(k, "unknown element")
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, errorf("Statement", "missing")
	}
	var list []json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		list = []json.RawMessage{raw}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errorf("Statement", "must be an object or an array of objects")
	}
	if len(list) == 0 {
		return nil, errorf("Statement", "empty")
	}
	vars := p.Version == "2012-10-17"
	for i, r := range list {
		st, err := parseStatement(r, fmt.Sprintf("Statement[%d]", i), kind, vars)
		if err != nil {
			return nil, err
		}
		st.Index = i
		p.Statements = append(p.Statements, st)
	}
	return p, nil
}

func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// stringList decodes a string or an array of strings.
func stringList(raw json.RawMessage, path string) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil || len(many) == 0 {
		return nil, errorf(path, "must be a string or a non-empty array of strings")
	}
	return many, nil
}

func parseStatement(raw json.RawMessage, path string, kind Kind, vars bool) (*Statement, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errorf(path, "must be an object")
	}
	st := &Statement{}
	for k := range m {
		switch k {
		case "Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal", "Condition":
		default:
			return nil, errorf(path+"."+k, "unknown element")
		}
	}
	if v, ok := m["Sid"]; ok {
		if err := json.Unmarshal(v, &st.Sid); err != nil {
			return nil, errorf(path+".Sid", "must be a string")
		}
	}
	var eff string
	json.Unmarshal(m["Effect"], &eff)
	switch eff {
	case "Allow":
		st.Effect = Allow
	case "Deny":
		st.Effect = Deny
	default:
		return nil, errorf(path+".Effect", `must be "Allow" or "Deny"`)
	}
	// Action / NotAction: exactly one.
	a, na := m["Action"], m["NotAction"]
	if (a == nil) == (na == nil) {
		return nil, errorf(path, "needs exactly one of Action and NotAction")
	}
	key := "Action"
	if na != nil {
		a, key, st.notAction = na, "NotAction", true
	}
	acts, err := stringList(a, path+"."+key)
	if err != nil {
		return nil, err
	}
	for i, x := range acts {
		if x != "*" && !strings.Contains(x, ":") {
			return nil, errorf(fmt.Sprintf("%s.%s[%d]", path, key, i), "action %q must be service:Name or *", x)
		}
		if strings.Contains(x, "${") {
			return nil, errorf(fmt.Sprintf("%s.%s[%d]", path, key, i), "policy variables are not allowed in actions")
		}
		st.actions = append(st.actions, strings.ToLower(x))
	}
	// Resource / NotResource.
	r, nr := m["Resource"], m["NotResource"]
	switch {
	case kind == Trust && (r != nil || nr != nil):
		return nil, errorf(path, "a trust policy has no Resource")
	case kind != Trust && (r == nil) == (nr == nil):
		return nil, errorf(path, "needs exactly one of Resource and NotResource")
	case kind != Trust:
		key := "Resource"
		if nr != nil {
			r, key, st.notResource = nr, "NotResource", true
		}
		rs, err := stringList(r, path+"."+key)
		if err != nil {
			return nil, err
		}
		for i, x := range rs {
			t, err := parseTemplate(x, vars, fmt.Sprintf("%s.%s[%d]", path, key, i))
			if err != nil {
				return nil, err
			}
			st.resources = append(st.resources, t)
		}
	}
	// Principal / NotPrincipal.
	pr, npr := m["Principal"], m["NotPrincipal"]
	switch {
	case kind == Identity && (pr != nil || npr != nil):
		return nil, errorf(path, "an identity policy has no Principal")
	case kind != Identity && (pr == nil) == (npr == nil):
		return nil, errorf(path, "needs exactly one of Principal and NotPrincipal")
	case kind != Identity:
		key := "Principal"
		if npr != nil {
			pr, key, st.notPrincipal = npr, "NotPrincipal", true
		}
		st.principals, err = parsePrincipal(pr, path+"."+key)
		if err != nil {
			return nil, err
		}
	}
	if c, ok := m["Condition"]; ok {
		st.conds, err = parseConditions(c, path+".Condition", vars)
		if err != nil {
			return nil, err
		}
	}
	return st, nil
}

var principalTypes = map[string]bool{"AWS": true, "Federated": true, "Service": true, "CanonicalUser": true}

func parsePrincipal(raw json.RawMessage, path string) (map[string][]string, error) {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		if star != "*" {
			return nil, errorf(path, `must be "*" or an object`)
		}
		return map[string][]string{"*": {"*"}}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) == 0 {
		return nil, errorf(path, `must be "*" or an object such as {"AWS": ...}`)
	}
	out := map[string][]string{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !principalTypes[k] {
			return nil, errorf(path+"."+k, "unknown principal type")
		}
		vs, err := stringList(m[k], path+"."+k)
		if err != nil {
			return nil, err
		}
		out[k] = vs
	}
	return out, nil
}
