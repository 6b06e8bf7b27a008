package access_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/coalitionhub/hub/access"
)

// TestLoadOrCreateSecretsKeyRace: processes (or serve and worker in one
// `hub all`) starting together all get the one key that ends up in the
// file, and none reads a half-written one.
func TestLoadOrCreateSecretsKeyRace(t *testing.T) {
	t.Parallel()
	for round := 0; round < 20; round++ {
		path := filepath.Join(t.TempDir(), "keys", "unsubscribe.key")
		const n = 8
		keys := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		var made int32
		var mu sync.Mutex
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, c, err := access.LoadOrCreateSecretsKey(path)
				keys[i], errs[i] = k, err
				if c {
					mu.Lock()
					made++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := access.ParseSecretsKey(string(b))
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if errs[i] != nil || !bytes.Equal(keys[i], want) {
				t.Fatalf("round %d, caller %d: key %x, err %v; want the file's key %x", round, i, keys[i], errs[i], want)
			}
		}
		if made != 1 {
			t.Fatalf("round %d: %d callers say they created the key; want 1", round, made)
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".key-*")); len(left) != 0 {
			t.Fatalf("round %d: temporary files left: %v", round, left)
		}
	}
}
