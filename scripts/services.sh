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
	mkdir -p "${bin%/*}" "$(repo_root)/.stump/log"
	local log="$(repo_root)/.stump/log/versitygw-install.log"
	printf '    installing versitygw %s into %s%s (log: %s) ... ' "$VERSITYGW_VERSION" "${bin%/*}" "${have:+, replacing $have}" "${log#"$(repo_root)/"}" >&2
	start=$SECONDS
	# Outside the repository, so that go.mod and GOFLAGS=-mod=... of stump play no part.
	if ! (cd / && GOBIN="${bin%/*}" GOFLAGS=-buildvcs=false go install "$VERSITYGW_MODULE/cmd/versitygw@$VERSITYGW_VERSION") >"$log" 2>&1; then
		say "failed"
		tail -n 30 "$log" >&2
		die "could not build versitygw $VERSITYGW_VERSION (go install $VERSITYGW_MODULE/cmd/versitygw@$VERSITYGW_VERSION)"
	fi
	say "done in $((SECONDS - start)) s"
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
	local bin dir log port wport pid
	bin=$(versitygw_bin)
	[ -x "$bin" ] || install_versitygw
	mkdir -p "$(repo_root)/.stump/log"
	dir=$(mktemp -d "${TMPDIR:-/tmp}/stump-versitygw.XXXXXX")
	log=$(mktemp "$(repo_root)/.stump/log/versitygw.XXXXXX")
	mkdir "$dir/root"

	# up to 15 s a try
	start_server versitygw versitygw 150 "$dir" "$log" _launch_versitygw _versitygw_ready -q 'address already in use'

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

# _launch_versitygw starts versitygw on two free ports (start_server's LAUNCH; it sets
# start_versitygw's port, wport and pid).
_launch_versitygw() {
	port=$(free_loopback_port)
	wport=$(free_loopback_port)
	[ "$port" != "$wport" ] || return 1
	ROOT_ACCESS_KEY="$STUMP_TEST_S3_ACCESS_KEY" ROOT_SECRET_KEY="$STUMP_TEST_S3_SECRET_KEY" \
		"$bin" --port "127.0.0.1:$port" \
		--website "127.0.0.1:$wport" --website-domain "$STUMP_TEST_S3_WEBSITE_DOMAIN_VALUE" \
		--region us-east-1 --health /health --quiet \
		posix "$dir/root" >"$log" 2>&1 &
	pid=$!
}

# _versitygw_ready reports whether both of versitygw's endpoints answer.
_versitygw_ready() {
	[ "$(http_status 127.0.0.1 "$port" /health || true)" = 200 ] &&
		http_status 127.0.0.1 "$wport" / "$STUMP_TEST_S3_WEBSITE_DOMAIN_VALUE" >/dev/null
}

# ---------------------------------------------------------------------------------------
# Varnish (with vmod xkey from varnish-modules): the cache the purge tests put in front of
# versitygw's website endpoint.
#
#   install_varnish     # Debian's varnish and varnish-modules, when missing
#   start_varnish       # varnishd with the recommended VCL, exports STUMP_TEST_VARNISH
#
# Go tests do not need start_varnish: internal/testenv.Varnish starts a varnishd per
# test, with a VCL naming that test's backend. They need install_varnish.
# ---------------------------------------------------------------------------------------

