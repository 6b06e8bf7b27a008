// Package mailcatcher is the local SMTP server that stands in for a mail
// provider in `make run` and the tests: it accepts every message over real
// SMTP (github.com/emersion/go-smtp), keeps it (in memory, and as .eml files
// when given a folder), and shows it on a web page and as JSON. It never
// relays anything anywhere. cmd/mailcatcher runs it as a program; tests start
// it in their own process.
package mailcatcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	gomessage "github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
)

// Message is one received email as the page and the JSON endpoint show it.
type Message struct {
	ID         int       `json:"id"`
	MessageID  string    `json:"message_id"`
	From       string    `json:"from"` // envelope sender
	To         []string  `json:"to"`   // envelope recipients
	Subject    string    `json:"subject"`
	Language   string    `json:"language,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	Text       string    `json:"text"`
	HTML       string    `json:"html"`
	// Links are the http(s) links of the plain-text part, in order.
	Links []string `json:"links"`
	raw   []byte
}

// Catcher keeps received messages. It is safe for concurrent use.
type Catcher struct {
	mu      sync.Mutex
	msgs    []Message
	arrived chan struct{} // closed and replaced on every arrival
	dir     string
	log     *slog.Logger
}

// New builds a catcher. With dir, every message is also written there as
// <id>.eml, and the messages already there are loaded.
func New(dir string, log *slog.Logger) (*Catcher, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Catcher{arrived: make(chan struct{}), dir: dir, log: log}
	if dir == "" {
		return c, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		info, _ := os.Stat(n)
		m := parse(raw)
		m.To, m.From, m.ReceivedAt = headerAddrs(raw), "", info.ModTime().UTC()
		c.msgs = append(c.msgs, m)
		c.msgs[len(c.msgs)-1].ID = len(c.msgs)
	}
	return c, nil
}

// Add stores a message received for rcpts from sender and wakes waiters.
func (c *Catcher) Add(sender string, rcpts []string, raw []byte) Message {
	m := parse(raw)
	m.From, m.To, m.ReceivedAt = sender, rcpts, time.Now().UTC()
	c.mu.Lock()
	m.ID = len(c.msgs) + 1
	c.msgs = append(c.msgs, m)
	close(c.arrived)
	c.arrived = make(chan struct{})
	c.mu.Unlock()
	if c.dir != "" {
		if err := os.WriteFile(filepath.Join(c.dir, fmt.Sprintf("%06d.eml", m.ID)), raw, 0o600); err != nil {
			c.log.Warn("keep message", "id", m.ID, "err", err)
		}
	}
	c.log.Info("mail received", "id", m.ID, "to", strings.Join(rcpts, ","), "subject", m.Subject)
	return m
}

// Messages returns every message, oldest first.
func (c *Catcher) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

// Message returns message id (1-based).
func (c *Catcher) Message(id int) (Message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id < 1 || id > len(c.msgs) {
		return Message{}, false
	}
	return c.msgs[id-1], true
}

// Find returns the messages that match, oldest first, waiting until there
// is at least one or ctx ends (then it returns what matches, maybe none).
func (c *Catcher) Find(ctx context.Context, match func(Message) bool) []Message {
	for {
		c.mu.Lock()
		var out []Message
		for _, m := range c.msgs {
			if match(m) {
				out = append(out, m)
			}
		}
		arrived := c.arrived
		c.mu.Unlock()
		if len(out) > 0 {
			return out
		}
		select {
		case <-ctx.Done():
			return nil
		case <-arrived:
		}
	}
}

// Filter is what the JSON endpoint selects by.
type Filter struct {
	To      string // a recipient, case-insensitive
	Subject string // part of the subject
	After   int    // only messages with a larger id
}

// Match reports whether m passes f.
func (f Filter) Match(m Message) bool {
	if m.ID <= f.After {
		return false
	}
	if f.Subject != "" && !strings.Contains(m.Subject, f.Subject) {
		return false
	}
	if f.To == "" {
		return true
	}
	for _, r := range m.To {
		if strings.EqualFold(r, f.To) {
			return true
		}
	}
	return false
}

// Raw returns the message as received.
func (m Message) Raw() []byte { return m.raw }

var linkRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// parse reads what the page shows from a raw message; a part it cannot
// read is left empty rather than refusing the message.
func parse(raw []byte) Message {
	m := Message{raw: raw, Links: []string{}}
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil && !gomessage.IsUnknownCharset(err) {
		m.Text = string(raw)
		return m
	}
	m.MessageID = r.Header.Get("Message-Id")
	m.Subject, _ = r.Header.Subject()
	m.Language = r.Header.Get("Content-Language")
	for {
		p, err := r.NextPart()
		if err != nil {
			break
		}
		h, ok := p.Header.(*gomail.InlineHeader)
		if !ok {
			continue
		}
		ct, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
		b, _ := io.ReadAll(p.Body)
		switch ct {
		case "text/plain", "":
			m.Text += string(b)
		case "text/html":
			m.HTML += string(b)
		}
	}
	m.Links = append(m.Links, linkRE.FindAllString(m.Text, -1)...)
	return m
}

// headerAddrs is the To header's addresses (for messages loaded from files,
// which keep no envelope).
func headerAddrs(raw []byte) []string {
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return nil
	}
	list, _ := r.Header.AddressList("To")
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return out
}

// SMTPServer returns an SMTP server (no TLS, no authentication: loopback
// only) that stores what it receives in c.
func (c *Catcher) SMTPServer() *smtp.Server {
	s := smtp.NewServer(backend{c})
	s.Domain = "mailcatcher.localhost"
	s.MaxMessageBytes = 10 << 20
	s.MaxRecipients = 50
	s.ReadTimeout = time.Minute
	s.WriteTimeout = time.Minute
	return s
}

// backend starts one session per SMTP connection, storing into the catcher.
type backend struct{ c *Catcher }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{c: b.c}, nil }

type session struct {
	c     *Catcher
	from  string
	rcpts []string
}

func (s *session) Reset()        { s.from, s.rcpts = "", nil }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(s.rcpts) == 0 {
		return errors.New("no recipients")
	}
	s.c.Add(s.from, s.rcpts, raw)
	return nil
}

// Loopback checks that addr is a loopback host:port: the catcher accepts
// mail from anyone who reaches it and must never face a network.
func Loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s: the mail catcher listens on loopback only", addr)
	}
	return nil
}

// Server is a catcher listening for SMTP and HTTP on loopback.
type Server struct {
	*Catcher
	SMTPAddr string // host:port
	WebURL   string // http://host:port
	smtp     *smtp.Server
	web      *http.Server
}

// SMTPURL is the HUB_SMTP_URL that sends to this catcher.
func (s *Server) SMTPURL() string { return "smtp://" + s.SMTPAddr }

// Listen starts a catcher on free loopback ports (tests, or a program
// that needs no fixed port).
func Listen(dir string, log *slog.Logger) (*Server, error) {
	c, err := New(dir, log)
	if err != nil {
		return nil, err
	}
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sl.Close()
		return nil, err
	}
	s := &Server{Catcher: c, SMTPAddr: sl.Addr().String(), WebURL: "http://" + hl.Addr().String(),
		smtp: c.SMTPServer(), web: &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = s.smtp.Serve(sl) }()
	go func() { _ = s.web.Serve(hl) }()
	return s, nil
}

// Close stops both listeners.
func (s *Server) Close() error {
	return errors.Join(s.web.Close(), s.smtp.Close())
}
