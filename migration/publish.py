"""`listings-migration publish`: the tested result of `dbt build` into the microservice's tables.

dbt builds and tests everything in the migration's own schemas (`<schema>_staged`,
`<schema>_migration`). Publish moves the staged `listings`, `listing_images` and
`listing_locations` into the microservice's own tables, in one transaction, by
inserting, updating and deleting the migration's own rows: it never drops,
recreates, truncates or alters the service's tables, and never touches a row the
service wrote itself. The ledger in `<schema>_migration` says which rows are the
migration's (`published_listings`, `published_images`) and records every run
(`publish_runs`); a re-run publishes only what changed since the last one, so
re-running build + publish is the catch-up of a live monolith.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from listings_common.errors import EXIT_DATA, EXIT_INTERRUPTED, ConfigError, ListingsError
from listings_common.pg import PgSettings
from migration import project

TABLES = ("listings", "listing_images", "listing_locations")
# The staged table each service table is published from, and its key there.
KEYS = {"listings": "id", "listing_images": "id", "listing_locations": "listing_id"}
# The largest monolith id (its ids are `integer`).
INTEGER_MAX = 2**31 - 1
# Published and still in the source, but deleted by the service since.
GONE = "deleted by the service"


class Refused(ListingsError):
    """Publish will not run: one line for the operator, exit 1, nothing changed.

    Reported by `listings_common.cli.run` as "... error: refused: <message>; nothing changed".
    """

    exit_code = EXIT_DATA

    def __str__(self) -> str:
        return f"refused: {super().__str__()}; nothing changed"


@dataclass(frozen=True)
class Build:
    """The dbt build whose staged result is published."""

    invocation_id: str
    finished_at: object
    target_schema: str
    service_schema: str
    staged_schema: str
    settings: dict


@dataclass
class TableCounts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    quarantined: int = 0
    skipped: int = 0  # ours, but the service deleted it: never re-created

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Plan:
    build: Build
    source_rows: int
    staged_listings: int
    quarantined_by_build: int
    published_before: int
    counts: dict[str, TableCounts] = field(default_factory=lambda: {t: TableCounts() for t in TABLES})
    not_carried: dict[str, list[str]] = field(default_factory=dict)
    quarantine_reasons: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def quarantined_rows(self) -> int:
        return self.quarantined_by_build + self.counts["listings"].quarantined

    @property
    def published_rows(self) -> int:
        return self.staged_listings - self.counts["listings"].quarantined


@dataclass(frozen=True)
class Options:
    schema: str | None  # the dbt target schema; None: the one this database has a build ledger for
    plan_only: bool = False
    allow_large_change: bool = False
    max_delete_share: float = 0.10
    max_update_share: float = 0.50
    lock_timeout: str = "5s"
    timings: bool = False


def _q(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


class Publisher:
    def __init__(self, conn: psycopg.Connection, options: Options, out: Callable[[str], None]) -> None:
        self.conn = conn
        self.options = options
        self.out = out
        self.schema = project.target_schema(conn, options.schema)
        self.state = self.schema + project.LEDGER_SUFFIX
        self.timings: list[tuple[str, float, int]] = []

    def timed(self, query: sql.Composable, params: tuple | dict = (), label: str | None = None) -> psycopg.Cursor:
        """Execute, and keep how long it took and how many rows it touched (printed with --timings)."""
        started = time.monotonic()
        cursor = self.conn.execute(query, params)
        text = label or " ".join(query.as_string(self.conn).split())
        self.timings.append((text[:90], time.monotonic() - started, cursor.rowcount))
        return cursor

    # -- helpers ----------------------------------------------------------------------

    def one(self, query: sql.Composable, params: tuple | dict = ()) -> tuple | None:
        return self.conn.execute(query, params).fetchone()

    def scalar(self, query: sql.Composable, params: tuple | dict = ()) -> object:
        row = self.one(query, params)
        return row[0] if row else None

    def ledger(self, name: str) -> sql.Identifier:
        return _q(self.state, name)

    def service(self, table: str) -> sql.Identifier:
        return _q(self.build.service_schema, table)

    def staged(self, table: str) -> sql.Identifier:
        return _q(self.build.staged_schema, table)

    def exists(self, schema: str, name: str) -> bool:
        return bool(self.scalar("select to_regclass(%s) is not null", (f'"{schema}"."{name}"',)))

    def columns(self, schema: str, table: str) -> list[tuple[str, bool, bool]]:
        """(name, not_null, has_default) of each column, in order."""
        return self.conn.execute(
            "select attname, attnotnull, atthasdef or attidentity <> '' or attgenerated <> ''"
            " from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum",
            (f'"{schema}"."{table}"',),
        ).fetchall()

    # -- what may be published --------------------------------------------------------

    def latest_build(self) -> Build:
        log = f"{self.state}.dbt_builds"
        if not self.exists(self.state, "dbt_builds"):
            raise Refused(f"no dbt build has run here ({log} does not exist): run `dbt build` first")
        row = self.one(
            sql.SQL(
                "select invocation_id::text, command, status, is_complete_selection, finished_at, failures,"
                " target_schema, service_schema, staged_schema, settings, started_at"
                " from {} order by started_at desc limit 1"
            ).format(self.ledger("dbt_builds"))
        )
        if row is None:
            raise Refused(f"no dbt build has run here ({log} is empty): run `dbt build` first")
        invocation, command, status, complete, finished, failures, target, service, staged, settings, started = row
        when = f"dbt {command} {invocation} started {started:%Y-%m-%d %H:%M:%S %Z}"
        if command != "build":
            raise Refused(
                f"the staged result was last changed by `dbt {command}` ({when}), not by a tested `dbt build`"
            )
        if finished is None or status == "running":
            raise Refused(f"the last {when} never finished (killed?): its staged tables may be half built")
        if status != "passed":
            raise Refused(f"the last {when} failed ({failures or 'see its log'}): nothing to publish")
        if not complete:
            raise Refused(f"the last {when} ran only part of the project (--select/--exclude): run a full `dbt build`")
        return Build(invocation, finished, target, service, staged, settings)

    def check_tables(self) -> None:
        b = self.build
        for table in (*TABLES, "listing_id_map", "listings_rejected"):
            if not self.exists(b.staged_schema, table):
                raise Refused(f"staged table {b.staged_schema}.{table} is missing: run `dbt build`")
        for table in TABLES:
            if not self.exists(b.service_schema, table):
                raise Refused(
                    f"the microservice's table {b.service_schema}.{table} does not exist: its own migrations create it"
                )

    def carried(self, table: str) -> list[str]:
        """Columns published into `table`: the staged ones the service's table has. The rest is reported."""
        staged = [name for name, _, _ in self.columns(self.build.staged_schema, table)]
        target = self.columns(self.build.service_schema, table)
        names = {name for name, _, _ in target}
        carried = [name for name in staged if name in names]
        missing = [name for name in staged if name not in names]
        if missing:
            self.plan.not_carried[table] = missing
        unfilled = [
            name for name, not_null, has_default in target if not_null and not has_default and name not in carried
        ]
        if unfilled:
            raise Refused(
                f"{self.build.service_schema}.{table} has NOT NULL column(s) without a default that the migration"
                f" does not fill: {', '.join(unfilled)}; give them a default in the service's schema"
            )
        return carried

    def check_settings(self) -> None:
        last = self.one(
            sql.SQL("select settings from {} order by run_id desc limit 1").format(self.ledger("publish_runs"))
        )
        if not last:
            return
        for key in ("b2c_id_offset", "listing_uuid_namespace"):
            before, now = last[0].get(key), self.build.settings.get(key)
            if before != now:
                raise Refused(
                    f"{key} was {before} for the last publish and is {now} for this build: every id or UUID would"
                    " change; build with the published setting"
                )

    # -- the ledger -------------------------------------------------------------------

    def ensure_ledger(self) -> None:
        if self.options.plan_only and not self.exists(self.state, "published_listings"):
            # --plan before the first publish: an empty ledger of this session's own, so that the plan
            # creates nothing in the database
            self.state = "pg_temp"
        else:
            self.conn.execute(sql.SQL("create schema if not exists {}").format(_q(self.state)))
        self.conn.execute(
            sql.SQL("""
            create table if not exists {runs} (
                run_id bigint generated always as identity primary key,
                dbt_invocation_id uuid not null,
                started_at timestamptz not null,
                finished_at timestamptz not null,
                service_schema text not null,
                source_rows bigint not null,
                published_rows bigint not null,
                quarantined_rows bigint not null,
                counts jsonb not null,
                settings jsonb not null,
                constraint source_rows_accounted_for check (source_rows = published_rows + quarantined_rows)
            );
            comment on table {runs} is
                'One row per listings-migration publish: counts per table; source = published + quarantined.';
            create table if not exists {listings} (
                listing_id bigint primary key,
                source_type text not null,
                source_id integer not null,
                listing_uuid uuid not null,
                source_status text,
                listing_hash text not null,
                location_hash text,
                version bigint not null,
                first_run bigint not null,
                deleted_run bigint
            );
            comment on table {listings} is
                'The listings the migration published (its own rows; the service''s own never appear here) and the'
                ' id map to the monolith. version = the publish run that last changed the listing, its images or'
                ' its location; deleted_run is set when the monolith row went away (the row is kept).';
            create index if not exists published_listings_version_idx on {listings} (version);
            create table if not exists {images} (
                image_id bigint primary key,
                listing_id bigint not null,
                image_hash text not null,
                version bigint not null
            );
            comment on table {images} is 'The listing images the migration published (its own rows).';
            create index if not exists published_images_listing_id_idx on {images} (listing_id);
            create table if not exists {quarantine} (
                run_id bigint not null,
                table_name text not null,
                id bigint not null,
                reason text not null,
                primary key (run_id, table_name, id)
            );
            comment on table {quarantine} is
                'Rows a publish could not write (their id is taken by a row the service wrote itself).';
            """).format(
                runs=self.ledger("publish_runs"),
                listings=self.ledger("published_listings"),
                images=self.ledger("published_images"),
                quarantine=self.ledger("publish_quarantine"),
            )
        )

    # -- the diff -----------------------------------------------------------------------

    def stage_diff(self) -> None:
        """Temp tables of what changes, computed before the write transaction: each statement
        commits, so no lock on the service's tables outlives the statement that read them."""
        c = self.carried_columns
        # A row's content hash: PostgreSQL's 64-bit hash of the record of its carried columns, computed
        # from the values without rendering them as text (a sixth of md5(row(...)::text)'s CPU; a catch-up
        # hashes every staged row). A changed row keeps its old hash with a probability of 2^-64.
        hashes = {
            table: sql.SQL("hash_record_extended(row({}), 0)::text").format(
                sql.SQL(", ").join(_q("s", name) for name in c[table])
            )
            for table in TABLES
        }
        # Ledgers written before that hold md5(row(...)::text), 32 hex digits (a bigint's text never
        # has 32 characters): a row whose ledger hash is of that kind is compared the old way once,
        # and its ledger hash rewritten (record), so a catch-up across the upgrade changes nothing.
        legacy = {
            table: sql.SQL("md5(row({})::text)").format(sql.SQL(", ").join(_q("s", name) for name in c[table]))
            for table in TABLES
        }
        L, Img, Loc = self.service("listings"), self.service("listing_images"), self.service("listing_locations")
        fmt = {
            "staged_listings": self.staged("listings"),
            "staged_images": self.staged("listing_images"),
            "staged_locations": self.staged("listing_locations"),
            "L": L,
            "I": Img,
            "Loc": Loc,
            "pl": self.ledger("published_listings"),
            "pi": self.ledger("published_images"),
            "listing_hash": hashes["listings"],
            "image_hash": hashes["listing_images"],
            "location_hash": hashes["listing_locations"],
            "legacy_listing_hash": legacy["listings"],
            "legacy_image_hash": legacy["listing_images"],
            "legacy_location_hash": legacy["listing_locations"],
        }
        statements = [
            # Every staged listing, against the ledger: unchanged when the ledger holds it live with the
            # same content hash. Only the others are looked up in the service's table (index probes),
            # so a catch-up reads the service's tables for what changed, not for every row.
            """
            create temp table diff_listings as
            select
                s.id, s.listing_hash, s.uuid,
                pl.listing_id is not null as is_ours, pl.deleted_run is not null as was_deleted,
                case when pl.deleted_run is null and pl.listing_hash = s.listing_hash then 'unchanged' end as action,
                false as rehashed
            from (select s.id, s.uuid, {listing_hash} as listing_hash from {staged_listings} as s) as s
            left join {pl} as pl on pl.listing_id = s.id
            """,
            """
            update diff_listings as d set action = 'unchanged', rehashed = true
            from {staged_listings} as s, {pl} as pl
            where d.action is null and d.is_ours and not d.was_deleted and s.id = d.id and pl.listing_id = d.id
                and length(pl.listing_hash) = 32 and pl.listing_hash = {legacy_listing_hash}
            """,
            """
            update diff_listings as d set action = case
                when exists (select from {L} as t where t.id = d.id)
                    then case when d.is_ours then 'update' else 'collision' end
                when not d.is_ours or d.was_deleted then 'insert'
                else 'skipped'
            end
            where d.action is null
            """,
            # A new listing whose UUID the service already used for a listing of its own.
            """
            update diff_listings as d set action = 'uuid collision'
            where d.action = 'insert' and exists (select from {L} as t where t.uuid = d.uuid and t.id <> d.id)
            """,
            "create unique index on diff_listings (id)",
            "analyze diff_listings",
            # Published, still live in the ledger, gone from the staged result (removed from the monolith,
            # or now quarantined): deleted (or marked deleted) when the service still has it.
            """
            create temp table gone_listings as
            select pl.listing_id as id, exists (select from {L} as t where t.id = pl.listing_id) as in_service
            from {pl} as pl
            where pl.deleted_run is null
                and not exists (select from {staged_listings} as s where s.id = pl.listing_id)
            """,
            # Locations and images of the listings this run keeps (inserted, updated, unchanged):
            # unchanged by the ledger's hashes, else looked up in the service's tables.
            """
            create temp table diff_locations as
            select
                s.listing_id, s.location_hash, d.action as listing_action,
                case
                    when d.action <> 'insert' and pl.location_hash = s.location_hash then 'unchanged'
                end as action,
                false as rehashed
            from (select s.listing_id, {location_hash} as location_hash from {staged_locations} as s) as s
            inner join diff_listings as d on d.id = s.listing_id and d.action in ('insert', 'update', 'unchanged')
            left join {pl} as pl on pl.listing_id = s.listing_id
            """,
            """
            update diff_locations as d set action = 'unchanged', rehashed = true
            from {staged_locations} as s, {pl} as pl
            where d.action is null and d.listing_action <> 'insert' and s.listing_id = d.listing_id
                and pl.listing_id = d.listing_id and length(pl.location_hash) = 32
                and pl.location_hash = {legacy_location_hash}
            """,
            """
            update diff_locations as d set action = case
                when d.listing_action = 'insert' then 'insert'
                when exists (select from {Loc} as t where t.listing_id = d.listing_id) then 'update'
                when exists (select from {L} as t where t.id = d.listing_id) then 'insert'
                else 'skipped'
            end
            where d.action is null
            """,
            "analyze diff_locations",
            """
            create temp table diff_images as
            select
                s.id, s.listing_id, s.image_hash, k.action as listing_action, pi.image_id is not null as is_ours,
                case
                    when k.id is null or k.action in ('collision', 'uuid collision') then 'listing not published'
                    when k.action = 'skipped' then 'skipped'
                    when k.action <> 'insert' and pi.image_hash = s.image_hash and pi.listing_id = s.listing_id
                        then 'unchanged'
                end as action,
                false as rehashed
            from (select s.id, s.listing_id, {image_hash} as image_hash from {staged_images} as s) as s
            left join diff_listings as k on k.id = s.listing_id
            left join {pi} as pi on pi.image_id = s.id
            """,
            """
            update diff_images as d set action = 'unchanged', rehashed = true
            from {staged_images} as s, {pi} as pi
            where d.action is null and d.listing_action <> 'insert' and s.id = d.id and pi.image_id = d.id
                and pi.listing_id = d.listing_id and length(pi.image_hash) = 32 and pi.image_hash = {legacy_image_hash}
            """,
            """
            update diff_images as d set action = case
                when exists (select from {I} as t where t.id = d.id)
                    then case when d.is_ours then 'update' else 'collision' end
                when d.is_ours then 'skipped'
                when d.listing_action = 'insert' or exists (select from {L} as t where t.id = d.listing_id)
                    then 'insert'
                else 'skipped'
            end
            where d.action is null
            """,
            "create unique index on diff_images (id)",
            "analyze diff_images",
            # Our images that are no longer staged (for a listing we keep; a deleted listing's
            # images go with it by the service's ON DELETE CASCADE).
            """
            create temp table gone_images as
            select pi.image_id as id, pi.listing_id
            from {pi} as pi
            where not exists (select from diff_images as d where d.id = pi.image_id and d.action <> 'collision')
            """,
        ]
        for statement in statements:
            self.timed(sql.SQL(statement).format(**fmt))
            # Each read of the service's tables is its own transaction: its share lock goes with it,
            # so the service's DDL (and the reads that would queue behind that) never waits on the diff.
            self.conn.commit()
        counts = self.plan.counts
        for action, n in self.conn.execute("select action, count(*) from diff_listings group by 1").fetchall():
            self._count(counts["listings"], action, n)
        for action, n in self.conn.execute("select action, count(*) from diff_locations group by 1").fetchall():
            self._count(counts["listing_locations"], action, n)
        for action, n in self.conn.execute("select action, count(*) from diff_images group by 1").fetchall():
            self._count(counts["listing_images"], action, n)
        deletes = self.scalar("select count(*) from gone_listings where in_service")
        counts["listings"].deleted = deletes
        counts["listing_locations"].deleted = 0  # cascaded with their listing
        counts["listing_images"].deleted = self.scalar(
            "select count(*) from gone_images as g"
            " where not exists (select from gone_listings as l where l.id = g.listing_id)"
        )
        self.plan.quarantine_reasons = self.conn.execute(
            "select 'listings', action, count(*) from diff_listings where action in ('collision', 'uuid collision')"
            " group by 2 union all select 'listing_images', action, count(*) from diff_images"
            " where action in ('collision', 'listing not published') group by 2"
        ).fetchall()

    @staticmethod
    def _count(counts: TableCounts, action: str, n: int) -> None:
        if action in ("insert", "update", "unchanged", "skipped"):
            name = {"insert": "inserted", "update": "updated"}.get(action, action)
            setattr(counts, name, getattr(counts, name) + n)
        else:
            counts.quarantined += n

    def check_plausible(self) -> None:
        before = self.plan.published_before
        if before == 0 or self.options.allow_large_change:
            return
        listings = self.plan.counts["listings"]
        for what, n, share in (
            ("delete", listings.deleted, self.options.max_delete_share),
            ("update", listings.updated, self.options.max_update_share),
        ):
            if n > max(share * before, 10):
                raise Refused(
                    f"this publish would {what} {n:,} of the {before:,} published listings ({n / before:.0%}, more"
                    f" than the {share:.0%} a catch-up plausibly changes): is the monolith read through a broken"
                    f" link, or is this the wrong database ({self.build.staged_schema} from build"
                    f" {self.build.invocation_id})? --allow-large-change to publish it anyway"
                )

    # -- the writes ----------------------------------------------------------------------

    def apply(self, run_id: int) -> None:
        c = self.carried_columns
        soft = self.build.settings.get("soft_delete_column")
        soft_time = self.build.settings.get("soft_delete_time_column")
        self.conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(self.options.lock_timeout)))

        def cols(table: str, prefix: str | None = None) -> sql.Composable:
            return sql.SQL(", ").join(_q(prefix, n) if prefix else _q(n) for n in c[table])

        def assignments(table: str, skip: tuple[str, ...]) -> sql.Composable:
            return sql.SQL(", ").join(sql.SQL("{} = s.{}").format(_q(n), _q(n)) for n in c[table] if n not in skip)

        L, Img, Loc = self.service("listings"), self.service("listing_images"), self.service("listing_locations")
        run = sql.Literal(run_id)
        # The ledger first: it reads only the diff, so the row locks the writes below take on the
        # service's tables are held for the writes and their verification, nothing else.
        self.record(run)
        # Deletes first, with the service's triggers and ON DELETE CASCADE as it defined them.
        if soft:
            marks = [sql.SQL("{} = true").format(_q(soft))]
            if soft_time:
                marks.append(sql.SQL("{} = now()").format(_q(soft_time)))
            self.timed(
                sql.SQL(
                    "update {L} as t set {marks} from gone_listings as g where t.id = g.id and g.in_service"
                ).format(L=L, marks=sql.SQL(", ").join(marks))
            )
        else:
            self.timed(
                sql.SQL("delete from {L} as t using gone_listings as g where t.id = g.id and g.in_service").format(L=L)
            )
        self.timed(
            sql.SQL(
                "delete from {I} as t using gone_images as g where t.id = g.id"
                " and not exists (select from gone_listings as l where l.id = g.listing_id)"
            ).format(I=Img)
        )
        # Inserts: the service's foreign keys and insert triggers apply.
        self.timed(
            sql.SQL(
                "insert into {L} ({cols}) select {scols} from {S} as s"
                " inner join diff_listings as d on d.id = s.id where d.action = 'insert'"
            ).format(L=L, cols=cols("listings"), scols=cols("listings", "s"), S=self.staged("listings"))
        )
        self.timed(
            sql.SQL(
                "insert into {T} ({cols}) select {scols} from {S} as s"
                " inner join diff_locations as d on d.listing_id = s.listing_id where d.action = 'insert'"
            ).format(
                T=Loc, cols=cols("listing_locations"), scols=cols("listing_locations", "s"),
                S=self.staged("listing_locations"),
            )
        )  # fmt: skip
        self.timed(
            sql.SQL(
                "insert into {T} ({cols}) select {scols} from {S} as s"
                " inner join diff_images as d on d.id = s.id where d.action = 'insert'"
            ).format(
                T=Img, cols=cols("listing_images"), scols=cols("listing_images", "s"), S=self.staged("listing_images")
            )
        )
        # Updates carry the monolith's values as they are: the service's UPDATE triggers (which
        # stamp updated_at) are not fired for them when this role may set session_replication_role.
        self.replica = self._try_replica_role()
        undelete = []
        if soft:
            undelete.append(sql.SQL("{} = false").format(_q(soft)))
            if soft_time:
                undelete.append(sql.SQL("{} = null").format(_q(soft_time)))
        listing_set = sql.SQL(", ").join([assignments("listings", ("id",)), *undelete])
        self.timed(
            sql.SQL(
                "update {L} as t set {set} from {S} as s, diff_listings as d"
                " where d.action = 'update' and s.id = d.id and t.id = s.id"
            ).format(L=L, set=listing_set, S=self.staged("listings"))
        )
        self.timed(
            sql.SQL(
                "update {T} as t set {set} from {S} as s, diff_locations as d"
                " where d.action = 'update' and s.listing_id = d.listing_id and t.listing_id = s.listing_id"
            ).format(T=Loc, set=assignments("listing_locations", ("listing_id",)), S=self.staged("listing_locations"))
        )
        self.timed(
            sql.SQL(
                "update {T} as t set {set} from {S} as s, diff_images as d"
                " where d.action = 'update' and s.id = d.id and t.id = s.id"
            ).format(T=Img, set=assignments("listing_images", ("id",)), S=self.staged("listing_images"))
        )
        if self.replica:
            self.conn.execute("set local session_replication_role = origin")
        self.verify()
        self.advance_sequences()

    def _try_replica_role(self) -> bool:
        self.conn.execute("savepoint replica_role")
        try:
            self.conn.execute("set local session_replication_role = replica")
        except psycopg.errors.InsufficientPrivilege:
            self.conn.execute("rollback to savepoint replica_role")
            return False
        self.conn.execute("release savepoint replica_role")
        return True

    def verify(self) -> None:
        """Every carried column of every row this run wrote equals the staged value."""
        c = self.carried_columns
        checks = [
            ("listings", "diff_listings", "id", "id"),
            ("listing_images", "diff_images", "id", "id"),
            ("listing_locations", "diff_locations", "listing_id", "listing_id"),
        ]
        for table, diff, key, diff_key in checks:
            names = [n for n in c[table]]
            differ = self.timed(
                sql.SQL(
                    "select count(*) from {S} as s inner join {D} as d on d.{dk} = s.{k}"
                    " left join {T} as t on t.{k} = s.{k}"
                    " where d.action in ('insert', 'update') and (t.{k} is null or row({s}) is distinct from row({t}))"
                ).format(
                    S=self.staged(table), D=_q(diff), dk=_q(diff_key), k=_q(key), T=self.service(table),
                    s=sql.SQL(", ").join(_q("s", n) for n in names), t=sql.SQL(", ").join(_q("t", n) for n in names),
                )
            ).fetchone()[0]  # fmt: skip
            if differ:
                hint = (
                    "" if self.replica
                    else "; the service's triggers rewrite them on UPDATE and this role may not set"
                    " session_replication_role (GRANT SET ON PARAMETER session_replication_role TO it)"
                )  # fmt: skip
                raise Refused(
                    f"{differ:,} row(s) of {self.build.service_schema}.{table} differ from the staged values after"
                    f" the writes{hint}; rolled back, nothing changed"
                )

    def record(self, run: sql.Literal) -> None:
        pl, pi = self.ledger("published_listings"), self.ledger("published_images")
        S = self.staged("listing_id_map")
        statements = [
            # the listings whose row, location or images this run wrote: their version is this run
            """
            create temp table touched_listings on commit drop as
            select id from diff_listings where action in ('insert', 'update')
            union select listing_id from diff_locations where action <> 'unchanged'
            union select listing_id from diff_images where action in ('insert', 'update')
            union select listing_id from gone_images
            """,
            """
            insert into {pl} as p (listing_id, source_type, source_id, listing_uuid, source_status, listing_hash,
                location_hash, version, first_run, deleted_run)
            select d.id, m.source_type, m.source_id, m.listing_uuid, m.source_status, d.listing_hash,
                loc.location_hash, {run}, {run}, null
            from touched_listings as touched
            inner join diff_listings as d on d.id = touched.id
            inner join {S} as m on m.listing_id = d.id
            left join diff_locations as loc on loc.listing_id = d.id
            where d.action in ('insert', 'update', 'unchanged')
            on conflict (listing_id) do update set
                listing_hash = excluded.listing_hash, location_hash = excluded.location_hash,
                source_status = excluded.source_status, version = excluded.version, deleted_run = null
            """,
            "update {pl} as p set deleted_run = {run}, version = {run}"
            " from gone_listings as g where p.listing_id = g.id",
            # ledger hashes of the earlier kind, of rows that did not change: the current kind (version kept)
            "update {pl} as p set listing_hash = d.listing_hash from diff_listings as d"
            " where d.rehashed and p.listing_id = d.id",
            "update {pl} as p set location_hash = d.location_hash from diff_locations as d"
            " where d.rehashed and p.listing_id = d.listing_id",
            "update {pi} as p set image_hash = d.image_hash from diff_images as d"
            " where d.rehashed and p.image_id = d.id",
            "delete from {pi} as p using gone_images as g where p.image_id = g.id",
            """
            delete from {pi} as p using gone_listings as g where p.listing_id = g.id
            """,
            """
            insert into {pi} (image_id, listing_id, image_hash, version)
            select id, listing_id, image_hash, {run} from diff_images where action in ('insert', 'update')
            on conflict (image_id) do update set
                listing_id = excluded.listing_id, image_hash = excluded.image_hash, version = excluded.version
            """,
            """
            insert into {q} (run_id, table_name, id, reason)
            select {run}, 'listings', id,
                case action
                    when 'collision' then 'id is taken by a listing the service wrote itself'
                    else 'uuid is taken by a listing the service wrote itself'
                end
            from diff_listings where action in ('collision', 'uuid collision')
            union all
            select {run}, 'listing_images', id,
                case action
                    when 'collision' then 'id is taken by an image the service wrote itself'
                    else 'its listing is quarantined'
                end
            from diff_images where action in ('collision', 'listing not published')
            """,
        ]
        for statement in statements:
            self.timed(sql.SQL(statement).format(pl=pl, pi=pi, S=S, run=run, q=self.ledger("publish_quarantine")))

    def advance_sequences(self) -> None:
        """Each id sequence past the largest id, so the service's next insert works. Only ever forward.

        The migration's own ids (listings, images) are the monolith's: C2C ids as they are, B2C ids
        b2c_id_offset + theirs, both from `integer` columns. While the monolith stays live it hands
        out new ids above the ones published so far; a sequence moved only past today's largest id
        would give the service exactly the ids of the monolith's next B2C rows, which would then be
        quarantined as collisions. So those sequences go past the largest id the migration can ever
        publish (b2c_id_offset + 2^31 - 1), and the two ranges never meet."""
        ceiling = int(self.build.settings["b2c_id_offset"]) + INTEGER_MAX
        for table in TABLES:
            seq = self.scalar("select pg_get_serial_sequence(%s, 'id')", (f'"{self.build.service_schema}"."{table}"',))
            if not seq:
                continue
            top = self.scalar(sql.SQL("select max(id) from {}").format(self.service(table)))
            if KEYS[table] == "id":  # ids the migration publishes (a location's id is the service's)
                top = max(top or 0, ceiling)
            if top is None:
                continue
            last, called = self.one(sql.SQL("select last_value, is_called from {}").format(sql.SQL(seq)))
            if top > last or (top == last and not called):
                self.conn.execute("select setval(%s, %s)", (seq, top))

    # -- the run --------------------------------------------------------------------------

    def run(self) -> Plan:
        """The diff (statement by statement, see stage_diff), then, unless --plan, the writes in one
        transaction that the caller commits. Every lock publish waits for waits at most lock_timeout:
        the service's own DDL or a long lock of its never leaves publish, and all that would queue
        behind publish, waiting."""
        started = self.scalar("select now()")
        self.conn.execute(sql.SQL("set lock_timeout = {}").format(sql.Literal(self.options.lock_timeout)))
        if not self.conn.execute(
            "select pg_try_advisory_lock(hashtext('listings-migration publish ' || %s))", (self.schema,)
        ).fetchone()[0]:
            holder = self.scalar(
                "select coalesce(application_name, '') || ' pid ' || pid || ' since ' || backend_start"
                " from pg_locks join pg_stat_activity using (pid) where locktype = 'advisory'"
                " and objid = hashtext('listings-migration publish ' || %s)::oid and granted limit 1",
                (self.schema,),
            )
            raise Refused(f"another publish into {self.schema} is running ({holder or 'unknown holder'})")
        self.build = self.latest_build()
        self.check_tables()
        self.ensure_ledger()
        self.check_settings()
        b = self.build
        self.plan = Plan(
            build=b,
            source_rows=0,
            staged_listings=self.scalar(sql.SQL("select count(*) from {}").format(self.staged("listings"))),
            quarantined_by_build=self.scalar(
                sql.SQL("select count(*) from {}").format(self.staged("listings_rejected"))
            ),
            published_before=self.scalar(
                sql.SQL("select count(*) from {} where deleted_run is null").format(self.ledger("published_listings"))
            ),
        )
        self.plan.source_rows = self.plan.staged_listings + self.plan.quarantined_by_build
        self.carried_columns = {table: self.carried(table) for table in TABLES}
        self.conn.commit()
        self.stage_diff()
        self.check_plausible()
        if self.options.plan_only:
            return self.plan
        self.write(started)
        return self.plan

    def write(self, started: object) -> None:
        """The write transaction: the staged tables held still, then the ledger and the service's rows."""
        b = self.build
        self.conn.execute(
            sql.SQL("lock table {} in share mode").format(
                sql.SQL(", ").join(self.staged(t) for t in (*TABLES, "listing_id_map", "listings_rejected"))
            )
        )
        now = self.latest_build()
        if now.invocation_id != b.invocation_id:
            raise Refused(
                f"dbt build {now.invocation_id} replaced the staged tables while publish compared them (it read"
                f" build {b.invocation_id}): run publish again"
            )
        run_id = self.scalar(
            sql.SQL(
                "insert into {} (dbt_invocation_id, started_at, finished_at, service_schema, source_rows,"
                " published_rows, quarantined_rows, counts, settings) values (%s, %s, now(), %s, %s, %s, %s, %s, %s)"
                " returning run_id"
            ).format(self.ledger("publish_runs")),
            (
                b.invocation_id, started, b.service_schema, self.plan.source_rows, self.plan.published_rows,
                self.plan.quarantined_rows, json.dumps(self.counts_json()), json.dumps(b.settings),
            ),
        )  # fmt: skip
        self.run_id = run_id
        try:
            self.apply(run_id)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            # The build quarantined every row the service's constraints refused when it read them;
            # a refusal now means the service's tables changed since (a constraint added, a row of
            # its own written in the meantime).
            what = exc.diag.constraint_name or exc.diag.message_primary or exc.__class__.__name__
            raise Refused(
                f"the service's {exc.diag.table_name or 'tables'} refused a staged row ({what}) that build"
                f" {b.invocation_id} let through: the service's tables changed since the build; run `dbt build`"
                " again (it quarantines such rows)"
            ) from None
        self.conn.execute(
            sql.SQL("update {} set finished_at = clock_timestamp() where run_id = %s").format(
                self.ledger("publish_runs")
            ),
            (run_id,),
        )

    def counts_json(self) -> dict:
        return {table: counts.as_dict() for table, counts in self.plan.counts.items()}


