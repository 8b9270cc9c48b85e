#!/usr/bin/env bash
# scripts/opensearch.sh — a single-node OpenSearch 2.x for the demo, the tests and CI.
#
# Usage: scripts/opensearch.sh start|stop|status|url
#        scripts/opensearch.sh cluster-start|cluster-stop [--purge]|cluster-status|cluster-url|cluster-pids
#
# Two modes:
#   * user-configured: OPENSEARCH_URL is set. `start` only checks that the
#     cluster answers (with OPENSEARCH_USER / OPENSEARCH_PASSWORD if set; the
#     password is passed to curl on stdin, never printed or put in argv);
#     `url` prints OPENSEARCH_URL; `stop` never touches it.
#   * local default: the OpenSearch "integ-test-zip" distribution from Maven
#     Central (no security plugin, plain http), plus the modules our index
#     mapping needs, unpacked once into
#         ${XDG_CACHE_HOME:-$HOME/.cache}/listings-migration/opensearch-<version>
#     and run as the system user `opensearch` (OpenSearch refuses to run as
#     root) on 127.0.0.1:${OPENSEARCH_PORT:-9200}, data and logs in
#         .../listings-migration/node-<version>/
#     Call `start` before exporting OPENSEARCH_URL="$(scripts/opensearch.sh url)",
#     otherwise `start` takes the URL for a user-configured cluster.
#
# Environment (local default): OPENSEARCH_VERSION (default below),
#   OPENSEARCH_PORT (9200), OPENSEARCH_TRANSPORT_PORT (9300),
#   OPENSEARCH_HEAP (1g), OPENSEARCH_JAVA_HOME (Java 17),
#   OPENSEARCH_START_TIMEOUT (seconds, 120).
#
# cluster-*: a 3-node cluster on loopback for tests of replicas and node loss, from the
#   same install as the single node (which it never touches): nodes node-1..node-3 with
#   http ports 9201-9203 and transport ports 9301-9303, heap 512m each, each its own
#   directory (config, data, logs) under .../listings-migration/cluster-<version>-<name>/.
#   `cluster-start` starts every node that is not running (so it also restarts a killed
#   one) and waits until all of them have joined; `cluster-stop` stops them (--purge also
#   deletes their data); `cluster-url` prints the first node's URL; `cluster-pids` prints
#   "node-N PID" per running node. Environment: OPENSEARCH_CLUSTER_NAME
#   (listings-dev-cluster), OPENSEARCH_CLUSTER_NODES (3), OPENSEARCH_CLUSTER_HTTP_PORT
#   (9201: first http port), OPENSEARCH_CLUSTER_TRANSPORT_PORT (9301),
#   OPENSEARCH_CLUSTER_HEAP (512m). Tests pick their own name and ports, so two test
#   sessions never share (or stop) each other's cluster.
#
# Idempotent: every command can be run any number of times; a second `start`
# finds the running node. Quiet on success apart from one-line status
# messages; on failure one line on stderr (after the node's log tail when the
# node itself failed) and exit 1. The local default needs root (useradd,
# runuser, apt-get for missing tools).

set -euo pipefail

# ---- settings ----------------------------------------------------------------

# Newest 2.x release of org.opensearch.distribution.integ-test-zip:opensearch
# that Maven Central served when this was written.
OS_VERSION="${OPENSEARCH_VERSION:-2.19.6}"
OS_PORT="${OPENSEARCH_PORT:-9200}"
OS_TRANSPORT_PORT="${OPENSEARCH_TRANSPORT_PORT:-9300}"
OS_HEAP="${OPENSEARCH_HEAP:-1g}"
OS_JAVA_HOME="${OPENSEARCH_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"
START_TIMEOUT="${OPENSEARCH_START_TIMEOUT:-120}"
OS_USER=opensearch

DIST_ARTIFACT="org.opensearch.distribution.integ-test-zip:opensearch:${OS_VERSION}:zip"
MVN_DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

