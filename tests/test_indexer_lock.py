"""One writer per alias: the lock held in OpenSearch (indexer/lock.py), with real processes.

A slow load is made by the fault proxy delaying every bulk request; kills are real signals.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import test_indexer_helpers as helpers
from opensearchpy import OpenSearch
from test_indexer_helpers import (
    Background,
    FaultProxy,
    alias_targets,
    index_meta,
    indexer,
    managed_indices,
    slow_bulks,
)

from indexer.lock import LOCK_INDEX

docs_db = helpers.docs_db
idx_env = helpers.idx_env


def _slow(env: dict[str, str], proxy: FaultProxy, alias: str, *extra: str) -> Background:
    return Background(
        {**env, "OPENSEARCH_URL": proxy.url},
        "reindex", "--alias", alias, "--batch-docs", "200", "--senders", "1", "--quiet", *extra,
    )  # fmt: skip


def _write_lock(client: OpenSearch, alias: str, *, host: str, pid: int, expires_in: float) -> None:
    now = int(time.time() * 1000)
    client.index(
        index=LOCK_INDEX,
        id=alias,
        refresh=True,
        body={
            "alias": alias, "command": "reindex", "host": host, "pid": pid, "started_at": "2026-01-01T00:00:00Z",
            "renewed_at_ms": now - 5000, "expires_at_ms": now + int(expires_in * 1000), "lease_seconds": 60,
            "token": "someone-else", "index": None,
        },
    )  # fmt: skip


def test_a_second_reindex_is_refused_at_once_naming_the_first(idx_env, alias, client, opensearch_url):
    with FaultProxy(opensearch_url, [slow_bulks(0.3)]) as proxy:
        first = _slow(idx_env, proxy, alias)
        try:
            first.wait_for(rf"-> {alias}_")
            second = indexer(idx_env, "reindex", "--alias", alias)
            status = indexer(idx_env, "status", "--alias", alias)
            done = first.finish()
        finally:
            first.kill()

    assert second.code == 2, second.err
    assert second.seconds < 15
    assert second.err.count("\n") == 1 and "Traceback" not in second.err
    assert f"alias {alias} is locked by `reindex` on {socket.gethostname()} pid {first.proc.pid}" in second.err
    assert "building " + alias in second.err and "unlock" in second.err
    assert f"pid {first.proc.pid}" in status.out and "lock    held by" in status.out
    assert done.code == 0, done.err
    [index] = alias_targets(client, alias)
    assert managed_indices(client, alias) == [index]  # the refused run created nothing
    assert client.get(index=LOCK_INDEX, id=alias, ignore=[404]).get("found") is False  # released


def test_a_sigkilled_holder_is_taken_over_and_its_loading_index_pruned(idx_env, alias, client, opensearch_url):
    with FaultProxy(opensearch_url, [slow_bulks(0.3)]) as proxy:
        victim = _slow(idx_env, proxy, alias)
        try:
            leftover = victim.wait_for(rf"-> ({alias}_\w+)").group(1)
            os.kill(victim.proc.pid, signal.SIGKILL)
            victim.finish(10)
        finally:
            victim.kill()
    assert index_meta(client, leftover)["state"] == "loading"
    status = indexer(idx_env, "status", "--alias", alias)
    assert f"pid {victim.proc.pid}" in status.out and "STALE: process" in status.out

    run = indexer(idx_env, "reindex", "--alias", alias)

    assert run.code == 0, run.err
    assert f"took over the lock of alias {alias}" in run.err and f"process {victim.proc.pid}" in run.err
    [index] = alias_targets(client, alias)
    assert index != leftover and leftover not in managed_indices(client, alias)  # pruned, never aliased


def test_a_live_lock_of_another_host_is_refused_until_unlock_force(idx_env, alias, client):
    _write_lock(client, alias, host="batch-7.example", pid=4242, expires_in=600)

    refused = indexer(idx_env, "reindex", "--alias", alias)
    rollback = indexer(idx_env, "rollback", "--alias", alias)
    polite = indexer(idx_env, "unlock", "--alias", alias)
    forced = indexer(idx_env, "unlock", "--alias", alias, "--force")
    again = indexer(idx_env, "unlock", "--alias", alias)

    for run in (refused, rollback, polite):
        assert run.code == 2 and run.err.count("\n") == 1, run.err
        assert "batch-7.example pid 4242" in run.err
    assert "--force" in polite.err
    assert forced.code == 0 and "removed the lock" in forced.out and "batch-7.example" in forced.out
    assert again.code == 0 and "not locked" in again.out


def test_an_expired_lease_is_taken_over(idx_env, alias, client):
    _write_lock(client, alias, host="batch-7.example", pid=4242, expires_in=-30)

    run = indexer(idx_env, "reindex", "--alias", alias)

    assert run.code == 0, run.err
    assert "took over the lock" in run.err and "lease expired" in run.err
    assert alias_targets(client, alias)


def test_a_run_whose_lock_is_taken_over_stops_without_touching_the_alias(idx_env, alias, client, opensearch_url):
    assert indexer(idx_env, "reindex", "--alias", alias).code == 0
    [before] = alias_targets(client, alias)
    with FaultProxy(opensearch_url, [slow_bulks(0.3)]) as proxy:
        run = _slow(idx_env, proxy, alias, "--lock-lease", "4")
        try:
            building = run.wait_for(rf"-> ({alias}_\w+)").group(1)
            # Another run takes the lock over (as after a long freeze of this one).
            _write_lock(client, alias, host="other.example", pid=1, expires_in=600)
            done = run.finish(30)
        finally:
            run.kill()

    assert done.code == 2, done.err
    assert "was taken over" in done.last_line and "other.example" in done.last_line
    assert "Traceback" not in done.err
    assert alias_targets(client, alias) == [before]
    assert building not in managed_indices(client, alias)
    # Its lock is not ours to release: still the other holder's.
    assert client.get(index=LOCK_INDEX, id=alias)["_source"]["host"] == "other.example"


def test_the_lease_is_renewed_while_the_holder_runs(idx_env, alias, client, opensearch_url):
    with FaultProxy(opensearch_url, [slow_bulks(0.4)]) as proxy:
        first = _slow(idx_env, proxy, alias, "--lock-lease", "2")
        try:
            first.wait_for(rf"-> {alias}_")
            time.sleep(4)  # twice the lease: only renewals keep the lock alive
            held = client.get(index=LOCK_INDEX, id=alias)["_source"]
            read_at_ms = time.time() * 1000
            second = indexer(idx_env, "reindex", "--alias", alias)
            done = first.finish()
        finally:
            first.kill()

    assert held["pid"] == first.proc.pid and held["expires_at_ms"] > read_at_ms  # renewed: not expired
    assert second.code == 2 and f"pid {first.proc.pid}" in second.err, second.err
    assert done.code == 0, done.err
