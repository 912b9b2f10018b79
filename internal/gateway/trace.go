package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"github.com/writ-id/writ/internal/audit"
)

// requestID returns the caller's X-Request-Id when it is a reasonable id
// (1–128 visible ASCII characters), else a new one.
func requestID(r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 128 {
		return audit.NewRequestID()
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return audit.NewRequestID()
		}
	}
	return id
}

// traceparent returns the W3C traceparent for the upstream: the incoming
// trace id and sampled flag (when the header is valid) with a new span id
// for this hop, or a new, sampled trace.
func traceparent(in string) string {
	var b [55]byte
	copy(b[:], "00-")
	var ids [24]byte // 16 bytes of trace id (when new) and 8 of span id
	rand.Read(ids[:])
	flags := "-01"
	if validTraceparent(in) {
		copy(b[3:35], in[3:35])
		if c := in[54]; c == '0' || c == '2' || c == '4' || c == '6' || c == '8' || c == 'a' || c == 'c' || c == 'e' {
			flags = "-00" // the caller does not sample: neither do the hops after it
		}
	} else {
		hex.Encode(b[3:35], ids[:16])
	}
	b[35] = '-'
	hex.Encode(b[36:52], ids[16:])
	copy(b[52:], flags)
	return string(b[:])
}

// validTraceparent reports whether tp is a traceparent with a non-zero
// trace id and span id (W3C Trace Context §3.2): of version 00, or of a
// later version, whose first four fields are read as version 00's and
// which may go on after a dash (§4.3). Version ff is invalid.
func validTraceparent(tp string) bool {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || !isHex(tp[:2]) || tp[:2] == "ff" ||
		(tp[:2] == "00" && len(tp) != 55) || (len(tp) > 55 && tp[55] != '-') {
		return false
	}
	zeroTrace, zeroSpan := true, true
	for i := 3; i < 55; i++ {
		if i == 35 || i == 52 {
			continue
		}
		c := tp[i]
		if !isHex(tp[i : i+1]) {
			return false
		}
		if c != '0' {
			if i < 35 {
				zeroTrace = false
			} else if i < 52 {
				zeroSpan = false
			}
		}
	}
	return !zeroTrace && !zeroSpan
}

// isHex reports whether s is lower-case hex digits.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
