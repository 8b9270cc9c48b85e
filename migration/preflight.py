"""`listings-migration preflight`: the hand-run scripts' pre-migration checklist, as checks.

Run before a production `dbt build`. Checks that the target database answers and
lets this role create the schemas dbt needs; that the microservice's tables exist
and this role has every privilege `publish` needs on them (and says which are
missing); that the monolith's view is readable where the dbt var `monolith_schema`
says (directly, or through postgres_fdw) with the 25 columns the models expect;
that the monolith server's TimeZone is the zone the build reads C2C times in
(`monolith_time_zone`); and how much space the build needs. Prints one line per
check and exits 1 if a required one fails.
"""

from __future__ import annotations

import os

import psycopg
from psycopg import sql

from listings_common.pg import KEEPALIVES, PgSettings
from migration import fdw, project

EXPECTED_COLUMNS = [
    "id", "source_type", "user_id", "category_id", "title", "description", "price", "condition", "status",
    "location", "latitude", "longitude", "address_city", "address_country", "views_count", "show_on_map",
    "original_language", "created_at", "updated_at", "storefront_id", "external_id", "metadata",
    "needs_reindex", "address_multilingual", "images",
]  # fmt: skip
SERVICE_TABLES = ("listings", "listing_images", "listing_locations")
PUBLISH_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
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
                " (same server: set MONOLITH_SCHEMA; two servers: listings-migration attach-monolith)",
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
        rows = stats[0]
        check(True, f"source has {rows:,} rows")
        sample_bytes = conn.execute(
            sql.SQL("select avg(pg_column_size(s.*)) from (select * from {} limit 10000) as s").format(source)
        ).fetchone()[0]
        need = int((sample_bytes or 0) * rows * SPACE_FACTOR)
        data_directory = conn.execute("select setting from pg_settings where name = 'data_directory'").fetchone()
        where = f" (on the server: df -h {data_directory[0]})" if data_directory else ""
        check(True, f"the build needs about {_size(need)} of free disk on the target server{where}")

        _check_service(conn, settings.service_schema, check)
        _check_time_zone(conn, pg, settings, check)
    out(f"Preflight: {'OK' if not failures else f'{failures} check(s) failed'}")
    return not failures


def _check_service(conn: psycopg.Connection, schema: str, check) -> None:
    """The microservice's tables exist, and this role may do what publish does to them."""
    if not conn.execute("select has_schema_privilege(%s, 'USAGE')", (schema,)).fetchone()[0]:
        check(
            False,
            f"this role has the privileges publish needs on the service's tables (missing: USAGE on schema {schema})",
        )
        return
    missing_tables = [
        t
        for t in SERVICE_TABLES
        if conn.execute("select to_regclass(%s)", (f'"{schema}"."{t}"',)).fetchone()[0] is None
    ]
    check(
        not missing_tables,
        f"the microservice's tables exist in schema {schema}"
        + (f" (missing: {', '.join(missing_tables)}; the service's migrations create them)" if missing_tables else ""),
    )
    if missing_tables:
        return
    lacking = []
    for table in SERVICE_TABLES:
        name = f'"{schema}"."{table}"'
        lacking += [
            f"{p} on {schema}.{table}"
            for p in PUBLISH_PRIVILEGES
            if not conn.execute("select has_table_privilege(%s, %s)", (name, p)).fetchone()[0]
        ]
        sequence = conn.execute("select pg_get_serial_sequence(%s, 'id')", (name,)).fetchone()[0]
        if sequence and not conn.execute("select has_sequence_privilege(%s, 'UPDATE')", (sequence,)).fetchone()[0]:
            lacking.append(f"UPDATE on sequence {sequence} (publish moves it past the largest id)")
    check(
        not lacking,
        "this role has the privileges publish needs on the service's tables"
        + (f" (missing: {'; '.join(lacking)})" if lacking else ""),
    )
    can_replica = conn.execute(
        "select rolsuper or has_parameter_privilege('session_replication_role', 'SET')"
        " from pg_roles where rolname = current_user"
    ).fetchone()[0]
    check(
        bool(can_replica),
        "this role may set session_replication_role, so the service's UPDATE triggers cannot rewrite the"
        " monolith's updated_at (GRANT SET ON PARAMETER session_replication_role TO <role>)",
        required=False,
    )


def _check_time_zone(conn: psycopg.Connection, pg: PgSettings, settings: project.ProjectSettings, check) -> None:
    """C2C times are wall-clock times in the zone the monolith's sessions ran in."""
    # MONOLITH_PG* (its TLS settings falling back to the caller's PGSSL*), as attach-monolith uses them
    monolith_pg = fdw.monolith_settings() if os.environ.get("MONOLITH_PGHOST") else pg
    saved = {name: os.environ.pop(name) for name in ("PGTZ", "PGOPTIONS") if name in os.environ}
    try:
        # A plain session (no PGTZ, no TimeZone option): the zone the monolith's own sessions get.
        with psycopg.connect(
            host=monolith_pg.host, port=monolith_pg.port, user=monolith_pg.user, dbname=monolith_pg.dbname,
            password=monolith_pg.password, connect_timeout=10, autocommit=True,
            **KEEPALIVES, **monolith_pg.tls_options,
        ) as monolith:  # fmt: skip
            zone = monolith.execute("show TimeZone").fetchone()[0]
    except psycopg.Error as exc:
        check(False, f"could not read the monolith server's TimeZone: {' '.join(str(exc).split())}", required=False)
        return
    finally:
        os.environ.update(saved)
    same = conn.execute(
        "select now() at time zone %s = now() at time zone %s", (zone, settings.monolith_time_zone)
    ).fetchone()[0]
    check(
        bool(same),
        f"the monolith server's TimeZone ({zone}) is the zone C2C times are read in (monolith_time_zone ="
        f" {settings.monolith_time_zone})" + ("" if same else ": set the dbt var monolith_time_zone to it"),
    )


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def run_command() -> int:
    """`preflight` as the CLI runs it, against the PG* database: exit 1 if a required check fails."""
    return 0 if run(PgSettings.from_env(), project.load()) else 1
