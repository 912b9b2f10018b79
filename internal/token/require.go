package token

import "errors"

// Errors of Requirements.Check.
var (
	ErrTokenUse = errors.New("token: token_use not accepted")
	ErrAudience = errors.New("token: no valid audience")
	ErrScope    = errors.New("token: a required scope is missing")
)

// Requirements are what a resource demands of a verified token, with API
// Gateway's JWT-authorizer semantics.
type Requirements struct {
	// TokenUse lists accepted token_use values (empty: any).
	TokenUse []string
	// Audiences are matched against aud, or against client_id when the
	// token has no aud (empty: any).
	Audiences []string
	// Scopes must all be present.
	Scopes []string
}

// Check applies the requirements to verified claims.
func (q *Requirements) Check(c *Claims) error {
	if len(q.TokenUse) > 0 && !contains(q.TokenUse, c.TokenUse) {
		return ErrTokenUse
	}
	if len(q.Audiences) > 0 {
		ok := false
		if len(c.Audience) > 0 {
			for _, a := range c.Audience {
				ok = ok || contains(q.Audiences, a)
			}
		} else {
			ok = contains(q.Audiences, c.ClientID)
		}
		if !ok {
			return ErrAudience
		}
	}
	for _, s := range q.Scopes {
		if !c.HasScope(s) {
			return ErrScope
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
