#!/usr/bin/env bash
# scripts/postgres.sh — a PostgreSQL 15 for the demo, the tests and CI.
#
# Usage: scripts/postgres.sh start [--adopt]|stop|status|env
#
# Two modes:
#   * user-configured: PGHOST is set in the environment (and LISTINGS_PG_LOCAL
#     is not). `start` only checks the server with pg_isready; `env` prints
#     nothing, `stop` never touches it. The user's PG* variables are used as is.
#   * local default: Debian's postgresql package, a cluster of the project's
#     own, 15/listings (next to Debian's 15/main, on the next free port, which
#     pg_createcluster picks: 5433 when 15/main exists), listening on 127.0.0.1 only, a SUPERUSER login role `listings` whose random
#     password lives in $STATE_DIR/password (mode 600), a libpq passfile
#     $STATE_DIR/pgpass and a database `listings_db`. STATE_DIR is per machine
#     (like the cluster itself), not per checkout, so every clone on the machine
#     shares one credential: ${XDG_DATA_HOME:-~/.local/share}/listings-migration/pg.
#     `env` prints the export lines for it (no password):
#         eval "$(scripts/postgres.sh env)"
#     They include LISTINGS_PG_LOCAL=1, so calling this script again with that
#     environment still manages the local cluster instead of only checking it.
#
# Ownership: the local default only manages a cluster this script created (it
# ran pg_createcluster, or the postgresql package it installed created the
# cluster). A marker file in the cluster's data directory,
# /var/lib/postgresql/15/<cluster>/listings-migration.owner, records that. A cluster
# it did not create (a developer's own 15/main, say) is left alone: `start` says
# what it found, how to point the project at it with PGHOST/PGPORT/PGUSER/
# PGPASSWORD/PGDATABASE, and exits 1. `start --adopt` (or LISTINGS_PG_ADOPT=1)
# uses it anyway: it starts it if needed and adds the `listings` role, its
# database and the passfile, but never changes its settings (no ALTER SYSTEM: not
# wal_level, max_wal_senders, synchronous_commit, listen_addresses, nothing) and
# never restarts it. `stop` only stops a cluster it created or adopted.
# LISTINGS_PG_CLUSTER (default listings) names the cluster. The default never
# collides with the 15/main that Debian's package makes on install: a fresh
# machine gets a cluster of the project's own beside it, and 15/main is never
# touched (LISTINGS_PG_CLUSTER=main --adopt uses it, settings untouched).
# Clusters set up before the marker existed are recognised by this script's own
# settings in their postgresql.auto.conf, and marked then.
#
# Idempotent: every command can be run any number of times. Quiet on success
# apart from one-line status messages; on failure one line on stderr, exit 1
# (refusing a cluster it did not create: that line and the ways out, exit 1).
# Local default mode needs root (apt-get, pg_ctlcluster, peer auth as postgres).

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_VERSION=15
PG_CLUSTER="${LISTINGS_PG_CLUSTER:-listings}"
PG_USER=listings
PG_DB=listings_db
STATE_DIR="${LISTINGS_PG_STATE_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/listings-migration/pg}"
PASSWORD_FILE="$STATE_DIR/password"
PGPASS_FILE="$STATE_DIR/pgpass"
LOG_FILE="$STATE_DIR/postgres.sh.log"   # output of apt-get, pg_createcluster, ...
MARKER_NAME=listings-migration.owner
ADOPT="${LISTINGS_PG_ADOPT:-0}"

