package iam

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// condition is one (operator, key) test of a Condition block. It is sealed:
// only this package's parser builds conditions, so none is invalid.
type condition struct {
	op        string // as written, for explanations
	family    family
	negated   bool
	ifExists  bool
	qualifier qualifier
	key       string // lower-cased
	keyRaw    string
	values    []template
	nums      []*big.Rat
	dates     []time.Time
	prefixes  []netip.Prefix
	bins      [][]byte
	nullWant  bool
	cmpOp     cmp
}

type family int

const (
	famStringEquals family = iota
	famStringEqualsIC
	famStringLike
	famNumeric
	famDate
	famBool
	famBinary
	famIP
	famArn
	famNull
)

type qualifier int

const (
	qualNone qualifier = iota
	qualForAll
	qualForAny
)

// cmp is the comparison of Numeric and Date operators.
type cmp int

const (
	cmpEq cmp = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

type opSpec struct {
	family  family
	negated bool
	cmp     cmp
}

var operators = map[string]opSpec{
	"StringEquals": {famStringEquals, false, 0}, "StringNotEquals": {famStringEquals, true, 0},
	"StringEqualsIgnoreCase": {famStringEqualsIC, false, 0}, "StringNotEqualsIgnoreCase": {famStringEqualsIC, true, 0},
	"StringLike": {famStringLike, false, 0}, "StringNotLike": {famStringLike, true, 0},
	"NumericEquals": {famNumeric, false, cmpEq}, "NumericNotEquals": {famNumeric, true, cmpEq},
	"NumericLessThan": {famNumeric, false, cmpLt}, "NumericLessThanEquals": {famNumeric, false, cmpLe},
	"NumericGreaterThan": {famNumeric, false, cmpGt}, "NumericGreaterThanEquals": {famNumeric, false, cmpGe},
	"DateEquals": {famDate, false, cmpEq}, "DateNotEquals": {famDate, true, cmpEq},
	"DateLessThan": {famDate, false, cmpLt}, "DateLessThanEquals": {famDate, false, cmpLe},
	"DateGreaterThan": {famDate, false, cmpGt}, "DateGreaterThanEquals": {famDate, false, cmpGe},
	"Bool": {famBool, false, 0}, "BinaryEquals": {famBinary, false, 0},
	"IpAddress": {famIP, false, 0}, "NotIpAddress": {famIP, true, 0},
	"ArnEquals": {famArn, false, 0}, "ArnLike": {famArn, false, 0}, "ArnNotEquals": {famArn, true, 0}, "ArnNotLike": {famArn, true, 0},
	"Null": {famNull, false, 0},
}

func scalarStrings(raw json.RawMessage, path string) ([]string, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, errorf(path, "bad value")
	}
	one := func(x any) (string, bool) {
		switch t := x.(type) {
		case string:
			return t, true
		case json.Number:
			return t.String(), true
		case bool:
			if t {
				return "true", true
			}
			return "false", true
		}
		return "", false
	}
	if s, ok := one(v); ok {
		return []string{s}, nil
	}
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return nil, errorf(path, "must be a string, number, boolean or a non-empty array of them")
	}
	out := make([]string, 0, len(arr))
	for i, x := range arr {
		s, ok := one(x)
		if !ok {
			return nil, errorf(fmt.Sprintf("%s[%d]", path, i), "must be a string, number or boolean")
		}
		out = append(out, s)
	}
	return out, nil
}

