"""The dbt migration against the real PostgreSQL: accounting, dirty cases, edge values,
idempotence, the postgres_fdw mode, contracts, and the report command. dbt's result is
staged in `public_staged` (publish is tested in test_publish.py)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import build, load_monolith, migration_cli, passfile_password, pg_env, scratch_database
from psycopg import sql

import standin
from listings_common.pg import PgSettings

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = uuid.UUID(yaml.safe_load((ROOT / "dbt_project.yml").read_text())["vars"]["listing_uuid_namespace"])
STAGED = "public_staged"
# every output table of the migration, staged by dbt build
TABLES = [
    "listings",
    "listing_images",
    "listing_locations",
    "listing_id_map",
    "listings_rejected",
    "listing_images_rejected",
    "listing_coordinates_rejected",
]
B2C_OFFSET = int(yaml.safe_load((ROOT / "dbt_project.yml").read_text())["vars"]["b2c_id_offset"])


def table_digests(settings: PgSettings) -> dict[str, str]:
    """md5 of every output table's full contents in a fixed order."""
    digests = {}
    with settings.connect() as conn:
        for table in TABLES:
            digests[table] = conn.execute(
                sql.SQL("select md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from {} as t").format(
                    sql.Identifier(STAGED, table)
                )
            ).fetchone()[0]
    return digests


def outcome(conn, case: str) -> dict:
    """What became of dirty case `case`: its listing row, rejection, location, images."""
    source_type, source_id = standin.DIRTY_CASE_IDS[case]
    listing = conn.execute(
        "select l.*, m.source_status from listing_id_map m join listings l on l.id = m.listing_id"
        " where m.source_type = %s and m.source_id = %s",
        (source_type, source_id),
    ).fetchone()
    rejected = conn.execute(
        "select reason from listings_rejected where source_type = %s and source_id = %s", (source_type, source_id)
    ).fetchone()
    return {"listing": listing, "rejected": rejected[0] if rejected else None}


def report(settings: PgSettings, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return migration_cli(settings, "report", env=env)


def test_every_source_row_and_image_is_migrated_or_quarantined_and_report_says_success(migrated_db):
    with migrated_db.connect() as conn:
        rows, images = conn.execute(
            "select count(*), sum(jsonb_array_length(images)) from monolith.unified_listings"
        ).fetchone()
        count = {
            t: conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(STAGED, t))).fetchone()[0]
            for t in TABLES
        }
    assert count["listings_rejected"] > 0 and count["listing_images_rejected"] > 0
    assert rows == count["listings"] + count["listings_rejected"]
    assert images == count["listing_images"] + count["listing_images_rejected"]
    assert count["listing_id_map"] == count["listing_locations"] == count["listings"]

    result = report(migrated_db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Migration: SUCCESS" in result.stdout
    assert "✗" not in result.stdout


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("c2c_title_null", "missing title"),
        ("c2c_title_blank", "missing title"),
        ("c2c_price_null", "missing price"),
        ("c2c_user_id_null", "missing user_id"),
        ("c2c_price_negative", "negative price"),
        ("c2c_currency_invalid", "invalid currency"),
        ("c2c_price_nan", "price is not a finite number"),
        ("c2c_created_at_infinity", "created_at is not a time in years 1-9999"),
        ("c2c_updated_at_minus_infinity", "updated_at is not a time in years 1-9999"),
        ("c2c_created_at_bc", "created_at is not a time in years 1-9999"),
        ("c2c_created_at_beyond_9999", "created_at is not a time in years 1-9999"),
        ("b2c_created_at_infinity", "created_at is not a time in years 1-9999"),
        ("c2c_title_unicode_blank", "missing title"),
        ("b2c_title_unicode_blank", "missing title"),
        # the microservice's own constraints, read from its catalog
        ("c2c_price_zero", "listings: constraint listings_price_check"),
        ("c2c_title_too_short", "listings: constraint listings_title_check"),
        ("c2c_category_null", "listings.category_id: NOT NULL"),
        ("c2c_created_at_null", "missing created_at"),
        ("b2c_price_null", "missing price"),
        ("b2c_title_null", "missing title"),
    ],
)
def test_rows_that_break_the_contract_are_quarantined_with_their_reason(migrated_db, case, reason):
    with migrated_db.connect() as conn:
        conn.execute("set search_path = public_staged")
        result = outcome(conn, case)
        source_type, source_id = standin.DIRTY_CASE_IDS[case]
        image_reasons = conn.execute(
            "select distinct reason from listing_images_rejected where source_type = %s and source_listing_id = %s",
            (source_type, source_id),
        ).fetchall()
    assert result["listing"] is None
    assert reason in result["rejected"].split("; ")
    assert image_reasons in ([], [("listing rejected",)])


