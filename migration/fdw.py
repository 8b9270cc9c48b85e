"""`listings-migration attach-monolith`: read the monolith's view from another server.

In production the monolith and the microservice are two PostgreSQL servers. This
attaches the monolith's `unified_listings` view into the target database as a
postgres_fdw foreign table in the schema the dbt var `monolith_schema` names, so
the same models run unchanged. Connection settings come from MONOLITH_PGHOST,
MONOLITH_PGPORT, MONOLITH_PGDATABASE, MONOLITH_PGUSER and MONOLITH_PGPASSWORD, and
TLS from MONOLITH_PGSSLMODE, MONOLITH_PGSSLROOTCERT, ... (each one falling back to
the caller's PGSSLMODE, PGSSLROOTCERT, ...); the target database from the usual PG*
variables. Needs a role that may create the postgres_fdw extension (or an existing
extension) and foreign servers.

The password is stored where postgres_fdw needs it, in the user mapping (readable
only by superusers and the mapping's user). It is never part of a statement's text:
it travels in the connection's startup packet as a session setting, and the user
mapping is created from it server-side, so neither the server log, nor
pg_stat_statements, nor pg_stat_activity ever sees it. It is never printed here.

Nothing this tool did not create is dropped: the foreign table is replaced only
when the view's columns changed and nothing else depends on it, and the schema and
the server are dropped without CASCADE (a sequence, function, view or another
user's mapping in the way stops the command with one line).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import psycopg
from psycopg import errors, sql

from listings_common.cli import one_line
from listings_common.errors import ConfigError
from listings_common.pg import TLS_VARIABLES, PgSettings, escape_option
from migration import project

SERVER = "monolith_server"
VIEW = "unified_listings"
PREVIOUS = VIEW + "__attach_previous"  # the old foreign table while a new one is compared with it
# Session settings (custom GUCs) that carry the mapping's user and password in the
# connection's startup packet: no statement text ever holds them.
USER_SETTING = "listings_migration.monolith_user"
PASSWORD_SETTING = "listings_migration.monolith_password"
SERVER_KEYS = ("host", "port", "dbname", "fetch_size", *TLS_VARIABLES.values())  # options this tool manages

# Creates the user mapping from the two session settings. The statement text the
# server sees (and logs, or keeps in pg_stat_statements) is this block, without the
# password. If pg_stat_statements tracks nested statements (track = all), the dynamic
# CREATE USER MAPPING inside would be kept with the password in its text: utility
# tracking is paused around it, or the attach refused when the role may not do that.
CREATE_MAPPING = """
do $attach$
declare
    server_name constant text := {server};
    tracking_paused boolean := false;
begin
    if current_setting('pg_stat_statements.track', true) = 'all'
            and current_setting('pg_stat_statements.track_utility', true) = 'on' then
        begin
            perform set_config('pg_stat_statements.track_utility', 'off', true);
            tracking_paused := true;
        exception when insufficient_privilege then
            raise exception 'pg_stat_statements.track = all on the target server would keep the monolith password'
                ' in pg_stat_statements, and this role may not turn utility tracking off; run attach-monolith'
                ' as a superuser, or ask the DBA to set pg_stat_statements.track = top';
        end;
    end if;
    begin
        if coalesce(current_setting({password_setting}, true), '') = '' then
            execute format('create user mapping for current_user server %I options (user %L)',
                           server_name, current_setting({user_setting}));
        else
            execute format('create user mapping for current_user server %I options (user %L, password %L)',
                           server_name, current_setting({user_setting}), current_setting({password_setting}));
        end if;
    exception when others then
        -- re-raised without the failed statement, which would reach the log as CONTEXT with the password
        raise exception 'cannot create the user mapping for server %: %', server_name, sqlerrm
            using errcode = sqlstate;
    end;
    if tracking_paused then
        perform set_config('pg_stat_statements.track_utility', 'on', true);
    end if;
end
$attach$
"""


def attach(target: PgSettings, monolith: PgSettings, local_schema: str, remote_schema: str) -> int:
    """Create or refresh the foreign server, user mapping and foreign table; return the view's row count."""
    startup = [f"-c {USER_SETTING}={escape_option(monolith.user)}"]
    if monolith.password:
        startup.append(f"-c {PASSWORD_SETTING}={escape_option(monolith.password)}")
    with target.connect(options=" ".join(startup)) as conn:
        _refuse_foreign_objects(conn, local_schema)
        conn.execute("create extension if not exists postgres_fdw")
        _ensure_server(conn, monolith)
        conn.execute(sql.SQL("drop user mapping if exists for current_user server {}").format(sql.Identifier(SERVER)))
        conn.execute(
            sql.SQL(CREATE_MAPPING).format(
                server=sql.Literal(SERVER),
                user_setting=sql.Literal(USER_SETTING),
                password_setting=sql.Literal(PASSWORD_SETTING),
            )
        )
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(local_schema)))
        _import_view(conn, monolith, local_schema, remote_schema)
        try:
            rows = conn.execute(
                sql.SQL("select count(*) from {}.{}").format(sql.Identifier(local_schema), sql.Identifier(VIEW))
            ).fetchone()[0]
        except psycopg.Error as exc:
            raise ConfigError(
                f"cannot read the monolith through postgres_fdw ({monolith.describe()}): {_one_line(exc, monolith)}"
            ) from None
        conn.commit()
        return rows


