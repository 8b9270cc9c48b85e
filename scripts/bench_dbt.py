"""Benchmark the dbt migration and publish at production scale; prints figures, asserts nothing.

    scripts/bench_dbt.sh [--c2c 1000000] [--b2c 500000] [--keep-data] [--no-publish]

Generates the stand-in monolith in database `listings_bench` (unless
--keep-data finds it already there) and applies the microservice stand-in
(microservice/schema.sql: its indexes, triggers and foreign keys), measures the
floor (one read of the source view: count(*) and sum(jsonb_array_length(images))),
then a full `dbt run` and `dbt test`, each with its wall time, listings/s and the
dbt process's peak RSS. Then (unless --no-publish): `dbt build`, a full `publish`
into the empty service tables, 1% of the monolith's rows changed, `dbt build`
again and the catch-up `publish`. Copy the output into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import standin  # noqa: E402
from listings_common.pg import PgSettings  # noqa: E402


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """(seconds, peak RSS in KiB, exit code) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss, proc.returncode


def change_one_percent(bench: PgSettings) -> int:
    """1% of the monolith's listings (at 1M C2C + 500k B2C) changed as a live monolith changes them:
    edits of listings (C2C titles, B2C prices), edits of images only, new listings with images,
    deleted listings."""
    # (statement, whether its row count is a count of changed listings)
    statements = [
        # 0.8%: edited listings
        ("update monolith.c2c_listings set title = title || ' (edited)' where id % 125 = 0", True),
        ("update monolith.b2c_products set price = price + 1 where id % 125 = 0", True),
        # 0.1%: one image of a listing changed, nothing else
        (
            "update monolith.c2c_images set public_url = public_url || '?v=2'"
            " where id in (select min(id) from monolith.c2c_images where listing_id % 1000 = 3 group by listing_id)",
            True,
        ),
        # 0.1%: new listings, with their images
        ("create temp table new_listings as select * from monolith.c2c_listings where id % 1000 = 1", False),
        # new ids above the largest (a --keep-data run adds to the last run's)
        (
            "create temp table shift as select (select max(id) from monolith.c2c_listings) as listing,"
            " (select max(id) from monolith.c2c_images) as image",
            False,
        ),
        ("update new_listings set id = id + (select listing from shift)", False),
        ("insert into monolith.c2c_listings select * from new_listings", True),
        ("create temp table new_images as select * from monolith.c2c_images where listing_id % 1000 = 1", False),
        (
            "update new_images set id = id + (select image from shift),"
            " listing_id = listing_id + (select listing from shift)",
            False,
        ),
        ("insert into monolith.c2c_images select * from new_images", False),
        # 0.1%: deleted listings
        ("delete from monolith.c2c_images where listing_id % 1000 = 2", False),
        ("delete from monolith.c2c_listings where id % 1000 = 2", True),
    ]
    changed = 0
    with bench.connect(autocommit=True) as conn:
        for statement, counts in statements:
            rows = conn.execute(statement).rowcount
            changed += rows if counts else 0
    return changed


