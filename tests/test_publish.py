"""`python -m migration publish` against the real PostgreSQL and the microservice stand-in.

The service's tables exist before the migration (microservice/schema.sql: bigint ids
from sequences, CHECKs, timestamptz, columns of its own, triggers, grants, tables of
its own that reference listings); publish must leave all of that whole, touch only
its own rows, carry the monolith's values exactly, and catch up on re-runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import yaml
from conftest import ROOT, build, libpq_params, load_monolith, migration_cli, pg_env, publish, scratch_database

import standin
from listings_common.pg import PgSettings

B2C_OFFSET = int(yaml.safe_load((ROOT / "dbt_project.yml").read_text())["vars"]["b2c_id_offset"])
SERVICE_ID = 8_000_000_000_001


def scalar(settings: PgSettings, query: str, params: tuple = ()) -> object:
    with settings.connect(autocommit=True) as conn:
        return conn.execute(query, params).fetchone()[0]


def execute(settings: PgSettings, *statements: str) -> None:
    with settings.connect(autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def service_writes_its_own_rows(settings: PgSettings) -> None:
    """A listing, tag, favourite and image the service wrote itself."""
    execute(
        settings,
        f"insert into public.listings (id, user_id, category_id, title, price) values ({SERVICE_ID}, 1, 1, 'made by"
        " the service', 5)",
        f"insert into public.listing_tags (listing_id, tag) values ({SERVICE_ID}, 'service')",
        f"insert into public.listing_images (listing_id, url) values ({SERVICE_ID}, 'https://service/own.jpg')",
    )


def service_state(settings: PgSettings) -> dict:
    """What the service owns besides our rows: schema objects, grants, its own rows."""
    with settings.connect(autocommit=True) as conn:
        one = lambda q: conn.execute(q).fetchone()[0]  # noqa: E731
        return {
            "fks_to_listings": one(
                "select count(*) from pg_constraint where contype = 'f' and confrelid = 'public.listings'::regclass"
            ),
            "id_default": one(
                "select column_default from information_schema.columns where table_schema = 'public'"
                " and table_name = 'listings' and column_name = 'id'"
            ),
            "triggers": one("select count(*) from pg_trigger where not tgisinternal and tgname like '%touch'"),
            "grant": one("select has_table_privilege('listings_service', 'public.listings', 'INSERT')"),
            "created_at_type": one(
                "select data_type from information_schema.columns where table_schema = 'public'"
                " and table_name = 'listings' and column_name = 'created_at'"
            ),
            "checks": one(
                "select count(*) from pg_constraint where contype = 'c' and conrelid = 'public.listings'::regclass"
            ),
            "own_listing": one(f"select title from public.listings where id = {SERVICE_ID}"),
            "own_tags": one(f"select count(*) from public.listing_tags where listing_id = {SERVICE_ID}"),
            "own_images": one(f"select count(*) from public.listing_images where listing_id = {SERVICE_ID}"),
            "table_oids": one(
                "select string_agg(oid::text, ',' order by relname) from pg_class"
                " where relnamespace = 'public'::regnamespace"
                " and relname in ('listings', 'listing_images', 'listing_locations')"
            ),
        }


@contextmanager
def publish_waiting_on(db: PgSettings, blocking: str) -> Iterator[subprocess.Popen]:
    """A publish midway: another session ran `blocking` (and holds what it locked), so publish waits
    on that lock (up to 60 s). Yields the process; the lock goes on exit."""
    with db.connect() as blocker:
        blocker.execute(blocking)
        proc = subprocess.Popen(
            [sys.executable, "-m", "migration", "publish", "--lock-timeout", "60s"],
            cwd=ROOT, env={**os.environ, **pg_env(db)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not scalar(
            db,
            "select count(*) from pg_stat_activity where application_name = 'listings-migration publish'"
            " and wait_event_type = 'Lock'",
        ):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError(f"publish never reached the lock of {blocking!r}: {proc.communicate()}")
            time.sleep(0.1)
        try:
            yield proc
        finally:
            blocker.rollback()


def publish_waiting_on_a_row_lock(db: PgSettings) -> contextlib.AbstractContextManager[subprocess.Popen]:
    """Publish in its write transaction: the ledger row, deletes and inserts written, waiting to
    update a listing the service holds a row lock on."""
    return publish_waiting_on(db, "select * from public.listings where id = 3 for update")


def table_digest(settings: PgSettings) -> str:
    """The service's three tables, whole."""
    with settings.connect(autocommit=True) as conn:
        return conn.execute(
            "select md5(string_agg(x, ',' order by x)) from ("
            " select t::text as x from public.listings t union all select t::text from public.listing_images t"
            " union all select t::text from public.listing_locations t) as all_rows"
        ).fetchone()[0]


