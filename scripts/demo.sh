#!/usr/bin/env bash
# The main job end to end on a local default: the stand-in monolith with the
# example data of the hand-run scripts (or --c2c N --b2c N [--dirty] for more) and the
# microservice's stand-in schema (applied once; its tables are the service's),
# dbt build, publish, the migration report, then reindex and validate OpenSearch,
# and a catch-up: a change in the monolith, build, publish, sync, validate.
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
listings-standin --service "${fixture_args[@]}"

say "dbt build (builds and tests in the migration's own schemas)"
dbt build

say "publish into the microservice's tables (one transaction; only what changed)"
listings-migration publish

say "migration report"
listings-migration report

say "OpenSearch: reindex (validates before moving the alias), then validate the live alias"
listings-indexer reindex
listings-indexer validate

say "catch-up: the monolith changes while it is live (an edit, a new listing, a deletion)"
python - <<'PY'
from listings_common.pg import PgSettings
with PgSettings.from_env().connect() as conn:
    conn.execute("update monolith.c2c_listings set title = title || ' (edited live)', updated_at = now()"
                 " where id = (select min(id) from monolith.c2c_listings)")
    conn.execute("insert into monolith.c2c_listings (id, user_id, category_id, title, price, status, created_at)"
                 " select max(id) + 1, 1, 1, 'Listed while the migration ran', 100, 'active', now()"
                 " from monolith.c2c_listings")
    doomed = "(select max(id) from monolith.c2c_listings where title not like 'Listed while%')"
    conn.execute(f"delete from monolith.c2c_images where listing_id = {doomed}")
    conn.execute(f"delete from monolith.c2c_listings where id = {doomed}")
PY
dbt build --quiet
listings-migration publish
listings-indexer sync
listings-indexer validate

say "lineage docs"
dbt docs generate --quiet
cat <<TXT
Done. Lineage docs: run 'make docs' and open http://127.0.0.1:8080/#!/overview
(the lineage graph is the blue button at the bottom right).
TXT
