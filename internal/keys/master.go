package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeyFile is the file name of the master key under data_dir.
const MasterKeyFile = "master.key"

// MasterKey is the root secret. It cannot be compared with == and never
// prints its value.
type MasterKey struct {
	b    []byte
	prev []*MasterKey // earlier keys, still accepted (WithPrevious)
}

// WithPrevious returns m with earlier master keys that values made before
// a rotation were sealed or keyed with: Sealer opens them, DeriveAll lists
// their keys after m's.
func (m *MasterKey) WithPrevious(prev ...*MasterKey) *MasterKey {
	return &MasterKey{b: m.b, prev: append([]*MasterKey(nil), prev...)}
}

// DeriveAll returns the key Derive gives for label under m, then under
// each previous master key: make with the first, check with any.
func (m *MasterKey) DeriveAll(label string, n int) [][]byte {
	out := [][]byte{m.Derive(label, n)}
	for _, p := range m.prev {
		out = append(out, p.Derive(label, n))
	}
	return out
}

// ParseMasterKey decodes a base64 (standard or URL alphabet, padded or not)
// 32-byte key.
func ParseMasterKey(s string) (*MasterKey, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("keys: master key must be 32 bytes, got %d", len(b))
			}
			return &MasterKey{b: b}, nil
		}
	}
	return nil, errors.New("keys: master key is not base64")
}

// LoadMasterKeys is LoadOrCreateMasterKey with the previous master keys
// (base64, as configured) attached (WithPrevious).
func LoadMasterKeys(dataDir, configured string, previous []string) (*MasterKey, error) {
	m, err := LoadOrCreateMasterKey(dataDir, configured)
	if err != nil {
		return nil, err
	}
	if len(previous) == 0 {
		return m, nil
	}
	var prev []*MasterKey
	for i, p := range previous {
		k, err := ParseMasterKey(p)
		if err != nil {
			return nil, fmt.Errorf("previous_master_keys[%d]: %w", i, err)
		}
		prev = append(prev, k)
	}
	return m.WithPrevious(prev...), nil
}

// NewMasterKey returns a fresh random master key.
func NewMasterKey() *MasterKey {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return &MasterKey{b: b}
}

// LoadOrCreateMasterKey returns the configured key when configured is not
// empty; otherwise it reads dataDir/master.key, creating it (mode 0600) when
// absent.
func LoadOrCreateMasterKey(dataDir, configured string) (*MasterKey, error) {
	if configured != "" {
		return ParseMasterKey(configured)
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		return ParseMasterKey(string(b))
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keys: read master key: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	k := NewMasterKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process won the race
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("keys: read master key: %w", err)
		}
		return ParseMasterKey(string(b))
	}
	if err != nil {
		return nil, fmt.Errorf("keys: create master key: %w", err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(k.b) + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("keys: write master key: %w", err)
	}
	return k, nil
}

// String redacts the key.
func (m *MasterKey) String() string { return "[master key]" }

// LogValue redacts the key in log/slog output.
func (m *MasterKey) LogValue() slog.Value { return slog.StringValue("[master key]") }

// Derive returns n bytes derived from the master key for purpose label
// (HKDF-SHA256). Distinct labels give independent keys.
func (m *MasterKey) Derive(label string, n int) []byte {
	out, err := hkdf.Key(sha256.New, m.b, nil, "writ/"+label, n)
	if err != nil {
		panic(err)
	}
	return out
}

// Sealer encrypts small values with AES-256-GCM under a key derived from the
// master key. A sealed value starts with a format byte and the id of the
// key that sealed it, so that after a master-key rotation values sealed
// under a previous key (WithPrevious) still open.
type Sealer struct {
	keys []sealKey // the current key first
}

type sealKey struct {
	id   byte // first byte of SHA-256 of the derived key
	aead cipher.AEAD
}

const (
	sealV1 = 1 // format byte, nonce, ciphertext (before key ids)
	sealV2 = 2 // format byte, key id, nonce, ciphertext
)

// Sealer returns a Sealer for purpose label.
func (m *MasterKey) Sealer(label string) *Sealer {
	s := &Sealer{}
	for _, k := range m.DeriveAll("seal/"+label, 32) {
		block, err := aes.NewCipher(k)
		if err != nil {
			panic(err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			panic(err)
		}
		id := sha256.Sum256(k)
		s.keys = append(s.keys, sealKey{id: id[0], aead: aead})
	}
	return s
}

// Reseal returns sealed sealed again under the current key, and whether
// that changed anything (false when it already was under the current key).
func (s *Sealer) Reseal(sealed, ad []byte) ([]byte, bool, error) {
	// A key id is one byte: an earlier key may share the current one's,
	// so "already current" means the current key itself opens it.
	if len(sealed) >= 2 && sealed[0] == sealV2 && sealed[1] == s.keys[0].id {
		if _, err := s.keys[0].open(sealed[2:], ad); err == nil {
			return sealed, false, nil
		}
	}
	pt, err := s.Open(sealed, ad)
	if err != nil {
		return nil, false, err
	}
	return s.Seal(pt, ad), true, nil
}

// ErrUnseal reports a sealed value that is corrupt, forged or sealed under
// another key or associated data.
var ErrUnseal = errors.New("keys: cannot open sealed value")

// Seal encrypts plaintext bound to associated data ad, under the current
// key.
func (s *Sealer) Seal(plaintext, ad []byte) []byte {
	k := s.keys[0]
	ns := k.aead.NonceSize()
	out := make([]byte, 2+ns, 2+ns+len(plaintext)+k.aead.Overhead())
	out[0], out[1] = sealV2, k.id
	if _, err := io.ReadFull(rand.Reader, out[2:]); err != nil {
		panic(err)
	}
	return k.aead.Seal(out, out[2:], plaintext, ad)
}

// Open decrypts a value made by Seal with the same associated data, under
// whichever known key sealed it.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, ErrUnseal
	}
	head, id, any := 1, byte(0), true // sealV1: no key id, try every key
	switch sealed[0] {
	case sealV1:
	case sealV2:
		if len(sealed) < 2 {
			return nil, ErrUnseal
		}
		head, id, any = 2, sealed[1], false
	default:
		return nil, ErrUnseal
	}
	for _, k := range s.keys {
		if !any && k.id != id {
			continue
		}
		if pt, err := k.open(sealed[head:], ad); err == nil {
			return pt, nil
		}
	}
	return nil, ErrUnseal
}

// open decrypts nonce and ciphertext under k.
func (k sealKey) open(body, ad []byte) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(body) < ns+k.aead.Overhead() {
		return nil, ErrUnseal
	}
	return k.aead.Open(nil, body[:ns], body[ns:], ad)
}