def print_plan(plan: Plan, out: Callable[[str], None], *, done: bool, run_id: int | None = None) -> None:
    b = plan.build
    verb = "published" if done else "would publish"
    head = f"publish run {run_id}" if done else "publish --plan (nothing changed)"
    out(f"{head}: build {b.invocation_id} ({b.staged_schema}) -> {b.service_schema}")
    out(f"  {'table':<18} {'insert':>10} {'update':>10} {'delete':>10} {'unchanged':>10} {'quarantine':>10}")
    for table, c in plan.counts.items():
        out(
            f"  {table:<18} {c.inserted:>10,} {c.updated:>10,} {c.deleted:>10,} {c.unchanged:>10,} {c.quarantined:>10,}"
        )
        if c.skipped:
            out(f"    {c.skipped:,} {table} published earlier and since deleted by the service: left deleted")
    for table, reason, n in plan.quarantine_reasons:
        out(f"    quarantined {table}: {n:,} ({reason})")
    for table, names in plan.not_carried.items():
        out(f"  not carried (no such column in the service's {table}): {', '.join(names)}")
    out(
        f"  source {plan.source_rows:,} rows = {plan.published_rows:,} {verb} + {plan.quarantined_rows:,} quarantined"
        f" ({plan.quarantined_by_build:,} by the build, {plan.counts['listings'].quarantined:,} at publish)"
    )


