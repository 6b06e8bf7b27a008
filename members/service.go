package members

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/mail"
	"github.com/coalitionhub/hub/internal/throttle"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
)

// Service is the member base's use cases. Each method opens its own database
// transaction; the ones that move points (Close, Merge) run the ledger inside
// that same transaction, so the member rows and the points change together or
// not at all.
type Service struct {
	db     *gorm.DB
	ledger *ledger.Service
	now    func() time.Time
	logins *throttle.Limiter // per-account sign-in throttle
	mails  *throttle.Limiter // per-account budget of emailed links (MailPolicy)

	passwordCost int           // bcrypt cost of new passwords
	dummyHash    func() []byte // what an unknown email's password is compared with

	unsubscribeKey []byte // signs unsubscribe links (WithUnsubscribeKey)

	erasureAfter ErasureSchedule // the erasure schedule after consent is withdrawn (nil: never)
}

// Option adjusts a Service.
type Option func(*Service)

// WithPasswordCost sets the bcrypt cost of new passwords and of the dummy
// hash an unknown email is compared with (default bcrypt.DefaultCost).
// Tests lower it: under the race detector a comparison at the default cost
// takes seconds.
func WithPasswordCost(cost int) Option { return func(s *Service) { s.passwordCost = cost } }

// NewService builds the service. l is the ledger the member's points live in;
// now is the clock (tests pass a fixed one).
func NewService(db *gorm.DB, l *ledger.Service, now func() time.Time, opts ...Option) *Service {
	s := &Service{db: db, ledger: l, now: now, logins: throttle.New(db, "member", throttle.DefaultPolicy, now),
		mails:        throttle.New(db, "member_mail", MailPolicy, now),
		passwordCost: bcrypt.DefaultCost, unsubscribeKey: randomKey()}
	for _, o := range opts {
		o(s)
	}
	// Made on first use, so that building a service costs nothing; compared
	// at the same cost as real passwords, so a sign-in takes as long whether
	// or not the account exists.
	s.dummyHash = sync.OnceValue(func() []byte {
		h, _ := bcrypt.GenerateFromPassword([]byte("not a password"), s.passwordCost)
		return h
	})
	return s
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// errLostRace: a concurrent enrolment took the identifier between our lookup
// and our insert; the enrolment is retried and then finds that member.
var errLostRace = errors.New("identifier taken concurrently")

// Enrol returns the member holding r.Identifier, or creates one. It is
// idempotent by identifier: when the identifier is known, the existing member
// is returned with created=false and its profile is left untouched (a partner
// cannot overwrite a member's data by enrolling again). Concurrent enrolments
// of one identifier create exactly one member. A new member always gets a
// card: the enrolling card when the identifier is one (pre-printed card
// stock), otherwise a freshly drawn number. A marketing grant in r.Consent is
// recorded as a consent event. Bad input is a *validation.Error.
func (s *Service) Enrol(ctx context.Context, r EnrolRequest) (Member, bool, error) {
	ident, err := ParseIdentifier(string(r.Identifier.Type), r.Identifier.Value, r.Identifier.PartnerID)
	if err != nil {
		return Member{}, false, prefixFields(err, "identifier.")
	}
	p, err := normaliseProfile(r.Profile, s.clock())
	if err != nil {
		return Member{}, false, err
	}
	ve := &validation.Error{}
	ve.Check(r.SourcePartnerID >= 0, "source_partner_id", "must not be negative")
	ve.Check(len(r.Consent.Source) <= 100, "consent.source", "is at most 100 characters")
	ve.Check(len(r.Actor) <= 200, "actor", "is at most 200 characters")
	if err := ve.Err(); err != nil {
		return Member{}, false, err
	}
	actor := orDefault(r.Actor, "system")
	for attempt := 0; attempt < 3; attempt++ {
		var m Member
		created := false
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			id, err := memberIDByIdentifier(tx, ident)
			if err == nil {
				m, err = loadMember(tx, id)
				return err
			}
			if !errors.Is(err, ErrNotFound) {
				return err
			}
			now := s.clock()
			id, err = insertMember(tx, p, r.Consent, r.SourcePartnerID, now)
			if err != nil {
				return err
			}
			ok, err := insertIdentifier(tx, id, ident, ident.Type == IdentifierCard, now)
			if err != nil {
				return err
			}
			if !ok {
				return errLostRace
			}
			if ident.Type != IdentifierCard {
				if _, err := issueCard(tx, id, now); err != nil {
					return err
				}
			}
			if r.Consent.Marketing {
				if err := insertConsent(tx, id, true, orDefault(r.Consent.Source, "enrolment"), actor, now); err != nil {
					return err
				}
			}
			created = true
			m, err = loadMember(tx, id)
			return err
		})
		if errors.Is(err, errLostRace) {
			continue
		}
		if err != nil {
			return Member{}, false, fmt.Errorf("enrol %s: %w", ident.Type, err)
		}
		return m, created, nil
	}
	return Member{}, false, fmt.Errorf("enrol %s: %w", ident.Type, errLostRace)
}

