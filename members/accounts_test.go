package members_test

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"sync"
	"testing"

	"github.com/coalitionhub/hub/members"
)

var tokenRE = regexp.MustCompile(`"token":\s*"([A-Za-z0-9_-]{43})"`)

// queuedTokens reads the link tokens of the mail queued so far (the data of
// unsent outbound_mail rows), oldest first.
func queuedTokens(t *testing.T, e env) []string {
	t.Helper()
	var data []string
	if err := e.db.Raw(`SELECT data::text FROM outbound_mail ORDER BY id`).Scan(&data).Error; err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range data {
		if m := tokenRE.FindStringSubmatch(d); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// Two sign-ups of one address whose links are used at the same moment make
// one member: the other link claims it. A member is never enrolled twice.
func TestConcurrentSignupLinksMakeOneMember(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := e.svc.Signup(ctx, members.SignupRequest{Email: "twin@example.test"}); err != nil {
			t.Fatal(err)
		}
	}
	toks := queuedTokens(t, e)
	if len(toks) != 2 {
		t.Fatalf("%d links queued, want 2", len(toks))
	}
	// The second sign-up revoked the first link; revive it to race both.
	if err := e.db.Exec(`UPDATE member_links SET revoked_at = NULL`).Error; err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	res := make([]members.Redeemed, 2)
	errs := make([]error, 2)
	for i, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = e.svc.UseLink(ctx, tok, "a twin's long passphrase")
		}()
	}
	wg.Wait()
	var n int64
	e.db.Raw(`SELECT count(*) FROM members`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d members after two concurrent sign-ups of one address, want 1 (results %+v, errors %v)", n, res, errs)
	}
	for i, err := range errs {
		// The loser either claims the member the winner made, or finds its
		// link revoked by the winner's password.
		if err != nil && !errors.Is(err, members.ErrLinkUsed) {
			t.Fatalf("use link %d: %v", i, err)
		}
	}
}

// A link's token is refused when malformed, and a link cannot be probed:
// Link and UseLink answer the same validation error for any unknown token.
func TestLinkTokensAreChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for _, tok := range []string{"", "short", url.QueryEscape("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")} {
		if _, err := e.svc.Link(ctx, tok); err == nil {
			t.Fatalf("Link(%q) succeeded", tok)
		}
		if _, err := e.svc.UseLink(ctx, tok, "a long enough phrase"); err == nil {
			t.Fatalf("UseLink(%q) succeeded", tok)
		}
	}
}
