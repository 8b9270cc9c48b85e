"""Benchmark `listings-indexer sync` at scale: catch-up throughput and publish-to-visible latency.

Data: the service's tables and the publish ledger are FILLED DIRECTLY in SQL (not through
the fixtures generator + `dbt build` + `publish`, which takes many minutes at 1M): a database
(default `bench_sync`) with `public.listings` (N rows), `public.listing_images` (2 images on
every third listing), the documents view `public_search.listing_search_documents` (same
shape as the dbt model's: fields, location, nested images; one row_to_json per listing) and
`public_migration.publish_runs` / `published_listings` (every listing published by run 1).
A "publish" here is what `listings-migration publish` does to the ledger, in one
transaction: a `publish_runs` row, the listings' rows changed (or deleted), their ledger
rows' `version` (and `deleted_run`) set to the new run.

Measured, after one `reindex` of the N documents:
1. catch-up: a publish that changes --changed-share (1%) of the listings, then
   `python -m indexer sync` (a subprocess, as a timer runs it): seconds and changes/s.
2. latency: a publish of --updates (1,000) changed listings, and one of --deletes (100)
   deleted listings; from the publish's commit to the moment a search through the alias
   (polled every 10 ms) sees all of them, with `python -m indexer sync` started at the
   commit (the best a timer can do) — and also with the sync run in-process (no Python
   start-up: what a long-running sync loop would see). Each --repeat times; median and max.

With --existing, the database is used as it is, made by the real pipeline (`listings-standin
--service`, `dbt build`, `listings-migration publish`): the dbt documents
view and the real ledger; the bench's publishes then change its service tables and ledger
the same way (a publish_runs row copied from the last one).

Usage:  python scripts/bench_sync.py [--docs 1000000] [--database bench_sync] [--rebuild] [--existing]
            [--changed-share 0.01] [--updates 1000] [--deletes 100] [--repeat 3] [--batch-docs 2000]
Environment: PG* (the server; the database is created if missing), OPENSEARCH_URL.
The alias `bench_sync_listings` and its indices are deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opensearchpy import OpenSearch  # noqa: E402
from psycopg import sql  # noqa: E402

from indexer import sync as index_sync  # noqa: E402
from indexer.config import load_config  # noqa: E402
from indexer.lock import LOCK_INDEX  # noqa: E402
from listings_common.pg import PgSettings  # noqa: E402
from standin.synthetic import synthetic_documents  # noqa: E402

ALIAS = "bench_sync_listings"

SCHEMA_SQL = """
drop schema if exists public_search cascade;
drop schema if exists public_migration cascade;
drop table if exists public.listing_images, public.listings;
create schema public_migration;
create table public_migration.publish_runs (
    run_id bigint generated always as identity primary key,
    started_at timestamptz not null default now(), finished_at timestamptz not null default now(),
    counts jsonb not null default '{}'
);
create table public_migration.published_listings (
    listing_id bigint primary key, version bigint not null, first_run bigint not null, deleted_run bigint
);
create index published_listings_version_idx on public_migration.published_listings (version);
"""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fill(pg: PgSettings, docs: int) -> None:
    started = time.monotonic()
    with pg.connect(autocommit=True) as conn:
        conn.execute(SCHEMA_SQL)
        synthetic_documents(conn, docs, description_repeats=8, step=250_000)
        conn.execute("insert into public_migration.publish_runs default values")
        conn.execute(
            "insert into public_migration.published_listings select id, 1, 1, null from public.listings order by id"
        )
        conn.execute("vacuum analyze public.listings, public.listing_images, public_migration.published_listings")
    log(f"filled {docs:,} listings (+ ledger) directly in SQL in {time.monotonic() - started:.1f} s")


RUN_COPY = """
insert into public_migration.publish_runs (dbt_invocation_id, started_at, finished_at, service_schema, source_rows,
    published_rows, quarantined_rows, counts, settings)
