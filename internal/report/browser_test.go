package report

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse-iot/gatehouse/internal/testenv"
)

// The page is opened in real headless Chromium with scripts disabled: every failing case's message
// must be visible, the failing cases must be open, and the browser must not request anything but
// the page itself.
func TestHTMLRendersInChromiumWithoutScriptOrNetwork(t *testing.T) {
	chromium := testenv.Chromium(t)
	p, err := WriteDir(t.TempDir(), "gatehouse run", sample())
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(p.HTML)
	if err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	var mu sync.Mutex // protects requests
	var requests []string
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			requests = append(requests, e.Request.URL)
			mu.Unlock()
		}
	}))
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 45*time.Second)
	defer cancelTimeout()

	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+abs), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		t.Fatalf("chromium could not render %s: %v", abs, err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	openNodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("details.case[open]"), chromedp.AtLeast(0)))
	if err != nil {
		t.Fatal(err)
	}
	open, failing := len(openNodes), 0
	for _, c := range sample().Cases {
		if c.Outcome.Failed() {
			failing++
			if !strings.Contains(body, c.Message) {
				t.Errorf("rendered page does not show the message of failing case %q:\n%s", c.Name, c.Message)
			}
		}
	}
	if open != failing {
		t.Errorf("%d cases open in the rendered page, want the %d failing ones", open, failing)
	}
	if !strings.Contains(body, "command open to gate-01") {
		t.Error("rendered page does not show the timeline")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(requests) == 0 {
		t.Fatal("no request was seen at all, not even the page's own: the network listener does not work")
	}
	for _, u := range requests {
		if u != "file://"+abs {
			t.Errorf("the page requested %s; it must be self-contained", u)
		}
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatal(err)
	}
}
