#!/usr/bin/env bash
# Build benchmark: generates sites of 1k and 10k pages (internal/sitegen), builds each
# with stump RUNS times, and, when Hugo can be had, builds the same content with Hugo in
# the same run, alternating the two: clean builds (output folder and caches removed)
# and rebuilds (the previous build's output folder and caches still there, nothing
# changed). Prints a Markdown table of median wall time, pages per second and peak RSS,
# and the stump/Hugo ratios. See bench/README.md.
#
# Settings (environment):
#   RUNS=5                 timed runs per tool and size (one untimed warm-up run each first)
#   SIZES="1000 10000"     page counts
#   MODES="clean rebuild edit force"  which builds to time (see run_stump below)
#   SEED=1                 sitegen seed
#   SHORTCODES=0           1: end every generated page with a figure shortcode (sitegen -shortcodes)
#   HUGO=auto              auto: use or install Hugo, skip it if that fails; 0: no Hugo
#   HUGO_VERSION=v0.165.0  the version go install builds when no Hugo v0.146+ is found
#                          (v0.166 and later need Go 1.27)
#   BENCH_BIN=/tmp/bench-bin   where Hugo is installed
#   BENCH_WORK=/tmp/stump-bench  generated sites, outputs and logs
#   STUMP_BIN=$BENCH_WORK/stump  where stump is built
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"
cd_root

RUNS=${RUNS:-5}
SIZES=${SIZES:-"1000 10000"}
MODES=${MODES:-"clean rebuild edit force"}
SEED=${SEED:-1}
HUGO=${HUGO:-auto}
HUGO_VERSION=${HUGO_VERSION:-v0.165.0}
BENCH_BIN=${BENCH_BIN:-/tmp/bench-bin}
WORK=${BENCH_WORK:-/tmp/stump-bench}
STUMP=${STUMP_BIN:-$WORK/stump}
SITE=gen

need_go
need_gnu_time
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$WORK" "$BENCH_BIN"

step "building stump and sitegen"
go build -o "$STUMP" ./cmd/stump
go build -o "$WORK/sitegen" ./cmd/sitegen

# find_hugo prints the hugo command to use: BENCH_BIN's, else one on PATH, else it
# installs HUGO_VERSION into BENCH_BIN. It fails (and the benchmark runs stump alone)
# when Hugo cannot be had.
find_hugo() {
	[ "$HUGO" != 0 ] || return 1
	local h
	for h in "$BENCH_BIN/hugo" "$(command -v hugo || true)"; do
		# The layouts use Hugo's template system of v0.146 and later.
		if [ -x "$h" ] && [ "$("$h" version | sed -n 's/^hugo v0\.\([0-9]*\).*/\1/p')" -ge 146 ] 2>/dev/null; then
			echo "$h"
			return
		fi
	done
	step "installing Hugo $HUGO_VERSION into $BENCH_BIN (it compiles for a few minutes)"
	if (cd / && CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$BENCH_BIN" go install "github.com/gohugoio/hugo@$HUGO_VERSION") >"$WORK/hugo-install.log" 2>&1; then
		echo "$BENCH_BIN/hugo"
		return
	fi
	say "Hugo $HUGO_VERSION could not be installed (log: $WORK/hugo-install.log); benchmarking stump alone."
	return 1
}

hugo_bin=$(find_hugo) || hugo_bin=
hugo_name=
if [ -n "$hugo_bin" ]; then
	hugo_name="hugo $("$hugo_bin" version | awk '{ print $2 }')"
	say "Hugo: $hugo_bin ($hugo_name)"
fi

# measure runs a command under GNU time and sets wall_ms and rss_kb. Its stdout is kept
# in $WORK/last.out; on failure its stderr is shown and the benchmark stops.
measure() {
	local start end
	start=$(date +%s%N)
	if ! /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/last.out" 2>"$WORK/last.err"; then
		cat "$WORK/last.err" >&2
		die "failed: $*"
	fi
	end=$(date +%s%N)
	wall_ms=$(((end - start) / 1000000))
	rss_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time.txt")
}

# run_stump SIZE MODE, run_hugo SIZE MODE. MODE:
#   clean    the previous output (and Hugo's caches) removed first;
#   rebuild  over the previous output, nothing changed (stump sees its inputs unchanged
#            and skips the build: see "What a build writes" in the README);
#   edit     over the previous output, one page's Markdown edited first (a paragraph
#            appended to the same page for both tools);
#   force    stump build --force: over the previous output, nothing changed, every page
#            rendered again (Hugo's figure is its rebuild).
edit_page() { printf '\nEdited by bench/build.sh, run %s.\n' "$RANDOM$RANDOM" >>"$1/$edit_rel"; }

# Old outputs and caches are moved aside into $TRASH (discard, scripts/lib.sh), not
# deleted before a timed build: a clean build is measured from an empty folder, not
# from the harness's rm -rf.
TRASH="$WORK/trash-$$"

run_stump() {
	local extra=()
	case $2 in
	clean) discard "$TRASH" "$WORK/stump-$1/public" "$WORK/stump-$1/.stump" ;;
	edit) edit_page "$WORK/stump-$1/sites/$SITE/content" ;;
	force) extra=(--force) ;;
	esac
	measure "$STUMP" -C "$WORK/stump-$1" build --site "$SITE" --json "${extra[@]}"
}

