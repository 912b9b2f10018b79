package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FieldError is one problem in a configuration, at a YAML path.
type FieldError struct {
	Path string
	Line int
	Msg  string
}

func (e FieldError) Error() string {
	s := e.Path + ": " + e.Msg
	if e.Path == "" {
		s = e.Msg
	}
	if e.Line > 0 {
		s += fmt.Sprintf(" (line %d)", e.Line)
	}
	return s
}

// Errors is every problem found in a configuration.
type Errors struct {
	File   string
	Fields []FieldError
}

func (e *Errors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config: %s: %d problem(s):", e.File, len(e.Fields))
	for _, f := range e.Fields {
		b.WriteString("\n  ")
		b.WriteString(f.Error())
	}
	return b.String()
}

type decoder struct {
	errs []FieldError
	// lines records the line of each decoded path, for later validation
	// errors.
	lines map[string]int
	// written records the paths of the durations, integers and lists the
	// file gives a value (not null, and decoded without error), so that a
	// value written as 0 (or []) is told from one left out: only a
	// left-out value gets its default.
	written map[string]bool
}

func (d *decoder) errorf(path string, n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, FieldError{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

var (
	durationType  = reflect.TypeOf(time.Duration(0))
	secretType    = reflect.TypeOf(Secret{})
	policyDocType = reflect.TypeOf(PolicyDoc{})
)

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode sets v from n, recording every problem under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	d.lines[path] = n.Line
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && v.Kind() != reflect.Pointer {
		return // absent value: keep the zero value
	}
	switch v.Type() {
	case durationType:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		dur, err := parseDuration(s)
		if err != nil {
			d.errorf(path, n, "want a duration (e.g. 15m, 1h, 30d), got %s", kindName(n))
			return
		}
		v.SetInt(int64(dur))
		d.written[path] = true
		return
	case secretType:
		if s, ok := d.scalar(n, path); ok {
			v.Set(reflect.ValueOf(Secret{v: s}))
		}
		return
	case policyDocType:
		d.policy(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Tag == "!!null" {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.errorf(path, n, "want a mapping, got %s", kindName(n))
			return
		}
		fields := map[string]int{}
		var names []string
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			fields[tag] = i
			names = append(names, tag)
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := k.Value
			p := join(path, key)
			if seen[key] {
				d.errorf(p, k, "duplicate key")
				continue
			}
			seen[key] = true
			idx, ok := fields[key]
			if !ok {
				msg := fmt.Sprintf("unknown key %q", key)
				if near := nearest(key, names); near != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", near)
				}
				d.errorf(p, k, "%s", msg)
				continue
			}
			d.decode(val, v.Field(idx), p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(path, n, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
		d.written[path] = true
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(path, n, "want a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			kv := reflect.New(v.Type().Key()).Elem()
			d.decode(k, kv, p)
			if m.MapIndex(kv).IsValid() {
				d.errorf(p, k, "duplicate key")
				continue
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, ev, p)
			m.SetMapIndex(kv, ev)
		}
		v.Set(m)
	case reflect.String:
		if s, ok := d.scalar(n, path); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			d.errorf(path, n, "want true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			d.errorf(path, n, "want an integer, got %s", kindName(n))
			return
		}
		v.SetInt(i)
		d.written[path] = true
	case reflect.Float64:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.errorf(path, n, "want a finite number, got %s", kindName(n))
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(path, n, "unsupported field type %s", v.Type())
	}
}

// scalar returns a scalar's value with env:NAME resolved.
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(path, n, "want a single value, got %s", kindName(n))
		return "", false
	}
	s := n.Value
	if name, ok := strings.CutPrefix(s, "env:"); ok {
		v, set := os.LookupEnv(name)
		if !set {
			d.errorf(path, n, "environment variable %s is not set", name)
			return "", false
		}
		return v, true
	}
	return s, true
}

func (d *decoder) policy(n *yaml.Node, v reflect.Value, path string) {
	var raw []byte
	switch n.Kind {
	case yaml.ScalarNode:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		if !json.Valid([]byte(s)) {
			d.errorf(path, n, "policy document is not valid JSON")
			return
		}
		raw = []byte(s)
	case yaml.MappingNode:
		var m any
		if err := n.Decode(&m); err != nil {
			d.errorf(path, n, "policy document: %v", err)
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			d.errorf(path, n, "policy document: %v", err)
			return
		}
		raw = b
	default:
		d.errorf(path, n, "policy document must be a mapping or a JSON string")
		return
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		d.errorf(path, n, "policy document: %v", err)
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		d.errorf(path, n, "policy document must be a JSON object")
		return
	}
	if _, ok := doc["Statement"]; !ok {
		d.errorf(path, n, "policy document has no Statement")
		return
	}
	v.Set(reflect.ValueOf(PolicyDoc{b: buf.Bytes()}))
}

// kindName says what kind of value n holds, for type errors. It never
// quotes a scalar's value, which may be a secret in the wrong place (or
// read from the environment).
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "true or false"
		case "!!null":
			return "nothing"
		}
		return "a string"
	}
	return "something else"
}

// parseDuration accepts Go durations plus a whole-day suffix ("30d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad duration")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration")
	}
	return d, nil
}

// nearest suggests a known key within a small edit distance.
func nearest(key string, names []string) string {
	best, bestD := "", 3
	sort.Strings(names)
	for _, n := range names {
		if d := editDistance(key, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev = cur
	}
	return prev[len(b)]
}
