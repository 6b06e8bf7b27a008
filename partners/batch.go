package partners

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
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

// ProgrammeBatch is what a Programme may offer on top of Programme for
// batches: the tiers of many members in one read (an entry for every member
// asked; "" for none), and the earns of a batch recorded together, inside
// its transaction. EarnBatch uses it when Programme implements it, and calls
// MemberTier and Earned per member and earn otherwise.
type ProgrammeBatch interface {
	MemberTiers(ctx context.Context, memberIDs []int64) (map[int64]string, error)
	EarnedBatch(ctx context.Context, tx *gorm.DB, earns []PostedEarn) error
}

// ProgrammeEarlyBatch is what a Programme may offer on top of
// ProgrammeBatch: the batch's qualifying credits recorded before the ledger
// locks the members (ledger.Service.EarnBatchWith), so the members' account
// rows are not held while they are written; CreditBatch gets the earns as
// they will be posted (transaction id, member, occurred_at, the partner's
// points as the issued entry) and returns the rest, which EarnBatch calls
// with the posted earns once the ledger has posted them.
type ProgrammeEarlyBatch interface {
	CreditBatch(ctx context.Context, tx *gorm.DB, earns []PostedEarn) (func(context.Context, *gorm.DB, []PostedEarn) error, error)
}

// EarnBatch prices and posts earns as Earn would, one after another in input
// order, each under its own key, with a constant number of round trips per
// batch: one member check (with the configuration stamp), the programme's
// tiers when the pricing depends on them, the daily-cap sums when the
// contract caps, and one database transaction holding ledger.EarnBatch and
// the programme's records (one call when the programme offers
// ProgrammeBatch).
//
// Outcomes are in input order; an earn refused (invalid, member inactive,
// nothing to earn, key reused with another body, ...) does not affect the
// others. The error is for the batch as a whole (the database failed): then
// nothing was posted, and a retry of the same batch is safe.
//
// One difference with earns sent one by one: every earn is priced with its
// member's tier as of the start of the batch, so an upgrade that an earn of
// the batch earns applies from the next request on, not to the member's
// later earns in the same batch.
//
// Prepaid partners are priced and posted earn by earn (Earn), since a
// draw-down refused for one earn must refuse that earn alone.
func (t *Transactions) EarnBatch(ctx context.Context, p Principal, items []BatchEarn) ([]BatchOutcome, error) {
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
	// The member check reads the members' stored tiers too when the
	// programme can name them in SQL (as a single earn's does), so a rule
	// with tier multipliers costs no round trip of its own.
	st, hasStored := t.Programme.(ProgrammeStoredTier)
	var tierSQL string
	if hasStored {
		tierSQL = st.StoredTierSQL()
	}
	stamp, memberErr, stored, err := t.checkMembersTier(ctx, memberIDs(items, live), p.PartnerID, tierSQL)
	if err != nil {
		return nil, err
	}
	live = keep(live, func(i int) error { return memberErr[items[i].Input.MemberID] }, out)
	if len(live) == 0 {
		return out, nil
	}
	cfg, err := t.config(ctx, p.PartnerID, stamp)
	if err != nil {
		return nil, err
	}
	contracts := make([]Contract, len(items))
	live = keep(live, func(i int) error {
		c, err := cfg.contractAt(p.PartnerID, items[i].Input.OccurredAt, true)
		if err != nil {
			return err
		}
		contracts[i] = c
		return nil
	}, out)
	for _, i := range live {
		if contracts[i].Billing == BillingPrepaid {
			return t.earnEach(ctx, p, items), nil
		}
	}
	var tiers map[int64]string
	var tierErr map[int64]error
	switch {
	case cfg.tiers && hasStored:
		tiers = map[int64]string{}
		for _, id := range memberIDs(items, live) {
			if tiers[id], err = st.TierFromStored(ctx, stored[id]); err != nil {
				return nil, err
			}
		}
	case cfg.tiers:
		if tiers, tierErr, err = t.memberTiers(ctx, memberIDs(items, live)); err != nil {
			return nil, err
		}
	}
	quotes := make([]Quote, len(items))
	live = keep(live, func(i int) error {
		in := items[i].Input
		if err := tierErr[in.MemberID]; err != nil {
			return err
		}
		q, err := cfg.quote(Purchase{PartnerID: p.PartnerID, OccurredAt: in.OccurredAt, Amount: in.Amount,
			Lines: in.Lines, Activity: in.Activity, EventCode: in.EventCode, PromoCodes: in.PromoCodes,
			MemberTier: tiers[in.MemberID]})
		quotes[i] = capQuote(q, contracts[i])
		return err
	}, out)

	// Daily caps: what each member earned at the partner today, then the
	// earns of the batch in input order. Replays are left out: their points
	// are in the sums already (or in the earlier earn of the batch they
	// repeat), as they would be for earns sent one by one.
	type scopedKey struct{ scope, key string }
	earned := map[int64]int64{}
	taken := map[scopedKey]bool{}
	anyCap := false
	for _, i := range live {
		anyCap = anyCap || contracts[i].CapPerMemberDay > 0
	}
	if anyCap {
		capKeys := map[string][]string{} // by scope
		for _, i := range live {
			capKeys[items[i].Idem.Scope] = append(capKeys[items[i].Idem.Scope], items[i].Idem.Key)
		}
		if earned, err = t.earnedTodayBatch(ctx, p.PartnerID, memberIDs(items, live)); err != nil {
			return nil, err
		}
		for scope, keys := range capKeys {
			found, err := t.ledger.TakenKeys(ctx, scope, keys)
			if err != nil {
				return nil, err
			}
			for k := range found {
				taken[scopedKey{scope, k}] = true
			}
		}
	}
	counted := map[scopedKey]bool{}
	var reqs []ledger.EarnRequest
	var reqIdx []int
	for _, i := range live {
		it, c, q := items[i], contracts[i], quotes[i]
		points := q.Points
		var capped int64
		if c.CapPerMemberDay > 0 {
			room := max(c.CapPerMemberDay-earned[it.Input.MemberID], 0)
			if points > room {
				capped = points - room
				points = room
			}
		}
		if points == 0 && q.OperatorFunded == 0 {
			if capped > 0 {
				out[i].Err = wrapEarn(it.Input, fmt.Errorf("member %d at partner %d: %w", it.Input.MemberID, p.PartnerID, ErrDailyCapReached))
			} else {
				out[i].Err = wrapEarn(it.Input, ErrNothingToEarn)
			}
			continue
		}
		req, _, err := t.earnRequest(ctx, p.PartnerID, it.Idem, it.Input, c, q, points, capped)
		if err != nil {
			out[i].Err = wrapEarn(it.Input, err)
			continue
		}
		if k := (scopedKey{it.Idem.Scope, it.Idem.Key}); !counted[k] && !taken[k] {
			// A new earn (a key used before replays): later earns of the
			// member see it in their cap. ledger_transactions.points, which
			// earnedToday sums, includes the operator-funded points.
			earned[it.Input.MemberID] += points + q.OperatorFunded
			counted[k] = true
		}
		reqs = append(reqs, req)
		reqIdx = append(reqIdx, i)
	}
	if len(reqs) == 0 {
		return out, nil
	}

	early, hasEarly := t.Programme.(ProgrammeEarlyBatch)
	err = t.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rest func(context.Context, *gorm.DB, []PostedEarn) error
		var claimed func(*gorm.DB, []ledger.ClaimedEarn) error
		if hasEarly {
			claimed = func(tx *gorm.DB, cs []ledger.ClaimedEarn) error {
				earns := make([]PostedEarn, len(cs))
				for k, c := range cs {
					r := reqs[c.Index]
					tr := ledger.Transaction{ID: c.TransactionID, Type: ledger.TypeEarn, MemberID: r.MemberID,
						PartnerID: r.PartnerID, Points: r.Points + r.OperatorFunded, OccurredAt: c.OccurredAt}
					if r.Points > 0 {
						tr.Entries = []ledger.Entry{{Kind: ledger.KindPartnerIssued, OwnerID: r.PartnerID, Points: -r.Points}}
					}
					earns[k] = PostedEarn{PartnerID: p.PartnerID, Input: items[reqIdx[c.Index]].Input, Transaction: tr}
				}
				var err error
				rest, err = early.CreditBatch(ctx, tx, earns)
				return err
			}
		}
		res, err := t.ledger.Joined(tx).EarnBatchWith(ctx, reqs, claimed)
		if err != nil {
			return err
		}
		var posted []PostedEarn
		for n, r := range res {
			i := reqIdx[n]
			if r.Err != nil {
				out[i].Err = wrapEarn(items[i].Input, r.Err)
				continue
			}
			out[i].Transaction = r.Transaction
			if !r.Transaction.Replayed {
				posted = append(posted, PostedEarn{PartnerID: p.PartnerID, Input: items[i].Input, Transaction: r.Transaction})
			}
		}
		if len(posted) == 0 {
			return nil
		}
		if hasEarly {
			if rest == nil {
				return fmt.Errorf("earn batch: %d earns posted without their qualifying credits", len(posted))
			}
			if err := rest(ctx, tx, posted); err != nil {
				return err
			}
		} else if b, ok := t.Programme.(ProgrammeBatch); ok {
			if err := b.EarnedBatch(ctx, tx, posted); err != nil {
				return err
			}
		} else if t.Programme != nil {
			for _, e := range posted {
				if err := t.Programme.Earned(ctx, tx, e); err != nil {
					return err
				}
			}
		}
		for _, e := range posted {
			if err := publish(tx, cfg, t.now(), p.PartnerID, EventTransactionPosted, ViewOf(e.Transaction)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("earn batch of partner %d: %w", p.PartnerID, err)
	}
	return out, nil
}

// earnEach is the batch earn by earn, each in its own database transaction.
func (t *Transactions) earnEach(ctx context.Context, p Principal, items []BatchEarn) []BatchOutcome {
	out := make([]BatchOutcome, len(items))
	for i, it := range items {
		out[i].Transaction, out[i].Err = t.Earn(ctx, p, it.Idem, it.Input)
	}
	return out
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
func memberIDs(items []BatchEarn, idx []int) []int64 {
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

// earnRequest is the ledger request of a priced earn of points
// partner-funded points (after the daily cap took capped), as Earn posts it,
// and what the earn charges the partner (minor units of the contract's
// currency): the details that explain it on statements (quote, contract,
// cap, charge, outlet), the pending period and the expiry.
func (t *Transactions) earnRequest(ctx context.Context, partnerID int64, idem ledger.Idempotency, in EarnInput,
	c Contract, q Quote, points, capped int64) (ledger.EarnRequest, int64, error) {
	d := earnDetails{Quote: q.details(), Capped: capped, Outlet: in.Outlet}
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
	stamp, errs, _, err := t.checkMembersTier(ctx, ids, partnerID, "")
	return stamp, errs, err
}

// checkMembersTier is checkMembers that also reads tierSQL (a SQL expression
// over the member row m, "" for none) for each member found: an earn reads
// the member's stored tier in the same round trip (ProgrammeStoredTier).
func (t *Transactions) checkMembersTier(ctx context.Context, ids []int64, partnerID int64, tierSQL string) (configStamp, map[int64]error, map[int64]*string, error) {
	type row struct {
		ID             *int64
		Status         *string
		MergedIntoID   *int64
		PartnerVersion int64
		GlobalVersion  int64
		Tier           *string
	}
	var rows []row
	// One member (every single earn and burn) is compared with "=", not
	// "= ANY(array)": PostgreSQL cannot know an array parameter's length
	// when it weighs its generic plan, so with ANY it planned the statement
	// afresh on most executions (~0.15 ms each).
	match, arg := "m.id = ANY($2::bigint[])", any(ids)
	if len(ids) == 1 {
		match, arg = "m.id = $2::bigint", ids[0]
	}
	tier := "CAST(NULL AS text)"
	if tierSQL != "" {
		tier = tierSQL
	}
	// Straight to the connection (database.Query): gorm's scan of a batch's
	// members cost more than the statement.
	err := database.Query(t.db.WithContext(ctx), `SELECT m.id, m.status, m.merged_into_id, v.partner_version, v.global_version, `+tier+` AS tier
		FROM (SELECT coalesce((SELECT version FROM partner_config_versions WHERE partner_id = $1), 0) AS partner_version,
		             coalesce((SELECT version FROM partner_config_versions WHERE partner_id = 0), 0) AS global_version) v
		LEFT JOIN members m ON `+match, []any{partnerID, arg}, func(rs *sql.Rows) error {
		var r row
		if err := rs.Scan(&r.ID, &r.Status, &r.MergedIntoID, &r.PartnerVersion, &r.GlobalVersion, &r.Tier); err != nil {
			return err
		}
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		return configStamp{}, nil, nil, fmt.Errorf("get members: %w", err)
	}
	if len(rows) == 0 {
		return configStamp{}, nil, nil, fmt.Errorf("get members: no configuration stamp")
	}
	found := make(map[int64]bool, len(rows))
	errs := map[int64]error{}
	tiers := map[int64]*string{}
	for _, r := range rows {
		if r.ID == nil {
			continue
		}
		found[*r.ID] = true
		tiers[*r.ID] = r.Tier
		m := members.Member{ID: *r.ID, Status: members.Status(*r.Status)}
		if r.MergedIntoID != nil {
			m.MergedIntoID = *r.MergedIntoID
		}
		if err := members.CanTransact(m); err != nil {
			errs[*r.ID] = err
		}
	}
	for _, id := range ids {
		if !found[id] {
			errs[id] = fmt.Errorf("get member %d: %w", id, members.ErrNotFound)
		}
	}
	return configStamp{Partner: rows[0].PartnerVersion, Global: rows[0].GlobalVersion}, errs, tiers, nil
}

// memberTiers returns the members' tiers: in one call when the programme
// offers ProgrammeBatch (its error fails the batch), else member by member
// (an error is that member's).
func (t *Transactions) memberTiers(ctx context.Context, ids []int64) (map[int64]string, map[int64]error, error) {
	tiers := map[int64]string{}
	errs := map[int64]error{}
	if t.Programme == nil || len(ids) == 0 {
		return tiers, errs, nil
	}
	if b, ok := t.Programme.(ProgrammeBatch); ok {
		tiers, err := b.MemberTiers(ctx, ids)
		if err != nil {
			return nil, nil, err
		}
		return tiers, errs, nil
	}
	for _, id := range ids {
		tier, err := t.Programme.MemberTier(ctx, id)
		if err != nil {
			errs[id] = err
			continue
		}
		tiers[id] = tier
	}
	return tiers, errs, nil
}

// earnedTodayBatch is earnedToday for many members in one round trip (and
// one for the partner's time zone).
func (t *Transactions) earnedTodayBatch(ctx context.Context, partnerID int64, ids []int64) (map[int64]int64, error) {
	loc := time.UTC
	if p, err := t.registry.Partner(ctx, partnerID); err == nil {
		if l, err := time.LoadLocation(p.TimeZone); err == nil {
			loc = l
		}
	}
	now := t.now().In(loc)
	start := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	var rows []struct {
		MemberID int64
		Points   int64
	}
	if err := t.db.WithContext(ctx).Raw(`SELECT member_id, COALESCE(sum(points), 0) AS points FROM ledger_transactions
		WHERE type = 'earn' AND partner_id = ? AND member_id = ANY(CAST(? AS bigint[])) AND posted_at >= ?
		GROUP BY member_id`, partnerID, int64Array(ids), start).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("earned today at partner %d: %w", partnerID, err)
	}
	out := make(map[int64]int64, len(ids))
	for _, r := range rows {
		out[r.MemberID] = r.Points
	}
	return out, nil
}

// int64Array is ids as a PostgreSQL array literal (gorm would expand a slice
// into a list of parameters).
func int64Array(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return "{" + strings.Join(parts, ",") + "}"
}
