// Package mail sends the hub's email: a domain queues a message in the
// transaction of the change that causes it (Queue), and the worker sends it
// over SMTP (Sender, task mail:send), rendered from the templates embedded
// here in the member's locale, as plain text and HTML.
//
// It owns the outbound_mail table (migration 00310). Queue writes the row and
// an outbox row in the caller's transaction, so a mail exists exactly when
// its cause committed, and the relay turns it into a task after the commit.
// The task claims the row for one attempt at a time, sends it under the row's
// Message-ID and marks it sent: a retried or duplicated task never sends a
// sent row again. Once sent, the row's data (which may hold a link's secret)
// is emptied.
package mail

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/outbox"
)

// Message is one email to queue. Template names a message of the templates
// folder ("claim", "password_reset", ...); Data is what it shows. Locale is
// the member's (BCP 47, "pt-BR"); a template falls back to the language and
// then to English when it has no text in that locale.
type Message struct {
	To       string
	Name     string // the recipient's display name, optional
	Locale   string
	Template string
	Data     map[string]any
}

// ErrUnknownTemplate: Queue was given a template the hub does not have.
var ErrUnknownTemplate = errors.New("unknown mail template")

//go:embed templates/*
var templateFiles embed.FS

// DefaultLocale is the locale every template has.
const DefaultLocale = "en"

// templates holds every message, parsed once: text (subject and body) and
// HTML (body inside the shared layout), keyed "name.locale".
type templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

var parsed = mustParse()

func mustParse() templates {
	t := templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	names, err := fs.Glob(templateFiles, "templates/*.txt")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		key := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".txt")
		t.text[key] = texttemplate.Must(texttemplate.New(key).Option("missingkey=error").Funcs(funcs).ParseFS(templateFiles, n))
		hn := strings.TrimSuffix(n, ".txt") + ".html"
		t.html[key] = htmltemplate.Must(htmltemplate.New(key).Option("missingkey=error").Funcs(funcs).
			ParseFS(templateFiles, "templates/layout.html", hn))
	}
	return t
}

// funcs are the templates' functions: date writes a date the sender gives
// as YYYY-MM-DD in the language of the text ({{date .Lang .day}}); anything
// else is shown as given.
var funcs = map[string]any{"date": localDate}

var germanMonths = [...]string{"Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
	"September", "Oktober", "November", "Dezember"}

func localDate(lang string, v any) string {
	s := fmt.Sprint(v)
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return s
	}
	if lang == "de" {
		return fmt.Sprintf("%d. %s %d", d.Day(), germanMonths[d.Month()-1], d.Year())
	}
	return d.Format("2 January 2006")
}

// resolve returns the key of the template for name in locale: the locale,
// its language, then English; ok is false when the message does not exist.
func resolve(name, locale string) (string, bool) {
	lang, _, _ := strings.Cut(locale, "-")
	for _, l := range []string{locale, lang, DefaultLocale} {
		if _, ok := parsed.text[name+"."+l]; ok && l != "" {
			return name + "." + l, true
		}
	}
	return "", false
}

// Rendered is a message ready to send.
type Rendered struct {
	Locale  string // the locale of the text used (the fallback when the member's has none)
	Subject string
	Text    string
	HTML    string
}

// Render renders template name in locale with data; baseURL is the hub's
// public URL, for links.
func Render(name, locale, baseURL string, data map[string]any) (Rendered, error) {
	key, ok := resolve(name, locale)
	if !ok {
		return Rendered{}, fmt.Errorf("%w: %s", ErrUnknownTemplate, name)
	}
	view := map[string]any{}
	for k, v := range data {
		view[k] = v
	}
	// The layout's footer shows an unsubscribe link when the message has
	// one (notification mail, members.Notify); the others have none.
	for _, k := range []string{"unsubscribe", "kind_label"} {
		if _, ok := view[k]; !ok {
			view[k] = ""
		}
	}
	view["BaseURL"] = strings.TrimRight(baseURL, "/")
	view["Lang"] = strings.TrimPrefix(key, name+".")
	var subj, text, html bytes.Buffer
	t := parsed.text[key]
	if err := t.ExecuteTemplate(&subj, "subject", view); err != nil {
		return Rendered{}, fmt.Errorf("render %s subject: %w", key, err)
	}
	if err := t.ExecuteTemplate(&text, "text", view); err != nil {
		return Rendered{}, fmt.Errorf("render %s text: %w", key, err)
	}
	view["Subject"] = strings.TrimSpace(subj.String())
	if err := parsed.html[key].ExecuteTemplate(&html, "layout", view); err != nil {
		return Rendered{}, fmt.Errorf("render %s html: %w", key, err)
	}
	return Rendered{Locale: view["Lang"].(string), Subject: strings.TrimSpace(subj.String()), Text: strings.TrimSpace(text.String()) + "\n", HTML: html.String()}, nil
}

// TypeSend sends one queued mail. Never renamed.
const TypeSend = "mail:send"

// SendPayload names the outbound_mail row to send.
type SendPayload struct {
	MailID int64 `json:"mail_id"`
}

// Queue records m in tx, with the outbox row that will send it after the
// commit, and returns the row id. tx must be the transaction of the change
// that causes the mail. The template is checked here (ErrUnknownTemplate),
// so a typo fails the change, not the job.
func Queue(tx *gorm.DB, m Message) (int64, error) {
	locale := m.Locale
	if locale == "" {
		locale = DefaultLocale
	}
	if _, ok := resolve(m.Template, locale); !ok {
		return 0, fmt.Errorf("queue mail: %w: %q", ErrUnknownTemplate, m.Template)
	}
	if m.To == "" {
		return 0, errors.New("queue mail: no recipient")
	}
	data := m.Data
	if data == nil {
		data = map[string]any{}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return 0, fmt.Errorf("queue mail %s: %w", m.Template, err)
	}
	var id int64
	err = tx.Raw(`INSERT INTO outbound_mail (message_id, template, locale, recipient, recipient_name, data, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		"<"+uuid.NewString()+"@coalitionhub.mail>", m.Template, locale, m.To, m.Name, b, time.Now().UTC()).Scan(&id).Error
	if err != nil {
		return 0, fmt.Errorf("queue mail %s: %w", m.Template, err)
	}
	if err := outbox.Write(tx, outbox.Message{TaskType: TypeSend, Payload: SendPayload{MailID: id}}); err != nil {
		return 0, fmt.Errorf("queue mail %s: %w", m.Template, err)
	}
	return id, nil
}

// ErasedRecipient is what Forget leaves where an erased person's address was.
const ErasedRecipient = "erased@invalid"

// Forget removes an address from every mail queued or sent to it, for the
// erasure of a person: the recipient becomes ErasedRecipient, the name and
// the template data are emptied, and a mail not yet sent is given up (it is
// never sent). It runs in tx, the erasure's transaction, and returns how
// many mails it changed. The address is matched without regard to case.
func Forget(tx *gorm.DB, address string) (int64, error) {
	if address == "" {
		return 0, nil
	}
	res := tx.Exec(`UPDATE outbound_mail SET recipient = ?, recipient_name = '', data = '{}',
		failed_at = CASE WHEN sent_at IS NULL AND failed_at IS NULL THEN ? ELSE failed_at END,
		last_error = CASE WHEN sent_at IS NULL AND failed_at IS NULL THEN 'recipient erased' ELSE last_error END
		WHERE lower(recipient) = lower(?)`, ErasedRecipient, time.Now().UTC(), address)
	if res.Error != nil {
		return 0, fmt.Errorf("forget mail of an erased recipient: %w", res.Error)
	}
	return res.RowsAffected, nil
}
