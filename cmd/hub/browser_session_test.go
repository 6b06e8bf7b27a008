package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// browserSession is one headless Chromium tab pointed at a hub, with the
// plumbing the browser tests share: a step timeout, dialogs accepted (the
// console's data-confirm forms), console errors collected, screenshots and
// downloads.
type browserSession struct {
	ctx     context.Context
	base    string
	shots   string // screenshot folder
	dlDir   string // download folder
	dialogs atomic.Int32

	mu      sync.Mutex
	console []string // errors and exceptions the pages logged
	drained chan struct{}
}

// drainMarker is logged by assertNoConsoleErrors: the console keeps the order
// of messages, so once the collector sees it, it has seen everything before.
const drainMarker = "hub-test: console drained"

// browserStepTimeout bounds one step (a navigation and its waits): a page
// that never shows the awaited element fails the test instead of hanging it.
const browserStepTimeout = 2 * time.Minute

// chromiumPath finds Debian's Chromium. Without it the test is skipped
// locally and fails in CI (CI=true), where `make test` installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "Chromium is not installed: run `make test` (it installs it) or `apt-get install -y chromium`"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts one headless Chromium for the test, with a fresh profile,
// and opens a tab. Only loopback hosts resolve, so nothing leaves the machine.
func newBrowser(t *testing.T, exe, base string) *browserSession {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,AutofillServerCommunication"),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		chromedp.Flag("force-color-profile", "srgb"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start Chromium (%s): %v", exe, err)
	}
	b := &browserSession{ctx: ctx, base: base, shots: screenshotDir(t), dlDir: t.TempDir(), drained: make(chan struct{}, 1)}

	// The console's irreversible actions ask window.confirm: accept, and count.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			b.dialogs.Add(1)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// The pages declare no icon, so Chromium asks for /favicon.ico
			// and logs its 404; that is not a page error.
			if strings.HasSuffix(m.URL, "/favicon.ico") {
				continue
			}
			if m.Type == chromedp.ConsoleInfo && m.Text == drainMarker {
				b.drained <- struct{}{}
				continue
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.console = append(b.console, m.URL+": "+m.Text)
				b.mu.Unlock()
			}
		}
	}()
	yes := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: b.dlDir, EventsEnabled: &yes}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	return b
}

func (b *browserSession) url(path string) string { return b.base + path }

// run runs steps with the step timeout, failing the test with what was being done.
func (b *browserSession) run(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		// What the page says, to tell a refusal from a page that never came.
		text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 800) : ""`))
		t.Fatalf("%s: %v (page %s)\npage text:\n%s", what, err, loc, text)
	}
}

// visitNav clicks each navigation link in turn (ids without "#"), waits for
// its page to mark the link as current, and checks the page is clean. The
// first link must not be the current page's.
func (b *browserSession) visitNav(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		b.run(t, "open "+id, chromedp.Click(chromedp.CSS("#"+id)),
			chromedp.WaitVisible(chromedp.CSS("#"+id+`[aria-current="page"]`)))
		b.assertCleanPage(t, id)
	}
}

// waitLocation waits until the tab's URL contains part, for clicks that
// navigate to a page whose elements the previous page also had.
func waitLocation(part string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			if loc, err := chromedp.Location()(ctx, t); err == nil && strings.Contains(loc, part) {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for a URL with %q: %w", part, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// text returns the visible text of the first element matching the CSS selector.
func (b *browserSession) text(t *testing.T, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *browserSession) expectText(t *testing.T, sel, want string) {
	t.Helper()
	if got := b.text(t, sel); got != want {
		t.Errorf("%s shows %q, want %q", sel, got, want)
	}
}

func (b *browserSession) expectContains(t *testing.T, sel, want string) {
	t.Helper()
	if got := b.text(t, sel); !strings.Contains(got, want) {
		t.Errorf("%s shows %q, want it to contain %q", sel, got, want)
	}
}

// assertCleanPage fails when the rendered page shows a Go zero value, a raw
// map, a format error, template syntax, or an error banner.
func (b *browserSession) assertCleanPage(t *testing.T, name string) {
	t.Helper()
	html, err := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	for _, bad := range []string{"<nil>", "0001-01-01", "1 Jan 0001", "map[", "%!", "{{", `id="error"`, "Internal Server Error"} {
		if i := strings.Index(html, bad); i >= 0 {
			t.Errorf("%s shows %q: …%s…", name, bad, html[max(0, i-120):min(len(html), i+120)])
		}
	}
}

// screenshot saves the whole page as <name>.png and checks that it is a
// real, commit-sized picture.
func (b *browserSession) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	if w := img.Bounds().Dx(); w < 1000 {
		t.Errorf("screenshot %s is %d px wide, want the 1280 px viewport", name, w)
	}
	if len(buf) > 600<<10 {
		t.Errorf("screenshot %s is %d KB, want at most 600 KB", name, len(buf)>>10)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// download clicks a download link and returns the file the browser saved.
func (b *browserSession) download(t *testing.T, sel string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("download from %s did not complete: %v", sel, err)
		}
		switch ev.State {
		case browser.DownloadProgressStateCompleted:
			got, err := os.ReadFile(filepath.Join(b.dlDir, ev.GUID))
			if err != nil {
				t.Fatalf("read the downloaded file: %v", err)
			}
			return got
		case browser.DownloadProgressStateCanceled:
			t.Fatalf("the browser cancelled the download from %s", sel)
		}
	}
	t.Fatalf("no download from %s", sel)
	return nil
}

// assertNoConsoleErrors fails when a page logged an error or threw, which is
// how Chromium reports a Content-Security-Policy violation or a broken asset.
func (b *browserSession) assertNoConsoleErrors(t *testing.T) {
	t.Helper()
	b.run(t, "log the drain marker", chromedp.Evaluate[chromedp.Void](`console.info("`+drainMarker+`")`))
	select {
	case <-b.drained:
	case <-time.After(browserStepTimeout):
		t.Fatalf("the console collector did not see the drain marker within %v", browserStepTimeout)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.console) > 0 {
		t.Errorf("the pages logged errors in the browser console:\n%s", strings.Join(b.console, "\n"))
	}
}
