package points

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/abuse"
	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/webhooks"
)

// BatchEarn is one earn of a batch: its idempotency and the purchase.
type BatchEarn struct {
	Idem  ledger.Idempotency
	Input EarnInput
}

// BatchOutcome is what EarnBatch did with one earn: the posted transaction
// (Replayed for a key used before), or why this earn was refused, with the
// error Earn would have returned for it alone.
type BatchOutcome struct {
	Transaction ledger.Transaction
	Err         error
}

// partnerEarn is an earn of a partner, the unit the earn path posts: a batch
// sent by a partner holds that partner's earns, a flush of the group commit
// any partner's.
type partnerEarn struct {
	PartnerID int64
	BatchEarn
}

// EarnBatch prices and posts earns as Earn would, one after another in input
// order, each under its own key, with a constant number of round trips per
// batch: one member check (with the configuration stamp), the programme's
// tiers when the pricing depends on them, the daily-cap sums when the
// contract caps, and one database transaction holding the ledger's posting,
// the programme's credits, prepaid draw-downs and webhook events.
//
// Outcomes are in input order; an earn refused (invalid, member inactive,
// nothing to earn, key reused with another body, prepaid balance exhausted,
// ...) does not affect the others. The error is for the batch as a whole
// (the database failed): then nothing was posted, and a retry of the same
// batch is safe.
//
// One difference with earns sent one by one: every earn is priced with its
// member's tier as of the start of the batch, so an upgrade that an earn of
// the batch earns applies from the next request on, not to the member's
// later earns in the same batch.
func (t *Transactions) EarnBatch(ctx context.Context, p access.Principal, items []BatchEarn) ([]BatchOutcome, error) {
	earns := make([]partnerEarn, len(items))
	for i, it := range items {
		earns[i] = partnerEarn{PartnerID: p.PartnerID, BatchEarn: it}
	}
	out, err := t.post(ctx, earns)
	if err != nil {
		return nil, fmt.Errorf("earn batch of partner %d: %w", p.PartnerID, err)
	}
	return out, nil
}

