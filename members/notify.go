package members

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/mail"
	"github.com/coalitionhub/hub/internal/validation"
)

// Notification mail: what the hub tells a member about their account by
// email, each kind under its own consent rule, each (but security notices)
// with a signed link that turns that kind off without signing in.

// NoticeKind is a kind of notification mail; a member turns kinds off one
// by one (member_mail_optouts).
type NoticeKind string

// Notice kinds.
const (
	// NoticePointsDigest: the daily digest of points earned. Marketing: sent
	// only while the member's marketing consent stands.
	NoticePointsDigest NoticeKind = "points_digest"
	// NoticePointsExpiring: points that expire soon. Service mail.
	NoticePointsExpiring NoticeKind = "points_expiring"
	// NoticeOrders: a catalog order placed, fulfilled, rejected, cancelled
	// or expired. Service mail.
	NoticeOrders NoticeKind = "orders"
	// NoticeExchanges: an exchange to a partner programme completed or
	// failed. Service mail.
	NoticeExchanges NoticeKind = "exchanges"
	// NoticeSecurity: the password changed, a change of email asked for.
	// Always sent, never turned off: it is how a member learns that someone
	// else is in their account.
	NoticeSecurity NoticeKind = "security"
)

// NoticeKinds are the kinds a member can turn off, in the order pages show
// them.
var NoticeKinds = []NoticeKind{NoticePointsDigest, NoticePointsExpiring, NoticeOrders, NoticeExchanges}

// Marketing reports whether the kind needs the member's marketing consent
// (on top of not being turned off). Service kinds need only not to be
// turned off: they tell the member about their own account.
func (k NoticeKind) Marketing() bool { return k == NoticePointsDigest }

// Label names the kind for pages and mail.
func (k NoticeKind) Label() string {
	switch k {
	case NoticePointsDigest:
		return "daily summary of points earned"
	case NoticePointsExpiring:
		return "points about to expire"
	case NoticeOrders:
		return "reward orders"
	case NoticeExchanges:
		return "exchanges to partner programmes"
	}
	return string(k)
}

func (k NoticeKind) optional() bool {
	for _, x := range NoticeKinds {
		if x == k {
			return true
		}
	}
	return false
}

// Notice is one notification mail to a member.
type Notice struct {
	Kind     NoticeKind
	Template string // a template of internal/mail
	Data     map[string]any
}

// WithUnsubscribeKey sets the key that signs unsubscribe links (HMAC-SHA256;
// HUB_UNSUBSCRIBE_KEY). Every process of a hub must share it; without it a
// service draws a random key, so links work only in the process that signed
// them (tests).
func WithUnsubscribeKey(key []byte) Option {
	return func(s *Service) { s.unsubscribeKey = append([]byte(nil), key...) }
}

func randomKey() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

// Notify queues notice n to member memberID in tx, the transaction of the
// event it tells of, so the mail exists exactly when the event committed. It
// sends nothing (mailID 0, nil error) to a member who is closed, merged or
// erased, who has no email on file, who turned the kind off, or, for a
// marketing kind, who has not given marketing consent. The mail carries the
// member's locale, name and, for a kind that can be turned off, a signed
// unsubscribe link (data key "unsubscribe").
func (s *Service) Notify(ctx context.Context, tx *gorm.DB, memberID int64, n Notice) (int64, error) {
	tx = tx.WithContext(ctx)
	m, err := loadMember(tx, memberID)
	if err != nil {
		return 0, fmt.Errorf("notify member %d: %w", memberID, err)
	}
	to := emailOnFile(m)
	if to == "" || m.ErasedAt != nil || (m.Status != StatusActive && m.Status != StatusSuspended) {
		return 0, nil
	}
	if n.Kind.Marketing() && !m.MarketingConsent {
		return 0, nil
	}
	data := map[string]any{"name": m.Profile.GivenName, "unsubscribe": ""}
	for k, v := range n.Data {
		data[k] = v
	}
	if n.Kind.optional() {
		var off int64
		if err := tx.Raw(`SELECT count(*) FROM member_mail_optouts WHERE member_id = ? AND kind = ?`, memberID, string(n.Kind)).
			Scan(&off).Error; err != nil {
			return 0, fmt.Errorf("notify member %d: %w", memberID, err)
		}
		if off > 0 {
			return 0, nil
		}
		data["unsubscribe"] = s.UnsubscribeToken(memberID, n.Kind)
		data["kind_label"] = n.Kind.Label()
	}
	id, err := mail.Queue(tx, mail.Message{To: to, Name: strings.TrimSpace(m.Profile.GivenName + " " + m.Profile.FamilyName),
		Locale: m.Profile.Locale, Template: n.Template, Data: data})
	if err != nil {
		return 0, fmt.Errorf("notify member %d (%s): %w", memberID, n.Kind, err)
	}
	return id, nil
}