// Get returns a member with its identifiers, or ErrNotFound. Merged members
// are returned as they are (status merged, MergedIntoID set).
func (s *Service) Get(ctx context.Context, id int64) (Member, error) {
	m, err := loadMember(s.db.WithContext(ctx), id)
	if err != nil {
		return Member{}, fmt.Errorf("get member %d: %w", id, err)
	}
	return m, nil
}

// Lookup finds the member holding an identifier (parsed and normalised as
// ParseIdentifier does), or ErrNotFound. Identifiers of merged duplicates
// belong to the survivor, so a lookup always lands on a live record.
func (s *Service) Lookup(ctx context.Context, ident Identifier) (Member, error) {
	ident, err := ParseIdentifier(string(ident.Type), ident.Value, ident.PartnerID)
	if err != nil {
		return Member{}, err
	}
	db := s.db.WithContext(ctx)
	id, err := memberIDByIdentifier(db, ident)
	if err != nil {
		return Member{}, fmt.Errorf("lookup %s: %w", ident.Type, err)
	}
	m, err := loadMember(db, id)
	if err != nil {
		return Member{}, fmt.Errorf("lookup %s: %w", ident.Type, err)
	}
	return m, nil
}

// Search pages members for the console in id order (keyset pagination: the
// returned cursor is "" on the last page). See Query for how Text matches.
func (s *Service) Search(ctx context.Context, q Query) ([]Member, string, error) {
	ve := &validation.Error{}
	limit := q.Limit
	if limit == 0 {
		limit = 50
	}
	ve.Check(limit > 0 && limit <= 200, "limit", "must be between 1 and 200")
	var after int64
	if q.Cursor != "" {
		n, err := strconv.ParseInt(q.Cursor, 10, 64)
		ve.Check(err == nil && n > 0, "cursor", "is not a cursor this API returned")
		after = n
	}
	switch q.Status {
	case "", StatusActive, StatusSuspended, StatusClosed, StatusMerged:
	default:
		ve.Add("status", "must be one of active, suspended, closed, merged")
	}
	text := strings.TrimSpace(q.Text)
	ve.Check(len(text) <= 254, "q", "is at most 254 characters")
	if err := ve.Err(); err != nil {
		return nil, "", err
	}
	var ident *Identifier
	for _, t := range []IdentifierType{IdentifierCard, IdentifierEmail, IdentifierPhone} {
		if text == "" {
			break
		}
		if id, err := ParseIdentifier(string(t), text, 0); err == nil {
			ident = &id
			break
		}
	}
	db := s.db.WithContext(ctx)
	rows, err := searchMembers(db, ident, strings.ToLower(text), q.Status, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("search members: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = strconv.FormatInt(rows[len(rows)-1].ID, 10)
	}
	out, err := withIdentifiers(db, rows)
	if err != nil {
		return nil, "", fmt.Errorf("search members: %w", err)
	}
	return out, next, nil
}

// UpdateProfile replaces the profile of a member that is not closed or
// merged (ErrMemberInactive). Identifiers are not touched: the contact email
// and phone are separate from the lookup keys.
func (s *Service) UpdateProfile(ctx context.Context, id int64, p Profile) (Member, error) {
	p, err := normaliseProfile(p, s.clock())
	if err != nil {
		return Member{}, err
	}
	m, err := s.change(ctx, id, func(tx *gorm.DB, r memberRow) error {
		if err := notEnded(r); err != nil {
			return err
		}
		return updateProfile(tx, id, p, s.clock())
	})
	if err != nil {
		return Member{}, fmt.Errorf("update profile of member %d: %w", id, err)
	}
	return m, nil
}

// AddIdentifier gives a member one more email, phone or partner reference.
// Adding one the member already holds changes nothing; one held by another
// member is ErrIdentifierTaken. Cards are issued by the hub (ErrCardRequired).
func (s *Service) AddIdentifier(ctx context.Context, memberID int64, ident Identifier) (Member, error) {
	ident, err := ParseIdentifier(string(ident.Type), ident.Value, ident.PartnerID)
	if err != nil {
		return Member{}, err
	}
	if ident.Type == IdentifierCard {
		return Member{}, fmt.Errorf("add identifier: %w", ErrCardRequired)
	}
	m, err := s.change(ctx, memberID, func(tx *gorm.DB, r memberRow) error {
		if err := notEnded(r); err != nil {
			return err
		}
		ok, err := insertIdentifier(tx, memberID, ident, false, s.clock())
		if err != nil || ok {
			return err
		}
		holder, err := memberIDByIdentifier(tx, ident)
		if err != nil {
			return err
		}
		if holder != memberID {
			return ErrIdentifierTaken
		}
		return nil
	})
	if err != nil {
		return Member{}, fmt.Errorf("add %s to member %d: %w", ident.Type, memberID, err)
	}
	return m, nil
}

// RemoveIdentifier drops an email, phone or partner reference of a member
// (ErrNotFound when the member does not hold it). Cards cannot be removed
// (ErrCardRequired): they tie the account to its ledger history.
func (s *Service) RemoveIdentifier(ctx context.Context, memberID int64, ident Identifier) (Member, error) {
	ident, err := ParseIdentifier(string(ident.Type), ident.Value, ident.PartnerID)
	if err != nil {
		return Member{}, err
	}
	if ident.Type == IdentifierCard {
		return Member{}, fmt.Errorf("remove identifier: %w", ErrCardRequired)
	}
	m, err := s.change(ctx, memberID, func(tx *gorm.DB, r memberRow) error {
		ok, err := deleteIdentifier(tx, memberID, ident)
		if err == nil && !ok {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return Member{}, fmt.Errorf("remove %s from member %d: %w", ident.Type, memberID, err)
	}
	return m, nil
}

// SetConsent records a grant or withdrawal of marketing consent as a consent
// event (every call is recorded, a confirmation too) and sets the member's
// current consent. Withdrawal is always possible; a grant needs a member that
// is not closed or merged (ErrMemberInactive).
func (s *Service) SetConsent(ctx context.Context, memberID int64, c Consent, actor string) (Member, error) {
	ve := &validation.Error{}
	ve.Check(c.Source != "" && len(c.Source) <= 100, "source", "is required (at most 100 characters)")
	ve.Check(actor != "" && len(actor) <= 200, "actor", "is required (at most 200 characters)")
	if err := ve.Err(); err != nil {
		return Member{}, err
	}
	m, err := s.change(ctx, memberID, func(tx *gorm.DB, r memberRow) error {
		if c.Marketing {
			if err := notEnded(r); err != nil {
				return err
			}
		}
		now := s.clock()
		if err := insertConsent(tx, memberID, c.Marketing, c.Source, actor, now); err != nil {
			return err
		}
		return s.recordConsent(ctx, tx, memberID, c.Marketing, actor, now)
	})
	if err != nil {
		return Member{}, fmt.Errorf("set consent of member %d: %w", memberID, err)
	}
	return m, nil
}

// ConsentHistory returns a member's recorded consent grants and
// withdrawals, newest first: the trail behind the current consent.
func (s *Service) ConsentHistory(ctx context.Context, memberID int64) ([]ConsentEvent, error) {
	rows, err := consentRows(s.db.WithContext(ctx), []int64{memberID})
	if err != nil {
		return nil, fmt.Errorf("consents of member %d: %w", memberID, err)
	}
	out := make([]ConsentEvent, len(rows))
	for i, r := range rows {
		out[len(rows)-1-i] = toConsent(r)
	}
	return out, nil
}

// Suspend stops an active member from transacting (fraud review, a lost
// card). Suspending a suspended member changes nothing; closed and merged
// members cannot be suspended (ErrMemberInactive).
func (s *Service) Suspend(ctx context.Context, id int64, reason, actor string) (Member, error) {
	if err := requireReasonActor(reason, actor); err != nil {
		return Member{}, err
	}
	m, err := s.change(ctx, id, func(tx *gorm.DB, r memberRow) error {
		switch Status(r.Status) {
		case StatusSuspended:
			return nil
		case StatusActive:
			if err := setStatus(tx, id, StatusSuspended, reason, actor, s.clock()); err != nil {
				return err
			}
			return endSessions(tx, id, "", EndSuspended, s.clock())
		}
		return notEnded(r)
	})
	if err != nil {
		return Member{}, fmt.Errorf("suspend member %d: %w", id, err)
	}
	return m, nil
}

// Reactivate lifts a suspension. An active member stays as it is; closed and
// merged members cannot come back (ErrMemberInactive).
func (s *Service) Reactivate(ctx context.Context, id int64, actor string) (Member, error) {
	if err := requireReasonActor("reactivated", actor); err != nil {
		return Member{}, err
	}
	m, err := s.change(ctx, id, func(tx *gorm.DB, r memberRow) error {
		switch Status(r.Status) {
		case StatusActive:
			return nil
		case StatusSuspended:
			return setStatus(tx, id, StatusActive, "reactivated", actor, s.clock())
		}
		return notEnded(r)
	})
	if err != nil {
		return Member{}, fmt.Errorf("reactivate member %d: %w", id, err)
	}
	return m, nil
}

// Close ends a membership: the member's remaining points are forfeited
// through the ledger (in the same transaction) and the account is marked
// closed, after which CanTransact refuses it. Closing a closed member changes
// nothing (the ledger call is keyed "member:<id>:close", so it is not repeated
// either); a merged member cannot be closed (ErrMemberInactive).
func (s *Service) Close(ctx context.Context, id int64, reason, actor string) (Member, error) {
	if err := requireReasonActor(reason, actor); err != nil {
		return Member{}, err
	}
	m, err := s.change(ctx, id, func(tx *gorm.DB, r memberRow) error {
		switch Status(r.Status) {
		case StatusClosed:
			return nil
		case StatusMerged:
			return notEnded(r)
		}
		idem := ledger.Idempotency{Scope: "operator", Key: fmt.Sprintf("member:%d:close", id)}
		if _, err := s.ledger.In(tx).Forfeit(ctx, idem, id, reason); err != nil {
			return fmt.Errorf("forfeit points: %w", err)
		}
		if err := setStatus(tx, id, StatusClosed, reason, actor, s.clock()); err != nil {
			return err
		}
		return endSessions(tx, id, "", EndClosed, s.clock())
	})
	if err != nil {
		return Member{}, fmt.Errorf("close member %d: %w", id, err)
	}
	return m, nil
}

// Merge folds a duplicate record of one person into the survivor, atomically:
// the duplicate's identifiers (cards included, as secondary cards) move to the
// survivor, the ledger moves its balance, lots and holds (MergeMembers), the
// duplicate is marked merged into the survivor, and the merge is recorded.
// Repeating a completed merge returns the original record. Errors:
// ErrInvalidMerge for a self-merge, a closed or merged survivor, or a
// duplicate that is closed or merged into someone else; ErrNotFound.
func (s *Service) Merge(ctx context.Context, r MergeRequest) (Merge, error) {
	ve := &validation.Error{}
	ve.Check(r.SurvivorID > 0, "survivor_id", "is required")
	ve.Check(r.DuplicateID > 0, "duplicate_id", "is required")
	ve.Check(r.Actor != "" && len(r.Actor) <= 200, "actor", "is required (at most 200 characters)")
	ve.Check(strings.TrimSpace(r.Reason) != "" && len(r.Reason) <= 500, "reason", "is required (at most 500 characters)")
	if err := ve.Err(); err != nil {
		return Merge{}, err
	}
	if r.SurvivorID == r.DuplicateID {
		return Merge{}, fmt.Errorf("merge member %d into itself: %w", r.SurvivorID, ErrInvalidMerge)
	}
	var out Merge
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		rows, err := lockMemberRows(tx, r.SurvivorID, r.DuplicateID)
		if err != nil {
			return err
		}
		sur, ok1 := rows[r.SurvivorID]
		dup, ok2 := rows[r.DuplicateID]
		if !ok1 || !ok2 {
			return ErrNotFound
		}
		if Status(dup.Status) == StatusMerged && database.Deref(dup.MergedIntoID) == sur.ID {
			done, err := mergeRows(tx, `duplicate_id = ?`, dup.ID)
			if err != nil {
				return err
			}
			if len(done) != 1 {
				return fmt.Errorf("merged member %d has no merge record", dup.ID)
			}
			out = toMerge(done[0])
			return nil
		}
		switch {
		case Status(sur.Status) == StatusClosed || Status(sur.Status) == StatusMerged:
			return fmt.Errorf("survivor %d is %s: %w", sur.ID, sur.Status, ErrInvalidMerge)
		case Status(dup.Status) == StatusClosed || Status(dup.Status) == StatusMerged:
			return fmt.Errorf("duplicate %d is %s: %w", dup.ID, dup.Status, ErrInvalidMerge)
		}
		now := s.clock()
		moved, err := moveIdentifiers(tx, dup.ID, sur.ID)
		if err != nil {
			return fmt.Errorf("move identifiers: %w", err)
		}
		idem := ledger.Idempotency{Scope: "operator", Key: fmt.Sprintf("member:%d:merge", dup.ID)}
		lt, err := s.ledger.In(tx).MergeMembers(ctx, idem, dup.ID, sur.ID)
		if err != nil {
			return fmt.Errorf("merge points: %w", err)
		}
		if err := markMerged(tx, dup.ID, sur.ID, r.Reason, r.Actor, now); err != nil {
			return err
		}
		if err := endSessions(tx, dup.ID, "", EndMerged, now); err != nil {
			return err
		}
		if err := touch(tx, sur.ID, now); err != nil {
			return err
		}
		out = Merge{SurvivorID: sur.ID, DuplicateID: dup.ID, LedgerTransactionID: lt.ID, IdentifiersMoved: moved,
			Actor: r.Actor, Reason: r.Reason, MergedAt: now}
		out.ID, err = insertMerge(tx, out)
		return err
	})
	if err != nil {
		return Merge{}, fmt.Errorf("merge member %d into %d: %w", r.DuplicateID, r.SurvivorID, err)
	}
	return out, nil
}

// Export gathers everything the hub holds about a member — profile,
// identifiers, consent history, data-subject requests, merges and the records
// merged into it, recent sign-in sessions, balance, lots and every ledger
// transaction of the member and of its merged duplicates — and records the
// request in the register (the export includes its own entry). It reads one
// consistent snapshot.
func (s *Service) Export(ctx context.Context, id int64, actor string) (Export, error) {
	if actor == "" || len(actor) > 200 {
		return Export{}, validation.New("actor", "is required (at most 200 characters)")
	}
	var out Export
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := getMemberRow(tx, id, false); err != nil {
			return err
		}
		now := s.clock()
		if err := insertDSR(tx, id, DSRExport, actor, now); err != nil {
			return fmt.Errorf("record request: %w", err)
		}
		// The export answers the member's open access requests.
		if err := tx.Exec(`UPDATE data_subject_requests SET status = 'done', completed_at = ?, handled_by = ?,
			updated_at = ?, note = 'answered by an export' WHERE member_id = ? AND kind = 'access' AND status IN ('open', 'refused')`,
			now, actor, now, id).Error; err != nil {
			return fmt.Errorf("answer access requests: %w", err)
		}
		dups, err := mergedInto(tx, id)
		if err != nil {
			return err
		}
		all := append([]int64{id}, dups...)
		ms, err := loadMembers(tx, all)
		if err != nil {
			return err
		}
		out = Export{GeneratedAt: now, Member: ms[0], MergedMembers: ms[1:],
			Consents: []ConsentEvent{}, Requests: []DataSubjectRequest{}, Merges: []Merge{}, Sessions: []Session{}}
		srs, err := sessionRows(tx, all)
		if err != nil {
			return err
		}
		for _, r := range srs {
			out.Sessions = append(out.Sessions, r.session())
		}
		out.MailOptOuts = []NoticeKind{}
		if err := tx.Raw(`SELECT kind FROM member_mail_optouts WHERE member_id IN ? ORDER BY kind`, all).
			Scan(&out.MailOptOuts).Error; err != nil {
			return err
		}
		crs, err := consentRows(tx, all)
		if err != nil {
			return err
		}
		for _, c := range crs {
			out.Consents = append(out.Consents, toConsent(c))
		}
		drs, err := dsrRows(tx, all)
		if err != nil {
			return err
		}
		for _, d := range drs {
			out.Requests = append(out.Requests, toDSR(d))
		}
		mrs, err := mergeRows(tx, `survivor_id IN ? OR duplicate_id = ?`, all, id)
		if err != nil {
			return err
		}
		for _, m := range mrs {
			out.Merges = append(out.Merges, toMerge(m))
		}
		l := s.ledger.In(tx)
		if out.Balance, err = l.Balance(ctx, id); err != nil {
			return fmt.Errorf("balance: %w", err)
		}
		if out.Lots, err = l.Lots(ctx, id); err != nil {
			return fmt.Errorf("lots: %w", err)
		}
		out.Transactions = []ledger.Transaction{}
		for _, mid := range all {
			cursor := ""
			for {
				page, next, err := l.List(ctx, ledger.Filter{MemberID: mid, Cursor: cursor, Limit: 500})
				if err != nil {
					return fmt.Errorf("transactions: %w", err)
				}
				out.Transactions = append(out.Transactions, page...)
				if next == "" {
					break
				}
				cursor = next
			}
		}
		return nil
	}, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return Export{}, fmt.Errorf("export member %d: %w", id, err)
	}
	return out, nil
}