def detach(target: PgSettings, local_schema: str) -> None:
    """Drop the foreign table, the schema if nothing else is in it, our user mapping and the server.

    Never with CASCADE: if anything this tool did not create would go too (a view on the
    foreign table, another object in the schema, another user's mapping or foreign
    table on the server), refuse in one line and drop nothing.
    """
    with target.connect() as conn:
        _refuse_foreign_objects(conn, local_schema)
        table = sql.Identifier(local_schema, VIEW)
        _drop(conn, sql.SQL("drop foreign table if exists {}").format(table), f"foreign table {local_schema}.{VIEW}")
        _drop(conn, sql.SQL("drop schema if exists {}").format(sql.Identifier(local_schema)), f"schema {local_schema}")
        if conn.execute("select 1 from pg_foreign_server where srvname = %s", (SERVER,)).fetchone():
            conn.execute(
                sql.SQL("drop user mapping if exists for current_user server {}").format(sql.Identifier(SERVER))
            )
            _drop(conn, sql.SQL("drop server {}").format(sql.Identifier(SERVER)), f"server {SERVER}")
        conn.commit()


def server_options(monolith: PgSettings) -> dict[str, str]:
    """The foreign server's options: where the monolith is, and how to reach it (TLS)."""
    return {
        "host": monolith.host,
        "port": str(monolith.port),
        "dbname": monolith.dbname,
        "fetch_size": "10000",
        **monolith.tls_options,
    }


def monolith_settings(env: Mapping[str, str] | None = None) -> PgSettings:
    """MONOLITH_PG* settings; each TLS setting not given falls back to the caller's PG* one."""
    env = os.environ if env is None else env
    monolith = PgSettings.from_env(env, prefix="MONOLITH_PG")
    own = monolith.tls_options
    inherited = {k: v for k, v in PgSettings.from_env(env).tls_options.items() if k not in own}
    return PgSettings(
        monolith.host,
        monolith.port,
        monolith.user,
        monolith.dbname,
        monolith.password,
        tls=tuple({**inherited, **own}.items()),
    )


def _ensure_server(conn: psycopg.Connection, monolith: PgSettings) -> None:
    wanted = server_options(monolith)
    row = conn.execute("select srvoptions from pg_foreign_server where srvname = %s", (SERVER,)).fetchone()
    if row is None:
        conn.execute(
            sql.SQL("create server {} foreign data wrapper postgres_fdw options ({})").format(
                sql.Identifier(SERVER),
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in wanted.items()
                ),
            )
        )
        return
    current = dict(option.split("=", 1) for option in row[0] or [])
    changes = [
        sql.SQL("{} {} {}").format(sql.SQL("set" if key in current else "add"), sql.Identifier(key), sql.Literal(value))
        for key, value in wanted.items()
        if current.get(key) != value
    ]
    # a TLS setting given last time and not now is removed, so the server says what the environment says
    changes += [
        sql.SQL("drop {}").format(sql.Identifier(key)) for key in current if key in SERVER_KEYS and key not in wanted
    ]
    if changes:
        conn.execute(
            sql.SQL("alter server {} options ({})").format(sql.Identifier(SERVER), sql.SQL(", ").join(changes))
        )