# ---------------------------------------------------------------------------
# Dev-box tuning for the LOCAL DEFAULT cluster only (never a user-configured
# server). Sized for a 2-core / 24 GiB development or CI machine doing bulk
# dbt builds; quoted in docs/benchmarks.md. Applied with ALTER SYSTEM (stored
# in the cluster's postgresql.auto.conf); the cluster is restarted when a
# restart-only setting (shared_buffers, wal_level, max_wal_senders) changed.
#
# Trade-offs, acceptable for disposable dev/test data only:
#   synchronous_commit=off  a crash can lose the last ~0.6 s of commits
#                           (never corrupts the database);
#   wal_level=minimal       no replication / PITR; lets CREATE TABLE AS and
#                           COPY into a table created in the same transaction
#                           skip WAL (requires max_wal_senders=0);
#   max_wal_size/checkpoint_timeout  fewer checkpoints during bulk loads.
PG_DEV_SETTINGS=(
  "shared_buffers=2GB"
  "work_mem=256MB"
  "maintenance_work_mem=1GB"
  "max_wal_size=8GB"
  "checkpoint_timeout=30min"
  "wal_level=minimal"
  "max_wal_senders=0"
  "synchronous_commit=off"
  "effective_cache_size=12GB"
  "max_parallel_workers_per_gather=2"
  "jit=off"
)
# ---------------------------------------------------------------------------

say() { echo "postgres: $*"; }
die() { echo "postgres: ERROR: $*" >&2; exit 1; }

# True when the user pointed us at their own server.
user_configured() { [[ -n "${PGHOST:-}" && "${LISTINGS_PG_LOCAL:-}" != 1 ]]; }

# Run a command, appending its output to $LOG_FILE; on failure die with $1.
# fd 9 (the start lock) is closed for it, so a daemon it spawns cannot keep
# holding the lock.
logged() {
  local what="$1"; shift
  mkdir -p "$STATE_DIR"
  if ! "$@" >>"$LOG_FILE" 2>&1 9>&-; then
    die "$what failed (see $LOG_FILE)"
  fi
}

# psql as the postgres superuser over the Unix socket (peer authentication).
# Runs from / so that postgres does not complain about an unreadable cwd.
# The local cluster's port is passed explicitly; user PG* vars are cleared.
psql_admin() {
  (cd / && env -u PGHOST -u PGHOSTADDR -u PGUSER -u PGDATABASE -u PGPASSFILE \
      -u PGPASSWORD -u PGSERVICE -u PGOPTIONS \
      runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 \
      -p "$(cluster_port)" -d postgres "$@")
}

need_root() {
  [[ $EUID -eq 0 ]] || die "the local default server needs root (apt-get, pg_ctlcluster); run as root or set PGHOST to your own server"
}

# ---- local default: installation and cluster --------------------------------

ensure_installed() {
  if [[ -x /usr/lib/postgresql/$PG_VERSION/bin/postgres ]] && command -v pg_ctlcluster >/dev/null; then
    return
  fi
  say "installing Debian package postgresql (PostgreSQL $PG_VERSION)..."
  logged "apt-get update" apt-get update -q
  logged "apt-get install postgresql" \
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
  [[ -x /usr/lib/postgresql/$PG_VERSION/bin/postgres ]] \
    || die "package postgresql did not bring PostgreSQL $PG_VERSION"
}

conf_dir() { echo "/etc/postgresql/$PG_VERSION/$PG_CLUSTER"; }
cluster_exists() { [[ -f "$(conf_dir)/postgresql.conf" ]]; }
# In the data directory: it goes with the cluster (pg_dropcluster, a new initdb),
# so a marker can never outlive its cluster and vouch for a new one.
marker_file() { echo "$(data_dir)/$MARKER_NAME"; }

# Port of the local cluster as configured (Debian: 5432 for the first cluster).
cluster_port() {
  local port
  port="$(sed -nE "s/^[[:space:]]*port[[:space:]]*=[[:space:]]*([0-9]+).*/\1/p" \
    "/etc/postgresql/$PG_VERSION/$PG_CLUSTER/postgresql.conf" 2>/dev/null | tail -n1)"
  echo "${port:-5432}"
}

cluster_running() { pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" status >/dev/null 2>&1; }

# The data directory as configured (Debian: /var/lib/postgresql/<version>/<cluster>).
data_dir() {
  local dir
  dir="$(sed -nE "s/^[[:space:]]*data_directory[[:space:]]*=[[:space:]]*'([^']*)'.*/\1/p" \
    "$(conf_dir)/postgresql.conf" 2>/dev/null | tail -n1)"
  echo "${dir:-/var/lib/postgresql/$PG_VERSION/$PG_CLUSTER}"
}

