#!/usr/bin/env bash
# Every test: lint (ruff, SQLFluff), dbt build and publish on dirty fixtures, the
# migration report, the lineage docs in headless Chromium, then pytest (unit and
# integration, against the real PostgreSQL and OpenSearch). Sets up whatever is
# missing first. Usage: scripts/test.sh [pytest args]
set -euo pipefail
source "$(dirname "$0")/common.sh"

ensure_venv
ensure_profile
ensure_services

say "lint: ruff"
ruff check .
ruff format --check .

say "lint: SQLFluff (dbt templater)"
sqlfluff lint models data-tests macros

say "dbt build on fixtures with every dirty case (database listings_ci)"
export PGDATABASE=listings_ci
ensure_database "$PGDATABASE"
# On the local default cluster the database is ours; on a server you configured, the
# fixtures refuse to drop a `monolith` schema they did not create.
replace=()
[[ "${LISTINGS_PG_LOCAL:-}" != 1 ]] || replace=(--replace-schema)
listings-standin --c2c 3000 --b2c 1500 --dirty --service "${replace[@]}"
dbt build
listings-migration publish
listings-migration report

say "lineage docs in headless Chromium"
scripts/docs_check.sh

# Two workers (PYTEST_WORKERS): most of a test's time is spent waiting on dbt,
# PostgreSQL and OpenSearch. --dist loadscope keeps each module on one worker, so a
# module's fixtures (a built database, the 3-node cluster) are made once.
say "pytest (${PYTEST_WORKERS:-2} workers)"
python -m pytest --numprocesses "${PYTEST_WORKERS:-2}" --dist loadscope "$@"
