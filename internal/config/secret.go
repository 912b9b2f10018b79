package config

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
)

// Secret is a configuration value that must never be printed: a password,
// client secret, TOTP seed or key. It formats, logs and marshals redacted.
type Secret struct {
	v string
}

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{v: s} }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// Equal compares with other in constant time.
func (s Secret) Equal(other string) bool {
	return subtle.ConstantTimeCompare([]byte(s.v), []byte(other)) == 1
}

func (s Secret) redacted() string {
	if s.v == "" {
		return ""
	}
	return "[redacted]"
}

// String redacts the value.
func (s Secret) String() string { return s.redacted() }

// GoString redacts the value (%#v).
func (s Secret) GoString() string { return `config.Secret("` + s.redacted() + `")` }

// LogValue redacts the value in log/slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.redacted()) }

// MarshalJSON redacts the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.redacted()) }

// PolicyDoc is an IAM policy document, normalized to compact JSON. In the
// file it may be a YAML mapping or a JSON string.
type PolicyDoc struct {
	b []byte
}

// NewPolicyDoc wraps compact JSON.
func NewPolicyDoc(b []byte) PolicyDoc { return PolicyDoc{b: b} }

// Bytes returns the JSON document (nil when absent).
func (p PolicyDoc) Bytes() []byte { return p.b }

// IsZero reports whether no document was given.
func (p PolicyDoc) IsZero() bool { return len(p.b) == 0 }

// MarshalJSON writes the document itself.
func (p PolicyDoc) MarshalJSON() ([]byte, error) {
	if p.b == nil {
		return []byte("null"), nil
	}
	return p.b, nil
}

// PreviousMasterKeyValues returns the revealed previous master keys.
func (c *Config) PreviousMasterKeyValues() []string {
	out := make([]string, len(c.PreviousMasterKeys))
	for i, s := range c.PreviousMasterKeys {
		out[i] = s.Reveal()
	}
	return out
}
