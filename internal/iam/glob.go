package iam

// Sentinels for the literal '*' and '?' that the ${*} and ${?} policy
// variables produce: they match only the character itself.
const (
	litStar     = 0x00
	litQuestion = 0x01
	// litChars holds both, for strings.ContainsAny.
	litChars = "\x00\x01"
)

// globMatch reports whether s matches pattern p, where '*' matches any run
// of characters and '?' exactly one. With fold, ASCII letters compare
// case-insensitively. It does not allocate.
func globMatch(p, s string, fold bool) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == litStar:
			if s[si] != '*' {
				goto backtrack
			}
			pi++
			si++
		case pi < len(p) && p[pi] == litQuestion:
			if s[si] != '?' {
				goto backtrack
			}
			pi++
			si++
		case pi < len(p) && (p[pi] == '?' || eqByte(p[pi], s[si], fold)):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		default:
			goto backtrack
		}
		continue
	backtrack:
		if star < 0 {
			return false
		}
		pi = star + 1
		mark++
		si = mark
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func eqByte(a, b byte, fold bool) bool {
	if a == b {
		return true
	}
	if !fold {
		return false
	}
	return lower(a) == lower(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold compares ASCII case-insensitively without allocating.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// arnMatch matches ARNs segment by segment (the first five colons separate
// segments; the sixth is the rest), so '*' never spans a colon of the first
// five segments.
func arnMatch(p, s string, like bool) bool {
	for seg := 0; seg < 5; seg++ {
		pi, si := indexByte(p, ':'), indexByte(s, ':')
		if pi < 0 || si < 0 {
			return false
		}
		if !segMatch(p[:pi], s[:si], like) {
			return false
		}
		p, s = p[pi+1:], s[si+1:]
	}
	return segMatch(p, s, like)
}

func segMatch(p, s string, like bool) bool {
	if like {
		return globMatch(p, s, false)
	}
	return p == s
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