def test_publish_keeps_the_service_schema_and_rows_whole_over_three_runs(run_dbt):
    with scratch_database() as db:
        load_monolith(db, c2c=60, b2c=30)
        service_writes_its_own_rows(db)
        before = service_state(db)
        execute(db, "insert into public.listing_tags (listing_id, tag) values (8000000000001, 'second')")
        before["own_tags"] = 2
        for run in range(3):
            if run:  # the monolith changes between runs: an edit, an addition, a deletion
                execute(
                    db,
                    f"update monolith.c2c_listings set title = 'edited in run {run}' where id = 2",
                    "insert into monolith.c2c_listings (id, user_id, category_id, title, price, created_at)"
                    f" values ({100000 + run}, 1, 1, 'added in run {run}', 10, '2025-01-01')",
                    f"delete from monolith.c2c_images where listing_id = {10 + run}",
                    f"delete from monolith.c2c_listings where id = {10 + run}",
                )
            build(run_dbt, db)
            publish(db)
            if run == 0:  # the service hangs its own rows on a migrated listing the monolith then edits
                assert scalar(db, "select count(*) from public.listings where id in (11, 12)") == 2
                execute(
                    db,
                    "insert into public.listing_tags (listing_id, tag) values (2, 'the service''s tag')",
                    "insert into public.listing_favorites (user_id, listing_id) values (77, 2)",
                )
            assert service_state(db) == before
        assert scalar(db, "select title from public.listings where id = 2") == "edited in run 2"
        assert scalar(db, "select count(*) from public.listing_tags where listing_id = 2") == 1
        assert scalar(db, "select count(*) from public.listing_favorites where listing_id = 2") == 1
        assert scalar(db, "select count(*) from public.listings where id in (100001, 100002)") == 2
        assert scalar(db, "select count(*) from public.listings where id in (11, 12)") == 0
        published = scalar(db, "select count(*) from public_migration.published_listings")
        assert published > 60
        # each sequence is past the largest id the migration can ever publish (b2c_id_offset + the largest
        # integer): the service's next insert works, and never takes the id of a future monolith row
        new_id = scalar(
            db, "insert into public.listings (user_id, category_id, title, price) values (1, 1, 'next', 1) returning id"
        )
        assert new_id > B2C_OFFSET + 2**31 - 1
        image_id = scalar(
            db,
            "insert into public.listing_images (listing_id, url) values (1, 'https://service/next.jpg') returning id",
        )
        assert image_id > B2C_OFFSET + 2**31 - 1


def test_carried_values_equal_the_monolith_whatever_the_triggers_do(run_dbt, published_copy):
    with published_copy(dirty=True) as db:
        execute(
            db,
            "update monolith.c2c_listings set title = 'edited in the monolith', updated_at = '2021-02-03 04:05:06.789'"
            " where id = 5",
            "update monolith.b2c_products set price = 77.70, updated_at = '2022-01-01 12:00:00+02' where id = 5",
        )
        build(run_dbt, db)
        result = publish(db)
        assert " listings " in result.stdout
        with db.connect(autocommit=True) as conn:
            c2c = conn.execute("select title, updated_at::text from public.listings where id = 5").fetchone()
            b2c = conn.execute(
                "select price, updated_at::text from public.listings where id = %s", (B2C_OFFSET + 5,)
            ).fetchone()
            differing = conn.execute(
                "select count(*) from public_staged.listings s join public.listings t using (id)"
                " where (s.uuid, s.title, s.description, s.price, s.currency, s.status, s.created_at, s.updated_at)"
                " is distinct from (t.uuid, t.title, t.description, t.price, t.currency, t.status, t.created_at,"
                " t.updated_at)"
            ).fetchone()[0]
        assert c2c == ("edited in the monolith", "2021-02-03 04:05:06.789+00")
        assert str(b2c[0]) == "77.70" and b2c[1] == "2022-01-01 10:00:00+00"
        assert differing == 0


