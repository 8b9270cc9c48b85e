"""Rollback only to an index this tool built and validated; kill-safe alias move + mark."""

from __future__ import annotations

import os
import signal
import time

import pytest
import test_indexer_helpers as helpers
from opensearchpy import OpenSearch
from test_indexer_helpers import Background, FaultProxy, Rule, alias_targets, index_meta, indexer, managed_indices

docs_db = helpers.docs_db
idx_env = helpers.idx_env


@pytest.fixture
def three(idx_env, alias, client) -> list[str]:
    """Three successful reindexes (--keep 3): oldest, middle, current."""
    for _ in range(3):
        run = indexer(idx_env, "reindex", "--alias", alias, "--keep", "3", "--sample", "20", "--quiet")
        assert run.code == 0, run.err
    names = managed_indices(client, alias)
    assert len(names) == 3 and alias_targets(client, alias) == [names[-1]]
    return names


def _mark(client: OpenSearch, index: str, **changes: object) -> None:
    meta = index_meta(client, index)
    meta.update(changes)
    client.indices.put_mapping(index=index, body={"_meta": {"indexer": meta}})


def test_rollback_goes_to_the_previous_validated_index_and_marks_the_current(idx_env, alias, client, three):
    oldest, middle, current = three

    run = indexer(idx_env, "rollback", "--alias", alias)

    assert run.code == 0, run.err
    assert alias_targets(client, alias) == [middle]
    meta = index_meta(client, current)
    assert meta["state"] == "rolled_back" and meta["rolled_back_to"] == middle
    # rolled_back is never a target again; the next rollback goes further back.
    refused = indexer(idx_env, "rollback", "--alias", alias, "--to", current)
    assert refused.code == 1 and "in state rolled_back" in refused.err and refused.err.count("\n") == 1
    assert indexer(idx_env, "rollback", "--alias", alias).code == 0
    assert alias_targets(client, alias) == [oldest]


@pytest.mark.parametrize("case", ["loading", "failed", "unvalidated", "closed", "foreign", "short"])
def test_rollback_to_an_index_that_is_not_complete_and_validated_is_refused(idx_env, alias, client, three, case):
    oldest, _, current = three
    target = oldest
    if case in ("loading", "failed"):
        _mark(client, oldest, state=case)
    elif case == "unvalidated":
        _mark(client, oldest, validated_at=None)
    elif case == "closed":
        client.indices.close(index=oldest)
    elif case == "foreign":
        target = f"{alias}_foreign"
        client.indices.create(index=target)
    elif case == "short":
        client.delete(index=oldest, id=next(iter(client.search(index=oldest)["hits"]["hits"]))["_id"], refresh=True)

    run = indexer(idx_env, "rollback", "--alias", alias, "--to", target)

    assert run.code == 1, run.err
    assert run.err.count("\n") == 1 and "Traceback" not in run.err
    expected = {
        "loading": "in state loading",
        "failed": "in state failed",
        "unvalidated": "never validated",
        "closed": "is closed",
        "foreign": "is not an index of alias",
        "short": "but was validated with",
    }[case]
    assert expected in run.err and target in run.err
    assert alias_targets(client, alias) == [current]
    assert index_meta(client, current)["state"] == "complete"


def test_a_rollback_killed_between_mark_and_move_is_finished_by_the_next(idx_env, alias, client, opensearch_url, three):
    _, middle, current = three
    # The alias call never answers; the rollback is SIGKILLed while waiting for it.
    with FaultProxy(opensearch_url, [Rule("POST", r"^/_aliases", "delay:30", times=None)]) as proxy:
        victim = Background({**idx_env, "OPENSEARCH_URL": proxy.url}, "rollback", "--alias", alias)
        try:
            deadline = time.monotonic() + 30
            while not proxy.requests("POST", r"^/_aliases") and victim.proc.poll() is None:
                assert time.monotonic() < deadline, victim.err
                time.sleep(0.05)
            assert proxy.requests("POST", r"^/_aliases"), victim.err
            os.kill(victim.proc.pid, signal.SIGKILL)
            victim.finish(10)
        finally:
            victim.kill()
    # Killed after the mark, before the move: the alias still serves `current`, marked rolled_back.
    assert alias_targets(client, alias) == [current]
    meta = index_meta(client, current)
    assert meta["state"] == "rolled_back" and meta["rolled_back_to"] == middle

    run = indexer(idx_env, "rollback", "--alias", alias)

    assert run.code == 0, run.err
    assert "finishing an interrupted rollback" in run.out
    assert alias_targets(client, alias) == [middle]


def test_prune_keeps_validated_rollback_targets_and_drops_leftovers(idx_env, alias, client, three):
    oldest, middle, current = three
    _mark(client, oldest, state="loading")  # as if killed while loading

    run = indexer(idx_env, "reindex", "--alias", alias, "--keep", "3", "--quiet", "--sample", "10")

    assert run.code == 0, run.err
    names = managed_indices(client, alias)
    assert oldest not in names and middle in names and current in names and len(names) == 3