// post is the one earn path: it prices and posts items (of any partners) as
// EarnBatch describes.
func (t *Transactions) post(ctx context.Context, items []partnerEarn) ([]BatchOutcome, error) {
	now := t.now()
	out := make([]BatchOutcome, len(items))
	var live []int
	for i, it := range items {
		if err := it.Input.validate(now); err != nil {
			out[i].Err = err
			continue
		}
		live = append(live, i)
	}
	if len(live) == 0 {
		return out, nil
	}
	stamps, memberErr, err := t.checkMembersAt(ctx, memberIDs(items, live), partnerIDs(items, live))
	if err != nil {
		return nil, err
	}
	live = keep(live, func(i int) error { return memberErr[items[i].Input.MemberID] }, out)
	if len(live) == 0 {
		return out, nil
	}
	cfgs := map[int64]*partnerConfig{}
	for _, id := range partnerIDs(items, live) {
		if cfgs[id], err = t.config(ctx, id, stamps[id]); err != nil {
			return nil, err
		}
	}
	contracts := make([]partners.Contract, len(items))
	live = keep(live, func(i int) error {
		c, err := cfgs[items[i].PartnerID].contractAt(items[i].PartnerID, items[i].Input.OccurredAt, true)
		contracts[i] = c
		return err
	}, out)

	// The tiers of the members whose price depends on them, in one read.
	var tiered []int
	for _, i := range live {
		if cfgs[items[i].PartnerID].tiers {
			tiered = append(tiered, i)
		}
	}
	tiers := map[int64]string{}
	if t.Programme != nil && len(tiered) > 0 {
		if tiers, err = t.Programme.MemberTiers(ctx, memberIDs(items, tiered)); err != nil {
			return nil, err
		}
	}
	quotes := make([]rules.Quote, len(items))
	live = keep(live, func(i int) error {
		in := items[i].Input
		q, err := cfgs[items[i].PartnerID].quote(rules.Purchase{PartnerID: items[i].PartnerID, OccurredAt: in.OccurredAt,
			Amount: in.Amount, Lines: in.Lines, Activity: in.Activity, EventCode: in.EventCode,
			PromoCodes: in.PromoCodes, MemberTier: tiers[in.MemberID]})
		quotes[i] = capQuote(q, contracts[i])
		return err
	}, out)

	earned, taken, err := t.capState(ctx, items, live, contracts)
	if err != nil {
		return nil, err
	}
	type scopedKey struct{ scope, key string }
	counted := map[scopedKey]bool{}
	var reqs []ledger.EarnRequest
	var reqIdx []int
	var charges []money.Money
	for _, i := range live {
		it, c, q := items[i], contracts[i], quotes[i]
		points := q.Points
		var capped int64
		earner := memberAt{it.PartnerID, it.Input.MemberID}
		if c.CapPerMemberDay > 0 {
			room := max(c.CapPerMemberDay-earned[earner], 0)
			if points > room {
				capped = points - room
				points = room
			}
		}
		if points == 0 && q.OperatorFunded == 0 {
			if capped > 0 {
				out[i].Err = wrapEarn(it.Input, fmt.Errorf("member %d at partner %d: %w", it.Input.MemberID, it.PartnerID, ErrDailyCapReached))
			} else {
				out[i].Err = wrapEarn(it.Input, ErrNothingToEarn)
			}
			continue
		}
		req, charge, err := t.earnRequest(ctx, it.PartnerID, it.Idem, it.Input, c, q, points, capped)
		if err != nil {
			out[i].Err = wrapEarn(it.Input, err)
			continue
		}
		if k := (scopedKey{it.Idem.Scope, it.Idem.Key}); c.CapPerMemberDay > 0 && !counted[k] && !taken[it.Idem.Scope][k.key] {
			// A new earn (a key used before replays): later earns of the
			// member see it in their cap. ledger_transactions.points, which
			// the cap sums, includes the operator-funded points.
			earned[earner] += points + q.OperatorFunded
			counted[k] = true
		}
		if c.Billing != partners.BillingPrepaid {
			charge = 0
		}
		reqs = append(reqs, req)
		reqIdx = append(reqIdx, i)
		charges = append(charges, money.Money{Minor: charge, Currency: c.Currency})
	}
	// A draw-down refused refuses its earn alone: the transaction is rolled
	// back and run again without it (rare: a prepaid balance running out).
	for len(reqs) > 0 {
		res, refused, err := t.commit(ctx, items, cfgs, reqs, reqIdx, charges)
		if refused < 0 && err != nil {
			return nil, err
		}
		if refused < 0 {
			for n, r := range res {
				out[reqIdx[n]] = r
			}
			break
		}
		out[reqIdx[refused]].Err = wrapEarn(items[reqIdx[refused]].Input, err)
		reqs = slices.Delete(reqs, refused, refused+1)
		reqIdx = slices.Delete(reqIdx, refused, refused+1)
		charges = slices.Delete(charges, refused, refused+1)
	}
	return out, nil
}

// memberAt is a member at a partner (daily caps count per partner).
type memberAt struct{ partner, member int64 }

// capState reads what the daily caps of the live items need: what each
// member earned today at each capping partner, and which of their keys are
// taken already (by scope), whose earns are replays that take no room.
func (t *Transactions) capState(ctx context.Context, items []partnerEarn, live []int, contracts []partners.Contract) (map[memberAt]int64, map[string]map[string]bool, error) {
	earned := map[memberAt]int64{}
	taken := map[string]map[string]bool{}
	byPartner := map[int64][]int{}
	keys := map[string][]string{}
	for _, i := range live {
		if contracts[i].CapPerMemberDay > 0 {
			byPartner[items[i].PartnerID] = append(byPartner[items[i].PartnerID], i)
			keys[items[i].Idem.Scope] = append(keys[items[i].Idem.Scope], items[i].Idem.Key)
		}
	}
	for partnerID, idx := range byPartner {
		sums, err := t.earnedTodayBatch(ctx, partnerID, memberIDs(items, idx))
		if err != nil {
			return nil, nil, err
		}
		for id, v := range sums {
			earned[memberAt{partnerID, id}] = v
		}
	}
	for scope, ks := range keys {
		found, err := t.ledger.TakenKeys(ctx, scope, ks)
		if err != nil {
			return nil, nil, err
		}
		taken[scope] = found
	}
	return earned, taken, nil
}

