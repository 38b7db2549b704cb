package cli

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestEveryFlagReadsItsVariable walks every flag of the app, its commands and their
// subcommands, and checks that each reads STUMP_<FLAG> (spelt out here, not with the
// code's helper) first, plus the documented extra names.
func TestEveryFlagReadsItsVariable(t *testing.T) {
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	// Flags whose variables differ from the rule, by "command path flag".
	special := map[string][]string{
		"C":         {"STUMP_C", "STUMP_DIR"},
		"purge all": {"STUMP_PURGE_ALL"},
	}
	seen := map[string]bool{}
	var check func(path []string, flags []cli.Flag)
	check = func(path []string, flags []cli.Flag) {
		for _, f := range flags {
			name := f.Names()[0]
			key := strings.Join(append(slices.Clone(path), name), " ")
			seen[key] = true
			df, ok := f.(cli.DocGenerationFlag)
			if !ok {
				t.Errorf("%s: %T does not report its variables", key, f)
				continue
			}
			want, ok := special[key]
			if !ok {
				want = []string{"STUMP_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
			}
			if got := df.GetEnvVars(); !slices.Equal(got, want) {
				t.Errorf("%s: reads %v, want %v", key, got, want)
			}
		}
	}
	var walk func(path []string, c *cli.Command)
	walk = func(path []string, c *cli.Command) {
		p := append(slices.Clone(path), c.Name)
		check(p, c.Flags)
		for _, s := range c.Subcommands {
			walk(p, s)
		}
	}
	check(nil, app.Flags)
	for _, c := range app.Commands {
		walk(nil, c)
	}
	// The walk reached the flags the issue named, on commands and subcommands.
	for _, k := range []string{
		"C", "verbose", "publish dry-run", "publish force", "publish no-build", "publish preview",
		"publish break-lock", "publish drafts", "publish future", "rollback to", "gc keep",
		"purge all", "new page site", "edge vcl site", "watch poll",
	} {
		if !seen[k] {
			t.Errorf("the walk did not reach flag %q", k)
		}
	}
	if len(seen) < 60 {
		t.Errorf("walked %d flags; expected every command's flags (more than 60)", len(seen))
	}
}

// TestBindEnvRejectsHandWrittenNames checks that a variable listed by hand, which the
// rule would silently drop, stops the app from being built.
func TestBindEnvRejectsHandWrittenNames(t *testing.T) {
	app := &cli.App{Commands: []*cli.Command{{
		Name:  "x",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "y", EnvVars: []string{"STUMP_SOMETHING_ELSE"}}},
	}}}
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), `flag "x y" lists STUMP_SOMETHING_ELSE by hand`) {
			t.Fatalf("recovered %v, want a panic naming the flag", r)
		}
	}()
	bindEnv(app)
}

// TestBindEnvSetsVariablesThatWork runs a command with only the variable set and checks
// the flag's value (the binding urfave/cli reads, not just the help text).
func TestBindEnvSetsVariablesThatWork(t *testing.T) {
	var got bool
	var msg string
	app := &cli.App{Commands: []*cli.Command{{
		Name: "publish",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}},
			&cli.StringFlag{Name: "message"},
		},
		Action: func(c *cli.Context) error {
			got, msg = c.Bool("dry-run"), c.String("message")
			return nil
		},
	}}}
	bindEnv(app)
	t.Setenv("STUMP_DRY_RUN", "true")
	t.Setenv("STUMP_MESSAGE", "hello")
	if err := app.Run([]string{"stump", "publish"}); err != nil {
		t.Fatal(err)
	}
	if !got || msg != "hello" {
		t.Fatalf("dry-run=%v message=%q, want true and hello", got, msg)
	}
}
