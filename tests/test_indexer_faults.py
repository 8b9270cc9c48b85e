"""Faults between the indexer and a real node (injected by a proxy), guards, and real signals.

Each failure must be one line on stderr, the right exit code, and the alias left where it was.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable

import pytest
import test_indexer_helpers as helpers
from conftest import pg_env, scratch_database
from opensearchpy import OpenSearch
from test_indexer_helpers import (
    Background,
    FaultProxy,
    Rule,
    alias_targets,
    assert_one_line_failure,
    indexer,
    managed_indices,
    slow_bulks,
    synthetic_documents,
)

from indexer.config import load_config
from indexer.lock import LOCK_INDEX
from listings_common.errors import ConfigError

docs_db = helpers.docs_db
idx_env = helpers.idx_env
served = helpers.served
FAST = ("--quiet", "--sample", "20")


def via(env: dict[str, str], proxy: FaultProxy, *args: str, timeout: float = 120) -> helpers.Run:
    return indexer({**env, "OPENSEARCH_URL": proxy.url}, *args, timeout=timeout)


def sigterm_when(run: Background, reached: Callable[[], bool], settle: float = 0.0) -> tuple[helpers.Run, float]:
    """Once `reached()` (polled for at most 60 s while `run` lives) and `settle` seconds more, SIGTERM
    `run` -> (its finished Run, seconds from the signal to its end); it is killed whatever happens."""
    try:
        deadline = time.monotonic() + 60
        while not reached():
            assert time.monotonic() < deadline and run.proc.poll() is None, run.err
            time.sleep(0.05)
        time.sleep(settle)
        signalled = time.monotonic()
        os.kill(run.proc.pid, signal.SIGTERM)
        done = run.finish(30)
        return done, time.monotonic() - signalled
    finally:
        run.kill()


def assert_untouched(client: OpenSearch, alias: str, served: str) -> None:
    assert alias_targets(client, alias) == [served]
    assert managed_indices(client, alias) == [served]  # the unfinished index was deleted
    assert client.get(index=LOCK_INDEX, id=alias, ignore=[404]).get("found") is False


def test_transient_errors_on_every_kind_of_call_are_retried(idx_env, alias, client, opensearch_url, served):
    index = r"/test_\w+_listings_\d{8}t\d{6}z"
    rules = [
        Rule("POST", r"/_bulk", 503),
        Rule("PUT", index + r"/_settings", 503),
        Rule("POST", index + r"/_refresh", 429, retry_after="1"),
        Rule("(GET|POST)", r"/_count", 503),
        Rule("(GET|POST)", index + r"/_search", 502),
        Rule("(GET|POST)", r"/_mget", 429),
        Rule("PUT", index + r"/_mapping", 503),
        Rule("GET", r"/_alias/", 503),
        Rule("POST", r"^/_aliases", 504),
        Rule("(PUT|POST)", LOCK_INDEX + r"/_doc/", 503),
    ]
    with FaultProxy(opensearch_url, rules) as proxy:
        run = via(idx_env, proxy, "reindex", "--alias", alias, *FAST)

    assert run.code == 0, run.err
    assert all(rule.hits == 1 for rule in rules), [(r.path, r.hits) for r in rules]
    refreshes = [t for _, _, t in proxy.requests("POST", index + r"/_refresh")]
    assert refreshes[1] - refreshes[0] >= 0.95  # Retry-After: 1 was honoured
    assert alias_targets(client, alias) != [served]


def test_a_node_failing_persistently_during_validation_gives_up_in_one_line(
    idx_env, alias, client, opensearch_url, served
):
    rules = [Rule("(GET|POST)", r"_listings_\d{8}t\d{6}z/_search", 503, times=None)]
    with FaultProxy(opensearch_url, rules) as proxy:
        run = via(idx_env, proxy, "reindex", "--alias", alias, "--max-retries", "2", *FAST)

    assert_one_line_failure(run, 2, "HTTP 503", "(after 2 retries)")
    assert_untouched(client, alias, served)


@pytest.mark.parametrize(
    ("rule", "needles"),
    [
        (Rule("POST", r"/_bulk", "delay:4", times=None), ("did not answer in time", "after 1 retries")),
        (Rule("POST", r"/_bulk", "reset", times=None), ("cannot reach OpenSearch", "after 1 retries")),
        (Rule("POST", r"/_bulk", "html"), ("not JSON",)),
        (Rule("POST", r"/_bulk", "drop_item"), ("items", "cannot be trusted")),
        (Rule("POST", r"/_bulk", 429, times=None, retry_after="1"), ("HTTP 429", "after 1 retries")),
    ],
    ids=["timeout", "reset", "html", "items-mismatch", "429-persisting"],
)
def test_bulk_faults_fail_in_one_line_with_exit_2(idx_env, alias, client, opensearch_url, served, rule, needles):
    with FaultProxy(opensearch_url, [rule]) as proxy:
        run = via(idx_env, proxy, "reindex", "--alias", alias, "--timeout", "2", "--max-retries", "1", *FAST)

    assert_one_line_failure(run, 2, *needles)
    assert run.seconds < 30
    time.sleep(2.5)  # a delayed request the proxy still forwards must not leave an index behind
    assert_untouched(client, alias, served)


def test_a_single_reset_is_retried(idx_env, alias, client, opensearch_url, served):
    with FaultProxy(opensearch_url, [Rule("POST", r"/_bulk", "reset")]) as proxy:
        run = via(idx_env, proxy, "reindex", "--alias", alias, *FAST)

    assert run.code == 0, run.err
    assert "retries    1 requests" in run.out


def test_a_non_json_answer_to_the_first_call_is_one_line(idx_env, alias, opensearch_url):
    with FaultProxy(opensearch_url, [Rule("GET", r"^/$", "html")]) as proxy:
        run = via(idx_env, proxy, "status", "--alias", alias)

    assert_one_line_failure(run, 2, "not JSON")


def test_the_flood_stage_block_is_named_and_not_retried(idx_env, alias, client, opensearch_url, served):
    def block(method: str, path: str) -> None:
        index = path.split("/")[1]
        client.indices.put_settings(index=index, body={"index.blocks.read_only_allow_delete": True})

    rules = [Rule("POST", r"/_bulk", block, after=2)]
    with FaultProxy(opensearch_url, rules) as proxy:
        run = via(idx_env, proxy, "reindex", "--alias", alias, "--batch-docs", "200", "--senders", "1", *FAST)

    assert_one_line_failure(run, 2, "read_only_allow_delete", "flood-stage")
    assert run.seconds < 20  # not retried for minutes
    assert_untouched(client, alias, served)


def test_basic_auth_over_plain_http_to_another_host_is_refused(idx_env):
    env = {**idx_env, "OPENSEARCH_USER": "indexer", "OPENSEARCH_PASSWORD": "pw-not-shown"}
    refused = indexer({**env, "OPENSEARCH_URL": "http://search.example:9200"}, "status")
    allowed = indexer(
        {**env, "OPENSEARCH_URL": "http://192.0.2.1:9200"},
        "status", "--allow-insecure-auth", "--timeout", "1", "--max-retries", "0",
    )  # fmt: skip

    assert_one_line_failure(refused, 2, "refusing to send OpenSearch credentials over plain http")
    assert "--allow-insecure-auth" in refused.last_line
    assert allowed.code == 2 and "refusing" not in allowed.err  # tried (and could not connect)
    assert "pw-not-shown" not in refused.err + allowed.err
    for url, ok in [("https://search.example", True), ("http://127.0.0.1:9200", True), ("http://[::1]:9200", True)]:
        assert load_config({"OPENSEARCH_URL": url, "OPENSEARCH_USER": "u", "OPENSEARCH_PASSWORD": "p"}) and ok
    with pytest.raises(ConfigError):
        load_config({"OPENSEARCH_URL": "http://10.0.0.5:9200", "OPENSEARCH_USER": "u"})
    assert load_config(
        {"OPENSEARCH_URL": "http://10.0.0.5:9200", "OPENSEARCH_USER": "u", "OPENSEARCH_ALLOW_INSECURE_AUTH": "1"}
    ).opensearch.allow_insecure_auth


def test_a_much_smaller_source_is_refused_unless_allow_shrink(idx_env, alias, client, opensearch_url):
    with scratch_database() as small:
        synthetic_documents(small, 1000)
        assert indexer(idx_env, "reindex", "--alias", alias, *FAST).code == 0  # 3,000 documents
        [before] = alias_targets(client, alias)
        env = {**idx_env, **pg_env(small)}

        refused = indexer(env, "reindex", "--alias", alias, *FAST)
        allowed = indexer(env, "reindex", "--alias", alias, "--allow-shrink", *FAST)

    # both counts and both sources: the new one, and the one the serving index was built from
    assert_one_line_failure(
        refused, 1, "1,000 listings", "3,000 documents", small.dbname, before, "built from", idx_env["PGDATABASE"],
        "--allow-shrink",
    )  # fmt: skip
    assert allowed.code == 0, allowed.err
    assert client.count(index=alias)["count"] == 1000


def test_replace_index_without_a_plain_index_is_refused_up_front(idx_env, alias, client):
    run = indexer(idx_env, "reindex", "--alias", alias, "--replace-index")

    assert_one_line_failure(run, 2, "--replace-index", "no plain index")
    assert run.seconds < 10
    assert managed_indices(client, alias) == []


def test_sigterm_exits_130_within_seconds_and_deletes_the_unfinished_index(
    idx_env, alias, client, opensearch_url, served
):
    with FaultProxy(opensearch_url, [slow_bulks(1.5)]) as proxy:
        run = Background(
            {**idx_env, "OPENSEARCH_URL": proxy.url}, "reindex", "--alias", alias, "--batch-docs", "100", *FAST
        )
        done, seconds = sigterm_when(run, lambda: bool(proxy.requests("POST", r"/_bulk")), settle=0.3)
        time.sleep(2)  # requests the proxy was still holding reach the node

    assert done.code == 130, done.err
    assert seconds < 6, seconds
    assert "interrupted" in done.last_line and "Traceback" not in done.err
    building = re.search(rf"-> ({alias}_\w+)", done.err)
    assert building, done.err
    assert re.search(rf"deleted the unfinished index {building.group(1)}", done.err)
    assert_untouched(client, alias, served)


def test_opensearch_sh_keeps_url_credentials_out_of_messages_and_argv(opensearch_url):
    secret = "s3/cr@t"  # a '/' and an '@': the old mask showed part of such a password
    url = opensearch_url.replace("://", f"://indexer:{secret}@")
    env = {**os.environ, "OPENSEARCH_URL": url}
    env.pop("OPENSEARCH_USER", None)
    env.pop("OPENSEARCH_PASSWORD", None)
    done = subprocess.run(
        [str(helpers.ROOT / "scripts" / "opensearch.sh"), "status"], env=env, capture_output=True, text=True, timeout=60
    )
    broken = subprocess.run(
        [str(helpers.ROOT / "scripts" / "opensearch.sh"), "status"],
        env={**env, "OPENSEARCH_URL": opensearch_url, "OPENSEARCH_USER": "a\nuser = x"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert "up: configured cluster http://***@127.0.0.1" in done.stdout
    assert "s3" not in done.stdout + done.stderr and "cr@t" not in done.stdout + done.stderr
    assert broken.returncode == 1 and "line break" in broken.stderr


def test_an_alias_move_whose_answer_is_lost_never_deletes_the_aliased_index(
    idx_env, alias, client, opensearch_url, served
):
    unreadable = Rule("GET", r"/_alias/", 503, times=0)

    def lose_reads(method: str, path: str) -> None:
        unreadable.times = None  # from now on the alias cannot be read back

    rules = [Rule("POST", r"^/_aliases", lose_reads, then=504), unreadable]
    with FaultProxy(opensearch_url, rules) as proxy:
        run = via(idx_env, proxy, "reindex", "--alias", alias, "--max-retries", "1", *FAST)

    assert_one_line_failure(run, 2, "may or may not have moved", "status")
    [now] = alias_targets(client, alias)
    assert now != served  # the move applied: its answer was lost
    assert now in managed_indices(client, alias)  # and the index it points at was not deleted


def test_sigterm_during_validation_exits_130_and_deletes_the_index(idx_env, alias, client, opensearch_url, served):
    slow_search = Rule("(GET|POST)", rf"/{alias}_\d{{8}}t\d{{6}}z/_search", "delay:3", times=None)
    with FaultProxy(opensearch_url, [slow_search]) as proxy:
        run = Background({**idx_env, "OPENSEARCH_URL": proxy.url}, "reindex", "--alias", alias, *FAST)
        done, seconds = sigterm_when(run, lambda: bool(slow_search.hits))

    assert done.code == 130, done.err
    assert seconds < 6, seconds
    assert "interrupted" in done.last_line and "Traceback" not in done.err
    assert_untouched(client, alias, served)