# Modules the integ-test zip lacks (it ships only transport-netty4), as
#   folder | Maven groupId:artifactId (jar, same version) | plugin class | description
# Core 2.x already has text, keyword, date, integer/long, boolean, nested,
# geo_point and the _aliases API. mapper-extras adds scaled_float (and
# rank_feature, search_as_you_type, token_count). Each module is one jar with no
# dependencies of its own beyond the server's lib/.
MODULES=(
  "mapper-extras|org.opensearch.plugin:mapper-extras-client|org.opensearch.index.mapper.MapperExtrasPlugin|Adds advanced field mappers"
)

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/listings-migration"
DIST="$CACHE/opensearch-$OS_VERSION"      # unpacked distribution (root-owned, read-only use)
NODE="$CACHE/node-$OS_VERSION"            # owned by $OS_USER: config, data, logs, tmp
CONF="$NODE/config"
PIDFILE="$NODE/opensearch.pid"
CLUSTER_NAME=listings-dev
INSTALL_LOG="$CACHE/opensearch.sh.log"    # output of mvn, apt-get, unzip
LOCAL_URL="http://127.0.0.1:$OS_PORT"

# ---- helpers -------------------------------------------------------------------

say() { echo "opensearch: $*"; }
die() { echo "opensearch: ERROR: $*" >&2; exit 1; }

user_configured() { [[ -n "${OPENSEARCH_URL:-}" ]]; }

