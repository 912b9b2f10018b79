package userpool

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/writ-id/writ/internal/config"
)

// Argon2Params are argon2id cost parameters. They are stored in every hash,
// so changing them affects new hashes only.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultArgon2 follows OWASP's argon2id recommendation (19 MiB, t=2, p=1).
var DefaultArgon2 = Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// HashPassword returns a PHC-format argon2id hash of pw.
func HashPassword(pw string, p Argon2Params) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// VerifyPassword reports whether pw matches hash, comparing in constant time.
func VerifyPassword(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false
	}
	if p.Memory > 1<<22 || p.Time > 64 || p.Threads == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// maxPassword is Cognito's limit on a password, in characters.
const maxPassword = 256

// passwordShape names the Cognito constraint a password breaks whatever
// the pool's policy (at most 256 characters, not bytes; no whitespace at
// either end), or returns "".
func passwordShape(pw string) string {
	if utf8.RuneCountInString(pw) > maxPassword {
		return "Member must have length less than or equal to 256"
	}
	if r, _ := utf8.DecodeRuneInString(pw); unicode.IsSpace(r) {
		return `Member must satisfy regular expression pattern: ^[\S]+.*[\S]+$`
	}
	if r, _ := utf8.DecodeLastRuneInString(pw); unicode.IsSpace(r) {
		return `Member must satisfy regular expression pattern: ^[\S]+.*[\S]+$`
	}
	return ""
}

// checkPasswordInput checks a password given in the request member field
// (password, proposedPassword, temporaryPassword) against passwordShape,
// with the InvalidParameterException Cognito's request validation answers
// before any policy applies. The pool's policy is checked separately
// (CheckPasswordPolicy).
func checkPasswordInput(field, pw string) error {
	if v := passwordShape(pw); v != "" {
		return newErr(CodeInvalidParameter, "1 validation error detected: Value at '"+field+"' failed to satisfy constraint: "+v)
	}
	return nil
}

// CheckPasswordPolicy returns an InvalidPasswordException describing the
// first rule pw breaks, or nil. A password longer than 256 characters or
// with whitespace at either end breaks it too (where no request member
// carries the password, as with NEW_PASSWORD in a challenge response).
func CheckPasswordPolicy(pp config.PasswordPolicy, pw string) error {
	v := pp.Violation(pw) // the rules seed passwords are checked by too
	if v == "" {
		v = passwordShape(pw)
	}
	if v != "" {
		return newErr(CodeInvalidPassword, "Password did not conform with policy: "+v)
	}
	return nil
}
