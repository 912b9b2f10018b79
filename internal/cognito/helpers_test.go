package cognito_test

import (
	"encoding/base64"
	"time"

	"github.com/writ-id/writ/internal/sts"
)

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func stsSession(role string) sts.Session {
	return sts.Session{Role: role, SessionName: "test", Subject: "x", Provider: "sts", Expires: time.Now().Add(time.Hour)}
}
