"""Bulk loading: NDJSON bodies built from document text, sent by a few threads, retried.

The reader (the caller's thread) groups `(id, document text)` rows into batches bounded
in documents and bytes and hands them to `senders` threads through a queue of size
`senders`: at most 2 * senders + 1 batches exist at any time, so memory stays flat
however many rows there are.

Each batch is one `POST /<index>/_bulk` (with `wait_for_active_shards`). A whole request
failing with 429/5xx, a timeout or a lost connection is retried with exponential backoff
(bounded by `max_retries`, at least as long as a `Retry-After` header asks); so are the
items of a response that failed with 429/5xx, and only those. A versioned write refused
with 409 (the index already holds a newer version of that document, written by another
writer) is counted as `skipped`: the newer state stays, and that is not an error. Items
rejected with another status (a mapping error, a bad date) are permanent: they are counted
and the first `REJECTION_SAMPLE` are kept with their ids and reasons.

Fatal at once, one line (OpenSearchError, exit 2): an index block (the flood-stage
`read_only_allow_delete` block answers 429 but never lifts by waiting), a TLS error, an
answer that is not JSON, or one whose `items` do not match the documents sent.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from opensearchpy import OpenSearch
from opensearchpy.exceptions import SerializationError, TransportError

from listings_common.progress import Progress

from .config import OpenSearchSettings
from .errors import OpenSearchError
from .opensearch import describe_error
from .retry import RetryPolicy, block_message, is_transient

Row = tuple[int, bytes]  # (listing id, document as UTF-8 JSON text, never decoded)
# Every document is stored with the md5 of the exact bytes PostgreSQL sent, as its first
# field (keyword, doc values, not indexed): `validate` compares it with md5(document::text).
HASH_FIELD = "document_md5"
HASH_KEY = HASH_FIELD.encode()
REJECTION_SAMPLE = 20
# Stop early when this many documents were rejected: the mapping or the data is wrong,
# and loading the rest would only take time.
MAX_REJECTIONS = 1000
# Keep the response small: only what we need to find failed items.
FILTER_PATH = "took,errors,items.*._id,items.*.status,items.*.error.type,items.*.error.reason"
# (with `require_alias`, bulk requests go to the index's load alias: see opensearch.load_alias)
NDJSON = {"content-type": "application/x-ndjson"}
STOP_GRACE = 2.0  # seconds a stopped load waits for requests in flight


def with_hash(doc: bytes) -> bytes:
    """The document with `"document_md5":"<md5 of doc>"` as its first field; the rest byte for byte."""
    digest = hashlib.md5(doc).hexdigest().encode()
    body = doc.lstrip()
    if not body.startswith(b"{"):
        return doc  # not an object: OpenSearch rejects it, and the rejection is reported
    rest = body[1:].lstrip()
    if rest.startswith(b"}"):
        return b'{"%b":"%b"}' % (HASH_KEY, digest)
    return b'{"%b":"%b",%b' % (HASH_KEY, digest, rest)


def ndjson(rows: list[Row]) -> bytes:
    """The _bulk body for rows: an action line with _id, then the document bytes (plus its hash).

    Rows of three, (id, document, version), are written with that external version
    (`external_gte`, see sync.py): a stale write can never overwrite newer data."""
    if rows and len(rows[0]) > 2:
        return b"".join(
            [
                b'{"index":{"_id":"%d","version":%d,"version_type":"external_gte"}}\n%b\n' % (i, v, with_hash(doc))
                for i, doc, v in rows
            ]
        )
    return b"".join([b'{"index":{"_id":"%d"}}\n%b\n' % (listing_id, with_hash(doc)) for listing_id, doc in rows])


def batched(chunks: Iterable[list[Row]], max_docs: int, max_bytes: int) -> Iterator[list[Row]]:
    """Regroup fetched row chunks into batches of at most max_docs rows / ~max_bytes.

    Sizes are counted in bytes of document text, plus the action line.
    """
    batch: list[Row] = []
    size = 0
    for chunk in chunks:
        for row in chunk:
            batch.append(row)
            size += len(row[1]) + 32
            if len(batch) >= max_docs or size >= max_bytes:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


@dataclass(frozen=True)
class Rejection:
    listing_id: str
    status: int
    reason: str


@dataclass
class LoadResult:
    indexed: int = 0
    skipped: int = 0  # versioned writes refused with 409: the index already had a newer version
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    retried_requests: int = 0
    retried_items: int = 0
    stopped_early: bool = False


VALUE_PREVIEW = "Preview of field's value"


def without_value(reason: str) -> str:
    """OpenSearch's reason, without the preview of the rejected field's value that mapper errors
    append: a rejection reaches the logs as the document's id, the field's name and the cause."""
    cut = reason.find(VALUE_PREVIEW)
    return reason if cut < 0 else reason[:cut].rstrip(" .:") + " (value not shown)"


def _retryable(status: object) -> bool:
    return status == 429 or (isinstance(status, int) and status >= 500)


class BulkLoader:
    """Sends batches to one index with a few concurrent senders."""

    def __init__(
        self,
        client: OpenSearch,
        settings: OpenSearchSettings,
        index: str,
        senders: int = 2,
        max_retries: int = 10,
        progress: Progress | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        wait_for_active_shards: str | None = None,
        write_alias: str | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.index = index
        self.write_alias = write_alias
        self.senders = senders
        self.max_retries = max_retries
        self.progress = progress
        self.policy = RetryPolicy(max_retries, backoff_base, backoff_max)
        self.wait_for_active_shards = wait_for_active_shards
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = self.policy.stop
        self._failure: BaseException | None = None
        self._threads: list[threading.Thread] = []

    def _sleep(self, attempt: int, retry_after: float | None = None) -> None:
        self.policy.sleep(attempt, retry_after)

    def _post(self, body: bytes) -> dict:
        params = {"filter_path": FILTER_PATH}
        if self.wait_for_active_shards:
            params["wait_for_active_shards"] = self.wait_for_active_shards
        if self.write_alias:
            params["require_alias"] = "true"
        return self.client.transport.perform_request(
            "POST",
            f"/{self.write_alias or self.index}/_bulk",
            params=params,
            body=body,
            headers=NDJSON,
            timeout=self.settings.timeout,
        )

    def _record(self, indexed: int, rejections: list[Rejection], skipped: int = 0) -> None:
        with self._lock:
            self.result.indexed += indexed
            self.result.skipped += skipped
            self.result.rejected += len(rejections)
            room = REJECTION_SAMPLE - len(self.result.rejections)
            self.result.rejections.extend(rejections[: max(room, 0)])
            if self.result.rejected >= MAX_REJECTIONS:
                self.result.stopped_early = True
                self._stop.set()
        if self.progress is not None:
            self.progress.add(indexed + len(rejections) + skipped)

    def send(self, rows: list[Row]) -> None:
        """Index one batch, retrying what can be retried; raises OpenSearchError if it gives up."""
        pending = rows
        retry_after: float | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._sleep(attempt - 1, retry_after)
                if self._stop.is_set():
                    return  # the run is being stopped: nothing will use this batch
            retry_after = None
            try:
                response = self._post(ndjson(pending))
            except SerializationError:
                raise OpenSearchError(
                    f"{self.settings.describe()} answered a bulk request into {self.index} with a body that is "
                    "not JSON; is it OpenSearch (or a proxy's error page)?"
                ) from None
            except TransportError as exc:
                reason = describe_error(exc, self.settings, f"bulk-index into {self.index}")
                blocked = block_message(self.index, "", reason)
                if blocked:
                    raise OpenSearchError(f"could not bulk-index: {blocked}", exc.status_code) from None
                if is_transient(exc) and attempt < self.max_retries:
                    retry_after = getattr(exc, "retry_after", None)
                    with self._lock:
                        self.result.retried_requests += 1
                    continue
                raise OpenSearchError(reason + (f" (after {attempt} retries)" if attempt else "")) from None
            if not isinstance(response, dict):
                raise OpenSearchError(
                    f"{self.settings.describe()} answered a bulk request into {self.index} with "
                    f"{type(response).__name__}, not a JSON object; is it OpenSearch?"
                )
            items = response.get("items")
            if not isinstance(items, list) or len(items) != len(pending):
                listed = len(items) if isinstance(items, list) else "no"
                raise OpenSearchError(
                    f"OpenSearch answered a bulk request of {len(pending)} documents into {self.index} with "
                    f"{listed} items; the answer cannot be trusted (a proxy in the way?), stopping"
                )
            if not response.get("errors"):
                self._record(len(pending), [])
                return
            retry: list[Row] = []
            rejections: list[Rejection] = []
            skipped = 0
            for row, item in zip(pending, items, strict=True):
                result = next(iter(item.values())) if isinstance(item, dict) and item else {}
                status = result.get("status", 0) if isinstance(result, dict) else 0
                if isinstance(status, int) and 200 <= status < 300:
                    continue
                error = (result.get("error") if isinstance(result, dict) else None) or {}
                if status == 409 and len(row) > 2 and error.get("type") == "version_conflict_engine_exception":
                    skipped += 1  # a newer version is already there (external_gte): it stays
                    continue
                blocked = block_message(self.index, str(error.get("type", "")), str(error.get("reason", "")))
                if blocked:
                    raise OpenSearchError(f"could not bulk-index: {blocked}", status)
                if error.get("type") == "index_not_found_exception":
                    raise OpenSearchError(f"index {self.index} was deleted while loading it (by another run?)", 404)
                if _retryable(status):
                    retry.append(row)
                else:
                    reason = f"{error.get('type', 'error')}: {without_value(str(error.get('reason', '')))}".strip()
                    rejections.append(Rejection(str(row[0]), status, " ".join(reason.split())))
            self._record(len(pending) - len(retry) - len(rejections) - skipped, rejections, skipped)
            if not retry:
                return
            with self._lock:
                self.result.retried_items += len(retry)
            pending = retry
        raise OpenSearchError(
            f"OpenSearch kept refusing {len(pending)} documents (HTTP 429/5xx) into {self.index} "
            f"after {self.max_retries} retries; first id {pending[0][0]}"
        )

    def _worker(self, work: queue.Queue) -> None:
        while True:
            rows = work.get()
            if rows is None:
                return
            if self._stop.is_set():
                continue  # drain without sending
            try:
                self.send(rows)
            except BaseException as exc:
                with self._lock:
                    if self._failure is None:
                        self._failure = exc
                self._stop.set()

    def load(self, batches: Iterable[list[Row]]) -> LoadResult:
        """Send every batch; returns counts and rejections, raises on a fatal error."""
        work: queue.Queue = queue.Queue(maxsize=self.senders)
        threads = [
            threading.Thread(target=self._worker, args=(work,), name=f"bulk-sender-{n}", daemon=True)
            for n in range(self.senders)
        ]
        for thread in threads:
            thread.start()
        try:
            for rows in batches:
                while not self._stop.is_set():
                    try:
                        work.put(rows, timeout=0.5)
                        break
                    except queue.Full:
                        pass
                if self._stop.is_set():
                    break
            self._stop_senders(work, threads)
        except BaseException:
            # e.g. Ctrl-C, SIGTERM or a PostgreSQL error: senders drain and stop. A request in
            # flight is not waited for beyond STOP_GRACE seconds (the caller deletes the index).
            self._stop.set()
            self._stop_senders(work, threads, grace=STOP_GRACE)
            raise
        if self._failure is not None:
            raise self._failure
        return self.result

    def abort(self, error: BaseException) -> None:
        """Stop the load from another thread; `load` raises `error`."""
        with self._lock:
            if self._failure is None:
                self._failure = error
        self._stop.set()

    def busy(self) -> bool:
        """True while a sender thread is still running (e.g. a request in flight after a stop)."""
        return any(thread.is_alive() for thread in self._threads)

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` for every sender to end; True if they did."""
        deadline = time.monotonic() + seconds
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not self.busy()

    def _stop_senders(self, work: queue.Queue, threads: list[threading.Thread], grace: float | None = None) -> None:
        self._threads = threads
        deadline = None if grace is None else time.monotonic() + grace
        for _ in threads:
            while deadline is None or time.monotonic() < deadline:
                try:
                    work.put(None, timeout=0.2)
                    break
                except queue.Full:
                    pass
        for thread in threads:
            while thread.is_alive() and (deadline is None or time.monotonic() < deadline):
                thread.join(timeout=0.2)
