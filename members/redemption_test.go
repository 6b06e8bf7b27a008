package members_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/members"
)

func rawMember(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var id int64
	if err := db.Raw(`INSERT INTO members (created_at, updated_at) VALUES (now(), now()) RETURNING id`).Scan(&id).Error; err != nil {
		t.Fatal(err)
	}
	return id
}

// verify runs Verify in its own transaction, committing on success.
func verify(c *members.BurnConsent, db *gorm.DB, member, partner int64, code, pin string) error {
	return db.Transaction(func(tx *gorm.DB) error {
		return c.Verify(context.Background(), tx, member, partner, code, pin)
	})
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRedemptionCodeIsSingleUseAndExpires(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	clk := &clock{t: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)}
	c := members.NewBurnConsent(db, clk.now, members.DefaultConsentPolicy)
	m := rawMember(t, db)
	ctx := context.Background()

	rc, err := c.IssueCode(ctx, m)
	if err != nil || len(rc.Code) != 6 || !rc.ExpiresAt.Equal(clk.now().Add(5*time.Minute)) {
		t.Fatalf("IssueCode: %+v %v", rc, err)
	}
	if err := verify(c, db, m, 1, rc.Code, ""); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := verify(c, db, m, 1, rc.Code, ""); !errors.Is(err, members.ErrConsentInvalid) {
		t.Fatalf("second use: got %v, want ErrConsentInvalid", err)
	}

	rc2, _ := c.IssueCode(ctx, m)
	clk.add(5*time.Minute + time.Second)
	if err := verify(c, db, m, 1, rc2.Code, ""); !errors.Is(err, members.ErrConsentInvalid) {
		t.Fatalf("expired code: got %v, want ErrConsentInvalid", err)
	}
	// A code issued later revokes the earlier live one.
	a, _ := c.IssueCode(ctx, m)
	b, _ := c.IssueCode(ctx, m)
	if a.Code != b.Code {
		if err := verify(c, db, m, 1, a.Code, ""); !errors.Is(err, members.ErrConsentInvalid) {
			t.Fatalf("superseded code: got %v", err)
		}
	}
	if err := verify(c, db, m, 1, b.Code, ""); err != nil {
		t.Fatalf("newest code: %v", err)
	}
	if err := verify(c, db, m, 1, "", ""); !errors.Is(err, members.ErrConsentRequired) {
		t.Fatalf("no code: got %v", err)
	}
}

func TestRedemptionCodeSurvivesRolledBackBurn(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	c := members.NewBurnConsent(db, time.Now, members.DefaultConsentPolicy)
	m := rawMember(t, db)
	rc, _ := c.IssueCode(context.Background(), m)
	boom := errors.New("insufficient points")
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := c.Verify(context.Background(), tx, m, 1, rc.Code, ""); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if err := verify(c, db, m, 1, rc.Code, ""); err != nil {
		t.Fatalf("code after a rolled-back burn must still work: %v", err)
	}
}

func TestConcurrentUseOfOneCodeHasOneWinner(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	c := members.NewBurnConsent(db, time.Now, members.ConsentPolicy{CodeTTL: time.Minute, MaxFailures: 1000, Window: time.Minute})
	m := rawMember(t, db)
	rc, _ := c.IssueCode(context.Background(), m)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if verify(c, db, m, 1, rc.Code, "") == nil {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("one code accepted %d times, want once", wins.Load())
	}
}

func TestGuessingLocksAfterFailures(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	clk := &clock{t: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)}
	c := members.NewBurnConsent(db, clk.now, members.DefaultConsentPolicy)
	m := rawMember(t, db)
	rc, _ := c.IssueCode(context.Background(), m)
	wrong := "000000"
	if rc.Code == wrong {
		wrong = "111111"
	}
	for i := 0; i < 5; i++ {
		if err := verify(c, db, m, 9, wrong, ""); !errors.Is(err, members.ErrConsentInvalid) {
			t.Fatalf("guess %d: got %v", i, err)
		}
	}
	// Now even the right code is refused: the guesser cannot keep trying.
	if err := verify(c, db, m, 9, rc.Code, ""); !errors.Is(err, members.ErrConsentLocked) {
		t.Fatalf("after 5 failures: got %v, want ErrConsentLocked", err)
	}
	clk.add(16 * time.Minute)
	rc2, _ := c.IssueCode(context.Background(), m)
	if err := verify(c, db, m, 9, rc2.Code, ""); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestPIN(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	c := members.NewBurnConsent(db, time.Now, members.DefaultConsentPolicy)
	m := rawMember(t, db)
	if err := c.SetPIN(context.Background(), m, "12a4"); err == nil {
		t.Fatal("a PIN with a letter was accepted")
	}
	if err := verify(c, db, m, 1, "", "1234"); !errors.Is(err, members.ErrConsentInvalid) {
		t.Fatalf("PIN before one is set: got %v", err)
	}
	if err := c.SetPIN(context.Background(), m, "4821"); err != nil {
		t.Fatal(err)
	}
	if err := verify(c, db, m, 1, "", "4821"); err != nil {
		t.Fatalf("right PIN: %v", err)
	}
	if err := verify(c, db, m, 1, "", "4822"); !errors.Is(err, members.ErrConsentInvalid) {
		t.Fatalf("wrong PIN: got %v", err)
	}
}
