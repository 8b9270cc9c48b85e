"""A timeout, a reset connection and a non-JSON 200 on every kind of call `reindex` makes (not
only `_bulk`, which test_indexer_faults.py covers), through the fault proxy to the real node.

Once, each is retried with backoff and the run succeeds; persisting, the run ends in one line,
exit 2, with the alias where it was, no index left behind and the lock free. Calls made after
the alias moved (pruning, releasing the lock) cannot leave it where it was: those are checked
for what they do instead. Also one transient fault of each kind on `validate` and `rollback`
(`sync`'s are in test_indexer_faults_pg.py, which has a publish ledger).

Short timeouts (--timeout 1, the proxy holding a request 1.5 s) and --max-retries 1 keep the
module at about a minute.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import test_indexer_helpers as helpers
from conftest import pg_env
from opensearchpy import OpenSearch
from test_indexer_helpers import (
    FaultProxy,
    Rule,
    alias_targets,
    assert_one_line_failure,
    index_meta,
    indexer,
    managed_indices,
)

from indexer.lock import LOCK_INDEX
from listings_common.pg import PgSettings

docs_db = helpers.docs_db
idx_env = helpers.idx_env
served = helpers.served

FAST = ("--quiet", "--sample", "20", "--batch-docs", "500")
SHORT = ("--timeout", "1")
FAULTS = {"timeout": "delay:1.5", "reset": "reset", "html": "html"}
ALIAS = r"test_\w+_listings"
INDEX = rf"/{ALIAS}_\d{{8}}t\d{{6}}z"
LOCK_DOC = rf"^/{LOCK_INDEX}/_doc/"

# Every kind of call a reindex makes (the path of its request), in the order it makes them.
CALLS = {
    "cluster-info": ("GET", r"^/(\?|$)"),
    "index-like-alias": ("GET", rf"^/{ALIAS}(\?|$)"),
    "lock-index-exists": ("HEAD", rf"^/{LOCK_INDEX}(\?|$)"),
    "lock-write": ("PUT|POST", LOCK_DOC),
    "cluster-health": ("GET", r"^/_cluster/health"),
    "alias-read": ("GET", r"^/_alias/"),
    "count": ("GET|POST", rf"^/{ALIAS}/_count"),
    "index-list": ("GET", rf"^/{ALIAS}_\*"),
    "index-status": ("GET", r"^/_cat/indices/"),
    "index-create": ("PUT", INDEX + r"(\?|$)"),
    "load-alias-remove": ("DELETE", INDEX + r"/_alias/"),
    "settings-update": ("PUT", INDEX + r"/_settings"),
    "refresh": ("POST", INDEX + r"/_refresh"),
    "search": ("GET|POST", INDEX + r"/_search"),
    "mapping-read": ("GET", INDEX + r"/_mapping"),
    "mget": ("GET|POST", INDEX + r"/_mget"),
    "mapping-write": ("PUT", INDEX + r"/_mapping"),
    "alias-update": ("POST", r"^/_aliases"),
    "index-delete": ("DELETE", INDEX + r"(\?|$)"),  # prune (of a killed run's leftover)
    "lock-delete": ("DELETE", LOCK_DOC),
}
# The first contact fails at once on a non-JSON answer (most often a wrong URL: test_indexer_faults.py);
# an answer to HEAD has no body.
NOT_RETRIED = {("cluster-info", "html"), ("lock-index-exists", "html")}


def rule(kind: str, fault: str, times: int | None = 1) -> Rule:
    method, path = CALLS[kind]
    return Rule(method, path, FAULTS[fault], times=times)


def via(env: dict[str, str], proxy: FaultProxy, *args: str) -> helpers.Run:
    return indexer({**env, "OPENSEARCH_URL": proxy.url}, *args, timeout=180)


def lock_free(client: OpenSearch, alias: str) -> bool:
    return client.get(index=LOCK_INDEX, id=alias, ignore=[404]).get("found") is False


def leftover(client: OpenSearch, alias: str) -> str:
    """An index a killed run left behind (state `loading`): the next successful reindex prunes it."""
    name = f"{alias}_20000101t000000z"
    client.indices.create(index=name, body={"mappings": {"_meta": {"indexer": {"alias": alias, "state": "loading"}}}})
    return name


@pytest.mark.parametrize("fault", ["timeout", "reset", "html"])
def test_one_fault_on_every_kind_of_call_is_retried_and_the_reindex_succeeds(
    idx_env, alias, client, opensearch_url, served, fault
):
    leftover(client, alias)
    kinds = [kind for kind in CALLS if (kind, fault) not in NOT_RETRIED]
    rules = [rule(kind, fault) for kind in kinds]
    with FaultProxy(opensearch_url, rules) as proxy:
        run = via(idx_env, proxy, "reindex", "--alias", alias, *SHORT, *FAST)

    assert run.code == 0, run.out + run.err
    missed = [kind for kind, r in zip(kinds, rules, strict=True) if not r.hits]
    assert not missed, missed  # every kind of call was made, and failed once
    [now] = alias_targets(client, alias)
    assert now != served and managed_indices(client, alias) == [served, now]  # moved; the leftover pruned
    assert index_meta(client, now)["state"] == "complete"
    assert lock_free(client, alias)
    assert indexer(idx_env, "validate", "--alias", alias, "--quiet").code == 0


# --- a fault that persists: one shared alias and served index for the module ------------------


@pytest.fixture(scope="module")
def module_env(docs_db: PgSettings, opensearch_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "LISTINGS_"))}
    return {**env, **pg_env(docs_db), "OPENSEARCH_URL": opensearch_url, "LISTINGS_SCHEMA": "public", "PGTZ": "UTC"}


@pytest.fixture(scope="module")
def standing(module_env, opensearch_url) -> Iterator[tuple[str, str]]:
    """(alias, the index it serves): every persistent fault must leave it so."""
    alias = f"test_{uuid.uuid4().hex[:10]}_listings"
    client = OpenSearch(hosts=[opensearch_url], timeout=60)
    try:
        run = indexer(module_env, "reindex", "--alias", alias, *FAST)
        assert run.code == 0, run.err
        [index] = alias_targets(client, alias)
        yield alias, index
    finally:
        client.indices.delete(index=f"{alias}_*", expand_wildcards="all", ignore=[404])
        client.delete(index=LOCK_INDEX, id=alias, ignore=[404], refresh=True)
        client.close()


# Before the alias moves: (call kind, fault). Faults that hold a write and forward it late (timeout)
# only on reads: a write applied after the run gave up is another test (test_indexer_faults.py).
BEFORE_THE_MOVE = [
    ("cluster-info", "timeout", "did not answer in time"),
    ("index-like-alias", "reset", "cannot reach OpenSearch"),
    ("lock-index-exists", "timeout", "did not answer in time"),
    ("lock-write", "html", "not JSON"),
    ("cluster-health", "reset", "cannot reach OpenSearch"),
    ("alias-read", "html", "not JSON"),
    ("count", "timeout", "did not answer in time"),
    ("index-list", "reset", "cannot reach OpenSearch"),
    ("index-status", "html", "not JSON"),
    ("index-create", "reset", "cannot reach OpenSearch"),
    ("load-alias-remove", "html", "not JSON"),
    ("settings-update", "reset", "cannot reach OpenSearch"),
    ("refresh", "timeout", "did not answer in time"),
    ("search", "html", "not JSON"),
    ("mapping-read", "reset", "cannot reach OpenSearch"),
    ("mget", "timeout", "did not answer in time"),
    ("mapping-write", "html", "not JSON"),
    ("alias-update", "reset", "cannot reach OpenSearch"),
]


@pytest.mark.parametrize(("kind", "fault", "needle"), BEFORE_THE_MOVE, ids=[f"{k}-{f}" for k, f, _ in BEFORE_THE_MOVE])
def test_a_persistent_fault_before_the_move_is_one_line_exit_2_and_the_alias_unchanged(
    module_env, client, opensearch_url, standing, kind, fault, needle
):
    alias, served = standing
    with FaultProxy(opensearch_url, [rule(kind, fault, times=None)]) as proxy:
        run = via(module_env, proxy, "reindex", "--alias", alias, "--max-retries", "1", *SHORT, *FAST)

    assert_one_line_failure(
        run, 2, needle, *([] if kind in ("index-create", "alias-update") else ["(after 1 retries)"])
    )
    assert run.seconds < 30
    assert alias_targets(client, alias) == [served]
    assert managed_indices(client, alias) == [served]  # the unfinished index was deleted
    assert lock_free(client, alias)


def test_a_persistent_fault_after_the_move_names_what_is_left(idx_env, alias, client, opensearch_url, served):
    # pruning a leftover fails: the reindex succeeded (exit 0), a warning names what is left; the
    # alias is on the new, validated index, and the leftover is pruned by the next reindex
    left = leftover(client, alias)
    with FaultProxy(opensearch_url, [rule("index-delete", "reset", times=None)]) as proxy:
        pruned = via(idx_env, proxy, "reindex", "--alias", alias, "--max-retries", "1", *SHORT, *FAST)
    assert pruned.code == 0, pruned.err
    assert "reindex: warning:" in pruned.err and f"delete index {left}" in pruned.err, pruned.err
    assert left in managed_indices(client, alias)
    [now] = alias_targets(client, alias)
    assert now != served and index_meta(client, now)["state"] == "complete"
    assert lock_free(client, alias)

    # releasing the lock fails: the run succeeded (exit 0) and says how the lock goes away
    with FaultProxy(opensearch_url, [rule("lock-delete", "html", times=None)]) as proxy:
        released = via(idx_env, proxy, "reindex", "--alias", alias, "--max-retries", "1", *SHORT, *FAST)
    assert released.code == 0, released.err
    assert "could not release the lock" in released.err and "unlock --alias" in released.err
    assert alias_targets(client, alias) != [now]
    assert not lock_free(client, alias)
    assert indexer(idx_env, "unlock", "--alias", alias).code == 0  # its holder (pid) is gone


def test_one_fault_of_each_kind_on_validate_and_rollback_is_retried(idx_env, alias, client, opensearch_url, served):
    second = indexer(idx_env, "reindex", "--alias", alias, *FAST)
    assert second.code == 0, second.err
    [newer] = alias_targets(client, alias)
    on_alias = rf"^/{ALIAS}/"

    rules = [
        Rule("GET", r"^/_alias/", "reset"),
        Rule("GET|POST", on_alias + "_search", "html"),
        Rule("GET", on_alias + "_mapping", "delay:1.5"),
        Rule("GET|POST", on_alias + "_mget", "reset"),
    ]
    with FaultProxy(opensearch_url, rules) as proxy:
        validated = via(idx_env, proxy, "validate", "--alias", alias, "--sample", "20", *SHORT)
    assert validated.code == 0, validated.out + validated.err
    assert [r.hits for r in rules] == [1, 1, 1, 1]

    rules = [
        Rule("HEAD", rf"^/{LOCK_INDEX}(\?|$)", "delay:1.5"),
        Rule("PUT|POST", LOCK_DOC, "html"),
        Rule("GET", rf"^/{ALIAS}_\*", "reset"),
        Rule("PUT", INDEX + r"/_mapping", "html"),
        Rule("POST", r"^/_aliases", "delay:1.5"),
        Rule("DELETE", LOCK_DOC, "reset"),
    ]
    with FaultProxy(opensearch_url, rules) as proxy:
        rolled = via(idx_env, proxy, "rollback", "--alias", alias, *SHORT)
    assert rolled.code == 0, rolled.out + rolled.err
    assert [r.hits for r in rules] == [1] * len(rules)
    assert alias_targets(client, alias) == [served]
    assert index_meta(client, newer)["state"] == "rolled_back"
    assert lock_free(client, alias)