// errDrawDownRefused rolls back a batch whose draw-down was refused.
var errDrawDownRefused = errors.New("draw-down refused")

// commit posts reqs (the earns items[reqIdx[n]]) in one database
// transaction: the ledger's posting, with the programme's credits recorded
// between the key claims and the member locks, then the prepaid draw-downs
// (charges, in partner order), the programme's rest and the webhook events
// of the new earns. It returns the outcomes in the order of reqs; or, with
// nothing committed, the index in reqs of an earn whose draw-down was
// refused and why (ErrPrepaidExhausted, ErrNotPrepaid, a currency the
// prepaid account does not hold); or the error of the whole.
func (t *Transactions) commit(ctx context.Context, items []partnerEarn, cfgs map[int64]*partnerConfig,
	reqs []ledger.EarnRequest, reqIdx []int, charges []money.Money) ([]BatchOutcome, int, error) {
	res := make([]BatchOutcome, len(reqs))
	refused := -1
	var refusal error
	err := database.Transaction(ctx, t.db, func(tx *gorm.DB) error {
		var rest EarnedRest
		var claimed func(*gorm.DB, []ledger.ClaimedEarn) error
		watched := false
		for _, r := range reqs {
			watched = watched || cfgs[r.PartnerID].abuse.Earns()
		}
		if t.Programme != nil || watched {
			claimed = func(tx *gorm.DB, cs []ledger.ClaimedEarn) error {
				if watched {
					if err := t.holdForReview(tx, items, cfgs, reqs, reqIdx, cs); err != nil {
						return err
					}
				}
				if t.Programme == nil {
					return nil
				}
				earns := make([]PostedEarn, len(cs))
				for k, c := range cs {
					r := reqs[c.Index]
					tr := ledger.Transaction{ID: c.TransactionID, Type: ledger.TypeEarn, MemberID: r.MemberID,
						PartnerID: r.PartnerID, Points: r.Points + r.OperatorFunded, OccurredAt: c.OccurredAt}
					if r.Points > 0 {
						tr.Entries = []ledger.Entry{{Kind: ledger.KindPartnerIssued, OwnerID: r.PartnerID, Points: -r.Points}}
					}
					earns[k] = PostedEarn{PartnerID: r.PartnerID, Input: items[reqIdx[c.Index]].Input, Transaction: tr}
				}
				var err error
				rest, err = t.Programme.CreditEarns(ctx, tx, earns)
				return err
			}
		}
		lres, err := t.ledger.Joined(tx).EarnBatchWith(ctx, reqs, claimed)
		if err != nil {
			return err
		}
		var posted []PostedEarn
		var draws []int
		for n, r := range lres {
			i := reqIdx[n]
			if r.Err != nil {
				res[n].Err = wrapEarn(items[i].Input, r.Err)
				continue
			}
			res[n].Transaction = r.Transaction
			if r.Transaction.Replayed {
				continue
			}
			if charges[n].Minor > 0 {
				draws = append(draws, n)
			}
			posted = append(posted, PostedEarn{PartnerID: items[i].PartnerID, Input: items[i].Input, Transaction: r.Transaction})
		}
		// Prepaid accounts are locked in partner order: two batches
		// drawing on the same partners cannot wait for each other in a cycle.
		slices.SortStableFunc(draws, func(a, b int) int { return cmp.Compare(reqs[a].PartnerID, reqs[b].PartnerID) })
		for _, n := range draws {
			ref := fmt.Sprintf("earn:%d", res[n].Transaction.ID)
			if _, err := t.registry.DrawDown(tx, reqs[n].PartnerID, charges[n], ref); err != nil {
				var ve *validation.Error
				if errors.Is(err, partners.ErrPrepaidExhausted) || errors.Is(err, partners.ErrNotPrepaid) || errors.As(err, &ve) {
					refused, refusal = n, err
					return errDrawDownRefused
				}
				return err
			}
		}
		if len(posted) == 0 {
			return nil
		}
		if t.Programme != nil {
			if rest == nil {
				return fmt.Errorf("%d earns posted without their qualifying credits", len(posted))
			}
			if err := rest(ctx, tx, posted); err != nil {
				return err
			}
		}
		for _, e := range posted {
			if err := publish(tx, cfgs[e.PartnerID], t.now(), e.PartnerID, webhooks.EventTransactionPosted, ViewOf(e.Transaction)); err != nil {
				return err
			}
		}
		return nil
	})
	if refused >= 0 {
		return nil, refused, refusal
	}
	if err != nil {
		return nil, -1, err
	}
	return res, -1, nil
}