run_hugo() {
	case $2 in
	clean) discard "$TRASH" "$WORK/out-hugo-$1" "$WORK/hugo-cache" "$WORK/hugo-$1/resources" ;;
	edit) edit_page "$WORK/hugo-$1/content" ;;
	esac
	measure "$hugo_bin" --quiet -s "$WORK/hugo-$1" -d "$WORK/out-hugo-$1" --cacheDir "$WORK/hugo-cache"
}

files_in() { find "$1" -type f | wc -l; }

# row prints one table row: tool, pages, files written, median ms, peak kB.
row() {
	awk -v tool="$1" -v pages="$2" -v files="$3" -v ms="$4" -v kb="$5" -v runs="$RUNS" 'BEGIN {
		printf "| %s | %d | %s | %d | %.2f s | %.0f | %.0f MiB |\n", tool, pages, files, runs, ms / 1000, pages / (ms / 1000), kb / 1024
	}'
}

table="| tool | pages | files out | runs | median wall | pages/s | peak RSS |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
ratios=""

for size in $SIZES; do
	step "generating $size pages"
	discard "$TRASH" "$WORK/stump-$size" "$WORK/hugo-$size"
	gen_args=(-pages "$size" -seed "$SEED" -out "$WORK/stump-$size")
	[ "${SHORTCODES:-0}" = 0 ] || gen_args+=(-shortcodes)
	[ -z "$hugo_bin" ] || gen_args+=(-hugo "$WORK/hugo-$size")
	"$WORK/sitegen" "${gen_args[@]}" >/dev/null
	edit_rel=$(cd "$WORK/stump-$size/sites/$SITE/content" && find . -name '*.md' ! -name _index.md | sort | sed -n 1p)

	for mode in $MODES; do
		step "$size pages, $mode: warm-up, then $RUNS runs$([ -z "$hugo_bin" ] || echo ", alternating stump and Hugo")"
		run_stump "$size" "$mode"
		[ -z "$hugo_bin" ] || run_hugo "$size" "$mode"
		s_ms=() s_kb=() h_ms=() h_kb=()
		for i in $(seq "$RUNS"); do
			run_stump "$size" "$mode"
			s_ms+=("$wall_ms") s_kb+=("$rss_kb")
			line="$mode run $i: stump ${wall_ms} ms ${rss_kb} kB"
			if [ -n "$hugo_bin" ]; then
				run_hugo "$size" "$mode"
				h_ms+=("$wall_ms") h_kb+=("$rss_kb")
				line+=", hugo ${wall_ms} ms ${rss_kb} kB"
			fi
			say "$line"
		done
		s_files=$(files_in "$WORK/stump-$size/public")
		s_med=$(median "${s_ms[@]}")
		table+=$'\n'"$(row "stump, $mode" "$size" "$s_files" "$s_med" "$(maximum "${s_kb[@]}")")"
		if [ -n "$hugo_bin" ]; then
			h_med=$(median "${h_ms[@]}")
			table+=$'\n'"$(row "$hugo_name, $mode" "$size" "$(files_in "$WORK/out-hugo-$size")" "$h_med" "$(maximum "${h_kb[@]}")")"
			ratios+=$(awk -v n="$size" -v m="$mode" -v s="$s_med" -v h="$h_med" -v sk="$(maximum "${s_kb[@]}")" -v hk="$(maximum "${h_kb[@]}")" \
				'BEGIN { printf "- %d pages, %s: stump/hugo wall time %.2f×, peak RSS %.2f×\n", n, m, s / h, sk / hk }')$'\n'
		fi
	done
done

{
	echo
	echo "stump build benchmark — $(date -u +%Y-%m-%d), $(nproc) cores, $(go env GOVERSION), commit $(git rev-parse --short HEAD 2>/dev/null || echo none), load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "$table"
	if [ -n "$ratios" ]; then
		echo
		printf '%s' "$ratios"
	fi
	echo
	echo "Median of $RUNS builds after one warm-up: clean (output and caches removed), rebuild (over the previous output, nothing changed: stump skips the build), edit (over the previous output, one page edited) and force (stump build --force: nothing changed, every page rendered again; Hugo's is its plain rebuild); pages/s counts the generated content pages; peak RSS is the largest of the runs."
} | tee "$WORK/results.md"
