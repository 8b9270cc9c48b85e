"""The stand-in monolith (standin) against a real PostgreSQL: each test loads the schema into its own database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from conftest import ROOT

from listings_common.errors import ConfigError
from listings_common.pg import PgSettings
from standin import (
    DIRTY_CASE_IDS,
    DIRTY_CASES,
    DIRTY_EXPECTATIONS,
    DIRTY_ID_BASE,
    add_dirty,
    generate,
    load_example,
    load_schema,
    view_counts,
)

VIEW_MD5 = """
SELECT md5(string_agg(u::text, E'\\n' ORDER BY u.source_type, u.id))
FROM monolith.unified_listings AS u WHERE u.id > 0 AND u.id < %s
"""

# Images the dirty catalogue adds: C2C 43 cases x 1 + 4 cases x 2 + 1 case x 0 + 1 case x 300;
# B2C 14 cases x 1 + 3 cases x 3 + 3 cases x 2.
DIRTY_C2C_IMAGES = 351
DIRTY_B2C_IMAGES = 29


@pytest.fixture
def conn(scratch_db: PgSettings) -> Iterator[psycopg.Connection]:
    """A connection to a scratch database holding the empty monolith schema."""
    with scratch_db.connect() as connection:
        load_schema(connection)
        yield connection


def scalar(conn: psycopg.Connection, query: str, params: object = None):
    return conn.execute(query, params).fetchone()[0]


def view_md5(conn: psycopg.Connection, below_id: int = 2**31 - 1) -> str:
    return scalar(conn, VIEW_MD5, [below_id])


def test_example_has_ten_listings_twelve_images_both_shapes_and_colliding_ids(conn):
    counts = load_example(conn)

    assert view_counts(conn) == (10, 12)
    assert (counts["c2c_listings"], counts["b2c_products"], counts["images"]) == (6, 4, 12)
    colliding = scalar(
        conn,
        "SELECT count(*) FROM (SELECT id FROM monolith.unified_listings"
        " GROUP BY id HAVING count(DISTINCT source_type) = 2) AS both_sides",
    )
    assert colliding >= 1
    keys = dict(
        conn.execute(
            "SELECT u.source_type, array_agg(DISTINCT k ORDER BY k) FROM monolith.unified_listings u,"
            " jsonb_array_elements(u.images) e, jsonb_object_keys(e) k GROUP BY u.source_type"
        ).fetchall()
    )
    assert keys == {
        "c2c": ["file_name", "file_path", "id", "is_main", "public_url", "storage_type"],
        "b2c": ["display_order", "id", "image_url", "is_default", "thumbnail_url"],
    }
    currencies = scalar(
        conn,
        "SELECT array_agg(DISTINCT metadata->>'currency' ORDER BY metadata->>'currency')"
        " FROM monolith.unified_listings WHERE source_type = 'b2c'",
    )
    assert currencies == ["EUR", "RSD"]
    text = scalar(conn, "SELECT string_agg(title || ' ' || description, ' ') FROM monolith.unified_listings")
    assert any(ch in text for ch in "ђћљњџ"), "Serbian Cyrillic"
    assert any(ch in text for ch in "ыэъё"), "Russian"
    assert any(ch in text for ch in "čćšžđ"), "Serbian Latin"


def test_example_is_clean(conn):
    load_example(conn)

    dirty = scalar(
        conn,
        "SELECT count(*) FROM monolith.unified_listings WHERE title IS NULL OR btrim(title) = ''"
        " OR price IS NULL OR price <= 0 OR user_id IS NULL OR status NOT IN ('active', 'sold', 'inactive')"
        " OR latitude NOT BETWEEN 42 AND 47 OR longitude NOT BETWEEN 18 AND 23"
        " OR created_at IS NULL OR updated_at < created_at",
    )
    assert dirty == 0
    bad_images = scalar(
        conn,
        "SELECT count(*) FROM monolith.unified_listings u, jsonb_array_elements(u.images) e"
        " WHERE coalesce(e->>'public_url', e->>'image_url', '') = ''",
    )
    assert bad_images == 0


def test_generate_gives_the_same_rows_for_a_random_state_and_others_for_another(conn):
    first_counts = generate(conn, c2c=300, b2c=150, random_state=7)
    first = view_md5(conn)
    load_schema(conn)
    second_counts = generate(conn, c2c=300, b2c=150, random_state=7)
    second = view_md5(conn)
    load_schema(conn)
    generate(conn, c2c=300, b2c=150, random_state=8)
    other = view_md5(conn)

    assert first_counts == second_counts
    assert first == second
    assert other != first


def test_dirty_adds_one_view_row_per_case_and_leaves_the_clean_rows_alone(conn):
    clean_counts = generate(conn, c2c=200, b2c=100)
    clean_rows, clean_images = view_counts(conn)
    clean_md5 = view_md5(conn)
    load_schema(conn)

    counts = generate(conn, c2c=200, b2c=100, dirty=True)

    rows, images = view_counts(conn)
    assert rows == clean_rows + len(DIRTY_CASES)
    assert images == clean_images + DIRTY_C2C_IMAGES + DIRTY_B2C_IMAGES
    assert counts["dirty_cases"] == len(DIRTY_CASES)
    assert counts["c2c_images"] == clean_counts["c2c_images"] + DIRTY_C2C_IMAGES
    assert view_md5(conn, DIRTY_ID_BASE) == clean_md5
    assert len({name for name, _ in DIRTY_CASES}) == len(DIRTY_CASES)
    found = conn.execute(
        "SELECT source_type, id, external_id FROM monolith.unified_listings WHERE id > %s", [DIRTY_ID_BASE]
    ).fetchall()
    above_base = {ids: f"dirty:{name}" for name, ids in DIRTY_CASE_IDS.items() if ids[1] > DIRTY_ID_BASE}
    assert {(s, i): e for s, i, e in found} == above_base


def test_each_dirty_case_has_its_defect(conn):
    add_dirty(conn)

    # standin/data/dirty.json gives every case its expectation (a non-blank SQL predicate)
    assert len(DIRTY_EXPECTATIONS) == len(DIRTY_CASES) and all(p.strip() for p in DIRTY_EXPECTATIONS.values())
    failing = []
    for name, predicate in DIRTY_EXPECTATIONS.items():
        source_type, row_id = DIRTY_CASE_IDS[name]
        holds = scalar(
            conn,
            f"SELECT coalesce(bool_and({predicate}), false) FROM monolith.unified_listings u"
            " WHERE u.source_type = %s AND u.id = %s",
            [source_type, row_id],
        )
        if not holds:
            failing.append(name)
    assert failing == []


def test_dirty_ids_and_image_ids_collide_across_the_two_sides(conn):
    add_dirty(conn)

    listing_collisions = scalar(
        conn,
        "SELECT count(*) FROM monolith.c2c_listings c JOIN monolith.b2c_products b USING (id) WHERE c.id > %s",
        [DIRTY_ID_BASE],
    )
    image_collisions = scalar(
        conn,
        "SELECT count(*) FROM monolith.c2c_images c JOIN monolith.b2c_product_images b USING (id) WHERE c.id > %s",
        [DIRTY_ID_BASE],
    )
    assert listing_collisions >= 1
    assert image_collisions >= 1


def test_generate_20k_listings_is_realistic_and_clean(conn):
    counts = generate(conn, c2c=14_000, b2c=6_000)

    rows, images = view_counts(conn)
    assert rows == 20_000 == counts["listings"]
    assert images == counts["images"]
    assert 2.10 <= images / rows <= 2.24
    stats = conn.execute(
        """
        SELECT min(jsonb_array_length(images)), max(jsonb_array_length(images)),
            count(*) FILTER (WHERE jsonb_array_length(images) = 0),
            count(*) FILTER (WHERE title IS NULL OR btrim(title) = '' OR price IS NULL OR price <= 0
                OR price <> round(price, 2) OR user_id IS NULL),
            count(*) FILTER (WHERE latitude NOT BETWEEN 42.2 AND 46.2 OR longitude NOT BETWEEN 18.8 AND 23.0),
            count(*) FILTER (WHERE created_at < '2023-01-01' OR created_at >= '2026-01-01'
                OR updated_at < created_at OR updated_at >= '2026-01-01'),
            count(*) FILTER (WHERE address_country NOT IN ('Serbia', 'Србија')),
            count(*) FILTER (WHERE description LIKE E'%\\n%'),
            count(*) FILTER (WHERE description LIKE E'%\\t%')
        FROM monolith.unified_listings
        """
    ).fetchone()
    min_images, max_images, without_images, incomplete, off_map, bad_times, bad_country, multiline, tabs = stats
    assert (min_images, max_images) == (0, 6)
    assert 0 < without_images < rows * 0.15
    assert (incomplete, off_map, bad_times, bad_country) == (0, 0, 0, 0)
    assert multiline == rows
    assert 0 < tabs < rows

    statuses = dict(conn.execute("SELECT status, count(*) FROM monolith.c2c_listings GROUP BY status").fetchall())
    assert set(statuses) == {"active", "sold", "inactive", "draft", "archived"}
    assert statuses["active"] > 0.7 * 14_000
    conditions = scalar(conn, "SELECT array_agg(DISTINCT condition ORDER BY condition) FROM monolith.c2c_listings")
    assert conditions == ["like_new", "new", "refurbished", "used"]
    currencies = dict(conn.execute("SELECT currency, count(*) FROM monolith.b2c_products GROUP BY 1").fetchall())
    assert set(currencies) == {"RSD", "EUR"} and currencies["RSD"] > 3 * currencies["EUR"]
    c2c_currency = scalar(conn, "SELECT count(*) FROM monolith.c2c_listings WHERE metadata ? 'currency'")
    assert c2c_currency < 0.05 * 14_000
    assert (
        scalar(
            conn,
            "SELECT round(count(*)::numeric / count(DISTINCT storefront_id), 1) FROM monolith.b2c_products",
        )
        == 3
    )
    assert scalar(conn, "SELECT (min(id), max(id), count(*)) = (1, 14000, 14000) FROM monolith.c2c_listings")
    languages = scalar(
        conn,
        "SELECT array_agg(DISTINCT original_language ORDER BY original_language) FROM monolith.c2c_listings",
    )
    assert languages == ["en", "ru", "sr"]
    assert scalar(conn, "SELECT count(*) FROM monolith.c2c_listings WHERE title ~ '[ђћљњџ]'") > 0
    assert scalar(conn, "SELECT count(*) FROM monolith.c2c_listings WHERE title ~ '[čćšžđ]'") > 0

    # Clean images: one main (C2C) or default (B2C) per listing; display_order 0..k-1; a URL each.
    bad_c2c = scalar(
        conn,
        "SELECT count(*) FROM (SELECT listing_id FROM monolith.c2c_images GROUP BY listing_id"
        " HAVING count(*) FILTER (WHERE is_main) <> 1) AS x",
    )
    bad_b2c = scalar(
        conn,
        "SELECT count(*) FROM (SELECT storefront_product_id FROM monolith.b2c_product_images"
        " GROUP BY storefront_product_id HAVING count(*) FILTER (WHERE is_default) <> 1"
        " OR min(display_order) <> 0 OR max(display_order) <> count(*) - 1"
        " OR count(DISTINCT display_order) <> count(*)) AS x",
    )
    no_url = scalar(
        conn,
        "SELECT (SELECT count(*) FROM monolith.c2c_images WHERE coalesce(public_url, '') = '')"
        " + (SELECT count(*) FROM monolith.b2c_product_images WHERE coalesce(image_url, '') = '')",
    )
    assert (bad_c2c, bad_b2c, no_url) == (0, 0, 0)
    foreign_keys = scalar(
        conn,
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'monolith'::regnamespace",
    )
    assert foreign_keys == 3


def test_generate_refuses_bad_arguments_and_non_empty_tables(conn):
    with pytest.raises(ValueError, match="images_per_listing"):
        generate(conn, c2c=10, b2c=0, images_per_listing=7)
    with pytest.raises(ValueError, match="c2c"):
        generate(conn, c2c=-1, b2c=0)
    generate(conn, c2c=10, b2c=3)
    with pytest.raises(ValueError, match="load the schema first"):
        generate(conn, c2c=10, b2c=3)
    assert view_counts(conn)[0] == 13


def test_load_schema_keeps_the_callers_search_path(conn):
    conn.execute("SET search_path = public")
    load_schema(conn)
    assert scalar(conn, "SHOW search_path") == "public"


def _cli(
    settings: PgSettings, *args: str, command: tuple[str, ...] = ("standin",), **env: str
) -> subprocess.CompletedProcess:
    """`python -m standin ARGS` (= listings-standin), or another `command` with the same arguments."""
    environ = dict(os.environ)
    environ.update(PGHOST=settings.host, PGPORT=str(settings.port), PGUSER=settings.user, PGDATABASE=settings.dbname)
    if settings.password:
        environ["PGPASSWORD"] = settings.password
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", *command, *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_loads_the_example_and_prints_one_summary_line(scratch_db):
    example = _cli(scratch_db, "--example")
    with_dirty = _cli(scratch_db, "--example", "--dirty")

    assert example.returncode == 0, example.stderr
    lines = example.stdout.splitlines()
    assert len(lines) == 1
    assert "10 listings and 12 images" in lines[0]
    assert with_dirty.returncode == 0, with_dirty.stderr
    expected = f"{10 + len(DIRTY_CASES)} listings and {12 + DIRTY_C2C_IMAGES + DIRTY_B2C_IMAGES} images"
    assert expected in with_dirty.stdout


def test_migration_fixtures_is_a_hidden_alias_of_listings_standin(scratch_db):
    # Scripts outside the repository still run `python -m migration fixtures ...`.
    alias = _cli(scratch_db, "--example", "--replace-schema", command=("migration", "fixtures"))
    failed = _cli(scratch_db, command=("migration", "fixtures"))
    listed = subprocess.run([sys.executable, "-m", "migration", "--help"], capture_output=True, text=True, check=True)

    assert alias.returncode == 0, alias.stderr
    assert alias.stdout.startswith("fixtures: ") and "10 listings and 12 images" in alias.stdout
    assert failed.returncode == 2 and failed.stderr.startswith("listings-migration fixtures: error: ")
    assert "publish" in listed.stdout and "fixtures" not in listed.stdout


def test_cli_failure_leaves_the_database_as_it_was(scratch_db):
    assert _cli(scratch_db, "--example").returncode == 0

    invalid = _cli(scratch_db, "--c2c", "5", "--images-per-listing", "9")  # fails after the schema load
    clash = _cli(scratch_db, "--example", "--no-schema")  # duplicate ids

    assert (invalid.returncode, clash.returncode) == (2, 2)
    with scratch_db.connect() as conn:
        assert view_counts(conn) == (10, 12)


def test_cli_reports_failures_in_one_line_with_exit_code_2(scratch_db):
    unreachable = _cli(scratch_db, "--example", PGPORT="1")
    no_size = _cli(scratch_db)
    no_schema = _cli(scratch_db, "--example", "--no-schema")

    for result in (unreachable, no_size, no_schema):
        assert result.returncode == 2
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert "cannot connect" in unreachable.stderr
    assert "--example" in no_size.stderr
    assert "monolith" in no_schema.stderr


def test_load_schema_refuses_to_drop_a_monolith_schema_it_did_not_create(scratch_db):
    with scratch_db.connect(autocommit=True) as conn:
        conn.execute("CREATE SCHEMA monolith")
        conn.execute("CREATE TABLE monolith.c2c_listings (id integer primary key)")
        conn.execute("INSERT INTO monolith.c2c_listings VALUES (1)")
        with pytest.raises(ConfigError, match="not created by these fixtures"):
            load_schema(conn)
        assert conn.execute("SELECT count(*) FROM monolith.c2c_listings").fetchone()[0] == 1
        load_schema(conn, replace_foreign=True)  # disposable: explicitly allowed
        load_schema(conn)  # ours now: reloads without the flag
        assert conn.execute("SELECT to_regclass('monolith.unified_listings') IS NOT NULL").fetchone()[0]
