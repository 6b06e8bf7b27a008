package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/outbox"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/webhooks"
)

// Service runs the exchange use cases; it owns their database transactions.
type Service struct {
	db       *gorm.DB
	ledger   *ledger.Service
	members  *members.Service
	registry *partners.Service
	sealer   Sealer
	partner  Partner
	now      func() time.Time

	// QuoteTTL is how long a quote can be confirmed (default 15 minutes).
	QuoteTTL time.Duration
	// PollInterval spaces status checks of pending exchanges (default 15 minutes).
	PollInterval time.Duration
	// StaleAfter is how long a processing exchange waits for its deliver job
	// before exchange:poll re-drives it (default 30 minutes).
	StaleAfter time.Duration
}

// Sealer seals the partners' exchange API keys at rest (access.SecretBox).
type Sealer interface {
	Seal(plain []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// NewService wires the exchange domain. partner is the outbound protocol
// client (NewHTTPPartner in production).
func NewService(db *gorm.DB, l *ledger.Service, m *members.Service, registry *partners.Service, sealer Sealer,
	partner Partner, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, ledger: l, members: m, registry: registry, sealer: sealer, partner: partner, now: now,
		QuoteTTL: 15 * time.Minute, PollInterval: 15 * time.Minute, StaleAfter: 30 * time.Minute}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// ---- programmes

// CreateProgramme registers a partner programme. Errors: *validation.Error,
// partners.ErrPartnerNotFound, ErrProgrammeExists.
func (s *Service) CreateProgramme(ctx context.Context, in NewProgramme) (Programme, error) {
	if err := in.normalise(); err != nil {
		return Programme{}, err
	}
	if _, err := s.registry.Partner(ctx, in.PartnerID); err != nil {
		return Programme{}, err
	}
	sealed, err := s.sealer.Seal([]byte(in.APIKey))
	if err != nil {
		return Programme{}, fmt.Errorf("seal programme key: %w", err)
	}
	bands, _ := json.Marshal(in.BonusBands)
	var outP, outU, inU, inP *int64
	if in.Out != nil {
		outP, outU = &in.Out.From, &in.Out.To
	}
	if in.In != nil {
		inU, inP = &in.In.From, &in.In.To
	}
	var feeCur *string
	if in.FeeCurrency != "" {
		feeCur = &in.FeeCurrency
	}
	now := s.clock()
	var id int64
	err = s.db.WithContext(ctx).Raw(`INSERT INTO exchange_programmes (partner_id, code, name, unit, out_points, out_units,
		in_units, in_points, increment, min_points, max_points, monthly_max_points, fee_points, fee_minor, fee_currency,
		bonus_bands, endpoint_url, api_key, pending_deadline, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?, make_interval(secs => ?), ?, ?) RETURNING id`,
		in.PartnerID, in.Code, in.Name, in.Unit, outP, outU, inU, inP, in.Increment, in.MinPoints, in.MaxPoints,
		in.MonthlyMax, in.FeePoints, in.FeeMinor, feeCur, string(bands), in.EndpointURL, sealed,
		in.PendingDeadline.Seconds(), now, now).Scan(&id).Error
	if database.IsUnique(err, "exchange_programmes_code_key") {
		return Programme{}, fmt.Errorf("programme %q: %w", in.Code, ErrProgrammeExists)
	}
	if err != nil {
		return Programme{}, fmt.Errorf("create programme: %w", err)
	}
	return s.Programme(ctx, id)
}

// Programme returns one programme. Errors: ErrProgrammeNotFound.
func (s *Service) Programme(ctx context.Context, id int64) (Programme, error) {
	r, err := getProgramme(s.db.WithContext(ctx), id)
	if err != nil {
		return Programme{}, err
	}
	return r.programme(), nil
}

// Programmes lists the active programmes (partnerID > 0: that partner's).
func (s *Service) Programmes(ctx context.Context, partnerID int64) ([]Programme, error) {
	var rows []programmeRow
	q := s.db.WithContext(ctx).Raw(`SELECT `+programmeColumns+` FROM exchange_programmes
		WHERE status = 'active' AND (? = 0 OR partner_id = ?) ORDER BY id`, partnerID, partnerID)
	if err := q.Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list programmes: %w", err)
	}
	out := make([]Programme, len(rows))
	for i, r := range rows {
		out[i] = r.programme()
	}
	return out, nil
}

func (s *Service) endpoint(r programmeRow) (Endpoint, error) {
	key, err := s.sealer.Open(r.APIKey)
	if err != nil {
		return Endpoint{}, fmt.Errorf("open programme %d key: %w", r.ID, err)
	}
	return Endpoint{URL: r.EndpointURL, APIKey: string(key)}, nil
}

func (s *Service) activeProgramme(ctx context.Context, id int64) (programmeRow, error) {
	r, err := getProgramme(s.db.WithContext(ctx), id)
	if err != nil {
		return programmeRow{}, err
	}
	if r.Status != "active" {
		return programmeRow{}, fmt.Errorf("programme %d is %s: %w", id, r.Status, ErrProgrammeNotFound)
	}
	return r, nil
}

func (s *Service) activeMember(ctx context.Context, id int64) error {
	m, err := s.members.Get(ctx, id)
	if err != nil {
		return err
	}
	return members.CanTransact(m)
}

// ---- links

// Link records the member's account in a programme after the partner
// validated it (replacing an earlier link). Errors: *validation.Error,
// ErrProgrammeNotFound, ErrLinkRejected, ErrPartnerUnavailable, members errors.
func (s *Service) Link(ctx context.Context, memberID, programmeID int64, account string) (Link, error) {
	if !accountRE.MatchString(account) {
		return Link{}, validation.New("account", "must be 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-'")
	}
	if err := s.activeMember(ctx, memberID); err != nil {
		return Link{}, err
	}
	p, err := s.activeProgramme(ctx, programmeID)
	if err != nil {
		return Link{}, err
	}
	ep, err := s.endpoint(p)
	if err != nil {
		return Link{}, err
	}
	res, err := s.partner.ValidateMember(ctx, ep, account)
	if err != nil {
		return Link{}, fmt.Errorf("validate %s account: %v: %w", p.Code, err, ErrPartnerUnavailable)
	}
	if !res.Valid {
		return Link{}, fmt.Errorf("%s account %s: %s: %w", p.Code, account, res.Reason, ErrLinkRejected)
	}
	now := s.clock()
	var out Link
	err = s.db.WithContext(ctx).Raw(`INSERT INTO exchange_links (member_id, programme_id, account, validated_at, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (member_id, programme_id) DO UPDATE SET account = EXCLUDED.account,
		validated_at = EXCLUDED.validated_at RETURNING id, member_id, programme_id, account, validated_at`,
		memberID, programmeID, account, now, now).Scan(&out).Error
	if err != nil {
		return Link{}, fmt.Errorf("save link: %w", err)
	}
	return out, nil
}

// Links returns the member's linked programme accounts.
func (s *Service) Links(ctx context.Context, memberID int64) ([]Link, error) {
	out := []Link{}
	err := s.db.WithContext(ctx).Raw(`SELECT id, member_id, programme_id, account, validated_at FROM exchange_links
		WHERE member_id = ? ORDER BY id`, memberID).Scan(&out).Error
	return out, err
}

func link(tx *gorm.DB, memberID, programmeID int64, lock bool) (Link, error) {
	q := `SELECT id, member_id, programme_id, account, validated_at FROM exchange_links WHERE member_id = ? AND programme_id = ?`
	if lock {
		q += ` FOR UPDATE`
	}
	var rows []Link
	if err := tx.Raw(q, memberID, programmeID).Scan(&rows).Error; err != nil {
		return Link{}, err
	}
	if len(rows) == 0 {
		return Link{}, fmt.Errorf("member %d, programme %d: %w", memberID, programmeID, ErrNotLinked)
	}
	return rows[0], nil
}

// ---- outbound

// Quote prices an outbound exchange of points (fee on top) for a member with
// a linked account. Errors: *validation.Error, ErrProgrammeNotFound,
// ErrDirectionClosed, ErrNotLinked, ErrMonthlyLimit, members errors.
func (s *Service) Quote(ctx context.Context, memberID, programmeID, points int64) (Quote, error) {
	if err := s.activeMember(ctx, memberID); err != nil {
		return Quote{}, err
	}
	r, err := s.activeProgramme(ctx, programmeID)
	if err != nil {
		return Quote{}, err
	}
	p := r.programme()
	base, bonus, err := PriceOutbound(p, points)
	if err != nil {
		return Quote{}, err
	}
	db := s.db.WithContext(ctx)
	if _, err := link(db, memberID, programmeID, false); err != nil {
		return Quote{}, err
	}
	now := s.clock()
	if err := checkMonthly(db, p, memberID, Outbound, points, now); err != nil {
		return Quote{}, err
	}
	q := Quote{ID: uuid.NewString(), MemberID: memberID, ProgrammeID: programmeID, Points: points, FeePoints: p.FeePoints,
		Debit: points + p.FeePoints, BaseUnits: base, BonusUnits: bonus, Units: base + bonus, Unit: p.Unit,
		ExpiresAt: now.Add(s.QuoteTTL)}
	if err := db.Exec(`INSERT INTO exchange_quotes (id, member_id, programme_id, points, fee_points, base_units, bonus_units,
		created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, q.ID, memberID, programmeID, points, p.FeePoints,
		base, bonus, now, q.ExpiresAt).Error; err != nil {
		return Quote{}, fmt.Errorf("save quote: %w", err)
	}
	return q, nil
}

func checkMonthly(tx *gorm.DB, p Programme, memberID int64, dir Direction, points int64, now time.Time) error {
	if p.MonthlyMax == 0 {
		return nil
	}
	used, err := monthlyPoints(tx, memberID, p.ID, dir, monthStart(now))
	if err != nil {
		return err
	}
	if used+points > p.MonthlyMax {
		return fmt.Errorf("%d of %d points used this month: %w", used, p.MonthlyMax, ErrMonthlyLimit)
	}
	return nil
}

type quoteRow struct {
	ID          string
	MemberID    int64
	ProgrammeID int64
	Points      int64
	FeePoints   int64
	BaseUnits   int64
	BonusUnits  int64
	ExpiresAt   time.Time
}

// holdMargin keeps an exchange's hold alive past its pending deadline, so
// the hold never expires under an open exchange.
const holdMargin = 24 * time.Hour

// Confirm turns a quote into an exchange: it holds the debit, records the
// exchange (processing) and queues exchange:deliver in one transaction.
// Confirming the same quote again returns the same exchange (Replayed).
// Errors: ErrQuoteNotFound, ErrQuoteExpired, ErrNotLinked, ErrMonthlyLimit,
// ledger.ErrInsufficientPoints, ledger.ErrAccountBlocked, members errors.
func (s *Service) Confirm(ctx context.Context, memberID int64, quoteID string) (Exchange, error) {
	if _, err := uuid.Parse(quoteID); err != nil {
		return Exchange{}, fmt.Errorf("quote %q: %w", quoteID, ErrQuoteNotFound)
	}
	if err := s.activeMember(ctx, memberID); err != nil {
		return Exchange{}, err
	}
	var out Exchange
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := s.clock()
		var qs []quoteRow
		if err := tx.Raw(`SELECT id::text AS id, member_id, programme_id, points, fee_points, base_units, bonus_units, expires_at
			FROM exchange_quotes WHERE id = ? AND member_id = ? FOR UPDATE`, quoteID, memberID).Scan(&qs).Error; err != nil {
			return err
		}
		if len(qs) == 0 {
			return fmt.Errorf("quote %s: %w", quoteID, ErrQuoteNotFound)
		}
		q := qs[0]
		if prev, err := getExchange(tx, "quote_id", q.ID, false); err == nil {
			out = prev.exchange()
			out.Replayed = true
			return nil
		} else if !errors.Is(err, ErrExchangeNotFound) {
			return err
		}
		if !now.Before(q.ExpiresAt) {
			return fmt.Errorf("quote %s expired at %s: %w", q.ID, q.ExpiresAt.Format(time.RFC3339), ErrQuoteExpired)
		}
		pr, err := getProgramme(tx, q.ProgrammeID)
		if err != nil {
			return err
		}
		p := pr.programme()
		// The link row lock serialises a member's exchanges with a programme,
		// so two confirmations cannot both squeeze under the monthly limit.
		l, err := link(tx, memberID, q.ProgrammeID, true)
		if err != nil {
			return err
		}
		if err := checkMonthly(tx, p, memberID, Outbound, q.Points, now); err != nil {
			return err
		}
		publicID := uuid.NewString()
		deadline := now.Add(p.PendingDeadline)
		details, _ := json.Marshal(map[string]any{"exchange": publicID, "programme": p.Code, "units": q.BaseUnits + q.BonusUnits,
			"bonus_units": q.BonusUnits, "fee_points": q.FeePoints, "ratio": p.Out})
		h, err := s.ledger.In(tx).Hold(ctx, ledger.HoldRequest{
			Idem:     ledger.Idempotency{Scope: "system", Key: "exchange:hold:" + q.ID},
			MemberID: memberID, PartnerID: p.PartnerID, Points: ledger.Points(q.Points + q.FeePoints),
			ExpiresAt: deadline.Add(holdMargin), Purpose: "exchange", Destination: ledger.KindPartnerExchangeOut,
			ExternalRef: publicID, Details: details})
		if err != nil {
			return fmt.Errorf("hold for exchange: %w", err)
		}
		var id int64
		if err := tx.Raw(`INSERT INTO exchanges (public_id, direction, programme_id, partner_id, member_id, account, points,
			fee_points, units, bonus_units, status, quote_id, hold_id, next_check_at, deadline_at, created_at, updated_at)
			VALUES (?, 'outbound', ?, ?, ?, ?, ?, ?, ?, ?, 'processing', ?, ?, ?, ?, ?, ?) RETURNING id`,
			publicID, p.ID, p.PartnerID, memberID, l.Account, q.Points, q.FeePoints, q.BaseUnits+q.BonusUnits, q.BonusUnits,
			q.ID, h.ID, now.Add(s.StaleAfter), deadline, now, now).Scan(&id).Error; err != nil {
			return fmt.Errorf("insert exchange: %w", err)
		}
		if err := addEvent(tx, id, StatusProcessing, "confirmed", fmt.Sprintf("held %d points", q.Points+q.FeePoints), now); err != nil {
			return err
		}
		if err := outbox.Write(tx, outbox.Message{TaskType: TypeDeliver, Payload: DeliverPayload{ExchangeID: id}}); err != nil {
			return err
		}
		row, err := getExchange(tx, "id", id, false)
		out = row.exchange()
		return err
	})
	if err != nil {
		return Exchange{}, fmt.Errorf("confirm quote %s: %w", quoteID, err)
	}
	return out, nil
}

// Deliver sends an outbound exchange's credit to the partner and records a
// definitive or pending answer. It does nothing for an exchange that is no
// longer processing. A transient failure (timeout, 5xx) is returned so the
// job retries; the partner dedupes the replay by the exchange's public id.
func (s *Service) Deliver(ctx context.Context, id int64) error {
	x, ep, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	if x.Status != string(StatusProcessing) {
		return nil
	}
	if err := s.touch(ctx, x, s.StaleAfter); err != nil {
		return err
	}
	res, err := s.partner.Credit(ctx, ep, CreditRequest{TransactionID: x.PublicID, Account: x.Account, Units: x.Units})
	if err != nil {
		_ = s.note(ctx, x.ID, "attempt_failed", err.Error())
		return fmt.Errorf("deliver exchange %d: %w", id, err)
	}
	_, err = s.Record(ctx, id, res)
	return err
}

func (s *Service) load(ctx context.Context, id int64) (exchangeRow, Endpoint, error) {
	db := s.db.WithContext(ctx)
	x, err := getExchange(db, "id", id, false)
	if err != nil {
		return exchangeRow{}, Endpoint{}, err
	}
	p, err := getProgramme(db, x.ProgrammeID)
	if err != nil {
		return exchangeRow{}, Endpoint{}, err
	}
	ep, err := s.endpoint(p)
	return x, ep, err
}

// touch counts an attempt and pushes the next check back by after.
func (s *Service) touch(ctx context.Context, x exchangeRow, after time.Duration) error {
	now := s.clock()
	return s.db.WithContext(ctx).Exec(`UPDATE exchanges SET attempts = attempts + 1, next_check_at = ?, updated_at = ?
		WHERE id = ? AND status IN ('processing', 'pending')`, now.Add(after), now, x.ID).Error
}

func (s *Service) note(ctx context.Context, id int64, event, detail string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		x, err := getExchange(tx, "id", id, true)
		if err != nil {
			return err
		}
		return addEvent(tx, id, Status(x.Status), event, detail, s.clock())
	})
}

// Record applies a partner's answer about an outbound exchange, whether it
// came from the deliver job, a status poll or a partner callback. Under the
// exchange's row lock: completed captures the hold, refused voids it and
// notifies the member, pending schedules a poll. An answer for an exchange
// already past that state is logged in its history and changes nothing else,
// so duplicate answers are harmless. Errors: ErrExchangeNotFound,
// *validation.Error (unknown status).
func (s *Service) Record(ctx context.Context, id int64, res CreditResult) (Exchange, error) {
	var out Exchange
	var publish func(tx *gorm.DB) error
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := s.clock()
		x, err := getExchange(tx, "id", id, true)
		if err != nil {
			return err
		}
		if x.Direction != string(Outbound) {
			return fmt.Errorf("exchange %d is inbound: %w", id, ErrExchangeNotFound)
		}
		open := x.Status == string(StatusProcessing) || x.Status == string(StatusPending)
		switch res.Status {
		case CreditCompleted:
			if !open {
				return s.duplicate(tx, x, res, now)
			}
			if len(res.PartnerRef) > 200 {
				res.PartnerRef = res.PartnerRef[:200]
			}
			t, err := s.ledger.In(tx).Capture(ctx, ledger.CaptureRequest{
				Idem:   ledger.Idempotency{Scope: "system", Key: "exchange:capture:" + x.PublicID},
				HoldID: database.Deref(x.HoldID)})
			if err != nil {
				return fmt.Errorf("capture exchange %d: %w", id, err)
			}
			if err := tx.Exec(`UPDATE exchanges SET status = 'completed', transaction_id = ?, partner_ref = ?, completed_at = ?,
				updated_at = ?, next_check_at = NULL WHERE id = ? AND status IN ('processing', 'pending')`,
				t.ID, res.PartnerRef, now, now, id).Error; err != nil {
				return err
			}
			if err := addEvent(tx, id, StatusCompleted, "completed", "partner ref "+res.PartnerRef, now); err != nil {
				return err
			}
			publish = func(tx *gorm.DB) error {
				if err := s.notify(ctx, tx, id); err != nil {
					return err
				}
				return s.publish(tx, id, webhooks.EventExchangeCompleted, now)
			}
		case CreditRefused:
			if !open {
				return s.duplicate(tx, x, res, now)
			}
			if err := s.fail(ctx, tx, x, "refused by the partner: "+res.Reason, now); err != nil {
				return err
			}
			publish = func(tx *gorm.DB) error { return s.publish(tx, id, webhooks.EventExchangeFailed, now) }
		case CreditPending:
			if !open {
				return s.duplicate(tx, x, res, now)
			}
			if err := tx.Exec(`UPDATE exchanges SET status = 'pending', next_check_at = ?, updated_at = ? WHERE id = ?`,
				now.Add(s.PollInterval), now, id).Error; err != nil {
				return err
			}
			if x.Status == string(StatusProcessing) {
				if err := addEvent(tx, id, StatusPending, "pending", "the partner will process the credit later", now); err != nil {
					return err
				}
			}
		default:
			return validation.New("status", "must be completed, pending or refused")
		}
		if publish != nil {
			if err := publish(tx); err != nil {
				return err
			}
		}
		row, err := getExchange(tx, "id", id, false)
		out = row.exchange()
		return err
	})
	if err != nil {
		return Exchange{}, fmt.Errorf("record outcome of exchange %d: %w", id, err)
	}
	return out, nil
}

// duplicate logs an answer for an exchange already past it. A completion
// arriving after the exchange failed (its deadline passed) needs the
// operator: the partner credited units for points the member got back.
func (s *Service) duplicate(tx *gorm.DB, x exchangeRow, res CreditResult, now time.Time) error {
	event := "duplicate_answer"
	if res.Status == CreditCompleted && x.Status == string(StatusFailed) {
		event = "late_completion"
	}
	return addEvent(tx, x.ID, Status(x.Status), event, string(res.Status)+" "+res.PartnerRef, now)
}

// fail voids the hold and marks the exchange failed; the member is notified
// through the exchange's history (portal) and the partner by webhook.
func (s *Service) fail(ctx context.Context, tx *gorm.DB, x exchangeRow, reason string, now time.Time) error {
	if _, err := s.ledger.In(tx).Void(ctx, ledger.VoidRequest{
		Idem: ledger.Idempotency{Scope: "system", Key: "exchange:void:" + x.PublicID}, HoldID: database.Deref(x.HoldID)}); err != nil &&
		!errors.Is(err, ledger.ErrHoldNotActive) {
		return fmt.Errorf("void exchange %d hold: %w", x.ID, err)
	}
	if err := tx.Exec(`UPDATE exchanges SET status = 'failed', failure_reason = ?, updated_at = ?, next_check_at = NULL
		WHERE id = ? AND status IN ('processing', 'pending')`, reason, now, x.ID).Error; err != nil {
		return err
	}
	if err := addEvent(tx, x.ID, StatusFailed, "failed", reason, now); err != nil {
		return err
	}
	if err := s.notify(ctx, tx, x.ID); err != nil {
		return err
	}
	return addEvent(tx, x.ID, StatusFailed, "member_notified", fmt.Sprintf("%d points returned", x.Points+x.FeePoints), now)
}

// notify queues the member's mail about exchange id's outcome (completed or
// failed) in tx, the transaction that recorded it (members.NoticeExchanges).
func (s *Service) notify(ctx context.Context, tx *gorm.DB, id int64) error {
	row, err := getExchange(tx, "id", id, false)
	if err != nil {
		return err
	}
	p, err := getProgramme(tx, row.ProgrammeID)
	if err != nil {
		return err
	}
	x := row.exchange()
	_, err = s.members.Notify(ctx, tx, x.MemberID, members.Notice{Kind: members.NoticeExchanges, Template: "exchange_status",
		Data: map[string]any{"status": string(x.Status), "programme": p.Name, "points": x.Points + x.FeePoints,
			"units": fmt.Sprintf("%d %s", x.Units+x.BonusUnits, p.Unit), "exchange_id": x.PublicID, "reason": x.FailureReason}})
	return err
}

func (s *Service) publish(tx *gorm.DB, id int64, event string, now time.Time) error {
	row, err := getExchange(tx, "id", id, false)
	if err != nil {
		return err
	}
	_, err = webhooks.Publish(tx, now, row.PartnerID, event, row.exchange())
	return err
}

// Poll checks up to limit open exchanges whose next check is due: a pending
// one is asked for its status (and failed once its deadline passed while it
// is still pending); a processing one whose deliver job went quiet is sent
// again. It returns how many it checked. Transient partner failures are
// logged in the history and retried at the next check.
func (s *Service) Poll(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 200
	}
	var ids []int64
	if err := s.db.WithContext(ctx).Raw(`SELECT id FROM exchanges WHERE status IN ('processing', 'pending')
		AND next_check_at <= ? ORDER BY next_check_at, id LIMIT ?`, s.clock(), limit).Scan(&ids).Error; err != nil {
		return 0, fmt.Errorf("due exchanges: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if err := s.check(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return len(ids), errors.Join(errs...)
}

func (s *Service) check(ctx context.Context, id int64) error {
	x, ep, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	if err := s.touch(ctx, x, s.PollInterval); err != nil {
		return err
	}
	var res CreditResult
	switch Status(x.Status) {
	case StatusProcessing:
		res, err = s.partner.Credit(ctx, ep, CreditRequest{TransactionID: x.PublicID, Account: x.Account, Units: x.Units})
	case StatusPending:
		res, err = s.partner.CreditStatus(ctx, ep, x.PublicID)
		if err == nil && res.Status == CreditUnknown {
			// The partner lost the pending credit: send it again under the same id.
			res, err = s.partner.Credit(ctx, ep, CreditRequest{TransactionID: x.PublicID, Account: x.Account, Units: x.Units})
		}
	default:
		return nil
	}
	past := x.DeadlineAt != nil && !s.clock().Before(*x.DeadlineAt)
	if err != nil {
		if past && x.Status == string(StatusPending) {
			return s.expire(ctx, id, "deadline passed; partner unreachable")
		}
		return s.note(ctx, id, "check_failed", err.Error())
	}
	if res.Status == CreditPending && past {
		return s.expire(ctx, id, "deadline passed while the partner kept the credit pending")
	}
	_, err = s.Record(ctx, id, res)
	return err
}

func (s *Service) expire(ctx context.Context, id int64, reason string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := s.clock()
		x, err := getExchange(tx, "id", id, true)
		if err != nil {
			return err
		}
		if x.Status != string(StatusPending) && x.Status != string(StatusProcessing) {
			return nil
		}
		if err := s.fail(ctx, tx, x, reason, now); err != nil {
			return err
		}
		return s.publish(tx, id, webhooks.EventExchangeFailed, now)
	})
}

// Callback records a partner's status notification for one of its outbound
// exchanges, identified by the public transaction id. Duplicates are
// harmless (see Record). Errors: ErrExchangeNotFound (unknown or another
// partner's), *validation.Error.
func (s *Service) Callback(ctx context.Context, partnerID int64, publicID string, res CreditResult) (Exchange, error) {
	x, err := s.byPublicID(ctx, partnerID, publicID)
	if err != nil {
		return Exchange{}, err
	}
	if res.Status != CreditCompleted && res.Status != CreditRefused && res.Status != CreditPending {
		return Exchange{}, validation.New("status", "must be completed, pending or refused")
	}
	return s.Record(ctx, x.ID, res)
}

func (s *Service) byPublicID(ctx context.Context, partnerID int64, publicID string) (exchangeRow, error) {
	if _, err := uuid.Parse(publicID); err != nil {
		return exchangeRow{}, fmt.Errorf("exchange %q: %w", publicID, ErrExchangeNotFound)
	}
	x, err := getExchange(s.db.WithContext(ctx), "public_id", publicID, false)
	if err != nil {
		return exchangeRow{}, err
	}
	if x.PartnerID != partnerID || x.Direction != string(Outbound) {
		return exchangeRow{}, fmt.Errorf("exchange %s: %w", publicID, ErrExchangeNotFound)
	}
	return x, nil
}

// ReverseByPartner credits back the points of a completed outbound exchange
// that the partner reversed on its side (the capture is reversed, recreating
// the consumed lots). Reversing again returns the reversed exchange.
// Errors: ErrExchangeNotFound, ErrNotReversible.
func (s *Service) ReverseByPartner(ctx context.Context, partnerID int64, publicID, reason string) (Exchange, error) {
	x0, err := s.byPublicID(ctx, partnerID, publicID)
	if err != nil {
		return Exchange{}, err
	}
	if len(reason) > 500 {
		return Exchange{}, validation.New("reason", "must be at most 500 characters")
	}
	var out Exchange
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := s.clock()
		x, err := getExchange(tx, "id", x0.ID, true)
		if err != nil {
			return err
		}
		switch Status(x.Status) {
		case StatusReversed:
			out = x.exchange()
			out.Replayed = true
			return nil
		case StatusCompleted:
		default:
			return fmt.Errorf("exchange %s is %s: %w", publicID, x.Status, ErrNotReversible)
		}
		t, err := s.ledger.In(tx).Reverse(ctx, ledger.ReverseRequest{
			Idem:          ledger.Idempotency{Scope: "system", Key: "exchange:reverse:" + x.PublicID},
			TransactionID: database.Deref(x.TransactionID), Reason: "exchange reversed by partner: " + reason, ExternalRef: x.PublicID})
		if err != nil {
			return fmt.Errorf("reverse exchange %s: %w", publicID, err)
		}
		if err := tx.Exec(`UPDATE exchanges SET status = 'reversed', reversal_tx_id = ?, updated_at = ? WHERE id = ? AND status = 'completed'`,
			t.ID, now, x.ID).Error; err != nil {
			return err
		}
		if err := addEvent(tx, x.ID, StatusReversed, "reversed", reason, now); err != nil {
			return err
		}
		row, err := getExchange(tx, "id", x.ID, false)
		out = row.exchange()
		return err
	})
	if err != nil {
		return Exchange{}, fmt.Errorf("reverse exchange %s: %w", publicID, err)
	}
	return out, nil
}

// ---- inbound

// InboundInput is a partner's conversion of its units into points for a
// member. PartnerTransactionID is the partner's own id of the debit on its
// side; it is unique per partner.
type InboundInput struct {
	Programme            string `json:"programme"`
	MemberID             int64  `json:"member_id"`
	Account              string `json:"account"`
	Units                int64  `json:"units"`
	PartnerTransactionID string `json:"partner_transaction_id"`
}

// Inbound credits a member with points for units the partner already
// debited, at the programme's inbound ratio (rounded down), as a ledger earn
// funded by the partner (billed at its contract's issue price; prepaid
// partners are drawn down at once). Idempotent twice over: by idem and by
// the partner's transaction id. Errors: *validation.Error,
// ErrProgrammeNotFound, ErrDirectionClosed, ErrMonthlyLimit,
// ErrDuplicateReference, partners.ErrNoContract, partners.ErrPrepaidExhausted,
// ledger.ErrIdempotencyMismatch, members errors.
func (s *Service) Inbound(ctx context.Context, partnerID int64, idem ledger.Idempotency, in InboundInput) (Exchange, error) {
	var v validation.Error
	v.Check(in.Programme != "", "programme", "is required")
	v.Check(in.MemberID > 0, "member_id", "is required")
	v.Check(in.Account == "" || accountRE.MatchString(in.Account), "account", "must be 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-'")
	v.Check(in.PartnerTransactionID != "" && len(in.PartnerTransactionID) <= 200, "partner_transaction_id", "is required (at most 200 characters)")
	if err := v.Err(); err != nil {
		return Exchange{}, err
	}
	db := s.db.WithContext(ctx)
	var rows []programmeRow
	if err := db.Raw(`SELECT `+programmeColumns+` FROM exchange_programmes WHERE code = ? AND partner_id = ? AND status = 'active'`,
		in.Programme, partnerID).Scan(&rows).Error; err != nil {
		return Exchange{}, err
	}
	if len(rows) == 0 {
		return Exchange{}, fmt.Errorf("programme %q: %w", in.Programme, ErrProgrammeNotFound)
	}
	p := rows[0].programme()
	points, err := PriceInbound(p, in.Units)
	if err != nil {
		return Exchange{}, err
	}
	if err := s.activeMember(ctx, in.MemberID); err != nil {
		return Exchange{}, err
	}
	now := s.clock()
	c, err := s.registry.ContractAt(ctx, partnerID, now)
	if err != nil {
		return Exchange{}, err
	}
	var out Exchange
	err = db.Transaction(func(tx *gorm.DB) error {
		if prev, err := getInbound(tx, partnerID, in.PartnerTransactionID); err == nil {
			if prev.MemberID != in.MemberID || prev.Units != in.Units || prev.ProgrammeID != p.ID {
				return fmt.Errorf("partner transaction %s: %w", in.PartnerTransactionID, ErrDuplicateReference)
			}
			out = prev.exchange()
			out.Replayed = true
			return nil
		} else if !errors.Is(err, ErrExchangeNotFound) {
			return err
		}
		// Serialise a member's inbound exchanges for the monthly limit.
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtext('exchange-in'), ?::int)`, int32(in.MemberID)).Error; err != nil {
			return err
		}
		if err := checkMonthly(tx, p, in.MemberID, Inbound, points, now); err != nil {
			return err
		}
		charge := money.PointsValue(points, c.IssuePrice, c.Currency)
		details, _ := json.Marshal(map[string]any{"exchange": map[string]any{"direction": "inbound", "programme": p.Code,
			"units": in.Units, "ratio": p.In, "partner_transaction_id": in.PartnerTransactionID},
			"contract": map[string]any{"id": c.ID, "version": c.Version, "issue_price": c.IssuePrice.String(),
				"currency": c.Currency, "billing": string(c.Billing)}, "charge_minor": charge})
		t, err := s.ledger.In(tx).Earn(ctx, ledger.EarnRequest{Idem: idem, MemberID: in.MemberID, PartnerID: partnerID,
			Points: ledger.Points(points), OccurredAt: now, ExternalRef: in.PartnerTransactionID, Details: details})
		if err != nil {
			return err
		}
		if t.Replayed {
			prev, err := getExchange(tx, "transaction_id", t.ID, false)
			if err != nil {
				return err
			}
			out = prev.exchange()
			out.Replayed = true
			return nil
		}
		if c.Billing == partners.BillingPrepaid && charge > 0 {
			if _, err := s.registry.DrawDown(tx, partnerID, money.Money{Minor: charge, Currency: c.Currency},
				fmt.Sprintf("exchange-in:%d", t.ID)); err != nil {
				return err
			}
		}
		account := in.Account
		if account == "" {
			account = "-"
		}
		var id int64
		if err := tx.Raw(`INSERT INTO exchanges (public_id, direction, programme_id, partner_id, member_id, account, points,
			units, status, transaction_id, partner_ref, created_at, updated_at, completed_at)
			VALUES (?, 'inbound', ?, ?, ?, ?, ?, ?, 'completed', ?, ?, ?, ?, ?) RETURNING id`,
			uuid.NewString(), p.ID, partnerID, in.MemberID, account, points, in.Units, t.ID, in.PartnerTransactionID,
			now, now, now).Scan(&id).Error; err != nil {
			if database.IsUnique(err, "exchanges_inbound_ref") {
				return fmt.Errorf("partner transaction %s: %w", in.PartnerTransactionID, ErrDuplicateReference)
			}
			return err
		}
		if err := addEvent(tx, id, StatusCompleted, "credited", fmt.Sprintf("%d %s to %d points", in.Units, p.Unit, points), now); err != nil {
			return err
		}
		if err := s.publish(tx, id, webhooks.EventExchangeCompleted, now); err != nil {
			return err
		}
		row, err := getExchange(tx, "id", id, false)
		out = row.exchange()
		return err
	})
	if err != nil {
		return Exchange{}, fmt.Errorf("inbound exchange %s: %w", in.PartnerTransactionID, err)
	}
	return out, nil
}

