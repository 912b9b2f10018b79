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
// trace id (when the header is valid) with a new span id for this hop, or
// a new trace.
func traceparent(in string) string {
	var b [55]byte
	copy(b[:], "00-")
	var ids [24]byte // 16 bytes of trace id (when new) and 8 of span id
	rand.Read(ids[:])
	if validTraceparent(in) {
		copy(b[3:35], in[3:35])
	} else {
		hex.Encode(b[3:35], ids[:16])
	}
	b[35] = '-'
	hex.Encode(b[36:52], ids[16:])
	copy(b[52:], "-01")
	return string(b[:])
}

// validTraceparent reports whether tp is a version-00 traceparent with a
// non-zero trace id and span id (W3C Trace Context §3.2).
func validTraceparent(tp string) bool {
	if len(tp) != 55 || tp[:3] != "00-" || tp[35] != '-' || tp[52] != '-' {
		return false
	}
	zeroTrace, zeroSpan := true, true
	for i := 3; i < 55; i++ {
		if i == 35 || i == 52 {
			continue
		}
		c := tp[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
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
