package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/stump-dev/stump/publish"
)

// newProgress shows upload progress: a bar when stderr is a terminal (and not --json),
// otherwise a plain line at the start and the end, which suits CI logs.
func newProgress(c *cli.Context, site string) publish.Progress {
	if c.Bool("json") {
		return nil
	}
	if f, ok := c.App.ErrWriter.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &barProgress{w: f, site: site}
	}
	return &lineProgress{w: c.App.ErrWriter, site: site}
}

type barProgress struct {
	w    io.Writer
	site string
	mu   sync.Mutex
	bar  *progressbar.ProgressBar
}

func (p *barProgress) Start(label string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(p.site+": "+label),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

func (p *barProgress) Add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

func (p *barProgress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

type lineProgress struct {
	w     io.Writer
	site  string
	mu    sync.Mutex
	total int64
	done  int64
	start time.Time
}

func (p *lineProgress) Start(label string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.done, p.start = total, 0, time.Now()
	fmt.Fprintf(p.w, "%s: %s %s\n", p.site, label, humanBytes(total))
}

func (p *lineProgress) Add(n int64) {
	p.mu.Lock()
	p.done += n
	p.mu.Unlock()
}

func (p *lineProgress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s: uploaded %s in %s\n", p.site, humanBytes(p.done), time.Since(p.start).Round(time.Millisecond))
}
