#!/usr/bin/env bash
# The lineage docs in a real browser: generates the dbt docs site, serves it with
# `dbt docs serve` on a free loopback port, opens the lineage graph in headless
# Chromium (driven by playwright-core, scripts/docs_check.mjs) and checks that it
# shows the source monolith.unified_listings, the models from staging to the
# search documents and the exposure listings_microservice_index, connected.
# Leaves a screenshot of the graph in artifacts/lineage.png.
#
# Usage: scripts/docs_check.sh [--rebuild]
#   Uses its own database (DOCS_CHECK_DATABASE, default listings_docs), loaded with
#   the hand-run scripts' example and built with `dbt build` when the project changed since the
#   last build (or with --rebuild), so the docs' catalog matches the models; dbt's
#   files go to .local/docs_check/target, out of the way of target/.
# Installs what is missing (needs root for apt-get): Debian's chromium and
# fonts-liberation, nodejs/npm (Node >= 18), and playwright-core from
# scripts/docs_check/package-lock.json into .local/docs_check/node (git-ignored).
# No browser is downloaded: playwright drives /usr/bin/chromium (or $CHROMIUM).
# Exit 0 when the checks pass; otherwise one line saying what failed, exit 1.
set -euo pipefail
source "$(dirname "$0")/common.sh"

rebuild=false
case "${1:-}" in
    "") ;;
    --rebuild) rebuild=true ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (usage: scripts/docs_check.sh [--rebuild])" ;;
esac

STATE="$REPO/.local/docs_check"
NODE_PREFIX="$STATE/node"
APT_LOG="$STATE/apt.log"
SCREENSHOT="$REPO/artifacts/lineage.png"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export CHROMIUM
mkdir -p "$STATE"
started=$SECONDS

# apt-get install, quietly (output in $APT_LOG); `apt-get update` first only if needed.
apt_install() {
    [[ $EUID -eq 0 ]] || die "docs-check needs $* installed (apt-get install $*): run it as root or install them first"
    say "installing $* (apt-get, log in ${APT_LOG#"$REPO"/})"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "$@" >>"$APT_LOG" 2>&1; then
        { apt-get update && apt-get install -y --no-install-recommends "$@"; } >>"$APT_LOG" 2>&1 ||
            die "apt-get install $* failed (see $APT_LOG)"
    fi
}

deb_installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }

# Chromium (Debian's) and a font for the graph's labels; Node >= 18 with npm;
# playwright-core as pinned in scripts/docs_check/package-lock.json.
ensure_browser_tools() {
    local missing=()
    if [[ ! -x "$CHROMIUM" ]]; then
        [[ "$CHROMIUM" == /usr/bin/chromium ]] || die "CHROMIUM=$CHROMIUM is not an executable"
        missing+=(chromium)
    fi
    deb_installed fonts-liberation || missing+=(fonts-liberation)
    local node_major=0
    if command -v node >/dev/null; then
        node_major="$(node -p 'process.versions.node.split(".")[0]')"
    fi
    if ((node_major < 18)); then
        missing+=(nodejs npm)
    elif ! command -v npm >/dev/null; then
        missing+=(npm)
    fi
    if ((${#missing[@]})); then
        apt_install "${missing[@]}"
    fi
    node_major="$(node -p 'process.versions.node.split(".")[0]')"
    ((node_major >= 18)) || die "Node.js >= 18 is needed for playwright-core, found $(node --version)"

    local want stamp="$NODE_PREFIX/.package-lock.sha"
    want="$(cat "$REPO/scripts/docs_check/package.json" "$REPO/scripts/docs_check/package-lock.json" | sha256sum | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$NODE_PREFIX/node_modules/playwright-core/package.json" ]]; then
        return 0
    fi
    say "installing playwright-core (npm ci into ${NODE_PREFIX#"$REPO"/})"
    mkdir -p "$NODE_PREFIX"
    cp "$REPO/scripts/docs_check/package.json" "$REPO/scripts/docs_check/package-lock.json" "$NODE_PREFIX/"
    (cd "$NODE_PREFIX" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --omit=dev --no-audit --no-fund --loglevel=error \
        >"$STATE/npm.log" 2>&1) || die "npm ci of scripts/docs_check/package-lock.json failed (see $STATE/npm.log)"
    echo "$want" >"$stamp"
}

# Whether the docs database already holds a build (the marts and the documents view).
database_built() {
    python - <<'PY'
import os, sys
from listings_common.pg import PgSettings
schema = os.environ.get("LISTINGS_SCHEMA") or "public"
with PgSettings.from_env().connect() as conn:
    found = conn.execute(
        "select to_regclass(%s) is not null and to_regclass(%s) is not null",
        (f'"{schema}".listings', f'"{schema}_search".listing_search_documents'),
    ).fetchone()[0]
sys.exit(0 if found else 1)
PY
}

# A digest of what a build depends on: rebuild when the project changed since the last one.
project_digest() {
    find models macros seeds data-tests dbt_project.yml -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum |
        cut -d' ' -f1
}

free_port() {
    python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

serve_pid=""
stop_server() {
    [[ -n "$serve_pid" ]] || return 0
    if kill "$serve_pid" 2>/dev/null; then
        for _ in $(seq 50); do
            kill -0 "$serve_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$serve_pid" 2>/dev/null || true
    fi
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_venv
ensure_profile
ensure_services --no-opensearch
ensure_browser_tools

export PGDATABASE="${DOCS_CHECK_DATABASE:-listings_docs}"
export DBT_TARGET_PATH="$STATE/target" DBT_LOG_PATH="$STATE/logs"
ensure_database "$PGDATABASE"
build_stamp="$STATE/build-$PGDATABASE.sha"
digest="$(project_digest)"
if $rebuild || [[ ! -f "$build_stamp" || "$(cat "$build_stamp")" != "$digest" ]] || ! database_built; then
    say "docs database $PGDATABASE: the hand-run scripts' example and dbt build"
    rm -f "$build_stamp"
    # --replace-schema only on the local default cluster (a database of ours); elsewhere
    # the fixtures refuse to drop a `monolith` schema they did not create.
    replace=()
    [[ "${LISTINGS_PG_LOCAL:-}" != 1 ]] || replace=(--replace-schema)
    listings-standin --example --service "${replace[@]}"
    dbt build --quiet
    echo "$digest" >"$build_stamp"
fi

say "dbt docs generate"
dbt docs generate --quiet

port="$(free_port)"
say "dbt docs serve on http://127.0.0.1:$port (background)"
(cd "$REPO" && exec dbt docs serve --target-path "$DBT_TARGET_PATH" --host 127.0.0.1 --port "$port" --no-browser) \
    >"$STATE/serve.log" 2>&1 &
serve_pid=$!
python - "http://127.0.0.1:$port/manifest.json" "$serve_pid" <<'PY' || die "dbt docs serve did not come up on port $port (see $STATE/serve.log)"
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
PY

say "lineage graph in headless Chromium ($("$CHROMIUM" --version 2>/dev/null | head -1))"
DOCS_CHECK_NODE_PREFIX="$NODE_PREFIX" node "$REPO/scripts/docs_check.mjs" "http://127.0.0.1:$port/" "$SCREENSHOT"
stop_server
say "docs check passed in $((SECONDS - started)) s; screenshot: ${SCREENSHOT#"$REPO"/}"
