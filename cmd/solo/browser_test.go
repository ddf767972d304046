package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// browserTimeout bounds each browser step of a test: a page that never
// shows what the test waits for fails it instead of hanging.
const browserTimeout = 60 * time.Second

// browser is a headless Chromium (Debian's chromium package, installed by
// make test-deps), with what its pages reported: console errors, uncaught
// exceptions and dialogs (alert, confirm). Confirm dialogs are accepted.
type browser struct {
	ctx context.Context

	mu      sync.Mutex
	errors  []string
	dialogs []string
}

// newBrowser starts Chromium at 1280x800 for the test. It fails, never
// skips, when Chromium is missing.
func newBrowser(tb testing.TB) *browser {
	tb.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		tb.Fatalf("chromium is missing: run make test-deps (it installs Debian's chromium package): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(1280, 800),
		chromedp.NoSandbox, // tests may run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	// Listen starts the browser now, so that its start-up is not counted
	// in the first step.
	require.NoError(tb, b.listen(ctx), "start chromium")
	return b
}

// session opens a tab of the same browser in a browser context of its
// own, as another person's browser would be: its own cookies, and its own
// connections (a browser keeps at most 6 HTTP/1.1 connections to a host,
// and each open page holds one for its live stream).
func (b *browser) session(tb testing.TB) *browser {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	tb.Cleanup(cancel)
	t := &browser{ctx: ctx}
	require.NoError(tb, t.listen(ctx), "open a tab")
	return t
}

func (b *browser) listen(ctx context.Context) error {
	dialogs := make(chan page.DialogType, 16)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case typ := <-dialogs:
				// A confirm is accepted; anything else is dismissed.
				chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: typ == page.DialogTypeConfirm})
			}
		}
	}()
	return chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				b.note(&b.errors, "console.error: "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			b.note(&b.errors, "exception: "+ev.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				b.note(&b.errors, fmt.Sprintf("log: %s %s", ev.Entry.Text, ev.Entry.URL))
			}
		case *page.EventJavascriptDialogOpening:
			b.note(&b.dialogs, string(ev.Type)+": "+ev.Message)
			select {
			case dialogs <- ev.Type:
			default:
			}
		}
	})
}

func (b *browser) note(to *[]string, s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	*to = append(*to, s)
}

// consoleErrors and dialogSeen return what the pages reported so far.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

func (b *browser) dialogSeen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.dialogs...)
}

// do runs actions within browserTimeout.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// must runs actions, and on failure fails the test with the page as it
// was and what the browser reported.
func (b *browser) must(tb testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	if err := b.do(actions...); err != nil {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.documentElement.outerHTML`))
		tb.Fatalf("browser: %v\nerrors: %q\ndialogs: %q\npage: %s", err, b.consoleErrors(), b.dialogSeen(), html)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// waitJS waits until the JavaScript expression is true in the page: a fact
// of the DOM, checked on every change of the DOM.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(browserTimeout))
}
