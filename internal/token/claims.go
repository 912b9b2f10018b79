package token

import (
	"encoding/json"
	"strings"
)

// Token uses.
const (
	UseID     = "id"
	UseAccess = "access"
)

// Audience is the aud claim: a string or an array of strings on the wire.
type Audience []string

// UnmarshalJSON accepts a string or an array.
func (a *Audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Audience{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	*a = ss
	return nil
}

// MarshalJSON writes a single audience as a string.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// Contains reports whether s is one of the audiences.
func (a Audience) Contains(s string) bool {
	for _, x := range a {
		if x == s {
			return true
		}
	}
	return false
}

// Actor is an RFC 8693 act (or may_act) claim: the party acting for the
// subject, with any earlier actor nested inside.
type Actor struct {
	Subject  string `json:"sub"`
	ClientID string `json:"client_id,omitempty"`
	Act      *Actor `json:"act,omitempty"`
}

// Chain returns the actors from the most recent to the first.
func (a *Actor) Chain() []string {
	var out []string
	for x := a; x != nil; x = x.Act {
		out = append(out, x.Subject)
	}
	return out
}

// Depth returns the number of nested actors.
func (a *Actor) Depth() int {
	n := 0
	for x := a; x != nil; x = x.Act {
		n++
	}
	return n
}

// Claims are the registered and writ/Cognito claims of a verified token.
// Raw holds every claim as decoded JSON.
type Claims struct {
	Issuer          string   `json:"iss"`
	Subject         string   `json:"sub"`
	Audience        Audience `json:"aud,omitempty"`
	Expiry          int64    `json:"exp"`
	NotBefore       int64    `json:"nbf,omitempty"`
	IssuedAt        int64    `json:"iat"`
	JTI             string   `json:"jti,omitempty"`
	TokenUse        string   `json:"token_use,omitempty"`
	ClientID        string   `json:"client_id,omitempty"`
	Scope           string   `json:"scope,omitempty"`
	Username        string   `json:"username,omitempty"`
	CognitoUsername string   `json:"cognito:username,omitempty"`
	Groups          []string `json:"cognito:groups,omitempty"`
	AuthTime        int64    `json:"auth_time,omitempty"`
	AMR             []string `json:"amr,omitempty"`
	ACR             string   `json:"acr,omitempty"`
	OriginJTI       string   `json:"origin_jti,omitempty"`
	EventID         string   `json:"event_id,omitempty"`
	Act             *Actor   `json:"act,omitempty"`
	MayAct          *Actor   `json:"may_act,omitempty"`

	Raw map[string]any `json:"-"`
}

// Scopes returns the space-separated scope claim as a slice.
func (c *Claims) Scopes() []string { return strings.Fields(c.Scope) }

// HasScope reports whether the token carries scope s.
func (c *Claims) HasScope(s string) bool {
	for _, x := range strings.Fields(c.Scope) {
		if x == s {
			return true
		}
	}
	return false
}

// User returns the username claim of either token use.
func (c *Claims) User() string {
	if c.Username != "" {
		return c.Username
	}
	return c.CognitoUsername
}
