# shellcheck shell=bash
# Services that the tests talk to on loopback. Source it (after lib.sh, which it sources
# itself when needed); by itself it does nothing. scripts/test calls, before go test:
#
#   install_versitygw   # builds versitygw into .stump/bin once per version
#   start_versitygw     # starts it, exports STUMP_TEST_S3_* and AWS_*, stops it at exit
#
# internal/testenv reads what start_versitygw exports; when a test runs without it (plain
# `go test`), testenv starts versitygw from .stump/bin by itself.

if ! declare -F at_exit >/dev/null; then
	# shellcheck source=scripts/lib.sh
	source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

# The S3-compatible server of the tests. Keep it in step with versitygwVersion in
# internal/testenv/versitygw.go.
VERSITYGW_MODULE=github.com/versity/versitygw
VERSITYGW_VERSION=v1.8.0

# Fixed credentials of the test server (root account). They protect nothing: the server
# listens on 127.0.0.1 only and lives as long as the script. Same values as in testenv.
STUMP_TEST_S3_ACCESS_KEY=stump-test-access
STUMP_TEST_S3_SECRET_KEY=stump-test-secret-key
# The website endpoint routes by Host header: bucket B answers as B.localhost:PORT.
STUMP_TEST_S3_WEBSITE_DOMAIN_VALUE=localhost

# versitygw_bin prints where install_versitygw puts the binary.
versitygw_bin() { echo "$(repo_root)/.stump/bin/versitygw"; }

# versitygw_installed_version prints the module version the binary was built from, or
# nothing when there is no binary.
versitygw_installed_version() {
	local bin
	bin=$(versitygw_bin)
	[ -x "$bin" ] || return 0
	go version -m "$bin" 2>/dev/null | awk -v m="$VERSITYGW_MODULE" '$1 == "mod" && $2 == m { print $3; exit }'
}

# install_versitygw builds versitygw at VERSITYGW_VERSION into .stump/bin (git-ignored),
# unless that version is already there. The first build takes a minute or two.
install_versitygw() {
	need_go
	local bin have start
	bin=$(versitygw_bin)
	have=$(versitygw_installed_version)
	if [ "$have" = "$VERSITYGW_VERSION" ]; then
		return 0
	fi
	step "installing versitygw $VERSITYGW_VERSION into ${bin%/*}${have:+ (replacing $have)}"
	mkdir -p "${bin%/*}"
	start=$SECONDS
	# Outside the repository, so that go.mod and GOFLAGS=-mod=... of stump play no part.
	(cd / && GOBIN="${bin%/*}" GOFLAGS=-buildvcs=false go install "$VERSITYGW_MODULE/cmd/versitygw@$VERSITYGW_VERSION") ||
		die "could not build versitygw $VERSITYGW_VERSION (go install $VERSITYGW_MODULE/cmd/versitygw@$VERSITYGW_VERSION)"
	say "versitygw built in $((SECONDS - start))s"
}

# start_versitygw starts versitygw (posix backend, fresh temporary folder) on two free
# loopback ports, the S3 API and the static website endpoint, waits until both answer,
# and exports:
#
#   STUMP_TEST_S3_ENDPOINT        http://127.0.0.1:PORT  (S3 API; use path-style addressing)
#   STUMP_TEST_S3_WEBSITE         http://127.0.0.1:PORT  (website endpoint: connect here...)
#   STUMP_TEST_S3_WEBSITE_DOMAIN  localhost              (...with Host: BUCKET.localhost)
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION=us-east-1
#
# The server stops, and its folder is removed, when the script exits. Its log is removed
# too when the script succeeds, and kept (its path printed) when the script fails.
start_versitygw() {
	local bin dir log port wport attempt pid ready
	bin=$(versitygw_bin)
	[ -x "$bin" ] || install_versitygw
	mkdir -p "$(repo_root)/.stump/log"
	dir=$(mktemp -d "${TMPDIR:-/tmp}/stump-versitygw.XXXXXX")
	log=$(mktemp "$(repo_root)/.stump/log/versitygw.XXXXXX")
	mkdir "$dir/root"

	for attempt in 1 2 3 4 5; do
		port=$(free_loopback_port)
		wport=$(free_loopback_port)
		[ "$port" != "$wport" ] || continue
		ROOT_ACCESS_KEY="$STUMP_TEST_S3_ACCESS_KEY" ROOT_SECRET_KEY="$STUMP_TEST_S3_SECRET_KEY" \
			"$bin" --port "127.0.0.1:$port" \
			--website "127.0.0.1:$wport" --website-domain "$STUMP_TEST_S3_WEBSITE_DOMAIN_VALUE" \
			--region us-east-1 --health /health --quiet \
			posix "$dir/root" >"$log" 2>&1 &
		pid=$!
		ready=
		for _ in $(seq 1 150); do # up to 15 s
			if ! kill -0 "$pid" 2>/dev/null; then
				break
			fi
			if [ "$(http_status 127.0.0.1 "$port" /health || true)" = 200 ] &&
				http_status 127.0.0.1 "$wport" / "$STUMP_TEST_S3_WEBSITE_DOMAIN_VALUE" >/dev/null; then
				ready=1
				break
			fi
			sleep 0.1
		done
		[ -z "$ready" ] || break
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		# Another process took a port between our check and versitygw's bind: try others.
		if grep -q 'address already in use' "$log"; then
			say "versitygw: port taken, retrying ($attempt)"
			continue
		fi
		say "versitygw did not start; its log, $log:"
		tail -n 40 "$log" >&2 || true
		rm -rf "$dir"
		die "versitygw did not start (log: $log)"
	done
	if [ -z "$ready" ]; then
		rm -rf "$dir"
		die "versitygw did not start after 5 tries (log: $log)"
	fi

	at_exit "$(printf '_stop_versitygw %q %q %q' "$pid" "$dir" "$log")"

	export STUMP_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
	export STUMP_TEST_S3_WEBSITE="http://127.0.0.1:$wport"
	export STUMP_TEST_S3_WEBSITE_DOMAIN="$STUMP_TEST_S3_WEBSITE_DOMAIN_VALUE"
	export AWS_ACCESS_KEY_ID="$STUMP_TEST_S3_ACCESS_KEY"
	export AWS_SECRET_ACCESS_KEY="$STUMP_TEST_S3_SECRET_KEY"
	export AWS_REGION=us-east-1
	# Keep the SDKs of the tests away from the developer's own AWS settings.
	unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
	export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
	step "versitygw $VERSITYGW_VERSION: S3 $STUMP_TEST_S3_ENDPOINT, website $STUMP_TEST_S3_WEBSITE (Host: BUCKET.$STUMP_TEST_S3_WEBSITE_DOMAIN)"
}

# _stop_versitygw PID DIR LOG stops the server and removes its folder; it keeps the log
# when the script failed (STUMP_EXIT_STATUS, set by at_exit) or the server had died.
_stop_versitygw() {
	local pid=$1 dir=$2 log=$3 alive=1
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
		say "versitygw had stopped before the end of the script; its log: $log"
	elif [ "${STUMP_EXIT_STATUS:-0}" != 0 ]; then
		say "versitygw log: $log"
	else
		rm -f "$log"
	fi
}
