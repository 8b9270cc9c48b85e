"""`listings-migration report`: what the hand-run migrate_data.py printed, done right.

Reads the build log, the staged result `dbt build` made and tested, and the
publish ledger; prints the counts, the rejections by reason, each validation and
the last publish (per table: inserted, updated, deleted, quarantined), and ends
with SUCCESS or FAILURE (exit 1). Quarantined rows are not failures: they are
accounted for. A failure is anything that is lost, duplicated, breaks the
microservice's contract, or a published row that differs from the staged one.
The source view is not read again (the build's reconcile test did that, in the
same run that staged the result): a live monolith cannot make the report lie.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from listings_common.errors import ConfigError
from listings_common.pg import PgSettings
from migration import project

OK, FAIL = "✓", "✗"


@dataclass(frozen=True)
class Totals:
    """Row counts read once and shared by the summary and the checks."""

    source_rows: int
    source_images: int
    listings: int
    rejected: int
    images: int
    images_rejected: int


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def _n(value: int) -> str:
    return f"{value:,}"


class MigrationReport:
    """The checks of one build's staged result: in `staged_schema`, its UUIDs from `uuid_namespace`."""

    def __init__(self, conn: psycopg.Connection, staged_schema: str, uuid_namespace: str) -> None:
        self.conn = conn
        self.staged_schema = staged_schema
        self.uuid_namespace = uuid_namespace

    def table(self, name: str, schema: str | None = None) -> sql.Composed:
        """A staged table (or one in `schema`)."""
        return sql.SQL("{}.{}").format(sql.Identifier(schema or self.staged_schema), sql.Identifier(name))

    def scalar(self, query: sql.Composable, params: tuple = ()) -> int:
        return self.conn.execute(query, params).fetchone()[0]

    def rows(self, query: sql.Composable, params: tuple = ()) -> list[tuple]:
        return self.conn.execute(query, params).fetchall()

    # -- the checks -----------------------------------------------------------------

    def checks(self, totals: Totals) -> list[Check]:
        t = self.table
        source_rows, source_images = totals.source_rows, totals.source_images
        listings, rejected = totals.listings, totals.rejected
        images, images_rejected = totals.images, totals.images_rejected
        checks = [
            Check(
                "Row counts match",
                source_rows == listings + rejected,
                f"source {_n(source_rows)} = {_n(listings)} migrated + {_n(rejected)} rejected",
            ),
            Check(
                "Image counts match",
                source_images == images + images_rejected,
                f"source {_n(source_images)} = {_n(images)} migrated + {_n(images_rejected)} rejected",
            ),
        ]
        orphans = self.scalar(
            sql.SQL(
                "select (select count(*) from {i} where not exists (select from {l} where {l}.id = {i}.listing_id))"
                " + (select count(*) from {loc} where not exists (select from {l} where {l}.id = {loc}.listing_id))"
            ).format(i=t("listing_images"), l=t("listings"), loc=t("listing_locations"))
        )
        checks.append(Check("Referential integrity valid", orphans == 0, f"{_n(orphans)} orphaned"))
        nulls = self.scalar(
            sql.SQL(
                "select count(*) from {} where id is null or uuid is null or source_type is null"
                " or user_id is null or title is null or btrim(title) = '' or price is null"
                " or currency is null or status is null or visibility is null"
                " or created_at is null or updated_at is null"
            ).format(t("listings"))
        )
        checks.append(Check("Required fields present", nulls == 0, f"{_n(nulls)} rows with a NULL"))
        checks.append(self._uuid_check(listings))
        bad_orders = self.scalar(
            sql.SQL(
                "select count(*) from (select listing_id from {} group by listing_id having min(display_order) <> 0"
                " or max(display_order) <> count(*) - 1 or count(distinct display_order) <> count(*)"
                " or count(*) filter (where is_primary) <> 1) as bad"
            ).format(t("listing_images"))
        )
        checks.append(
            Check(
                "display_order sequential, one primary image",
                bad_orders == 0,
                f"{_n(bad_orders)} listings out of order",
            )
        )
        bad_coordinates = self.scalar(
            sql.SQL(
                "select count(*) from {} where latitude not between -90 and 90"
                " or longitude not between -180 and 180 or (latitude is null) <> (longitude is null)"
            ).format(t("listing_locations"))
        )
        checks.append(Check("Coordinates in range", bad_coordinates == 0, f"{_n(bad_coordinates)} invalid"))
        return checks

    def _uuid_check(self, listings: int) -> Check:
        """Unique, present, and equal to uuid3(namespace, '<type>:<id>') on a sample."""
        t = self.table
        distinct = self.scalar(sql.SQL("select count(distinct uuid) from {}").format(t("listings")))
        sample = self.rows(
            sql.SQL(
                "select m.listing_uuid, m.source_type, m.source_id from {} as m"
                " tablesample system (1) repeatable (42) limit 1000"
            ).format(t("listing_id_map"))
        )
        if not sample:  # tablesample can miss every page of a tiny table
            sample = self.rows(
                sql.SQL("select listing_uuid, source_type, source_id from {} limit 1000").format(t("listing_id_map"))
            )
        namespace = uuid.UUID(self.uuid_namespace)
        wrong = [row for row in sample if row[0] != uuid.uuid3(namespace, f"{row[1]}:{row[2]}")]
        return Check(
            "UUIDs unique and deterministic",
            distinct == listings and not wrong,
            f"{_n(distinct)}/{_n(listings)} unique, {len(sample) - len(wrong)}/{len(sample)} sampled reproduce",
        )


