// Package userattr is the user-pool attribute schema that both the
// configuration (seed users) and the Cognito API check: which names exist
// and which values each takes, with Cognito's messages.
package userattr

import (
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits, as Cognito's.
const (
	MaxValue = 2048   // characters of a value
	MaxName  = 32 + 7 // characters of a name, "custom:" and 32
	MaxEmail = 256    // characters of an email address
)

var standard = map[string]bool{
	"name": true, "given_name": true, "family_name": true, "middle_name": true, "nickname": true,
	"preferred_username": true, "profile": true, "picture": true, "website": true, "gender": true,
	"birthdate": true, "zoneinfo": true, "locale": true, "phone_number": true, "address": true,
	"updated_at": true, "email": true,
}

// Standard reports whether name is one of the standard (OpenID Connect)
// attributes a user pool has, sub and the verification flags aside.
func Standard(name string) bool { return standard[name] }

// Verified reports whether name is a verification flag (email_verified,
// phone_number_verified): only an administrator, or a confirmation code,
// sets one.
func Verified(name string) bool { return name == "email_verified" || name == "phone_number_verified" }

// Custom reports whether name is a custom attribute's, custom:NAME.
func Custom(name string) bool { return strings.HasPrefix(name, "custom:") && name != "custom:" }

// CheckValue returns Cognito's message for a value that attribute name
// cannot take ("" when it can): a verification flag is true or false, an
// email address well-formed (ValidEmail), a phone number E.164, a
// birthdate YYYY-MM-DD, updated_at a number of seconds. An empty value
// (which clears the attribute) passes, but for the flags and email. The
// length limit (MaxValue) is the caller's to check.
func CheckValue(name, value string) string {
	switch {
	case Verified(name):
		if !strings.EqualFold(value, "true") && !strings.EqualFold(value, "false") {
			return "Invalid value for attribute " + name + ": must be true or false"
		}
	case name == "email" && !ValidEmail(value):
		return "Invalid email address format."
	case value == "": // clears the attribute
	case name == "phone_number" && !validPhone(value):
		return "Invalid phone number format."
	case name == "birthdate" && !validBirthdate(value):
		return "Invalid birthdate format: must be YYYY-MM-DD (0000 when the year is withheld)."
	case name == "updated_at" && !validSeconds(value):
		return "Invalid updated_at: must be a number of seconds since 1970-01-01T00:00:00Z."
	}
	return ""
}

// validPhone reports whether s is an E.164 number, as Cognito takes it:
// "+" and 1 to 15 digits.
func validPhone(s string) bool {
	d, ok := strings.CutPrefix(s, "+")
	return ok && len(d) >= 1 && len(d) <= 15 && strings.Trim(d, "0123456789") == ""
}

// validBirthdate reports whether s is an OpenID Connect birthdate:
// YYYY-MM-DD, the year 0000 when withheld.
func validBirthdate(s string) bool {
	if len(s) != 10 {
		return false
	}
	if strings.HasPrefix(s, "0000-") {
		s = "2000" + s[4:] // a leap year: 0000-02-29 stands
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// validSeconds reports whether s is a non-negative whole number of
// seconds (OpenID Connect's updated_at).
func validSeconds(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n >= 0
}

// ValidEmail reports whether s is a bare address, local@domain, as
// net/mail reads it: one '@', neither part empty, no display name,
// comment, angle brackets, space (Unicode's too) or invisible formatting
// character, at most MaxEmail characters.
func ValidEmail(s string) bool {
	local, domain, _ := strings.Cut(s, "@")
	if local == "" || domain == "" || strings.Count(s, "@") != 1 || utf8.RuneCountInString(s) > MaxEmail ||
		strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zs) }) {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s
}
