# shellcheck shell=bash
# Functions shared by the scripts in scripts/ and bench/. Source it; by itself it does
# nothing. Each need_* function checks for a tool and, where Debian packages it, installs
# what is missing, so a new machine runs the scripts with no manual step.

# say prints a line for people on stderr, so that stdout stays the command's result.
say() { printf '%s\n' "$*" >&2; }

# step announces a stage of a script.
step() { say "==> $*"; }

# die prints an error and exits non-zero.
die() {
	say "error: $*"
	exit 1
}

# repo_root prints the repository's root folder (the parent of scripts/).
repo_root() { (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd); }

# cd_root changes to the repository's root.
cd_root() { cd "$(repo_root)"; }

# apt_install installs Debian packages, running apt-get update once per script. It
# prints one line; apt's and dpkg's output goes to a log under .stump/log/, shown (its
# last lines) only when the install fails.
apt_install() {
	command -v apt-get >/dev/null || die "cannot install $*: apt-get is not available; install it by hand"
	local sudo=() log start
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	mkdir -p "$(repo_root)/.stump/log"
	log="$(repo_root)/.stump/log/apt.log"
	start=$(date +%s)
	printf '    installing %s (Debian packages; log: %s) ... ' "$*" "${log#"$(repo_root)/"}" >&2
	{
		if [ -z "${_STUMP_APT_UPDATED:-}" ]; then
			"${sudo[@]}" apt-get update -qq
		fi
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@"
	} >>"$log" 2>&1 || {
		say "failed"
		tail -n 30 "$log" >&2
		die "apt-get install $* failed (the whole log: $log)"
	}
	_STUMP_APT_UPDATED=1
	say "done in $(($(date +%s) - start)) s"
}