# varnishd_bin prints the varnishd binary (Debian puts it in /usr/sbin, which a user's
# PATH may lack), or fails.
varnishd_bin() {
	local p
	for p in "$(command -v varnishd 2>/dev/null)" /usr/sbin/varnishd /usr/local/sbin/varnishd; do
		if [ -n "$p" ] && [ -x "$p" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# varnish_has_vmod NAME reports whether vmod NAME is installed.
varnish_has_vmod() {
	local f
	for f in /usr/lib/*/varnish/vmods/libvmod_"$1".so /usr/lib/varnish/vmods/libvmod_"$1".so \
		/usr/local/lib/varnish/vmods/libvmod_"$1".so; do
		[ -e "$f" ] && return 0
	done
	return 1
}

# varnish_has_xkey reports whether the vmods the generated VCL imports are installed:
# xkey and vsthrottle (varnish-modules) and digest (varnish-vmod-digest).
varnish_has_xkey() { varnish_has_vmod xkey && varnish_has_vmod digest; }

# install_varnish installs Debian's varnish, varnish-modules (vmods xkey, vsthrottle) and
# varnish-vmod-digest (the purge token's comparison) unless they are there. On a machine that runs systemd, the package also starts its own
# varnish.service on port 6081; the tests do not use it.
install_varnish() {
	if varnishd_bin >/dev/null && varnish_has_xkey; then
		return 0
	fi
	apt_install varnish varnish-modules varnish-vmod-digest
	varnishd_bin >/dev/null || die "varnish is installed but varnishd is not in /usr/sbin or on PATH"
	varnish_has_xkey || die "varnish-modules and varnish-vmod-digest are installed but vmod xkey or digest was not found"
	say "varnish: $("$(varnishd_bin)" -V 2>&1 | head -n 1)"
	if command -v systemctl >/dev/null && systemctl is-active --quiet varnish 2>/dev/null; then
		say "note: Debian started its own varnish.service (port 6081); the tests do not use it (stop it: systemctl disable --now varnish)"
	fi
}

# start_varnish [VCL_FILE [BACKEND_HOST BACKEND_PORT [WEBSITE_HOST [SITE]]]] starts
# varnishd on a free loopback port with VCL_FILE (default: the recommended VCL,
# purge/varnish/stump.vcl), its @BACKEND_HOST@, @BACKEND_PORT@, @WEBSITE_HOST@ and
# @SITE@ placeholders filled in: the backend defaults to versitygw's website endpoint
# ($STUMP_TEST_S3_WEBSITE, so call start_versitygw first), WEBSITE_HOST to
# stump.localhost (bucket "stump"), SITE to stump. It waits until Varnish answers and
# exports:
#
#   STUMP_TEST_VARNISH      http://127.0.0.1:PORT
#   STUMP_TEST_VARNISH_DIR  its working folder: varnishlog -n DIR, varnishadm -n DIR
#
# varnishd runs in the foreground (-F) as a child of the script, without a jail
# (-j none: as root, the default jail would run the cache as user vcache, who cannot
# read a private temporary folder), with a 64 MB malloc cache. It stops, and its folder
# is removed, when the script exits; its log is kept when the script fails.
start_varnish() {
	local vcl=${1:-} bhost=${2:-} bport=${3:-} whost=${4:-} site=${5:-} bin dir log port pid v
	bin=$(varnishd_bin) || die "varnishd not found: call install_varnish first"
	[ -n "$vcl" ] || vcl="$(repo_root)/purge/varnish/stump.vcl"
	[ -r "$vcl" ] || die "start_varnish: cannot read VCL file $vcl"
	if [ -z "$bhost" ] || [ -z "$bport" ]; then
		[ -n "${STUMP_TEST_S3_WEBSITE:-}" ] || die "start_varnish: give BACKEND_HOST BACKEND_PORT, or call start_versitygw first"
		v=${STUMP_TEST_S3_WEBSITE#*://}
		v=${v%%/*}
		bhost=${v%:*}
		bport=${v##*:}
	fi
	[ -n "$whost" ] || whost="stump.${STUMP_TEST_S3_WEBSITE_DOMAIN:-localhost}"
	[ -n "$site" ] || site=stump
	for v in "$bhost" "$bport" "$whost" "$site"; do
		[[ $v =~ ^[A-Za-z0-9][A-Za-z0-9.:_-]*$ ]] || die "start_varnish: $v is not a host, port or site name"
	done
	mkdir -p "$(repo_root)/.stump/log"
	dir=$(mktemp -d "${TMPDIR:-/tmp}/stump-varnish.XXXXXX")
	log=$(mktemp "$(repo_root)/.stump/log/varnish.XXXXXX")
	sed -e "s/@BACKEND_HOST@/$bhost/g" -e "s/@BACKEND_PORT@/$bport/g" \
		-e "s/@WEBSITE_HOST@/$whost/g" -e "s/@SITE@/$site/g" "$vcl" >"$dir/stump.vcl"

	# up to 30 s a try (compiling the VCL takes about a second)
	start_server varnish varnishd 300 "$dir" "$log" _launch_varnish _varnish_ready -qi 'could not get socket\|address already in use'
	export STUMP_TEST_VARNISH="http://127.0.0.1:$port"
	export STUMP_TEST_VARNISH_DIR="$dir/n"
	step "varnish: $STUMP_TEST_VARNISH (backend $bhost:$bport, Host: $whost, site $site)"
}

# _launch_varnish starts varnishd on a free port (start_server's LAUNCH; it sets
# start_varnish's port and pid).
_launch_varnish() {
	port=$(free_loopback_port)
	rm -rf "$dir/n"
	"$bin" -F -j none -a "127.0.0.1:$port" -T 127.0.0.1:0 -n "$dir/n" \
		-s malloc,64m -f "$dir/stump.vcl" >"$log" 2>&1 &
	pid=$!
}

# _varnish_ready reports whether Varnish answers.
_varnish_ready() { http_status 127.0.0.1 "$port" / >/dev/null; }

# ---------------------------------------------------------------------------------------
# Chromium, the browser of the `stump watch` tests (watch/browser_test.go drives it with
# chromedp). internal/testenv.Chromium finds it at /usr/bin/chromium (or
# $STUMP_TEST_CHROMIUM); the tests start their own headless instance with a fresh
# profile, so nothing needs starting here.
# ---------------------------------------------------------------------------------------

# install_chromium installs Debian's chromium package unless /usr/bin/chromium is there.
install_chromium() {
	if [ -x /usr/bin/chromium ]; then
		return 0
	fi
	apt_install chromium
	[ -x /usr/bin/chromium ] || die "the chromium package did not install /usr/bin/chromium"
	say "$(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
}

# ---------------------------------------------------------------------------------------
# WordPress, the CMS that `stump wordpress` pulls from: Debian's wordpress, served by
# php-cli's built-in server, with MariaDB. internal/testenv.WordPress starts a fresh
# instance per test (the tests change its content), so Go tests need install_wordpress
# only; start_wordpress is the same instance for people and scripts.
#
#   install_wordpress   # Debian's wordpress, php-cli, php-mysql, mariadb-server
#   start_wordpress     # starts one, exports STUMP_TEST_WP_URL, _USER, _PASSWORD
#
# The PHP files (router, wp-config, setup) live in internal/testenv/wordpress/.
# ---------------------------------------------------------------------------------------

# install_wordpress installs the Debian packages a test WordPress needs unless they are
# there. Debian's packages also bring Apache and a mariadb.service; the tests use neither.
install_wordpress() {
	if [ -r /usr/share/wordpress/wp-settings.php ] && command -v php >/dev/null &&
		php -r 'exit(extension_loaded("mysqli") ? 0 : 1);' && [ -x /usr/sbin/mariadbd ] &&
		command -v mariadb-install-db >/dev/null; then
		return 0
	fi
	local start=$SECONDS log
	mkdir -p "$(repo_root)/.stump/log"
	log="$(repo_root)/.stump/log/install-wordpress.log"
	apt_install wordpress php-cli php-mysql mariadb-server 2>"$log" ||
		die "could not install WordPress's packages (log: $log)"
	say "wordpress $(dpkg-query -W -f '${Version}' wordpress 2>/dev/null), $(php -r 'echo "PHP ", PHP_VERSION;'), installed in $((SECONDS - start))s"
}

# start_wordpress starts a WordPress on loopback: a fresh MariaDB (mariadbd on a Unix
# socket in a temporary folder, no TCP port), WordPress installed into it by
# internal/testenv/wordpress/setup.php (pretty permalinks, time zone UTC, a user "stump"
# who is an editor, with an application password), and `php -S` on a free port. It also
# puts integrations/wordpress/stump-webhook.php in its mu-plugins. It exports:
#
#   STUMP_TEST_WP_URL       http://127.0.0.1:PORT
#   STUMP_TEST_WP_USER      stump
#   STUMP_TEST_WP_PASSWORD  the application password (for STUMP_WP_PASSWORD)
#   STUMP_TEST_WP_DIR       its folder (www/, wp-content/, mysql.sock)
#
# Everything stops, and the folder is removed, when the script exits; the logs are kept
# when it fails.
start_wordpress() {
	local root dir log wlog port pid php_pid f
	install_wordpress
	root=$(repo_root)
	mkdir -p "$root/.stump/log"
	dir=$(mktemp -d "${TMPDIR:-/tmp}/stump-wp.XXXXXX")
	log=$(mktemp "$root/.stump/log/mariadb.XXXXXX")
	mkdir -p "$dir/www" "$dir/tmp" "$dir/wp-content/uploads" "$dir/wp-content/mu-plugins" "$dir/wp-content/plugins" "$dir/wp-content/themes"
	for f in /usr/share/wordpress/*; do
		case ${f##*/} in wp-config.php | wp-content) continue ;; esac
		ln -s "$f" "$dir/www/${f##*/}"
	done
	cp "$root/internal/testenv/wordpress/wp-config.php" "$dir/www/"
	ln -s "$root/integrations/wordpress/stump-webhook.php" "$dir/wp-content/mu-plugins/"
	mariadb-install-db --no-defaults --datadir="$dir/db" --tmpdir="$dir/tmp" --user="$(id -un)" \
		--auth-root-authentication-method=normal --skip-test-db --skip-name-resolve >"$log" 2>&1 ||
		die "mariadb-install-db failed (log: $log)"
	/usr/sbin/mariadbd --no-defaults --datadir="$dir/db" --tmpdir="$dir/tmp" --socket="$dir/mysql.sock" --skip-networking \
		--user="$(id -un)" --pid-file="$dir/mariadbd.pid" --innodb-buffer-pool-size=64M \
		--innodb-flush-log-at-trx-commit=0 --skip-log-bin --character-set-server=utf8mb4 >>"$log" 2>&1 &
	pid=$!
	at_exit "$(printf 'stop_server mariadb mariadbd %q %q %q' "$pid" "$dir" "$log")"
	for _ in $(seq 1 300); do
		php -r 'try { new mysqli(null, "root", "", "", 0, $argv[1]); } catch (Throwable $e) { exit(1); }' "$dir/mysql.sock" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || die "mariadbd did not start (log: $log)"
		sleep 0.1
	done
	php -r '$m = new mysqli(null, "root", "", "", 0, $argv[1]); $m->query("CREATE DATABASE wordpress CHARACTER SET utf8mb4") or exit(1);' "$dir/mysql.sock" ||
		die "could not create the database (log: $log)"
	wlog=$(mktemp "$root/.stump/log/wordpress.XXXXXX")
	at_exit _stop_wordpress_workers
	_STUMP_WP_DIR=$dir # start_server has a dir of its own
	# up to 15 s a try
	start_server wordpress php 150 "$dir/www-unused" "$wlog" _launch_wordpress _wordpress_ready -q 'Address already in use'
	export STUMP_TEST_WP_URL="http://127.0.0.1:$port" STUMP_TEST_WP_USER=stump STUMP_TEST_WP_DIR="$dir"
	step "wordpress $(dpkg-query -W -f '${Version}' wordpress 2>/dev/null): $STUMP_TEST_WP_URL (user stump, STUMP_TEST_WP_PASSWORD)"
}

