"""Bounded retries of OpenSearch calls that are safe to repeat, with backoff.

`call(policy, settings, action, fn, ...)` runs `fn()` and retries it, with exponential
backoff and jitter (honouring a `Retry-After` header), when the failure is transient:

    HTTP 429, 500, 502, 503, 504 (but not an index block, see below), a lost or reset
    connection, a timeout, an answer whose body is not JSON or not a JSON object (a
    proxy's error page, say; the first contact, `check_server`, fails at once instead).

Everything else fails at once with one line (`OpenSearchError`, exit 2):

    TLS errors, 4xx answers, and an index block such as the flood-stage
    `read_only_allow_delete` block (OpenSearch answers those with 429, but waiting does
    not lift them: the message names the block and what to do).

`Retry-After`: opensearch-py drops response headers from its exceptions, so the client
uses `RecordingConnection`, which keeps the last error's `Retry-After` on the exception.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opensearchpy import Urllib3HttpConnection
from opensearchpy.exceptions import (
    ConnectionError,
    ConnectionTimeout,
    SerializationError,
    SSLError,
    TransportError,
)

from .config import OpenSearchSettings
from .errors import OpenSearchError

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 120.0  # seconds: a longer Retry-After is capped

_local = threading.local()


class RecordingConnection(Urllib3HttpConnection):
    """Urllib3HttpConnection that puts the answer's Retry-After (seconds) on its errors."""

    def perform_request(self, *args: Any, **kwargs: Any) -> Any:
        if self.pool is None:
            self._create_urllib3_pool()
        pool = self.pool
        if pool is not None and not getattr(pool, "_records_headers", False):
            urlopen = pool.urlopen

            def recording_urlopen(*a: Any, **kw: Any) -> Any:
                response = urlopen(*a, **kw)
                _local.retry_after = response.headers.get("retry-after")
                return response

            pool.urlopen = recording_urlopen  # type: ignore[method-assign]
            pool._records_headers = True  # type: ignore[attr-defined]
        _local.retry_after = None
        try:
            return super().perform_request(*args, **kwargs)
        except TransportError as exc:
            exc.retry_after = _parse_retry_after(getattr(_local, "retry_after", None))  # type: ignore[attr-defined]
            raise


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, min(float(value), MAX_RETRY_AFTER))
    except ValueError:
        return None  # an HTTP date: rare from OpenSearch; use our own backoff


@dataclass
class RetryPolicy:
    """How often and how long to retry; `stop` (when set) ends the waiting early."""

    max_retries: int = 10
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    stop: threading.Event = field(default_factory=threading.Event)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        delay = min(self.backoff_max, self.backoff_base * 2**attempt) * random.uniform(0.75, 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def sleep(self, attempt: int, retry_after: float | None = None) -> bool:
        """Wait before a retry; False if the run is being stopped."""
        return not self.stop.wait(self.delay(attempt, retry_after))


def complete(response: Any) -> Any:
    """`response` if every shard answered; else a retryable error (a node may have just left).

    A search or count that some shard copies failed still answers 200 with partial results:
    taken as they are, they would count documents as missing."""
    shards = response.get("_shards") if isinstance(response, dict) else None
    if isinstance(shards, dict) and shards.get("failed"):
        reason = f"{shards.get('failed')} of {shards.get('total')} shards failed to answer"
        raise TransportError(503, "partial_results", {"error": {"type": "partial_results", "reason": reason}})
    docs = response.get("docs") if isinstance(response, dict) else None
    if isinstance(docs, list):
        failed = [d for d in docs if isinstance(d, dict) and d.get("error")]
        if failed:
            error = failed[0]["error"]
            reason = error.get("reason", "") if isinstance(error, dict) else str(error)
            raise TransportError(503, "partial_results", {"error": {"type": "mget_failure", "reason": reason}})
    return response


def _error_reason(exc: TransportError) -> str:
    info = exc.info
    if isinstance(info, dict):
        error = info.get("error")
        if isinstance(error, dict):
            causes = error.get("root_cause") or []
            first = causes[0] if causes and isinstance(causes[0], dict) else error
            return f"{first.get('type', '')}: {first.get('reason', '')}"
        return str(error or "")
    return str(exc.error or "")


def block_message(index: str | None, error_type: str, reason: str) -> str | None:
    """The one line for an index block (flood stage, write block), or None if it is not one."""
    text = f"{error_type} {reason}".lower()
    if "cluster_block_exception" not in text and "blocked by" not in text:
        return None
    where = f"index {index}" if index else "the index"
    if "read-only-allow-delete" in text or "read_only_allow_delete" in text or "flood" in text:
        return (
            f"{where} is blocked by index.blocks.read_only_allow_delete (the flood-stage disk watermark was "
            "exceeded); free disk space on the data nodes, then re-run (OpenSearch lifts the block once disk "
            "use falls below the high watermark)"
        )
    if "index write" in text or "read-only" in text or "read_only" in text:
        return f"{where} is write-blocked (index.blocks.write or read_only): {' '.join(reason.split())}"
    if "no master" in text or "no cluster-manager" in text or "state not recovered" in text:
        return None  # an election in progress: transient
    return f"{where} is blocked: {' '.join(reason.split())}"


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, SSLError):
        return False
    if isinstance(exc, ConnectionError | ConnectionTimeout):
        return True
    if isinstance(exc, TransportError):
        if not isinstance(exc.status_code, int) or exc.status_code not in RETRYABLE_STATUS:
            return False
        return block_message(None, "", _error_reason(exc)) is None
    return False


def call(
    policy: RetryPolicy,
    settings: OpenSearchSettings,
    action: str,
    fn: Callable[[], T],
    *,
    index: str | None = None,
    retry: bool = True,
    expect_dict: bool = True,
    retry_unreadable: bool = True,
) -> T:
    """`fn()`, retried while it fails transiently; one-line OpenSearchError when it gives up.

    An answer that is not JSON (or not a JSON object) is retried too, like a 502: a proxy's
    error page is usually a passing state, and every call made here is safe to repeat (the
    writes that are not, `create` and `move_alias`, pass retry=False and check for themselves).
    `retry_unreadable=False` fails at once instead (the first contact: most often a wrong URL)."""
    from .opensearch import describe_error  # circular: opensearch uses call()

    attempt = 0
    while True:
        try:
            result = fn()
        except SerializationError:
            unreadable = (
                f"{settings.describe()} answered with a body that is not JSON when asked to {action}; "
                "is it OpenSearch (or a proxy's error page)?"
            )
        except TransportError as exc:
            blocked = block_message(index, "", _error_reason(exc)) if isinstance(exc.status_code, int) else None
            if blocked and not isinstance(exc, ConnectionError):
                raise OpenSearchError(f"could not {action}: {blocked}", exc.status_code) from None
            retry_after = getattr(exc, "retry_after", None)
            if retry and is_transient(exc) and attempt < policy.max_retries and policy.sleep(attempt, retry_after):
                attempt += 1
                continue
            line = describe_error(exc, settings, action)
            status = exc.status_code if isinstance(exc.status_code, int) else None
            raise OpenSearchError(line + (f" (after {attempt} retries)" if attempt else ""), status) from None
        else:
            if not expect_dict or isinstance(result, dict):
                return result
            unreadable = (
                f"{settings.describe()} gave an unexpected answer ({type(result).__name__}, not a JSON object) "
                f"when asked to {action}; is it OpenSearch?"
            )
        if retry and retry_unreadable and attempt < policy.max_retries and policy.sleep(attempt):
            attempt += 1
            continue
        raise OpenSearchError(unreadable + (f" (after {attempt} retries)" if attempt else ""))