// Erase answers an erasure request: it pseudonymises the member and every
// record merged into it — names, email, phone and birth date are cleared,
// marketing consent is withdrawn (recorded as a consent event), identifiers
// other than card numbers and sign-in sessions are deleted — and records the
// request. Card numbers, the rows themselves and every ledger amount stay, so
// balances, statements and the audit are unchanged. The account must be
// closed first (ErrNotClosed) so that an erased member cannot transact.
// Erasing an erased member changes nothing and returns it.
func (s *Service) Erase(ctx context.Context, id int64, actor string) (Member, error) {
	if actor == "" || len(actor) > 200 {
		return Member{}, validation.New("actor", "is required (at most 200 characters)")
	}
	var m Member
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Lock the member and everything merged into it in id order, as Merge
		// does. The set cannot grow meanwhile: nothing merges into a closed
		// or merged member.
		dups, err := mergedInto(tx, id)
		if err != nil {
			return err
		}
		ids := append([]int64{id}, dups...)
		rows, err := lockMemberRows(tx, ids...)
		if err != nil {
			return err
		}
		r, ok := rows[id]
		if !ok {
			return ErrNotFound
		}
		if r.ErasedAt == nil {
			if st := Status(r.Status); st != StatusClosed && st != StatusMerged {
				return fmt.Errorf("member is %s: %w", st, ErrNotClosed)
			}
			now := s.clock()
			for _, mid := range ids {
				mr := rows[mid]
				if mr.ErasedAt != nil {
					continue
				}
				if mr.MarketingConsent {
					if err := insertConsent(tx, mid, false, "erasure", actor, now); err != nil {
						return err
					}
				}
				if _, err := mail.Forget(tx, database.Deref(mr.Email)); err != nil {
					return fmt.Errorf("erase mail of member %d: %w", mid, err)
				}
				if err := eraseRow(tx, mid, now); err != nil {
					return fmt.Errorf("erase member %d: %w", mid, err)
				}
				if err := tx.Exec(`DELETE FROM member_sessions WHERE member_id = ?`, mid).Error; err != nil {
					return fmt.Errorf("erase sessions of member %d: %w", mid, err)
				}
				if err := tx.Exec(`DELETE FROM member_links WHERE member_id = ?`, mid).Error; err != nil {
					return fmt.Errorf("erase emailed links of member %d: %w", mid, err)
				}
				if err := insertDSR(tx, mid, DSRErasure, actor, now); err != nil {
					return fmt.Errorf("record request: %w", err)
				}
			}
		}
		m, err = loadMember(tx, id)
		return err
	})
	if err != nil {
		return Member{}, fmt.Errorf("erase member %d: %w", id, err)
	}
	return m, nil
}

