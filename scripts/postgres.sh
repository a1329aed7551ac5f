#!/usr/bin/env bash
# Project-local PostgreSQL for development and tests.
#
#   scripts/postgres.sh up       ensure a server is there (diagnostics on stderr only)
#   scripts/postgres.sh url      print the DATABASE_URL to use
#   scripts/postgres.sh down     stop the project-local cluster
#   scripts/postgres.sh status   say what is running (exit 0 running, 3 not)
#   scripts/postgres.sh psql     open psql on the URL (extra args passed on)
#
# If DATABASE_URL is set, that server is used and nothing is started: `up` only
# checks it answers. Otherwise the cluster lives in .pgdata/ at the repo root:
#
#   .pgdata/data   the cluster (initdb), owned by the user the server runs as
#   .pgdata/run    its unix socket
#   .pgdata/log    server logs (pg_ctl.log for startup, postgresql-*.log)
#
# It listens on 127.0.0.1 only, trust auth, superuser "postgres", database
# "orderflow", on ORDERFLOW_PG_PORT if set (refused if something else holds
# it), else on 55432 or, when that is taken, the next free port, remembered
# in .pgdata/port so that `url` agrees.
#
# The server binaries are the system's (/usr/lib/postgresql/<newest>/bin); they
# are installed with apt-get when missing. initdb and postgres refuse to run as
# root, so under root they run as the `postgres` system user (or whoever owns
# an existing .pgdata/data); a normal user runs them as themself.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PGROOT="$ROOT/.pgdata"
PGDATA_DIR="$PGROOT/data"
PGRUN="$PGROOT/run"
PGLOG="$PGROOT/log"
# The port: ORDERFLOW_PG_PORT if set; else the one this checkout's cluster
# was given (remembered in .pgdata/port); else 55432, or the next free port
# when 55432 is taken (a stale cluster of another checkout, say), chosen at
# the first `up` and remembered, so `url` always agrees with `up`.
DEFAULT_PORT=55432
if [[ -n "${ORDERFLOW_PG_PORT:-}" ]]; then
	PORT="$ORDERFLOW_PG_PORT"
elif [[ -s "$PGROOT/port" ]]; then
	PORT="$(cat "$PGROOT/port")"
else
	PORT=$DEFAULT_PORT
fi
DBNAME=orderflow
SERVICE_USER=postgres # the system user the server runs as when we are root

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
	sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

check_port() {
	[[ "$PORT" =~ ^[0-9]+$ ]] && ((PORT >= 1024 && PORT <= 65535)) ||
		die "ORDERFLOW_PG_PORT=$PORT: want a port number in 1024-65535"
}

local_url() {
	printf 'postgres://postgres@127.0.0.1:%s/%s?sslmode=disable\n' "$PORT" "$DBNAME"
}

# ---------------------------------------------------------------- binaries

# bindir prints the newest /usr/lib/postgresql/<major>/bin holding a server.
bindir() {
	local d best="" bestv=0 v
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x "$d/postgres" && -x "$d/initdb" && -x "$d/pg_ctl" ]] || continue
		v="${d#/usr/lib/postgresql/}"
		v="${v%/bin}"
		[[ "$v" =~ ^[0-9]+$ ]] || continue
		if ((v > bestv)); then best="$d" bestv="$v"; fi
	done
	[[ -n "$best" ]] && printf '%s\n' "$best"
}

apt_install() {
	local sudo=()
	if ((EUID != 0)); then
		command -v sudo >/dev/null || die "need to install $* but not root and no sudo: run 'apt-get install -y $*' as root"
		sudo=(sudo -n)
	fi
	command -v apt-get >/dev/null || die "need the Debian package(s) $* and apt-get is not available; install PostgreSQL >= 15 server binaries under /usr/lib/postgresql/<major>/bin or set DATABASE_URL"
	log "installing $* with apt-get (one-time; the package may also create and start its own 'main' cluster on 5432, which we do not use)"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=600 </dev/null >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null >&2
}

ensure_bindir() {
	BIN="$(bindir || true)"
	if [[ -z "$BIN" ]]; then
		apt_install postgresql
		BIN="$(bindir || true)"
		[[ -n "$BIN" ]] || die "apt-get installed postgresql but no server found under /usr/lib/postgresql/*/bin"
	fi
}

# client prints the path of a client tool (psql, pg_isready), or fails.
client() {
	local d
	for d in "${BIN:-}" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		[[ -n "$d" && -x "$d/$1" ]] && { printf '%s\n' "$d/$1"; return 0; }
	done
	command -v "$1" 2>/dev/null
}

# ------------------------------------------------------------- who runs it

