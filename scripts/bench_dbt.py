"""Benchmark the dbt migration at production scale; prints figures, asserts nothing.

    scripts/bench_dbt.sh [--c2c 1000000] [--b2c 500000] [--keep-data]

Generates the stand-in monolith in database `listings_bench` (unless
--keep-data finds it already there), measures the floor (one read of the source
view: count(*) and sum(jsonb_array_length(images))), then a full `dbt run` and
`dbt test`, each with its wall time, listings/s and the dbt process's peak RSS.
Copy the output into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migration import fixtures  # noqa: E402
from migration.pg import PgSettings  # noqa: E402


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """(seconds, peak RSS in KiB, exit code) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--c2c", type=int, default=1_000_000)
    parser.add_argument("--b2c", type=int, default=500_000)
    parser.add_argument("--database", default="listings_bench")
    parser.add_argument("--keep-data", action="store_true", help="reuse the generated monolith if present")
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
            fixtures.load_schema(conn)
            fixtures.generate(conn, c2c=args.c2c, b2c=args.b2c)
            print(f"  generated in {time.perf_counter() - started:.1f} s", flush=True)
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
        listings = conn.execute("select count(*) from public.listings").fetchone()[0]
        images_migrated = conn.execute("select count(*) from public.listing_images").fetchone()[0]

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
    return 0 if run_rc == 0 and test_rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
