package benchutil

import (
	"crypto/rand"
	"encoding/hex"
)

// UUID returns a random (version 4) UUID: a request id or subject as
// callers make them, in no order.
func UUID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6], u[8] = u[6]&0x0f|0x40, u[8]&0x3f|0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
