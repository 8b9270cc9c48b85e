# Sourced by the scripts in this folder: the venv, the dbt profile and the
# local services, set up the same way for the demo, the tests and CI.
# shellcheck shell=bash

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
PYTHON_BIN="${PYTHON:-python3.11}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# A venv with the pinned, hashed tree from requirements.lock (setuptools, the project's
# build backend, included) and the project itself installed
# (editable: the console scripts listings-migration, listings-indexer, listings-standin),
# rebuilt when the lock or pyproject.toml changes.
ensure_venv() {
    local stamp="$VENV/.requirements.lock.sha"
    local want
    want="$(cat "$REPO/requirements.lock" "$REPO/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    command -v "$PYTHON_BIN" >/dev/null || PYTHON_BIN=python3
    say "creating the virtualenv (.venv) from requirements.lock, and installing the project into it"
    "$PYTHON_BIN" -m venv "$VENV"
    # Every package of the tree, setuptools included, checked against its hash in the lock.
    "$VENV/bin/python" -m pip install --quiet --require-hashes --requirement "$REPO/requirements.lock"
    "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation --editable "$REPO"
    echo "$want" > "$stamp"
}

# dbt reads ./profiles.yml if the user made one, else the env-driven example.
ensure_profile() {
    if [[ -n "${DBT_PROFILES_DIR:-}" ]]; then
        return 0
    elif [[ -f "$REPO/profiles.yml" ]]; then
        export DBT_PROFILES_DIR="$REPO"
    else
        mkdir -p "$REPO/.local/dbt"
        cp "$REPO/profiles.yml.example" "$REPO/.local/dbt/profiles.yml"
        export DBT_PROFILES_DIR="$REPO/.local/dbt"
    fi
}

# PostgreSQL: the user's (PG* set) or a local Debian cluster; OpenSearch: the
# user's (OPENSEARCH_URL set) or a local node. Exports what the tools read.
ensure_services() {
    "$REPO/scripts/postgres.sh" start
    if [[ -z "${PGHOST:-}" ]]; then
        local database="${PGDATABASE:-}"   # a database chosen by the caller wins
        eval "$("$REPO/scripts/postgres.sh" env)"
        if [[ -n "$database" ]]; then
            export PGDATABASE="$database"
        fi
    fi
    if [[ "${1:-}" != "--no-opensearch" ]]; then
        "$REPO/scripts/opensearch.sh" start
        OPENSEARCH_URL="$("$REPO/scripts/opensearch.sh" url)"
        export OPENSEARCH_URL
    fi
    export PGTZ=UTC
}

# Creates database $1 if it does not exist (connecting to the `postgres` database).
ensure_database() {
    "$VENV/bin/python" - "$1" <<'PY'
import sys
from psycopg import sql
from listings_common.pg import PgSettings
name = sys.argv[1]
with PgSettings.from_env().with_database("postgres").connect(autocommit=True) as conn:
    if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
PY
}

PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
PATH="$VENV/bin:$PATH"
export PATH
cd "$REPO" || exit 1
