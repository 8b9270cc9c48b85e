"""PostgreSQL failing under the indexer (and publish), against the real services.

* The indexer's backends terminated (pg_terminate_backend) while `reindex` streams documents,
  while `sync` applies the ledger, while `validate` compares: one line, exit 2, the live alias
  where it was and still valid; the unfinished index deleted; a sync resumes afterwards.
* A wrong password, for `reindex` and for `publish`: one line naming the problem (never the
  password), exit 2, nothing changed.
* One transient OpenSearch fault of each kind (timeout, reset, non-JSON 200) on `sync`.

The backends are terminated from inside the fault proxy, right before it forwards a given request:
the moment is the same on every run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import test_indexer_helpers as helpers
from conftest import migration_cli, pg_env
from opensearchpy import OpenSearch
from test_indexer_helpers import FaultProxy, Rule, alias_targets, assert_one_line_failure, indexer, managed_indices

from indexer.lock import LOCK_INDEX
from listings_common.pg import PgSettings

docs_db = helpers.docs_db
idx_env = helpers.idx_env
served = helpers.served

FAST = ("--quiet", "--sample", "20")
CHECKPOINTS = "public_migration.index_sync_checkpoints"
RUNS = "public_migration.index_sync_runs"
WRONG = "not-the-Password-7f3a"


def terminator(settings: PgSettings, killed: list[int]):
    """A proxy hook: terminate every backend of the indexer in `settings`' database (before forwarding)."""

    def hook(method: str, path: str) -> None:
        with settings.connect(autocommit=True) as conn:
            found = conn.execute(
                "select pid, pg_terminate_backend(pid) from pg_stat_activity"
                " where datname = %s and application_name like 'listings-indexer%%'",
                (settings.dbname,),
            ).fetchall()
        killed.extend(pid for pid, ok in found if ok)

    return hook


def via(env: dict[str, str], proxy: FaultProxy, *args: str) -> helpers.Run:
    return indexer({**env, "OPENSEARCH_URL": proxy.url}, *args, timeout=120)


def lock_free(client: OpenSearch, alias: str) -> bool:
    return client.get(index=LOCK_INDEX, id=alias, ignore=[404]).get("found") is False


def rows(settings: PgSettings, query: str, params: tuple = ()) -> list[tuple]:
    with settings.connect(autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def test_reindex_whose_backend_is_terminated_mid_stream_fails_in_one_line_and_leaves_the_alias(
    docs_db, idx_env, alias, client, opensearch_url, served
):
    killed: list[int] = []
    rules = [Rule("POST", r"/_bulk", terminator(docs_db, killed), after=2)]  # 3 of 30 batches sent
    with FaultProxy(opensearch_url, rules) as proxy:
        run = via(idx_env, proxy, "reindex", "--alias", alias, "--batch-docs", "100", *FAST)

    assert len(killed) == 1
    assert_one_line_failure(run, 2, "PostgreSQL", "terminating connection due to administrator command")
    assert "deleted the unfinished index" in run.err
    assert alias_targets(client, alias) == [served]
    assert managed_indices(client, alias) == [served]
    assert lock_free(client, alias)
    assert indexer(idx_env, "validate", "--alias", alias, "--quiet").code == 0


def test_validate_whose_backend_is_terminated_fails_in_one_line(
    docs_db, idx_env, alias, client, opensearch_url, served
):
    killed: list[int] = []
    rules = [Rule("GET", rf"^/{alias}/_mapping", terminator(docs_db, killed))]  # after the hashes, before the sample
    with FaultProxy(opensearch_url, rules) as proxy:
        run = via(idx_env, proxy, "validate", "--alias", alias, "--sample", "20")

    assert len(killed) == 1
    assert_one_line_failure(run, 2, "PostgreSQL", "terminating connection")
    assert alias_targets(client, alias) == [served]


def test_a_wrong_password_for_reindex_is_one_line_and_changes_nothing(idx_env, alias, client, served):
    run = indexer({**idx_env, "PGPASSWORD": WRONG}, "reindex", "--alias", alias, *FAST)

    assert_one_line_failure(run, 2, "cannot connect to postgresql://", "password authentication failed")
    assert WRONG not in run.out + run.err
    assert len(run.err.strip().splitlines()) == 1, run.err
    assert alias_targets(client, alias) == [served]
    assert managed_indices(client, alias) == [served]
    assert lock_free(client, alias)


# --- with a publish ledger: sync, and publish itself --------------------------------------------


@pytest.fixture(scope="module")
def ledger_db(published_copy) -> Iterator[PgSettings]:
    """A published migration (c2c 300, b2c 100): the ledger sync reads."""
    with published_copy(c2c=300, b2c=100) as settings:
        yield settings


@pytest.fixture
def ledger_env(ledger_db: PgSettings, opensearch_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "LISTINGS_", "MONOLITH_"))}
    return {**env, **pg_env(ledger_db), "OPENSEARCH_URL": opensearch_url, "LISTINGS_SCHEMA": "public", "PGTZ": "UTC"}