select dbt_invocation_id, now(), now(), service_schema, source_rows, published_rows, quarantined_rows, counts, settings
from public_migration.publish_runs order by run_id desc limit 1
returning run_id
"""


def publish(pg: PgSettings, ids: list[int], *, delete: bool = False, existing: bool = False) -> tuple[int, float]:
    """What `migration publish` does to the ledger, in one transaction; returns (run, commit time)."""
    with pg.connect() as conn:
        new_run = RUN_COPY if existing else "insert into public_migration.publish_runs default values returning run_id"
        run = conn.execute(new_run).fetchone()[0]
        if delete:
            conn.execute("delete from public.listing_images where listing_id = any(%s)", (ids,))
            if existing:
                conn.execute("delete from public.listing_locations where listing_id = any(%s)", (ids,))
            conn.execute("delete from public.listings where id = any(%s)", (ids,))
            conn.execute(
                "update public_migration.published_listings set version = %s, deleted_run = %s"
                " where listing_id = any(%s)",
                (run, run, ids),
            )
        else:
            conn.execute(
                "update public.listings set title = 'benchrun' || %s || ' ' || title, updated_at = now()"
                " where id = any(%s)",
                (run, ids),
            )
            conn.execute(
                "update public_migration.published_listings set version = %s where listing_id = any(%s)", (run, ids)
            )
        conn.commit()
        return run, time.monotonic()


def pick(pg: PgSettings, n: int, salt: str) -> list[int]:
    with pg.connect(autocommit=True) as conn:
        rows = conn.execute(
            "select id from public.listings order by md5(%s || id::text) limit %s", (salt, n)
        ).fetchall()
    return [r[0] for r in rows]


def visible(client: OpenSearch, run: int, ids: list[int], delete: bool) -> bool:
    if delete:
        body = {"query": {"terms": {"id": ids}}}
        return client.count(index=ALIAS, body=body)["count"] == 0
    body = {"query": {"match": {"title": f"benchrun{run}"}}}
    return client.count(index=ALIAS, body=body)["count"] == len(ids)


def indexer(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "indexer", *args, "--alias", ALIAS, "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def until_visible(client: OpenSearch, run: int, ids: list[int], delete: bool, committed: float) -> float:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if visible(client, run, ids, delete):
            return time.monotonic() - committed
        time.sleep(0.01)
    raise SystemExit(f"run {run}: not visible after 120 s")


def latency(pg, env, config, client, n: int, delete: bool, in_process: bool, salt: str, existing: bool):
    """(publish commit -> visible through the alias, sync's own seconds)."""
    ids = pick(pg, n, salt)
    run, committed = publish(pg, ids, delete=delete, existing=existing)
    if in_process:
        result = index_sync.sync(config, out=io.StringIO(), err=io.StringIO())
        sync_seconds = result.seconds
    else:
        started = time.monotonic()
        done = indexer(env, "sync")
        if done.returncode != 0:
            raise SystemExit(f"sync failed: {done.stderr.strip()}")
        sync_seconds = time.monotonic() - started
    return until_visible(client, run, ids, delete, committed), sync_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--database", default="bench_sync")
    parser.add_argument("--rebuild", action="store_true", help="refill even if the database has --docs listings")
    parser.add_argument("--changed-share", type=float, default=0.01)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--deletes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-docs", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep the alias and its indices")
    parser.add_argument(
        "--existing",
        action="store_true",
        help="use the database as it is: made by `listings-standin` + `dbt build` + `listings-migration publish`"
        " (the dbt documents view, the real ledger); the bench's publishes then change its service tables",
    )
    args = parser.parse_args()

    base = PgSettings.from_env()
    with base.with_database("postgres").connect(autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (args.database,)).fetchone():
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(args.database)))
    pg = base.with_database(args.database)
    env = {**os.environ, "PGDATABASE": args.database, "LISTINGS_SCHEMA": "public", "PGTZ": "UTC"}
    with pg.connect(autocommit=True) as conn:
        have = conn.execute("select to_regclass('public_migration.published_listings') is not null").fetchone()[0]
        count = conn.execute("select count(*) from public.listings").fetchone()[0] if have else 0
    if args.existing:
        if not have:
            raise SystemExit(f"--existing: {args.database} has no publish ledger (run dbt build + publish there)")
        args.docs = count
        log(f"using {args.database} as it is: {count:,} listings (dbt documents view, real ledger)")
    elif args.rebuild or count != args.docs:
        fill(pg, args.docs)
    else:
        log(f"re-using {args.database}: {count:,} listings (--rebuild to refill)")
    config = load_config(env, alias=ALIAS, batch_docs=args.batch_docs, progress=False)
    client = OpenSearch(hosts=[config.opensearch.url], timeout=120)
    try:
        started = time.monotonic()
        done = indexer(env, "reindex", "--sample", "200")
        if done.returncode != 0:
            raise SystemExit(f"reindex failed: {done.stderr.strip()[-2000:]}")
        reindex_seconds = time.monotonic() - started
        log(f"reindex of {args.docs:,} documents: {reindex_seconds:.1f} s")

        changed = int(args.docs * args.changed_share)
        ids = pick(pg, changed, "catchup")
        run, _ = publish(pg, ids, existing=args.existing)
        started = time.monotonic()
        done = indexer(env, "sync", "--batch-docs", str(args.batch_docs))
        catch_up = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"sync failed: {done.stderr.strip()}")
        assert visible(client, run, ids, False)

        results: dict[str, list[tuple[float, float]]] = {}
        for in_process in (False, True):
            how = "in-process sync" if in_process else "python -m indexer sync"
            for kind, n, delete in (("updates", args.updates, False), ("deletes", args.deletes, True)):
                key = f"{n:,} {kind}, {how}"
                results[key] = [
                    latency(pg, env, config, client, n, delete, in_process, f"{kind}{in_process}{r}", args.existing)
                    for r in range(args.repeat)
                ]
        validate = indexer(env, "validate", "--sample", "200")
        how = (
            "fixtures + dbt build + publish; the bench's publishes change the tables and ledger in SQL"
            if args.existing
            else "service tables + ledger filled directly in SQL, not via dbt"
        )
        print(f"bench_sync: {args.docs:,} documents ({how})")
        print(f"  reindex (load + validate + move)      {reindex_seconds:8.1f} s")
        print(
            f"  sync of {changed:,} changed listings ({args.changed_share:.0%}) {catch_up:8.2f} s"
            f"  ({changed / catch_up:,.0f} changes/s, python start-up included)"
        )
        print("  publish commit -> visible through the alias (median / max of", args.repeat, "runs; sync's own time):")
        for key, values in results.items():
            visible_s = [v for v, _ in values]
            own = [s for _, s in values]
            print(
                f"    {key:<42} {statistics.median(visible_s):6.2f} s / {max(visible_s):6.2f} s"
                f"   (sync {statistics.median(own):.2f} s)"
            )
        print(f"  validate after all of it: exit {validate.returncode}")
        return 0 if validate.returncode == 0 else 1
    finally:
        if not args.keep:
            client.indices.delete(index=f"{ALIAS}_*", expand_wildcards="all", ignore=[404])
            client.delete(index=LOCK_INDEX, id=ALIAS, ignore=[404])
        client.close()


if __name__ == "__main__":
    sys.exit(main())
