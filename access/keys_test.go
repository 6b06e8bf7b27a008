package access_test

import (
	"bytes"
	"path/filepath"
	"sync"
	"testing"

	"github.com/coalitionhub/hub/access"
)

// Processes starting side by side (serve and worker) create the local key
// file at once: every one of them gets the same whole key, none an empty
// file, and exactly one reports that it created it.
func TestLoadOrCreateSecretsKeyConcurrently(t *testing.T) {
	t.Parallel()
	for round := range 100 {
		path := filepath.Join(t.TempDir(), "keys", "secrets.key")
		const n = 16
		keys := make([][]byte, n)
		created := make([]bool, n)
		errs := make([]error, n)
		var start, done sync.WaitGroup
		start.Add(1)
		for i := range n {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				keys[i], created[i], errs[i] = access.LoadOrCreateSecretsKey(path)
			}()
		}
		start.Done()
		done.Wait()
		creators := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d, caller %d: %v", round, i, errs[i])
			}
			if len(keys[i]) != 32 || !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("round %d: caller %d got another key (%d bytes)", round, i, len(keys[i]))
			}
			if created[i] {
				creators++
			}
		}
		if creators != 1 {
			t.Fatalf("round %d: %d callers say they created the key, want 1", round, creators)
		}
		again, made, err := access.LoadOrCreateSecretsKey(path)
		if err != nil || made || !bytes.Equal(again, keys[0]) {
			t.Fatalf("round %d: reading the key again: %v, created %v, same %v", round, err, made, bytes.Equal(again, keys[0]))
		}
	}
}
