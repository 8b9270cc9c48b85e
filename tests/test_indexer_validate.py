"""validate: every id and every document's content (stored md5 vs PostgreSQL's), in flat memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import psycopg
import pytest
import test_indexer_helpers as helpers
from conftest import scratch_database
from test_indexer_helpers import alias_targets, indexer, synthetic_documents

from indexer.config import load_config
from indexer.opensearch import Indices, make_client
from indexer.source import ReadSnapshot
from indexer.validate import MAX_PROBLEMS, validate
from listings_common.pg import PgSettings

docs_db = helpers.docs_db
idx_env = helpers.idx_env


@pytest.fixture
def loaded(idx_env, alias, client) -> str:
    run = indexer(idx_env, "reindex", "--alias", alias, "--quiet", "--sample", "10")
    assert run.code == 0, run.err
    assert "documents: 3,000 in the index, 3,000 in the database; 3,000 equal by content hash" in run.out
    [index] = alias_targets(client, alias)
    return index


@pytest.fixture
def db(docs_db: PgSettings) -> Iterator[psycopg.Connection]:
    with docs_db.connect(autocommit=True) as conn:
        yield conn


def test_a_changed_row_is_found_by_its_hash_without_any_sample(idx_env, alias, db, loaded):
    listing_id, title = db.execute("select id, title from public.listings order by id desc limit 1").fetchone()
    try:
        db.execute("update public.listings set title = title || '!' where id = %s", (listing_id,))
        run = indexer(idx_env, "validate", "--alias", alias, "--sample", "0")
    finally:
        db.execute("update public.listings set title = %s where id = %s", (title, listing_id))

    assert run.code == 1
    assert "0 missing, 0 not in the database, 1 with different content" in run.out
    assert f"id={listing_id}  (document)  content differs (hash)" in run.out
    assert run.err.count("\n") == 1 and "validation of" in run.err


def test_a_tampered_source_with_its_old_hash_is_caught_by_the_sample(idx_env, alias, client, loaded):
    victim = client.search(index=alias, body={"size": 1, "sort": [{"id": "desc"}]})["hits"]["hits"][0]["_id"]
    client.update(index=alias, id=victim, body={"doc": {"title": "changed in the index"}}, refresh=True)

    hashes_only = indexer(idx_env, "validate", "--alias", alias, "--sample", "0")
    sampled = indexer(idx_env, "validate", "--alias", alias, "--sample", "50000")

    assert hashes_only.code == 0, hashes_only.out  # the stored hash still matches the database
    assert sampled.code == 1
    assert "sample: 2,999 of 3,000 documents equal" in sampled.out and "capped at 10,000" in sampled.out
    assert f'id={victim}  title  db="Listing' in sampled.out and 'index="changed in the index"' in sampled.out


def test_a_tampered_hash_a_missing_and_a_surplus_document_are_counted(idx_env, alias, client, loaded):
    hits = client.search(index=alias, body={"size": 2, "sort": [{"id": "asc"}]})["hits"]["hits"]
    client.update(index=alias, id=hits[0]["_id"], body={"doc": {"document_md5": "0" * 32}})
    source = dict(hits[1]["_source"])
    client.delete(index=alias, id=hits[1]["_id"])
    client.index(index=loaded, id="999999999999", body={**source, "id": 999999999999})
    client.indices.refresh(index=loaded)

    run = indexer(idx_env, "validate", "--alias", alias, "--sample", "5", "--random-state", "1")

    assert run.code == 1
    assert "(1 missing, 1 not in the database, 1 with different content, 0 without a stored hash)" in run.out
    assert f"id={hits[0]['_id']}  (document)  content differs (hash)" in run.out
    assert f"id={hits[1]['_id']}  (document)  missing from the index" in run.out
    assert "id=999999999999  (document)  in the index but not in the database" in run.out


def test_memory_stays_flat_however_many_documents_are_missing(opensearch_url, alias):
    with scratch_database() as settings:
        synthetic_documents(settings, 200_000)
        config = load_config({"OPENSEARCH_URL": opensearch_url}, alias=alias)
        client = make_client(config.opensearch)
        indices = Indices(client, config.opensearch, alias)
        empty = indices.new_index_name()
        indices.create(empty, 1, run="test")
        indices.finish_load(empty, 0)
        with ReadSnapshot(settings, "public") as snapshot:
            tracemalloc.start()
            try:
                report = validate(client, config.opensearch, empty, snapshot, sample=0)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()

    assert not report.ok
    assert report.problem_total == 200_000 and len(report.problems) == MAX_PROBLEMS
    assert "200,000 missing" in "\n".join(report.lines())
    assert peak < 20 * 2**20, peak  # a few pages of ids and hashes, not one entry per missing document