@pytest.mark.parametrize(
    ("case", "status", "currency"),
    [
        ("c2c_status_upper_case", "active", "RSD"),
        ("c2c_status_padded", "sold", "RSD"),
        ("c2c_status_empty", "inactive", "RSD"),
        ("c2c_status_null", "inactive", "RSD"),
        ("c2c_status_capitalised", "archived", "RSD"),
        ("c2c_status_draft", "draft", "RSD"),
        ("c2c_status_unknown", "inactive", "RSD"),
        ("c2c_currency_eur", None, "EUR"),
        ("c2c_currency_lower_case", None, "EUR"),
        ("b2c_currency_null", "active", "RSD"),
        ("b2c_currency_usd", "active", "USD"),
        ("b2c_inactive", "inactive", None),
    ],
)
def test_status_and_currency_are_mapped_and_the_source_status_is_kept(migrated_db, case, status, currency):
    with migrated_db.connect() as conn:
        conn.execute("set search_path = public_staged")
        listing = conn.execute(
            "select l.status, l.currency, m.source_status, v.status from listing_id_map m"
            " join listings l on l.id = m.listing_id"
            " join monolith.unified_listings v on v.source_type = m.source_type and v.id = m.source_id"
            " where (m.source_type, m.source_id) = (%s, %s)",
            standin.DIRTY_CASE_IDS[case],
        ).fetchone()
    assert listing is not None, f"{case} was not migrated"
    if status:
        assert listing[0] == status
    if currency:
        assert listing[1] == currency
    assert listing[2] == listing[3]  # the monolith's status, as it was


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("c2c_latitude_out_of_range", "latitude out of range"),
        ("c2c_longitude_out_of_range", "longitude out of range"),
        ("c2c_longitude_missing", "incomplete coordinates"),
    ],
)
def test_invalid_coordinates_are_not_written_but_kept_with_a_reason(migrated_db, case, reason):
    source_type, source_id = standin.DIRTY_CASE_IDS[case]
    with migrated_db.connect() as conn:
        location = conn.execute(
            "select loc.latitude, loc.longitude, loc.show_on_map, r.reason, r.latitude is not null or r.longitude"
            " is not null from public_staged.listing_id_map m"
            " join public_staged.listing_locations loc using (listing_id)"
            " join public_staged.listing_coordinates_rejected r using (listing_id)"
            " where m.source_type = %s and m.source_id = %s",
            (source_type, source_id),
        ).fetchone()
    assert location == (None, None, False, reason, True)


def test_images_without_url_are_quarantined_and_the_rest_renumbered(migrated_db):
    with migrated_db.connect() as conn:
        rejected = conn.execute(
            "select source_listing_id, source_type, reason from public_staged.listing_images_rejected"
            " where reason = 'missing url' order by 1, 2"
        ).fetchall()
        gaps = conn.execute(
            "select count(*) from (select listing_id from public_staged.listing_images group by listing_id"
            " having max(display_order) <> count(*) - 1 or count(*) filter (where is_primary) <> 1) as bad"
        ).fetchone()[0]
    ids = {(t, i) for i, t, _ in rejected}
    for case in ("c2c_image_url_null", "c2c_image_url_blank", "b2c_image_url_null"):
        assert standin.DIRTY_CASE_IDS[case] in ids
    assert gaps == 0


def test_uuids_are_rfc4122_v3_of_the_source_key(migrated_db):
    with migrated_db.connect() as conn:
        rows = conn.execute("select listing_uuid, source_type, source_id from public_staged.listing_id_map").fetchall()
    assert rows
    for listing_uuid, source_type, source_id in rows:
        assert listing_uuid == uuid.uuid3(NAMESPACE, f"{source_type}:{source_id}")
        assert listing_uuid.version == 3


def test_c2c_ids_are_kept_and_b2c_ids_offset_so_colliding_ids_never_merge(migrated_db):
    with migrated_db.connect() as conn:
        wrong = conn.execute(
            "select count(*) from public_staged.listing_id_map where listing_id <>"
            " case source_type when 'c2c' then source_id else source_id + %s end",
            (B2C_OFFSET,),
        ).fetchone()[0]
        collisions = conn.execute(
            "select count(*) from public_staged.listing_id_map c join public_staged.listing_id_map b"
            " on c.source_id = b.source_id and c.source_type = 'c2c' and b.source_type = 'b2c'"
        ).fetchone()[0]
    assert wrong == 0
    assert collisions > 0  # the fixtures do collide, and both rows migrated


