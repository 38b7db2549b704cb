#!/usr/bin/env bash
# Many-sites benchmark (issue 14): generates SITES sites of PAGES pages sharing the
# campaign theme (cmd/sitegen -sites), and times, with GNU time, against the embedded
# file targets (.stump/targets/<site>):
#   build --all (clean); publish --all, first; publish --all with nothing changed;
#   the theme's stylesheet changed; one page of one site changed;
# and checks that --changed-since picks exactly the touched site and that the shares of
# --shard 1/N .. N/N hold every site exactly once. Prints a Markdown table: wall time,
# sites published and unchanged, store requests (from publish --json), peak RSS, and the
# targets' size on disk (hard links counted once). See bench/README.md.
#
# Settings (environment):
#   SITES=150 PAGES=200 SEED=1   the workspace
#   MODE=inplace                 the sites' deploy.mode (inplace or atomic), set in stump.yaml's defaults
#   PARALLEL=2                   publish --parallel
#   SHARDS=4                     shares checked for --shard
#   RUNS=3                       timed runs of each scenario after the first publish (its median
#                                is reported; the theme and the page are edited again before each)
#   BENCH_WORK=/tmp/stump-bench  the workspace (sites/), the report (sites.md)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"
cd_root

SITES=${SITES:-150}
MODE=${MODE:-inplace}
PAGES=${PAGES:-200}
SEED=${SEED:-1}
PARALLEL=${PARALLEL:-2}
SHARDS=${SHARDS:-4}
RUNS=${RUNS:-3}
WORK=${BENCH_WORK:-/tmp/stump-bench}
WS=$WORK/sites
STUMP=$WORK/stump

need_go
need_gnu_time
command -v jq >/dev/null || die "bench/sites.sh needs jq"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$WORK"

step "building stump and sitegen"
go build -o "$STUMP" ./cmd/stump
go build -o "$WORK/sitegen" ./cmd/sitegen

step "generating $SITES sites × $PAGES pages"
# The last run's workspace (hundreds of thousands of files) is moved aside and removed
# when the script exits (discard, scripts/lib.sh), not before the measurements.
discard "$WORK/trash-$$" "$WS"
"$WORK/sitegen" -sites "$SITES" -pages "$PAGES" -seed "$SEED" -out "$WS" >/dev/null
[ "$MODE" = inplace ] || printf 'defaults:\n  deploy:\n    mode: %s\n' "$MODE" >>"$WS/stump.yaml"
printf 'public/\n.stump/\n' >"$WS/.gitignore"
git -C "$WS" init -q
git -C "$WS" add -A
git -C "$WS" -c user.email=bench@example.org -c user.name=bench commit -qm generated

table="| $SITES sites × $PAGES pages | runs | median wall | published | unchanged | store requests | uploaded | peak RSS |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"

# measure CMD...: times CMD under GNU time (wall in ms, kb); for publish --json output,
# counts sites published / unchanged and sums the store requests.
measure() {
	local start end
	start=$(date +%s%N)
	if ! /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/last.out" 2>"$WORK/last.err"; then
		cat "$WORK/last.err" >&2
		die "failed: $*"
	fi
	end=$(date +%s%N)
	wall=$(((end - start) / 1000000))
	kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time.txt")
	pub="" unch="" req="" up=""
	if jq -e '.sites[0] | has("target")' "$WORK/last.out" >/dev/null 2>&1; then
		pub=$(jq '[.sites[] | select(.unchanged | not)] | length' "$WORK/last.out")
		unch=$(jq '[.sites[] | select(.unchanged)] | length' "$WORK/last.out")
		req=$(jq '[.sites[] | (.requests // {}) | ((.get // 0) + (.head // 0) + (.put // 0) + (.copy // 0) + (.delete // 0) + (.list // 0))] | add // 0' "$WORK/last.out")
		up=$(jq '[.sites[] | (.requests.putBytes // 0)] | add // 0 | . / 1048576 | floor | tostring + " MiB"' -r "$WORK/last.out")
	fi
}