# "created", "adopted" or "" (not ours): what the marker file says.
cluster_owner() {
  local owner=""
  if [[ -f "$(marker_file)" ]]; then
    owner="$(sed -nE 's/^owner=(created|adopted)$/\1/p' "$(marker_file)" | tail -n1)"
  fi
  echo "$owner"
}

write_marker() {   # $1: created|adopted, $2: how
  local tmp
  tmp="$(mktemp "$(data_dir)/.$MARKER_NAME.XXXXXX")"
  printf '# Written by listings-migration scripts/postgres.sh: this cluster is managed by it.\n# %s\nowner=%s\ndate=%s\n' \
    "$2" "$1" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$tmp"
  chmod 600 "$tmp"
  chown postgres:postgres "$tmp"   # like every other file of the data directory
  mv -f "$tmp" "$(marker_file)"
}

# Set up by an earlier version of this script (before the marker): every one of
# PG_DEV_SETTINGS is in postgresql.auto.conf exactly as its ALTER SYSTEM wrote it.
has_dev_settings() {
  local auto kv
  auto="$(data_dir)/postgresql.auto.conf"
  [[ -r "$auto" ]] || return 1
  for kv in "${PG_DEV_SETTINGS[@]}"; do
    grep -qxF "${kv%%=*} = '${kv#*=}'" "$auto" || return 1
  done
}

refuse_foreign_cluster() {
  local state="stopped" port
  port="$(cluster_port)"
  cluster_running && state="running"
  {
    echo "postgres: ERROR: found PostgreSQL cluster $PG_VERSION/$PG_CLUSTER ($state, port $port, data $(data_dir)) that this script did not create; leaving it alone (no settings changed, no restart, no role added)"
    echo "postgres:   to use it as it is, point the project at it (a role with CREATEDB, and CREATE on the database):"
    echo "postgres:     export PGHOST=127.0.0.1 PGPORT=$port PGUSER=<role> PGPASSWORD=<its password> PGDATABASE=listings_db"
    echo "postgres:   or let this script add its role and database to it, settings untouched: scripts/postgres.sh start --adopt (or LISTINGS_PG_ADOPT=1)"
    echo "postgres:   or have a cluster of the project's own next to it: LISTINGS_PG_CLUSTER=<a new name> scripts/postgres.sh start"
  } >&2
  exit 1
}

# Create the cluster if there is none; make sure it is ours (created or adopted).
ensure_cluster() {
  if ! cluster_exists; then
    ensure_installed
    if cluster_exists; then   # the package's post-install made it just now
      write_marker created "created by the postgresql package that this script installed"
    else
      say "creating cluster $PG_VERSION/$PG_CLUSTER..."
      logged "pg_createcluster" pg_createcluster "$PG_VERSION" "$PG_CLUSTER"
      write_marker created "created with pg_createcluster by this script"
    fi
    return
  fi
  ensure_installed
  case "$(cluster_owner)" in
    created|adopted) return ;;
  esac
  if has_dev_settings; then
    write_marker created "set up by an earlier version of this script (its settings were in postgresql.auto.conf)"
    say "cluster $PG_VERSION/$PG_CLUSTER carries this script's settings: marked as created by it ($(marker_file))"
  elif [[ "$ADOPT" == 1 ]]; then
    write_marker adopted "adopted on request (--adopt / LISTINGS_PG_ADOPT=1): its settings are never changed"
    say "adopting cluster $PG_VERSION/$PG_CLUSTER: its settings stay as they are"
  else
    refuse_foreign_cluster
  fi
}

start_cluster() {
  if cluster_running; then
    say "cluster $PG_VERSION/$PG_CLUSTER already running on 127.0.0.1:$(cluster_port)"
    return
  fi
  logged "pg_ctlcluster $PG_VERSION $PG_CLUSTER start" \
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
  say "started cluster $PG_VERSION/$PG_CLUSTER on 127.0.0.1:$(cluster_port)"
}

restart_cluster() {
  logged "pg_ctlcluster $PG_VERSION $PG_CLUSTER restart" \
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" restart
}

