package mailcatcher

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Handler serves the catcher's pages and its JSON endpoint:
//
//	GET /                      the messages, newest first
//	GET /messages/{id}         one message: headers, links, text, HTML (sandboxed)
//	GET /messages/{id}/html    the HTML part alone, with a policy that runs nothing
//	GET /messages/{id}/raw     the message as received (message/rfc822)
//	GET /api/messages          JSON {"messages": [...]}, filtered by to, subject and
//	                           after (an id); wait=10s holds the answer until one matches
func (c *Catcher) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.listPage)
	mux.HandleFunc("GET /messages/{id}", c.messagePage)
	mux.HandleFunc("GET /messages/{id}/html", c.htmlPart)
	mux.HandleFunc("GET /messages/{id}/raw", c.rawMessage)
	mux.HandleFunc("GET /api/messages", c.apiMessages)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		mux.ServeHTTP(w, r)
	})
}

func (c *Catcher) apiMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{To: q.Get("to"), Subject: q.Get("subject")}
	if v := q.Get("after"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "after must be a message id", http.StatusBadRequest)
			return
		}
		f.After = n
	}
	var out []Message
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 2*time.Minute {
			http.Error(w, "wait must be a duration up to 2m, such as 10s", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		out = c.Find(ctx, f.Match)
		cancel()
	} else {
		for _, m := range c.Messages() {
			if f.Match(m) {
				out = append(out, m)
			}
		}
	}
	if out == nil {
		out = []Message{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"messages": out})
}

func (c *Catcher) message(w http.ResponseWriter, r *http.Request) (Message, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	m, ok := c.Message(id)
	if err != nil || !ok {
		http.NotFound(w, r)
		return Message{}, false
	}
	return m, true
}

func (c *Catcher) htmlPart(w http.ResponseWriter, r *http.Request) {
	m, ok := c.message(w, r)
	if !ok {
		return
	}
	// The mail's HTML runs nothing and loads nothing from elsewhere; links
	// open in a new tab.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox allow-popups allow-popups-to-escape-sandbox")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(`<base target="_blank">` + m.HTML))
}

func (c *Catcher) rawMessage(w http.ResponseWriter, r *http.Request) {
	m, ok := c.message(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Disposition", "attachment; filename=message-"+r.PathValue("id")+".eml")
	_, _ = w.Write(m.raw)
}

func (c *Catcher) listPage(w http.ResponseWriter, _ *http.Request) {
	msgs := c.Messages()
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	page(w, "Mail catcher", listTmpl, msgs)
}

func (c *Catcher) messagePage(w http.ResponseWriter, r *http.Request) {
	m, ok := c.message(w, r)
	if !ok {
		return
	}
	page(w, m.Subject, messageTmpl, m)
}

func page(w http.ResponseWriter, title string, body *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'; base-uri 'none'; form-action 'none'")
	var b strings.Builder
	if err := body.Execute(&b, map[string]any{"Title": title, "Data": data}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write([]byte(b.String()))
}

const head = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · mail catcher</title><link rel="icon" href="data:,">
<style>
body{font-family:system-ui,sans-serif;margin:0;color:#1f2933;background:#f4f5f7}
header{background:#243b53;color:#fff;padding:12px 16px;font-weight:600}
header a{color:#fff}
main{padding:16px;max-width:960px;margin:auto}
table{width:100%;border-collapse:collapse;background:#fff}
td,th{text-align:left;padding:8px;border-bottom:1px solid #e4e7eb;vertical-align:top;overflow-wrap:anywhere}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;padding:12px;border:1px solid #e4e7eb}
iframe{width:100%;height:520px;border:1px solid #e4e7eb;background:#fff}
.muted{color:#616e7c}
@media (max-width:600px){td.when,th.when{display:none}}
</style></head><body><header><a href="/">Mail catcher</a> · every message sent to this SMTP server stays here</header><main>`

var listTmpl = template.Must(template.New("list").Parse(head + `<h1>Messages</h1>
{{if .Data}}<table id="messages"><thead><tr><th>#</th><th>To</th><th>Subject</th><th class="when">Received</th></tr></thead><tbody>
{{range .Data}}<tr><td>{{.ID}}</td><td>{{range $i, $a := .To}}{{if $i}}, {{end}}{{$a}}{{end}}</td><td><a href="/messages/{{.ID}}" id="message-{{.ID}}">{{.Subject}}</a></td><td class="when">{{.ReceivedAt.Format "2 Jan 15:04:05 UTC"}}</td></tr>
{{end}}</tbody></table>{{else}}<p class="muted" id="empty">No mail yet. Point HUB_SMTP_URL here and it will show up.</p>{{end}}
<p class="muted">JSON for scripts and tests: <a href="/api/messages">/api/messages</a> (?to=, ?subject=, ?after=, ?wait=10s)</p>
</main></body></html>`))

var messageTmpl = template.Must(template.New("message").Parse(head + `{{with .Data}}<h1>{{.Subject}}</h1>
<table><tr><th>To</th><td>{{range $i, $a := .To}}{{if $i}}, {{end}}{{$a}}{{end}}</td></tr>
<tr><th>From</th><td>{{.From}}</td></tr>
<tr><th>Received</th><td>{{.ReceivedAt.Format "2 Jan 2006 15:04:05 UTC"}}</td></tr>
<tr><th>Message-ID</th><td>{{.MessageID}}</td></tr>
{{if .Language}}<tr><th>Language</th><td>{{.Language}}</td></tr>{{end}}
<tr><th>Links</th><td>{{range .Links}}<a href="{{.}}" class="link">{{.}}</a><br>{{else}}—{{end}}</td></tr></table>
{{if .HTML}}<h2>HTML</h2><iframe sandbox="allow-popups allow-popups-to-escape-sandbox" src="/messages/{{.ID}}/html" title="HTML part"></iframe>{{end}}
<h2>Plain text</h2><pre id="text">{{.Text}}</pre>
<p><a href="/messages/{{.ID}}/raw">Download as .eml</a></p>{{end}}
</main></body></html>`))
