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
	b []byte
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
// master key. Sealed values start with a version byte so keys can rotate.
type Sealer struct {
	aead cipher.AEAD
}

const sealVersion = 1

// Sealer returns a Sealer for purpose label.
func (m *MasterKey) Sealer(label string) *Sealer {
	block, err := aes.NewCipher(m.Derive("seal/"+label, 32))
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &Sealer{aead: aead}
}

// ErrUnseal reports a sealed value that is corrupt, forged or sealed under
// another key or associated data.
var ErrUnseal = errors.New("keys: cannot open sealed value")

// Seal encrypts plaintext bound to associated data ad.
func (s *Sealer) Seal(plaintext, ad []byte) []byte {
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		panic(err)
	}
	return s.aead.Seal(out, out[1:], plaintext, ad)
}

// Open decrypts a value made by Seal with the same associated data.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrUnseal
	}
	pt, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], ad)
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}
