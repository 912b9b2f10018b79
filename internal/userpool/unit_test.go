package userpool

import (
	"strings"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/config"
)

// RFC 6238 Appendix B (SHA-1), last six digits of the eight-digit values.
func TestTOTPVectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, v := range []struct {
		t    int64
		code string
	}{{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"}, {1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"}} {
		if got := TOTPCode(secret, uint64(v.t/30)); got != v.code {
			t.Errorf("T=%d: got %s want %s", v.t, got, v.code)
		}
	}
}

func TestMatchTOTPWindow(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1111111111, 0)
	step := uint64(now.Unix() / 30)
	for _, d := range []int64{-1, 0, 1} {
		code := TOTPCode(secret, uint64(int64(step)+d))
		got, ok := matchTOTP(secret, code, now)
		if !ok || got != uint64(int64(step)+d) {
			t.Errorf("offset %d: ok=%v step=%d", d, ok, got)
		}
	}
	for _, d := range []int64{-3, 2, 5} {
		if _, ok := matchTOTP(secret, TOTPCode(secret, uint64(int64(step)+d)), now); ok {
			t.Errorf("offset %d accepted", d)
		}
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef"} {
		if _, ok := matchTOTP(secret, bad, now); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	if c, err := TOTPNow("JBSWY3DPEHPK3PXP", now); err != nil || len(c) != 6 {
		t.Errorf("TOTPNow: %q %v", c, err)
	}
	if _, err := TOTPNow("not base32!", now); err == nil {
		t.Error("TOTPNow accepted a bad secret")
	}
}

func TestPasswordHash(t *testing.T) {
	p := Argon2Params{Memory: 64, Time: 1, Threads: 1}
	h := HashPassword("Correct-Horse-1", p)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash format %q", h)
	}
	if h == HashPassword("Correct-Horse-1", p) {
		t.Error("two hashes of one password are equal (no salt?)")
	}
	if !VerifyPassword(h, "Correct-Horse-1") || VerifyPassword(h, "Correct-Horse-2") || VerifyPassword(h, "") {
		t.Error("verify")
	}
	for _, bad := range []string{"", "$argon2id$", "$bcrypt$v=19$m=64,t=1,p=1$AAAA$AAAA", strings.Replace(h, "m=64", "m=99999999", 1)} {
		if VerifyPassword(bad, "Correct-Horse-1") {
			t.Errorf("malformed hash %q verified", bad)
		}
	}
}

func TestPasswordPolicy(t *testing.T) {
	pp := config.PasswordPolicy{MinLength: 10, RequireLowercase: true, RequireUppercase: true, RequireDigits: true, RequireSymbols: true}
	for pw, ok := range map[string]bool{
		"Aa1!aaaaaa": true, "Aa1!aaaa": false, "aa1!aaaaaa": false, "AA1!AAAAAA": false, "Aa!aaaaaaa": false, "Aa1aaaaaaa": false,
	} {
		err := CheckPasswordPolicy(pp, pw)
		if (err == nil) != ok {
			t.Errorf("%q: %v", pw, err)
		}
		if err != nil && err.(*Error).Code != CodeInvalidPassword {
			t.Errorf("%q: code %s", pw, err.(*Error).Code)
		}
	}
}

func TestSecretHashMatchesCognito(t *testing.T) {
	// base64(HMAC-SHA256(key=secret, msg=username+clientId)), as the AWS docs define it.
	// Expected value computed independently (Python hmac).
	if got := SecretHash("secret", "alice", "client"); got != "RTsve+FQ659UKyESgvLg9GYmZEL+QjzQsW/OjL77/b0=" {
		t.Errorf("SECRET_HASH = %s", got)
	}
}

func TestMaskEmail(t *testing.T) {
	if got := maskEmail("carol@example.com"); got != "c***@e***" {
		t.Errorf("got %q", got)
	}
}

func BenchmarkArgon2idDefault(b *testing.B) {
	h := HashPassword("Bob-Passw0rd1", DefaultArgon2)
	for b.Loop() {
		VerifyPassword(h, "Bob-Passw0rd1")
	}
}
