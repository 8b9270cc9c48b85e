"""Run-book commands against the real PostgreSQL: preflight."""

from __future__ import annotations

from conftest import migration_cli

import standin


def test_preflight_passes_on_a_readable_monolith_and_fails_without_one(scratch_db):
    missing = migration_cli(scratch_db, "preflight")
    assert missing.returncode == 1
    assert "✗" in missing.stdout and "attach-monolith" in missing.stdout

    with scratch_db.connect(autocommit=True) as conn:
        standin.load_schema(conn)
        standin.load_example(conn)
    no_service = migration_cli(scratch_db, "preflight")
    assert no_service.returncode == 1
    assert "✗ the microservice's tables exist in schema public (missing: listings" in no_service.stdout

    with scratch_db.connect(autocommit=True) as conn:
        standin.load_service_schema(conn)
    ready = migration_cli(scratch_db, "preflight")
    assert ready.returncode == 0, ready.stdout
    assert "25 expected columns" in ready.stdout
    assert "source has 10 rows" in ready.stdout
    assert "✓ this role has the privileges publish needs" in ready.stdout


def test_preflight_names_the_privileges_publish_lacks(scratch_db):
    with scratch_db.connect(autocommit=True) as conn:
        standin.load_schema(conn)
        standin.load_example(conn)
        standin.load_service_schema(conn)
        conn.execute("drop role if exists preflight_reader")
        conn.execute("create role preflight_reader login password 'preflight-reader-pw'")
        conn.execute("grant select on all tables in schema public, monolith to preflight_reader")
        conn.execute("grant usage on schema monolith to preflight_reader")
    try:
        result = migration_cli(
            scratch_db, "preflight", env={"PGUSER": "preflight_reader", "PGPASSWORD": "preflight-reader-pw"}
        )
        assert result.returncode == 1
        line = next(x for x in result.stdout.splitlines() if "privileges publish needs" in x)
        assert line.startswith("✗")
        assert "INSERT on public.listings" in line and "DELETE on public.listing_images" in line
        assert "UPDATE on sequence" in line
        # and without USAGE on the service's schema, that is what it says
        with scratch_db.connect(autocommit=True) as conn:
            conn.execute("revoke usage on schema public from public")
        result = migration_cli(
            scratch_db, "preflight", env={"PGUSER": "preflight_reader", "PGPASSWORD": "preflight-reader-pw"}
        )
        assert result.returncode == 1, result.stderr
        line = next(x for x in result.stdout.splitlines() if "privileges publish needs" in x)
        assert line.startswith("✗") and "USAGE on schema public" in line
    finally:
        with scratch_db.connect(autocommit=True) as conn:
            conn.execute("reassign owned by preflight_reader to current_user")
            conn.execute("drop owned by preflight_reader")
            conn.execute("drop role preflight_reader")


def test_preflight_flags_a_monolith_whose_time_zone_is_not_the_configured_one(scratch_db):
    with scratch_db.connect(autocommit=True) as conn:
        standin.load_schema(conn)
        standin.load_example(conn)
        standin.load_service_schema(conn)
        conn.execute(f"alter database \"{scratch_db.dbname}\" set timezone = 'Europe/Belgrade'")
    wrong = migration_cli(scratch_db, "preflight")
    assert wrong.returncode == 1
    assert "✗ the monolith server's TimeZone (Europe/Belgrade)" in wrong.stdout
    assert "monolith_time_zone" in wrong.stdout
    right = migration_cli(scratch_db, "preflight", env={"MONOLITH_TIME_ZONE": "Europe/Belgrade"})
    assert right.returncode == 0, right.stdout
