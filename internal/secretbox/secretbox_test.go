package secretbox

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

func TestSealOpenRoundTripAndTamper(t *testing.T) {
	t.Parallel()
	box, created, err := LoadOrCreate(filepath.Join(t.TempDir(), "k"))
	if err != nil || !created {
		t.Fatalf("LoadOrCreate: created=%v err=%v", created, err)
	}
	sealed, err := box.Seal([]byte("whsec_abc"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("whsec_abc")) {
		t.Fatal("sealed value contains the plain text")
	}
	plain, err := box.Open(sealed)
	if err != nil || string(plain) != "whsec_abc" {
		t.Fatalf("Open: %q %v", plain, err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := box.Open(sealed); !errors.Is(err, ErrOpen) {
		t.Fatalf("tampered value: got %v, want ErrOpen", err)
	}
	other, _, _ := LoadOrCreate(filepath.Join(t.TempDir(), "k2"))
	good, _ := box.Seal([]byte("x"))
	if _, err := other.Open(good); !errors.Is(err, ErrOpen) {
		t.Fatalf("other key: got %v, want ErrOpen", err)
	}
}

func TestLoadOrCreateReusesKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k")
	a, _, _ := LoadOrCreate(path)
	b, created, err := LoadOrCreate(path)
	if err != nil || created {
		t.Fatalf("second load: created=%v err=%v", created, err)
	}
	s, _ := a.Seal([]byte("same"))
	if p, err := b.Open(s); err != nil || string(p) != "same" {
		t.Fatalf("reloaded key cannot open: %v", err)
	}
}