// holdForReview counts the claimed earns of partners with abuse rules
// against them (one statement, inside the posting transaction, so that
// concurrent earns are counted one after another) and marks those over a
// limit held: their lots stay pending until the flag recorded for each is
// reviewed (ReviewFlag).
func (t *Transactions) holdForReview(tx *gorm.DB, items []partnerEarn, cfgs map[int64]*partnerConfig,
	reqs []ledger.EarnRequest, reqIdx []int, cs []ledger.ClaimedEarn) error {
	var earns []abuse.Earn
	var at []int // index in cs of each earn checked
	for k, c := range cs {
		r := reqs[c.Index]
		if !cfgs[r.PartnerID].abuse.Earns() {
			continue
		}
		in := items[reqIdx[c.Index]].Input
		earns = append(earns, abuse.Earn{PartnerID: r.PartnerID, MemberID: r.MemberID, Card: in.Card,
			EventCode: in.EventCode, Points: int64(r.Points + r.OperatorFunded)})
		at = append(at, k)
	}
	if len(earns) == 0 {
		return nil
	}
	now := t.now()
	hits, err := abuse.CheckEarns(tx, now, func(id int64) abuse.Rules { return cfgs[id].abuse }, earns)
	if err != nil || len(hits) == 0 {
		return err
	}
	var flags []abuse.Flag
	for n, h := range hits {
		c := &cs[at[n]]
		c.Held = true
		r := reqs[c.Index]
		txID := c.TransactionID
		flags = append(flags, abuse.Flag{PartnerID: r.PartnerID, MemberID: r.MemberID, TransactionID: &txID,
			Rule: h.Rule, Detail: h.Detail, Points: int64(r.Points + r.OperatorFunded),
			AvailableAt: r.AvailableAt, ExpiresAt: r.ExpiresAt, CreatedAt: now.UTC()})
	}
	slices.SortFunc(flags, func(a, b abuse.Flag) int { return cmp.Compare(*a.TransactionID, *b.TransactionID) })
	return abuse.RecordEarnFlags(tx, flags)
}

func wrapEarn(in EarnInput, err error) error {
	return fmt.Errorf("earn for member %d: %w", in.MemberID, err)
}

// keep returns the indexes of live for which check passes, recording the
// error of the others in out.
func keep(live []int, check func(i int) error, out []BatchOutcome) []int {
	kept := live[:0]
	for _, i := range live {
		if err := check(i); err != nil {
			out[i].Err = err
			continue
		}
		kept = append(kept, i)
	}
	return kept
}