# run NAME PREP CMD...: runs PREP (a function given the run's number, or :) then CMD, once
# for NAME ending in "first" or "(clean)", else RUNS times; a table row with the median
# wall time, the largest peak RSS and the last run's counts.
run() {
	local name=$1 prep=$2 n=$RUNS walls=() kbs=() i
	shift 2
	case $name in *first | *"(clean)") n=1 ;; esac
	for i in $(seq "$n"); do
		$prep "$i"
		measure "$@"
		walls+=("$wall") kbs+=("$kb")
		say "$name, run $i: $((wall)) ms, ${kb} kB${pub:+, published $pub, unchanged $unch, requests $req, uploaded $up}"
	done
	wall=$(median "${walls[@]}")
	kb=$(maximum "${kbs[@]}")
	table+=$'\n'"$(awk -v n="$name" -v ms="$wall" -v kb="$kb" -v p="$pub" -v u="$unch" -v r="$req" -v up="$up" -v runs="$n" 'BEGIN {
		printf "| %s | %d | %.2f s | %s | %s | %s | %s | %.0f MiB |\n", n, runs, ms / 1000, p, u, r, up, kb / 1024 }')"
}

edit_theme() { printf '\n.bench-edit-%s { color: #123456 }\n' "$1$RANDOM" >>"$WS/themes/campaign/static/css/site.css"; }
edit_page() { printf '\nOne more paragraph, from bench/sites.sh (%s).\n' "$1$RANDOM" >>"$page"; }

S="$STUMP -C $WS"
step "scenarios"
page=$(find "$WS/sites/s001/content" -name '*.md' ! -name '_index.md' | sort | sed -n 1p)
run "build --all (clean)" : $S build --all --json
run "publish --all, first" : $S publish --all --parallel "$PARALLEL" --json
run "publish --all, nothing changed" : $S publish --all --parallel "$PARALLEL" --json
run "publish --all, theme stylesheet changed" edit_theme $S publish --all --parallel "$PARALLEL" --json
run "publish --all, one page of one site changed" edit_page $S publish --all --parallel "$PARALLEL" --json
run "publish --all, nothing changed (again)" : $S publish --all --parallel "$PARALLEL" --json

step "--changed-since and --shard"
git -C "$WS" add -A
git -C "$WS" -c user.email=bench@example.org -c user.name=bench commit -qm edits
printf '\nAnd another.\n' >>"$page"
$S publish --all --changed-since HEAD --dry-run --json >"$WORK/changed.json"
changed=$(jq -r '[.sites[].site] | join(" ")' "$WORK/changed.json")
[ "$changed" = s001 ] || die "--changed-since HEAD picked [$changed], want [s001]"
git -C "$WS" checkout -q -- .
# Nothing changed since the last publish: each share's sites are reported unchanged.
for i in $(seq "$SHARDS"); do
	$S publish --all --shard "$i/$SHARDS" --json | jq -r '.sites[].site'
done | sort >"$WORK/shards.txt"
find "$WS/sites" -mindepth 2 -maxdepth 2 -name site.yaml | awk -F/ '{ print $(NF-1) }' | sort >"$WORK/all.txt"
if ! cmp -s "$WORK/shards.txt" "$WORK/all.txt"; then
	die "--shard 1..$SHARDS/$SHARDS do not cover every site exactly once"
fi
coverage="--changed-since HEAD after one page edit: [$changed]; --shard 1..$SHARDS/$SHARDS: $(wc -l <"$WORK/shards.txt") sites, each exactly once"

disk=$(du -sh "$WS/.stump/targets" | cut -f1)
apparent=$(du -sh --apparent-size "$WS/.stump/targets" | cut -f1)
{
	echo
	echo "stump many-sites benchmark — $(date -u +%Y-%m-%d), $(nproc) cores, $(go env GOVERSION), commit $(git rev-parse --short HEAD 2>/dev/null || echo none), load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg); publish --parallel $PARALLEL; embedded file targets, deploy mode $MODE"
	echo
	echo "$table"
	echo
	echo "- median of $RUNS runs (one for the clean build and the first publish); the theme's stylesheet or the page is edited again before each run"
	echo "- $coverage"
	echo "- targets after these deploys: $disk on disk ($apparent apparent; hard links counted once)"
} | tee "$WORK/sites.md"
