package clientip

import (
	"net/netip"
	"strings"
)

// ForwardedHeader is the standard header (RFC 7239) whose elements
// Trusted.FromForwarded reads.
const ForwardedHeader = "Forwarded"

// FromForwarded is RemoteAddr for the Forwarded header (RFC 7239): it
// returns the client address (host:port) of a request from peer with the
// Forwarded header lines lines, in the order received, and what the
// proxy that saw that client said of it.
//
// The lines are one comma-separated list of elements, each proxy's
// (for=...;proto=...;by=...), read as X-Forwarded-For's entries are: only
// from a trusted peer, from the right, past the for= of trusted proxies,
// to the first for= that is not one, the leftmost when every one is. An
// element reached whose for= is not an address (missing, "unknown", an
// obfuscated identifier such as "_hidden", garbage) ends the walk with
// peer unchanged, as does one that is not an element at all (an
// unterminated quoted string, a parameter given twice, a pair without
// "="). Empty elements (",,") are skipped, as RFC 9110 asks of a list.
//
// A for= value is quoted or not, and then read as an X-Forwarded-For
// entry: "192.0.2.60", "[2001:db8:cafe::17]:4711", and the bare forms RFC
// 7239 wants quoted or bracketed, which hand-written proxy configurations
// produce (for=192.0.2.60:4711, for=2001:db8::17). An obfuscated port
// ("[2001:db8::17]:_p1") leaves the address with port 0.
//
// Unlike X-Forwarded-Proto, Forwarded says which hop each proto= belongs
// to: the Forwarded returned carries the proto= ("http" or "https", else
// nothing) of the element the walk ended at, which the trusted proxy that
// received the client's request wrote, whether or not its for= named the
// client. An element that is not one gives no proto either.
//
// The elements are found from the right, each comma judged by what lies
// right of it, so that what a client wrote left of what the trusted
// proxies appended (an unterminated quoted string included, when a proxy
// appends to the client's own line) cannot move where their elements
// begin. The work is linear in the header's length, whatever it holds.
func (t Trusted) FromForwarded(peer string, lines []string) (string, Forwarded) {
	if t.Empty() || len(lines) == 0 {
		return peer, Forwarded{}
	}
	p, err := netip.ParseAddrPort(peer)
	if err != nil || !t.Contains(p.Addr()) {
		return peer, Forwarded{}
	}
	var last element // the leftmost trusted hop so far
	var lastAddr netip.AddrPort
	found := false
	for i := len(lines) - 1; i >= 0; i-- { // lines, then each line's elements, from the right
		line := lines[i]
		for line != "" {
			j, ok := lastComma(line)
			if !ok {
				return peer, Forwarded{}
			}
			if s := strings.Trim(line[j+1:], " \t"); s != "" {
				e, ok := parseElement(s)
				if !ok {
					return peer, Forwarded{}
				}
				a, ok := parseNode(e.node)
				if !ok {
					return peer, e.forwarded()
				}
				if !t.Contains(a.Addr()) {
					return a.String(), e.forwarded()
				}
				last, lastAddr, found = e, a, true
			}
			if j < 0 {
				break
			}
			line = line[:j]
		}
	}
	if !found { // no element at all: nothing said
		return peer, Forwarded{}
	}
	return lastAddr.String(), last.forwarded()
}

// element is what FromForwarded reads of one forwarded-element.
type element struct {
	node  string // the for= value, unquoted; "" when absent
	proto string // the proto= value, unquoted
}

func (e element) forwarded() Forwarded {
	if p := strings.ToLower(e.proto); p == "http" || p == "https" {
		return Forwarded{Proto: p}
	}
	return Forwarded{}
}

// lastComma returns the index of the last comma of s outside a quoted
// string, -1 when there is none, and false when a quoted string right of
// it has no opening quote. A quote met from the right closes a quoted
// string, and the nearest quote before it preceded by an even number of
// backslashes opens it: inside, a backslash escapes the next character,
// so an odd number of them escapes the quote. For a well-formed header
// this finds the same quoted strings as reading from the left.
func lastComma(s string) (int, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case ',':
			return i, true
		case '"':
			for i--; ; i-- {
				if i < 0 {
					return -1, false
				}
				if s[i] == '"' && backslashesBefore(s, i)%2 == 0 {
					break
				}
			}
		}
	}
	return -1, true
}