# need_go checks that go is on PATH and at least the version go.mod names.
need_go() {
	local want have
	want=$(awk '$1 == "go" { print $2; exit }' "$(repo_root)/go.mod")
	command -v go >/dev/null || die "go is not on PATH: install Go $want or newer"
	have=$(go env GOVERSION)
	have=${have#go}
	if [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n 1)" != "$want" ]; then
		die "go.mod needs Go $want, but go on PATH is $have"
	fi
}

# download_modules fetches the modules go.mod names, quietly (a log under .stump/log/,
# shown when it fails), so that go vet and go test print no download lines.
download_modules() {
	local log
	mkdir -p "$(repo_root)/.stump/log"
	log="$(repo_root)/.stump/log/go-mod-download.log"
	(cd "$(repo_root)" && go mod download) >"$log" 2>&1 || {
		tail -n 30 "$log" >&2
		die "go mod download failed (log: $log)"
	}
}

# need_cc checks for the C compiler that cgo, and so go test -race, needs.
need_cc() {
	command -v cc >/dev/null || apt_install gcc libc6-dev
	[ "$(go env CGO_ENABLED)" = 1 ] || die "go test -race needs cgo: set CGO_ENABLED=1"
}

# need_gnu_time checks for GNU time (/usr/bin/time -v reports peak memory).
need_gnu_time() {
	/usr/bin/time -v true >/dev/null 2>&1 || apt_install time
}

# check_gofmt fails, listing them, when gofmt would change any Go file.
check_gofmt() {
	local bad
	bad=$(gofmt -l .)
	if [ -n "$bad" ]; then
		say "gofmt would change these files (run: gofmt -w FILE):"
		say "$bad"
		return 1
	fi
}

# run_go_tests runs every package's tests with the race detector and prints go test's
# line per package, the output of failed tests, the slowest tests and the wall time
# (internal/testsummary reads go test -json), then a summary line counting packages. It
# returns go test's exit status.
run_go_tests() {
	local log rc ok failed none summary
	log=$(mktemp)
	summary="$(repo_root)/.stump/bin/testsummary"
	go build -o "$summary" ./internal/testsummary || die "could not build internal/testsummary"
	set +e
	go test -race -count=1 -json "$@" ./... 2>&1 | "$summary" | tee "$log"
	rc=${PIPESTATUS[0]}
	set -e
	ok=$(grep -c '^ok[[:space:]]' "$log" || true)
	failed=$(grep -c '^FAIL[[:space:]]' "$log" || true)
	none=$(grep -c '^?[[:space:]].*no test files' "$log" || true)
	rm -f "$log"
	echo
	echo "packages without tests: $none"
	echo "packages: $ok passed, $failed failed"
	return "$rc"
}

# ---------------------------------------------------------------------------------------
# Helpers for services that scripts start on loopback (scripts/services.sh uses them).
# ---------------------------------------------------------------------------------------

# at_exit CMD... adds a command to run when the script exits, however it exits (normal end,
# error under set -e, Ctrl-C, SIGTERM). Commands run in reverse order of registration;
# each gets the script's exit status in $STUMP_EXIT_STATUS, and the script keeps it.
# Use at_exit, never `trap ... EXIT`, so that services started by different functions do
# not replace each other's cleanup.
at_exit() {
	_STUMP_AT_EXIT=("$*" "${_STUMP_AT_EXIT[@]}")
	if [ -z "${_STUMP_AT_EXIT_SET:-}" ]; then
		trap '_stump_run_at_exit' EXIT
		trap 'exit 130' INT
		trap 'exit 143' TERM
		_STUMP_AT_EXIT_SET=1
	fi
}

_stump_run_at_exit() {
	STUMP_EXIT_STATUS=$?
	local cmd
	set +e
	for cmd in "${_STUMP_AT_EXIT[@]}"; do
		eval "$cmd"
	done
	exit "$STUMP_EXIT_STATUS"
}

# discard TRASH PATH... moves each existing PATH into the folder TRASH and removes TRASH
# when the script exits (at_exit). Benchmarks use it instead of rm -rf before a timed
# run: on ext4 without a journal (the test machines' /), creating files in the minutes
# after a large delete makes the kernel step over every recently deleted inode one by
# one (recently_deleted in find_inode_bit), which doubled the system time of a clean
# build; the deletion would be charged to the tool that runs next.
discard() {
	local trash=$1 p
	shift
	if [ ! -d "$trash" ]; then
		mkdir -p "$trash"
		at_exit "rm -rf '$trash'"
	fi
	for p in "$@"; do
		[ ! -e "$p" ] || mv "$p" "$(mktemp -d "$trash/XXXXXX")/"
	done
}

# median N... prints the median of numbers; maximum N... the largest.
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
maximum() { printf '%s\n' "$@" | sort -n | tail -n 1; }

# free_loopback_port prints a TCP port on 127.0.0.1 that nothing listens on now. Another
# process can still take it before the caller binds it: callers retry on "address in use".
free_loopback_port() {
	local port
	for _ in $(seq 1 100); do
		# Below Linux's ephemeral range (32768-60999), where outgoing connections take ports.
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
		# A refused connection means the port is free.
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	say "no free port found on 127.0.0.1"
	return 1
}

# start_server NAME PROCESS POLLS DIR LOG LAUNCH READY GREP_ARGS... starts a server on
# loopback: LAUNCH picks free ports, starts it in the background (output to LOG) and sets
# the caller's pid (or fails to try other ports); READY reports whether it answers, which
# is polled every 0.1 s, POLLS times at the most, while the process lives. When it does not
# come up and `grep GREP_ARGS LOG` finds that another process took a port between the
# check and the bind, it tries again (5 tries in all); otherwise it removes DIR and dies,
# printing the log. Once up, the server is stopped at exit (stop_server).
start_server() {
	local name=$1 process=$2 polls=$3 dir=$4 log=$5 launch=$6 ready_fn=$7 attempt ready=
	shift 7
	for attempt in 1 2 3 4 5; do
		ready=
		"$launch" || continue
		for _ in $(seq 1 "$polls"); do
			kill -0 "$pid" 2>/dev/null || break
			if "$ready_fn"; then
				ready=1
				break
			fi
			sleep 0.1
		done
		[ -z "$ready" ] || break
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		if grep "$@" "$log"; then
			say "$name: port taken, retrying ($attempt)"
			continue
		fi
		say "$process did not start; its log, $log:"
		tail -n 40 "$log" >&2 || true
		rm -rf "$dir"
		die "$process did not start (log: $log)"
	done
	if [ -z "$ready" ]; then
		rm -rf "$dir"
		die "$process did not start after 5 tries (log: $log)"
	fi
	at_exit "$(printf 'stop_server %q %q %q %q %q' "$name" "$process" "$pid" "$dir" "$log")"
}

# stop_server NAME PROCESS PID DIR LOG stops a server that start_server started and
# removes its folder; it keeps the log when the script failed (STUMP_EXIT_STATUS, set by
# at_exit) or the server had died.
stop_server() {
	local name=$1 process=$2 pid=$3 dir=$4 log=$5 alive=1
	kill -0 "$pid" 2>/dev/null || alive=
	if [ -n "$alive" ]; then
		kill "$pid" 2>/dev/null
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	rm -rf "$dir"
	if [ -z "$alive" ]; then
		say "$process had stopped before the end of the script; its log: $log"
	elif [ "${STUMP_EXIT_STATUS:-0}" != 0 ]; then
		say "$name log: $log"
	else
		rm -f "$log"
	fi
}

# http_status HOST PORT PATH [HOSTHEADER] prints the HTTP status code of a GET, or fails
# when nothing answers within 2 seconds. Plain bash (/dev/tcp), no curl needed.
http_status() {
	local host=$1 port=$2 path=$3 vhost=${4:-$1} line
	line=$(
		exec 2>/dev/null
		exec 3<>"/dev/tcp/$host/$port" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$vhost" >&3
		IFS= read -r -t 2 line <&3 || exit 1
		printf '%s' "$line"
	) || return 1
	local _proto code _rest
	read -r _proto code _rest <<<"$line"
	[ -n "$code" ] || return 1
	echo "$code"
}