// change runs fn on the locked member row in a transaction and returns the
// member as it is afterwards.
func (s *Service) change(ctx context.Context, id int64, fn func(tx *gorm.DB, r memberRow) error) (Member, error) {
	var m Member
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := getMemberRow(tx, id, true)
		if err != nil {
			return err
		}
		if err := fn(tx, r); err != nil {
			return err
		}
		m, err = loadMember(tx, id)
		return err
	})
	return m, err
}

func loadMember(tx *gorm.DB, id int64) (Member, error) {
	ms, err := loadMembers(tx, []int64{id})
	if err != nil {
		return Member{}, err
	}
	return ms[0], nil
}

// loadMembers reads members in the order of ids; a missing one is ErrNotFound.
func loadMembers(tx *gorm.DB, ids []int64) ([]Member, error) {
	var rows []memberRow
	if err := tx.Raw(`SELECT `+memberColumns+` FROM members WHERE id IN ?`, ids).Scan(&rows).Error; err != nil {
		return nil, err
	}
	byID := make(map[int64]memberRow, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	ordered := make([]memberRow, 0, len(ids))
	for _, id := range ids {
		r, ok := byID[id]
		if !ok {
			return nil, ErrNotFound
		}
		ordered = append(ordered, r)
	}
	return withIdentifiers(tx, ordered)
}

func withIdentifiers(tx *gorm.DB, rows []memberRow) ([]Member, error) {
	out := make([]Member, 0, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	idents, err := identifierRows(tx, ids)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		out = append(out, toMember(r, idents[r.ID]))
	}
	return out, nil
}

// notEnded refuses closed and merged members.
func notEnded(r memberRow) error {
	switch Status(r.Status) {
	case StatusClosed:
		return fmt.Errorf("member %d is closed: %w", r.ID, ErrMemberInactive)
	case StatusMerged:
		return fmt.Errorf("member %d was merged into %d: %w", r.ID, database.Deref(r.MergedIntoID), ErrMemberInactive)
	}
	return nil
}

func requireReasonActor(reason, actor string) error {
	ve := &validation.Error{}
	ve.Check(strings.TrimSpace(reason) != "" && len(reason) <= 500, "reason", "is required (at most 500 characters)")
	ve.Check(strings.TrimSpace(actor) != "" && len(actor) <= 200, "actor", "is required (at most 200 characters)")
	return ve.Err()
}

var localeRE = regexp.MustCompile(`^[a-z]{2,3}(-[A-Z]{2})?$`)

// normaliseProfile trims and validates a profile; errors name
// "profile.<field>". The locale defaults to "en".
func normaliseProfile(p Profile, now time.Time) (Profile, error) {
	ve := &validation.Error{}
	out := Profile{
		GivenName:  strings.TrimSpace(p.GivenName),
		FamilyName: strings.TrimSpace(p.FamilyName),
		Locale:     strings.TrimSpace(p.Locale),
		BirthDate:  strings.TrimSpace(p.BirthDate),
	}
	for _, f := range []struct{ name, v string }{{"given_name", out.GivenName}, {"family_name", out.FamilyName}} {
		ve.Check(len([]rune(f.v)) <= 100 && !strings.ContainsFunc(f.v, unicode.IsControl),
			"profile."+f.name, "is at most 100 characters, without control characters")
	}
	if strings.TrimSpace(p.Email) != "" {
		v, msg := normaliseEmail(p.Email)
		ve.Check(msg == "", "profile.email", msg)
		out.Email = v
	}
	if strings.TrimSpace(p.Phone) != "" {
		v, msg := normalisePhone(p.Phone)
		ve.Check(msg == "", "profile.phone", msg)
		out.Phone = v
	}
	if out.BirthDate != "" {
		d, err := time.Parse(time.DateOnly, out.BirthDate)
		ve.Check(err == nil && d.Year() >= 1900 && !d.After(now), "profile.birth_date",
			"must be a past date YYYY-MM-DD, from 1900 on")
	}
	if out.Locale == "" {
		out.Locale = "en"
	}
	ve.Check(localeRE.MatchString(out.Locale), "profile.locale", "must be a language tag such as en or pt-BR")
	return out, ve.Err()
}

// prefixFields returns err with its field names prefixed (errors of a nested
// object), or err unchanged when it is not a validation error.
func prefixFields(err error, prefix string) error {
	var ve *validation.Error
	if !errors.As(err, &ve) {
		return err
	}
	out := &validation.Error{}
	for _, f := range ve.Fields {
		out.Add(prefix+f.Field, f.Message)
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