// backslashesBefore counts the backslashes immediately before s[i].
func backslashesBefore(s string, i int) int {
	n := 0
	for i--; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n
}

// parseElement parses one forwarded-element (RFC 7239 §4): name=value
// pairs separated by semicolons (empty pairs allowed, whitespace around
// a semicolon tolerated, none around "="), a name a token in any case, a
// value a quoted string or else any run of visible characters but quote,
// semicolon and comma. A parameter RFC 7239 defines may appear once;
// others are skipped.
func parseElement(s string) (element, bool) {
	var e element
	var seen [4]bool // for, proto, by, host
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return e, true
		}
		if s[0] == ';' {
			s = s[1:]
			continue
		}
		n := 0
		for n < len(s) && isTchar(s[n]) {
			n++
		}
		if n == 0 || n == len(s) || s[n] != '=' {
			return element{}, false
		}
		name := strings.ToLower(s[:n])
		s = s[n+1:]
		var val string
		if s != "" && s[0] == '"' {
			var ok bool
			if val, s, ok = unquote(s); !ok {
				return element{}, false
			}
		} else {
			m := 0
			for m < len(s) && s[m] > ' ' && s[m] < 0x7f && s[m] != '"' && s[m] != ';' && s[m] != ',' {
				m++
			}
			if m == 0 {
				return element{}, false
			}
			val, s = s[:m], s[m:]
		}
		if s = strings.TrimLeft(s, " \t"); s != "" && s[0] != ';' {
			return element{}, false
		}
		k := -1
		switch name {
		case "for":
			k, e.node = 0, val
		case "proto":
			k, e.proto = 1, val
		case "by":
			k = 2
		case "host":
			k = 3
		}
		if k >= 0 {
			if seen[k] {
				return element{}, false
			}
			seen[k] = true
		}
	}
}

// unquote reads the quoted string (RFC 9110 §5.6.4) that s starts with,
// returning its content with quoted pairs undone and the rest of s.
func unquote(s string) (val, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return b.String(), s[i+1:], true
		case c == '\\':
			if i++; i == len(s) || !isQdtext(s[i]) && s[i] != '"' && s[i] != '\\' {
				return "", "", false
			}
			b.WriteByte(s[i])
		case isQdtext(c):
			b.WriteByte(c)
		default:
			return "", "", false
		}
	}
	return "", "", false // unterminated
}

// isQdtext reports whether c may stand unescaped in a quoted string: tab,
// space and visible characters (obs-text included) but quote and
// backslash.
func isQdtext(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80
}

// isTchar reports whether c is a token character (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseNode reads a for= value (RFC 7239 §6) as an address: an
// X-Forwarded-For entry (see RemoteAddr), or an IPv4 or bracketed IPv6
// address with an obfuscated port, taken with port 0. "unknown" and an
// obfuscated node ("_hidden"), with or without a port, are not addresses.
func parseNode(s string) (netip.AddrPort, bool) {
	if a, ok := parseEntry(s); ok {
		return a, true
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 || !isObfuscated(s[i+1:]) {
		return netip.AddrPort{}, false
	}
	h := s[:i]
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		if a, err := netip.ParseAddr(h[1 : len(h)-1]); err == nil && a.Is6() && a.Zone() == "" {
			return netip.AddrPortFrom(a.Unmap(), 0), true
		}
		return netip.AddrPort{}, false
	}
	if a, err := netip.ParseAddr(h); err == nil && a.Is4() {
		return netip.AddrPortFrom(a, 0), true
	}
	return netip.AddrPort{}, false
}

// isObfuscated reports whether s is an obfuscated identifier (RFC 7239
// §6.3): "_" and letters, digits, ".", "_" or "-".
func isObfuscated(s string) bool {
	if len(s) < 2 || s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
