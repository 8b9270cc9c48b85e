"""`python -m migration attach-monolith`: read the monolith's view from another server.

In production the monolith and the microservice are two PostgreSQL servers. This
attaches the monolith's `unified_listings` view into the target database as a
postgres_fdw foreign table in the schema the dbt var `monolith_schema` names, so
the same models run unchanged. Connection settings come from MONOLITH_PGHOST,
MONOLITH_PGPORT, MONOLITH_PGDATABASE, MONOLITH_PGUSER and MONOLITH_PGPASSWORD;
the target database from the usual PG* variables. Needs a role that may create
the postgres_fdw extension (or an existing extension) and foreign servers.

The password is stored where postgres_fdw needs it, in the user mapping (readable
only by superusers and the mapping's user); it is never printed or logged here.
"""

from __future__ import annotations

import argparse

import psycopg
from psycopg import sql

from migration import project
from migration.pg import ConfigError, PgSettings

SERVER = "monolith_server"
VIEW = "unified_listings"


def attach(target: PgSettings, monolith: PgSettings, local_schema: str, remote_schema: str) -> int:
    """Create or refresh the foreign server, user mapping and foreign table; return the view's row count."""
    with target.connect() as conn:
        _refuse_to_shadow_real_tables(conn, local_schema)
        server_options = {
            "host": monolith.host,
            "port": str(monolith.port),
            "dbname": monolith.dbname,
            "fetch_size": "10000",
        }
        conn.execute("create extension if not exists postgres_fdw")
        exists = conn.execute("select 1 from pg_foreign_server where srvname = %s", (SERVER,)).fetchone()
        if exists:
            conn.execute(
                sql.SQL("alter server {} options ({})").format(sql.Identifier(SERVER), _options(server_options, "set"))
            )
        else:
            conn.execute(
                sql.SQL("create server {} foreign data wrapper postgres_fdw options ({})").format(
                    sql.Identifier(SERVER), _options(server_options)
                )
            )
        mapping = {"user": monolith.user}
        if monolith.password:
            mapping["password"] = monolith.password
        conn.execute(sql.SQL("drop user mapping if exists for current_user server {}").format(sql.Identifier(SERVER)))
        conn.execute(
            sql.SQL("create user mapping for current_user server {} options ({})").format(
                sql.Identifier(SERVER), _options(mapping)
            )
        )
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(local_schema)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(local_schema)))
        conn.execute(
            sql.SQL("import foreign schema {} limit to ({}) from server {} into {}").format(
                sql.Identifier(remote_schema),
                sql.Identifier(VIEW),
                sql.Identifier(SERVER),
                sql.Identifier(local_schema),
            )
        )
        imported = conn.execute(
            "select 1 from information_schema.tables where table_schema = %s and table_name = %s",
            (local_schema, VIEW),
        ).fetchone()
        if not imported:
            raise ConfigError(f"the monolith has no view {remote_schema}.{VIEW} at {monolith.describe()}")
        try:
            rows = conn.execute(
                sql.SQL("select count(*) from {}.{}").format(sql.Identifier(local_schema), sql.Identifier(VIEW))
            ).fetchone()[0]
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split())
            raise ConfigError(
                f"cannot read the monolith through postgres_fdw ({monolith.describe()}): {reason}"
            ) from None
        conn.commit()
        return rows


def detach(target: PgSettings, local_schema: str) -> None:
    """Drop the foreign schema and the server (with its user mappings)."""
    with target.connect() as conn:
        _refuse_to_shadow_real_tables(conn, local_schema)
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(local_schema)))
        conn.execute(sql.SQL("drop server if exists {} cascade").format(sql.Identifier(SERVER)))
        conn.commit()


def _refuse_to_shadow_real_tables(conn: psycopg.Connection, schema: str) -> None:
    """The local schema is dropped and recreated: never do that to one holding real tables or views."""
    real = conn.execute(
        "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relkind in ('r', 'v', 'm', 'p')",
        (schema,),
    ).fetchone()[0]
    if real:
        raise ConfigError(
            f"schema {schema!r} in the target database holds real tables or views (is the monolith on this"
            " server already?); choose another with --schema / MONOLITH_SCHEMA"
        )


def _options(values: dict[str, str], verb: str = "") -> sql.Composed:
    prefix = sql.SQL(verb + " ") if verb else sql.SQL("")
    return sql.SQL(", ").join(
        prefix + sql.SQL("{} {}").format(sql.Identifier(key), sql.Literal(value)) for key, value in values.items()
    )


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    for name, handler, text in (
        ("attach-monolith", _attach_main, "attach the monolith's unified_listings view via postgres_fdw"),
        ("detach-monolith", _detach_main, "drop the postgres_fdw foreign schema and server"),
    ):
        parser = subparsers.add_parser(name, help=text, description=__doc__.split("\n\n")[1])
        parser.add_argument(
            "--schema",
            help="local schema for the foreign table (default: MONOLITH_SCHEMA or 'monolith', the dbt var)",
        )
        if name == "attach-monolith":
            parser.add_argument(
                "--remote-schema", default="monolith", help="schema of the view on the monolith (default: monolith)"
            )
        parser.set_defaults(handler=handler)


def _attach_main(args: argparse.Namespace) -> int:
    schema = args.schema or project.load().monolith_schema
    monolith = PgSettings.from_env(prefix="MONOLITH_PG")
    rows = attach(PgSettings.from_env(), monolith, schema, args.remote_schema)
    print(f"✓ {schema}.{VIEW} now reads {monolith.describe()} ({rows:,} rows)")
    return 0


def _detach_main(args: argparse.Namespace) -> int:
    schema = args.schema or project.load().monolith_schema
    detach(PgSettings.from_env(), schema)
    print(f"✓ dropped foreign schema {schema} and server {SERVER}")
    return 0
