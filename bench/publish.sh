#!/usr/bin/env bash
# Publish benchmark: generates a site (internal/sitegen), builds it three times (as
# generated, with one page's Markdown edited, then with the theme's CSS edited too), and
# deploys the builds in-process (publish.Deployer over the S3 store) to versitygw on
# loopback, started here through scripts/services.sh, in place and in atomic mode, and
# with `hugo deploy` (Hugo built with -tags withdeploy, installed here) to the same
# versitygw in the same runs. For each scenario (first deploy, no-op redeploy, one-page
# edit, CSS edit, and a naive "list + HEAD everything" check for comparison) it prints
# the median wall time and the S3 requests by operation, counted on the wire, as
# Markdown tables, and the ratios to hugo deploy. See bench/README.md.
#
# Settings (environment):
#   PAGES=10000                  generated content pages
#   RUNS=3                       runs; each run deploys every scenario once to a fresh bucket
#   SEED=1                       sitegen seed
#   HUGO=auto                    auto: use or install Hugo with deploy, skip it if that fails; 0: no Hugo
#   HUGO_VERSION=v0.160.0        the Hugo go install builds (with -tags withdeploy)
#   BENCH_BIN=/tmp/bench-bin-deploy  where that Hugo is installed
#   WORKERS=""                   e.g. "4,8,16,32,64": also the concurrency curve (Deployer.Workers)
#   FASTLY=""                    1: also atomic mode as stump publish runs it on Fastly (the edge
#                                stamp, the 404 page in every layer)
#   VGW_KEEP_ALIVE=true          versitygw keeps connections alive (false: it closes each)
#   BENCH_WORK=/tmp/stump-bench  the generated site and its builds (publish/), the report
#                                (publish.md) and the test log (publish.log)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"
# shellcheck source=scripts/services.sh
source "$(dirname "$0")/../scripts/services.sh"
cd_root

PAGES=${PAGES:-10000}
RUNS=${RUNS:-3}
SEED=${SEED:-1}
WORK=${BENCH_WORK:-/tmp/stump-bench}
HUGO=${HUGO:-auto}
HUGO_VERSION=${HUGO_VERSION:-v0.160.0}
BENCH_BIN=${BENCH_BIN:-/tmp/bench-bin-deploy}
WORKERS=${WORKERS:-}
FASTLY=${FASTLY:-}

need_go
mkdir -p "$WORK" "$BENCH_BIN"
install_versitygw
# Keep connections alive, as S3 does (versitygw closes each by default): both clients,
# stump and hugo deploy, then pay for connections as they would against S3.
export VGW_KEEP_ALIVE=${VGW_KEEP_ALIVE:-true}
start_versitygw

# find_hugo_deploy prints a hugo that has the deploy command: BENCH_BIN's when it is
# HUGO_VERSION, else it installs HUGO_VERSION built with -tags withdeploy (a separate
# binary from bench/build.sh's Hugo, which has no deploy). It fails, and the benchmark
# runs stump alone, when that cannot be built.
find_hugo_deploy() {
	[ "$HUGO" != 0 ] || return 1
	local h="$BENCH_BIN/hugo"
	if [ -x "$h" ] && "$h" version | grep -q "^hugo ${HUGO_VERSION}" && "$h" deploy --help >/dev/null 2>&1; then
		echo "$h"
		return
	fi
	step "installing Hugo $HUGO_VERSION with deploy into $BENCH_BIN (it compiles for several minutes)"
	if (cd / && CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$BENCH_BIN" go install -tags withdeploy "github.com/gohugoio/hugo@$HUGO_VERSION") >"$WORK/hugo-deploy-install.log" 2>&1 &&
		"$h" deploy --help >/dev/null 2>&1; then
		echo "$h"
		return
	fi
	say "Hugo $HUGO_VERSION with deploy could not be built (log: $WORK/hugo-deploy-install.log); benchmarking stump alone."
	return 1
}
hugo_bin=$(find_hugo_deploy) || hugo_bin=

step "publish benchmark: $PAGES pages, $RUNS run(s) (generating and building first)"
# -timeout 0: at 10,000 pages a run takes minutes. -count=1: never a cached result.
set +e
STUMP_BENCH_PAGES="$PAGES" STUMP_BENCH_RUNS="$RUNS" STUMP_BENCH_SEED="$SEED" \
	STUMP_BENCH_DIR="$WORK/publish" STUMP_BENCH_OUT="$WORK/publish.md" STUMP_BENCH_VERSITYGW="$VERSITYGW_VERSION" \
	STUMP_BENCH_HUGO="$hugo_bin" STUMP_BENCH_WORKERS="$WORKERS" STUMP_BENCH_FASTLY="$FASTLY" \
	go test -tags bench -count=1 -timeout 0 -run '^TestPublishBench$' -v ./publish/bench/ >"$WORK/publish.log" 2>&1
rc=$?
set -e
if [ "$rc" != 0 ]; then
	tail -n 60 "$WORK/publish.log" >&2
	die "the publish benchmark failed (log: $WORK/publish.log)"
fi
grep -E '^\s+(publish_)?bench_test.go:[0-9]+: (built|run|workers) ' "$WORK/publish.log" | sed -E 's/^\s+(publish_)?bench_test.go:[0-9]+: /    /' >&2 || true
# The built trees are large (three times the site); the report and the log stay.
rm -rf "$WORK/publish"
cat "$WORK/publish.md"
