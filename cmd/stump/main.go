// Command stump builds, publishes and purges static sites. See README.md.
package main

import (
	"os"

	"github.com/stump-dev/stump/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