@pytest.mark.parametrize(
    "case",
    [
        "c2c_id_negative_odd",
        "c2c_id_zero",
        "c2c_id_int_max",
        "c2c_id_int_min",
        "b2c_id_negative_odd",
        "b2c_id_int_max",
        "b2c_id_zero",
        "b2c_id_int_min",
        "c2c_created_at_far_future",
        "c2c_description_huge",
        "c2c_images_300",
    ],
)
def test_edge_values_are_published_and_land_in_the_service_tables(migrated_db, case):
    source_type, source_id = standin.DIRTY_CASE_IDS[case]
    listing_id = source_id + (B2C_OFFSET if source_type == "b2c" else 0)
    with migrated_db.connect() as conn:
        row = conn.execute(
            "select l.id, length(l.description),"
            " (select count(*) from public.listing_images i where i.listing_id = l.id)"
            " from public.listings l where l.id = %s",
            (listing_id,),
        ).fetchone()
        source_images = conn.execute(
            "select jsonb_array_length(images), length(description) from monolith.unified_listings"
            " where source_type = %s and id = %s",
            (source_type, source_id),
        ).fetchone()
    assert row is not None, f"{case} is in neither the service's listings nor quarantine"
    assert row[1] == source_images[1]
    assert row[2] == source_images[0]


def test_no_source_row_is_lost_whatever_its_id(migrated_db):
    with migrated_db.connect() as conn:
        lost = conn.execute(
            "select count(*) from monolith.unified_listings v"
            " where not exists (select from public_staged.listing_id_map m"
            " where (m.source_type, m.source_id) = (v.source_type, v.id)) and not exists (select from"
            " public_staged.listings_rejected r where (r.source_type, r.source_id) = (v.source_type, v.id))"
        ).fetchone()[0]
    assert lost == 0


def test_text_is_carried_byte_for_byte(migrated_db):
    with migrated_db.connect() as conn:
        differing = conn.execute(
            "select count(*) from public_staged.listing_id_map m join public_staged.listings l on l.id = m.listing_id"
            " join monolith.unified_listings v on v.source_type = m.source_type and v.id = m.source_id"
            " where convert_to(l.title, 'UTF8') is distinct from convert_to(v.title, 'UTF8')"
            " or convert_to(l.description, 'UTF8') is distinct from convert_to(v.description, 'UTF8')"
        ).fetchone()[0]
        texts = [
            conn.execute(
                "select l.title || l.description from public_staged.listing_id_map m join public_staged.listings l"
                " on l.id = m.listing_id where (m.source_type, m.source_id) = (%s, %s)",
                standin.DIRTY_CASE_IDS[case],
            ).fetchone()[0]
            for case in ("c2c_text_emoji", "c2c_text_control_whitespace", "c2c_text_quotes_backslashes")
        ]
    assert differing == 0
    joined = "".join(texts)
    assert "😀" in joined and "\r\n" in joined and "\t" in joined and "\\" in joined and '"' in joined


def test_b2c_timestamps_keep_their_instant_whatever_their_offset(migrated_db):
    _, product_id = standin.DIRTY_CASE_IDS["b2c_timestamps_non_utc"]
    with migrated_db.connect() as conn:
        conn.execute("set time zone 'America/New_York'")
        listing, product = conn.execute(
            "select l.created_at, p.created_at from public_staged.listings l"
            " join monolith.b2c_products p on l.id = p.id + %s where p.id = %s",
            (B2C_OFFSET, product_id),
        ).fetchone()
    assert listing == product


def test_a_second_build_in_another_session_zone_gives_identical_tables(run_dbt):
    with scratch_database() as settings:
        load_monolith(settings, c2c=100, b2c=50)
        build(run_dbt, settings)
        first = table_digests(settings)
        build(run_dbt, settings, env={"PGTZ": "Asia/Tokyo"})
        assert table_digests(settings) == first


def monolith_env(settings: PgSettings, password: str | None) -> dict[str, str]:
    """MONOLITH_PG* variables for attach-monolith, pointing at `settings`' database."""
    return {f"MONOLITH_{key}": value for key, value in {**pg_env(settings), "PGPASSWORD": password or ""}.items()}


def test_build_through_postgres_fdw_gives_the_same_tables_as_the_same_database(run_dbt, migrated_db):
    with scratch_database() as target:
        with target.connect(autocommit=True) as conn:
            standin.load_service_schema(conn)
        password = passfile_password(migrated_db)
        attached = migration_cli(target, "attach-monolith", env=monolith_env(migrated_db, password))
        assert attached.returncode == 0, attached.stderr
        assert "rows" in attached.stdout
        if password:
            assert password not in attached.stdout + attached.stderr
        build(run_dbt, target)
        assert table_digests(target) == table_digests(migrated_db)


