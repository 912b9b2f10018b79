package apptest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chrome starts headless Chromium from WRIT_TEST_CHROMIUM (with opts
// besides the flags a headless run here needs), or skips the test; the
// browser stops when the test ends, and its context times out after a
// minute.
func Chrome(t *testing.T, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := os.Getenv("WRIT_TEST_CHROMIUM")
	if path == "" {
		t.Skip("WRIT_TEST_CHROMIUM not set: browser tests skipped (.ci/run installs chromium and sets it)")
	}
	// Chromium may still be flushing its profile as it exits: remove the
	// directory ourselves, ignoring leftovers, rather than with t.TempDir.
	profile, err := os.MkdirTemp("", "writ-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 10 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	all := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
	}, opts...)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), all...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel3)
	return ctx
}
