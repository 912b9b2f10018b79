// Package auditevent holds the rules for audit events services send to
// writ: what the ingest endpoint (internal/auditapi) accepts and what the
// SDK's audit client makes sure of before it sends, in one place.
package auditevent

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Limits of one event's text fields, in bytes.
const (
	MaxAction    = 128
	MaxReason    = 1024
	MaxRequestID = 128
	MaxSub       = 256
	MaxResource  = 1024
	MaxActor     = 256
	MaxActors    = 20
)

// Reserved are component names only writ itself writes under.
var Reserved = map[string]bool{"idp": true, "identity": true, "objects": true, "gateway": true, "ops": true, "audit": true, "writ": true}

var componentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckComponent reports what is wrong with a service's component name.
func CheckComponent(name string) error {
	switch {
	case name == "":
		return errors.New("component: required")
	case !componentRE.MatchString(name):
		return errors.New("component: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	case Reserved[strings.ToLower(name)]:
		return fmt.Errorf("component: %q is reserved for writ's own components", name)
	}
	return nil
}

// CheckText reports whether s is at most max bytes of UTF-8 without
// control characters (which would garble `writ audit query` tables and
// logs).
func CheckText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("longer than %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	if strings.IndexFunc(s, isControl) >= 0 {
		return errors.New("contains control characters")
	}
	return nil
}

// Clean makes s pass CheckText: invalid UTF-8 and control characters
// become spaces, and it is cut (at a character boundary) to max bytes.
func Clean(s string, max int) string {
	if CheckText(s, max) == nil {
		return s
	}
	s = strings.ToValidUTF8(s, " ")
	s = strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }
