package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/stump-dev/stump/internal/cli"
)

// TestMain lets the test binary act as two programs inside scripts:
//
//   - stump: the real command, exactly as main does it (its exit status is the
//     process's; `! stump ...` expects a failure).
//   - stumpcode: runs cli.Main in the same way but prints "exit=N" (the code
//     cli.Main returned) on stdout and exits 0, so scripts can assert the exact
//     code with `stdout 'exit=2'` and still inspect stdout and stderr. It also
//     checks that cli.Main returns instead of ending the process itself.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"stump": func() {
			os.Exit(cli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
		},
		"stumpcode": func() {
			code := cli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr)
			fmt.Printf("exit=%d\n", code)
			os.Exit(0)
		},
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireUniqueNames:  true,
		RequireExplicitExec: false,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// listen VAR holds a free loopback port until the script ends and sets $VAR
			// to it (for the port-taken message of stump watch).
			"listen": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: listen VAR")
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				ts.Check(err)
				ts.Defer(func() { ln.Close() })
				ts.Setenv(args[0], strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
			},
		},
	})
}
