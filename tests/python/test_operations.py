"""Run-book commands against the real PostgreSQL: preflight, snapshot and restore."""

from __future__ import annotations

from pathlib import Path

from conftest import build, load_monolith, migration_cli, scratch_database
from test_dbt_migration import table_digests

from migration import fixtures

ROOT = Path(__file__).resolve().parents[2]


def test_restore_puts_back_exactly_the_snapshotted_tables(run_dbt):
    with scratch_database("snapshot") as settings:
        load_monolith(settings, c2c=50, b2c=20)
        build(run_dbt, settings)
        before = table_digests(settings)

        taken = migration_cli(settings, "snapshot")
        assert taken.returncode == 0, taken.stderr
        name = migration_cli(settings, "snapshots").stdout.split()[0]
        assert name.startswith("public_snapshot_")

        with settings.connect(autocommit=True) as conn:
            conn.execute("delete from public.listing_images")
            conn.execute("update public.listings set title = 'changed'")
        assert table_digests(settings) != before

        restored = migration_cli(settings, "restore", name)
        assert restored.returncode == 0, restored.stderr
        assert table_digests(settings) == before
        assert migration_cli(settings, "snapshots").stdout.strip() == ""
        with settings.connect() as conn:  # constraints came back too
            primary_keys = conn.execute(
                "select count(*) from pg_constraint where contype = 'p'"
                " and conrelid in ('public.listings'::regclass, 'public.listing_images'::regclass)"
            ).fetchone()[0]
        assert primary_keys == 2


def test_restore_of_an_unknown_snapshot_fails_in_one_line(scratch_db):
    result = migration_cli(scratch_db, "restore", "public_snapshot_19990101000000")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no snapshot" in result.stderr


def test_preflight_passes_on_a_readable_monolith_and_fails_without_one(scratch_db):
    missing = migration_cli(scratch_db, "preflight")
    assert missing.returncode == 1
    assert "✗" in missing.stdout and "attach-monolith" in missing.stdout

    with scratch_db.connect(autocommit=True) as conn:
        fixtures.load_schema(conn)
        fixtures.seed_example(conn)
    ready = migration_cli(scratch_db, "preflight")
    assert ready.returncode == 0, ready.stdout
    assert "25 expected columns" in ready.stdout
    assert "source has 10 rows" in ready.stdout