func getInbound(tx *gorm.DB, partnerID int64, ref string) (exchangeRow, error) {
	var rows []exchangeRow
	if err := tx.Raw(`SELECT `+exchangeColumns+` FROM exchanges WHERE direction = 'inbound' AND partner_id = ? AND partner_ref = ?`,
		partnerID, ref).Scan(&rows).Error; err != nil {
		return exchangeRow{}, err
	}
	if len(rows) == 0 {
		return exchangeRow{}, ErrExchangeNotFound
	}
	return rows[0], nil
}

// ---- reads

// Get returns one exchange with its history. Errors: ErrExchangeNotFound.
func (s *Service) Get(ctx context.Context, id int64) (Exchange, error) {
	db := s.db.WithContext(ctx)
	r, err := getExchange(db, "id", id, false)
	if err != nil {
		return Exchange{}, err
	}
	x := r.exchange()
	if x.History, err = history(db, id); err != nil {
		return Exchange{}, err
	}
	return x, nil
}

// GetFor returns an exchange only if it belongs to the member (memberID > 0)
// or the partner (partnerID > 0); otherwise ErrExchangeNotFound.
func (s *Service) GetFor(ctx context.Context, memberID, partnerID, id int64) (Exchange, error) {
	x, err := s.Get(ctx, id)
	if err != nil {
		return Exchange{}, err
	}
	if (memberID > 0 && x.MemberID != memberID) || (partnerID > 0 && x.PartnerID != partnerID) {
		return Exchange{}, fmt.Errorf("exchange %d: %w", id, ErrExchangeNotFound)
	}
	return x, nil
}

// List returns exchanges newest first, keyset-paginated on id (After is the
// last id of the previous page). Limit defaults to 50, at most 200.
func (s *Service) List(ctx context.Context, f Filter) ([]Exchange, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 200)
	q := s.db.WithContext(ctx).Table("exchanges").Select(exchangeColumns).Order("id DESC").Limit(f.Limit)
	if f.MemberID > 0 {
		q = q.Where("member_id = ?", f.MemberID)
	}
	if f.PartnerID > 0 {
		q = q.Where("partner_id = ?", f.PartnerID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", string(f.Status))
	}
	if f.After > 0 {
		q = q.Where("id < ?", f.After)
	}
	var rows []exchangeRow
	if err := q.Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list exchanges: %w", err)
	}
	out := make([]Exchange, len(rows))
	for i, r := range rows {
		out[i] = r.exchange()
	}
	return out, nil
}
