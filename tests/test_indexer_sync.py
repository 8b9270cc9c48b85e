"""`python -m indexer sync` and versioned writes, against the real PostgreSQL and OpenSearch.

One module database (generated monolith, `dbt build`, `publish`) shared by the tests in
order: each test has its own alias (and so its own checkpoint row), reindexes first and
asserts against the tables as they are then, so the monolith changes one test makes are
only a starting point for the next. The indexer runs as a subprocess, as a timer would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import test_indexer_helpers as helpers
from conftest import build, load_monolith, pg_env, publish, scratch_database
from opensearchpy import OpenSearch
from test_indexer_helpers import Background, FaultProxy, Rule, alias_targets, index_meta, indexer, slow_bulks

from indexer.config import load_config
from indexer.lock import LOCK_INDEX
from indexer.opensearch import make_client
from indexer.retry import RetryPolicy
from indexer.sync import Change, Rejected, Writer
from listings_common.pg import PgSettings

VIEW = "public_search.listing_search_documents"
LEDGER = "public_migration.published_listings"
CHECKPOINTS = "public_migration.index_sync_checkpoints"
RUNS = "public_migration.index_sync_runs"


@pytest.fixture(scope="module")
def sync_db(run_dbt) -> Iterator[PgSettings]:
    with scratch_database() as settings:
        load_monolith(settings, c2c=300, b2c=100)
        build(run_dbt, settings)
        publish(settings)
        yield settings


def _env(settings: PgSettings, opensearch_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "LISTINGS_", "MONOLITH_"))}
    return {**env, **pg_env(settings), "OPENSEARCH_URL": opensearch_url, "LISTINGS_SCHEMA": "public", "PGTZ": "UTC"}


@pytest.fixture
def env(sync_db: PgSettings, opensearch_url: str) -> dict[str, str]:
    return _env(sync_db, opensearch_url)


def execute(settings: PgSettings, *statements: str) -> None:
    with settings.connect(autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def rows(settings: PgSettings, query: str, params: tuple = ()) -> list[tuple]:
    with settings.connect(autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def scalar(settings: PgSettings, query: str, params: tuple = ()) -> object:
    return rows(settings, query, params)[0][0]


def db_documents(settings: PgSettings) -> dict[int, dict]:
    return {i: json.loads(d) for i, d in rows(settings, f"select id, document::text from {VIEW}")}


def versions(settings: PgSettings) -> dict[int, int]:
    """The external version every document must carry: the ledger's, 0 for the service's own."""
    found = rows(
        settings, f"select d.id, coalesce(p.version, 0) from {VIEW} d left join {LEDGER} p on p.listing_id = d.id"
    )
    return dict(found)


def index_documents(client: OpenSearch, alias: str) -> dict[int, tuple[int, dict]]:
    """id -> (_version, _source without the hash) of every document the alias serves."""
    client.indices.refresh(index=alias)
    found = client.search(index=alias, body={"size": 10000, "version": True, "query": {"match_all": {}}})
    result = {}
    for hit in found["hits"]["hits"]:
        source = hit["_source"]
        source.pop("document_md5", None)
        result[int(hit["_id"])] = (hit["_version"], source)
    return result


def assert_alias_equals_tables(client: OpenSearch, alias: str, settings: PgSettings) -> None:
    indexed = index_documents(client, alias)
    expected = db_documents(settings)
    assert sorted(indexed) == sorted(expected)
    differing = [i for i, doc in expected.items() if indexed[i][1] != doc]
    assert not differing, differing[:5]
    want = versions(settings)
    wrong = {i: (indexed[i][0], v) for i, v in want.items() if indexed[i][0] != v}
    assert not wrong, list(wrong.items())[:5]


def checkpoint(settings: PgSettings, alias: str) -> tuple:
    return rows(settings, f"select index_name, run_id, last_listing_id from {CHECKPOINTS} where alias = %s", (alias,))[
        0
    ]


def reindex(env: dict[str, str], alias: str, *extra: str) -> helpers.Run:
    run = indexer(env, "reindex", "--alias", alias, "--sample", "50", "--quiet", *extra)
    assert run.code == 0, run.out + run.err
    return run


def line_of(out: str, key: str) -> str:
    return next(line for line in out.splitlines() if line.strip().startswith(key))


@contextmanager
def slowed_reindex(env: dict[str, str], alias: str, opensearch_url: str) -> Iterator[tuple[Background, FaultProxy]]:
    """A reindex in the background whose bulk requests are slowed (0.5 s each, 25 documents),
    yielded once it has started loading; killed on exit if it has not finished."""
    with FaultProxy(opensearch_url, [slow_bulks(0.5)]) as proxy:
        slow = Background(
            {**env, "OPENSEARCH_URL": proxy.url},
            "reindex", "--alias", alias, "--batch-docs", "25", "--senders", "1", "--sample", "50",
        )  # fmt: skip
        try:
            slow.wait_for(r"\d+ listings -> ")
            yield slow, proxy
        finally:
            slow.kill()


def test_sync_applies_exactly_what_publish_changed_then_nothing(sync_db, env, alias, client, run_dbt):
    run = reindex(env, alias)
    [index] = alias_targets(client, alias)
    assert "checkpoint written" in run.out
    last_run = scalar(sync_db, "select max(run_id) from public_migration.publish_runs")
    assert index_meta(client, index)["published_run"] == last_run
    assert checkpoint(sync_db, alias) == (index, last_run, None)
    assert client.indices.get_settings(index=index)[index]["settings"]["index"]["gc_deletes"] == "1d"
    assert_alias_equals_tables(client, alias, sync_db)  # reindex wrote the ledger's versions

    execute(
        sync_db,
        "update monolith.c2c_listings set title = 'changed by sync test' where id in (3, 4)",
        "delete from monolith.c2c_images where listing_id = 7",
        "delete from monolith.c2c_listings where id = 7",
        "insert into monolith.c2c_listings (id, user_id, category_id, title, price, created_at)"
        " values (100001, 1, 1, 'added while live', 10, '2025-01-01')",
        "update monolith.b2c_product_images set image_url = 'https://changed/sync-1.jpg'"
        " where id = (select min(id) from monolith.b2c_product_images)",
    )
    build(run_dbt, sync_db)
    publish(sync_db)
    changed = scalar(sync_db, f"select count(*) from {LEDGER} where version = (select max(version) from {LEDGER})")
    assert changed >= 5  # 2 updated, 1 deleted, 1 inserted, 1 with a changed image

    first = indexer(env, "sync", "--alias", alias)
    assert first.code == 0, first.out + first.err
    assert "sync: OK" in first.out
    assert line_of(first.out, "deleted").split()[1] == "1"
    assert int(line_of(first.out, "upserted").split()[1]) == changed - 1
    assert client.count(index=alias, body={"query": {"term": {"id": 7}}})["count"] == 0  # visible at once
    assert client.get(index=alias, id=100001)["_source"]["title"] == "added while live"
    assert_alias_equals_tables(client, alias, sync_db)
    validate = indexer(env, "validate", "--alias", alias)
    assert validate.code == 0, validate.out + validate.err
    assert checkpoint(sync_db, alias) == (index, last_run + 1, None)
    status = indexer(env, "status", "--alias", alias)
    assert f"checkpoint run {last_run + 1} in {index}; last publish run {last_run + 1} (up to date)" in status.out

    seq_before = client.indices.stats(index=index)["_all"]["primaries"]["indexing"]["index_total"]
    second = indexer(env, "sync", "--alias", alias)
    assert second.code == 0, second.out + second.err
    for key in ("upserted", "deleted", "skipped"):
        assert line_of(second.out, key).split()[1] == "0"
    assert line_of(second.out, "batches").split()[1] == "0,"
    assert client.indices.stats(index=index)["_all"]["primaries"]["indexing"]["index_total"] == seq_before
    runs = rows(sync_db, f"select command, status, upserted, deleted from {RUNS} where alias = %s order by 1", (alias,))
    assert runs == [("reindex catch-up", "ok", 0, 0), ("sync", "ok", changed - 1, 1), ("sync", "ok", 0, 0)]


def test_sync_killed_midway_resumes_without_skipping_and_a_second_sync_is_refused(
    sync_db, env, alias, client, run_dbt, opensearch_url
):
    reindex(env, alias)
    [index] = alias_targets(client, alias)
    execute(sync_db, "update monolith.c2c_listings set title = title || ' (edited)' where id between 10 and 250")
    build(run_dbt, sync_db)
    publish(sync_db, "--allow-large-change")
    target = scalar(sync_db, "select max(run_id) from public_migration.publish_runs")
    changed = dict(rows(sync_db, f"select listing_id, version from {LEDGER} where version = %s", (target,)))
    assert len(changed) > 200

    with FaultProxy(opensearch_url, [slow_bulks(0.25)]) as proxy:
        slow = Background({**env, "OPENSEARCH_URL": proxy.url}, "sync", "--alias", alias, "--batch-docs", "10")
        try:
            slow.wait_for(rf"sync: run {target} listing \d+:.* 20 upserted")
            refused = indexer(env, "sync", "--alias", alias)
            slow.wait_for(rf"sync: run {target} listing \d+:.* 40 upserted")
            slow.proc.send_signal(signal.SIGKILL)
            slow.finish()
        finally:
            slow.kill()
    assert refused.code == 2 and refused.seconds < 15, refused.err
    assert "locked by `sync`" in refused.err and len(refused.err.strip().splitlines()) == 1

    name, run_id, last_id = checkpoint(sync_db, alias)
    assert (name, run_id) == (index, target) and last_id is not None
    assert last_id < max(changed)  # stopped midway
    # everything up to the checkpoint is in the index: nothing skipped
    indexed = index_documents(client, alias)
    expected = db_documents(sync_db)
    done = [i for i in changed if i <= last_id]
    assert len(done) >= 40
    assert all(indexed[i] == (target, expected[i]) for i in done)
    assert any(indexed[i][1] != expected[i] for i in changed if i > last_id)  # the rest was not

    resumed = indexer(env, "sync", "--alias", alias)
    assert resumed.code == 0, resumed.out + resumed.err
    assert f"from       run {target} listing {last_id} (checkpoint)" in resumed.out
    upserted = int(line_of(resumed.out, "upserted").split()[1])
    # only what the checkpoint had not passed (the kill came between batches or mid-batch: at most one re-sent)
    assert len([i for i in changed if i > last_id]) == upserted
    assert_alias_equals_tables(client, alias, sync_db)
    statuses = rows(sync_db, f"select status from {RUNS} where alias = %s and command = 'sync' order by 1", (alias,))
    assert statuses == [("killed",), ("ok",)]
    validate = indexer(env, "validate", "--alias", alias)
    assert validate.code == 0, validate.out + validate.err


def test_a_stale_or_replayed_write_never_overwrites_newer_data(sync_db, env, alias, client, opensearch_url):
    reindex(env, alias)
    newest, version = rows(sync_db, f"select listing_id, version from {LEDGER} where deleted_run is null"
                           " order by version desc, listing_id limit 1")[0]  # fmt: skip
    current = client.get(index=alias, id=newest)
    assert current["_version"] == version

    # a late writer (e.g. a sync frozen since an older run) sends the older state and an older delete
    config = load_config({**env, "OPENSEARCH_URL": opensearch_url})
    writer = Writer(make_client(config.opensearch), config, RetryPolicy(max_retries=1), alias)
    source = {k: v for k, v in current["_source"].items() if k != "document_md5"}  # the writer adds it
    stale = json.dumps({**source, "title": "stale"}).encode()
    rejected = Rejected()
    counts = writer.send([Change(newest, version - 1, stale), Change(newest, version - 1, None)], rejected)
    assert (counts.skipped, counts.upserted, counts.deleted, rejected.total) == (2, 0, 0, 0)
    after = client.get(index=alias, id=newest)
    assert after["_version"] == version and after["_source"] == current["_source"]

    # a replay of everything: the checkpoint rewound to before the first publish
    execute(sync_db, f"update {CHECKPOINTS} set run_id = 0, last_listing_id = null where alias = '{alias}'")
    replay = indexer(env, "sync", "--alias", alias)
    assert replay.code == 0, replay.out + replay.err
    assert_alias_equals_tables(client, alias, sync_db)
    validate = indexer(env, "validate", "--alias", alias)
    assert validate.code == 0, validate.out + validate.err


def test_changes_published_while_a_reindex_runs_are_in_the_index_when_it_returns(
    sync_db, env, alias, client, run_dbt, opensearch_url
):
    reindex(env, alias)  # a live alias before, so the catch-up applies to a moved alias
    execute(
        sync_db,
        "update monolith.c2c_listings set title = 'published during the reindex' where id in (20, 21, 22)",
        "delete from monolith.c2c_images where listing_id = 23",
        "delete from monolith.c2c_listings where id = 23",
    )
    build(run_dbt, sync_db)  # staged now, published while the reindex loads
    before = scalar(sync_db, "select max(run_id) from public_migration.publish_runs")
    with slowed_reindex(env, alias, opensearch_url) as (slow, proxy):
        time.sleep(0.5)
        publish(sync_db)
        assert proxy.requests("POST", "_bulk") and slow.proc.poll() is None  # still loading
        done = slow.finish()
    assert done.code == 0, done.out + done.err
    assert f"caught up from publish run {before} to {before + 1}" in done.out
    [index] = alias_targets(client, alias)
    assert index_meta(client, index)["published_run"] == before
    assert client.get(index=alias, id=20)["_source"]["title"] == "published during the reindex"
    assert client.count(index=alias, body={"query": {"term": {"id": 23}}})["count"] == 0
    assert_alias_equals_tables(client, alias, sync_db)
    assert checkpoint(sync_db, alias) == (index, before + 1, None)


def test_sync_without_a_reindex_refuses_in_one_line(sync_db, env, alias, client):
    run = indexer(env, "sync", "--alias", alias)
    assert run.code == 2
    assert len(run.err.strip().splitlines()) == 1
    assert "reindex" in run.err and "Traceback" not in run.err

    # an index that records no publish run (built before versioned writes) and no checkpoint: the same
    reindex(env, alias)
    [index] = alias_targets(client, alias)
    meta = {k: v for k, v in index_meta(client, index).items() if k != "published_run"}
    client.indices.put_mapping(index=index, body={"_meta": {"indexer": meta}})
    execute(sync_db, f"delete from {CHECKPOINTS} where alias = '{alias}'")
    old = indexer(env, "sync", "--alias", alias)
    assert old.code == 2 and len(old.err.strip().splitlines()) == 1, old.err
    assert "no sync checkpoint" in old.err and "does not record the publish run" in old.err
    assert f"listings-indexer reindex --alias {alias}" in old.err


def test_rollback_resets_the_checkpoint_and_the_next_sync_catches_the_older_index_up(sync_db, env, alias, client):
    reindex(env, alias)
    reindex(env, alias)
    older, current = sorted(client.indices.get(index=f"{alias}_*"))
    assert alias_targets(client, alias) == [current]
    rolled = indexer(env, "rollback", "--alias", alias)
    assert rolled.code == 0, rolled.out + rolled.err
    assert checkpoint(sync_db, alias) == (older, index_meta(client, older)["published_run"], None)
    run = indexer(env, "sync", "--alias", alias)
    assert run.code == 0, run.out + run.err
    assert_alias_equals_tables(client, alias, sync_db)


def test_belgrade_wall_clock_times_land_as_utc_instants(run_dbt, opensearch_url, opensearch_alias, client):
    belgrade = {"MONOLITH_TIME_ZONE": "Europe/Belgrade"}
    with scratch_database() as db:
        load_monolith(db, c2c=20, b2c=5, dirty=False)
        build(run_dbt, db, env=belgrade)
        publish(db, env=belgrade)
        env = {**_env(db, opensearch_url), **belgrade}
        try:
            reindex(env, opensearch_alias)
            execute(
                db,
                "update monolith.c2c_listings set created_at = '2025-07-01 12:00:00' where id = 2",
                "insert into monolith.c2c_listings (id, user_id, category_id, title, price, created_at)"
                " values (100002, 1, 1, 'summer time', 10, '2025-07-01 12:00:00')",
            )
            build(run_dbt, db, env=belgrade)
            publish(db, env=belgrade)
            run = indexer(env, "sync", "--alias", opensearch_alias)
            assert run.code == 0, run.out + run.err
            for listing_id in (2, 100002):
                document = client.get(index=opensearch_alias, id=listing_id)["_source"]
                assert document["created_at"] == "2025-07-01T10:00:00.000000Z"
            again = reindex(env, opensearch_alias)
            assert "reindex: OK" in again.out
            assert client.get(index=opensearch_alias, id=2)["_source"]["created_at"] == "2025-07-01T10:00:00.000000Z"
        finally:
            client.delete(index=LOCK_INDEX, id=opensearch_alias, ignore=[404], refresh=True)


def test_reindex_without_a_publish_ledger_still_works(opensearch_url, opensearch_alias, client):
    """A documents view with no `<schema>_migration` (no dbt build here): versions 0, no checkpoint."""
    with scratch_database() as db:
        helpers.synthetic_documents(db, 50)
        env = _env(db, opensearch_url)
        try:
            run = reindex(env, opensearch_alias)
            assert "no publish ledger" in run.out
            assert {v for v, _ in index_documents(client, opensearch_alias).values()} == {0}
            refused = indexer(env, "sync", "--alias", opensearch_alias)
            assert refused.code == 2 and len(refused.err.strip().splitlines()) == 1, refused.err
        finally:
            client.delete(index=LOCK_INDEX, id=opensearch_alias, ignore=[404], refresh=True)


def live_c2c_ids(settings: PgSettings, n: int) -> list[int]:
    """n C2C listings the service holds now, from the ledger (earlier tests deleted some)."""
    found = rows(
        settings,
        f"select listing_id from {LEDGER} where source_type = 'c2c' and deleted_run is null"
        " and listing_id between 260 and 100000 order by listing_id limit %s",
        (n,),
    )
    assert len(found) == n
    return [r[0] for r in found]


def test_a_sync_while_a_reindex_holds_the_lock_exits_at_once_and_loses_nothing(
    sync_db, env, alias, client, run_dbt, opensearch_url
):
    reindex(env, alias)
    ids = live_c2c_ids(sync_db, 2)
    execute(
        sync_db,
        f"update monolith.c2c_listings set title = 'published during the locked reindex' where id in {tuple(ids)}",
    )
    build(run_dbt, sync_db)  # staged now, published while the reindex loads
    before = scalar(sync_db, "select max(run_id) from public_migration.publish_runs")
    with slowed_reindex(env, alias, opensearch_url) as (slow, proxy):
        publish(sync_db)
        refused = indexer(env, "sync", "--alias", alias)
        still_loading = slow.proc.poll() is None and not proxy.requests("POST", "_aliases")
        done = slow.finish()
    assert still_loading  # the sync was refused while the reindex held the lock, before it moved the alias
    assert refused.code == 2 and refused.seconds < 15, refused.err
    [line] = refused.err.strip().splitlines()
    assert re.match(r"listings-indexer \w+: error: ", line) and "is locked by `reindex` on " in line
    assert f" pid {slow.proc.pid} " in line and f"building {alias}_" in line
    # the refused sync wrote nothing and recorded no run
    runs = rows(sync_db, f"select command, status from {RUNS} where alias = %s order by sync_id", (alias,))
    assert runs == [("reindex catch-up", "ok"), ("reindex catch-up", "ok")]

    assert done.code == 0, done.out + done.err
    assert f"caught up from publish run {before} to {before + 1}" in done.out
    after = indexer(env, "sync", "--alias", alias)
    assert after.code == 0, after.out + after.err
    for listing_id in ids:
        assert client.get(index=alias, id=listing_id)["_source"]["title"] == "published during the locked reindex"
    assert_alias_equals_tables(client, alias, sync_db)
    validate = indexer(env, "validate", "--alias", alias)
    assert validate.code == 0, validate.out + validate.err


def test_the_loader_writing_an_older_version_after_a_newer_one_is_skipped_and_the_newest_stays(
    sync_db, env, alias, client, run_dbt, opensearch_url
):
    """A real interleaving in the loading index: another writer puts listing X's newest state
    (publish run R+1) there first, then the reindex's loader writes X at its snapshot's older
    version: OpenSearch refuses it (409), the load counts it as skipped, the newest stays.

    X's change is one the search document does not show (the monolith's location text: the
    ledger's version moves, the document does not), so the new index still validates against
    the reindex's snapshot; Y's title change (same run) reaches the index by the catch-up."""
    reindex(env, alias)
    x, y = live_c2c_ids(sync_db, 2)
    execute(
        sync_db,
        f"update monolith.c2c_listings set location = coalesce(location, '') || ' (moved)' where id = {x}",
        f"update monolith.c2c_listings set title = 'newer title, by the catch-up' where id = {y}",
    )
    build(run_dbt, sync_db)
    before = scalar(sync_db, "select max(run_id) from public_migration.publish_runs")
    old_version = scalar(sync_db, f"select version from {LEDGER} where listing_id = %s", (x,))
    x_document = scalar(sync_db, f"select document::text from {VIEW} where id = %s", (x,)).encode()

    gate = threading.Event()  # the loader's bulk requests wait here until X's newer state is in
    hold = Rule("POST", r"\.loading/_bulk", lambda method, path: gate.wait(60), times=None)
    with FaultProxy(opensearch_url, [hold]) as proxy:
        slow = Background(
            {**env, "OPENSEARCH_URL": proxy.url}, "reindex", "--alias", alias, "--batch-docs", "50", "--sample", "50"
        )
        try:
            index = slow.wait_for(rf"-> ({alias}_\w+) ").group(1)  # its snapshot is taken
            publish(sync_db)
            assert scalar(sync_db, f"select version from {LEDGER} where listing_id = %s", (x,)) == before + 1
            assert scalar(sync_db, f"select document::text from {VIEW} where id = %s", (x,)).encode() == x_document
            config = load_config({**env, "OPENSEARCH_URL": opensearch_url})
            writer = Writer(make_client(config.opensearch), config, RetryPolicy(max_retries=1), f"{index}.loading")
            rejected = Rejected()
            first = writer.send([Change(x, before + 1, x_document)], rejected)
            assert (first.upserted, rejected.total) == (1, 0)
            deadline = time.monotonic() + 30
            while not proxy.requests("POST", r"\.loading/_bulk"):  # the loader is at the gate
                assert time.monotonic() < deadline and slow.proc.poll() is None, slow.err
                time.sleep(0.05)
            gate.set()
            done = slow.finish()
        finally:
            gate.set()
            slow.kill()
    assert done.code == 0, done.out + done.err
    assert line_of(done.out, "documents").endswith("skipped 1 (a newer version was already there)"), done.out
    assert f"caught up from publish run {before} to {before + 1}: 2 upserted" in done.out
    assert alias_targets(client, alias) == [index]
    newest = client.get(index=alias, id=x)
    assert old_version < before + 1 and newest["_version"] == before + 1
    assert client.get(index=alias, id=y)["_source"]["title"] == "newer title, by the catch-up"
    assert_alias_equals_tables(client, alias, sync_db)
    validate = indexer(env, "validate", "--alias", alias)
    assert validate.code == 0, validate.out + validate.err


def test_sync_writes_wait_for_active_shards_and_fail_clearly_when_copies_are_missing(sync_db, env, alias, client):
    reindex(env, alias)
    [index] = alias_targets(client, alias)
    # one replica on a single node: it can never be allocated, so `all` active copies never are
    client.indices.put_settings(index=index, body={"index": {"number_of_replicas": 1}})
    execute(sync_db, f"update {CHECKPOINTS} set run_id = 0, last_listing_id = null where alias = '{alias}'")
    writes = client.indices.stats(index=index)["_all"]["primaries"]["indexing"]["index_total"]

    waiting = indexer(env, "sync", "--alias", alias, "--timeout", "2", "--max-retries", "1", "--quiet")
    assert waiting.code == 2 and waiting.seconds < 30, waiting.out + waiting.err
    [line] = waiting.err.strip().splitlines()
    assert re.match(r"listings-indexer \w+: error: ", line) and "(after 1 retries)" in line, line
    assert client.indices.stats(index=index)["_all"]["primaries"]["indexing"]["index_total"] == writes
    assert checkpoint(sync_db, alias) == (index, 0, None)  # nothing acknowledged, nothing skipped
    assert rows(sync_db, f"select status from {RUNS} where alias = %s order by sync_id desc limit 1", (alias,)) == [
        ("failed",)
    ]

    # asking for one active copy (the primary) writes, under-replicated, and catches up
    one = indexer(env, "sync", "--alias", alias, "--wait-for-active-shards", "1", "--quiet")
    assert one.code == 0, one.out + one.err
    assert int(line_of(one.out, "upserted").split()[1]) > 0
    assert_alias_equals_tables(client, alias, sync_db)


SOFT = ["--vars", "{soft_delete_column: is_deleted, soft_delete_time_column: deleted_at}"]
SERVICE_OWN, SERVICE_DELETED = 8_000_000_000_001, 8_000_000_000_002


def test_a_listing_the_service_wrote_itself_is_indexed_at_version_0_and_a_soft_deleted_one_is_not(
    run_dbt, opensearch_url, opensearch_alias, client
):
    with scratch_database() as db:
        load_monolith(db, c2c=20, b2c=5, dirty=False)
        build(run_dbt, db, *SOFT)
        publish(db)
        execute(
            db,
            "insert into public.listings (id, user_id, category_id, title, price, status) values"
            f" ({SERVICE_OWN}, 1, 1, 'written by the service', 5, 'active')",
            f"insert into public.listing_images (listing_id, url, is_primary) values ({SERVICE_OWN},"
            " 'https://service/own.jpg', true)",
            "insert into public.listings (id, user_id, category_id, title, price, is_deleted, deleted_at) values"
            f" ({SERVICE_DELETED}, 1, 1, 'deleted by the service', 5, true, now())",
        )
        env = _env(db, opensearch_url)
        alias = opensearch_alias
        try:
            reindex(env, alias)
            own = client.get(index=alias, id=SERVICE_OWN)
            assert own["_version"] == 0 and own["_source"]["title"] == "written by the service"
            assert [i["url"] for i in own["_source"]["images"]] == ["https://service/own.jpg"]
            assert not client.exists(index=alias, id=SERVICE_DELETED)
            assert_alias_equals_tables(client, alias, db)

            # a catch-up: publish soft-deletes a migrated listing and changes another; sync applies it
            execute(
                db,
                "delete from monolith.c2c_images where listing_id = 2",
                "delete from monolith.c2c_listings where id = 2",
                "update monolith.c2c_listings set title = 'changed beside the service''s own' where id = 3",
            )
            build(run_dbt, db, *SOFT)
            publish(db)
            assert scalar(db, "select is_deleted from public.listings where id = 2") is True
            run = indexer(env, "sync", "--alias", alias)
            assert run.code == 0, run.out + run.err
            assert (line_of(run.out, "upserted").split()[1], line_of(run.out, "deleted").split()[1]) == ("1", "1")
            assert not client.exists(index=alias, id=2)
            after = client.get(index=alias, id=SERVICE_OWN)  # untouched by the sync
            assert (after["_version"], after["_seq_no"], after["_source"]) == (0, own["_seq_no"], own["_source"])
            assert not client.exists(index=alias, id=SERVICE_DELETED)
            assert_alias_equals_tables(client, alias, db)
            validate = indexer(env, "validate", "--alias", alias)
            assert validate.code == 0, validate.out + validate.err
        finally:
            client.delete(index=LOCK_INDEX, id=alias, ignore=[404], refresh=True)
