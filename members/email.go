package members

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/mail"
	"github.com/coalitionhub/hub/internal/validation"
)

// Changing the sign-in email: the member asks (with the current password),
// a link goes to the new address, the old address is told, and the change
// applies only when the link is used, so an address nobody reads (or one a
// thief typed) never becomes the account's.

// LinkEmailChange is the purpose of a link that confirms a new sign-in email.
const LinkEmailChange LinkPurpose = "email_change"

// EmailChangeLinkTTL is how long the link to a new address lives.
const EmailChangeLinkTTL = 24 * time.Hour

// RequestEmailChange asks to make email the member's sign-in email. current
// must be the password in force (a wrong one counts against the sign-in
// throttle: ErrInvalidLogin, ErrLoginLocked). A link goes to the new address
// and a notice to the address on file; nothing else changes until the link
// is used (ConfirmEmailChange). A newer request replaces an older link.
// Errors: *validation.Error (email), ErrIdentifierTaken (another member
// signs in with it), ErrMailThrottled, ErrMemberInactive.
func (s *Service) RequestEmailChange(ctx context.Context, memberID int64, current, email string) error {
	v, msg := normaliseEmail(email)
	if msg != "" {
		return validation.New("email", msg)
	}
	db := s.db.WithContext(ctx)
	m, err := loadMember(db, memberID)
	if err != nil {
		return fmt.Errorf("change email of member %d: %w", memberID, err)
	}
	if err := CanTransact(m); err != nil {
		return err
	}
	old := emailOnFile(m)
	if v == old {
		return validation.New("email", "is already your sign-in email")
	}
	key := throttleKey(memberID, "")
	if err := s.checkPassword(ctx, key, memberID, current); err != nil {
		return fmt.Errorf("change email of member %d: %w", memberID, err)
	}
	if err := s.logins.Refund(ctx, key); err != nil {
		return err
	}
	switch holder, err := memberIDByIdentifier(db, Identifier{Type: IdentifierEmail, Value: v}); {
	case err == nil && holder != memberID:
		return fmt.Errorf("change email of member %d: %w", memberID, ErrIdentifierTaken)
	case err != nil && !errors.Is(err, ErrNotFound):
		return err
	}
	if err := s.takeMail(ctx, memberID, ""); err != nil {
		return err
	}
	token, hash, err := newLinkToken()
	if err != nil {
		return err
	}
	now := s.clock()
	exp := now.Add(EmailChangeLinkTTL)
	err = db.Transaction(func(tx *gorm.DB) error {
		if _, err := getMemberRow(tx, memberID, true); err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE member_links SET revoked_at = ? WHERE purpose = ? AND member_id = ?
			AND used_at IS NULL AND revoked_at IS NULL`, now, string(LinkEmailChange), memberID).Error; err != nil {
			return err
		}
		if err := tx.Exec(`INSERT INTO member_links (purpose, token_hash, member_id, email, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, string(LinkEmailChange), hash, memberID, v, now, exp).Error; err != nil {
			return err
		}
		if _, err := mail.Queue(tx, mail.Message{To: v, Name: strings.TrimSpace(m.Profile.GivenName + " " + m.Profile.FamilyName),
			Locale: m.Profile.Locale, Template: "email_change_verify", Data: map[string]any{
				"name": m.Profile.GivenName, "token": token, "expires": exp.Format(linkTimeFormat), "email": v}}); err != nil {
			return err
		}
		// The address on file hears of it: if it was not the member, they
		// know before the link is used, and can change the password.
		_, err := s.Notify(ctx, tx, memberID, Notice{Kind: NoticeSecurity, Template: "email_change_notice",
			Data: map[string]any{"new_email": maskEmail(v)}})
		return err
	})
	if err != nil {
		return fmt.Errorf("change email of member %d: %w", memberID, err)
	}
	return nil
}

// EmailChange is the account a used change-of-email link changed.
type EmailChange struct {
	MemberID int64
	Email    string // the new sign-in email
}

// ConfirmEmailChange uses a change-of-email link: in one transaction the new
// address becomes the member's sign-in email identifier (replacing the email
// identifiers it had) and contact email, the link is used, and the member's
// other live links (which went to the old address) are revoked. No sign-in
// is needed: the link proves the new mailbox, the request proved the
// password. Errors, none of which changes anything: *validation.Error
// (token: not a link of this hub, or of another purpose), ErrLinkUsed and
// ErrLinkExpired (blamed on token), ErrMemberInactive, ErrIdentifierTaken.
func (s *Service) ConfirmEmailChange(ctx context.Context, token string) (EmailChange, error) {
	hash, err := linkHash(token)
	if err != nil {
		return EmailChange{}, err
	}
	var out EmailChange
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		peek, err := linkByHash(tx, hash, false)
		if err != nil {
			return err
		}
		if LinkPurpose(peek.Purpose) != LinkEmailChange || peek.MemberID == nil {
			return validation.New("token", "is not a link to confirm an email address")
		}
		// The same lock order as UseLink: address, account, link.
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtext('member-link'), hashtext(?))`, peek.Email).Error; err != nil {
			return err
		}
		row, err := getMemberRow(tx, *peek.MemberID, true)
		if err != nil {
			return err
		}
		r, err := linkByHash(tx, hash, true)
		if err != nil {
			return err
		}
		if err := s.usable(r); err != nil {
			return err
		}
		if Status(row.Status) != StatusActive {
			return fmt.Errorf("member %d is %s: %w", row.ID, row.Status, ErrMemberInactive)
		}
		now := s.clock()
		if err := tx.Exec(`DELETE FROM member_identifiers WHERE member_id = ? AND type = ? AND value <> ?`,
			row.ID, string(IdentifierEmail), r.Email).Error; err != nil {
			return err
		}
		ident := Identifier{Type: IdentifierEmail, Value: r.Email}
		ok, err := insertIdentifier(tx, row.ID, ident, false, now)
		if err != nil {
			return err
		}
		if !ok {
			holder, err := memberIDByIdentifier(tx, ident)
			if err != nil {
				return err
			}
			if holder != row.ID {
				return ErrIdentifierTaken
			}
		}
		if err := tx.Exec(`UPDATE members SET email = ?, updated_at = ? WHERE id = ?`, r.Email, now, row.ID).Error; err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE member_links SET used_at = ? WHERE id = ?`, now, r.ID).Error; err != nil {
			return err
		}
		if err := revokeLinks(tx, row.ID, r.Email, now); err != nil {
			return err
		}
		out = EmailChange{MemberID: row.ID, Email: r.Email}
		return nil
	})
	if err != nil {
		return EmailChange{}, fmt.Errorf("confirm email change: %w", err)
	}
	return out, nil
}

// EmailChangeLink describes a change-of-email link without using it (the
// page that asks to confirm). Errors: as ConfirmEmailChange's token errors.
func (s *Service) EmailChangeLink(ctx context.Context, token string) (LinkInfo, error) {
	info, err := s.link(ctx, token)
	if err != nil {
		return LinkInfo{}, err
	}
	if info.Purpose != LinkEmailChange {
		return LinkInfo{}, validation.New("token", "is not a link to confirm an email address")
	}
	return info, nil
}

// maskEmail shows enough of an address for its owner to recognise it:
// "a***@example.com".
func maskEmail(v string) string {
	at := strings.IndexByte(v, '@')
	if at < 1 {
		return "***"
	}
	return v[:1] + "***" + v[at:]
}
