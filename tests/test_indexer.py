"""The indexer against the real PostgreSQL (`migrated_db`: fixtures + `dbt build`) and a real
OpenSearch node. Each test has its own alias/index prefix (`opensearch_alias`), so tests never
see each other's indices. Tests that change rows of the shared module database put them back.

The CLI is driven through `main([...])` (output captured with capsys), or as a subprocess where
the point is what a user sees: exactly one line on stderr, no traceback, the exit code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from conftest import pg_env
from opensearchpy import OpenSearch
from test_indexer_helpers import FaultProxy, Run, alias_targets, bulk_plan, free_port, managed_indices
from test_indexer_helpers import indexer as indexer_subprocess

from indexer.bulk import batched, ndjson, with_hash
from indexer.cli import main
from indexer.config import load_config
from indexer.opensearch import Indices, make_client
from indexer.source import ReadSnapshot
from listings_common.pg import PgSettings
from standin import DIRTY_CASE_IDS

VIEW = "public_search.listing_search_documents"
SECRET = "s3cret-Pa55word"
TEXT_CASES = (
    "c2c_text_emoji",
    "c2c_text_control_whitespace",
    "c2c_text_quotes_backslashes",
    "c2c_text_russian",
    "c2c_text_json_looking",
)


# --- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def env(migrated_db: PgSettings, opensearch_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The indexer's environment for this test (also set in os.environ for `main`)."""
    values = {**pg_env(migrated_db), "OPENSEARCH_URL": opensearch_url, "LISTINGS_SCHEMA": "public"}
    for name in ("OPENSEARCH_USER", "OPENSEARCH_PASSWORD", "OPENSEARCH_CA_CERTS", "OPENSEARCH_VERIFY_CERTS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return {**os.environ, **values}


@pytest.fixture
def cli(env: dict[str, str], opensearch_alias: str, capsys: pytest.CaptureFixture) -> Callable[..., Run]:
    """cli("reindex", "--keep", "3") -> Run: `main` with this test's alias, output captured."""

    def run(*args: str) -> Run:
        code = main([*args, "--alias", opensearch_alias])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def db(migrated_db: PgSettings) -> Iterator[psycopg.Connection]:
    with migrated_db.connect(autocommit=True) as conn:
        yield conn


def db_counts(db: psycopg.Connection) -> tuple[int, int]:
    listings = db.execute("select count(*) from public.listings").fetchone()[0]
    images = db.execute("select count(*) from public.listing_images").fetchone()[0]
    return listings, images


def db_document_text(db: psycopg.Connection, listing_id: int) -> str:
    return db.execute(f"select document::text from {VIEW} where id = %s", (listing_id,)).fetchone()[0]


def listing_id_of(db: psycopg.Connection, case: str) -> int:
    side, source_id = DIRTY_CASE_IDS[case]
    row = db.execute(
        "select listing_id from public_staged.listing_id_map where source_type = %s and source_id = %s",
        (side, source_id),
    ).fetchone()
    assert row, f"dirty case {case} is not among the migrated listings (fixtures loaded without --dirty?)"
    return row[0]


def nested_image_count(client: OpenSearch, index: str) -> int:
    body = {"size": 0, "aggs": {"images": {"nested": {"path": "images"}}}}
    return client.search(index=index, body=body)["aggregations"]["images"]["doc_count"]


def raw_source(opensearch_url: str, index: str, listing_id: int) -> bytes:
    with urllib.request.urlopen(f"{opensearch_url}/{index}/_source/{listing_id}", timeout=30) as response:
        return response.read()


@contextmanager
def extra_listing(db: psycopg.Connection) -> Iterator[int]:
    """A copy of the first listing under a new id (no images, no location); removed afterwards."""
    new_id = db.execute("select max(id) + 1 from public.listings").fetchone()[0]
    columns = [r[0] for r in db.execute(
        "select column_name from information_schema.columns where table_schema = 'public' "
        "and table_name = 'listings' and column_name not in ('id', 'uuid') order by ordinal_position"
    ).fetchall()]  # fmt: skip
    names = ", ".join(columns)
    db.execute(
        f"insert into public.listings (id, uuid, {names}) "
        f"select %s, gen_random_uuid(), {names} from public.listings order by id limit 1",
        (new_id,),
    )
    try:
        yield new_id
    finally:
        db.execute("delete from public.listings where id = %s", (new_id,))


# --- behaviour --------------------------------------------------------------------------


def test_reindex_loads_every_listing_validates_and_moves_the_alias(cli, client, db, opensearch_alias):
    run = cli("reindex")

    assert run.code == 0, run.out + run.err
    [index] = alias_targets(client, opensearch_alias)
    assert re.fullmatch(rf"{opensearch_alias}_\d{{8}}t\d{{6}}z", index)
    listings, images = db_counts(db)
    assert listings > 300 and images > 0
    assert client.count(index=opensearch_alias)["count"] == listings
    assert nested_image_count(client, opensearch_alias) == images
    # A document with images equals the database's, field by field.
    listing_id = db.execute("select listing_id from public.listing_images order by listing_id limit 1").fetchone()[0]
    source = client.get(index=opensearch_alias, id=listing_id)["_source"]
    text = db_document_text(db, listing_id)
    assert source.pop("document_md5") == hashlib.md5(text.encode()).hexdigest()  # the stored content hash
    assert source == json.loads(text)
    assert source["images"]
    # Loaded with the strict mapping, search settings restored.
    mapping = client.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["dynamic"] == "strict" and mapping["properties"]["images"]["type"] == "nested"
    settings = client.indices.get_settings(index=index)[index]["settings"]["index"]
    assert settings["refresh_interval"] == "1s" and settings["number_of_replicas"] == "0"
    # The report: validation against the new index, then the summary.
    assert "FAIL" not in run.out
    for expected in ("documents:", "images:", "required fields present", "reindex: OK", index, "docs/s", "moved"):
        assert expected in run.out
    assert f"{listings:,} listings -> {index}" in run.err

    assert cli("validate").code == 0
    status = cli("status")
    assert status.code == 0 and index in status.out and f"{listings:,} listings" in status.out


def test_reindex_again_is_idempotent_keeps_the_previous_index_and_prunes_older(cli, client, opensearch_alias):
    names = []
    for _ in range(3):
        run = cli("reindex")
        assert run.code == 0, run.out + run.err
        names.append(alias_targets(client, opensearch_alias)[0])

    first, second, third = names
    assert first < second < third  # a new index per run, names sort by age
    assert alias_targets(client, opensearch_alias) == [third]
    assert managed_indices(client, opensearch_alias) == [second, third]  # --keep 2: current + previous
    assert f"pruned     {first}" in run.out
    # Same documents under the same _ids in both kept indices.
    count = client.count(index=second)["count"]
    assert client.count(index=third)["count"] == count
    ids = [hit["_id"] for hit in client.search(index=third, body={"size": 50, "_source": False})["hits"]["hits"]]
    before = client.mget(index=second, body={"ids": ids})["docs"]
    after = client.mget(index=third, body={"ids": ids})["docs"]
    assert [d["_source"] for d in before] == [d["_source"] for d in after]


def test_leftover_index_of_a_killed_run_is_pruned_and_the_next_run_succeeds(cli, client, opensearch_alias):
    assert cli("reindex").code == 0
    [current] = alias_targets(client, opensearch_alias)
    # What a run killed mid-load leaves behind: a newer index, state `loading`, half full, no alias.
    config = load_config(alias=opensearch_alias)
    indices = Indices(make_client(config.opensearch), config.opensearch, opensearch_alias)
    leftover = indices.new_index_name()
    indices.create(leftover, shards=1)
    client.bulk(index=leftover, body='{"index":{"_id":"1"}}\n{"id": 1}\n', refresh=True)

    assert cli("validate").code == 0  # the alias still serves the complete index
    assert alias_targets(client, opensearch_alias) == [current]

    run = cli("reindex")
    assert run.code == 0, run.out + run.err
    [new] = alias_targets(client, opensearch_alias)
    assert new > leftover
    assert managed_indices(client, opensearch_alias) == [current, new]
    assert leftover in run.out  # reported as pruned


def test_searches_during_a_reindex_always_see_a_complete_index(cli, client, db, opensearch_alias):
    assert cli("reindex").code == 0
    old_count = client.count(index=opensearch_alias)["count"]
    seen: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def search_loop() -> None:
        while not stop.is_set():
            try:
                body = {"size": 0, "track_total_hits": True}
                seen.append(client.search(index=opensearch_alias, body=body)["hits"]["total"]["value"])
            except Exception as exc:  # any error at all fails the test
                errors.append(repr(exc))

    with extra_listing(db):
        searcher = threading.Thread(target=search_loop)
        searcher.start()
        try:
            while not seen:
                time.sleep(0.01)
            # Small batches, one sender: the load takes many requests, searches interleave.
            run = cli("reindex", "--batch-docs", "10", "--senders", "1")
            time.sleep(0.3)
        finally:
            stop.set()
            searcher.join()

    assert run.code == 0, run.out + run.err
    assert not errors
    assert set(seen) == {old_count, old_count + 1}, sorted(set(seen))
    assert seen[0] == old_count and seen[-1] == old_count + 1
    assert len(seen) > 20


def test_validate_names_a_missing_document_and_a_changed_field(cli, client, db, opensearch_alias):
    assert cli("reindex").code == 0
    first, second = (r[0] for r in db.execute("select id from public.listings order by id limit 2").fetchall())

    client.delete(index=opensearch_alias, id=first, refresh=True)
    run = cli("validate", "--sample", "1", "--random-state", "7")  # found by the id merge, sampled or not
    assert run.code == 1
    assert f"id={first}  (document)  missing from the index" in run.out
    assert "1 missing" in run.out
    assert run.err.count("\n") == 1 and "validation of" in run.err and "failed" in run.err

    client.update(index=opensearch_alias, id=second, body={"doc": {"title": "changed in the index"}}, refresh=True)
    run = cli("validate", "--sample", "100000")
    assert run.code == 1
    original = json.loads(db_document_text(db, second))["title"]
    assert f'id={second}  title  db={json.dumps(original, ensure_ascii=False)}  index="changed in the index"' in run.out


def test_rollback_moves_the_alias_back_to_the_previous_index(cli, client, opensearch_alias):
    assert cli("reindex").code == 0
    [first] = alias_targets(client, opensearch_alias)
    assert cli("reindex").code == 0
    [second] = alias_targets(client, opensearch_alias)

    run = cli("rollback")
    assert run.code == 0, run.err
    assert alias_targets(client, opensearch_alias) == [first]
    assert f"-> {first}" in run.out
    status = cli("status")
    assert re.search(rf"{second}\s+rolled_back", status.out)
    assert re.search(rf"{first}\s+complete\s+[\d,]+\s+\S+ \S+\s+\*", status.out)

    again = cli("rollback")  # nothing older is left
    assert again.code == 1 and "no previous complete, validated index" in again.err
    assert alias_targets(client, opensearch_alias) == [first]

    # The next reindex never keeps the rolled-back index as the rollback target.
    assert cli("reindex").code == 0
    [third] = alias_targets(client, opensearch_alias)
    assert managed_indices(client, opensearch_alias) == [first, third]


def test_a_plain_index_left_by_the_old_scripts_is_replaced_only_when_asked(cli, client, opensearch_alias):
    client.indices.create(index=opensearch_alias, body={"settings": {"number_of_replicas": 0}})
    client.index(index=opensearch_alias, id="1", body={"title": "from reindex_via_docker.py"}, refresh=True)

    refused = cli("reindex")
    assert refused.code == 2 and "--replace-index" in refused.err
    assert list(client.indices.get(index=opensearch_alias)) == [opensearch_alias]  # untouched

    run = cli("reindex", "--replace-index")
    assert run.code == 0, run.out + run.err
    [index] = alias_targets(client, opensearch_alias)
    assert list(client.indices.get(index=opensearch_alias)) == [index]  # the name is now the alias


def test_an_empty_listings_table_does_not_replace_a_full_index_unless_allowed(cli, client, db, opensearch_alias):
    assert cli("reindex").code == 0
    [full] = alias_targets(client, opensearch_alias)
    schema = f"empty_{opensearch_alias}"
    db.execute(f"create schema {schema}; create schema {schema}_search")
    try:
        db.execute(f"create table {schema}.listings as select * from public.listings where false")
        db.execute(f"create table {schema}.listing_images as select * from public.listing_images where false")
        db.execute(f"create view {schema}_search.listing_search_documents as select * from {VIEW} where false")
        refused = cli("reindex", "--schema", schema)
        allowed = cli("reindex", "--schema", schema, "--allow-empty")
    finally:
        db.execute(f"drop schema {schema}_search cascade; drop schema {schema} cascade")

    assert refused.code == 1 and "--allow-empty" in refused.err
    assert allowed.code == 0, allowed.out + allowed.err
    [empty] = alias_targets(client, opensearch_alias)
    assert empty != full and client.count(index=empty)["count"] == 0


def test_rejected_documents_fail_the_run_report_ids_and_leave_the_alias(cli, client, db, opensearch_alias):
    assert cli("reindex").code == 0
    [before] = alias_targets(client, opensearch_alias)
    bad_date, bad_update = (r[0] for r in db.execute(
        "select id from public.listings order by id limit 2"
    ).fetchall())  # fmt: skip
    times = db.execute(
        "select id, created_at, updated_at from public.listings where id in (%s, %s)", (bad_date, bad_update)
    ).fetchall()
    # Five-digit years: not strict ISO dates, so the mapping rejects both documents.
    try:
        db.execute("update public.listings set created_at = '12345-01-01' where id in (%s, %s)", (bad_date, bad_update))
        run = cli("reindex")
        kept = cli("reindex", "--keep-failed")
    finally:
        for listing_id, created_at, updated_at in times:
            db.execute(
                "update public.listings set created_at = %s, updated_at = %s where id = %s",
                (created_at, updated_at, listing_id),
            )

    assert run.code == 1
    assert "rejected documents: 2" in run.out
    assert re.search(rf"id={bad_date}  HTTP 400  mapper_parsing_exception: .*created_at", run.out)
    assert re.search(rf"id={bad_update}  HTTP 400  mapper_parsing_exception: .*created_at", run.out)
    # the field's name and the cause, never its value (OpenSearch appends a preview of it)
    assert "(value not shown)" in run.out and "12345-01-01" not in run.out
    assert run.err.strip().endswith("alias not moved")
    assert "Traceback" not in run.err
    # --keep-failed leaves the new index for inspection, marked failed and write-blocked.
    assert kept.code == 1
    assert alias_targets(client, opensearch_alias) == [before]
    [failed] = [name for name in managed_indices(client, opensearch_alias) if name != before]
    meta = client.indices.get_mapping(index=failed)[failed]["mappings"]["_meta"]["indexer"]
    assert meta["state"] == "failed" and "rejected" in meta["reason"]
    blocks = client.indices.get_settings(index=failed)[failed]["settings"]["index"]["blocks"]
    assert blocks["write"] == "true"
    # The next good run succeeds and prunes the failed index.
    assert cli("reindex").code == 0
    assert failed not in managed_indices(client, opensearch_alias)


def test_text_survives_byte_for_byte(cli, client, db, opensearch_url, opensearch_alias):
    assert cli("reindex").code == 0
    texts = ""
    for case in TEXT_CASES:
        listing_id = listing_id_of(db, case)
        document = db_document_text(db, listing_id)
        # The index returns exactly the bytes PostgreSQL rendered: no re-serialisation anywhere.
        # (with the content hash put first: `"document_md5":"...",` and then the rest unchanged)
        assert raw_source(opensearch_url, opensearch_alias, listing_id) == with_hash(document.encode("utf-8"))
        assert with_hash(document.encode()).endswith(document.encode()[1:])
        source = client.get(index=opensearch_alias, id=listing_id)["_source"]
        title, description = db.execute(
            "select title, description from public.listings where id = %s", (listing_id,)
        ).fetchone()
        assert (source["title"], source["description"]) == (title, description)
        texts += title + description
    for needle in ("\U0001f600", "\r\n", "\t", '"', "\\", "ё", "{"):
        assert needle in texts  # the cases really contain what they are about


def test_timestamps_with_non_utc_offsets_keep_the_instant(cli, client, db, opensearch_alias):
    assert cli("reindex").code == 0
    listing_id = listing_id_of(db, "b2c_timestamps_non_utc")
    _, product_id = DIRTY_CASE_IDS["b2c_timestamps_non_utc"]
    created, updated = db.execute(
        "select created_at, updated_at from monolith.b2c_products where id = %s", (product_id,)
    ).fetchone()  # timestamptz, inserted as 08:30-05 and 12:00+02
    source = client.get(index=opensearch_alias, id=listing_id)["_source"]

    assert datetime.fromisoformat(source["created_at"]) == created
    assert datetime.fromisoformat(source["updated_at"]) == updated
    assert source["updated_at"].startswith("2025-06-01T10:00:00")
    # OpenSearch agrees on the instant: a query written with the original offset finds it.
    query = {"query": {"bool": {"filter": [
        {"term": {"id": listing_id}},
        {"term": {"updated_at": "2025-06-01T12:00:00+02:00"}},
        {"term": {"created_at": "2025-01-15T08:30:00-05:00"}},
    ]}}}  # fmt: skip
    assert client.count(index=opensearch_alias, body=query)["count"] == 1


def test_server_down_is_one_line_and_exit_2(env):
    port = free_port()
    run = indexer_subprocess({**env, "OPENSEARCH_URL": f"http://127.0.0.1:{port}"}, "reindex")

    assert run.code == 2
    assert run.out == ""
    assert run.err.count("\n") == 1 and "Traceback" not in run.err
    assert f"cannot reach OpenSearch at http://127.0.0.1:{port}" in run.err


def test_wrong_url_path_is_one_line_and_exit_2(env, opensearch_url):
    run = indexer_subprocess({**env, "OPENSEARCH_URL": f"{opensearch_url}/no-such-prefix"}, "status")

    assert run.code == 2
    assert run.err.count("\n") == 1 and "Traceback" not in run.err
    assert "HTTP 404" in run.err and "OPENSEARCH_URL" in run.err


class _Rejecting(BaseHTTPRequestHandler):
    """A server that turns every request away as a secured OpenSearch does wrong credentials."""

    def do_GET(self) -> None:
        body = json.dumps({"error": {"type": "security_exception", "reason": "unauthorized"}, "status": 401})
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


def test_rejected_credentials_are_one_line_exit_2_and_never_show_the_password(env):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Rejecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with_env = indexer_subprocess({**env, "OPENSEARCH_URL": url, "OPENSEARCH_USER": "indexer",
                                   "OPENSEARCH_PASSWORD": SECRET}, "status")  # fmt: skip
        in_url = indexer_subprocess({**env, "OPENSEARCH_URL": url.replace("//", f"//indexer:{SECRET}@")}, "reindex")
    finally:
        server.shutdown()

    for run in (with_env, in_url):
        assert run.code == 2
        assert run.err.count("\n") == 1 and "Traceback" not in run.err
        assert "rejected the credentials (HTTP 401)" in run.err and url in run.err
        assert SECRET not in run.out + run.err


def test_password_is_never_printed_on_a_full_run(cli, monkeypatch):
    monkeypatch.setenv("OPENSEARCH_USER", "indexer")  # the test node has no security plugin: accepted
    monkeypatch.setenv("OPENSEARCH_PASSWORD", SECRET)
    runs = [cli("reindex"), cli("validate"), cli("status"), cli("rollback")]

    assert [r.code for r in runs] == [0, 0, 0, 1]
    assert all(SECRET not in r.out + r.err for r in runs)


def test_postgres_problems_are_one_line_exit_2(env):
    missing_view = indexer_subprocess({**env, "LISTINGS_SCHEMA": "not_built"}, "reindex")
    assert missing_view.code == 2
    assert missing_view.err.count("\n") == 1 and "Traceback" not in missing_view.err
    assert "not_built_search.listing_search_documents" in missing_view.err and "dbt build" in missing_view.err

    down = indexer_subprocess({**env, "PGPORT": str(free_port())}, "reindex")
    assert down.code == 2
    assert down.err.count("\n") == 1 and "cannot connect to postgresql://" in down.err


# --- faults between the indexer and a real node -------------------------------------------


def test_429_5xx_and_failed_items_are_retried(cli, client, db, opensearch_url, opensearch_alias, monkeypatch):
    with FaultProxy(opensearch_url, bulk_plan(503, 429, "items:3", "pass", "items:1")) as proxy:
        monkeypatch.setenv("OPENSEARCH_URL", proxy.url)
        run = cli("reindex", "--batch-docs", "100", "--senders", "1")

    assert run.code == 0, run.out + run.err
    assert "retries    2 requests, 4 items" in run.out
    listings, images = db_counts(db)
    assert client.count(index=opensearch_alias)["count"] == listings
    assert nested_image_count(client, opensearch_alias) == images


def test_a_node_that_keeps_failing_gives_up_and_keeps_the_alias(
    cli, client, opensearch_url, opensearch_alias, monkeypatch
):
    assert cli("reindex").code == 0
    [before] = alias_targets(client, opensearch_alias)
    with FaultProxy(opensearch_url, bulk_plan(503, repeat_last=True)) as proxy:
        monkeypatch.setenv("OPENSEARCH_URL", proxy.url)
        run = cli("reindex", "--max-retries", "2")

    assert run.code == 2
    assert len(proxy.requests("POST|PUT", r"/_bulk")) >= 3  # first try + 2 retries
    assert "HTTP 503" in run.err and "after 2 retries" in run.err and "Traceback" not in run.err
    assert alias_targets(client, opensearch_alias) == [before]
    assert managed_indices(client, opensearch_alias) == [before]  # the unfinished index was deleted


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls_is_verified_by_default_against_the_given_ca_bundle(env, opensearch_url, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    with FaultProxy(opensearch_url, tls=tls) as proxy:  # https in front of the real node
        untrusted = indexer_subprocess({**env, "OPENSEARCH_URL": proxy.url}, "status")
        trusted = indexer_subprocess({**env, "OPENSEARCH_URL": proxy.url, "OPENSEARCH_CA_CERTS": str(cert)}, "status")
        unverified = indexer_subprocess({**env, "OPENSEARCH_URL": proxy.url}, "status", "--no-verify-certs")

    assert untrusted.code == 2 and untrusted.err.count("\n") == 1
    assert "TLS error" in untrusted.err and "CERTIFICATE_VERIFY_FAILED" in untrusted.err
    assert trusted.code == 0, trusted.err
    assert trusted.out.startswith("alias ")
    assert unverified.code == 0 and "TLS certificate verification is off" in unverified.err


# --- pure functions -----------------------------------------------------------------------


def test_bulk_bodies_carry_the_document_text_unchanged():
    rows = [(1, b'{"title": "a\\"b"}'), (22, '{"title": "Ђ 😀"}'.encode())]
    body = ndjson(rows)

    md5 = [hashlib.md5(doc).hexdigest() for _, doc in rows]
    assert (
        body
        == (
            f'{{"index":{{"_id":"1"}}}}\n{{"document_md5":"{md5[0]}","title": "a\\"b"}}\n'
            f'{{"index":{{"_id":"22"}}}}\n{{"document_md5":"{md5[1]}","title": "Ђ 😀"}}\n'
        ).encode()
    )
    assert with_hash(b"{}") == b'{"document_md5":"%b"}' % hashlib.md5(b"{}").hexdigest().encode()
    assert [len(b) for b in batched([rows * 3, rows], max_docs=3, max_bytes=10**6)] == [3, 3, 2]
    assert [len(b) for b in batched([rows * 3], max_docs=100, max_bytes=60)] == [2, 2, 2]


def test_configuration_keeps_secrets_out_of_urls_and_reprs():
    config = load_config(
        {"OPENSEARCH_URL": f"https://indexer:{SECRET}@search.example:9200/", "PGPASSWORD": SECRET},
        alias="listings_microservice",
    )

    assert config.opensearch.url == "https://search.example:9200"
    assert (config.opensearch.user, config.opensearch.password) == ("indexer", SECRET)
    assert config.opensearch.verify_certs is True
    assert SECRET not in repr(config) and SECRET not in config.opensearch.describe()
    assert config.search_schema == "public_search"


def test_the_read_snapshot_outlives_the_servers_idle_in_transaction_timeout(scratch_db):
    with scratch_db.connect(autocommit=True) as conn:
        conn.execute("create table listings (id bigint); create table listing_images (id bigint)")
        conn.execute(
            psycopg.sql.SQL("alter database {} set idle_in_transaction_session_timeout = '500ms'").format(
                psycopg.sql.Identifier(scratch_db.dbname)
            )
        )
    with ReadSnapshot(scratch_db, "public") as snapshot:
        assert snapshot.counts().listings == 0
        time.sleep(1.5)  # idle in the snapshot's transaction, as while OpenSearch backs off
        assert snapshot.counts().listings == 0
    # the server's setting holds for every other session
    with scratch_db.connect() as conn:
        conn.execute("select 1")
        time.sleep(1.5)
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
            conn.execute("select 1")
