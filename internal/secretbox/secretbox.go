// Package secretbox seals secrets the hub must be able to read back (webhook
// signing secrets, token signing keys) with AES-256-GCM under one master key.
//
// The master key comes from HUB_SECRETS_KEY (base64 of 32 random bytes) in
// production. For local use, LoadOrCreate keeps one in a git-ignored file so
// `make run` works with no setup; that file is as secret as the database.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Box seals and opens secrets.
type Box struct{ aead cipher.AEAD }

// New builds a Box from a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secretbox: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// FromBase64 builds a Box from the base64 text of HUB_SECRETS_KEY.
func FromBase64(s string) (*Box, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("HUB_SECRETS_KEY is not base64: %w", err)
	}
	return New(key)
}

// LoadOrCreate reads a base64 key from path, creating it (mode 0600) first if
// it does not exist.
func LoadOrCreate(path string) (*Box, bool, error) {
	if b, err := os.ReadFile(path); err == nil {
		box, err := FromBase64(string(b))
		return box, false, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
		return nil, false, err
	}
	box, err := New(key)
	return box, true, err
}

// Seal encrypts plain; the nonce travels in front of the ciphertext.
func (b *Box) Seal(plain []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return b.aead.Seal(nonce, nonce, plain, nil), nil
}

// ErrOpen means the sealed value was tampered with or sealed under another key.
var ErrOpen = errors.New("secretbox: cannot open sealed value")

// Open decrypts a value made by Seal.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
