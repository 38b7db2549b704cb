package cli

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// envAliases are variables a flag reads besides its STUMP_<FLAG>, keyed by the flag's
// path (see flagPath). They keep documented names that predate the rule working.
var envAliases = map[string][]string{
	"C": {"STUMP_DIR"},
}

// envOverrides replace STUMP_<FLAG> for a flag whose name means something else in
// another command, so that one variable never sets two meanings. `purge --all` purges
// the whole site while every other --all means "every site": STUMP_ALL=true, set for
// `stump build`, must not turn `stump purge --site x` into a purge of everything.
var envOverrides = map[string][]string{
	"purge all": {"STUMP_PURGE_ALL"},
}

// envVar is the variable of a flag name: STUMP_ + the name upper-cased, '-' as '_'.
func envVar(name string) string {
	return "STUMP_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// flagPath names a flag by its command path and name, like "publish dry-run",
// "new page site" or "C" (a global flag).
func flagPath(cmds []string, name string) string {
	return strings.Join(append(slices.Clone(cmds), name), " ")
}

// flagEnvVars returns the variables the flag named name in the command path cmds reads,
// in the order they are consulted: its override, or STUMP_<FLAG> then its aliases.
func flagEnvVars(cmds []string, name string) []string {
	p := flagPath(cmds, name)
	if o, ok := envOverrides[p]; ok {
		return slices.Clone(o)
	}
	return append([]string{envVar(name)}, envAliases[p]...)
}

// bindEnv sets EnvVars on every flag of app, its commands and their subcommands (the
// only place variables are bound; newApp calls it once, before the app runs). The help
// and completion flags urfave/cli adds when it runs are not bound. It panics on a flag
// type without an EnvVars field, or on a flag that lists a variable by hand that this
// rule would drop: both are programming errors that every test of the CLI hits.
func bindEnv(app *cli.App) {
	bindFlags(nil, app.Flags)
	for _, c := range app.Commands {
		bindCommand(nil, c)
	}
}

func bindCommand(parent []string, c *cli.Command) {
	path := append(slices.Clone(parent), c.Name)
	bindFlags(path, c.Flags)
	for _, s := range c.Subcommands {
		bindCommand(path, s)
	}
}

func bindFlags(cmds []string, flags []cli.Flag) {
	for _, f := range flags {
		name := f.Names()[0]
		want := flagEnvVars(cmds, name)
		v := reflect.ValueOf(f)
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		field := v.FieldByName("EnvVars")
		if v.Kind() != reflect.Struct || !field.IsValid() || field.Type() != reflect.TypeFor[[]string]() || !field.CanSet() {
			panic(fmt.Sprintf("cli: flag %q (%T) has no EnvVars field to bind", flagPath(cmds, name), f))
		}
		for _, had := range field.Interface().([]string) {
			if !slices.Contains(want, had) {
				panic(fmt.Sprintf("cli: flag %q lists %s by hand; add it to envAliases in env.go", flagPath(cmds, name), had))
			}
		}
		field.Set(reflect.ValueOf(want))
	}
}
