package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

func ciCommand() *cli.Command {
	return &cli.Command{
		Name:  "ci",
		Usage: "write a CI configuration that builds, previews and publishes the workspace's sites",
		Subcommands: []*cli.Command{{
			Name:  "github",
			Usage: "write a GitHub Actions workflow: preview deploys on pull requests, sharded publishes of the changed sites on merge (AWS credentials through OIDC)",
			Description: "Writes .github/workflows/stump.yml at the top of the git repository (or --out). On a pull\n" +
				"request it publishes the sites the pull request changes as previews (stump publish --preview) and\n" +
				"lists their URLs in the job summary; on a push to the branch it publishes the changed sites\n" +
				"(--changed-since the previous commit), split over a matrix of --shards runners. AWS credentials come\n" +
				"from OIDC (aws-actions/configure-aws-credentials and the repository variable STUMP_AWS_ROLE_ARN);\n" +
				"no long-lived keys. See docs/ci.md.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "out", Usage: "write the workflow to `FILE` (default: .github/workflows/stump.yml at the top of the git repository)"},
				&cli.IntFlag{Name: "shards", Value: 4, Usage: "runners in the publish matrix"},
				&cli.StringFlag{Name: "branch", Value: "main", Usage: "the branch whose pushes publish"},
				&cli.StringFlag{Name: "region", Value: "us-east-1", Usage: "the AWS region for credentials (AWS_REGION)"},
				&cli.StringFlag{Name: "version", Usage: "the stump `VERSION` the workflow installs (default: this binary's, else latest)"},
				&cli.BoolFlag{Name: "force", Usage: "replace an existing workflow file"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 {
					return usagef("ci github takes no arguments (got %q)", c.Args().First())
				}
				if n := c.Int("shards"); n < 1 || n > 256 {
					return usagef("--shards %d: want 1 to 256", n)
				}
				ws, err := openWorkspace(c)
				if err != nil {
					return cli.Exit("stump: "+err.Error(), ExitFail)
				}
				out := c.String("out")
				top, rel := gitTop(ws.Root)
				if out == "" {
					if top == "" {
						return cli.Exit("stump: the workspace is not in a git repository; use --out FILE", ExitFail)
					}
					out = filepath.Join(top, ".github", "workflows", "stump.yml")
				}
				if _, err := os.Stat(out); err == nil && !c.Bool("force") {
					return cli.Exit("stump: "+out+" exists; use --force to replace it", ExitFail)
				} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return cli.Exit("stump: "+err.Error(), ExitFail)
				}
				version := c.String("version")
				if version == "" {
					version = "latest"
					if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
						version = bi.Main.Version
					}
				}
				text := githubWorkflow(workflowOptions{
					Dir: rel, Shards: c.Int("shards"), Branch: c.String("branch"), Region: c.String("region"), Version: version,
				})
				if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
					return cli.Exit("stump: "+err.Error(), ExitFail)
				}
				if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
					return cli.Exit("stump: "+err.Error(), ExitFail)
				}
				fmt.Fprintf(c.App.Writer, "wrote %s\nnext: set the repository variable STUMP_AWS_ROLE_ARN to an IAM role GitHub's OIDC provider may assume (docs/ci.md)\n", out)
				return nil
			},
		}},
	}
}

// gitTop returns the top folder of the git repository holding dir and dir relative to
// it ("." at the top), or "" outside git.
func gitTop(dir string) (string, string) {
	b, err := exec.Command("git", "-C", dir, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", "."
	}
	top := strings.TrimSpace(string(b))
	rel, err := filepath.Rel(top, dir)
	if err != nil {
		// Symlinked paths: compare resolved ones.
		if rd, err2 := filepath.EvalSymlinks(dir); err2 == nil {
			rel, err = filepath.Rel(top, rd)
		}
		if err != nil {
			rel = "."
		}
	}
	return top, filepath.ToSlash(rel)
}

type workflowOptions struct {
	Dir     string // the workspace, relative to the repository
	Shards  int
	Branch  string
	Region  string
	Version string
}

// githubWorkflow is the workflow `stump ci github` writes.
func githubWorkflow(o workflowOptions) string {
	shards := make([]string, o.Shards)
	for i := range shards {
		shards[i] = strconv.Itoa(i + 1)
	}
	r := strings.NewReplacer(
		"@DIR@", o.Dir, "@SHARDS@", strings.Join(shards, ", "), "@N@", strconv.Itoa(o.Shards),
		"@BRANCH@", o.Branch, "@REGION@", o.Region, "@VERSION@", o.Version,
	)
	return r.Replace(githubWorkflowTemplate)
}

