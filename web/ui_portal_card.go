package web

import (
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/coalitionhub/hub/ledger"
)

// cardQR draws the member's card number as a QR code a till's scanner reads
// (the code carries the card number and nothing else), as inline SVG: one
// path of unit squares on a white square with the quiet zone the standard
// asks for. An empty card number draws nothing.
func cardQR(card string) template.HTML {
	if card == "" {
		return ""
	}
	q, err := qrcode.New(card, qrcode.Medium)
	if err != nil {
		return ""
	}
	bits := q.Bitmap() // includes a four-module quiet zone
	var path strings.Builder
	for y, row := range bits {
		for x, on := range row {
			if on {
				fmt.Fprintf(&path, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	n := len(bits)
	return template.HTML(fmt.Sprintf(`<svg id="card-qr" role="img" aria-label="QR code of card %s" viewBox="0 0 %d %d" shape-rendering="crispEdges" xmlns="http://www.w3.org/2000/svg"><rect width="%d" height="%d" fill="#fff"/><path d="%s" fill="#000"/></svg>`,
		template.HTMLEscapeString(card), n, n, n, n, path.String()))
}

// expiringPoints is the points of a member's lots that expire within the
// next days days, by UTC day, soonest first.
type expiringPoints struct {
	Day    time.Time
	Points int64
}

// expiringSoon groups the points of lots expiring within days of now.
func expiringSoon(lots []ledger.Lot, now time.Time, days int) []expiringPoints {
	until := now.AddDate(0, 0, days)
	by := map[time.Time]int64{}
	for _, l := range lots {
		if l.ExpiresAt == nil || !l.ExpiresAt.After(now) || l.ExpiresAt.After(until) || l.Remaining <= 0 {
			continue
		}
		d := l.ExpiresAt.UTC().Truncate(24 * time.Hour)
		by[d] += int64(l.Remaining)
	}
	out := make([]expiringPoints, 0, len(by))
	for d, p := range by {
		out = append(out, expiringPoints{Day: d, Points: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Day.Before(out[j].Day) })
	return out
}