// UnsubscribeToken is the secret of the unsubscribe link of kind for a
// member: "<member>.<kind>.<signature>", the signature an HMAC-SHA256 (key
// from WithUnsubscribeKey) of the member and kind, truncated to 128 bits. It
// does not expire: a link in an old mail keeps working, and what it can do
// (stop one kind of mail to one member, which the member can turn back on)
// does not need a deadline. Rotating the key voids every link sent.
func (s *Service) UnsubscribeToken(memberID int64, kind NoticeKind) string {
	id := strconv.FormatInt(memberID, 10)
	return id + "." + string(kind) + "." + base64.RawURLEncoding.EncodeToString(s.unsubscribeMAC(id, kind))
}

func (s *Service) unsubscribeMAC(id string, kind NoticeKind) []byte {
	h := hmac.New(sha256.New, s.unsubscribeKey)
	h.Write([]byte("unsubscribe/v1\x00" + id + "\x00" + string(kind)))
	return h.Sum(nil)[:16]
}

// Unsubscription is what an unsubscribe link names.
type Unsubscription struct {
	MemberID int64
	Kind     NoticeKind
}

// ParseUnsubscribe checks an unsubscribe link's token and says what it
// names; it changes nothing (the GET of the link's page). Errors:
// *validation.Error (token): not signed by this hub, or by a key no longer
// in force.
func (s *Service) ParseUnsubscribe(token string) (Unsubscription, error) {
	bad := validation.New("token", "is not an unsubscribe link this hub sent")
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 200 {
		return Unsubscription{}, bad
	}
	id, err := strconv.ParseInt(parts[0], 10, 64)
	kind := NoticeKind(parts[1])
	sig, serr := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || id <= 0 || serr != nil || !kind.optional() || !hmac.Equal(sig, s.unsubscribeMAC(parts[0], kind)) {
		return Unsubscription{}, bad
	}
	return Unsubscription{MemberID: id, Kind: kind}, nil
}

// Unsubscribe turns off the kind of mail a signed link names, without a
// sign-in (the link's POST). Using it again changes nothing. Errors: those
// of ParseUnsubscribe, ErrNotFound for a member that no longer exists.
func (s *Service) Unsubscribe(ctx context.Context, token string) (Unsubscription, error) {
	u, err := s.ParseUnsubscribe(token)
	if err != nil {
		return u, err
	}
	if err := s.SetNotification(ctx, u.MemberID, u.Kind, false); err != nil {
		return u, err
	}
	return u, nil
}

// Notifications says, per kind a member can turn off, whether the member
// gets it (true unless turned off; a marketing kind also needs consent,
// which the consent page shows apart).
func (s *Service) Notifications(ctx context.Context, memberID int64) (map[NoticeKind]bool, error) {
	var off []string
	if err := s.db.WithContext(ctx).Raw(`SELECT kind FROM member_mail_optouts WHERE member_id = ?`, memberID).
		Scan(&off).Error; err != nil {
		return nil, fmt.Errorf("notifications of member %d: %w", memberID, err)
	}
	out := map[NoticeKind]bool{}
	for _, k := range NoticeKinds {
		out[k] = true
	}
	for _, k := range off {
		out[NoticeKind(k)] = false
	}
	return out, nil
}