# _launch_wordpress installs WordPress for a free port (once: the database does not
# depend on the port) and starts php -S there (start_server's LAUNCH; it sets
# start_wordpress's port and pid). php -S forks workers: setsid puts them in a group
# that stop_server's kill reaches through the process id of the group leader.
_launch_wordpress() {
	local dir=$_STUMP_WP_DIR
	port=$(free_loopback_port)
	export STUMP_WP_DIR="$dir" STUMP_WP_URL="http://127.0.0.1:$port"
	if [ -z "${STUMP_TEST_WP_PASSWORD:-}" ]; then
		STUMP_TEST_WP_PASSWORD=$(php "$root/internal/testenv/wordpress/setup.php" 2>>"$wlog" | tail -n 1) ||
			die "installing WordPress failed (log: $wlog)"
		export STUMP_TEST_WP_PASSWORD
	fi
	PHP_CLI_SERVER_WORKERS=4 setsid php -S "127.0.0.1:$port" -t "$dir/www" \
		"$root/internal/testenv/wordpress/router.php" >"$wlog" 2>&1 &
	pid=$!
	_STUMP_WP_PGID=$pid
}

# _stop_wordpress_workers ends php -S's workers (stop_server ends the leader only).
_stop_wordpress_workers() {
	[ -z "${_STUMP_WP_PGID:-}" ] || kill -TERM -- "-$_STUMP_WP_PGID" 2>/dev/null || true
}

