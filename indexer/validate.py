"""Checks that an index (or the alias) holds exactly what the database says.

1. every document: the ids and content hashes of both sides are merged as two id-ordered
   streams: PostgreSQL's `(id, md5 of the document's UTF-8 text)` from the documents view,
   ordered by id, and OpenSearch's `(id, document_md5)` read with search_after sorted by
   `id`, doc values only (no _source). Every id must be on both sides with equal hashes:
   missing, surplus and differing documents are counted, and only the first MAX_PROBLEMS
   are kept (memory stays flat however many differ). `document_md5` is what the bulk
   loader stored with each document: the md5 of the exact bytes PostgreSQL sent.
2. images: the nested documents under `images` (a nested aggregation) equal the rows
   of `listing_images`; `listings` has as many rows as the view.
3. required fields: no document lacks any of REQUIRED_FIELDS (one `filters` aggregation).
4. timestamps: the mapping only accepts ISO 8601 with a zone (so every indexed document
   has one), and the sampled documents' values are checked too.
5. sample: N listing ids (at most MAX_SAMPLE) chosen from a random state; each stored _source is
   compared, field by field, with the database's document, and its document_md5 with the
   md5 of the database's text: this ties the hashes compared in 1 to the stored content.
"""

from __future__ import annotations

import hashlib
import json
import queue
import random
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch

from .bulk import HASH_FIELD
from .config import OpenSearchSettings
from .opensearch import ZONED_DATE_FORMAT, date_formats
from .retry import RetryPolicy, call, complete
from .source import Counts, ReadSnapshot

REQUIRED_FIELDS = (
    "id", "uuid", "title", "price", "currency", "status", "visibility",
    "source_type", "user_id", "created_at", "updated_at",
)  # fmt: skip
TIMESTAMP_FIELDS = ("created_at", "updated_at")
ISO_ZONED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
MAX_PROBLEMS = 25
MAX_SAMPLE = 10_000  # --sample is capped here: it is fetched in MGET_CHUNK-id requests
MGET_CHUNK = 500
ID_PAGE = 10_000  # ids and hashes per search_after page
MAX_VALUE = 80
_MISSING = object()


@dataclass(frozen=True)
class Problem:
    listing_id: str | None
    field: str
    db: Any = _MISSING
    index: Any = _MISSING
    note: str = ""

    def line(self) -> str:
        parts = [f"id={self.listing_id}" if self.listing_id is not None else "index", self.field]
        if self.db is not _MISSING or self.index is not _MISSING:
            parts += [f"db={_show(self.db)}", f"index={_show(self.index)}"]
        if self.note:
            parts.append(self.note)
        return "  ".join(parts)


def _show(value: Any) -> str:
    if value is _MISSING:
        return "<absent>"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