# The configured URL without a trailing slash (printed by `url` only: it is the
# caller's own variable). Credentials written into it (scheme://user:pass@host) are
# everything between "://" and the LAST "@" (a password may hold "@" or "/"); they
# never reach curl's argv (visible in ps) or a message.
remote_url() { echo "${OPENSEARCH_URL%/}"; }
url_userinfo() {
  local url; url="$(remote_url)"
  [[ "$url" =~ ^[A-Za-z][A-Za-z0-9+.-]*://(.*)@[^@]*$ ]] && printf '%s' "${BASH_REMATCH[1]}"
  return 0
}
bare_url() {
  local url; url="$(remote_url)"
  if [[ "$url" =~ ^([A-Za-z][A-Za-z0-9+.-]*://)(.*)@([^@]*)$ ]]; then
    echo "${BASH_REMATCH[1]}${BASH_REMATCH[3]}"
  else
    echo "$url"
  fi
}
masked_url() {
  if [[ -n "$(url_userinfo)" ]]; then bare_url | sed -E 's#^([A-Za-z][A-Za-z0-9+.-]*://)#\1***@#'; else bare_url; fi
}

# Run a command, appending its output to $INSTALL_LOG; on failure die with $1.
# fd 9 (the start lock) is closed for it, so a daemon it spawns cannot keep
# holding the lock.
logged() {
  local what="$1"; shift
  mkdir -p "$CACHE"
  if ! "$@" >>"$INSTALL_LOG" 2>&1 9>&-; then
    die "$what failed (see $INSTALL_LOG)"
  fi
}

need_root() {
  [[ $EUID -eq 0 ]] || die "the local default node needs root (it runs OpenSearch as user $OS_USER); run as root or set OPENSEARCH_URL"
}

# need_cmd COMMAND DEBIAN_PACKAGE: install the package if the command is missing.
need_cmd() {
  command -v "$1" >/dev/null && return
  say "installing Debian package $2 (for $1)..."
  if ! env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >>"$INSTALL_LOG" 2>&1; then
    logged "apt-get update" apt-get update -q
    logged "apt-get install $2" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2"
  fi
}

# curl against the user's cluster: credentials (OPENSEARCH_USER/OPENSEARCH_PASSWORD,
# else the URL's, percent-decoded) go in a curl config on stdin, never in argv. A line
# break in them would start a new curl config line: refused.
remote_curl() {
  local user="${OPENSEARCH_USER:-}" pw="${OPENSEARCH_PASSWORD:-}" info
  if [[ -z "$user" ]]; then
    info="$(url_userinfo)"
    if [[ -n "$info" ]]; then
      user="${info%%:*}"
      [[ "$info" == *:* ]] && pw="${info#*:}"
      user="$(printf '%b' "${user//%/\\x}")"; pw="$(printf '%b' "${pw//%/\\x}")"
    fi
  fi
  if [[ "$user$pw" == *$'\n'* || "$user$pw" == *$'\r'* ]]; then
    die "OPENSEARCH_USER / OPENSEARCH_PASSWORD (or the URL's credentials) contain a line break; refusing"
  fi
  if [[ -n "$user" ]]; then
    local cred="$user:$pw"
    cred="${cred//\\/\\\\}"; cred="${cred//\"/\\\"}"
    printf 'user = "%s"\n' "$cred" | curl -K - -fsS --max-time 10 "$@"
  else
    curl -fsS --max-time 10 "$@"
  fi
}

local_curl() { curl -fsS --max-time 30 "$@"; }

# Extract "number" : "x.y.z" from the JSON of GET /.
version_of() { sed -nE 's/.*"number"[[:space:]]*:[[:space:]]*"([^"]+)".*/\1/p' | head -n1; }

# ---- local default: download and install ---------------------------------------

# mvn_fetch G:A:V:TYPE DIR — copy one artifact (no dependencies) into DIR.
mvn_fetch() {
  need_cmd mvn maven
  mkdir -p "$2"
  # Run outside any project so no pom.xml is picked up; -C: a checksum mismatch fails
  # the download (Maven only warns by default).
  (cd "$2" && logged "mvn fetch of $1" mvn -B -q -C -Dstyle.color=never \
    "$MVN_DEPENDENCY_PLUGIN:copy" -Dartifact="$1" -DoutputDirectory="$2" \
    -Dmdep.overWriteReleases=true)
}

# Unpack the distribution into $DIST once (built in a scratch dir, then moved
# into place, so an interrupted download never leaves a half-installed tree).
ensure_distribution() {
  [[ -x "$DIST/bin/opensearch" ]] && return
  need_cmd unzip unzip
  say "fetching OpenSearch $OS_VERSION with mvn (Maven Central, cached in ~/.m2)..."
  local work="$CACHE/.download-$OS_VERSION.$$"
  rm -rf "$work"
  mvn_fetch "$DIST_ARTIFACT" "$work"
  logged "unzip of opensearch-$OS_VERSION.zip" unzip -q "$work/opensearch-$OS_VERSION.zip" -d "$work/unpacked"
  [[ -x "$work/unpacked/opensearch-$OS_VERSION/bin/opensearch" ]] \
    || die "unexpected layout in opensearch-$OS_VERSION.zip"
  chmod -R a+rX "$work/unpacked/opensearch-$OS_VERSION"
  rm -rf "$DIST"
  mv "$work/unpacked/opensearch-$OS_VERSION" "$DIST"
  rm -rf "$work"
}

# Install each entry of MODULES into $DIST/modules/<folder> if missing.
ensure_modules() {
  local entry folder ga class desc dir work
  for entry in "${MODULES[@]}"; do
    IFS='|' read -r folder ga class desc <<<"$entry"
    dir="$DIST/modules/$folder"
    [[ -f "$dir/plugin-descriptor.properties" ]] && continue
    say "installing module $folder ($ga:$OS_VERSION)..."
    work="$CACHE/.module-$folder.$$"
    rm -rf "$work"
    mvn_fetch "$ga:$OS_VERSION:jar" "$work"
    cat >"$work/plugin-descriptor.properties" <<EOF
description=$desc
version=$OS_VERSION
name=$folder
classname=$class
java.version=11
opensearch.version=$OS_VERSION
custom.foldername=
extended.plugins=
has.native.controller=false
EOF
    chmod -R a+rX "$work"
    rm -rf "$dir"
    mv "$work" "$dir"
    rm -f "$DIST/.self-test-ok"
  done
}

# ---- local default: user, permissions, configuration -----------------------------

ensure_user() {
  id -u "$OS_USER" >/dev/null 2>&1 && return
  logged "useradd $OS_USER" useradd --system --user-group --no-create-home \
    --home-dir /nonexistent --shell /usr/sbin/nologin "$OS_USER"
  say "created system user $OS_USER"
}

# The node runs as $OS_USER and must reach $DIST and $NODE. When the cache is
# under a private home (e.g. /root, mode 700), grant that user search (x)
# permission on the blocking directories only, with an ACL.
ensure_traversable() {
  local path="" part
  local -a parts
  IFS=/ read -r -a parts <<<"${CACHE#/}"
  for part in "${parts[@]}"; do
    path="$path/$part"
    runuser -u "$OS_USER" -- test -x "$path" && continue
    need_cmd setfacl acl
    logged "setfacl on $path" setfacl -m "u:$OS_USER:x" "$path"
    say "granted user $OS_USER traverse-only (x) access to $path (ACL)"
  done
}

# Config dir of the node: the distribution's defaults (copied once, so the
# node may add its keystore), jvm.options with absolute log/dump paths (the
# launcher runs from $DIST, where $OS_USER cannot write) and our opensearch.yml.
write_config() {
  mkdir -p "$NODE/data" "$NODE/logs" "$NODE/tmp" "$CONF"
  cp -rn "$DIST/config/." "$CONF/"
  sed -E -e "s#file=logs/#file=$NODE/logs/#" \
         -e "s#ErrorFile=logs/#ErrorFile=$NODE/logs/#" \
         -e "s#HeapDumpPath=data\$#HeapDumpPath=$NODE/data#" \
         "$DIST/config/jvm.options" >"$CONF/jvm.options"
  cat >"$CONF/opensearch.yml" <<EOF
# Generated by scripts/opensearch.sh on every start; edits are overwritten.
cluster.name: $CLUSTER_NAME
node.name: $CLUSTER_NAME-node
path.data: $NODE/data
path.logs: $NODE/logs
network.host: 127.0.0.1
http.port: $OS_PORT
transport.port: $OS_TRANSPORT_PORT
discovery.type: single-node
# A nearly full dev disk must not flip indices to read-only.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
  chown -R "$OS_USER:" "$NODE"
}

# ---- local default: process control ----------------------------------------------

# PIDs of the node started from this node dir (matched on its config path).
node_pids() {
  pgrep -u "$OS_USER" -f -- "-Dopensearch.path.conf=$CONF( |\$)" || true
}

node_running() { [[ -n "$(node_pids)" ]]; }

health_ok() {
  local_curl -o /dev/null "$LOCAL_URL/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null
}

NODE_LOG="$NODE/logs/$CLUSTER_NAME.log"
LOG_OFFSET=0   # size of $NODE_LOG before this start, so only new lines are shown

# Print the last lines this start produced in the launcher's output and the
# node's log to stderr, without Java stack frames, long lines cut.
show_log_tail() {
  if [[ -s "$NODE/startup.log" ]]; then
    echo "---- $NODE/startup.log ----" >&2
    log_digest <"$NODE/startup.log" >&2
  fi
  if [[ -s "$NODE_LOG" ]] && (($(stat -c %s "$NODE_LOG") > LOG_OFFSET)); then
    echo "---- $NODE_LOG (last lines) ----" >&2
    tail -c +"$((LOG_OFFSET + 1))" "$NODE_LOG" | log_digest >&2
  fi
}
log_digest() {
  grep -vE '^[[:space:]]+(at |\.\.\. [0-9]+ more)|^warning: no-jdk|^WARNING: (A terminally|System::setSecurityManager|Please consider)' \
    | tail -n 15 | cut -c1-300
}

# http.port of the node config last written (the port a running node uses).
running_port() { sed -nE 's/^http\.port:[[:space:]]*([0-9]+).*/\1/p' "$CONF/opensearch.yml" 2>/dev/null; }

wait_healthy() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until health_ok; do
    if ! node_running; then
      show_log_tail
      die "OpenSearch $OS_VERSION exited during startup (logs above, in $NODE)"
    fi
    if ((SECONDS >= deadline)); then
      show_log_tail
      die "OpenSearch $OS_VERSION not healthy after ${START_TIMEOUT}s (logs above, in $NODE); it is left running: scripts/opensearch.sh stop"
    fi
    sleep 1
  done
}

launch_node() {
  # Refuse to start when something else already serves the port.
  if curl -s -o /dev/null --max-time 3 "$LOCAL_URL/"; then
    die "$LOCAL_URL is already served by a process this script did not start; set OPENSEARCH_URL to use it, or OPENSEARCH_PORT to pick another port"
  fi
  [[ -x "$OS_JAVA_HOME/bin/java" ]] || die "no Java at $OS_JAVA_HOME (set OPENSEARCH_JAVA_HOME)"
  rm -f "$PIDFILE"
  LOG_OFFSET="$(stat -c %s "$NODE_LOG" 2>/dev/null || echo 0)"
  daemonise "$NODE" "$CONF" "$OS_HEAP" "$PIDFILE" || { show_log_tail; die "the OpenSearch launcher failed"; }
}

# daemonise DIR CONF HEAP PIDFILE: start a node of the distribution as $OS_USER in DIR
# (its tmp/ and startup.log there), config from CONF. -d daemonises: the launcher returns
# at once and the JVM keeps running (without fd 9, the start lock). Fails if the launcher does.
daemonise() {
  local dir="$1" conf="$2" heap="$3" pidfile="$4"
  (cd "$dir" && runuser -u "$OS_USER" -- env \
      OPENSEARCH_JAVA_HOME="$OS_JAVA_HOME" \
      OPENSEARCH_PATH_CONF="$conf" \
      OPENSEARCH_TMPDIR="$dir/tmp" \
      OPENSEARCH_JAVA_OPTS="-Xms$heap -Xmx$heap" \
      "$DIST/bin/opensearch" -d -p "$pidfile" \
      >"$dir/startup.log" 2>&1 </dev/null 9>&-)
}

# req METHOD PATH [JSON]: one request to the local node; on an HTTP error,
# die with the response body. Used by the self-test.
req() {
  local out
  out="$(curl -sS --fail-with-body --max-time 30 -X "$1" "$LOCAL_URL$2" \
           -H 'Content-Type: application/json' ${3:+-d "$3"} 2>&1)" \
    || die "self-test request $1 $2 failed: $(tr '\n' ' ' <<<"$out")"
  echo "$out"
}

# Create an index with every field type our mapping uses, add an alias, index
# a document, search it through the alias, delete the index: proves the
# installed modules work (scaled_float needs mapper-extras). Run on the first
# start of a freshly installed distribution.
self_test() {
  local idx=listings-migration-selftest hits
  curl -s -o /dev/null --max-time 30 -X DELETE "$LOCAL_URL/$idx" || true
  req PUT "/$idx" '{
    "settings": {"number_of_shards": 1, "number_of_replicas": 0},
    "mappings": {"properties": {
      "title": {"type": "text"}, "sku": {"type": "keyword"},
      "created_at": {"type": "date"}, "qty": {"type": "integer"},
      "views": {"type": "long"}, "active": {"type": "boolean"},
      "price": {"type": "scaled_float", "scaling_factor": 100},
      "location": {"type": "geo_point"},
      "attributes": {"type": "nested", "properties": {
        "name": {"type": "keyword"}, "value": {"type": "text"}}}}}}' >/dev/null
  req PUT "/$idx/_doc/1?refresh=true" '{
    "title": "red bike", "sku": "B-1", "created_at": "2024-01-02T03:04:05Z",
    "qty": 1, "views": 10000000000, "active": true, "price": 12.34,
    "location": {"lat": 52.52, "lon": 13.40},
    "attributes": [{"name": "colour", "value": "red"}]}' >/dev/null
  req POST /_aliases "{\"actions\": [{\"add\": {\"index\": \"$idx\", \"alias\": \"$idx-alias\"}}]}" >/dev/null
  hits="$(req POST "/$idx-alias/_search?filter_path=hits.total.value" '{
    "query": {"bool": {
      "must": [
        {"match": {"title": "bike"}},
        {"range": {"price": {"gte": 12.3, "lte": 12.4}}},
        {"nested": {"path": "attributes", "query": {"term": {"attributes.name": "colour"}}}}],
      "filter": {"geo_distance": {"distance": "5km", "location": {"lat": 52.5, "lon": 13.4}}}}}}')"
  req DELETE "/$idx" >/dev/null
  [[ "$hits" == '{"hits":{"total":{"value":1}}}' ]] \
    || die "self-test search returned $hits, expected one hit"
}

# ---- a local multi-node cluster (cluster-* commands) -------------------------------

C_NAME="${OPENSEARCH_CLUSTER_NAME:-listings-dev-cluster}"
C_NODES="${OPENSEARCH_CLUSTER_NODES:-3}"
C_HTTP="${OPENSEARCH_CLUSTER_HTTP_PORT:-9201}"
C_TRANSPORT="${OPENSEARCH_CLUSTER_TRANSPORT_PORT:-9301}"
C_HEAP="${OPENSEARCH_CLUSTER_HEAP:-512m}"
C_DIR="$CACHE/cluster-$OS_VERSION-$C_NAME"
C_URL="http://127.0.0.1:$C_HTTP"

c_node_dir() { echo "$C_DIR/node-$1"; }
c_node_pids() { pgrep -u "$OS_USER" -f -- "-Dopensearch.path.conf=$(c_node_dir "$1")/config( |\$)" || true; }

c_write_config() {
  local n="$1" dir seeds="" managers="" i
  dir="$(c_node_dir "$n")"
  for ((i = 1; i <= C_NODES; i++)); do
    seeds+="${seeds:+, }\"127.0.0.1:$((C_TRANSPORT + i - 1))\""
    managers+="${managers:+, }\"$C_NAME-node-$i\""
  done
  mkdir -p "$dir/data" "$dir/logs" "$dir/tmp" "$dir/config"
  cp -rn "$DIST/config/." "$dir/config/"
  sed -E -e "s#file=logs/#file=$dir/logs/#" \
         -e "s#ErrorFile=logs/#ErrorFile=$dir/logs/#" \
         -e "s#HeapDumpPath=data\$#HeapDumpPath=$dir/data#" \
         "$DIST/config/jvm.options" >"$dir/config/jvm.options"
  cat >"$dir/config/opensearch.yml" <<YML
# Generated by scripts/opensearch.sh cluster-start; edits are overwritten.
cluster.name: $C_NAME
node.name: $C_NAME-node-$n
path.data: $dir/data
path.logs: $dir/logs
network.host: 127.0.0.1
http.port: $((C_HTTP + n - 1))
transport.port: $((C_TRANSPORT + n - 1))
discovery.seed_hosts: [$seeds]
cluster.initial_cluster_manager_nodes: [$managers]
cluster.routing.allocation.disk.threshold_enabled: false
YML
  chown -R "$OS_USER:" "$dir"
}

c_launch() {
  local n="$1" dir port
  dir="$(c_node_dir "$n")"
  port=$((C_HTTP + n - 1))
  if curl -s -o /dev/null --max-time 3 "http://127.0.0.1:$port/"; then
    die "http://127.0.0.1:$port is already served by a process this script did not start (OPENSEARCH_CLUSTER_HTTP_PORT)"
  fi
  daemonise "$dir" "$dir/config" "$C_HEAP" "$dir/opensearch.pid" \
    || die "the OpenSearch launcher failed for node-$n (see $dir/startup.log)"
}

# Every node joined? (asked of any node that answers)
c_joined() {
  local n nodes
  for ((n = 1; n <= C_NODES; n++)); do
    nodes="$(curl -fsS --max-time 3 "http://127.0.0.1:$((C_HTTP + n - 1))/_cluster/health" 2>/dev/null \
              | sed -nE 's/.*"number_of_nodes":([0-9]+).*/\1/p')"
    [[ -n "$nodes" ]] && { [[ "$nodes" -ge "$C_NODES" ]]; return; }
  done
  return 1
}

cmd_cluster_start() {
  need_root
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.start.lock"
  flock 9
  need_cmd curl curl
  ensure_distribution
  ensure_modules
  ensure_user
  ensure_traversable
  local n t0=$SECONDS started=""
  for ((n = 1; n <= C_NODES; n++)); do
    [[ -n "$(c_node_pids "$n")" ]] && continue
    c_write_config "$n"
    c_launch "$n"
    started+=" node-$n"
  done
  local deadline=$((SECONDS + START_TIMEOUT))
  until c_joined; do
    for ((n = 1; n <= C_NODES; n++)); do
      if [[ -z "$(c_node_pids "$n")" ]]; then
        tail -n 20 "$(c_node_dir "$n")/logs/$C_NAME.log" 2>/dev/null | cut -c1-300 >&2 || true
        die "cluster node-$n exited during startup (log in $(c_node_dir "$n")/logs)"
      fi
    done
    ((SECONDS < deadline)) || die "cluster $C_NAME: not all $C_NODES nodes joined after ${START_TIMEOUT}s (logs in $C_DIR)"
    sleep 1
  done
  say "cluster $C_NAME: $C_NODES nodes up, first at $C_URL (started:${started:- none} in $((SECONDS - t0))s, heap $C_HEAP each)"
}

cmd_cluster_stop() {
  local n pids all=""
  for ((n = 1; n <= C_NODES; n++)); do
    pids="$(c_node_pids "$n")"
    [[ -n "$pids" ]] && all+=" $pids"
  done
  if [[ -n "$all" ]]; then
    need_root
    # shellcheck disable=SC2086  # word splitting of the PID list is intended
    kill -TERM $all 2>/dev/null || true
    local deadline=$((SECONDS + 60)) alive
    while :; do
      alive=""
      for ((n = 1; n <= C_NODES; n++)); do alive+="$(c_node_pids "$n")"; done
      [[ -z "$alive" ]] && break
      if ((SECONDS >= deadline)); then
        # shellcheck disable=SC2086
        kill -KILL $all 2>/dev/null || true
        sleep 1
        break
      fi
      sleep 0.5
    done
    say "cluster $C_NAME: stopped (pids$all)"
  else
    say "cluster $C_NAME: not running"
  fi
  if [[ "${1:-}" == "--purge" && -d "$C_DIR" ]]; then
    rm -rf "$C_DIR"
    say "cluster $C_NAME: removed $C_DIR"
  fi
}

cmd_cluster_status() {
  local n running=0 health
  for ((n = 1; n <= C_NODES; n++)); do [[ -n "$(c_node_pids "$n")" ]] && running=$((running + 1)); done
  if ((running == 0)); then
    say "cluster $C_NAME: down (scripts/opensearch.sh cluster-start)"
    exit 1
  fi
  health="$(curl -fsS --max-time 5 "$C_URL/_cluster/health" 2>/dev/null || true)"
  say "cluster $C_NAME: $running of $C_NODES node processes running; health: ${health:-no answer at $C_URL}"
}

cmd_cluster_pids() {
  local n pid
  for ((n = 1; n <= C_NODES; n++)); do
    pid="$(c_node_pids "$n" | head -n1)"
    [[ -n "$pid" ]] && echo "node-$n $pid"
  done
  return 0
}

# ---- commands ----------------------------------------------------------------------

cmd_start() {
  if user_configured; then
    local info
    info="$(remote_curl "$(bare_url)/" 2>&1)" \
      || die "configured cluster $(masked_url) does not answer: ${info##*$'\n'}"
    say "using configured cluster $(masked_url) (OpenSearch $(version_of <<<"$info"))"
    return
  fi
  need_root
  mkdir -p "$CACHE"
  # One start at a time (e.g. parallel make targets); released on exit.
  exec 9>"$CACHE/.start.lock"
  flock 9
  rm -rf "$CACHE"/.download-* "$CACHE"/.module-*   # left by an interrupted start
  need_cmd curl curl
  if node_running; then
    [[ "$(running_port)" == "$OS_PORT" ]] \
      || die "the node in $NODE already runs on port $(running_port), not $OS_PORT; stop it first"
    wait_healthy
    say "already running at $LOCAL_URL (OpenSearch $OS_VERSION, $NODE)"
    return
  fi
  ensure_distribution
  ensure_modules
  ensure_user
  ensure_traversable
  write_config
  local t0=$SECONDS
  launch_node
  wait_healthy
  # Once per installed distribution (the marker is removed when a module is added).
  if [[ ! -f "$DIST/.self-test-ok" ]]; then
    self_test
    touch "$DIST/.self-test-ok"
  fi
  say "started OpenSearch $OS_VERSION at $LOCAL_URL in $((SECONDS - t0))s (heap $OS_HEAP, data in $NODE)"
}

cmd_stop() {
  if user_configured; then
    say "configured cluster $(masked_url) is not managed by this script; not stopping it"
    return
  fi
  local pids
  pids="$(node_pids)"
  if [[ -z "$pids" ]]; then
    say "not running"
    return
  fi
  need_root
  # shellcheck disable=SC2086  # word splitting of the PID list is intended
  kill -TERM $pids 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while node_running; do
    if ((SECONDS >= deadline)); then
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
      sleep 1
      node_running && die "could not stop OpenSearch (pid $pids)"
      break
    fi
    sleep 0.5
  done
  rm -f "$PIDFILE"
  say "stopped OpenSearch $OS_VERSION (was at http://127.0.0.1:$(running_port))"
}

cmd_status() {
  local info
  if user_configured; then
    if info="$(remote_curl "$(bare_url)/" 2>/dev/null)"; then
      say "up: configured cluster $(masked_url), OpenSearch $(version_of <<<"$info")"
    else
      say "down: configured cluster $(masked_url) does not answer"
      exit 1
    fi
    return
  fi
  if ! node_running; then
    say "down: no local node (scripts/opensearch.sh start)"
    exit 1
  fi
  local url pids
  url="http://127.0.0.1:$(running_port)"
  pids="$(node_pids | paste -sd ' ')"
  if info="$(local_curl "$url/" 2>/dev/null)"; then
    say "up: $url, OpenSearch $(version_of <<<"$info") (pid $pids, data in $NODE)"
  else
    say "starting: pid $pids does not answer on $url yet"
    exit 1
  fi
}

cmd_url() {
  if user_configured; then remote_url; else echo "$LOCAL_URL"; fi
}

main() {
  if user_configured && [[ "${OPENSEARCH_USER:-}${OPENSEARCH_PASSWORD:-}" == *[$'\n\r']* ]]; then
    die "OPENSEARCH_USER / OPENSEARCH_PASSWORD contain a line break; refusing"
  fi
  case "${1:-}" in
    start)  cmd_start ;;
    stop)   cmd_stop ;;
    status) cmd_status ;;
    url)    cmd_url ;;
    cluster-start)  cmd_cluster_start ;;
    cluster-stop)   cmd_cluster_stop "${2:-}" ;;
    cluster-status) cmd_cluster_status ;;
    cluster-url)    echo "$C_URL" ;;
    cluster-pids)   cmd_cluster_pids ;;
    *)
      echo "usage: $0 start|stop|status|url|cluster-start|cluster-stop [--purge]|cluster-status|cluster-url|cluster-pids" >&2
      exit 2 ;;
  esac
}

main "$@"
