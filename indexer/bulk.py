"""Bulk loading: NDJSON bodies built from document text, sent by a few threads, retried.

The reader (the caller's thread) groups `(id, document text)` rows into batches bounded
in documents and bytes and hands them to `senders` threads through a queue of size
`senders`: at most 2 * senders + 1 batches exist at any time, so memory stays flat
however many rows there are.

Each batch is one `POST /<index>/_bulk`. A whole request failing with 429/5xx or a
connection error is retried with exponential backoff (bounded by `max_retries`);
so are the items of a response that failed with 429/5xx, and only those. Items rejected
with another status (a mapping error, a bad date) are permanent: they are counted and
the first `REJECTION_SAMPLE` are kept with their ids and reasons.
"""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError, TransportError

from .config import OpenSearchSettings
from .errors import OpenSearchError
from .opensearch import describe_error
from .progress import Progress

Row = tuple[int, bytes]  # (listing id, document as UTF-8 JSON text, never decoded)
REJECTION_SAMPLE = 20
# Stop early when this many documents were rejected: the mapping or the data is wrong,
# and loading the rest would only take time.
MAX_REJECTIONS = 1000
# Keep the response small: only what we need to find failed items.
FILTER_PATH = "took,errors,items.*._id,items.*.status,items.*.error.type,items.*.error.reason"
NDJSON = {"content-type": "application/x-ndjson"}


def ndjson(rows: list[Row]) -> bytes:
    """The _bulk body for rows: an action line with _id, then the document bytes as they are."""
    return b"".join([b'{"index":{"_id":"%d"}}\n%b\n' % (listing_id, doc) for listing_id, doc in rows])


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
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    retried_requests: int = 0
    retried_items: int = 0
    stopped_early: bool = False


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
        max_retries: int = 6,
        progress: Progress | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.client = client
        self.settings = settings
        self.index = index
        self.senders = senders
        self.max_retries = max_retries
        self.progress = progress
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._failure: BaseException | None = None

    def _sleep(self, attempt: int) -> None:
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        self._stop.wait(delay * random.uniform(0.5, 1.0))

    def _post(self, body: bytes) -> dict:
        return self.client.transport.perform_request(
            "POST",
            f"/{self.index}/_bulk",
            params={"filter_path": FILTER_PATH},
            body=body,
            headers=NDJSON,
            timeout=self.settings.timeout,
        )

    def _record(self, indexed: int, rejections: list[Rejection]) -> None:
        with self._lock:
            self.result.indexed += indexed
            self.result.rejected += len(rejections)
            room = REJECTION_SAMPLE - len(self.result.rejections)
            self.result.rejections.extend(rejections[: max(room, 0)])
            if self.result.rejected >= MAX_REJECTIONS:
                self.result.stopped_early = True
                self._stop.set()
        if self.progress is not None:
            self.progress.add(indexed + len(rejections))

    def send(self, rows: list[Row]) -> None:
        """Index one batch, retrying what can be retried; raises OpenSearchError if it gives up."""
        pending = rows
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._sleep(attempt - 1)
                if self._stop.is_set():
                    return  # the run is being stopped: nothing will use this batch
            try:
                response = self._post(ndjson(pending))
            except TransportError as exc:
                transient = isinstance(exc, ConnectionError) or _retryable(exc.status_code)
                if transient and attempt < self.max_retries:
                    with self._lock:
                        self.result.retried_requests += 1
                    continue
                raise OpenSearchError(
                    describe_error(exc, self.settings, f"bulk-index into {self.index}")
                    + (f" (after {attempt} retries)" if attempt else "")
                ) from None
            if not response.get("errors"):
                self._record(len(pending), [])
                return
            retry: list[Row] = []
            rejections: list[Rejection] = []
            items = response.get("items", [])
            for row, item in zip(pending, items, strict=True):
                result = next(iter(item.values()))
                status = result.get("status", 0)
                if status < 300:
                    continue
                if _retryable(status):
                    retry.append(row)
                else:
                    error = result.get("error") or {}
                    reason = f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
                    rejections.append(Rejection(str(row[0]), status, " ".join(reason.split())))
            self._record(len(pending) - len(retry) - len(rejections), rejections)
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
        except BaseException:
            self._stop.set()  # e.g. Ctrl-C or a PostgreSQL error: senders drain and stop
            raise
        finally:
            self._stop_senders(work, threads)
        if self._failure is not None:
            raise self._failure
        return self.result

    def _stop_senders(self, work: queue.Queue, threads: list[threading.Thread]) -> None:
        for _ in threads:
            while True:
                try:
                    work.put(None, timeout=0.5)
                    break
                except queue.Full:
                    pass
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)