# as_owner runs a server command as the owner of the cluster directory: the
# current user normally, the service user (or the existing owner) under root.
as_owner() {
	# 9>&- : the server must not inherit the `up` lock (it would hold it forever).
	if ((EUID != 0)); then
		(cd "$PGROOT" && "$@") 9>&-
		return
	fi
	local owner
	owner="$(run_as)"
	(cd "$PGROOT" && runuser -u "$owner" -- "$@") 9>&-
}

# run_as names the user the server runs as under root: the owner of an
# existing cluster (a developer's, say), else the service user.
run_as() {
	local owner=$SERVICE_USER
	[[ -d "$PGDATA_DIR" ]] && owner="$(stat -c %U "$PGDATA_DIR")"
	[[ "$owner" != root ]] || die "$PGDATA_DIR is owned by root; PostgreSQL cannot run as root. Remove $PGROOT (scripts/postgres.sh down && rm -rf .pgdata) and run up again"
	printf '%s\n' "$owner"
}

# ensure_traversable makes sure the service user can reach $PGROOT. Repos under
# /root or in a `mktemp -d` directory (mode 0700) are not reachable by other
# users; we add o+x (search only, no listing) to exactly the parents that need
# it, and say so.
ensure_traversable() {
	((EUID == 0)) || return 0
	local user
	user="$(run_as)"
	runuser -u "$user" -- test -x "$PGROOT" 2>/dev/null && return 0
	local p="" part
	local -a parts
	IFS=/ read -r -a parts <<<"${PGROOT#/}"
	for part in "${parts[@]}"; do
		p="$p/$part"
		if ! runuser -u "$user" -- test -x "$p" 2>/dev/null; then
			log "chmod o+x $p (so user '$user' can reach .pgdata; it grants search, not listing)"
			chmod o+x "$p"
		fi
	done
	runuser -u "$user" -- test -x "$PGROOT" ||
		die "user '$user' still cannot reach $PGROOT (ACLs, a noexec/nosuid mount or a rootless mount?); set DATABASE_URL instead"
}

# ----------------------------------------------------------------- probes

