package mail_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/mail"
	"github.com/coalitionhub/hub/internal/mailcatcher"
	"github.com/coalitionhub/hub/internal/testdb"
)

func catcher(t *testing.T) *mailcatcher.Server {
	t.Helper()
	c, err := mailcatcher.Listen("", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func sender(t *testing.T, db *gorm.DB, smtpURL string) *mail.Sender {
	t.Helper()
	s, err := mail.NewSender(db, mail.Config{SMTPURL: smtpURL, From: "Coalition Rewards <no-reply@rewards.example>",
		BaseURL: "http://hub.example", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func queue(t *testing.T, db *gorm.DB, m mail.Message) int64 {
	t.Helper()
	var id int64
	err := db.Transaction(func(tx *gorm.DB) error {
		var err error
		id, err = mail.Queue(tx, m)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func resetMessage(to string) mail.Message {
	return mail.Message{To: to, Name: "Ada Lovelace", Locale: "pt-BR", Template: "password_reset",
		Data: map[string]any{"name": "Ada", "token": "tok-123", "expires": "7 Dec 2026 20:00 UTC"}}
}

// A queued mail reaches a real SMTP server once, as text and HTML, with its
// link; sending the same row again (a retried or duplicated task) sends
// nothing more, and the row keeps no secret once sent.
func TestSendDeliversOnceOverSMTP(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	c := catcher(t)
	s := sender(t, db, c.SMTPURL())
	id := queue(t, db, resetMessage("ada@example.test"))

	var outboxRows int64
	db.Raw(`SELECT count(*) FROM outbox WHERE task_type = ? AND (payload->>'mail_id')::bigint = ?`, mail.TypeSend, id).Scan(&outboxRows)
	if outboxRows != 1 {
		t.Fatalf("outbox rows for mail %d = %d, want 1 (the send is a job)", id, outboxRows)
	}
	ctx := context.Background()
	if err := s.Send(ctx, id); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := s.Send(ctx, id); err != nil {
			t.Fatalf("sending a sent mail again: %v, want nil (nothing to do)", err)
		}
	}
	// A task delivered again through asynq's handler is a no-op too.
	payload, _ := json.Marshal(mail.SendPayload{MailID: id})
	if err := mail.HandleSend(s)(ctx, asynq.NewTask(mail.TypeSend, payload)); err != nil {
		t.Fatal(err)
	}
	got := c.Messages()
	if len(got) != 1 {
		t.Fatalf("catcher holds %d messages, want exactly 1", len(got))
	}
	m := got[0]
	if m.To[0] != "ada@example.test" || m.Subject != "Reset your Coalition Rewards password" {
		t.Fatalf("message: to %v subject %q", m.To, m.Subject)
	}
	if len(m.Links) != 1 || m.Links[0] != "http://hub.example/portal/verify?token=tok-123" {
		t.Fatalf("links of the text part: %v", m.Links)
	}
	if !strings.Contains(m.HTML, `href="http://hub.example/portal/verify?token=tok-123"`) || !strings.Contains(m.HTML, "Ada") {
		t.Fatalf("HTML part lacks the link or the name:\n%s", m.HTML)
	}
	if m.Language != "en" {
		t.Fatalf("Content-Language %q: pt-BR has no text, so English is sent", m.Language)
	}
	var row struct {
		MessageID string
		Data      string
		Attempts  int
	}
	db.Raw(`SELECT message_id, data::text AS data, attempts FROM outbound_mail WHERE id = ?`, id).Scan(&row)
	if row.MessageID != m.MessageID {
		t.Fatalf("Message-ID sent %q, stored %q", m.MessageID, row.MessageID)
	}
	if row.Data != "{}" || row.Attempts != 1 {
		t.Fatalf("sent row: data %s attempts %d, want {} (the link's secret is gone) and 1 attempt", row.Data, row.Attempts)
	}
}

// Concurrent deliveries of one mail send it once: one attempt holds the row,
// the others are told to retry (and then find it sent).
func TestConcurrentSendsSendOnce(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	c := catcher(t)
	s := sender(t, db, c.SMTPURL())
	id := queue(t, db, resetMessage("grace@example.test"))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Send(context.Background(), id)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !strings.Contains(err.Error(), "another attempt") {
			t.Fatalf("concurrent send: %v", err)
		}
	}
	if err := s.Send(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Messages()); n != 1 {
		t.Fatalf("%d messages after 9 deliveries of one mail, want 1", n)
	}
}

// While the SMTP server is unreachable the send fails (and is retried by
// asynq); the mail stays queued and goes out once the server answers.
func TestSendRetriesWhileSMTPIsDown(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	s := sender(t, db, "smtp://"+addr)
	id := queue(t, db, resetMessage("linus@example.test"))
	err = s.Send(context.Background(), id)
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("send with the server down: %v, want a retryable error", err)
	}
	var st struct {
		SentAt    *time.Time
		LastError *string
	}
	db.Raw(`SELECT sent_at, last_error FROM outbound_mail WHERE id = ?`, id).Scan(&st)
	if st.SentAt != nil || st.LastError == nil {
		t.Fatalf("after a failed attempt: sent_at %v last_error %v; want unsent with the error kept", st.SentAt, st.LastError)
	}
	c := catcher(t)
	if err := sender(t, db, c.SMTPURL()).Send(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Messages()); n != 1 {
		t.Fatalf("%d messages once the server is back, want 1", n)
	}
}

// Every template renders in English with the data its sender gives it, a
// missing key fails rendering, and an unknown template is refused when the
// mail is queued.
func TestTemplates(t *testing.T) {
	t.Parallel()
	data := map[string]any{"name": "", "token": "abc", "expires": "1 Jan 2027 10:00 UTC", "card_last4": "1234"}
	for _, name := range []string{"signup_verify", "signup_existing", "claim", "password_reset"} {
		r, err := mail.Render(name, "de-AT", "http://hub.example/", data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Subject == "" || !strings.Contains(r.Text, "http://hub.example/portal/verify?token=abc") || !strings.Contains(r.HTML, "<html lang=\"en\">") {
			t.Fatalf("%s rendered %+v", name, r)
		}
	}
	if _, err := mail.Render("claim", "en", "http://hub.example", map[string]any{"token": "x"}); err == nil {
		t.Fatal("rendering without the data the template shows succeeded")
	}
	db := testdb.New(t)
	err := db.Transaction(func(tx *gorm.DB) error {
		_, err := mail.Queue(tx, mail.Message{To: "a@example.test", Template: "no_such_message"})
		return err
	})
	if !errors.Is(err, mail.ErrUnknownTemplate) {
		t.Fatalf("queue an unknown template: %v", err)
	}
}

func TestClientOptions(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"smtp://127.0.0.1:1025", "smtp://user:pw@mail.example:587", "smtps://mail.example"} {
		if _, _, err := mail.ClientOptions(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "http://mail.example", "smtp://", "smtp://mail.example:99999", "smtp://mail.example/path"} {
		if _, _, err := mail.ClientOptions(bad); err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// Every notification message renders in English and German with the data
// its sender gives, the unsubscribe link in both parts when there is one;
// a locale without text falls back to English.
func TestNotificationTemplates(t *testing.T) {
	t.Parallel()
	base := map[string]any{"name": "Ana", "unsubscribe": "7.orders.sig", "kind_label": "reward orders"}
	cases := map[string]map[string]any{
		"points_digest":   {"points": 200, "earns": 2, "day": "2031-03-09", "balance": 1200},
		"points_expiring": {"points": 100, "expires": "2025-12-30"},
		"order_status": {"status": "rejected", "reward": "Free night", "points": 3000, "order_id": 5, "reference": "",
			"reason": "fully booked", "deadline": "1 Jan 2027 10:00 UTC"},
		"exchange_status":     {"status": "failed", "programme": "Sky Miles", "points": 5000, "units": "3500 miles", "exchange_id": "x1", "reason": "no"},
		"password_changed":    {"when": "1 Jan 2027 10:00 UTC", "unsubscribe": ""},
		"email_change_verify": {"token": "abc", "expires": "1 Jan 2027 10:00 UTC", "email": "new@example.test", "unsubscribe": ""},
		"email_change_notice": {"new_email": "n***@example.test", "unsubscribe": ""},
	}
	for name, extra := range cases {
		data := map[string]any{}
		for k, v := range base {
			data[k] = v
		}
		for k, v := range extra {
			data[k] = v
		}
		for locale, lang := range map[string]string{"en": "en", "de-DE": "de", "fr": "en"} {
			r, err := mail.Render(name, locale, "http://hub.example", data)
			if err != nil {
				t.Fatalf("%s in %s: %v", name, locale, err)
			}
			if r.Locale != lang || !strings.Contains(r.HTML, `<html lang="`+lang+`">`) {
				t.Fatalf("%s in %s rendered in %s", name, locale, r.Locale)
			}
			link := "http://hub.example/portal/unsubscribe?token=7.orders.sig"
			if data["unsubscribe"] != "" && (!strings.Contains(r.Text, link) || !strings.Contains(r.HTML, link)) {
				t.Fatalf("%s in %s lacks the unsubscribe link", name, locale)
			}
			if data["unsubscribe"] == "" && strings.Contains(r.HTML, "unsubscribe") {
				t.Fatalf("%s in %s has an unsubscribe link", name, locale)
			}
		}
	}
	r, _ := mail.Render("order_status", "de", "http://hub.example", func() map[string]any {
		d := map[string]any{}
		for k, v := range base {
			d[k] = v
		}
		for k, v := range cases["order_status"] {
			d[k] = v
		}
		return d
	}())
	if !strings.Contains(r.Subject, "abgelehnt") {
		t.Fatalf("German order subject %q", r.Subject)
	}
	for locale, want := range map[string]string{"de": "am 30. Dezember 2025", "en": "on 30 December 2025"} {
		r, err := mail.Render("points_expiring", locale, "http://hub.example", map[string]any{"name": "", "unsubscribe": "t",
			"kind_label": "x", "points": 5, "expires": "2025-12-30"})
		if err != nil || !strings.Contains(r.Subject, want) {
			t.Fatalf("expiry subject in %s: %q %v; want %q", locale, r.Subject, err, want)
		}
	}
}