@dataclass
class ValidationReport:
    target: str
    checks: list[tuple[bool, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problem_total: int = 0
    index_counts: Counts | None = None
    _seen: set[tuple[str | None, str]] = field(default_factory=set, repr=False)

    @property
    def ok(self) -> bool:
        return all(passed for passed, _ in self.checks)

    def check(self, passed: bool, text: str) -> None:
        self.checks.append((passed, text))

    def problem(self, problem: Problem) -> None:
        """Count a difference; only the first MAX_PROBLEMS are kept (and deduplicated)."""
        key = (problem.listing_id, problem.field)
        if key in self._seen:
            return
        self.problem_total += 1
        if len(self.problems) < MAX_PROBLEMS:
            self._seen.add(key)
            self.problems.append(problem)

    def lines(self) -> list[str]:
        out = [f"validate {self.target}"]
        out += [f"  {'ok  ' if passed else 'FAIL'}  {text}" for passed, text in self.checks]
        if self.problems:
            shown = len(self.problems)
            extra = f" (first {shown} of {self.problem_total})" if self.problem_total > shown else ""
            out.append(f"differences{extra}:")
            out += ["  " + p.line() for p in self.problems]
        return out


def diff_documents(db: Any, index: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(field path, db value, index value) for every difference; nested lists by position."""
    if isinstance(db, dict) and isinstance(index, dict):
        for key in list(db) + [k for k in index if k not in db]:
            yield from diff_documents(db.get(key, _MISSING), index.get(key, _MISSING), f"{path}.{key}".lstrip("."))
    elif isinstance(db, list) and isinstance(index, list) and len(db) == len(index):
        for position, (a, b) in enumerate(zip(db, index, strict=True)):
            yield from diff_documents(a, b, f"{path}[{position}]")
    elif type(db) is not type(index) or db != index:
        yield path or "(document)", db, index


def index_counts(client: OpenSearch, settings: OpenSearchSettings, target: str, policy: RetryPolicy) -> Counts:
    body = {"size": 0, "track_total_hits": True, "aggs": {"images": {"nested": {"path": "images"}}}}
    response = call(
        policy,
        settings,
        f"count documents and images in {target}",
        lambda: complete(client.search(index=target, body=body)),
        index=target,
    )
    docs = response["hits"]["total"]["value"]
    return Counts(listings=int(docs), images=int(response["aggregations"]["images"]["doc_count"]))


def index_hashes(
    client: OpenSearch, settings: OpenSearchSettings, target: str, policy: RetryPolicy, page: int = ID_PAGE
) -> Iterator[list[tuple[int, str | None]]]:
    """Pages of (listing id, stored document_md5 or None), ascending by id: doc values only, no _source."""
    body: dict[str, Any] = {
        "size": page,
        "_source": False,
        "stored_fields": "_none_",
        "docvalue_fields": [HASH_FIELD],
        "sort": [{"id": "asc"}],
        "track_total_hits": False,
    }
    while True:
        found = call(
            policy,
            settings,
            f"list the ids and hashes in {target}",
            lambda: complete(client.search(index=target, body=body)),
        )
        hits = found["hits"]["hits"]
        rows = []
        for hit in hits:
            values = hit.get("fields", {}).get(HASH_FIELD)
            rows.append((int(hit["sort"][0]), values[0] if values else None))
        yield rows
        if len(hits) < page:
            return
        body["search_after"] = hits[-1]["sort"]


def _prefetched(pages: Iterator[list[tuple[int, str | None]]], depth: int = 2) -> Iterator[tuple[int, str | None]]:
    """Read `pages` in a thread, `depth` pages ahead, so both sides of the merge work at once."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for rows in pages:
                while not stop.is_set():
                    try:
                        box.put(rows, timeout=0.2)
                        break
                    except queue.Full:
                        pass
                if stop.is_set():
                    return
            box.put(done)
        except BaseException as exc:  # handed to the consumer
            box.put(exc)

    thread = threading.Thread(target=produce, name="validate-ids", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()


@dataclass
class MergeResult:
    db_rows: int = 0
    index_rows: int = 0
    missing: int = 0
    surplus: int = 0
    differing: int = 0
    unhashed: int = 0


def merge_hashes(
    report: ValidationReport, db: Iterator[tuple[int, str]], idx: Iterator[tuple[int, str | None]]
) -> MergeResult:
    """Walk both id-ordered streams once; count (and keep the first few of) every difference."""
    result = MergeResult()
    db_next, idx_next = next(db, None), next(idx, None)
    while db_next is not None or idx_next is not None:
        if idx_next is None or (db_next is not None and db_next[0] < idx_next[0]):
            result.missing += 1
            result.db_rows += 1
            report.problem(Problem(str(db_next[0]), "(document)", note="missing from the index"))
            db_next = next(db, None)
        elif db_next is None or idx_next[0] < db_next[0]:
            result.surplus += 1
            result.index_rows += 1
            report.problem(Problem(str(idx_next[0]), "(document)", note="in the index but not in the database"))
            idx_next = next(idx, None)
        else:
            result.db_rows += 1
            result.index_rows += 1
            if idx_next[1] is None:
                result.unhashed += 1
                report.problem(Problem(str(db_next[0]), HASH_FIELD, note="no content hash stored (old indexer?)"))
            elif idx_next[1] != db_next[1]:
                result.differing += 1
                report.problem(Problem(str(db_next[0]), "(document)", note="content differs (hash)"))
            db_next, idx_next = next(db, None), next(idx, None)
    return result


def _check_required(
    report: ValidationReport, client: OpenSearch, settings: OpenSearchSettings, target: str, policy: RetryPolicy
) -> None:
    filters = {name: {"bool": {"must_not": {"exists": {"field": name}}}} for name in REQUIRED_FIELDS}
    body = {"size": 0, "aggs": {"missing": {"filters": {"filters": filters}}}}
    found = call(
        policy, settings, f"check required fields in {target}", lambda: complete(client.search(index=target, body=body))
    )
    buckets = found["aggregations"]["missing"]["buckets"]
    lacking = {name: b["doc_count"] for name, b in buckets.items() if b["doc_count"]}
    for name in lacking:
        query = {"size": 5, "_source": False, "query": filters[name], "sort": [{"_doc": "asc"}]}
        found = call(
            policy,
            settings,
            f"find documents without {name}",
            lambda q=query: complete(client.search(index=target, body=q)),
        )
        hits = found["hits"]["hits"]
        for hit in hits:
            report.problem(Problem(hit["_id"], name, note="required field is null or absent"))
    detail = ", ".join(f"{name}: {count} docs" for name, count in lacking.items())
    report.check(not lacking, "required fields present" + (f" (missing: {detail})" if lacking else ""))


def _check_sample(
    report: ValidationReport,
    client: OpenSearch,
    settings: OpenSearchSettings,
    target: str,
    snapshot: ReadSnapshot,
    size: int,
    random_state: int,
    policy: RetryPolicy,
) -> None:
    capped = f", capped at {MAX_SAMPLE:,}" if size > MAX_SAMPLE else ""
    ids = snapshot.sample_ids(min(size, MAX_SAMPLE), random_state)
    if not ids:
        report.check(True, f"sample: no listings to compare (random state {random_state})")
        return
    differing = bad_stamps = absent = 0
    for start in range(0, len(ids), MGET_CHUNK):
        chunk = ids[start : start + MGET_CHUNK]
        db_docs = snapshot.documents_by_id(chunk)
        found = call(
            policy,
            settings,
            f"fetch sampled documents from {target}",
            lambda chunk=chunk: complete(client.mget(index=target, body={"ids": [str(i) for i in chunk]})),
        )["docs"]
        index_docs = {int(d["_id"]): d["_source"] for d in found if d.get("found")}
        for listing_id in chunk:
            db_text, indexed = db_docs.get(listing_id), index_docs.get(listing_id, _MISSING)
            if indexed is _MISSING or db_text is None:
                absent += 1  # counted by the full comparison already
                continue
            db_doc = json.loads(db_text)
            stored_hash = indexed.pop(HASH_FIELD, None) if isinstance(indexed, dict) else None
            diffs = list(diff_documents(db_doc, indexed))
            if stored_hash != hashlib.md5(db_text.encode("utf-8")).hexdigest():
                diffs.append((HASH_FIELD, _MISSING, stored_hash))
            differing += bool(diffs)
            for path, a, b in diffs:
                report.problem(Problem(str(listing_id), path, a, b))
            if isinstance(indexed, dict):
                for name in TIMESTAMP_FIELDS:
                    value = indexed.get(name)
                    if not (isinstance(value, str) and ISO_ZONED.match(value)):
                        bad_stamps += 1
                        report.problem(Problem(str(listing_id), name, index=value, note="not ISO 8601 with a zone"))
    compared = len(ids) - absent
    report.check(
        not differing,
        f"sample: {compared - differing:,} of {compared:,} documents equal the database's field by field, "
        f"with their stored hash (random state {random_state}{capped})",
    )
    report.check(not bad_stamps, f"sampled timestamps ISO 8601 with a zone ({bad_stamps} bad)")


def validate(
    client: OpenSearch,
    settings: OpenSearchSettings,
    target: str,
    snapshot: ReadSnapshot,
    sample: int = 200,
    random_state: int | None = None,
    db_counts: Counts | None = None,
    policy: RetryPolicy | None = None,
) -> ValidationReport:
    """Run every check of `target` (an index or the alias) against the snapshot."""
    policy = policy or RetryPolicy()
    random_state = random.SystemRandom().randrange(1_000_000) if random_state is None else random_state
    report = ValidationReport(target)
    expected = db_counts or snapshot.counts()
    actual = report.index_counts = index_counts(client, settings, target, policy)

    merged = merge_hashes(
        report, snapshot.document_hashes(), _prefetched(index_hashes(client, settings, target, policy))
    )
    wrong = merged.missing + merged.surplus + merged.differing + merged.unhashed
    detail = (
        f" ({merged.missing:,} missing, {merged.surplus:,} not in the database, {merged.differing:,} with "
        f"different content, {merged.unhashed:,} without a stored hash)"
        if wrong
        else ""
    )
    report.check(
        not wrong,
        f"documents: {merged.index_rows:,} in the index, {merged.db_rows:,} in the database; "
        f"{merged.index_rows - merged.surplus - merged.differing - merged.unhashed:,} equal by content hash{detail}",
    )
    if merged.db_rows != expected.listings:
        report.check(False, f"the documents view has {merged.db_rows:,} rows but listings has {expected.listings:,}")
    report.check(
        actual.images == expected.images,
        f"images: {actual.images:,} nested in the index, {expected.images:,} listing_images rows",
    )
    _check_required(report, client, settings, target, policy)

    formats = date_formats(client, settings, target, policy)
    loose = sorted(name for name, fmt in formats.items() if fmt != ZONED_DATE_FORMAT)
    report.check(
        not loose,
        "timestamps: mapping accepts only ISO 8601 with a zone"
        + (f" (not so for {', '.join(loose)})" if loose else ""),
    )
    if sample:
        _check_sample(report, client, settings, target, snapshot, sample, random_state, policy)
    return report