# pid_field N prints line N of postmaster.pid (4 = port, 8 = status).
pid_field() { sed -n "${1}p" "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true; }

running() {
	[[ -f "$PGDATA_DIR/PG_VERSION" ]] || return 1
	as_owner "$BIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

# who_has_port_at P names the server on port P (see who_has_port).
who_has_port_at() { local PORT=$1; who_has_port; }

# who_has_port names the server on $PORT if it is a PostgreSQL we may log into.
who_has_port() {
	local psql dir
	psql="$(client psql)" || return 0
	dir="$(PGCONNECT_TIMEOUT=3 "$psql" -X -w -At -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
		-c 'show data_directory' 2>/dev/null || true)"
	[[ -n "$dir" ]] && printf ' (a PostgreSQL whose data directory is %s)' "$dir"
	return 0
}

# wait_ready waits up to 30s for the server on $PORT to accept connections
# (it may be starting up or in crash recovery).
wait_ready() {
	local isready tries=30
	isready="$(client pg_isready)" || return 0
	until "$isready" -q -t 2 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres; do
		((--tries > 0)) || return 1
		sleep 1
	done
}

psql_local() {
	"$(client psql)" -X -w -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"
}

# -------------------------------------------------------------- the cluster

init_cluster() {
	log "creating the project cluster in $PGDATA_DIR ($("$BIN/postgres" --version))"
	mkdir -p "$PGDATA_DIR"
	chmod 0700 "$PGDATA_DIR"
	((EUID != 0)) || chown "$SERVICE_USER:" "$PGDATA_DIR"
	local locale=C.UTF-8
	# Debian's glibc has C.UTF-8 built in; elsewhere fall back to plain C.
	locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$' || locale=C
	as_owner "$BIN/initdb" -D "$PGDATA_DIR" --auth=trust --username=postgres -E UTF8 \
		--locale="$locale" >"$PGLOG/initdb.log" 2>&1 || {
		tail -n 20 "$PGLOG/initdb.log" >&2
		die "initdb failed (full output in $PGLOG/initdb.log)"
	}
	# Our settings live in orderflow.conf, rewritten at every start; the
	# stock postgresql.conf only gains the include line.
	printf "\n# orderflow: project settings, rewritten by scripts/postgres.sh up\ninclude_if_exists = 'orderflow.conf'\n" \
		>>"$PGDATA_DIR/postgresql.conf"
}

# write_conf writes the settings that depend on this checkout (paths, port).
write_conf() {
	local sock="$PGRUN" preload=""
	# A unix socket path is limited to 107 bytes; a deep checkout goes TCP-only
	# (all our URLs use 127.0.0.1 anyway).
	if ((${#sock} + 20 > 107)); then
		log "checkout path too long for a unix socket; the server listens on TCP only"
		sock=""
	fi
	[[ -f "$BIN/../lib/pg_stat_statements.so" ]] && preload="pg_stat_statements"
	cat >"$PGDATA_DIR/orderflow.conf" <<EOF
# Written by scripts/postgres.sh up; edits are overwritten. Dev/test settings.
listen_addresses = '127.0.0.1'     # never reachable from other machines
port = $PORT                        # ORDERFLOW_PG_PORT
unix_socket_directories = '$sock'
max_connections = 300               # tests open many pools, in parallel packages
shared_buffers = 256MB
max_wal_size = 2GB                  # fewer forced checkpoints under bench load

# Durability is a product invariant (nothing acknowledged is lost): tests must
# run with the same guarantees as production. Never turn these off here.
fsync = on
synchronous_commit = on
full_page_writes = on

timezone = 'UTC'
log_timezone = 'UTC'
shared_preload_libraries = '$preload'

logging_collector = on
log_directory = '$PGLOG'
log_filename = 'postgresql-%a.log'  # one per weekday, overwritten weekly
log_rotation_age = 1d
log_rotation_size = 0
log_truncate_on_rotation = on
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = 1s
log_lock_waits = on
EOF
	((EUID != 0)) || chown "$(run_as):" "$PGDATA_DIR/orderflow.conf"
}

# pick_free_port moves PORT to the first free port from DEFAULT_PORT on and
# remembers it, unless the user chose the port.
pick_free_port() {
	[[ -z "${ORDERFLOW_PG_PORT:-}" ]] || return 0
	local p
	for ((p = DEFAULT_PORT; p < DEFAULT_PORT + 100; p++)); do
		PORT=$p
		if ! port_open; then
			[[ $p == "$DEFAULT_PORT" ]] || log "port $DEFAULT_PORT is taken$(who_has_port_at $DEFAULT_PORT); this checkout's cluster uses $p"
			printf '%s\n' "$p" >"$PGROOT/port"
			return 0
		fi
	done
	PORT=$DEFAULT_PORT
}

start_cluster() {
	pick_free_port
	if port_open; then
		die "port $PORT on 127.0.0.1 is already taken by another server$(who_has_port), not this checkout's cluster ($PGDATA_DIR).
  Pick a free port with ORDERFLOW_PG_PORT=<port> (use the same value for 'url' and 'make'),
  or stop that server (if it is another clone: cd <that clone> && scripts/postgres.sh down),
  or use an existing server with DATABASE_URL=postgres://..."
	fi
	write_conf
	log "starting PostgreSQL on 127.0.0.1:$PORT (logs in $PGLOG)"
	# pg_ctl handles a stale postmaster.pid left by a crash: it starts anyway
	# if that pid is not a live postmaster, and the server runs crash recovery.
	if ! as_owner "$BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGLOG/pg_ctl.log" -w -t 300 start >/dev/null; then
		tail -n 20 "$PGLOG/pg_ctl.log" >&2 || true
		local last
		last="$(ls -t "$PGLOG"/postgresql-*.log 2>/dev/null | head -n 1 || true)"
		[[ -n "$last" ]] && tail -n 20 "$last" >&2
		die "PostgreSQL did not start; logs above and in $PGLOG"
	fi
}

ensure_database() {
	local exists
	exists="$(psql_local -d postgres -At -c "select 1 from pg_database where datname = '$DBNAME'")"
	if [[ "$exists" != 1 ]]; then
		log "creating database $DBNAME"
		psql_local -d postgres -c "create database $DBNAME"
	fi
}

# check_url makes sure an external DATABASE_URL answers; it retries for a while
# because a freshly started container may still be booting.
check_url() {
	local psql isready tries=30 err=""
	if psql="$(client psql)"; then
		while ! err="$(PGCONNECT_TIMEOUT=5 "$psql" -X -w -At -d "$DATABASE_URL" -c 'select 1' 2>&1 >/dev/null)"; do
			((tries != 30)) || log "DATABASE_URL does not answer yet; retrying for up to 30s"
			((--tries > 0)) || die "DATABASE_URL is set but the server does not answer: $err"
			sleep 1
		done
	elif isready="$(client pg_isready)"; then
		until "$isready" -q -t 5 -d "$DATABASE_URL"; do
			((--tries > 0)) || die "DATABASE_URL is set but pg_isready says the server does not accept connections"
			sleep 1
		done
	else
		log "DATABASE_URL is set; no psql or pg_isready here to check it (install postgresql-client), assuming it is reachable"
		return 0
	fi
	log "using DATABASE_URL (not starting a local cluster)"
}

# ---------------------------------------------------------------- commands

cmd_up() {
	if [[ -n "${DATABASE_URL:-}" ]]; then
		check_url
		return
	fi
	check_port
	ensure_bindir
	mkdir -p "$PGROOT"
	# One `up` at a time per checkout: parallel `make` runs would race initdb.
	# Read-only, so a lock file created by root does not lock a developer out.
	[[ -e "$PGROOT/.lock" ]] || : >"$PGROOT/.lock"
	exec 9<"$PGROOT/.lock"
	flock -w 600 9 || die "another scripts/postgres.sh up has held $PGROOT/.lock for 10 minutes"
	mkdir -p "$PGRUN" "$PGLOG"
	if ((EUID == 0)); then
		chown "$(run_as):" "$PGROOT" "$PGRUN" "$PGLOG"
		ensure_traversable
	fi
	[[ -f "$PGDATA_DIR/PG_VERSION" ]] || init_cluster
	local major
	major="$(cat "$PGDATA_DIR/PG_VERSION")"
	if [[ "$BIN" != "/usr/lib/postgresql/$major/bin" ]]; then
		[[ -x "/usr/lib/postgresql/$major/bin/postgres" ]] ||
			die "$PGDATA_DIR was made by PostgreSQL $major, which is not installed; 'scripts/postgres.sh down; rm -rf .pgdata' to start over"
		BIN="/usr/lib/postgresql/$major/bin" # keep the cluster's own major
	fi
	if running; then
		local p
		p="$(pid_field 4)"
		[[ "$p" == "$PORT" ]] ||
			die "the project cluster is already running on port $p, not ORDERFLOW_PG_PORT=$PORT; use that port or run scripts/postgres.sh down first"
		if ! wait_ready; then
			# A postmaster killed a moment ago is still "running" by its pid;
			# once it is gone we can start over (crash recovery runs then).
			running && die "postmaster pid $(pid_field 1) of the project cluster does not answer on 127.0.0.1:$PORT; see $PGLOG, or scripts/postgres.sh down"
			start_cluster
		fi
	else
		start_cluster
	fi
	ensure_database
	log "ready: $(local_url)"
}

cmd_down() {
	if [[ ! -f "$PGDATA_DIR/PG_VERSION" ]]; then
		log "no project cluster in $PGDATA_DIR"
		return 0
	fi
	BIN="/usr/lib/postgresql/$(cat "$PGDATA_DIR/PG_VERSION")/bin"
	[[ -x "$BIN/pg_ctl" ]] || BIN="$(bindir)" || die "no PostgreSQL binaries to stop the cluster with"
	if running; then
		log "stopping the project cluster"
		as_owner "$BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 120 stop >/dev/null
	else
		log "the project cluster is not running"
	fi
}

cmd_status() {
	if [[ -n "${DATABASE_URL:-}" ]]; then
		local isready
		isready="$(client pg_isready)" || die "no pg_isready to check DATABASE_URL with"
		"$isready" -d "$DATABASE_URL" && return 0
		return 3
	fi
	if [[ ! -f "$PGDATA_DIR/PG_VERSION" ]]; then
		echo "no project cluster in $PGDATA_DIR"
		return 3
	fi
	BIN="/usr/lib/postgresql/$(cat "$PGDATA_DIR/PG_VERSION")/bin"
	[[ -x "$BIN/pg_ctl" ]] || die "the cluster's PostgreSQL $(cat "$PGDATA_DIR/PG_VERSION") binaries are not installed"
	if running; then
		echo "running: PostgreSQL $(cat "$PGDATA_DIR/PG_VERSION"), pid $(pid_field 1), 127.0.0.1:$(pid_field 4), data $PGDATA_DIR"
		return 0
	fi
	echo "stopped: data $PGDATA_DIR"
	return 3
}

cmd_psql() {
	local url psql
	url="${DATABASE_URL:-$(local_url)}"
	psql="$(client psql)" || die "psql not found (apt-get install postgresql-client)"
	exec "$psql" "$url" "$@"
}

case "${1:-}" in
up) cmd_up ;;
url)
	if [[ -n "${DATABASE_URL:-}" ]]; then printf '%s\n' "$DATABASE_URL"; else check_port; local_url; fi
	;;
down) cmd_down ;;
status) cmd_status ;;
psql) shift; cmd_psql "$@" ;;
*) usage ;;
esac
