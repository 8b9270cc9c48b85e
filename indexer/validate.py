"""Checks that an index (or the alias) holds exactly what the database says.

1. documents: `_count` equals the rows of `listings`; on a mismatch the missing and
   surplus ids are found by merging both id streams in order (flat memory).
2. images: the nested documents under `images` (a nested aggregation) equal the rows
   of `listing_images`.
3. required fields: no document lacks any of REQUIRED_FIELDS (one `filters` aggregation).
4. timestamps: the mapping only accepts ISO 8601 with a zone (so every indexed document
   has one), and the sampled documents' values are checked too.
5. sample: N listing ids chosen from a seed; each document in the index is compared,
   field by field, with the database's document.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch

from .config import OpenSearchSettings
from .opensearch import ZONED_DATE_FORMAT, date_formats, translate_errors
from .source import Counts, Snapshot

REQUIRED_FIELDS = (
    "id", "uuid", "title", "price", "currency", "status", "visibility",
    "source_type", "user_id", "created_at", "updated_at",
)  # fmt: skip
TIMESTAMP_FIELDS = ("created_at", "updated_at")
ISO_ZONED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
MAX_PROBLEMS = 25
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
class Report:
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
        key = (problem.listing_id, problem.field)
        if key in self._seen:  # e.g. a missing document found by both the id merge and the sample
            return
        self._seen.add(key)
        self.problem_total += 1
        if len(self.problems) < MAX_PROBLEMS:
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


def index_counts(client: OpenSearch, settings: OpenSearchSettings, target: str) -> Counts:
    body = {"size": 0, "track_total_hits": True, "aggs": {"images": {"nested": {"path": "images"}}}}
    with translate_errors(settings, f"count documents and images in {target}"):
        response = client.search(index=target, body=body)
    docs = response["hits"]["total"]["value"]
    return Counts(listings=int(docs), images=int(response["aggregations"]["images"]["doc_count"]))


def index_ids(client: OpenSearch, settings: OpenSearchSettings, target: str, page: int = 10000) -> Iterator[int]:
    """Every document's listing id, ascending (search_after on the `id` field)."""
    body: dict[str, Any] = {"size": page, "_source": False, "sort": [{"id": "asc"}], "track_total_hits": False}
    while True:
        with translate_errors(settings, f"list the ids in {target}"):
            hits = client.search(index=target, body=body)["hits"]["hits"]
        for hit in hits:
            yield int(hit["_id"])
        if len(hits) < page:
            return
        body["search_after"] = hits[-1]["sort"]


def _merge_ids(report: Report, db_ids: Iterator[int], idx_ids: Iterator[int]) -> tuple[int, int]:
    missing = surplus = 0
    db_next, idx_next = next(db_ids, None), next(idx_ids, None)
    while db_next is not None or idx_next is not None:
        if idx_next is None or (db_next is not None and db_next < idx_next):
            missing += 1
            report.problem(Problem(str(db_next), "(document)", note="missing from the index"))
            db_next = next(db_ids, None)
        elif db_next is None or idx_next < db_next:
            surplus += 1
            report.problem(Problem(str(idx_next), "(document)", note="in the index but not in listings"))
            idx_next = next(idx_ids, None)
        else:
            db_next, idx_next = next(db_ids, None), next(idx_ids, None)
    return missing, surplus


def _check_required(report: Report, client: OpenSearch, settings: OpenSearchSettings, target: str) -> None:
    filters = {name: {"bool": {"must_not": {"exists": {"field": name}}}} for name in REQUIRED_FIELDS}
    body = {"size": 0, "aggs": {"missing": {"filters": {"filters": filters}}}}
    with translate_errors(settings, f"check required fields in {target}"):
        buckets = client.search(index=target, body=body)["aggregations"]["missing"]["buckets"]
    lacking = {name: b["doc_count"] for name, b in buckets.items() if b["doc_count"]}
    for name in lacking:
        query = {"size": 5, "_source": False, "query": filters[name], "sort": [{"_doc": "asc"}]}
        with translate_errors(settings, f"find documents without {name}"):
            hits = client.search(index=target, body=query)["hits"]["hits"]
        for hit in hits:
            report.problem(Problem(hit["_id"], name, note="required field is null or absent"))
    detail = ", ".join(f"{name}: {count} docs" for name, count in lacking.items())
    report.check(not lacking, "required fields present" + (f" (missing: {detail})" if lacking else ""))


