"""Table snapshots for rollback: `python -m migration snapshot | snapshots | restore NAME`.

`dbt build` replaces the microservice's tables. Before a production run, `snapshot`
copies them (with their constraints, indexes and comments) into a schema of their
own, `<schema>_snapshot_<UTC timestamp>`, on the same server. `restore NAME` puts
a snapshot back in one transaction: the current tables are dropped and the
snapshot's tables are moved into the target schema. `snapshots` lists them, and
`drop-snapshot NAME` removes one. The documents view depends on the tables, so
after a restore re-create it with `dbt run --select listing_search_documents`.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from migration import project
from migration.pg import ConfigError, PgSettings

TABLES = (
    "listings",
    "listing_images",
    "listing_locations",
    "listing_id_map",
    "listings_rejected",
    "listing_images_rejected",
    "listing_coordinates_rejected",
)


def snapshot(conn: psycopg.Connection, schema: str, now: datetime | None = None) -> tuple[str, dict[str, int]]:
    """Copy every existing output table of `schema` into a new snapshot schema; return its name and row counts."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    name = f"{schema}_snapshot_{stamp}"
    tables = existing_tables(conn, schema)
    if not tables:
        raise ConfigError(f"nothing to snapshot: schema {schema!r} has none of the migration's tables")
    counts = {}
    with conn.transaction():
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(name)))
        for table in tables:
            source, target = sql.Identifier(schema, table), sql.Identifier(name, table)
            conn.execute(sql.SQL("create table {} (like {} including all)").format(target, source))
            cursor = conn.execute(sql.SQL("insert into {} select * from {}").format(target, source))
            counts[table] = cursor.rowcount
        conn.execute(
            sql.SQL("comment on schema {} is {}").format(
                sql.Identifier(name), sql.Literal(f"listings-migration snapshot of {schema}")
            )
        )
    return name, counts


def snapshots(conn: psycopg.Connection, schema: str) -> list[str]:
    rows = conn.execute(
        "select nspname from pg_namespace where nspname like %s and obj_description(oid, 'pg_namespace') = %s"
        " order by nspname",
        (f"{schema}\\_snapshot\\_%", f"listings-migration snapshot of {schema}"),
    ).fetchall()
    return [row[0] for row in rows]


def restore(conn: psycopg.Connection, schema: str, name: str) -> list[str]:
    """Replace the tables of `schema` with snapshot `name`, atomically; the snapshot schema is consumed."""
    if name not in snapshots(conn, schema):
        raise ConfigError(f"no snapshot {name!r} of schema {schema!r} (see `python -m migration snapshots`)")
    tables = existing_tables(conn, name)
    with conn.transaction():
        for table in tables:
            conn.execute(sql.SQL("drop table if exists {} cascade").format(sql.Identifier(schema, table)))
            conn.execute(
                sql.SQL("alter table {} set schema {}").format(sql.Identifier(name, table), sql.Identifier(schema))
            )
        conn.execute(sql.SQL("drop schema {}").format(sql.Identifier(name)))
    return tables


def drop_snapshot(conn: psycopg.Connection, schema: str, name: str) -> None:
    if name not in snapshots(conn, schema):
        raise ConfigError(f"no snapshot {name!r} of schema {schema!r}")
    conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(name)))


def existing_tables(conn: psycopg.Connection, schema: str) -> list[str]:
    """The migration's output tables that exist in `schema`, in TABLES order."""
    rows = conn.execute(
        "select table_name from information_schema.tables where table_schema = %s and table_type = 'BASE TABLE'"
        " and table_name = any(%s)",
        (schema, list(TABLES)),
    ).fetchall()
    present = {row[0] for row in rows}
    return [table for table in TABLES if table in present]


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    description = __doc__.split("\n\n")[1]
    parser = subparsers.add_parser(
        "snapshot", help="copy the migrated tables aside for rollback", description=description
    )
    parser.set_defaults(handler=_snapshot_main)
    parser = subparsers.add_parser("snapshots", help="list the table snapshots", description=description)
    parser.set_defaults(handler=_list_main)
    parser = subparsers.add_parser("restore", help="put a table snapshot back (rollback)", description=description)
    parser.add_argument("name", help="snapshot schema, as `snapshots` lists it")
    parser.set_defaults(handler=_restore_main)
    parser = subparsers.add_parser("drop-snapshot", help="delete a table snapshot", description=description)
    parser.add_argument("name", help="snapshot schema, as `snapshots` lists it")
    parser.set_defaults(handler=_drop_main)


def _snapshot_main(args: argparse.Namespace) -> int:
    schema = project.load().target_schema
    with PgSettings.from_env().connect(autocommit=True) as conn:
        name, counts = snapshot(conn, schema)
    print(f"✓ snapshot {name}: " + ", ".join(f"{table} {rows:,}" for table, rows in counts.items()))
    return 0


def _list_main(args: argparse.Namespace) -> int:
    schema = project.load().target_schema
    with PgSettings.from_env().connect(autocommit=True) as conn:
        for name in snapshots(conn, schema):
            print(name)
    return 0


def _restore_main(args: argparse.Namespace) -> int:
    schema = project.load().target_schema
    with PgSettings.from_env().connect(autocommit=True) as conn:
        tables = restore(conn, schema, args.name)
    print(f"✓ restored {', '.join(tables)} from {args.name}")
    print("  next: dbt run --select listing_search_documents   (re-creates the documents view)")
    return 0


def _drop_main(args: argparse.Namespace) -> int:
    schema = project.load().target_schema
    with PgSettings.from_env().connect(autocommit=True) as conn:
        drop_snapshot(conn, schema, args.name)
    print(f"✓ dropped {args.name}")
    return 0
