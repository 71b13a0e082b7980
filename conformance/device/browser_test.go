package device_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/onsi/gomega"

	certdevice "github.com/gatehouse-iot/gatehouse/conformance/device"
)

// chromiumNames are the executables that can render the report headless.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome"}

// renderReport writes res's report, opens report.html in headless Chromium with scripts
// disabled, and returns the page's text, how many requirement cases are open, and every URL the
// page requested.
func renderReport(chromium string, res *certdevice.Result, dir string) (text string, open int, requests []string) {
	paths, err := res.WriteReport(dir)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	page, err := filepath.Abs(paths.HTML)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(filepath.Join(dir, "chromium-profile")))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	var mu sync.Mutex // protects requests
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

	gomega.Expect(chromedp.Do(ctx)).To(gomega.Succeed(), "start chromium")
	_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	_, err = chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	gomega.Expect(chromedp.Do(ctx, chromedp.Navigate("file://"+page), chromedp.WaitReady(chromedp.CSS("body")))).To(gomega.Succeed())
	text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	nodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("details.case[open]"), chromedp.AtLeast(0)))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	open = len(nodes)
	mu.Lock()
	defer mu.Unlock()
	return strings.Join(strings.Fields(text), " "), open, append([]string(nil), requests...)
}