const githubWorkflowTemplate = `# Written by "stump ci github". Builds and previews the sites a pull request changes, and
# publishes the sites a push to @BRANCH@ changes, split over @N@ runners. AWS credentials
# come from GitHub's OIDC provider: set the repository variable STUMP_AWS_ROLE_ARN to a
# role that trusts it (docs/ci.md); no access keys are stored.
name: stump

on:
  pull_request:
  push:
    branches: [@BRANCH@]
  # Pages scheduled for later (publishDate) go out on the first run after they are due:
  # a scheduled run publishes nothing else (every other site is unchanged, skipped by
  # its fingerprint in a few seconds). GitHub runs schedules on the default branch.
  schedule:
    - cron: "*/10 * * * *"

permissions:
  contents: read
  id-token: write # OIDC token for AWS

env:
  AWS_REGION: ${{ vars.AWS_REGION || '@REGION@' }}
  STUMP_DIR: @DIR@

jobs:
  preview:
    if: github.event_name == 'pull_request' && github.event.pull_request.head.repo.full_name == github.repository
    runs-on: ubuntu-latest
    concurrency:
      group: stump-preview-${{ github.event.pull_request.number }}
      cancel-in-progress: true
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0 # --changed-since needs the base commit
      - uses: actions/setup-go@v5
        with:
          go-version: stable
          cache: false
      - name: Install stump
        run: go install github.com/stump-dev/stump/cmd/stump@@VERSION@
      - uses: aws-actions/configure-aws-credentials@v4
        with:
          role-to-assume: ${{ vars.STUMP_AWS_ROLE_ARN }}
          aws-region: ${{ env.AWS_REGION }}
      - name: Build and deploy previews
        run: |
          set -o pipefail
          base=$(git merge-base "origin/${{ github.base_ref }}" HEAD)
          stump publish --all --changed-since "$base" --preview --json \
            -m "preview of #${{ github.event.pull_request.number }}" > preview.json || status=$?
          {
            echo "### stump previews"
            jq -r '.sites[] | if .ok then "- **\(.site)**: \(.previewURL // "deploy \(.result.deploy) (set edge.preview_host for a URL)")" else "- **\(.site)**: failed: \(.error)" end' preview.json
            jq -e '.sites | length > 0' preview.json > /dev/null || echo "No site changed."
          } >> "$GITHUB_STEP_SUMMARY"
          exit "${status:-0}"

  publish:
    if: github.event_name == 'push' || github.event_name == 'schedule'
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false
      matrix:
        shard: [@SHARDS@]
    concurrency:
      group: stump-publish-${{ matrix.shard }}
      cancel-in-progress: false
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - uses: actions/setup-go@v5
        with:
          go-version: stable
          cache: false
      - name: Install stump
        run: go install github.com/stump-dev/stump/cmd/stump@@VERSION@
      - uses: aws-actions/configure-aws-credentials@v4
        with:
          role-to-assume: ${{ vars.STUMP_AWS_ROLE_ARN }}
          aws-region: ${{ env.AWS_REGION }}
      # Fingerprints of the last publishes: a site whose inputs did not change is not
      # rebuilt. A stale cache is safe (the target's live deploy is checked too). The
      # Markdown cache spares a theme change re-rendering every page's Markdown.
      - uses: actions/cache@v4
        with:
          path: |
            ${{ env.STUMP_DIR }}/.stump/fingerprints
            ${{ env.STUMP_DIR }}/.stump/cache
          key: stump-fingerprints-${{ matrix.shard }}-${{ github.sha }}
          restore-keys: stump-fingerprints-${{ matrix.shard }}-
      - name: Publish the changed sites (shard ${{ matrix.shard }} of @N@)
        env:
          BEFORE: ${{ github.event.before }}
        run: |
          set -o pipefail
          since=()
          if [ -n "$BEFORE" ] && [ "$BEFORE" != 0000000000000000000000000000000000000000 ] && git cat-file -e "$BEFORE^{commit}" 2>/dev/null; then
            since=(--changed-since "$BEFORE")
          fi
          stump publish --all "${since[@]}" --shard ${{ matrix.shard }}/@N@ --wait --json \
            -m "${{ github.sha }}" > publish.json || status=$?
          {
            echo "### stump publish, shard ${{ matrix.shard }} of @N@"
            jq -r '.sites[] | if .ok then "- **\(.site)**: \(if .unchanged then "unchanged" elif .result.noop then "up to date" else "deploy \(.result.deploy) is live" end)" else "- **\(.site)**: failed: \(.error)" end' publish.json
          } >> "$GITHUB_STEP_SUMMARY"
          exit "${status:-0}"
`
