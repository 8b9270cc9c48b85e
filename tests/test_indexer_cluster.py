"""A real 3-node cluster (scripts/opensearch.sh cluster-start) and nodes SIGKILLed mid-run.

The cluster is this module's own (a unique name, free ports, its own data directories) and is
stopped and purged when the module ends, pass or fail. The indexer talks to it through a
proxy that fails over to the next node like a load balancer, so any node may be killed.

Whatever happens to a run (it completes, or it fails in one line), the alias must never
point at an index missing a document: after the node is back, `validate` of the alias passes.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import build, load_monolith, pg_env, publish, scratch_database
from opensearchpy import OpenSearch
from test_indexer_helpers import (
    ROOT,
    Background,
    FaultProxy,
    Rule,
    alias_targets,
    indexer,
    slow_bulks,
    synthetic_documents,
    unique_alias,
)
from test_indexer_sync import LEDGER, RUNS, assert_alias_equals_tables, checkpoint, rows, scalar

from listings_common.pg import PgSettings

pytestmark = pytest.mark.slow
SCRIPT = str(ROOT / "scripts" / "opensearch.sh")
DOCS = 50_000


def _version() -> str:
    return os.environ.get("OPENSEARCH_VERSION") or re.search(
        r'OS_VERSION="\$\{OPENSEARCH_VERSION:-([^}]+)\}"', Path(SCRIPT).read_text()
    ).group(1)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports() -> tuple[int, int]:
    for _ in range(100):
        http = random.randrange(20000, 39000)
        if all(_port_free(p) for base in (http, http + 1000) for p in range(base, base + 3)):
            return http, http + 1000
    raise RuntimeError("no 6 free ports for the test cluster")


@dataclass
class Cluster:
    name: str
    env: dict[str, str]
    urls: list[str]

    def script(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run([SCRIPT, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def pids(self) -> dict[str, int]:
        lines = self.script("cluster-pids").stdout.split("\n")
        return {f"{self.name}-{node}": int(pid) for node, pid in (line.split() for line in lines if line.strip())}

    def kill(self, node: str) -> None:
        os.kill(self.pids()[node], signal.SIGKILL)

    def restart_and_wait_green(self, client: OpenSearch) -> None:
        started = self.script("cluster-start")
        assert started.returncode == 0, started.stderr
        health = client.cluster.health(wait_for_status="green", wait_for_nodes="3", timeout="120s", request_timeout=130)
        assert health["status"] == "green", health


def _cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "listings-migration"


def _stop_orphans() -> None:
    """Stop test clusters whose pytest process is gone (a session killed before its teardown)."""
    for directory in _cache().glob("cluster-*-itest-*"):
        owner = directory / "owner.pid"
        try:
            pid = int(owner.read_text())
            os.kill(pid, 0)
            continue  # its session is still running
        except (OSError, ValueError):
            pass
        name = directory.name.split("-", 2)[2]
        env = {**os.environ, "OPENSEARCH_CLUSTER_NAME": name}
        subprocess.run([SCRIPT, "cluster-stop", "--purge"], env=env, capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.skip("scripts/opensearch.sh runs the local nodes as user opensearch: needs root")
    _stop_orphans()
    http, transport = _free_ports()
    name = f"itest-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "OPENSEARCH_CLUSTER_NAME": name,
        "OPENSEARCH_CLUSTER_HTTP_PORT": str(http),
        "OPENSEARCH_CLUSTER_TRANSPORT_PORT": str(transport),
    }
    env.pop("OPENSEARCH_URL", None)
    cluster = Cluster(name, env, [f"http://127.0.0.1:{http + i}" for i in range(3)])
    try:
        started = cluster.script("cluster-start")
        assert started.returncode == 0, started.stdout + started.stderr
        (_cache() / f"cluster-{_version()}-{name}" / "owner.pid").write_text(str(os.getpid()))
        yield cluster
    finally:
        stopped = cluster.script("cluster-stop", "--purge", timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert not cluster.pids()


@pytest.fixture(scope="module")
def big_db() -> Iterator[PgSettings]:
    with scratch_database() as settings:
        synthetic_documents(settings, DOCS)
        yield settings


@pytest.fixture(scope="module")
def client(cluster: Cluster) -> Iterator[OpenSearch]:
    client = OpenSearch(hosts=cluster.urls, timeout=60, max_retries=3, retry_on_timeout=True)
    yield client
    client.close()


@pytest.fixture(scope="module")
def balancer(cluster: Cluster) -> Iterator[FaultProxy]:
    with FaultProxy(cluster.urls[0], fallbacks=cluster.urls[1:]) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def alias() -> str:
    return f"test_{uuid.uuid4().hex[:10]}_listings"


@pytest.fixture(scope="module")
def env(big_db: PgSettings, balancer: FaultProxy) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "LISTINGS_"))}
    return {**base, **pg_env(big_db), "OPENSEARCH_URL": balancer.url, "LISTINGS_SCHEMA": "public", "PGTZ": "UTC"}


def copies(client: OpenSearch, index: str) -> dict[str, str]:
    """prirep ('p'/'r') -> node name, for shard 0 of `index` (started copies only)."""
    rows = client.cat.shards(index=index, format="json", h="prirep,state,node")
    return {r["prirep"]: r["node"] for r in rows if r["state"] == "STARTED"}


def assert_clear(run, alias: str, client: OpenSearch, before: list[str]) -> None:
    """A run that did not complete failed in one line and left the alias where it was."""
    if run.code == 0:
        return
    assert run.code in (1, 2), run.err
    assert re.match(r"listings-indexer \w+: error: ", run.last_line) and "Traceback" not in run.err, run.err
    assert alias_targets(client, alias) == before


def assert_alias_complete(env: dict[str, str], alias: str) -> None:
    check = indexer(env, "validate", "--alias", alias, "--sample", "50", timeout=180)
    assert check.code == 0, check.out + check.err
    assert f"{DOCS:,} in the index, {DOCS:,} in the database; {DOCS:,} equal by content hash" in check.out


def test_a_reindex_on_three_nodes_gets_one_replica_on_another_node(env, alias, client, cluster):
    run = indexer(env, "reindex", "--alias", alias, "--quiet", timeout=240)

    assert run.code == 0, run.err
    assert "1 replica(s): default, 3 data node(s)" in run.err
    [index] = alias_targets(client, alias)
    placed = copies(client, index)
    assert set(placed) == {"p", "r"} and placed["p"] != placed["r"]
    assert client.count(index=alias)["count"] == DOCS


def test_the_node_holding_the_primary_killed_mid_load(env, alias, client, cluster, balancer):
    before = alias_targets(client, alias)
    run = Background(
        env, "reindex", "--alias", alias, "--batch-docs", "1000",
        "--timeout", "5", "--max-retries", "2", "--replica-timeout", "30",
    )  # fmt: skip
    try:
        index = run.wait_for(rf"-> ({alias}_\w+)", timeout=60).group(1)
        deadline = time.monotonic() + 60
        while len(balancer.requests("POST", rf"/{index}.loading/_bulk")) < 10:
            assert time.monotonic() < deadline and run.proc.poll() is None, run.err
            time.sleep(0.1)
        victim = copies(client, index)["p"]
        cluster.kill(victim)
        done = run.finish(240)
    finally:
        run.kill()
    print(f"killed {victim} (primary of {index}) mid-load: exit {done.code}: {done.last_line}")

    assert_clear(done, alias, client, before)
    if done.code:
        assert index not in client.indices.get(index=f"{alias}_*", ignore=[404])  # the unfinished index went
    cluster.restart_and_wait_green(client)
    assert_alias_complete(env, alias)


def test_a_node_holding_a_copy_killed_during_validation(env, alias, client, cluster):
    before = alias_targets(client, alias)
    killed: list[str] = []

    def kill_a_copy(method: str, path: str) -> None:
        if not killed:
            index = path.split("/")[1]
            # The lost copy is re-created at once on the third node (default: after 1 minute).
            client.indices.put_settings(index=index, body={"index.unassigned.node_left.delayed_timeout": "0s"})
            killed.append(copies(client, index)["r"])
            cluster.kill(killed[0])
            time.sleep(1)

    hook = Rule("(GET|POST)", rf"/{alias}_\d{{8}}t\d{{6}}z/_search", kill_a_copy, after=3)
    with FaultProxy(cluster.urls[0], [hook], fallbacks=cluster.urls[1:]) as proxy:
        run = indexer(
            {**env, "OPENSEARCH_URL": proxy.url},
            "reindex", "--alias", alias, "--quiet", "--timeout", "15", "--max-retries", "4",
            "--replica-timeout", "60", timeout=240,
        )  # fmt: skip
    print(f"killed {killed} during validation: exit {run.code}: {run.last_line}")

    assert killed, "the validation never reached the hook"
    assert_clear(run, alias, client, before)
    cluster.restart_and_wait_green(client)
    assert_alias_complete(env, alias)


def test_replicas_that_do_not_allocate_never_get_the_alias(env, alias, client, cluster):
    before = alias_targets(client, alias)

    def pin_to_the_primary(method: str, path: str) -> None:
        index = path.split("/")[1]
        others = [node for node in cluster.pids() if node != copies(client, index)["p"]]
        # Only the primary's node may hold a copy: the replica can never be allocated.
        client.indices.put_settings(index=index, body={"index.routing.allocation.exclude._name": ",".join(others)})

    hook = Rule("PUT", rf"/{alias}_\d{{8}}t\d{{6}}z/_settings", pin_to_the_primary)
    with FaultProxy(cluster.urls[0], [hook], fallbacks=cluster.urls[1:]) as proxy:
        run = indexer(
            {**env, "OPENSEARCH_URL": proxy.url},
            "reindex", "--alias", alias, "--quiet", "--replica-timeout", "5", timeout=240,
        )  # fmt: skip

    assert hook.hits == 1
    assert run.code == 2, run.out + run.err
    assert (
        run.last_line.startswith("listings-indexer reindex: error: the 1 replica(s) of ")
        and "alias not moved" in run.last_line
    )
    assert "health yellow" in run.last_line and "1 unassigned" in run.last_line
    assert alias_targets(client, alias) == before


@pytest.fixture(scope="module")
def ledger_db(run_dbt) -> Iterator[PgSettings]:
    """The stand-in monolith after a real `dbt build` and `publish`: a publish ledger to sync from."""
    with scratch_database() as settings:
        load_monolith(settings, c2c=1500, b2c=500, dirty=False)
        build(run_dbt, settings)
        publish(settings)
        yield settings


def test_the_node_holding_the_primary_killed_mid_sync(run_dbt, ledger_db, client, cluster, balancer):
    alias = unique_alias()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "LISTINGS_"))}
    env = {**base, **pg_env(ledger_db), "OPENSEARCH_URL": balancer.url, "LISTINGS_SCHEMA": "public", "PGTZ": "UTC"}
    first = indexer(env, "reindex", "--alias", alias, "--quiet", "--sample", "50", timeout=240)
    assert first.code == 0, first.out + first.err
    [index] = alias_targets(client, alias)
    served = client.count(index=alias)["count"]
    # the lost copy is re-created at once on the third node (default: after 1 minute)
    client.indices.put_settings(index=index, body={"index.unassigned.node_left.delayed_timeout": "0s"})

    build_run = scalar(ledger_db, "select max(run_id) from public_migration.publish_runs")
    statements = (
        "update monolith.c2c_listings set title = title || ' (edited)' where id % 3 <> 0",
        "update monolith.b2c_products set price = price + 1 where id % 2 = 0",
    )
    with ledger_db.connect(autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    build(run_dbt, ledger_db)
    publish(ledger_db, "--allow-large-change")
    target = build_run + 1
    changed = scalar(ledger_db, f"select count(*) from {LEDGER} where version = %s", (target,))
    assert changed > 1000

    counts: list[int] = []  # what the alias serves while the sync runs (complete answers only)
    stop = threading.Event()

    def watch() -> None:
        watcher = OpenSearch(hosts=cluster.urls, timeout=5, max_retries=1)
        while not stop.wait(0.2):
            try:
                answer = watcher.count(index=alias)
            except Exception:  # a node is down: no answer is no evidence
                continue
            if not answer["_shards"]["failed"]:
                counts.append(answer["count"])
        watcher.close()

    watching = threading.Thread(target=watch, daemon=True)
    watching.start()
    with FaultProxy(cluster.urls[0], [slow_bulks(0.05)], fallbacks=cluster.urls[1:]) as proxy:
        run = Background(
            {**env, "OPENSEARCH_URL": proxy.url},
            "sync", "--alias", alias, "--batch-docs", "20", "--timeout", "10", "--max-retries", "4",
        )  # fmt: skip
        try:
            run.wait_for(rf"sync: run {target} listing \d+: 200 upserted", timeout=120)
            victim = {c["prirep"]: c["node"] for c in client.cat.shards(index=index, format="json")}["p"]
            cluster.kill(victim)
            done = run.finish(180)
        finally:
            run.kill()
            stop.set()
            watching.join(10)
    print(f"killed {victim} (primary of {index}) mid-sync: exit {done.code}: {done.last_line}")

    if done.code:
        assert done.code in (1, 2), done.err
        assert re.match(r"listings-indexer \w+: error: ", done.last_line) and "Traceback" not in done.err, done.err
    else:
        assert "sync: OK" in done.out
    assert alias_targets(client, alias) == [index]  # a sync never moves the alias
    assert counts and set(counts) == {served}, sorted(set(counts))  # never an answer missing a document

    cluster.restart_and_wait_green(client)
    _, run_id, last_id = checkpoint(ledger_db, alias)
    second = indexer(env, "sync", "--alias", alias, "--quiet", timeout=180)
    assert second.code == 0, second.out + second.err
    if done.code:
        start = f"run {run_id}" + (f" listing {last_id}" if last_id is not None else "")
        assert f"from       {start} (checkpoint)" in second.out
    assert checkpoint(ledger_db, alias) == (index, target, None)
    # each change acknowledged exactly once across the two runs (a batch re-sent is not counted twice)
    runs = rows(
        ledger_db,
        f"select status, upserted, deleted, skipped from {RUNS} where alias = %s and command = 'sync' order by sync_id",
        (alias,),
    )
    assert len(runs) == 2 and runs[1][0] == "ok" and runs[0][0] == ("failed" if done.code else "ok"), runs
    assert sum(r[1] + r[2] + r[3] for r in runs) == changed, runs
    assert_alias_equals_tables(client, alias, ledger_db)  # every document, and the ledger's version of each
    check = indexer(env, "validate", "--alias", alias, "--sample", "50", timeout=180)
    assert check.code == 0, check.out + check.err
