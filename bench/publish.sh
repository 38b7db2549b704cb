#!/usr/bin/env bash
# Publish benchmark: generates a site (internal/sitegen), builds it three times (as
# generated, with one page's Markdown edited, then with the theme's CSS edited too), and
# deploys the builds in-process (publish.Deployer over the S3 store) to versitygw on
# loopback, started here through scripts/services.sh. For each scenario (first deploy,
# no-op redeploy, one-page edit, CSS edit, and a naive "list + HEAD everything" check for
# comparison) it prints the median wall time and the S3 requests by operation, counted
# on the wire, as a Markdown table. See bench/README.md.
#
# Settings (environment):
#   PAGES=10000                  generated content pages
#   RUNS=3                       runs; each run deploys every scenario once to a fresh bucket
#   SEED=1                       sitegen seed
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

need_go
mkdir -p "$WORK"
install_versitygw
start_versitygw

step "publish benchmark: $PAGES pages, $RUNS run(s) (generating and building first)"
# -timeout 0: at 10,000 pages a run takes minutes. -count=1: never a cached result.
set +e
STUMP_BENCH_PAGES="$PAGES" STUMP_BENCH_RUNS="$RUNS" STUMP_BENCH_SEED="$SEED" \
	STUMP_BENCH_DIR="$WORK/publish" STUMP_BENCH_OUT="$WORK/publish.md" STUMP_BENCH_VERSITYGW="$VERSITYGW_VERSION" \
	go test -tags bench -count=1 -timeout 0 -run '^TestPublishBench$' -v ./publish/bench/ >"$WORK/publish.log" 2>&1
rc=$?
set -e
if [ "$rc" != 0 ]; then
	tail -n 60 "$WORK/publish.log" >&2
	die "the publish benchmark failed (log: $WORK/publish.log)"
fi
grep -E '^\s+bench_test.go:[0-9]+: (built|run) ' "$WORK/publish.log" | sed -E 's/^\s+bench_test.go:[0-9]+: /    /' >&2 || true
# The built trees are large (three times the site); the report and the log stay.
rm -rf "$WORK/publish"
cat "$WORK/publish.md"
