#!/usr/bin/env bash
# The main job end to end on a local default: the stand-in monolith with the
# seed's example data (or --c2c N --b2c N [--dirty] for more) and the
# microservice's stand-in schema (applied once; its tables are the service's),
# dbt build, publish, the migration report, then reindex and validate OpenSearch.
set -euo pipefail
source "$(dirname "$0")/common.sh"

fixture_args=(--example)
if [[ $# -gt 0 ]]; then
    fixture_args=("$@")
fi

ensure_venv
ensure_profile
ensure_services
ensure_database "${PGDATABASE:-listings_db}"
# On the local default cluster the database is ours; on a server you configured,
# the fixtures refuse to drop a `monolith` schema they did not create.
if [[ "${LISTINGS_PG_LOCAL:-}" == 1 ]]; then
    fixture_args+=(--replace-schema)
fi

say "loading the stand-in monolith (${fixture_args[*]}) and the microservice's stand-in schema"
python -m migration fixtures --service "${fixture_args[@]}"

say "dbt build (builds and tests in the migration's own schemas)"
dbt build

say "publish into the microservice's tables (one transaction; only what changed)"
python -m migration publish

say "migration report"
python -m migration report

say "OpenSearch: reindex (validates before moving the alias), then validate the live alias"
python -m indexer reindex
python -m indexer validate

say "lineage docs"
dbt docs generate --quiet
cat <<TXT
Done. Lineage docs: run 'make docs' and open http://127.0.0.1:8080/#!/overview
(the lineage graph is the blue button at the bottom right).
TXT
