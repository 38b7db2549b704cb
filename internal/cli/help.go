package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"
)

// Global flags may also stand after the command (`stump build -C dir`, `stump publish
// -v`): hoistGlobalFlags moves them before it, where urfave/cli reads them.
var globalFlags = map[string]bool{"-C": true, "--C": true, "-v": false, "--verbose": false, "-verbose": false}

// hoistGlobalFlags returns args with the global flags found after the first command
// word moved before it. A "--" ends the scan; values of -C come along.
func hoistGlobalFlags(args []string) []string {
	if len(args) < 2 {
		return args
	}
	cmd := -1
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args
		}
		if strings.HasPrefix(a, "-") {
			name, _, hasValue := strings.Cut(a, "=")
			if takes, ok := globalFlags[name]; ok && takes && !hasValue {
				i++ // its value
			}
			continue
		}
		cmd = i
		break
	}
	if cmd < 0 {
		return args
	}
	var moved, rest []string
	for i := cmd + 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, _, hasValue := strings.Cut(a, "=")
		takes, ok := globalFlags[name]
		if !ok {
			rest = append(rest, a)
			continue
		}
		moved = append(moved, a)
		if takes && !hasValue && i+1 < len(args) {
			i++
			moved = append(moved, args[i])
		}
	}
	out := append([]string{}, args[:cmd]...)
	out = append(out, moved...)
	out = append(out, args[cmd])
	return append(out, rest...)
}

// closest returns the candidate most like name, when it is alike enough (Jaro-Winkler
// similarity of at least 0.8, as a typo is); "" otherwise.
func closest(name string, candidates []string) string {
	best, score := "", 0.8
	for _, c := range candidates {
		if d := smetrics.JaroWinkler(name, c, 0.7, 4); d >= score {
			best, score = c, d
		}
	}
	return best
}

// suggestCommand is a sentence naming the command closest to a mistyped one ("" when
// none is close), like `Did you mean "build"?`.
func suggestCommand(app *cli.App, name string) string {
	var names []string
	for _, c := range app.Commands {
		if !c.Hidden {
			names = append(names, c.Names()...)
		}
	}
	if s := closest(name, names); s != "" {
		return fmt.Sprintf("Did you mean %q?", s)
	}
	return ""
}

// suggestFlag names the flag closest to an undefined one in a flag error ("" when the
// error is not about an undefined flag or none is close): the flags of the command args
// name, and the global ones.
func suggestFlag(app *cli.App, args []string, err error) string {
	const prefix = "flag provided but not defined: "
	msg := err.Error()
	i := strings.Index(msg, prefix)
	if i < 0 {
		return ""
	}
	bad := strings.TrimLeft(strings.Fields(msg[i+len(prefix):])[0], "-")
	flags := append([]cli.Flag{}, app.Flags...)
	cmds := app.Commands
	for i := 1; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			name, _, hasValue := strings.Cut(a, "=")
			if globalFlags[name] && !hasValue {
				i++ // the value of -C
			}
			continue
		}
		var next []*cli.Command
		for _, c := range cmds {
			if c.HasName(a) {
				flags = append(flags, c.Flags...)
				next = c.Subcommands
			}
		}
		if next == nil {
			break
		}
		cmds = next
	}
	var names []string
	for _, f := range flags {
		names = append(names, f.Names()...)
	}
	s := closest(bad, names)
	switch {
	case s == "":
		return ""
	case len(s) == 1:
		return "-" + s
	}
	return "--" + s
}

const bashCompletion = `# bash completion for stump: source it, or save it as
# /etc/bash_completion.d/stump (stump completion bash > /etc/bash_completion.d/stump)
_stump_complete() {
  local cur words
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  words=("${COMP_WORDS[@]:0:$COMP_CWORD}")
  local opts
  if [[ "$cur" == -* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
}
complete -o bashdefault -o default -F _stump_complete stump
`

const zshCompletion = `#compdef stump
# zsh completion for stump: save it as _stump in a folder of $fpath
# (stump completion zsh > "${fpath[1]}/_stump")
_stump() {
  local -a opts
  local cur=${words[CURRENT]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:$CURRENT-1} $cur --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:$CURRENT-1} --generate-bash-completion 2>/dev/null)}")
  fi
  _describe 'values' opts
}
compdef _stump stump
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: "bash: source <(stump completion bash)\n" +
			"zsh:  stump completion zsh > \"${fpath[1]}/_stump\"\n" +
			"fish: stump completion fish > ~/.config/fish/completions/stump.fish",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("completion takes one shell: bash, zsh or fish")
			}
			switch sh := c.Args().First(); sh {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, zshCompletion)
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				fmt.Fprint(c.App.Writer, s)
			default:
				return usagef("no completion for %q: use bash, zsh or fish", sh)
			}
			return nil
		},
	}
}

func manCommand() *cli.Command {
	return &cli.Command{
		Name:        "man",
		Usage:       "print stump's manual page (roff), made from the same definitions as --help",
		Description: "stump man > stump.1 && man ./stump.1   (or: stump man | man -l -)",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("man takes no arguments")
			}
			s, err := c.App.ToManWithSection(1)
			if err != nil {
				return err
			}
			fmt.Fprint(c.App.Writer, s)
			return nil
		},
	}
}