func parseConditions(raw json.RawMessage, path string, vars bool) ([]condition, error) {
	var ops map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ops); err != nil {
		return nil, errorf(path, "must be an object of operators")
	}
	names := make([]string, 0, len(ops))
	for k := range ops {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []condition
	for _, opName := range names {
		opPath := path + "." + opName
		base, qual := opName, qualNone
		if q, rest, ok := strings.Cut(opName, ":"); ok {
			switch q {
			case "ForAllValues":
				qual = qualForAll
			case "ForAnyValue":
				qual = qualForAny
			default:
				return nil, errorf(opPath, "unknown set qualifier %q", q)
			}
			base = rest
		}
		ifExists := false
		if b, ok := strings.CutSuffix(base, "IfExists"); ok && base != "IfExists" {
			base, ifExists = b, true
		}
		spec, ok := operators[base]
		if !ok {
			return nil, errorf(opPath, "unknown operator %q", opName)
		}
		if spec.family == famNull && (ifExists || qual != qualNone) {
			return nil, errorf(opPath, "Null takes no IfExists or set qualifier")
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(ops[opName], &keys); err != nil || len(keys) == 0 {
			return nil, errorf(opPath, "must be an object of condition keys")
		}
		knames := make([]string, 0, len(keys))
		for k := range keys {
			knames = append(knames, k)
		}
		sort.Strings(knames)
		for _, k := range knames {
			kp := opPath + "." + k
			vals, err := scalarStrings(keys[k], kp)
			if err != nil {
				return nil, err
			}
			c := condition{op: opName, family: spec.family, negated: spec.negated, ifExists: ifExists, qualifier: qual,
				key: strings.ToLower(k), keyRaw: k, cmpOp: spec.cmp}
			if err := c.compile(vals, vars, kp); err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func (c *condition) compile(vals []string, vars bool, path string) error {
	for i, v := range vals {
		vp := fmt.Sprintf("%s[%d]", path, i)
		switch c.family {
		case famStringEquals, famStringEqualsIC, famStringLike, famArn, famBool:
			t, err := parseTemplate(v, vars, vp)
			if err != nil {
				return err
			}
			if c.family == famBool && t.plain && v != "true" && v != "false" {
				return errorf(vp, `Bool takes "true" or "false"`)
			}
			c.values = append(c.values, t)
		case famNumeric:
			r, ok := new(big.Rat).SetString(v)
			if !ok {
				return errorf(vp, "not a number: %q", v)
			}
			c.nums = append(c.nums, r)
		case famDate:
			t, err := parseDate(v)
			if err != nil {
				return errorf(vp, "not a date (ISO 8601 or epoch seconds): %q", v)
			}
			c.dates = append(c.dates, t)
		case famBinary:
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return errorf(vp, "not base64")
			}
			c.bins = append(c.bins, b)
		case famIP:
			p, err := parsePrefix(v)
			if err != nil {
				return errorf(vp, "not an IP address or CIDR: %q", v)
			}
			c.prefixes = append(c.prefixes, p)
		case famNull:
			if v != "true" && v != "false" {
				return errorf(vp, `Null takes "true" or "false"`)
			}
			if len(vals) != 1 {
				return errorf(path, "Null takes one value")
			}
			c.nullWant = v == "true"
		}
	}
	return nil
}

func parseDate(s string) (time.Time, error) {
	if r, ok := new(big.Rat).SetString(s); ok && !strings.ContainsAny(s, "-:T") {
		f, _ := r.Float64()
		return time.Unix(int64(f), 0).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad date")
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// eval applies the condition to the request context.
func (c *condition) eval(ctx Context) bool {
	vals, found := ctx.Get(c.key)
	if c.family == famNull {
		present := found && len(vals) > 0
		return c.nullWant != present
	}
	if !found || len(vals) == 0 {
		switch {
		case c.qualifier == qualForAll:
			return true
		case c.qualifier == qualForAny:
			return false
		case c.ifExists:
			return true
		}
		return c.negated // missing key: positive false, negated true
	}
	switch c.qualifier {
	case qualForAll:
		for _, v := range vals {
			if !c.valueOK(ctx, v) {
				return false
			}
		}
		return true
	case qualForAny:
		for _, v := range vals {
			if c.valueOK(ctx, v) {
				return true
			}
		}
		return false
	}
	// Unqualified: a positive operator needs one request value to match one
	// policy value; a negated one needs no request value to match any.
	if c.negated {
		for _, v := range vals {
			if !c.valueOK(ctx, v) {
				return false
			}
		}
		return true
	}
	for _, v := range vals {
		if c.valueOK(ctx, v) {
			return true
		}
	}
	return false
}

// valueOK reports whether one request value satisfies the operator: for a
// positive operator it matches some policy value; for a negated one it
// matches none (multiple values of a negated operator are a NOR).
func (c *condition) valueOK(ctx Context, v string) bool {
	m := c.matchAny(ctx, v)
	if c.negated {
		return !m
	}
	return m
}

func (c *condition) matchAny(ctx Context, v string) bool {
	switch c.family {
	case famStringEquals, famStringEqualsIC, famStringLike, famArn, famBool:
		match := stringMatchers[c.family]
		for i := range c.values {
			if m, ok := c.values[i].resolveMatch(ctx, v, match, c.family == famStringLike || c.family == famArn); ok && m {
				return true
			}
		}
	case famNumeric:
		r, ok := new(big.Rat).SetString(v)
		if !ok {
			return false
		}
		for _, n := range c.nums {
			if compare(r.Cmp(n), c.cmpOp) {
				return true
			}
		}
	case famDate:
		t, err := parseDate(v)
		if err != nil {
			return false
		}
		for _, d := range c.dates {
			if compare(t.Compare(d), c.cmpOp) {
				return true
			}
		}
	case famBinary:
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			b = []byte(v)
		}
		for _, x := range c.bins {
			if bytes.Equal(x, b) {
				return true
			}
		}
	case famIP:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return false
		}
		for _, p := range c.prefixes {
			if p.Contains(a.Unmap()) || p.Contains(a) {
				return true
			}
		}
	}
	return false
}

var stringMatchers = map[family]func(pattern, value string) bool{
	famStringEquals:   func(p, v string) bool { return p == v },
	famBool:           func(p, v string) bool { return p == v },
	famStringEqualsIC: equalFold,
	famStringLike:     func(p, v string) bool { return globMatch(p, v, false) },
	famArn:            func(p, v string) bool { return arnMatch(p, v, true) },
}

func compare(c int, op cmp) bool {
	switch op {
	case cmpLt:
		return c < 0
	case cmpLe:
		return c <= 0
	case cmpGt:
		return c > 0
	case cmpGe:
		return c >= 0
	}
	return c == 0
}