def test_catch_up_publishes_exactly_the_inserts_updates_and_deletes_of_the_monolith(run_dbt, published_copy):
    with published_copy() as db:
        service_writes_its_own_rows(db)
        # the service hangs a tag on a migrated listing that the monolith then deletes
        execute(db, "insert into public.listing_tags (listing_id, tag) values (7, 'on a migrated listing')")
        execute(
            db,
            "update monolith.c2c_listings set title = 'changed title' where id in (3, 4)",
            "delete from monolith.c2c_images where listing_id = 7",
            "delete from monolith.c2c_listings where id = 7",
            "insert into monolith.c2c_listings (id, user_id, category_id, title, price, created_at)"
            " values (100001, 1, 1, 'added while live', 10, '2025-01-01')",
            "update monolith.b2c_product_images set image_url = 'https://changed/1.jpg'"
            " where id = (select min(id) from monolith.b2c_product_images)",
        )
        build(run_dbt, db)
        digest = table_digest(db)
        runs_before = scalar(db, "select count(*) from public_migration.publish_runs")
        plan = migration_cli(db, "publish", "--plan")
        assert plan.returncode == 0, plan.stderr
        assert table_digest(db) == digest  # --plan changed nothing
        assert scalar(db, "select count(*) from public_migration.publish_runs") == runs_before
        result = publish(db)

        def counts(stdout: str) -> dict[str, list[str]]:
            return {line.split()[0]: line.split()[1:] for line in stdout.splitlines() if line.startswith("  listing")}

        lines = counts(result.stdout)
        assert counts(plan.stdout) == lines  # the plan said what publish then did
        assert lines["listings"][:3] == ["1", "2", "1"]  # insert, update, delete
        assert lines["listing_images"][1] == "1"
        runs = scalar(db, "select count(*) from public_migration.publish_runs")
        version = scalar(db, "select max(version) from public_migration.published_listings")
        assert version == runs
        assert scalar(db, "select count(*) from public.listings where id = 7") == 0
        assert scalar(db, "select count(*) from public_migration.published_listings where deleted_run is not null") == 1
        assert scalar(db, f"select count(*) from public.listing_tags where listing_id = {SERVICE_ID}") == 1

        # a re-run with no change updates no row
        build(run_dbt, db)
        xmins = scalar(db, "select md5(string_agg(xmin::text, ',' order by id)) from public.listings")
        again = publish(db)
        assert "listings                    0          0          0" in again.stdout
        assert scalar(db, "select md5(string_agg(xmin::text, ',' order by id)) from public.listings") == xmins


def test_a_failing_build_leaves_the_service_untouched_and_publish_refuses(run_dbt, published_copy):
    with published_copy(dirty=True) as db:
        digest = table_digest(db)
        execute(db, "update monolith.c2c_listings set title = 'changed' where id = 2")
        failed = run_dbt(db, "build", "--vars", "{fallback_status: bogus}")
        assert failed.returncode != 0
        assert table_digest(db) == digest
        refused = migration_cli(db, "publish")
        assert refused.returncode == 1
        assert len(refused.stderr.strip().splitlines()) == 1
        assert "failed" in refused.stderr and "nothing changed" in refused.stderr
        assert table_digest(db) == digest
        # a partial build and a bare `dbt run` are refused too
        partial = run_dbt(db, "build", "--select", "listings")
        assert partial.returncode == 0, partial.stdout[-2000:]
        assert "part of the project" in migration_cli(db, "publish").stderr
        run = run_dbt(db, "run")
        assert run.returncode == 0, run.stdout[-2000:]
        assert "dbt run" in migration_cli(db, "publish").stderr
        assert table_digest(db) == digest


