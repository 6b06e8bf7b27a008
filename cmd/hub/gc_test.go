package main

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	if got := tuneGC(func(string) string { return "" }); got != defaultGCPercent {
		t.Errorf("without GOGC: %d, want %d", got, defaultGCPercent)
	}
	if p := debug.SetGCPercent(100); p != defaultGCPercent {
		t.Errorf("without GOGC the runtime runs at %d, want %d", p, defaultGCPercent)
	}
	// With GOGC set the runtime's value (here 100) is left alone.
	if got := tuneGC(func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	}); got != 100 {
		t.Errorf("with GOGC=100: %d, want 100 left in force", got)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("with GOGC set the runtime runs at %d, want 100", p)
	}
}
