"""One writer per alias: a lock held in OpenSearch itself, with a lease the holder renews.

The lock of alias A is the document `_id = A` in the small index `LOCK_INDEX` (one
shard, a replica on every node: `auto_expand_replicas 0-all`, hidden). It is taken with
`op_type=create` (only one creator can win) and holds who has it:

    command, host, pid, started_at      shown to whoever is refused
    token                               random, proves the holder on every renewal
    lease_seconds, expires_at_ms        the lease; renewed every lease/4 s by a thread
    index                               the index the holder is building (reindex)

Renewals and the release are compare-and-swap writes (`if_seq_no`/`if_primary_term`),
so a holder whose lock was taken over can never renew or delete the new holder's lock:
it notices (`Lock.check()` raises `LockLost`) before it touches the alias.

A lock is *stale*, and the next run takes it over (again with compare-and-swap), when
its lease expired (the holder stopped renewing: killed, frozen, cut off), or at once
when the holder ran on this same host and its pid is gone (a SIGKILLed run).
`listings-indexer unlock` removes a stale lock; `unlock --force` removes any lock.

Usage, for any command that writes the alias (reindex, rollback, later sync):

    with alias_lock(client, settings, policy, alias, "reindex") as lock:
        ...
        lock.note(index=new_index)   # recorded for `status` and for whoever is refused
        lock.check()                 # right before moving the alias
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from .config import OpenSearchSettings
from .errors import IndexerError, OpenSearchError
from .retry import RetryPolicy, call

LOCK_INDEX = "listings-indexer-locks"
LOCK_INDEX_BODY = {
    "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-all", "hidden": True}},
    "mappings": {"dynamic": False, "properties": {"alias": {"type": "keyword"}}},
}


class LockHeld(IndexerError):
    """Another run holds the alias: exit 2, one line naming it."""


class LockLost(IndexerError):
    """Our lock was taken over (lease expired while we were stalled): stop before touching the alias."""


def _status(exc: OpenSearchError) -> int | None:
    return getattr(exc, "status", None)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def this_host() -> str:
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Holder:
    """A lock document as read back."""

    alias: str
    command: str
    host: str
    pid: int
    started_at: str
    expires_at_ms: int
    renewed_at_ms: int
    token: str
    index: str | None
    seq_no: int
    primary_term: int

    @classmethod
    def from_hit(cls, hit: dict[str, Any]) -> Holder:
        src = hit.get("_source") or {}
        return cls(
            alias=str(src.get("alias", hit.get("_id"))),
            command=str(src.get("command", "?")),
            host=str(src.get("host", "?")),
            pid=int(src.get("pid") or 0),
            started_at=str(src.get("started_at", "?")),
            expires_at_ms=int(src.get("expires_at_ms") or 0),
            renewed_at_ms=int(src.get("renewed_at_ms") or 0),
            token=str(src.get("token", "")),
            index=src.get("index"),
            seq_no=int(hit["_seq_no"]),
            primary_term=int(hit["_primary_term"]),
        )

    def stale_reason(self, now_ms: int | None = None) -> str | None:
        """Why this lock may be taken over, or None while its holder is alive."""
        now_ms = _now_ms() if now_ms is None else now_ms
        if self.expires_at_ms < now_ms:
            return f"its lease expired {(now_ms - self.expires_at_ms) / 1000:.0f}s ago"
        if self.host == this_host() and self.pid and self.pid != os.getpid() and not pid_alive(self.pid):
            return f"process {self.pid} on this host ({self.host}) is gone"
        return None

    def describe(self, now_ms: int | None = None) -> str:
        now_ms = _now_ms() if now_ms is None else now_ms
        building = f", building {self.index}" if self.index else ""
        return (
            f"`{self.command}` on {self.host} pid {self.pid} since {self.started_at}{building} "
            f"(lease renewed {max(0, now_ms - self.renewed_at_ms) / 1000:.0f}s ago, "
            f"expires in {max(0, self.expires_at_ms - now_ms) / 1000:.0f}s)"
        )


class LockStore:
    """Reads and writes the lock documents (every call retried like the rest)."""

    def __init__(self, client: OpenSearch, settings: OpenSearchSettings, policy: RetryPolicy) -> None:
        self.client = client
        self.settings = settings
        self.policy = policy

    def _call(self, action: str, fn: Any) -> Any:
        return call(self.policy, self.settings, action, fn, index=LOCK_INDEX)

    def ensure_index(self) -> None:
        exists = self._call(
            f"look up the lock index {LOCK_INDEX}",
            lambda: {"exists": self.client.indices.exists(index=LOCK_INDEX, expand_wildcards="all")},
        )
        if exists["exists"]:
            return
        try:
            self._call(
                f"create the lock index {LOCK_INDEX}",
                lambda: self.client.indices.create(index=LOCK_INDEX, body=LOCK_INDEX_BODY),
            )
        except OpenSearchError as exc:
            if "resource_already_exists_exception" not in str(exc):
                raise

    def read(self, alias: str) -> Holder | None:
        hit = self._call(
            f"read the lock of alias {alias}",
            lambda: self.client.get(index=LOCK_INDEX, id=alias, ignore=[404]),
        )
        if not hit.get("found"):
            return None
        return Holder.from_hit(hit)

    def write(self, alias: str, body: dict[str, Any], *, create: bool = False, cas: Holder | None = None) -> Holder:
        """Create (op_type=create) or overwrite (compare-and-swap against `cas`); ConflictError if beaten."""
        params: dict[str, Any] = {"refresh": "false"}
        if create:
            params["op_type"] = "create"
        if cas is not None:
            params.update(if_seq_no=cas.seq_no, if_primary_term=cas.primary_term)
        try:
            result = call(
                self.policy,
                self.settings,
                f"write the lock of alias {alias}",
                lambda: self.client.index(index=LOCK_INDEX, id=alias, body=body, params=params),
                index=LOCK_INDEX,
            )
        except OpenSearchError:
            # After a timeout the write may have applied: read back, the token decides.
            current = self.read(alias)
            if current is not None and (current.token, current.renewed_at_ms) == (body["token"], body["renewed_at_ms"]):
                return current
            raise
        return Holder.from_hit({**result, "_source": body, "_id": alias})

    def delete(self, alias: str, cas: Holder | None = None) -> bool:
        params: dict[str, Any] = {}
        if cas is not None:
            params.update(if_seq_no=cas.seq_no, if_primary_term=cas.primary_term)
        try:
            self._call(
                f"remove the lock of alias {alias}",
                lambda: self.client.delete(index=LOCK_INDEX, id=alias, params=params),
            )
        except OpenSearchError as exc:
            if _status(exc) == 404:
                return False
            raise
        return True


class Lock:
    """A held lock: renewed by a background thread until released."""

    def __init__(self, store: LockStore, alias: str, command: str, lease: float, err: TextIO) -> None:
        self.store = store
        # Renewals fail fast (and are tried again at the next beat) rather than block for minutes.
        quick = RetryPolicy(max_retries=2, backoff_base=0.25, backoff_max=max(1.0, lease / 8))
        self.beat_store = LockStore(store.client, store.settings, quick)
        self.alias = alias
        self.command = command
        self.lease = lease
        self.err = err
        self.token = uuid.uuid4().hex
        self.started_ms = _now_ms()
        self.index: str | None = None
        self.holder: Holder | None = None
        self.lost: str | None = None
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_lost: list[Callable[[IndexerError], None]] = []

    def on_lost(self, callback: Callable[[IndexerError], None]) -> None:
        """Call `callback(LockLost(...))` from the heartbeat thread if the lock is lost (e.g. stop a load)."""
        self._on_lost.append(callback)

    def _body(self) -> dict[str, Any]:
        now = _now_ms()
        return {
            "alias": self.alias,
            "command": self.command,
            "host": this_host(),
            "pid": os.getpid(),
            "started_at": _iso(self.started_ms),
            "renewed_at_ms": now,
            "expires_at_ms": now + int(self.lease * 1000),
            "lease_seconds": self.lease,
            "token": self.token,
            "index": self.index,
        }

    def acquire(self) -> None:
        self.store.ensure_index()
        body = self._body()
        try:
            self.holder = self.store.write(self.alias, body, create=True)
            return
        except OpenSearchError as exc:
            if _status(exc) != 409:
                raise
        current = self.store.read(self.alias)
        if current is None:  # released between our create and our read: try once more
            self.holder = self._create_or_refuse(self._body())
            return
        if current.token == self.token:
            self.holder = current
            return
        stale = current.stale_reason()
        if stale is None:
            raise LockHeld(
                f"alias {self.alias} is locked by {current.describe()}; wait for it to finish, or if that run "
                f"is gone: listings-indexer unlock --alias {self.alias} --force"
            )
        try:
            self.holder = self.store.write(self.alias, self._body(), cas=current)
        except OpenSearchError as exc:
            if _status(exc) == 409:
                raise LockHeld(
                    f"alias {self.alias}: another run took over the stale lock of {current.describe()} just now"
                ) from None
            raise
        print(
            f"{self.command}: took over the lock of alias {self.alias} from {current.describe()}: {stale}",
            file=self.err,
            flush=True,
        )

    def _create_or_refuse(self, body: dict[str, Any]) -> Holder:
        try:
            return self.store.write(self.alias, body, create=True)
        except OpenSearchError as exc:
            if _status(exc) == 409:
                current = self.store.read(self.alias)
                who = current.describe() if current else "another run"
                raise LockHeld(f"alias {self.alias} is locked by {who}") from None
            raise

    def renew(self) -> None:
        """One compare-and-swap renewal; sets `lost` if someone else holds the lock now."""
        with self._mutex:
            if self.lost or self.holder is None:
                return
            try:
                self.holder = self.beat_store.write(self.alias, self._body(), cas=self.holder)
            except OpenSearchError as exc:
                if _status(exc) in (404, 409):
                    current = self.beat_store.read(self.alias)
                    if current is not None and current.token == self.token:
                        self.holder = current
                        return
                    who = current.describe() if current else "nobody (it was removed with `unlock`)"
                    self.lost = f"the lock of alias {self.alias} was taken over; it is now held by {who}"
                    return
                if self.holder.expires_at_ms < _now_ms():
                    self.lost = f"could not renew the lock of alias {self.alias} before its lease ran out ({exc})"

    def note(self, index: str | None) -> None:
        """Record the index this run is building (shown to others, kept from prune)."""
        self.index = index
        self.renew()
        self.check()

    def check(self) -> None:
        """Renew now; raise LockLost unless we still hold the lock."""
        self.renew()
        if self.lost:
            raise LockLost(f"{self.lost}; stopping without touching the alias")

    def _heartbeat(self) -> None:
        interval = max(0.5, self.lease / 4)
        while not self._stop.wait(interval):
            try:
                self.renew()
            except IndexerError:
                pass  # transient trouble: `renew` marks the lock lost once the lease is over
            except Exception as exc:  # never let the heartbeat die silently
                self.lost = f"lock heartbeat failed: {exc.__class__.__name__}"
            if self.lost:
                error = LockLost(f"{self.lost}; stopping without touching the alias")
                for callback in self._on_lost:
                    callback(error)
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._heartbeat, name=f"lock-{self.alias}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._mutex:
            if self.lost or self.holder is None:
                return
            try:
                self.store.delete(self.alias, cas=self.holder)
            except (IndexerError, TransportError) as exc:
                print(
                    f"{self.command}: could not release the lock of alias {self.alias} ({exc}); it expires in "
                    f"{self.lease:.0f}s, or: listings-indexer unlock --alias {self.alias}",
                    file=self.err,
                )


@contextmanager
def alias_lock(
    client: OpenSearch,
    settings: OpenSearchSettings,
    policy: RetryPolicy,
    alias: str,
    command: str,
    lease: float = 60.0,
    err: TextIO | None = None,
) -> Iterator[Lock]:
    """Hold the lock of `alias` for the block; LockHeld (exit 2) if another live run has it."""
    lock = Lock(LockStore(client, settings, policy), alias, command, lease, err or sys.stderr)
    lock.acquire()
    lock.start()
    try:
        yield lock
    finally:
        lock.release()


def unlock(
    client: OpenSearch, settings: OpenSearchSettings, policy: RetryPolicy, alias: str, force: bool
) -> tuple[Holder | None, str]:
    """Remove the lock of `alias` if it is stale (or with force); returns (holder, what happened)."""
    store = LockStore(client, settings, policy)
    try:
        holder = store.read(alias)
    except OpenSearchError as exc:
        if _status(exc) == 404:
            return None, f"alias {alias} is not locked"
        raise
    if holder is None:
        return None, f"alias {alias} is not locked"
    stale = holder.stale_reason()
    if stale is None and not force:
        raise LockHeld(
            f"alias {alias} is locked by {holder.describe()}, which looks alive; "
            "if you are sure it is not running, re-run with --force"
        )
    try:
        store.delete(alias, cas=holder)
    except OpenSearchError as exc:
        if _status(exc) == 409:
            raise LockHeld(f"the lock of alias {alias} changed while removing it; run unlock again") from None
        raise
    why = stale or "forced"
    return holder, f"removed the lock of alias {alias} held by {holder.describe()} ({why})"
