package sts

import (
	"context"
	"errors"

	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/sigv4"
)

// Source resolves access keys for the SigV4 verifier: long-term keys of
// the configured IAM users (Principal *config.IAMUser) and sealed temporary
// credentials (Principal *Session), with no store lookup.
type Source struct {
	STS   *Service
	Users []config.IAMUser
}

// Lookup implements sigv4.CredentialSource.
func (s Source) Lookup(ctx context.Context, ak, tok string) (sigv4.Credentials, error) {
	if len(ak) > 4 && ak[:4] == "ASIA" {
		sess, err := s.STS.Open(ak, tok)
		switch {
		case errors.Is(err, ErrExpired):
			return sigv4.Credentials{}, &sigv4.Error{Code: "ExpiredToken", Message: "The provided token has expired."}
		case err != nil:
			return sigv4.Credentials{}, &sigv4.Error{Code: "InvalidToken", Message: "The provided token is malformed or otherwise invalid."}
		}
		return sigv4.Credentials{AccessKeyID: ak, Secret: sess.Secret, SessionToken: tok, Principal: &sess}, nil
	}
	for i := range s.Users {
		if u := &s.Users[i]; u.AccessKeyID == ak {
			if tok != "" {
				// A long-term key has no session: a token with it is not
				// one of its, whatever the token is (AWS refuses it too).
				return sigv4.Credentials{}, &sigv4.Error{Code: "InvalidToken", Message: "The provided token is malformed or otherwise invalid."}
			}
			return sigv4.Credentials{AccessKeyID: ak, Secret: u.SecretAccessKey.Reveal(), Principal: u}, nil
		}
	}
	return sigv4.Credentials{}, &sigv4.Error{Code: "InvalidAccessKeyId", Message: "The AWS Access Key Id you provided does not exist in our records."}
}
