"""Explicit index settings: shards, replicas (default from the data nodes), refresh, active shards."""

from __future__ import annotations

import pytest
import test_indexer_helpers as helpers
from opensearchpy import OpenSearch
from test_indexer_helpers import FaultProxy, alias_targets, indexer, managed_indices

docs_db = helpers.docs_db
idx_env = helpers.idx_env


def index_settings(client: OpenSearch, index: str) -> dict:
    return client.indices.get_settings(index=index)[index]["settings"]["index"]


def test_defaults_on_a_single_node_and_settings_restored_after_the_load(idx_env, alias, client, opensearch_url):
    with FaultProxy(opensearch_url) as proxy:
        run = indexer({**idx_env, "OPENSEARCH_URL": proxy.url}, "reindex", "--alias", alias, "--quiet")

    assert run.code == 0, run.err
    assert "0 replica(s): default, 1 data node(s)" in run.err
    [index] = alias_targets(client, alias)
    settings = index_settings(client, index)
    assert settings["number_of_shards"] == "1" and settings["number_of_replicas"] == "0"
    assert settings["refresh_interval"] == "1s"
    assert "shards     1 primary, 0 replica(s), refresh 1s" in run.out
    bulks = proxy.requests("POST", r"/_bulk")
    assert bulks and all("wait_for_active_shards=all" in path and "require_alias=true" in path for _, path, _ in bulks)
    assert all(f"/{index}.loading/_bulk" in path for _, path, _ in bulks)
    aliases = client.indices.get_alias(index=index)[index]["aliases"]
    assert list(aliases) == [alias]  # the load alias is gone


def test_explicit_shards_and_refresh_interval(idx_env, alias, client):
    run = indexer(idx_env, "reindex", "--alias", alias, "--shards", "2", "--refresh-interval", "5s", "--quiet")

    assert run.code == 0, run.err
    [index] = alias_targets(client, alias)
    settings = index_settings(client, index)
    assert (settings["number_of_shards"], settings["refresh_interval"]) == ("2", "5s")


def test_replicas_that_cannot_be_allocated_are_refused_up_front(idx_env, alias, client):
    run = indexer(idx_env, "reindex", "--alias", alias, "--replicas", "1")

    assert run.code == 2
    assert run.err.count("\n") == 1 and "Traceback" not in run.err
    assert "--replicas 1 needs at least 2 data nodes, and the cluster has 1" in run.err
    assert managed_indices(client, alias) == []


@pytest.mark.parametrize(
    ("flag", "value"), [("--refresh-interval", "soon"), ("--wait-for-active-shards", "most"), ("--shards", "0")]
)
def test_bad_setting_values_are_one_line(idx_env, alias, flag, value):
    run = indexer(idx_env, "reindex", "--alias", alias, flag, value)

    assert run.code == 2 and run.err.count("\n") == 1 and flag in run.err