def replay_from_the_start(settings: PgSettings, alias: str) -> None:
    """Move the checkpoint back before every publish run: the next sync rewrites every listing."""
    with settings.connect(autocommit=True) as conn:
        conn.execute(f"update {CHECKPOINTS} set run_id = 0, last_listing_id = null where alias = %s", (alias,))


def test_sync_whose_backends_are_terminated_fails_in_one_line_and_resumes(
    ledger_db, ledger_env, alias, client, opensearch_url
):
    assert indexer(ledger_env, "reindex", "--alias", alias, *FAST).code == 0
    [index] = alias_targets(client, alias)
    replay_from_the_start(ledger_db, alias)

    killed: list[int] = []
    rules = [Rule("POST", r"/_bulk", terminator(ledger_db, killed), after=2)]
    with FaultProxy(opensearch_url, rules) as proxy:
        run = via(ledger_env, proxy, "sync", "--alias", alias, "--batch-docs", "20", "--quiet")

    assert len(killed) == 2  # the snapshot and the checkpoint's connection
    assert_one_line_failure(run, 2, "PostgreSQL", "terminating connection")
    assert alias_targets(client, alias) == [index]
    assert lock_free(client, alias)
    [(last_id,)] = rows(ledger_db, f"select last_listing_id from {CHECKPOINTS} where alias = %s", (alias,))
    assert last_id is not None  # stopped after the acknowledged batches, in the middle of a run
    assert indexer(ledger_env, "validate", "--alias", alias, "--quiet").code == 0

    resumed = indexer(ledger_env, "sync", "--alias", alias, "--quiet")
    assert resumed.code == 0, resumed.err
    last = rows(ledger_db, "select max(run_id) from public_migration.publish_runs")[0][0]
    assert rows(ledger_db, f"select run_id, last_listing_id from {CHECKPOINTS} where alias = %s", (alias,)) == [
        (last, None)
    ]
    assert indexer(ledger_env, "validate", "--alias", alias, "--quiet").code == 0


def test_one_fault_of_each_kind_on_sync_is_retried(ledger_db, ledger_env, alias, client, opensearch_url):
    assert indexer(ledger_env, "reindex", "--alias", alias, *FAST).code == 0
    replay_from_the_start(ledger_db, alias)
    rules = [
        Rule("GET", r"^/_alias/", "reset"),
        Rule("PUT|POST", rf"^/{LOCK_INDEX}/_doc/", "html"),
        Rule("GET", r"^/(\?|$)", "delay:1.5"),
        Rule("POST", rf"^/{alias}/_bulk", "reset"),
        Rule("POST", rf"^/{alias}/_refresh", "delay:1.5"),
        Rule("DELETE", rf"^/{LOCK_INDEX}/_doc/", "html"),
    ]
    with FaultProxy(opensearch_url, rules) as proxy:
        run = via(ledger_env, proxy, "sync", "--alias", alias, "--timeout", "1")

    assert run.code == 0, run.out + run.err
    assert [r.hits for r in rules] == [1] * len(rules)
    assert "retried requests 1" in run.out
    assert lock_free(client, alias)
    assert indexer(ledger_env, "validate", "--alias", alias, "--quiet").code == 0


def test_a_wrong_password_for_publish_is_one_line_and_changes_nothing(ledger_db):
    before = rows(ledger_db, "select count(*), max(run_id) from public_migration.publish_runs")
    digest = rows(ledger_db, "select md5(string_agg(t::text, ',' order by t::text)) from public.listings t")
    done = migration_cli(ledger_db, "publish", env={"PGPASSWORD": WRONG})

    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "listings-migration publish: error: cannot connect to postgresql://"
    ), done.stderr
    assert "password authentication failed" in lines[0]
    assert WRONG not in done.stdout + done.stderr
    assert rows(ledger_db, "select count(*), max(run_id) from public_migration.publish_runs") == before
    assert rows(ledger_db, "select md5(string_agg(t::text, ',' order by t::text)) from public.listings t") == digest
