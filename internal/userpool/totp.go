package userpool

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// TOTP parameters (RFC 6238 defaults, as authenticator apps expect).
const (
	totpStep   = 30 * time.Second
	totpDigits = 6
)

// NewTOTPSecret returns a random 160-bit secret in unpadded base32.
func NewTOTPSecret() string {
	b := make([]byte, 20)
	rand.Read(b)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
}

func decodeTOTPSecret(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(secret), " ", ""))
	s = strings.TrimRight(s, "=")
	return base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
}

// TOTPCode returns the code for secret at step counter.
func TOTPCode(secret []byte, counter uint64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1000000)
}

// TOTPNow returns the current code of a base32 secret (for tools and demos).
func TOTPNow(secret string, now time.Time) (string, error) {
	key, err := decodeTOTPSecret(secret)
	if err != nil {
		return "", fmt.Errorf("userpool: totp secret: %w", err)
	}
	return TOTPCode(key, uint64(now.Unix())/uint64(totpStep/time.Second)), nil
}

// matchTOTP returns the step at which code matches (within ±1 step of now).
func matchTOTP(secret []byte, code string, now time.Time) (uint64, bool) {
	if len(code) != totpDigits {
		return 0, false
	}
	cur := uint64(now.Unix()) / uint64(totpStep/time.Second)
	var found uint64
	ok := 0
	for _, c := range []uint64{cur - 1, cur, cur + 1} {
		if subtle.ConstantTimeCompare([]byte(TOTPCode(secret, c)), []byte(code)) == 1 && ok == 0 {
			found, ok = c, 1
		}
	}
	return found, ok == 1
}
