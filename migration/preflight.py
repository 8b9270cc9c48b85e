"""`python -m migration preflight`: the seed's pre-migration checklist, as checks.

Run before a production `dbt build`. Checks that the target database answers and
lets this role create the schemas dbt needs; that the monolith's view is readable
where the dbt var `monolith_schema` says (directly, or through postgres_fdw) with
the 25 columns the models expect; that its ids fit the id policy; how much space
the build needs; and whether a snapshot of the current tables exists. Prints one
line per check and exits 1 if a required one fails.
"""

from __future__ import annotations

import argparse

import psycopg
from psycopg import sql

from migration import project, snapshot
from migration.pg import PgSettings

EXPECTED_COLUMNS = [
    "id", "source_type", "user_id", "category_id", "title", "description", "price", "condition", "status",
    "location", "latitude", "longitude", "address_city", "address_country", "views_count", "show_on_map",
    "original_language", "created_at", "updated_at", "storefront_id", "external_id", "metadata",
    "needs_reindex", "address_multilingual", "images",
]  # fmt: skip
INT_MAX = 2_147_483_647
# Output tables + indexes + the unlogged work table, relative to the source rows' size.
SPACE_FACTOR = 3


def run(pg: PgSettings, settings: project.ProjectSettings, out=print) -> bool:
    failures = 0

    def check(ok: bool, text: str, required: bool = True) -> None:
        nonlocal failures
        out(f"{'✓' if ok else ('✗' if required else '!')} {text}")
        failures += int(required and not ok)

    with pg.connect(autocommit=True) as conn:
        version = conn.execute("show server_version").fetchone()[0]
        check(int(version.split(".")[0]) >= 13, f"target {pg.describe()} answers (PostgreSQL {version})")
        can_create = conn.execute(
            "select has_database_privilege(current_user, current_database(), 'CREATE')"
        ).fetchone()[0]
        check(can_create, "this role may create the schemas dbt builds into (CREATE on the database)")

        columns = [
            row[0]
            for row in conn.execute(
                "select column_name from information_schema.columns where table_schema = %s"
                " and table_name = 'unified_listings' order by ordinal_position",
                (settings.monolith_schema,),
            ).fetchall()
        ]
        source = sql.Identifier(settings.monolith_schema, "unified_listings")
        if not columns:
            check(
                False,
                f"{settings.monolith_schema}.unified_listings is not readable here"
                " (same server: set MONOLITH_SCHEMA; two servers: python -m migration attach-monolith)",
            )
            return False
        check(
            columns == EXPECTED_COLUMNS,
            f"{settings.monolith_schema}.unified_listings has the 25 expected columns"
            + ("" if columns == EXPECTED_COLUMNS else f" (differs: {sorted(set(columns) ^ set(EXPECTED_COLUMNS))})"),
        )
        try:
            stats = conn.execute(
                sql.SQL(
                    "select count(*), max(id) filter (where source_type = 'c2c'),"
                    " max(id) filter (where source_type = 'b2c'), min(id) from {}"
                ).format(source)
            ).fetchone()
        except psycopg.Error as exc:
            check(False, f"reading {settings.monolith_schema}.unified_listings failed: {' '.join(str(exc).split())}")
            return False
        rows, max_c2c, max_b2c, min_id = stats
        check(True, f"source has {rows:,} rows")
        offset = settings.b2c_id_offset
        fits = (max_c2c or 0) < offset and (max_b2c or 0) + offset <= INT_MAX and (min_id or 1) > 0
        check(
            fits,
            f"ids fit the id policy (C2C max {max_c2c}, B2C max {max_b2c}, offset {offset:,});"
            " rows that do not are quarantined",
            required=False,
        )
        sample_bytes = conn.execute(
            sql.SQL("select avg(pg_column_size(s.*)) from (select * from {} limit 10000) as s").format(source)
        ).fetchone()[0]
        need = int((sample_bytes or 0) * rows * SPACE_FACTOR)
        data_directory = conn.execute("select setting from pg_settings where name = 'data_directory'").fetchone()
        where = f" (on the server: df -h {data_directory[0]})" if data_directory else ""
        check(True, f"the build needs about {_size(need)} of free disk on the target server{where}")

        existing = snapshot.existing_tables(conn, settings.target_schema)
        taken = snapshot.snapshots(conn, settings.target_schema)
        if existing:
            check(
                bool(taken),
                f"a snapshot of the current tables exists ({taken[-1] if taken else 'none'});"
                " take one with `python -m migration snapshot`",
                required=False,
            )
        else:
            check(True, f"schema {settings.target_schema} holds no migrated tables yet (first run)")
    out(f"Preflight: {'OK' if not failures else f'{failures} check(s) failed'}")
    return not failures


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preflight", help="pre-migration checks; exit 1 if a required one fails", description=__doc__.split("\n\n")[1]
    )
    parser.set_defaults(handler=lambda args: 0 if run(PgSettings.from_env(), project.load()) else 1)