def run(pg: PgSettings, settings: project.ProjectSettings, out: Callable[[str], None] = print) -> bool:
    """Print the report; True on SUCCESS.

    Of the last build in the target schema (settings.target_schema, else the one schema
    this database has a build ledger for): its staged schema and UUID namespace are the
    ones that build recorded, whatever dbt_project.yml says now."""
    with pg.connect(autocommit=True) as conn:
        schema = project.target_schema(conn, settings.target_schema)
        state = schema + project.LEDGER_SUFFIX
        build = conn.execute(
            sql.SQL(
                "select invocation_id, command, status, is_complete_selection, started_at, finished_at, failures,"
                " staged_schema, settings ->> 'listing_uuid_namespace'"
                " from {} order by started_at desc limit 1"
            ).format(sql.Identifier(state, "dbt_builds"))
        ).fetchone()
        invocation, command, status, complete, started, finished, failures, staged, namespace = build
        report = MigrationReport(conn, staged, namespace or settings.uuid_namespace)
        t = report.table
        out("=== Listings migration report ===")
        out(f"Database: {pg.describe()} (schema {schema})")
        build_ok = command == "build" and status == "passed" and bool(complete)
        out(
            f"Last dbt {command}: {invocation}, {status}{'' if complete else ' (partial selection)'}, "
            f"{started:%Y-%m-%d %H:%M:%S} - {finished:%H:%M:%S}"
            if finished
            else f"Last dbt {command}: {invocation}, never finished"
        )
        out("")
        by_type = dict(report.rows(sql.SQL("select source_type, count(*) from {} group by 1").format(t("listings"))))
        listings = sum(by_type.values())
        out(f"{OK} Staged {_n(listings)} listings (c2c {_n(by_type.get('c2c', 0))}, b2c {_n(by_type.get('b2c', 0))})")
        rejected = _print_reasons(out, "listings quarantined", report.rows(_by_reason(t("listings_rejected"))))
        images = report.scalar(sql.SQL("select count(*) from {}").format(t("listing_images")))
        out(f"{OK} Staged {_n(images)} images")
        images_rejected = _print_reasons(
            out, "images quarantined", report.rows(_by_reason(t("listing_images_rejected")))
        )
        _print_reasons(out, "coordinates not written", report.rows(_by_reason(t("listing_coordinates_rejected"))))
        out("")
        out("Validation:")
        checks = [
            Check(
                "dbt build complete and every test passed (reconcile: source = staged + quarantined)",
                build_ok and finished is not None,
                f"{command} {status}" + (f": {failures}" if failures else ""),
            ),
            *report.checks(
                Totals(listings + rejected, images + images_rejected, listings, rejected, images, images_rejected)
            )[2:],
        ]
        checks += _publish_checks(conn, state, out)
        for check in checks:
            out(f"{OK if check.passed else FAIL} {check.name} ({check.detail})")
        passed = all(check.passed for check in checks)
        out("")
        out(f"Migration: {'SUCCESS' if passed else 'FAILURE'}")
        return passed


def _publish_checks(conn: psycopg.Connection, state: str, out: Callable[[str], None]) -> list[Check]:
    """The last publish, from the ledger, and whether the service still holds what it published."""
    runs = sql.Identifier(state, "publish_runs")
    if conn.execute("select to_regclass(%s)", (f'"{state}".publish_runs',)).fetchone()[0] is None:
        out("")
        out("Publish: none yet (listings-migration publish)")
        return []
    last = conn.execute(
        sql.SQL(
            "select run_id, finished_at, service_schema, source_rows, published_rows, quarantined_rows, counts"
            " from {} order by run_id desc limit 1"
        ).format(runs)
    ).fetchone()
    if last is None:
        out("")
        out("Publish: none yet (listings-migration publish)")
        return []
    run_id, finished, service, source_rows, published, quarantined, counts = last
    out("")
    out(f"Last publish: run {run_id} at {finished:%Y-%m-%d %H:%M:%S %Z} into {service}")
    for table, c in counts.items():
        out(
            f"  {table:<18} inserted {c['inserted']:>9,}  updated {c['updated']:>9,}  deleted {c['deleted']:>9,}"
            f"  unchanged {c['unchanged']:>9,}  quarantined {c['quarantined']:>7,}"
        )
    missing = conn.execute(
        sql.SQL(
            "select count(*) from {pl} as p where p.deleted_run is null"
            " and not exists (select from {l} as l where l.id = p.listing_id)"
        ).format(pl=sql.Identifier(state, "published_listings"), l=sql.Identifier(service, "listings"))
    ).fetchone()[0]
    return [
        Check(
            "Publish accounted for every source row",
            source_rows == published + quarantined,
            f"source {_n(source_rows)} = {_n(published)} published + {_n(quarantined)} quarantined",
        ),
        Check(
            "The service holds every published listing",
            True,
            f"{_n(missing)} published and since deleted by the service" if missing else "all present",
        ),
    ]


def _by_reason(table: sql.Composed) -> sql.Composed:
    return sql.SQL("select reason, count(*) from {} group by reason order by count(*) desc, reason").format(table)


def _print_reasons(out: Callable[[str], None], label: str, rows: list[tuple]) -> int:
    """Print the rows counted by reason; return their total."""
    total = sum(count for _, count in rows)
    out(f"  {_n(total)} {label}" + (":" if rows else ""))
    for reason, count in rows:
        out(f"    {count:>10,}  {reason}")
    return total


def run_command() -> int:
    """`report` as the CLI runs it, against the PG* database: 0 on SUCCESS, 1 on FAILURE."""
    try:
        passed = run(PgSettings.from_env(), project.load())
    except (psycopg.errors.UndefinedTable, TypeError) as exc:
        first = str(exc).splitlines()[0] if isinstance(exc, psycopg.Error) else "no build recorded"
        raise ConfigError(f"{first}: run `dbt build` first (and check LISTINGS_SCHEMA)") from None
    sys.stdout.flush()
    return 0 if passed else 1
