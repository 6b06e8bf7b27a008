package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	gomail "github.com/wneessen/go-mail"
	"gorm.io/gorm"
)

// Config is how the worker reaches the SMTP server.
type Config struct {
	// SMTPURL is smtp://[user:password@]host[:port] (STARTTLS required,
	// port 587 by default, except on a loopback host, where plain SMTP is
	// allowed and STARTTLS used when offered) or smtps://... (TLS from the
	// first byte, port 465). With a user the client authenticates with the
	// best mechanism the server offers.
	SMTPURL string
	From    string // the From address, "Coalition Rewards <no-reply@example.com>" or a bare address
	BaseURL string // the hub's public URL, for links in messages
	Now     func() time.Time
	Log     *slog.Logger
}

// Sender sends queued mail.
type Sender struct {
	db      *gorm.DB
	opts    []gomail.Option
	host    string
	from    string
	baseURL string
	now     func() time.Time
	log     *slog.Logger
}

// lease bounds one send attempt: another delivery of the task may take the
// row over only after it, so two attempts never send one row at once.
const lease = 2 * time.Minute

// NewSender checks the configuration and builds a sender. It does not
// connect: the SMTP server is reached per message.
func NewSender(db *gorm.DB, c Config) (*Sender, error) {
	opts, host, err := ClientOptions(c.SMTPURL)
	if err != nil {
		return nil, err
	}
	if _, err := ParseFrom(c.From); err != nil {
		return nil, err
	}
	now := c.Now
	if now == nil {
		now = time.Now
	}
	log := c.Log
	if log == nil {
		log = slog.Default()
	}
	return &Sender{db: db, opts: opts, host: host, from: c.From, baseURL: c.BaseURL, now: now, log: log}, nil
}

// ParseFrom checks a From address ("Name <addr>" or "addr").
func ParseFrom(from string) (*gomail.Msg, error) {
	m := gomail.NewMsg()
	if err := m.From(from); err != nil {
		return nil, fmt.Errorf("HUB_MAIL_FROM must be an address such as \"Coalition Rewards <no-reply@example.com>\", got %q", from)
	}
	return m, nil
}

// ClientOptions turns an SMTP URL into go-mail client options and the host.
func ClientOptions(raw string) ([]gomail.Option, string, error) {
	u, err := url.Parse(raw)
	bad := fmt.Errorf("HUB_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://..., got %q", redact(raw))
	if err != nil || u.Hostname() == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") || (u.Path != "" && u.Path != "/") {
		return nil, "", bad
	}
	host := u.Hostname()
	port := 587
	if u.Scheme == "smtps" {
		port = 465
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return nil, "", bad
		}
	}
	opts := []gomail.Option{gomail.WithPort(port), gomail.WithTimeout(30 * time.Second)}
	switch {
	case u.Scheme == "smtps":
		opts = append(opts, gomail.WithSSL())
	case isLoopback(host):
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if u.User != nil && u.User.Username() != "" {
		pw, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(u.User.Username()), gomail.WithPassword(pw))
	}
	return opts, host, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

type mailRow struct {
	ID            int64
	MessageID     string
	Template      string
	Locale        string
	Recipient     string
	RecipientName string
	Data          []byte
	SentAt        *time.Time
	FailedAt      *time.Time
	SendingUntil  *time.Time
}

// errInFlight: another attempt holds the row; the task is retried later and
// then finds it sent, or takes it over once the lease has passed.
var errInFlight = errors.New("mail is being sent by another attempt")

