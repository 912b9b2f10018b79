package sqlstore

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// FuzzJSONString checks appendJSONString against encoding/json: what it
// writes decodes to the string, each byte of invalid UTF-8 as U+FFFD.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " backslash \ slash /`, "nul \x00 bell \x07 del \x7f", "zoë 名前 🚀",
		"\u2028\u2029", "bad \xff \xc3\x28 \xed\xa0\x80 end", "<script>&amp;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString([]byte("x"), s)
		if b[0] != 'x' {
			t.Fatalf("prefix lost: %q", b)
		}
		var got string
		if err := json.Unmarshal(b[1:], &got); err != nil {
			t.Fatalf("%q → %s: %v", s, b[1:], err)
		}
		if want := perRune(s); got != want {
			t.Fatalf("%q → %s → %q, want %q", s, b[1:], got, want)
		}
	})
}

// perRune is s with every byte that does not start a valid UTF-8 sequence
// replaced by U+FFFD, as encoding/json reads it.
func perRune(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

func TestSplitStatements(t *testing.T) {
	got := splitStatements("-- a comment; with a semicolon\nCREATE TABLE a (x TEXT DEFAULT 'a;b''c;');\n" +
		"CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql;\nSELECT 1 -- end; here")
	want := []string{"-- a comment; with a semicolon\nCREATE TABLE a (x TEXT DEFAULT 'a;b''c;')",
		"\nCREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql", "\nSELECT 1 -- end; here"}
	if !slices.Equal(got, want) {
		t.Fatalf("%q", got)
	}
}
