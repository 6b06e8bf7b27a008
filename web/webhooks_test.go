package web

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/netguard"
	"github.com/coalitionhub/hub/webhooks"
)

type webhookCase struct {
	url    string
	reason string // a fragment of the field error; "" when the URL is accepted
}

// registerWebhooks posts each case to POST /v1/webhooks and checks the answer:
// 201 for an accepted URL, else 400 problem+json naming the field url with the
// reason, and nothing written.
func registerWebhooks(t *testing.T, e *hubEnv, token string, cases []webhookCase) {
	t.Helper()
	for _, c := range cases {
		var before, after int64
		e.db.Raw(`SELECT count(*) FROM webhook_endpoints`).Scan(&before)
		code, body, hdr := e.raw("POST", "/v1/webhooks", token, map[string]any{"url": c.url, "events": []string{"*"}})
		e.db.Raw(`SELECT count(*) FROM webhook_endpoints`).Scan(&after)
		if c.reason == "" {
			if code != 201 || after != before+1 {
				t.Errorf("%s: %d %s; want 201 and the endpoint stored", c.url, code, body)
			}
			continue
		}
		var p struct {
			Code   string `json:"code"`
			Errors []struct {
				Field   string `json:"field"`
				Message string `json:"message"`
			} `json:"errors"`
		}
		_ = json.Unmarshal(body, &p)
		switch {
		case code != 400 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json"):
			t.Errorf("%s: %d %s %s; want 400 problem+json", c.url, code, hdr.Get("Content-Type"), body)
		case p.Code != "invalid_request" || len(p.Errors) != 1 || p.Errors[0].Field != "url" ||
			!strings.Contains(p.Errors[0].Message, c.reason):
			t.Errorf("%s: %s; want invalid_request naming the field url with %q", c.url, body, c.reason)
		case after != before:
			t.Errorf("%s: refused, yet %d endpoints were stored", c.url, after-before)
		}
	}
}

// With the default setting, a webhook receiver must be an https URL of a
// public host: every internal address, in every spelling, is refused.
func TestWebhookRegistrationRefusesInternalDestinations(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	_, token := e.partner("Harbour Hotel", e.clock.Now().AddDate(0, -1, 0))
	registerWebhooks(t, e, token, []webhookCase{
		{"http://169.254.169.254/latest/meta-data/", "link-local"},
		{"https://169.254.169.254/latest/meta-data/", "link-local"},
		{"https://127.0.0.1:5432/", "loopback"},
		{"http://127.0.0.1:5432/", "loopback"},
		{"https://127.8.9.10/", "loopback"},
		{"https://[::1]:6379/", "loopback"},
		{"https://localhost/hooks", "loopback"},
		{"https://LocalHost.:8443/hooks", "loopback"},
		{"https://api.localhost/hooks", "loopback"},
		{"https://10.0.0.1/hooks", "private"},
		{"https://172.16.0.1/hooks", "private"},
		{"https://192.168.1.10/hooks", "private"},
		{"https://[fc00::1]/hooks", "private"},
		{"https://[fd12:3456::1]/hooks", "private"},
		{"https://[fe80::1]/hooks", "link-local"},
		{"https://[fe80::1%25eth0]/hooks", "zone"},
		{"https://224.0.0.251/hooks", "multicast"},
		{"https://[ff02::1]/hooks", "multicast"},
		{"https://0.0.0.0/hooks", "unspecified"},
		{"https://[::]/hooks", "unspecified"},
		{"https://100.64.0.1/hooks", "shared"},
		{"https://255.255.255.255/hooks", "reserved"},
		{"https://[::ffff:127.0.0.1]/hooks", "loopback"},
		{"https://[::ffff:7f00:1]/hooks", "loopback"},
		{"https://[::ffff:10.0.0.1]/hooks", "private"},
		{"https://[::ffff:169.254.169.254]/hooks", "link-local"},
		{"https://[64:ff9b::7f00:1]/hooks", "loopback"},
		{"https://0x7f000001/hooks", "four decimal numbers"},
		{"https://2130706433/hooks", "four decimal numbers"},
		{"https://017700000001/hooks", "four decimal numbers"},
		{"https://127.1/hooks", "four decimal numbers"},
		{"https://0177.0.0.1/hooks", "four decimal numbers"},
		{"https://127.000.000.001/hooks", "four decimal numbers"},
		{"https://１２７.0.0.1/hooks", "ASCII"},
		{"http://hooks.partner.example/in", "must use https"},
		{"ftp://hooks.partner.example/in", "https"},
		{"https://hooks.partner.example/in", ""},
		{"https://93.184.216.34:8443/in", ""},
	})
}

// HUB_WEBHOOK_ALLOW_LOOPBACK=1 (local development and tests) allows loopback
// receivers, over plain http too, and nothing else that was refused.
func TestWebhookRegistrationWithLoopbackAllowed(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, func(d *Deps) {
		d.Webhooks = webhooks.NewService(d.DB, d.Access.SecretBox(), netguard.Policy{AllowLoopback: true}, time.Now)
	})
	_, token := e.partner("Harbour Hotel", e.clock.Now().AddDate(0, -1, 0))
	registerWebhooks(t, e, token, []webhookCase{
		{"http://127.0.0.1:8080/hooks", ""},
		{"https://127.0.0.1:8443/hooks", ""},
		{"http://[::1]:8080/hooks", ""},
		{"http://localhost:8080/hooks", ""},
		{"https://hooks.partner.example/in", ""},
		{"http://hooks.partner.example/in", "plain http is allowed to loopback only"},
		{"http://10.0.0.1/hooks", "private"},
		{"http://169.254.169.254/latest/meta-data/", "link-local"},
		{"https://100.64.0.1/hooks", "shared"},
		{"https://0x7f000001/hooks", "four decimal numbers"},
	})
}