// Send sends outbound_mail row id once: a sent (or permanently failed) row
// is left alone and nil returned; a row another attempt holds returns an
// error so the task is retried. A temporary SMTP failure returns the error
// (retried); a permanent one (5xx) marks the row failed and skips retries,
// as does a row that cannot be rendered or does not exist.
func (s *Sender) Send(ctx context.Context, id int64) error {
	now := s.now().UTC()
	var rows []mailRow
	err := s.db.WithContext(ctx).Raw(`UPDATE outbound_mail SET sending_until = ?, attempts = attempts + 1
		WHERE id = ? AND sent_at IS NULL AND failed_at IS NULL AND (sending_until IS NULL OR sending_until < ?)
		RETURNING id, message_id, template, locale, recipient, recipient_name, data, sent_at, failed_at, sending_until`,
		now.Add(lease), id, now).Scan(&rows).Error
	if err != nil {
		return fmt.Errorf("claim mail %d: %w", id, err)
	}
	if len(rows) == 0 {
		var state []mailRow
		if err := s.db.WithContext(ctx).Raw(`SELECT id, sent_at, failed_at, sending_until FROM outbound_mail WHERE id = ?`, id).
			Scan(&state).Error; err != nil {
			return fmt.Errorf("mail %d: %w", id, err)
		}
		switch {
		case len(state) == 0:
			return fmt.Errorf("mail %d does not exist: %w", id, asynq.SkipRetry)
		case state[0].SentAt != nil || state[0].FailedAt != nil:
			return nil // sent (or given up) before: never twice
		default:
			return fmt.Errorf("mail %d: %w", id, errInFlight)
		}
	}
	r := rows[0]
	msg, err := s.message(r)
	if err != nil {
		s.finish(ctx, id, err, true)
		return fmt.Errorf("mail %d: %w (%w)", id, err, asynq.SkipRetry)
	}
	c, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		s.finish(ctx, id, err, false)
		return fmt.Errorf("mail %d: %w", id, err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		var se *gomail.SendError
		permanent := errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500
		s.finish(ctx, id, err, permanent)
		if permanent {
			return fmt.Errorf("mail %d refused: %w (%w)", id, err, asynq.SkipRetry)
		}
		return fmt.Errorf("send mail %d: %w", id, err)
	}
	// Marked with a fresh context: the mail has left, and the mark must
	// land even when the task's context is ending.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.db.WithContext(mctx).Exec(`UPDATE outbound_mail SET sent_at = ?, sending_until = NULL, last_error = NULL,
		data = '{}'::jsonb WHERE id = ?`, s.now().UTC(), id).Error; err != nil {
		return fmt.Errorf("mark mail %d sent: %w", id, err)
	}
	s.log.InfoContext(ctx, "mail sent", "mail_id", id, "template", r.Template, "message_id", r.MessageID)
	return nil
}

// finish records a failed attempt and frees the row for the next one (or
// marks it failed for good).
func (s *Sender) finish(ctx context.Context, id int64, cause error, permanent bool) {
	msg := cause.Error()
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	q := `UPDATE outbound_mail SET sending_until = NULL, last_error = ? WHERE id = ?`
	args := []any{msg, id}
	if permanent {
		q = `UPDATE outbound_mail SET sending_until = NULL, last_error = ?, failed_at = ? WHERE id = ?`
		args = []any{msg, s.now().UTC(), id}
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.db.WithContext(mctx).Exec(q, args...).Error; err != nil {
		s.log.WarnContext(ctx, "record mail failure", "mail_id", id, "err", err)
	}
}

// message renders row r into a go-mail message.
func (s *Sender) message(r mailRow) (*gomail.Msg, error) {
	var data map[string]any
	if err := json.Unmarshal(r.Data, &data); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	out, err := Render(r.Template, r.Locale, s.baseURL, data)
	if err != nil {
		return nil, err
	}
	m, err := ParseFrom(s.from)
	if err != nil {
		return nil, err
	}
	if r.RecipientName != "" {
		err = m.AddToFormat(r.RecipientName, r.Recipient)
	} else {
		err = m.To(r.Recipient)
	}
	if err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	m.Subject(out.Subject)
	m.SetMessageIDWithValue(trimAngles(r.MessageID))
	m.SetDateWithValue(s.now())
	m.SetGenHeader(gomail.HeaderContentLang, out.Locale)
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	// A notification's unsubscribe link, also as the header mail clients
	// show as an "unsubscribe" button and may post to (RFC 2369, RFC 8058).
	if tok, _ := data["unsubscribe"].(string); tok != "" {
		link := strings.TrimRight(s.baseURL, "/") + "/portal/unsubscribe?token=" + url.QueryEscape(tok)
		m.SetGenHeader("List-Unsubscribe", "<"+link+">")
		m.SetGenHeader("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	m.SetBodyString(gomail.TypeTextPlain, out.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, out.HTML)
	return m, nil
}

// trimAngles: go-mail adds the angle brackets of a Message-ID itself.
func trimAngles(id string) string {
	if len(id) > 2 && id[0] == '<' && id[len(id)-1] == '>' {
		return id[1 : len(id)-1]
	}
	return id
}

// HandleSend handles TypeSend. Idempotent: a sent row is never sent again.
func HandleSend(s *Sender) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p SendPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil || p.MailID <= 0 {
			return fmt.Errorf("mail:send payload %q: %w", t.Payload(), asynq.SkipRetry)
		}
		return s.Send(ctx, p.MailID)
	}
}

// MaxRetry is how often a send is retried (about a day with asynq's
// exponential backoff): a provider outage delays mail, it does not lose it.
const MaxRetry = 25