# _wordpress_ready reports whether WordPress's REST API answers.
_wordpress_ready() { [ "$(http_status 127.0.0.1 "$port" /wp-json/ || true)" = 200 ]; }

# ---------------------------------------------------------------------------------------
# podman builds the container image (Dockerfile) in cmd/stump's TestContainerImage.
# ---------------------------------------------------------------------------------------

# install_podman installs Debian's podman unless it is there.
install_podman() {
	command -v podman >/dev/null && return 0
	apt_install podman
}

# ---------------------------------------------------------------------------------------
# falco (github.com/ysugimoto/falco): the Fastly VCL linter, simulator and unit-test
# runner of the edge/fastly tests and of `stump edge check --fastly`. Its version is
# pinned in tools/falco/go.mod (keep FALCO_VERSION and testenv.FalcoVersion in step).
#
#   install_falco       # builds falco into .stump/bin once per version and patch

FALCO_MODULE=github.com/ysugimoto/falco
FALCO_VERSION=v1.11.2

falco_bin() { echo "$(repo_root)/.stump/bin/falco"; }

# falco_stamp prints what the installed falco was built from (version and patch hash).
falco_stamp() {
	local patch
	patch=$(sha256sum "$(repo_root)/tools/falco/fetch-restart.patch" | cut -c1-16)
	echo "$FALCO_VERSION+$patch"
}