def test_a_build_killed_midway_is_never_published(run_dbt, published_copy, dbt_profiles_dir, tmp_path):
    with published_copy(dirty=True) as db:
        digest = table_digest(db)
        env = {
            **os.environ,
            **pg_env(db),
            "DBT_PROFILES_DIR": dbt_profiles_dir,
            "DBT_TARGET_PATH": str(tmp_path / "target"),
            "DBT_LOG_PATH": str(tmp_path / "logs"),
        }
        # hold a lock the build needs, so it is certainly midway when killed
        with db.connect() as blocker:
            blocker.execute("lock table public_staged.listing_images in access exclusive mode")
            dbt = subprocess.Popen(
                [str(Path(sys.executable).with_name("dbt")), "build"], cwd=ROOT, env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if scalar(db, "select count(*) from public_migration.dbt_builds where status = 'running'"):
                    break
                time.sleep(0.2)
            time.sleep(2)
            dbt.send_signal(signal.SIGKILL)
            dbt.wait(timeout=30)
        refused = migration_cli(db, "publish")
        assert refused.returncode == 1
        assert "never finished" in refused.stderr
        assert table_digest(db) == digest


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_publish_killed_midway_changes_nothing(run_dbt, published_copy, sig):
    with published_copy(dirty=True) as db:
        assert scalar(db, "select count(*) from public.listings where id = 12") == 1
        execute(
            db,
            "update monolith.c2c_listings set title = 'changed before the kill' where id < 10",
            "delete from monolith.c2c_images where listing_id = 12",
            "delete from monolith.c2c_listings where id = 12",
            "insert into monolith.c2c_listings (id, user_id, category_id, title, price, created_at)"
            " values (100002, 1, 1, 'added before the kill', 10, '2025-01-01')",
        )
        build(run_dbt, db)
        digest = table_digest(db)
        with publish_waiting_on_a_row_lock(db) as proc:
            started = time.monotonic()
            proc.send_signal(sig)
            _, stderr = proc.communicate(timeout=30)
            stopped_in = time.monotonic() - started
        if sig == signal.SIGTERM:
            assert proc.returncode == 130, stderr
            assert stderr.strip() == (
                "listings-migration publish: error: interrupted (Ctrl-C or SIGTERM): rolled back, nothing changed"
            )
            assert stopped_in < 10  # it does not wait for the lock it was waiting on
        else:
            assert proc.returncode == -signal.SIGKILL
        time.sleep(0.5)
        assert table_digest(db) == digest
        assert scalar(db, "select count(*) from public_migration.publish_runs") == 1
        publish(db)
        assert scalar(db, "select title from public.listings where id = 3") == "changed before the kill"
        assert scalar(db, "select count(*) from public.listings where id = 12") == 0
        assert scalar(db, "select title from public.listings where id = 100002") == "added before the kill"


def test_constraints_added_to_the_service_later_are_honoured(run_dbt):
    with scratch_database() as db:
        load_monolith(db, c2c=30, b2c=10, dirty=False)
        execute(db, "alter table public.listings add constraint price_below_a_million check (price < 1000000)")
        execute(db, "update monolith.c2c_listings set price = 5000000 where id = 4")
        build(run_dbt, db)
        publish(db)
        reason = scalar(
            db, "select reason from public_staged.listings_rejected where source_id = 4 and source_type = 'c2c'"
        )
        assert "price_below_a_million" in reason
        assert scalar(db, "select count(*) from public.listings where id = 4") == 0


def test_an_id_the_service_already_used_is_quarantined_never_overwritten(run_dbt):
    with scratch_database() as db:
        load_monolith(db, c2c=20, b2c=10, dirty=False)
        execute(
            db,
            "insert into public.listings (id, user_id, category_id, title, price)"
            " values (3, 9, 9, 'the service''s 3', 1)",
        )
        build(run_dbt, db)
        result = publish(db)
        assert "collision" in result.stdout
        assert scalar(db, "select title from public.listings where id = 3") == "the service's 3"
        assert scalar(db, "select reason from public_migration.publish_quarantine where id = 3") == (
            "id is taken by a listing the service wrote itself"
        )
        runs = scalar(db, "select source_rows = published_rows + quarantined_rows from public_migration.publish_runs")
        assert runs is True
        # and the next runs never touch it either
        build(run_dbt, db)
        publish(db)
        assert scalar(db, "select title from public.listings where id = 3") == "the service's 3"


def test_an_implausible_catch_up_is_refused_unless_allowed(run_dbt, published_copy):
    with published_copy() as db:
        digest = table_digest(db)
        execute(
            db, "delete from monolith.c2c_images where listing_id > 5", "delete from monolith.c2c_listings where id > 5"
        )
        build(run_dbt, db)
        refused = migration_cli(db, "publish")
        assert refused.returncode == 1
        assert "would delete" in refused.stderr and "--allow-large-change" in refused.stderr
        assert table_digest(db) == digest
        publish(db, "--allow-large-change")
        assert scalar(db, "select count(*) from public.listings where source_type = 'c2c'") == 5


def test_a_ledger_of_the_earlier_hash_kind_is_read_and_converted_without_changing_a_row(run_dbt, published_copy):
    with published_copy() as db:
        # the ledger as publish wrote it before its hashes were hash_record_extended: md5 of the row's text
        execute(
            db,
            "update public_migration.published_listings as p set listing_hash = md5(row(s.*)::text)"
            " from public_staged.listings as s where s.id = p.listing_id",
            "update public_migration.published_listings as p set location_hash = md5(row(s.*)::text)"
            " from public_staged.listing_locations as s where s.listing_id = p.listing_id",
            "update public_migration.published_images as p set image_hash = md5(row(s.id, s.listing_id, s.url,"
            " s.thumbnail_url, s.display_order, s.is_primary)::text) from public_staged.listing_images as s"
            " where s.id = p.image_id",
        )
        legacy = "select count(*) from public_migration.published_listings where length(listing_hash) = 32"
        assert scalar(db, legacy) == 40
        others = "select md5(string_agg(xmin::text, ',' order by id)) from public.listings where id <> 3"
        untouched = scalar(db, others)
        execute(db, "update monolith.c2c_listings set title = 'edited across the upgrade' where id = 3")
        build(run_dbt, db)
        result = publish(db)
        lines = {
            line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.startswith("  listing")
        }
        assert lines["listings"][:3] == ["0", "1", "0"], result.stdout
        assert lines["listing_images"][:3] == ["0", "0", "0"], result.stdout
        assert lines["listing_locations"][:3] == ["0", "0", "0"], result.stdout
        assert scalar(db, legacy) == 0
        assert scalar(db, "select count(*) from public_migration.published_images where length(image_hash) = 32") == 0
        assert scalar(db, "select title from public.listings where id = 3") == "edited across the upgrade"
        assert scalar(db, others) == untouched  # no other row was written
        # and the next run finds nothing to do
        again = publish(db)
        assert "listings                    0          0          0" in again.stdout


def test_a_catch_up_changing_most_listings_is_refused_unless_allowed(run_dbt, published_copy):
    with published_copy() as db:
        digest = table_digest(db)
        execute(
            db,
            "update monolith.c2c_listings set title = title || ' (edited)'",
            "update monolith.b2c_products set name = name || ' (edited)'",
        )
        build(run_dbt, db)
        refused = migration_cli(db, "publish")
        assert refused.returncode == 1
        assert len(refused.stderr.strip().splitlines()) == 1
        assert "would update 40 of the 40 published listings" in refused.stderr
        assert table_digest(db) == digest
        publish(db, "--allow-large-change")
        assert scalar(db, "select count(*) from public.listings where title like '%%(edited)'") == 40


def test_a_change_committed_while_a_build_runs_is_published_by_the_next_run(run_dbt, published_copy):
    with published_copy() as db:
        done: list[subprocess.CompletedProcess] = []
        # dbt is held on a lock once it has read the source (the staged images wait to replace theirs)
        with db.connect() as blocker:
            blocker.execute("lock table public_staged.listing_images in access exclusive mode")
            builder = threading.Thread(
                target=lambda: done.append(run_dbt(db, "build", "--exclude-resource-type", "unit_test"))
            )
            builder.start()
            deadline = time.monotonic() + 60
            while not scalar(
                db,
                "select count(*) from pg_locks where relation = 'public_staged.listing_images'::regclass"
                " and not granted",
            ):
                assert time.monotonic() < deadline, "the build never reached the staged images"
                time.sleep(0.2)
            execute(db, "update monolith.c2c_listings set title = 'committed during the build' where id = 4")
        builder.join(timeout=120)
        assert done and done[0].returncode == 0, done[0].stdout[-2000:] if done else "build still running"
        publish(db)
        assert scalar(db, "select title from public.listings where id = 4") != "committed during the build"
        build(run_dbt, db)
        publish(db)
        assert scalar(db, "select title from public.listings where id = 4") == "committed during the build"


def test_soft_delete_marks_instead_of_deleting_and_search_leaves_it_out(run_dbt):
    with scratch_database() as db:
        load_monolith(db, c2c=20, b2c=5, dirty=False)
        soft = ["--vars", "{soft_delete_column: is_deleted, soft_delete_time_column: deleted_at}"]
        build(run_dbt, db, *soft)
        publish(db)
        execute(
            db, "delete from monolith.c2c_images where listing_id = 2", "delete from monolith.c2c_listings where id = 2"
        )
        build(run_dbt, db, *soft)
        publish(db)
        assert scalar(db, "select is_deleted and deleted_at is not null from public.listings where id = 2") is True
        assert scalar(db, "select count(*) from public_search.listing_search_documents where id = 2") == 0


def test_publish_waits_at_most_its_lock_timeout_and_changes_nothing(run_dbt):
    with scratch_database() as db:
        load_monolith(db, c2c=20, b2c=5, dirty=False)
        build(run_dbt, db)
        digest = table_digest(db)
        with db.connect() as blocker:
            blocker.execute("lock table public.listings in access exclusive mode")
            started = time.monotonic()
            result = migration_cli(db, "publish", "--lock-timeout", "1s")
            took = time.monotonic() - started
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1
        assert "could not lock" in result.stderr
        assert took < 10  # a 1 s lock timeout, the process's start and the diff of 25 listings
        assert table_digest(db) == digest


def test_the_diff_holds_no_lock_on_the_service_tables_between_its_reads(run_dbt, published_copy):
    with published_copy() as db:
        execute(db, "update monolith.c2c_listings set title = 'changed for the diff' where id < 5")
        build(run_dbt, db)
        digest = table_digest(db)
        # publish's diff reads the service's listings, then waits for the ledger's images; meanwhile
        # the service's own migration takes its tables at once: publish holds nothing on them
        ledger = "lock table public_migration.published_images in access exclusive mode"
        with publish_waiting_on(db, ledger) as proc, psycopg.connect(**libpq_params(db)) as service:
            service.execute("lock table public.listings, public.listing_images, public.listing_locations nowait")
            service.rollback()
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        assert table_digest(db) != digest
        assert scalar(db, "select title from public.listings where id = 2") == "changed for the diff"


def test_a_constraint_added_between_build_and_publish_refuses_in_one_line_and_changes_nothing(run_dbt, published_copy):
    with published_copy() as db:
        execute(db, "update monolith.c2c_listings set title = 'a title the service will refuse' where id = 2")
        build(run_dbt, db)
        digest = table_digest(db)
        execute(db, "alter table public.listings add constraint no_refuse check (title not like '%refuse%')")
        refused = migration_cli(db, "publish")
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == [refused.stderr.strip()]
        assert "no_refuse" in refused.stderr and "run `dbt build` again" in refused.stderr
        assert table_digest(db) == digest
        build(run_dbt, db)  # which reads the new constraint and quarantines the row
        publish(db)
        reason = scalar(db, "select reason from public_staged.listings_rejected where source_id = 2")
        assert "no_refuse" in reason


def test_service_reads_and_writes_are_not_blocked_by_a_publish_in_progress(run_dbt, published_copy):
    with published_copy() as db:
        execute(db, "update monolith.c2c_listings set title = 'changed again' where id < 20")
        build(run_dbt, db)
        # publish is midway, holding its row locks: the service still reads, and writes its own rows
        with (
            publish_waiting_on_a_row_lock(db) as proc,
            psycopg.connect(**libpq_params(db), autocommit=True, options="-c lock_timeout=2s") as service,
        ):
            assert service.execute("select count(*) from public.listings").fetchone()[0] > 0
            service.execute("insert into public.listings (user_id, category_id, title, price) values (1, 1, 'own', 1)")
        assert proc.wait(timeout=60) == 0, proc.stderr.read()  # and it finishes once the row lock goes


def test_publish_whose_connection_is_killed_fails_in_one_line_and_changes_nothing(run_dbt, published_copy):
    with published_copy() as db:
        execute(db, "update monolith.c2c_listings set title = 'changed before the cut' where id < 10")
        build(run_dbt, db)
        digest = table_digest(db)
        with publish_waiting_on_a_row_lock(db) as proc:
            terminated = scalar(
                db,
                "select count(pg_terminate_backend(pid)) from pg_stat_activity"
                " where application_name = 'listings-migration publish'",
            )
            _, stderr = proc.communicate(timeout=30)
        assert terminated == 1
        assert proc.returncode == 2
        assert len(stderr.strip().splitlines()) == 1, stderr
        assert table_digest(db) == digest


def test_a_monolith_in_another_time_zone_lands_as_the_right_instants(run_dbt):
    with scratch_database() as db:
        load_monolith(db, c2c=10, b2c=5, dirty=False)
        execute(
            db,
            "update monolith.c2c_listings set created_at = '2025-07-01 12:00:00', updated_at = '2025-01-15 12:00:00'"
            " where id = 2",
        )
        belgrade = {"MONOLITH_TIME_ZONE": "Europe/Belgrade"}
        build(run_dbt, db, env=belgrade)
        publish(db, env=belgrade)
        with db.connect(autocommit=True) as conn:
            created, updated = conn.execute(
                "select created_at = '2025-07-01 10:00:00+00', updated_at = '2025-01-15 11:00:00+00'"
                " from public.listings where id = 2"
            ).fetchone()
            document = conn.execute(
                "select document ->> 'created_at' from public_search.listing_search_documents where id = 2"
            ).fetchone()[0]
        assert created and updated
        assert document == "2025-07-01T10:00:00.000000Z"


def test_a_listing_the_service_deleted_is_left_deleted_when_the_monolith_changes_it(run_dbt, published_copy):
    with published_copy() as db:
        execute(db, "delete from public.listings where id in (5, 6)")  # the service's own decision
        execute(
            db,
            "update monolith.c2c_listings set title = 'edited after the service deleted it' where id = 5",
            "update monolith.c2c_images set public_url = 'https://changed/5.jpg' where listing_id = 5",
        )
        build(run_dbt, db)
        result = publish(db)
        assert "published earlier and since deleted by the service: left deleted" in result.stdout
        assert scalar(db, "select count(*) from public.listings where id in (5, 6)") == 0
        assert scalar(db, "select count(*) from public.listing_images where listing_id in (5, 6)") == 0
        assert scalar(db, "select count(*) from public.listing_locations where listing_id in (5, 6)") == 0


def test_publish_and_report_follow_the_schema_dbt_built_into(run_dbt):
    """A profile whose `schema:` is not public (here through LISTINGS_SCHEMA, for dbt only):
    publish and report find the build there without being told."""
    with scratch_database() as db:
        load_monolith(db, c2c=10, b2c=5, dirty=False, service=False)
        with db.connect(autocommit=True) as conn:
            standin.load_service_schema(conn, "market")
        build(run_dbt, db, env={"LISTINGS_SCHEMA": "market"})
        unset = {"LISTINGS_SCHEMA": ""}
        result = publish(db, env=unset)
        assert "(market_staged) -> market" in result.stdout
        assert scalar(db, "select count(*) from market.listings") == 15
        report = migration_cli(db, "report", env=unset)
        assert report.returncode == 0, report.stdout + report.stderr
        assert "(schema market)" in report.stdout
        # a second ledger in the database: which one is meant must be said
        execute(db, "create schema public_migration", "create table public_migration.dbt_builds (id int)")
        refused = migration_cli(db, "publish", env=unset)
        assert refused.returncode == 2, refused.stderr
        assert "market, public" in refused.stderr and "--schema" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert "(market_staged) -> market" in publish(db, "--schema", "market", env=unset).stdout
