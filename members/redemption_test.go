package members_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/validation"
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

// fastPIN gives the member pin hashed at bcrypt.MinCost, so that tests of
// counting do not wait on bcrypt's CPU (SetPIN hashes at the default cost).
func fastPIN(t *testing.T, db *gorm.DB, member int64, pin string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pin), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(`INSERT INTO member_pins (member_id, pin_hash, updated_at) VALUES (?, ?, now())`, member, string(hash)).Error; err != nil {
		t.Fatal(err)
	}
}

// verify runs Verify in its own transaction as a burn does: committed when
// the consent is given and when it is refused (the failure must count),
// rolled back otherwise.
func verify(c *members.BurnConsent, db *gorm.DB, member, partner int64, code, pin string) error {
	var refused error
	err := db.Transaction(func(tx *gorm.DB) error {
		err := c.Verify(context.Background(), tx, member, partner, code, pin)
		if errors.Is(err, members.ErrConsentInvalid) {
			refused = err
			return nil
		}
		return err
	})
	return cmp.Or(err, refused)
}

func TestRedemptionCodeIsSingleUseAndExpires(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	clk := clock.New(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC))
	c := members.NewBurnConsent(db, clk.Now, members.DefaultConsentPolicy)
	m := rawMember(t, db)
	ctx := context.Background()

	rc, err := c.IssueCode(ctx, m)
	if err != nil || len(rc.Code) != 6 || !rc.ExpiresAt.Equal(clk.Now().Add(5*time.Minute)) {
		t.Fatalf("IssueCode: %+v %v", rc, err)
	}
	if err := verify(c, db, m, 1, rc.Code, ""); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := verify(c, db, m, 1, rc.Code, ""); !errors.Is(err, members.ErrConsentInvalid) {
		t.Fatalf("second use: got %v, want ErrConsentInvalid", err)
	}

	rc2, _ := c.IssueCode(ctx, m)
	clk.Add(5*time.Minute + time.Second)
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
	clk := clock.New(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC))
	c := members.NewBurnConsent(db, clk.Now, members.DefaultConsentPolicy)
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
		clk.Add(time.Minute)
	}
	// Now even the right code is refused: the guesser cannot keep trying.
	// The lock lasts until the first failure (5 minutes ago) leaves the
	// 15-minute window.
	err := verify(c, db, m, 9, rc.Code, "")
	var le *members.LockedError
	if !errors.Is(err, members.ErrConsentLocked) || !errors.As(err, &le) {
		t.Fatalf("after 5 failures: got %v, want a *LockedError (ErrConsentLocked)", err)
	}
	if le.RetryAfter() != 10*time.Minute {
		t.Fatalf("the lock lasts %v more; want 10m0s", le.RetryAfter())
	}
	clk.Add(10*time.Minute - time.Second)
	if err := verify(c, db, m, 9, rc.Code, ""); !errors.As(err, &le) || le.RetryAfter() != time.Second {
		t.Fatalf("a second before the lock ends: got %v; want ErrConsentLocked for 1s more", err)
	}
	clk.Add(time.Second)
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

// A refused consent is written in the burn's own transaction: on a pool of
// one connection, held by that transaction, Verify still answers and the
// failure counts once the transaction commits.
func TestConsentFailureNeedsNoSecondConnection(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	c := members.NewBurnConsent(db, time.Now, members.DefaultConsentPolicy)
	m := rawMember(t, db)
	fastPIN(t, db, m, "4821")
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var refused error
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		refused = c.Verify(ctx, tx, m, 1, "", "0000")
		return nil
	})
	if err != nil || !errors.Is(refused, members.ErrConsentInvalid) {
		t.Fatalf("wrong PIN on a one-connection pool: %v (transaction %v); want ErrConsentInvalid", refused, err)
	}
	var n int64
	if err := db.WithContext(ctx).Raw(`SELECT count(*) FROM member_consent_failures WHERE member_id = ?`, m).Scan(&n).Error; err != nil || n != 1 {
		t.Fatalf("failures recorded: %d %v; want 1", n, err)
	}
}

// Concurrent checks of one member are counted one after the other: of many
// wrong PINs and the right one sent at once, exactly MaxFailures wrong ones
// are ErrConsentInvalid, the rest ErrConsentLocked, and the right one passes
// only if it came before the fifth failure.
func TestConcurrentGuessesAreCountedOneByOne(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	c := members.NewBurnConsent(db, time.Now, members.DefaultConsentPolicy)
	m := rawMember(t, db)
	fastPIN(t, db, m, "4821")
	const wrong = 30
	var invalid, locked, other atomic.Int32
	var rightErr error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i <= wrong; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if i == wrong {
				rightErr = verify(c, db, m, 1, "", "4821")
				return
			}
			switch err := verify(c, db, m, 1, "", fmt.Sprintf("%04d", 1000+i)); {
			case errors.Is(err, members.ErrConsentInvalid):
				invalid.Add(1)
			case errors.Is(err, members.ErrConsentLocked):
				locked.Add(1)
			default:
				t.Errorf("wrong PIN %d: %v", i, err)
				other.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	max := int32(members.DefaultConsentPolicy.MaxFailures)
	if invalid.Load() != max || locked.Load() != wrong-max {
		t.Fatalf("%d ErrConsentInvalid, %d ErrConsentLocked; want %d and %d", invalid.Load(), locked.Load(), max, wrong-max)
	}
	if rightErr != nil && !errors.Is(rightErr, members.ErrConsentLocked) {
		t.Fatalf("right PIN: %v; want nil (before the lockout) or ErrConsentLocked", rightErr)
	}
	if err := verify(c, db, m, 1, "", "4821"); !errors.Is(err, members.ErrConsentLocked) {
		t.Fatalf("right PIN afterwards: %v; want ErrConsentLocked", err)
	}
}

// A code or PIN that cannot be anyone's is bad input naming its field, and
// counts nothing.
func TestMalformedConsentCountsNothing(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	c := members.NewBurnConsent(db, time.Now, members.DefaultConsentPolicy)
	m := rawMember(t, db)
	for _, tc := range []struct{ code, pin, field string }{
		{"12ab", "", "redemption_code"}, {"12345", "", "redemption_code"}, {"", "12a4", "pin"}, {"", "123", "pin"}, {"", "1234567", "pin"},
	} {
		err := verify(c, db, m, 1, tc.code, tc.pin)
		var ve *validation.Error
		if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != tc.field {
			t.Errorf("code %q pin %q: %v; want a validation error naming %s", tc.code, tc.pin, err, tc.field)
		}
	}
	var n int64
	if err := db.Raw(`SELECT count(*) FROM member_consent_failures`).Scan(&n).Error; err != nil || n != 0 {
		t.Fatalf("failures recorded: %d %v; want none", n, err)
	}
}