# Apply PG_DEV_SETTINGS, plus listen_addresses=localhost if it was anything
# other than loopback. Restart only if a restart-only setting is pending.
apply_settings() {
  local listen sql="" kv pending
  if [[ "$(cluster_owner)" != created ]]; then
    listen="$(psql_admin -c "SHOW listen_addresses")"
    say "adopted cluster: settings left as they are (listen_addresses '$listen', wal_level $(psql_admin -c "SHOW wal_level"), synchronous_commit $(psql_admin -c "SHOW synchronous_commit"))"
    return
  fi
  listen="$(psql_admin -c "SHOW listen_addresses")"
  case "$listen" in
    localhost|127.0.0.1|"localhost,127.0.0.1"|"127.0.0.1,localhost") ;;
    *) say "listen_addresses was '$listen'; restricting to localhost"
       sql+="ALTER SYSTEM SET listen_addresses = 'localhost';"$'\n' ;;
  esac
  for kv in "${PG_DEV_SETTINGS[@]}"; do
    sql+="ALTER SYSTEM SET ${kv%%=*} = '${kv#*=}';"$'\n'
  done
  sql+="SELECT pg_reload_conf();"
  psql_admin >/dev/null <<<"$sql" || die "ALTER SYSTEM failed"
  sleep 0.2   # let the postmaster process the SIGHUP before reading pg_settings
  pending="$(psql_admin -c "SELECT string_agg(name, ',' ORDER BY name) FROM pg_settings WHERE pending_restart")"
  if [[ -n "$pending" ]]; then
    say "restarting to apply $pending"
    restart_cluster
  fi
  listen="$(psql_admin -c "SHOW listen_addresses")"
  [[ "$listen" == localhost || "$listen" == 127.0.0.1 ]] \
    || die "cluster listens on '$listen', expected localhost only"
}

# ---- local default: role, password, passfile, database -----------------------

ensure_password() {
  mkdir -p "$STATE_DIR"
  chmod 700 "$STATE_DIR"
  if [[ ! -s "$PASSWORD_FILE" ]]; then
    # 24 random bytes as hex: no characters that need quoting in SQL or pgpass.
    (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$PASSWORD_FILE")
  fi
  chmod 600 "$PASSWORD_FILE"
  [[ "$(cat "$PASSWORD_FILE")" =~ ^[0-9a-f]{48}$ ]] \
    || die "$PASSWORD_FILE is malformed; delete it and run start again"
}

write_pgpass() {
  local pw port tmp
  pw="$(cat "$PASSWORD_FILE")"
  port="$(cluster_port)"
  tmp="$(mktemp "$STATE_DIR/pgpass.XXXXXX")"
  chmod 600 "$tmp"
  printf '127.0.0.1:%s:*:%s:%s\nlocalhost:%s:*:%s:%s\n' \
    "$port" "$PG_USER" "$pw" "$port" "$PG_USER" "$pw" >"$tmp"
  mv -f "$tmp" "$PGPASS_FILE"
}

# The password file's SCRAM-SHA-256 verifier (what PostgreSQL stores for it), so
# that the server never receives the password itself in a statement it could log
# or keep (log_statement, pg_stat_statements on an adopted cluster).
scram_verifier() {
  command -v python3 >/dev/null || return 1
  python3 -c '
import base64, hashlib, hmac, os, sys
password = sys.stdin.read().strip().encode()
salt, iterations = os.urandom(16), 4096
salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
client_key = hmac.new(salted, b"Client Key", "sha256").digest()
server_key = hmac.new(salted, b"Server Key", "sha256").digest()
b64 = lambda b: base64.b64encode(b).decode()
print(f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}")
' <"$PASSWORD_FILE"
}

# Create or update the role (the password is always re-synced with the file,
# so deleting $STATE_DIR is harmless) and create the database if missing.
# The SQL goes through stdin, so nothing secret appears in argv or output; it
# carries the SCRAM verifier, not the password (the password only without python3).
ensure_role_and_db() {
  local secret
  secret="$(scram_verifier)" || secret="$(cat "$PASSWORD_FILE")"
  psql_admin >/dev/null <<SQL || die "could not create role $PG_USER / database $PG_DB"
SELECT format('CREATE ROLE %I', '$PG_USER')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER') \gexec
ALTER ROLE $PG_USER WITH LOGIN SUPERUSER PASSWORD '$secret';
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_DB', '$PG_USER')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DB') \gexec
SQL
}