// memberIDs returns the distinct members of the given items.
func memberIDs(items []partnerEarn, idx []int) []int64 {
	seen := make(map[int64]bool, len(idx))
	var ids []int64
	for _, i := range idx {
		if id := items[i].Input.MemberID; !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// partnerIDs returns the distinct partners of the given items.
func partnerIDs(items []partnerEarn, idx []int) []int64 {
	seen := make(map[int64]bool, len(idx))
	var ids []int64
	for _, i := range idx {
		if id := items[i].PartnerID; !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// earnRequest is the ledger request of a priced earn of points
// partner-funded points (after the daily cap took capped), as Earn posts it,
// and what the earn charges the partner (minor units of the contract's
// currency): the details that explain it on statements (quote, contract,
// cap, charge, outlet), the pending period and the expiry.
func (t *Transactions) earnRequest(ctx context.Context, partnerID int64, idem ledger.Idempotency, in EarnInput,
	c partners.Contract, q rules.Quote, points, capped int64) (ledger.EarnRequest, int64, error) {
	d := earnDetails{Quote: q.Record(), Capped: capped, Outlet: in.Outlet}
	d.Contract.ID, d.Contract.Version, d.Contract.IssuePrice = c.ID, c.Version, c.IssuePrice.String()
	d.Contract.Currency, d.Contract.Billing, d.Contract.PendingDays = c.Currency, string(c.Billing), c.PendingDays
	d.ChargeMinor = money.PointsValue(points, c.IssuePrice, c.Currency)
	details, _ := json.Marshal(d)
	req := ledger.EarnRequest{Idem: idem, MemberID: in.MemberID, PartnerID: partnerID,
		Points: ledger.Points(points), OperatorFunded: ledger.Points(q.OperatorFunded),
		OccurredAt: in.OccurredAt, ExternalRef: in.ExternalRef, Details: details}
	if c.PendingDays > 0 {
		at := in.OccurredAt.AddDate(0, 0, c.PendingDays)
		req.AvailableAt = &at
	}
	if t.Programme != nil {
		var err error
		if req.ExpiresAt, err = t.Programme.EarnExpiry(ctx, in.OccurredAt); err != nil {
			return ledger.EarnRequest{}, 0, err
		}
	} else if t.DefaultExpiry > 0 {
		at := in.OccurredAt.Add(t.DefaultExpiry)
		req.ExpiresAt = &at
	}
	return req, d.ChargeMinor, nil
}

// checkMembers checks many members in one round trip (checkMember is its
// one-member case): it returns the partner's configuration stamp and, for
// each member that may not transact, its error (members.ErrNotFound,
// members.ErrMemberInactive).
func (t *Transactions) checkMembers(ctx context.Context, ids []int64, partnerID int64) (configStamp, map[int64]error, error) {
	stamps, errs, err := t.checkMembersAt(ctx, ids, []int64{partnerID})
	return stamps[partnerID], errs, err
}

// checkMembersAt is checkMembers for members transacting with several
// partners: the configuration stamp of each partner, in the same round trip.
func (t *Transactions) checkMembersAt(ctx context.Context, ids, partnerIDs []int64) (map[int64]configStamp, map[int64]error, error) {
	// The partners' versions (partner 0: coalition-wide) and the members'
	// check travel in one pipeline: one round trip, each package asking
	// its own tables.
	versions := map[int64]int64{}
	check := members.CheckTransacting(ids)
	err := database.Pipeline(t.db.WithContext(ctx), database.Stmt{Name: "configuration versions",
		SQL: `SELECT p.id, coalesce((SELECT version FROM partner_config_versions WHERE partner_id = p.id), 0)
		FROM unnest(CAST($1 AS bigint[])) AS p(id)`,
		Args: []any{append([]int64{0}, partnerIDs...)}, Scan: func(row database.Row) error {
			var id, version int64
			if err := row.Scan(&id, &version); err != nil {
				return err
			}
			versions[id] = version
			return nil
		}}, check.Stmt)
	if err != nil {
		return nil, nil, fmt.Errorf("check members: %w", err)
	}
	stamps := make(map[int64]configStamp, len(partnerIDs))
	for _, id := range partnerIDs {
		stamps[id] = configStamp{Partner: versions[id], Global: versions[0]}
	}
	return stamps, check.Result(), nil
}

// earnedTodayBatch sums the points (partner- and operator-funded) each
// member earned at the partner today in the partner's time zone (net of
// nothing: reversals do not give cap room back, which keeps earn-refund
// loops from resetting the cap), in one round trip (and one for the
// partner's time zone).
func (t *Transactions) earnedTodayBatch(ctx context.Context, partnerID int64, ids []int64) (map[int64]int64, error) {
	loc := time.UTC
	if p, err := t.registry.Partner(ctx, partnerID); err == nil {
		if l, err := time.LoadLocation(p.TimeZone); err == nil {
			loc = l
		}
	}
	now := t.now().In(loc)
	start := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	out, err := t.ledger.EarnedSince(ctx, partnerID, ids, start)
	if err != nil {
		return nil, fmt.Errorf("earned today at partner %d: %w", partnerID, err)
	}
	return out, nil
}
