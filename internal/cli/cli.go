// Package cli is stump's command line: it parses flags (urfave/cli/v2), calls the build,
// publish and purge packages, and prints for people or, with --json, for machines. Exit
// codes: 0 success, 1 a failed build or operation, 2 bad usage.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/stump-dev/stump/build"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitFail  = 1
	ExitUsage = 2
)

// usageError marks bad usage (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// defaultMemoryLimit is the Go heap's soft limit unless GOMEMLIMIT says otherwise.
const defaultMemoryLimit = 224 << 20

// profile starts writing a profile (start, stop: a CPU profile or an execution trace)
// into the file the environment variable env names, when it is set, and returns what
// stops it and closes the file.
func profile(env string, start func(io.Writer) error, stop func()) func() {
	p := os.Getenv(env)
	if p == "" {
		return func() {}
	}
	f, err := os.Create(p)
	if err != nil {
		return func() {}
	}
	if start(f) != nil {
		f.Close()
		return func() {}
	}
	return func() {
		stop()
		f.Close()
	}
}

// Main runs stump with args (args[0] is the program name) and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	defer profile("STUMP_CPUPROFILE", pprof.StartCPUProfile, pprof.StopCPUProfile)()
	defer profile("STUMP_TRACE", trace.Start, trace.Stop)()
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit: the collector runs more often as the heap nears it instead of
		// letting it double past the live data, which keeps a 10,000-page build under
		// 300 MB. A larger live heap only makes collections more frequent.
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	app := newApp(stdin, stdout, stderr)
	var unknown string
	app.CommandNotFound = func(_ *cli.Context, name string) { unknown = name }
	err := app.RunContext(ctx, hoistGlobalFlags(args))
	if unknown != "" {
		fmt.Fprintf(stderr, "stump: no command %q", unknown)
		if s := suggestCommand(app, unknown); s != "" {
			fmt.Fprintf(stderr, ". %s", s)
		}
		fmt.Fprintf(stderr, "\nRun 'stump --help' for usage.\n")
		return ExitUsage
	}
	if err == nil {
		return ExitOK
	}
	var ue usageError
	if errors.As(err, &ue) || isFlagError(err) {
		fmt.Fprintf(stderr, "stump: %v\n", err)
		if s := suggestFlag(app, hoistGlobalFlags(args), err); s != "" {
			fmt.Fprintf(stderr, "Did you mean %s?\n", s)
		}
		fmt.Fprintf(stderr, "Run 'stump --help' for usage.\n")
		return ExitUsage
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := strings.TrimSpace(err.Error()); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintf(stderr, "stump: %v\n", err)
	return ExitFail
}

// isFlagError recognises urfave/cli's parse errors, which are plain errors.
func isFlagError(err error) bool {
	s := err.Error()
	for _, p := range []string{"flag provided but not defined", "flag needs an argument", "invalid value", "invalid boolean", "Required flag", "No help topic"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// lockedWriter serializes writes: publish --all --parallel runs sites at once, and each
// prints progress, warnings and results to the same stdout and stderr.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// locked wraps w for concurrent writers; a terminal or file (*os.File) is left as is,
// so the progress bar still finds the terminal (single writes to a file descriptor
// are not interleaved mid-write).
func locked(w io.Writer) io.Writer {
	if _, ok := w.(*os.File); ok {
		return w
	}
	return &lockedWriter{w: w}
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	stdout, stderr = locked(stdout), locked(stderr)
	cli.VersionFlag = versionFlag
	cli.VersionPrinter = func(c *cli.Context) { fmt.Fprintf(c.App.Writer, "stump %s\n", c.App.Version) }
	app := &cli.App{
		Name:  "stump",
		Usage: "build static sites, publish them atomically to S3, purge exactly what changed",
		Description: "stump works on a workspace: a folder with stump.yaml, sites/<site>/ and themes/<theme>/.\n" +
			"Every flag can also be set with an environment variable STUMP_<FLAG>, the flag's name upper-cased\n" +
			"with '-' as '_' (STUMP_SITE, STUMP_DRY_RUN, STUMP_BREAK_LOCK; STUMP_DIR also sets -C). A flag on\n" +
			"the command line wins. purge --all reads STUMP_PURGE_ALL, not STUMP_ALL.",
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		Suggest:              true,
		Version:              buildVersion(),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "C", Usage: "use the workspace in `DIR` (default: the nearest folder upwards holding stump.yaml)", EnvVars: []string{"STUMP_DIR"}},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log what stump does (to stderr)", EnvVars: []string{"STUMP_VERBOSE"}},
		},
		Commands: []*cli.Command{
			buildCommand(),
			publishCommand(),
			deploysCommand(),
			rollbackCommand(),
			statusCommand(),
			gcCommand(),
			verifyCommand(),
			doctorCommand(),
			serveCommand(),
			purgeCommand(),
			newCommand(),
			watchCommand(),
			edgeCommand(),
			completionCommand(),
			manCommand(),
			wordpressCommand(),
			importCommand(),
			ciCommand(),
			duCommand(),
		},
		Metadata:       map[string]any{revisionKey: &revisionMemo{}},
		OnUsageError:   func(_ *cli.Context, err error, _ bool) error { return usageError{err.Error()} },
		ExitErrHandler: func(*cli.Context, error) {},
	}
	for _, c := range app.Commands {
		setUsageError(c)
	}
	bindEnv(app)
	return app
}

func setUsageError(c *cli.Command) {
	c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err.Error()} }
	for _, s := range c.Subcommands {
		setUsageError(s)
	}
}

// logger returns a slog logger on stderr at info (or debug with --verbose), or a silent one.
func logger(c *cli.Context) *slog.Logger {
	if !c.Bool("verbose") {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openWorkspace opens the workspace named by -C or found upwards from the current folder.
func openWorkspace(c *cli.Context) (*build.Workspace, error) {
	dir := c.String("C")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		if dir, err = build.Find(wd); err != nil {
			return nil, err
		}
	}
	ws, err := build.Open(dir)
	if err != nil {
		return nil, err
	}
	ws.Log = logger(c)
	return ws, nil
}
