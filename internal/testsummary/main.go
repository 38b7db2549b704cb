// Command testsummary reads `go test -json` on stdin and prints what a person needs:
// go test's own lines per package ("ok", "FAIL", "? … [no test files]"), the whole
// output of every failed test (and of a package that failed outside its tests), build
// errors, then the slowest tests and the wall time of the run. It exits 0; the caller
// takes go test's exit status. scripts/test pipes the suite through it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

type event struct {
	Time       time.Time
	Action     string
	Package    string
	ImportPath string
	Test       string
	Elapsed    float64
	Output     string
}

type testRun struct {
	pkg, name string
	elapsed   float64
}

func main() {
	slowest := 10
	summarize(os.Stdin, os.Stdout, slowest)
}

func summarize(in io.Reader, out io.Writer, slowest int) {
	start := time.Now()
	outputs := map[string]*strings.Builder{} // "pkg\x00test" → output
	var runs []testRun
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		var e event
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil {
			fmt.Fprintln(out, line) // not an event: the go command's own output
			continue
		}
		switch e.Action {
		case "build-output":
			fmt.Fprint(out, e.Output)
			continue
		case "build-fail":
			continue
		}
		key := e.Package + "\x00" + e.Test
		switch e.Action {
		case "output":
			b := outputs[key]
			if b == nil {
				b = &strings.Builder{}
				outputs[key] = b
			}
			b.WriteString(e.Output)
		case "pass", "skip":
			if e.Test != "" {
				if e.Action == "pass" {
					// Subtests too: a parent's time leaves out its parallel subtests.
					runs = append(runs, testRun{e.Package, e.Test, e.Elapsed})
				}
				delete(outputs, key)
				continue
			}
			// The package's last line (ok …, or ? … [no test files]).
			printLast(out, outputs[key], e.Action == "skip")
			delete(outputs, key)
		case "fail":
			if e.Test != "" {
				// Subtests end before their parent: each failed one prints its own
				// output, then the parent prints its own.
				if b := outputs[key]; b != nil {
					fmt.Fprint(out, b.String())
				}
				delete(outputs, key)
				runs = append(runs, testRun{e.Package, e.Test, e.Elapsed})
				continue
			}
			// A failed package: its output outside tests (a panic, TestMain, a timeout).
			if b := outputs[key]; b != nil {
				fmt.Fprint(out, b.String())
			} else {
				fmt.Fprintf(out, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
			}
			delete(outputs, key)
		}
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].elapsed > runs[j].elapsed })
	if len(runs) > 0 {
		fmt.Fprintf(out, "\nslowest tests:\n")
		for i, r := range runs {
			if i == slowest {
				break
			}
			fmt.Fprintf(out, "  %7.1fs  %s  %s\n", r.elapsed, r.name, r.pkg)
		}
	}
	fmt.Fprintf(out, "go test wall time: %s\n", time.Since(start).Round(time.Second))
}

// printLast prints the package's closing lines from its output: "ok …", "? …", or
// for a skipped package the "no test files" line.
func printLast(out io.Writer, b *strings.Builder, skip bool) {
	if b == nil {
		return
	}
	for _, l := range strings.SplitAfter(b.String(), "\n") {
		if strings.HasPrefix(l, "ok  ") || strings.HasPrefix(l, "?   ") || strings.HasPrefix(l, "ok\t") || (skip && strings.Contains(l, "[no test files]")) {
			fmt.Fprint(out, l)
		}
	}
}