# install_falco builds falco at FALCO_VERSION with tools/falco/fetch-restart.patch (a
# simulator crash on restarts from vcl_deliver after a fetch, and the object it then
# cached under the wrong key; a cache key that a custom vcl_hash did not make, the
# request's URL, which Fastly never adds by itself; and no limit on restarts, where
# Fastly allows three) into .stump/bin, unless that build is already there. It
# vendors the module in a scratch folder, patches the vendored copy and builds it.
install_falco() {
	need_go
	local bin stamp work start
	bin=$(falco_bin)
	stamp=$(falco_stamp)
	if [ -x "$bin" ] && [ "$(cat "$bin.stamp" 2>/dev/null)" = "$stamp" ]; then
		return 0
	fi
	mkdir -p "${bin%/*}" "$(repo_root)/.stump/log"
	local log="$(repo_root)/.stump/log/falco-install.log"
	printf '    installing falco %s into %s (log: %s) ... ' "$stamp" "${bin%/*}" "${log#"$(repo_root)/"}" >&2
	start=$SECONDS
	work=$(mktemp -d "${TMPDIR:-/tmp}/stump-falco.XXXXXX")
	at_exit "rm -rf '$work'"
	cp "$(repo_root)/tools/falco/go.mod" "$(repo_root)/tools/falco/go.sum" "$(repo_root)/tools/falco/tools.go" "$work/"
	if ! {
		(cd "$work" && GOFLAGS=-mod=mod go mod vendor) &&
			patch -s -p1 -d "$work/vendor/$FALCO_MODULE" <"$(repo_root)/tools/falco/fetch-restart.patch" &&
			(cd "$work" && GOFLAGS=-buildvcs=false go build -mod=vendor -o "$bin" "$FALCO_MODULE/cmd/falco")
	} >"$log" 2>&1; then
		say "failed"
		tail -n 30 "$log" >&2
		die "could not build falco $FALCO_VERSION with tools/falco/fetch-restart.patch (log: $log)"
	fi
	echo "$stamp" >"$bin.stamp"
	say "done in $((SECONDS - start)) s"
}
