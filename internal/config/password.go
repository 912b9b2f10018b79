package config

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Violation returns the first rule of the policy that pw breaks, worded as
// Cognito's InvalidPasswordException words it (never quoting pw), or ""
// when pw conforms: the pool's sign-ups and password changes are checked
// with it (userpool.CheckPasswordPolicy), and seed users' passwords.
func (pp PasswordPolicy) Violation(pw string) string {
	min := pp.MinLength
	if min == 0 {
		min = 8
	}
	if utf8.RuneCountInString(pw) < min {
		return fmt.Sprintf("Password not long enough (minimum %d characters)", min)
	}
	if utf8.RuneCountInString(pw) > 256 {
		return "Password too long"
	}
	var lower, upper, digit, symbol bool
	for _, r := range pw {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsPunct(r) || unicode.IsSymbol(r) || r == ' ':
			symbol = true
		}
	}
	switch {
	case pp.RequireLowercase && !lower:
		return "Password must have lowercase characters"
	case pp.RequireUppercase && !upper:
		return "Password must have uppercase characters"
	case pp.RequireDigits && !digit:
		return "Password must have numeric characters"
	case pp.RequireSymbols && !symbol:
		return "Password must have symbol characters"
	}
	return ""
}