class ServiceTraffic:
    """The service at work while publish runs: every 50 ms it reads a listing and updates its own
    column (favorites_count) of a migrated listing that the catch-up edits; the longest wait of each."""

    def __init__(self, bench: PgSettings) -> None:
        self.bench = bench
        self.stop = threading.Event()
        self.reads: list[float] = []
        self.writes: list[float] = []

    def _work(self) -> None:
        with self.bench.connect(autocommit=True, application_name="bench service") as conn:
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.execute("select title from public.listings where id = 200").fetchone()
                self.reads.append(time.perf_counter() - started)
                started = time.perf_counter()
                conn.execute("update public.listings set favorites_count = favorites_count + 1 where id = 200")
                self.writes.append(time.perf_counter() - started)
                self.stop.wait(0.05)

    def __enter__(self) -> ServiceTraffic:
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def summary(self) -> str:
        return (
            f"service during the catch-up publish: {len(self.reads):,} reads, longest {max(self.reads) * 1000:.0f} ms;"
            f" {len(self.writes):,} updates of an edited listing, longest wait {max(self.writes) * 1000:.0f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--c2c", type=int, default=1_000_000)
    parser.add_argument("--b2c", type=int, default=500_000)
    parser.add_argument("--database", default="listings_bench")
    parser.add_argument("--keep-data", action="store_true", help="reuse the generated monolith if present")
    parser.add_argument("--no-publish", action="store_true", help="only dbt run and dbt test")
    args = parser.parse_args()

    admin = PgSettings.from_env().with_database("postgres")
    bench = PgSettings.from_env().with_database(args.database)
    with admin.connect(autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (args.database,)).fetchone()
        if exists and not args.keep_data:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(args.database)))
        if not exists or not args.keep_data:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(args.database)))

    with bench.connect(autocommit=True) as conn:
        have = conn.execute("select to_regclass('monolith.unified_listings') is not null").fetchone()[0]
        if not have or not args.keep_data:
            print(f"generating {args.c2c:,} C2C + {args.b2c:,} B2C listings ...", flush=True)
            started = time.perf_counter()
            standin.load_schema(conn)
            standin.generate(conn, c2c=args.c2c, b2c=args.b2c)
            print(f"  generated in {time.perf_counter() - started:.1f} s", flush=True)
        standin.load_service_schema(conn)
        conn.execute("checkpoint")
        settings = dict(
            conn.execute(
                "select name, setting || coalesce(unit, '') from pg_settings where name = any(%s)",
                (
                    [
                        "shared_buffers",
                        "work_mem",
                        "maintenance_work_mem",
                        "max_wal_size",
                        "wal_level",
                        "synchronous_commit",
                        "max_parallel_workers_per_gather",
                        "jit",
                    ],
                ),
            ).fetchall()
        )
        floor_times = []
        for _ in range(2):
            started = time.perf_counter()
            rows, images = conn.execute(
                "select count(*), sum(jsonb_array_length(images)) from monolith.unified_listings"
            ).fetchone()
            floor_times.append(time.perf_counter() - started)

    env = dict(os.environ, PGDATABASE=args.database)
    dbt = str(Path(sys.executable).with_name("dbt"))
    subprocess.run([dbt, "seed", "--quiet"], cwd=ROOT, env=env, check=True)  # the status map; not timed
    run_s, run_kib, run_rc = run_measured([dbt, "run", "--full-refresh"], env)
    test_s, test_kib, test_rc = run_measured([dbt, "test"], env)
    with bench.connect(autocommit=True) as conn:
        listings = conn.execute("select count(*) from public_staged.listings").fetchone()[0]
        images_migrated = conn.execute("select count(*) from public_staged.listing_images").fetchone()[0]

    floor = min(floor_times)
    print()
    print(f"machine: {os.cpu_count()} cores, {platform.python_version()}, PostgreSQL settings: {settings}")
    print(f"source: {rows:,} rows, {images:,} images; migrated {listings:,} listings, {images_migrated:,} images")
    print(f"floor (read the view once): {floor:.1f} s (first read {floor_times[0]:.1f} s)")
    for name, seconds, kib, rc in (("dbt run", run_s, run_kib, run_rc), ("dbt test", test_s, test_kib, test_rc)):
        print(
            f"{name:<9} {seconds:7.1f} s  {rows / seconds:10,.0f} listings/s  peak RSS {kib / 1024:6.0f} MiB"
            f"  exit {rc}  ({seconds / floor:.2f}x floor)"
        )
    print(
        f"targets: run <= 3x floor: {'yes' if run_s <= 3 * floor else 'NO'}; "
        f"test <= run: {'yes' if test_s <= run_s else 'NO'}; "
        f"dbt peak < 1 GiB: {'yes' if max(run_kib, test_kib) < 1024 * 1024 else 'NO'}"
    )
    if args.no_publish:
        return 0 if run_rc == 0 and test_rc == 0 else 1
    python = [sys.executable, "-m", "migration", "publish"]
    with bench.connect(autocommit=True) as conn:
        conn.execute(
            "truncate public.listings, public.listing_images, public.listing_locations cascade"
        )  # the stand-in's tables, emptied for a full publish (never the service's in production)
        conn.execute("drop schema if exists public_migration cascade")
    build_s, build_kib, build_rc = run_measured([dbt, "build"], env)
    full_s, full_kib, full_rc = run_measured(python, env)
    changed = change_one_percent(bench)
    build2_s, _, build2_rc = run_measured([dbt, "build"], env)
    with ServiceTraffic(bench) as traffic:
        catch_s, catch_kib, catch_rc = run_measured(python, env)
    again_s, _, again_rc = run_measured(python, env)
    print(f"dbt build {build_s:7.1f} s  peak RSS {build_kib / 1024:6.0f} MiB  exit {build_rc}")
    print(
        f"publish (full, into the stand-in with its indexes, triggers, FKs) {full_s:7.1f} s"
        f"  {listings / full_s:10,.0f} listings/s  peak RSS {full_kib / 1024:4.0f} MiB  exit {full_rc}"
        f"  ({full_s / build_s:.2f}x dbt build)"
    )
    print(
        f"changed {changed:,} monolith rows ({changed / rows:.1%}); dbt build again {build2_s:7.1f} s exit {build2_rc}"
    )
    print(
        f"publish (catch-up)  {catch_s:7.1f} s  peak RSS {catch_kib / 1024:4.0f} MiB  exit {catch_rc}"
        f"  ({catch_s / full_s:.2f}x the full publish; build + catch-up ="
        f" {(build2_s + catch_s) / (build_s + full_s):.2f}x"
        " build + full publish)"
    )
    print(f"publish (no change) {again_s:7.1f} s  exit {again_rc}")
    print(traffic.summary())
    print(
        f"targets: full publish < dbt build: {'yes' if full_s < build_s else 'NO'}; "
        f"catch-up publish < 1/10 of build + full publish: {'yes' if catch_s < (build_s + full_s) / 10 else 'NO'}"
    )
    ok = all(rc == 0 for rc in (run_rc, test_rc, build_rc, full_rc, build2_rc, catch_rc, again_rc))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