// SetNotification turns a kind of mail on or off for a member. Errors:
// *validation.Error (kind), ErrNotFound.
func (s *Service) SetNotification(ctx context.Context, memberID int64, kind NoticeKind, on bool) error {
	return s.SetNotifications(ctx, memberID, map[NoticeKind]bool{kind: on})
}

// SetNotifications turns kinds of mail on or off for a member, all in one
// transaction; kinds not named are left as they are. Errors:
// *validation.Error (a kind that cannot be turned off, named as the field),
// ErrNotFound. Nothing changes on an error.
func (s *Service) SetNotifications(ctx context.Context, memberID int64, kinds map[NoticeKind]bool) error {
	ve := &validation.Error{}
	for k := range kinds {
		if !k.optional() {
			ve.Add(string(k), "is not a kind of notification (points_digest, points_expiring, orders, exchanges)")
		}
	}
	if err := ve.Err(); err != nil {
		return err
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := getMemberRow(tx, memberID, false); err != nil {
			return err
		}
		for kind, on := range kinds {
			q := `INSERT INTO member_mail_optouts (member_id, kind, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
			args := []any{memberID, string(kind), s.clock()}
			if on {
				q, args = `DELETE FROM member_mail_optouts WHERE member_id = ? AND kind = ?`, args[:2]
			}
			if err := tx.Exec(q, args...).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set mail choices of member %d: %w", memberID, err)
	}
	return nil
}

// TypePointsDigest sends the daily digest of points earned. Never renamed.
const TypePointsDigest = "members:points_digest"

// DigestReport counts what one SendDigests did.
type DigestReport struct {
	Members int // members with earns that day not digested before
	Mailed  int // of them, those who were sent a mail
}

// SendDigests digests the earns posted on the UTC day of day: for each
// member with earns that day and no digest of it yet, one transaction
// records the digest (member_digests) and queues one mail through Notify,
// which sends nothing without marketing consent or to a member who turned
// digests off. Idempotent per member and day: a second run (or a retry after
// a crash) finds the digest recorded and sends nothing more.
func (s *Service) SendDigests(ctx context.Context, day time.Time, batch int) (DigestReport, error) {
	var rep DigestReport
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 1)
	var after int64
	for {
		earners, err := s.ledger.EarnsByMember(ctx, from, to, after, batch)
		if err != nil {
			return rep, fmt.Errorf("digest %s: %w", from.Format(time.DateOnly), err)
		}
		if len(earners) == 0 {
			return rep, nil
		}
		for _, e := range earners {
			after = e.MemberID
			err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				res := tx.Exec(`INSERT INTO member_digests (member_id, day, points, earns, created_at) VALUES (?, ?, ?, ?, ?)
					ON CONFLICT DO NOTHING`, e.MemberID, from, int64(e.Points), e.Earns, s.clock())
				if res.Error != nil || res.RowsAffected == 0 {
					return res.Error
				}
				rep.Members++
				bal, err := s.ledger.In(tx).Balance(ctx, e.MemberID)
				if err != nil {
					return err
				}
				id, err := s.Notify(ctx, tx, e.MemberID, Notice{Kind: NoticePointsDigest, Template: "points_digest", Data: map[string]any{
					"points": int64(e.Points), "earns": e.Earns, "day": from.Format(time.DateOnly), "balance": int64(bal.Available)}})
				if err != nil || id == 0 {
					return err
				}
				rep.Mailed++
				return tx.Exec(`UPDATE member_digests SET mail_id = ? WHERE member_id = ? AND day = ?`, id, e.MemberID, from).Error
			})
			if err != nil {
				return rep, fmt.Errorf("digest of member %d: %w", e.MemberID, err)
			}
		}
	}
}

// HandlePointsDigest handles TypePointsDigest: the digest of the previous
// UTC day. Idempotent (SendDigests).
func HandlePointsDigest(s *Service) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		_, err := s.SendDigests(ctx, s.clock().AddDate(0, 0, -1), 500)
		return err
	}
}
