package iam

import (
	"strings"
	"sync"
)

// template is a string with policy variables: literal parts and ${key}
// references (key lower-cased), parsed once.
type template struct {
	raw   string
	parts []tpart
	plain bool // no variables: raw is the pattern
}

type tpart struct {
	lit        string
	key        string // "" for a literal part
	def        string
	hasDefault bool
}

func parseTemplate(s string, vars bool, path string) (template, error) {
	t := template{raw: s, plain: true}
	if !vars || !strings.Contains(s, "${") {
		return t, nil
	}
	t.plain = false
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			t.parts = append(t.parts, tpart{lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tpart{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return t, errorf(path, "unterminated policy variable in %q", s)
		}
		body := rest[i+2 : i+j]
		rest = rest[i+j+1:]
		switch body {
		case "*":
			t.parts = append(t.parts, tpart{lit: string(rune(litStar))})
			continue
		case "?":
			t.parts = append(t.parts, tpart{lit: string(rune(litQuestion))})
			continue
		case "$":
			t.parts = append(t.parts, tpart{lit: "$"})
			continue
		}
		key, def, hasDef := strings.Cut(body, ",")
		key = strings.TrimSpace(key)
		if key == "" || strings.ContainsAny(key, " '") {
			return t, errorf(path, "bad policy variable ${%s}", body)
		}
		p := tpart{key: strings.ToLower(key)}
		if hasDef {
			def = strings.TrimSpace(def)
			if len(def) < 2 || def[0] != '\'' || def[len(def)-1] != '\'' {
				return t, errorf(path, "a variable default must be quoted: ${%s, 'value'}", key)
			}
			p.def, p.hasDefault = def[1:len(def)-1], true
		}
		t.parts = append(t.parts, p)
	}
	return t, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// resolveMatch substitutes variables from ctx into a pooled buffer and
// returns match(pattern, value); ok is false when a variable has no value
// and no default (the pattern then matches nothing). With glob (match
// treats '*' and '?' as wildcards) a substituted value's '*' and '?' are
// literal: a value a caller chose (a session tag, a user attribute) must
// never widen what the policy grants. Without it, ${*} and ${?} are the
// plain characters. Passing the value and a plain function (not a
// closure) keeps this allocation-free.
func (t *template) resolveMatch(ctx Context, value string, match func(pattern, value string) bool, glob bool) (result, ok bool) {
	if t.plain {
		return match(t.raw, value), true
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	for _, p := range t.parts {
		if p.key == "" {
			if glob || len(p.lit) != 1 || (p.lit[0] != litStar && p.lit[0] != litQuestion) {
				b = append(b, p.lit...)
			} else if p.lit[0] == litStar {
				b = append(b, '*')
			} else {
				b = append(b, '?')
			}
			continue
		}
		vs, found := ctx.Get(p.key)
		switch {
		case found && len(vs) > 0 && glob:
			if strings.ContainsAny(vs[0], litChars) {
				// The bytes that stand for a literal '*' or '?' in a
				// pattern: a value holding them matches nothing.
				*bp = b
				bufPool.Put(bp)
				return false, true
			}
			b = appendLiteral(b, vs[0])
		case found && len(vs) > 0:
			b = append(b, vs[0]...)
		case p.hasDefault:
			// The policy's author wrote the default: its wildcards are
			// wildcards, as in the rest of the pattern.
			b = append(b, p.def...)
		default:
			*bp = b
			bufPool.Put(bp)
			return false, false
		}
	}
	r := match(unsafeString(b), value)
	*bp = b
	bufPool.Put(bp)
	return r, true
}

// appendLiteral appends v to a glob pattern with its '*' and '?' made
// literal (the sentinels globMatch matches only those characters with).
func appendLiteral(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '*':
			b = append(b, litStar)
		case '?':
			b = append(b, litQuestion)
		default:
			b = append(b, v[i])
		}
	}
	return b
}