class Interrupted(ListingsError):
    """Ctrl-C or SIGTERM before the commit: the transaction was rolled back."""

    exit_code = EXIT_INTERRUPTED


def run(pg: PgSettings, options: Options, out: Callable[[str], None] = print) -> int:
    started = time.monotonic()
    committed = False
    try:
        with pg.connect(application_name="listings-migration publish") as conn:
            publisher = Publisher(conn, options, out)
            try:
                plan = publisher.run()
            except Refused:
                conn.rollback()
                raise
            finally:
                if options.timings:
                    for label, seconds, rows in publisher.timings:
                        print(f"publish: {seconds:8.2f} s {rows:>10,} rows  {label}", file=sys.stderr)
            if options.plan_only:
                conn.rollback()
                print_plan(plan, out, done=False)
                return 0
            # A SIGTERM during the COMMIT waits until it has returned, so that what is said after is true.
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            try:
                conn.commit()
                committed = True
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    except KeyboardInterrupt:
        if committed:
            raise Interrupted(f"interrupted after publish run {publisher.run_id} was committed") from None
        # Before the commit: the connection's context rolled the transaction back.
        raise Interrupted("interrupted (Ctrl-C or SIGTERM): rolled back, nothing changed") from None
    print_plan(plan, out, done=True, run_id=publisher.run_id)
    out(f"  committed in {time.monotonic() - started:.1f} s")
    return 0


def run_command(options: Options) -> int:
    """`publish` as the CLI runs it, against the PG* database: a refusal (`Refused`) is one line and exit 1."""
    try:
        return run(PgSettings.from_env(), options)
    except psycopg.errors.LockNotAvailable:
        raise ConfigError(
            f"could not lock the service's tables within {options.lock_timeout} (a long transaction holds them);"
            " nothing changed, try again"
        ) from None