def _import_view(conn: psycopg.Connection, monolith: PgSettings, schema: str, remote_schema: str) -> None:
    """Import the view as a foreign table; keep the existing one (and what depends on it) if nothing changed."""
    existing = _foreign_table(conn, schema, VIEW)
    if existing is not None:
        conn.execute(
            sql.SQL("alter foreign table {} rename to {}").format(
                sql.Identifier(schema, VIEW), sql.Identifier(PREVIOUS)
            )
        )
    try:
        conn.execute(
            sql.SQL("import foreign schema {} limit to ({}) from server {} into {}").format(
                sql.Identifier(remote_schema), sql.Identifier(VIEW), sql.Identifier(SERVER), sql.Identifier(schema)
            )
        )
    except psycopg.Error as exc:
        raise ConfigError(
            f"cannot read the monolith through postgres_fdw ({monolith.describe()}): {_one_line(exc, monolith)}"
        ) from None
    imported = _foreign_table(conn, schema, VIEW)
    if imported is None:
        raise ConfigError(f"the monolith has no view {remote_schema}.{VIEW} at {monolith.describe()}")
    if existing is None:
        return
    if _definition(conn, existing) == _definition(conn, imported):
        conn.execute(sql.SQL("drop foreign table {}").format(sql.Identifier(schema, VIEW)))
        conn.execute(
            sql.SQL("alter foreign table {} rename to {}").format(
                sql.Identifier(schema, PREVIOUS), sql.Identifier(VIEW)
            )
        )
        return
    _drop(
        conn,
        sql.SQL("drop foreign table {}").format(sql.Identifier(schema, PREVIOUS)),
        f"the old foreign table {schema}.{VIEW} (the monolith's view changed)",
        hint="drop them (dbt build re-creates its own views) and run attach-monolith again",
    )


def _foreign_table(conn: psycopg.Connection, schema: str, name: str) -> int | None:
    row = conn.execute(
        "select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s and c.relkind = 'f'",
        (schema, name),
    ).fetchone()
    return row[0] if row else None


def _definition(conn: psycopg.Connection, table: int) -> list[tuple]:
    """What the foreign table reads: its server, table options and columns (with their options)."""
    return conn.execute(
        "select s.srvname, t.ftoptions, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),"
        " a.attnotnull, a.attcollation, a.attfdwoptions"
        " from pg_foreign_table t join pg_foreign_server s on s.oid = t.ftserver"
        " join pg_attribute a on a.attrelid = t.ftrelid and a.attnum > 0 and not a.attisdropped"
        " where t.ftrelid = %s order by a.attnum",
        (table,),
    ).fetchall()


def _refuse_foreign_objects(conn: psycopg.Connection, schema: str) -> None:
    """The local schema holds only what attach-monolith puts there: the foreign table on our server.

    Anything else (a real table or view, a sequence, function, type, another foreign
    table, an extension) means the schema is someone else's: refuse, touching nothing.
    """
    others = conn.execute(
        """
        select pg_describe_object(d.classid, d.objid, d.objsubid)
        from pg_depend d
        join pg_namespace n on n.oid = d.refobjid
        where d.refclassid = 'pg_namespace'::regclass
          and n.nspname = %s
          and not (
              d.classid = 'pg_class'::regclass
              and exists (
                  select from pg_class c
                  join pg_foreign_table t on t.ftrelid = c.oid
                  join pg_foreign_server s on s.oid = t.ftserver
                  where c.oid = d.objid and c.relname in (%s, %s) and s.srvname = %s
              )
          )
        order by 1
        """,
        (schema, VIEW, PREVIOUS, SERVER),
    ).fetchall()
    if others:
        names = ", ".join(row[0] for row in others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise ConfigError(
            f"schema {schema!r} in the target database holds objects attach-monolith did not create ({names});"
            " it is left alone: choose another schema with --schema / MONOLITH_SCHEMA"
        )


def _drop(conn: psycopg.Connection, statement: sql.Composable, what: str, hint: str | None = None) -> None:
    """Run a DROP without CASCADE; if something else depends on the object, refuse in one line."""
    try:
        with conn.transaction():
            conn.execute(statement)
    except errors.DependentObjectsStillExist as exc:
        lines = [line.strip() for line in (exc.diag.message_detail or "").splitlines() if line.strip()]
        shown = "; ".join(lines[:3]) + (f"; and {len(lines) - 3} more" if len(lines) > 3 else "")
        raise ConfigError(
            f"not dropping {what}: objects attach-monolith did not create depend on it ({shown});"
            f" {hint or 'drop or move them first, or leave it attached'}"
        ) from None


def _one_line(exc: psycopg.Error, monolith: PgSettings) -> str:
    line = one_line(exc)
    return line.replace(monolith.password, "***") if monolith.password else line


def attach_command(schema: str | None = None, remote_schema: str = "monolith") -> int:
    """`attach-monolith` as the CLI runs it: into the PG* database, from the MONOLITH_PG* server."""
    schema = schema or project.load().monolith_schema
    monolith = monolith_settings()
    rows = attach(PgSettings.from_env(), monolith, schema, remote_schema)
    print(f"✓ {schema}.{VIEW} now reads {monolith.describe()} ({rows:,} rows)")
    return 0


def detach_command(schema: str | None = None) -> int:
    """`detach-monolith` as the CLI runs it, in the PG* database."""
    schema = schema or project.load().monolith_schema
    detach(PgSettings.from_env(), schema)
    print(f"✓ dropped foreign table {schema}.{VIEW}, schema {schema} and server {SERVER}")
    return 0