# Connect exactly as a client using `env` would.
verify_login() {
  env -u PGPASSWORD -u PGSERVICE PGPASSFILE="$PGPASS_FILE" \
    psql -X -q -A -t -h 127.0.0.1 -p "$(cluster_port)" -U "$PG_USER" -d "$PG_DB" \
    -w -c "SELECT 1" >/dev/null 2>&1 \
    || die "cannot log in as $PG_USER to $PG_DB on 127.0.0.1:$(cluster_port)"
}

# ---- commands ----------------------------------------------------------------

cmd_start() {
  if user_configured; then
    command -v pg_isready >/dev/null || die "pg_isready not found (install postgresql-client)"
    pg_isready -q -t 10 \
      || die "configured server ${PGHOST}:${PGPORT:-5432} is not accepting connections"
    say "using configured server ${PGHOST}:${PGPORT:-5432} (accepting connections)"
    return
  fi
  need_root
  # One start at a time (e.g. parallel make targets); released on exit.
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.start.lock"
  flock 9
  ensure_cluster
  start_cluster
  pg_isready -q -t 30 -h 127.0.0.1 -p "$(cluster_port)" \
    || die "cluster $PG_VERSION/$PG_CLUSTER did not become ready"
  apply_settings
  ensure_password
  ensure_role_and_db
  write_pgpass
  verify_login
}

cmd_stop() {
  if user_configured; then
    say "configured server ${PGHOST} is not managed by this script; not stopping it"
    return
  fi
  if ! command -v pg_ctlcluster >/dev/null || ! cluster_exists; then
    say "no local cluster $PG_VERSION/$PG_CLUSTER; nothing to stop"
    return
  fi
  if ! cluster_running; then
    say "cluster $PG_VERSION/$PG_CLUSTER already stopped"
    return
  fi
  need_root
  if [[ -z "$(cluster_owner)" ]]; then
    say "cluster $PG_VERSION/$PG_CLUSTER was not created by this script; not stopping it"
    return
  fi
  logged "pg_ctlcluster $PG_VERSION $PG_CLUSTER stop" \
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop -m fast
  say "stopped cluster $PG_VERSION/$PG_CLUSTER"
}

cmd_status() {
  if user_configured; then
    if pg_isready -q -t 5; then
      say "up: configured server ${PGHOST}:${PGPORT:-5432}"
    else
      say "down: configured server ${PGHOST}:${PGPORT:-5432} is not accepting connections"
      exit 1
    fi
    return
  fi
  if command -v pg_ctlcluster >/dev/null && cluster_exists && cluster_running \
      && pg_isready -q -t 5 -h 127.0.0.1 -p "$(cluster_port)"; then
    say "up: local cluster $PG_VERSION/$PG_CLUSTER on 127.0.0.1:$(cluster_port), database $PG_DB, user $PG_USER"
  else
    say "down: local cluster $PG_VERSION/$PG_CLUSTER is not running (scripts/postgres.sh start)"
    exit 1
  fi
}

cmd_env() {
  user_configured && return 0
  local port=5432
  if cluster_exists; then
    port="$(cluster_port)"
  fi
  cat <<EOF
export PGHOST=127.0.0.1
export PGPORT=$port
export PGUSER=$PG_USER
export PGDATABASE=$PG_DB
export PGPASSFILE=$(printf %q "$PGPASS_FILE")
export LISTINGS_PG_LOCAL=1
EOF
}

main() {
  case "${1:-}" in
    start)
      case "${2:-}" in
        --adopt) ADOPT=1 ;;
        "") ;;
        *) echo "usage: $0 start [--adopt]" >&2; exit 2 ;;
      esac
      cmd_start ;;
    stop)   cmd_stop ;;
    status) cmd_status ;;
    env)    cmd_env ;;
    *) echo "usage: $0 start [--adopt]|stop|status|env" >&2; exit 2 ;;
  esac
}

main "$@"