def _check_sample(
    report: Report,
    client: OpenSearch,
    settings: OpenSearchSettings,
    target: str,
    snapshot: Snapshot,
    size: int,
    seed: int,
) -> None:
    ids = snapshot.sample_ids(size, seed)
    if not ids:
        report.check(True, f"sample: no listings to compare (seed {seed})")
        return
    db_docs = snapshot.documents_by_id(ids)
    with translate_errors(settings, f"fetch sampled documents from {target}"):
        found = client.mget(index=target, body={"ids": [str(i) for i in ids]})["docs"]
    index_docs = {int(d["_id"]): d["_source"] for d in found if d.get("found")}
    differing = 0
    bad_stamps = 0
    for listing_id in ids:
        db_text, indexed = db_docs.get(listing_id), index_docs.get(listing_id, _MISSING)
        db_doc = json.loads(db_text) if db_text is not None else _MISSING
        if indexed is _MISSING or db_doc is _MISSING:
            differing += 1
            note = "missing from the index" if indexed is _MISSING else "no document in the view"
            report.problem(Problem(str(listing_id), "(document)", note=note))
            continue
        diffs = list(diff_documents(db_doc, indexed))
        differing += bool(diffs)
        for path, a, b in diffs:
            report.problem(Problem(str(listing_id), path, a, b))
        if isinstance(indexed, dict):
            for name in TIMESTAMP_FIELDS:
                value = indexed.get(name)
                if not (isinstance(value, str) and ISO_ZONED.match(value)):
                    bad_stamps += 1
                    report.problem(Problem(str(listing_id), name, index=value, note="not ISO 8601 with a zone"))
    report.check(
        not differing, f"sample: {len(ids) - differing:,} of {len(ids):,} documents equal the database's (seed {seed})"
    )
    report.check(not bad_stamps, f"sampled timestamps ISO 8601 with a zone ({bad_stamps} bad)")


def validate(
    client: OpenSearch,
    settings: OpenSearchSettings,
    target: str,
    snapshot: Snapshot,
    sample: int = 200,
    seed: int | None = None,
    db_counts: Counts | None = None,
) -> Report:
    """Run every check of `target` (an index or the alias) against the snapshot."""
    seed = random.SystemRandom().randrange(1_000_000) if seed is None else seed
    report = Report(target)
    expected = db_counts or snapshot.counts()
    actual = report.index_counts = index_counts(client, settings, target)

    text = f"documents: {actual.listings:,} in the index, {expected.listings:,} listings rows"
    if actual.listings == expected.listings:
        report.check(True, text)
    else:
        missing, surplus = _merge_ids(report, snapshot.listing_ids(), index_ids(client, settings, target))
        report.check(False, f"{text} ({missing:,} missing, {surplus:,} not in listings)")
    report.check(
        actual.images == expected.images,
        f"images: {actual.images:,} nested in the index, {expected.images:,} listing_images rows",
    )
    _check_required(report, client, settings, target)

    formats = date_formats(client, settings, target)
    loose = sorted(name for name, fmt in formats.items() if fmt != ZONED_DATE_FORMAT)
    report.check(
        not loose,
        "timestamps: mapping accepts only ISO 8601 with a zone"
        + (f" (not so for {', '.join(loose)})" if loose else ""),
    )
    if sample:
        _check_sample(report, client, settings, target, snapshot, sample, seed)
    return report