def test_attach_monolith_with_a_wrong_password_fails_in_one_line(scratch_db):
    with scratch_db.connect(autocommit=True) as conn:
        standin.load_schema(conn)
    result = migration_cli(
        scratch_db,
        "attach-monolith",
        "--schema",
        "monolith_remote",
        env=monolith_env(scratch_db, "wrong-password-1234"),
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "wrong-password-1234" not in result.stderr + result.stdout


def test_build_fails_when_an_output_would_break_its_contract(run_dbt):
    with scratch_database() as settings:
        load_monolith(settings, c2c=20, b2c=10)
        # the dirty catalogue has an unknown status: with a fallback outside the
        # microservice's set, listings.status would break its accepted values
        result = run_dbt(settings, "build", "--vars", "{fallback_status: bogus}")
        assert result.returncode != 0
        assert "accepted_values_listings_status" in result.stdout


def test_settings_that_could_break_out_of_their_quotes_are_refused_before_anything_runs(run_dbt):
    with scratch_database() as settings:
        load_monolith(settings, c2c=5, b2c=5, dirty=False)
        result = run_dbt(
            settings, "build", "--vars",
            "{default_currency: \"RS'D\", listing_uuid_namespace: 'not a uuid', search_readers: ['x; drop table y']}",
            env={"LISTINGS_SCHEMA": 'svc"; drop table x; --'},
        )  # fmt: skip
        assert result.returncode != 0
        assert "invalid settings: target schema svc" in result.stdout
        assert "default_currency RS'D" in result.stdout and "listing_uuid_namespace not a uuid" in result.stdout
        assert "search_readers role x; drop table y" in result.stdout
        with settings.connect(autocommit=True) as conn:
            created = conn.execute(
                "select count(*) from pg_namespace where nspname not in ('public', 'monolith')"
                " and nspname not like 'pg\\_%' and nspname <> 'information_schema'"
            ).fetchone()[0]
        assert created == 0  # not even the build log's schema


def test_the_indexer_role_keeps_its_select_on_the_documents_view_across_builds(run_dbt):
    with scratch_database() as settings:
        load_monolith(settings, c2c=5, b2c=5, dirty=False)
        with settings.connect(autocommit=True) as conn:
            conn.execute(
                "do $$ begin if not exists (select from pg_roles where rolname = 'pytest_search_reader') then"
                " create role pytest_search_reader nologin; end if; end $$"
            )
        readers = ["--vars", "{search_readers: [pytest_search_reader]}"]
        for _ in range(2):  # the second build re-creates the view
            build(run_dbt, settings, *readers)
            with settings.connect(autocommit=True) as conn:
                granted = conn.execute(
                    "select has_table_privilege('pytest_search_reader',"
                    " 'public_search.listing_search_documents', 'SELECT')"
                ).fetchone()[0]
            assert granted is True
        build(run_dbt, settings)  # and without the var, nobody else reads it
        with settings.connect(autocommit=True) as conn:
            assert not conn.execute(
                "select has_table_privilege('pytest_search_reader', 'public_search.listing_search_documents', 'SELECT')"
            ).fetchone()[0]


def test_the_reconciliation_counts_what_the_build_read_not_a_monolith_written_to_since(run_dbt):
    with scratch_database() as settings:
        load_monolith(settings, c2c=10, b2c=5, dirty=False)
        build(run_dbt, settings)
        with settings.connect(autocommit=True) as conn:  # the live monolith, after the build read it
            conn.execute(
                "insert into monolith.c2c_listings (id, user_id, category_id, title, price, created_at)"
                " values (100001, 1, 1, 'added while live', 10, '2025-01-01')"
            )
            conn.execute("delete from monolith.b2c_product_images where storefront_product_id = 3")
            conn.execute("delete from monolith.b2c_products where id = 3")
        result = run_dbt(settings, "test", "--select", "reconcile_with_source")
        assert result.returncode == 0, result.stdout[-3000:]
        # and what the build read is still all there: a row lost from it fails the test
        with settings.connect(autocommit=True) as conn:
            conn.execute("delete from public_staged.listings where id = 2")
        lost = run_dbt(settings, "test", "--select", "reconcile_with_source")
        assert lost.returncode != 0 and "reconcile_with_source" in lost.stdout


def test_report_fails_when_a_staged_listing_with_images_goes_missing(run_dbt):
    with scratch_database() as settings:
        load_monolith(settings, c2c=20, b2c=10, dirty=False)
        build(run_dbt, settings)
        with settings.connect(autocommit=True) as conn:
            conn.execute(
                "delete from public_staged.listings"
                " where id = (select min(listing_id) from public_staged.listing_images)"
            )
        result = report(settings)
    assert result.returncode == 1
    assert "Migration: FAILURE" in result.stdout
    assert "✗ Referential integrity valid" in result.stdout


def test_report_without_built_tables_says_to_run_dbt_build(scratch_db):
    with scratch_db.connect(autocommit=True) as conn:
        standin.load_schema(conn)
    result = report(scratch_db)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "dbt build" in result.stderr


def test_report_against_a_server_that_is_down_fails_in_one_line(scratch_db):
    result = report(scratch_db, env={"PGHOST": "127.0.0.1", "PGPORT": "1"})
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot connect" in result.stderr
