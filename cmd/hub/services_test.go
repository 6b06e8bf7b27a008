package main

import (
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/config"
	"github.com/coalitionhub/hub/points"
)

// The hub's group commit takes its batch size and wait from the settings and
// keeps the default number of batches in flight: with one, a batch would
// wait for the one before it to commit and the hub would post earns one
// batch at a time while the CPU stands idle.
func TestGroupCommitFromSettings(t *testing.T) {
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"HUB_EARN_BATCH_MAX": "32", "HUB_EARN_BATCH_WAIT": "3ms"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	g := groupCommit(cfg)
	if g.MaxItems != 32 || g.Wait != 3*time.Millisecond {
		t.Errorf("group commit %+v; want MaxItems 32 and Wait 3ms from the settings", g)
	}
	if want := points.DefaultGroupCommit.InFlight; g.InFlight != want || want < 2 {
		t.Errorf("group commit keeps %d batches in flight; want the default %d (at least 2)", g.InFlight, want)
	}
	cfg, err = config.Load(func(k string) string { return map[string]string{"HUB_EARN_BATCH_IN_FLIGHT": "3"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if g := groupCommit(cfg); g.InFlight != 3 {
		t.Errorf("HUB_EARN_BATCH_IN_FLIGHT=3 gave %d batches in flight", g.InFlight)
	}
	for _, bad := range []string{"0", "17", "two"} {
		if _, err := config.Load(func(k string) string { return map[string]string{"HUB_EARN_BATCH_IN_FLIGHT": bad}[k] }); err == nil {
			t.Errorf("HUB_EARN_BATCH_IN_FLIGHT=%s accepted", bad)
		}
	}
}
