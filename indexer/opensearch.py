"""OpenSearch: client creation, error translation, mapping, index and alias operations.

Indices are named `<alias>_<UTC timestamp>` (e.g. `listings_microservice_20261124t021500z`),
so sorting names sorts them by age. Each index carries its lifecycle state in the
mapping's `_meta.indexer.state`:

    loading      created, documents being written (a killed run leaves this behind)
    failed       kept with --keep-failed after rejected documents or a failed validation
    complete     loaded and validated: may hold the alias, may be rolled back to
    rolled_back  the alias was moved away from it by `rollback`: never a rollback target

Only indices whose names match the pattern for the alias are ever touched.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import urllib3
from opensearchpy import OpenSearch
from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    ConnectionError,
    ConnectionTimeout,
    NotFoundError,
    OpenSearchWarning,
    SerializationError,
    SSLError,
    TransportError,
)

from .config import OpenSearchSettings
from .errors import OpenSearchError
from .retry import RecordingConnection, RetryPolicy, call, complete

STAMP_FORMAT = "%Y%m%dt%H%M%Sz"
LOAD_SETTINGS = {"refresh_interval": "-1", "number_of_replicas": 0}
ZONED_DATE_FORMAT = "strict_date_time||strict_date_time_no_millis"


def load_alias(index: str) -> str:
    """The private alias the bulk loader writes through, with `require_alias`: once the index is
    deleted (a failed or interrupted run), a late bulk request fails instead of auto-creating
    an index with that name and a dynamic mapping."""
    return f"{index}.loading"


def load_mapping() -> dict[str, Any]:
    """The explicit index mapping (`mapping.json` next to this module)."""
    return json.loads(resources.files(__package__).joinpath("mapping.json").read_text("utf-8"))


def _quiet_client_logs() -> None:
    # opensearch-py logs every failed request (with a traceback) at WARNING and
    # urllib3 warns about unverified TLS; the CLI reports failures itself, in one line.
    for name in ("opensearch", "urllib3"):
        logger = logging.getLogger(name)
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    warnings.filterwarnings("ignore", category=OpenSearchWarning)


def make_client(settings: OpenSearchSettings, pool_size: int = 4) -> OpenSearch:
    """A client that does not retry on its own (retry.call and the bulk loader do, with backoff)."""
    _quiet_client_logs()
    auth = (settings.user, settings.password or "") if settings.user else None
    return OpenSearch(
        hosts=[settings.url],
        http_auth=auth,
        verify_certs=settings.verify_certs,
        ssl_assert_hostname=None if settings.verify_certs else False,
        ssl_show_warn=False,
        ca_certs=settings.ca_certs,
        timeout=settings.timeout,
        max_retries=0,
        retry_on_timeout=False,
        pool_maxsize=pool_size,
        connection_class=RecordingConnection,
    )


def _innermost(error: BaseException) -> BaseException:
    """urllib3 wraps the socket/TLS error several times; the innermost text is the useful one."""
    for _ in range(10):
        inner = getattr(error, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in reversed(error.args) if isinstance(a, BaseException)), None)
        if inner is None:
            inner = error.__cause__ or error.__context__
        if not isinstance(inner, BaseException):
            return error
        error = inner
    return error


def _reason(exc: TransportError) -> str:
    info = exc.info
    if isinstance(info, dict) and isinstance(info.get("error"), dict):
        error = info["error"]
        return f"{error.get('type', '?')}: {error.get('reason', '')}".strip()
    if isinstance(info, BaseException):
        text = str(_innermost(info)) or info.__class__.__name__
        return re.sub(r"<[^>]*>: ", "", text)  # drop "<urllib3...Connection object at 0x..>: "
    return str(exc.error)


def describe_error(exc: TransportError, settings: OpenSearchSettings, action: str) -> str:
    """One line for an opensearch-py exception; never contains the password."""
    url = settings.describe()
    if isinstance(exc, SSLError):
        line = f"TLS error talking to OpenSearch at {url} ({_reason(exc)}); check --ca-certs/OPENSEARCH_CA_CERTS"
    elif isinstance(exc, ConnectionTimeout):
        line = f"OpenSearch at {url} did not answer in time while trying to {action}"
    elif isinstance(exc, ConnectionError):
        line = (
            f"cannot reach OpenSearch at {url} ({_reason(exc)}) while trying to {action}; "
            "is it running and is OPENSEARCH_URL right?"
        )
    elif isinstance(exc, AuthenticationException):
        line = f"OpenSearch at {url} rejected the credentials (HTTP 401); check OPENSEARCH_USER and OPENSEARCH_PASSWORD"
    elif isinstance(exc, AuthorizationException):
        who = settings.user or "the anonymous user"
        line = f"OpenSearch at {url}: {who} may not {action} (HTTP 403: {_reason(exc)})"
    elif isinstance(exc, NotFoundError):
        line = f"OpenSearch at {url}: {action}: not found (HTTP 404: {_reason(exc)}); is OPENSEARCH_URL right?"
    else:
        line = f"OpenSearch at {url}: could not {action} (HTTP {exc.status_code}: {_reason(exc)})"
    line = " ".join(line.split())
    if settings.password:
        line = line.replace(settings.password, "***")
    return line


@contextmanager
def translate_errors(settings: OpenSearchSettings, action: str) -> Iterator[None]:
    try:
        yield
    except TransportError as exc:
        raise OpenSearchError(describe_error(exc, settings, action)) from None
    except SerializationError:
        raise OpenSearchError(
            f"{settings.describe()} gave an unreadable answer when asked to {action}; is it OpenSearch?"
        ) from None


@dataclass(frozen=True)
class IndexInfo:
    name: str
    created: datetime | None
    state: str
    has_alias: bool
    docs: int | None  # top-level documents; None while loading (not refreshed)
    meta: dict[str, Any] = field(default_factory=dict)
    is_open: bool = True

    @property
    def validated(self) -> bool:
        return self.state == "complete" and bool(self.meta.get("validated_at"))


class Indices:
    """The versioned indices behind one alias, and the operations on them.

    Every call is retried (bounded, with backoff) when that is safe; see retry.py.
    """

    def __init__(
        self, client: OpenSearch, settings: OpenSearchSettings, alias: str, policy: RetryPolicy | None = None
    ) -> None:
        self.client = client
        self.settings = settings
        self.alias = alias
        self.policy = policy or RetryPolicy()
        self._pattern = re.compile(rf"^{re.escape(alias)}_\d{{8}}t\d{{6}}z$")

    def _call(self, action: str, fn: Any, index: str | None = None, **kwargs: Any) -> Any:
        return call(self.policy, self.settings, action, fn, index=index, **kwargs)

    def check_server(self) -> str:
        """Fail with one line unless the URL answers like OpenSearch; returns its version."""
        # The first contact fails fast: a refused connection here is most often a wrong URL.
        first = RetryPolicy(min(2, self.policy.max_retries), self.policy.backoff_base, 2.0, self.policy.stop)
        info = call(first, self.settings, "read the cluster info", self.client.info, retry_unreadable=False)
        version = info.get("version", {}) if isinstance(info, dict) else {}
        if not isinstance(version, dict) or not version.get("number"):
            raise OpenSearchError(f"{self.settings.describe()} does not look like OpenSearch")
        return f"{version.get('distribution', 'opensearch')} {version['number']}"

    def data_nodes(self) -> int:
        health = self._call("read the cluster health", lambda: self.client.cluster.health())
        return int(health.get("number_of_data_nodes") or 0)

    def is_managed(self, name: str) -> bool:
        return bool(self._pattern.match(name))

    def alias_holders(self) -> list[str]:
        """Indices the alias points to now (normally one; none before the first run)."""
        found = self._call(
            f"read alias {self.alias}", lambda: self.client.indices.get_alias(name=self.alias, ignore=[404])
        )
        # A missing alias answers 404 with {"error": ..., "status": 404}: no index entries.
        return sorted(
            name for name, body in found.items() if isinstance(body, dict) and self.alias in body.get("aliases", {})
        )

    def concrete_index_named_like_alias(self) -> bool:
        """True if a real index (e.g. from the old reindex script) has the alias's name."""
        found = self._call(
            f"look up index {self.alias}", lambda: self.client.indices.get(index=self.alias, ignore=[404])
        )
        return self.alias in found and "error" not in found

    def managed(self, with_counts: bool = False) -> list[IndexInfo]:
        """All managed indices, oldest first."""
        found = self._call(
            f"list the {self.alias}_* indices",
            lambda: self.client.indices.get(index=f"{self.alias}_*", expand_wildcards="open,closed", ignore=[404]),
        )
        names = sorted(n for n in found if self.is_managed(n))
        closed: set[str] = set()
        if names:
            rows = self._call(
                f"read the status of the {self.alias}_* indices",
                lambda: self.client.cat.indices(
                    index=f"{self.alias}_*", format="json", h="index,status", expand_wildcards="open,closed"
                ),
                expect_dict=False,
            )
            closed = {r.get("index") for r in rows if isinstance(r, dict) and r.get("status") == "close"}
        infos = []
        for name in names:
            body = found[name]
            meta = body.get("mappings", {}).get("_meta", {}).get("indexer", {})
            created_ms = body.get("settings", {}).get("index", {}).get("creation_date")
            created = datetime.fromtimestamp(int(created_ms) / 1000, UTC) if created_ms else None
            docs = None
            state = meta.get("state", "unknown")
            is_open = name not in closed
            if with_counts and state != "loading" and is_open:
                docs = self.count(name)
            infos.append(IndexInfo(name, created, state, self.alias in body.get("aliases", {}), docs, meta, is_open))
        return infos

    def info(self, name: str) -> IndexInfo | None:
        return next((i for i in self.managed() if i.name == name), None)

    def new_index_name(self, now: datetime | None = None) -> str:
        """`<alias>_<UTC now>`, bumped past the newest existing index so names stay ordered."""
        stamp = (now or datetime.now(UTC)).replace(microsecond=0)
        existing = [i.name for i in self.managed()]
        if existing:
            newest = datetime.strptime(existing[-1][len(self.alias) + 1 :], STAMP_FORMAT).replace(tzinfo=UTC)
            stamp = max(stamp, newest + timedelta(seconds=1))
        return f"{self.alias}_{stamp.strftime(STAMP_FORMAT)}"

    def _meta(self, state: str, **extra: Any) -> dict[str, Any]:
        return {
            "indexer": {
                "alias": self.alias,
                "state": state,
                "state_at": datetime.now(UTC).isoformat(timespec="seconds"),
                **extra,
            }
        }

    def create(self, name: str, shards: int, **meta: Any) -> None:
        """Create the index for loading: strict mapping, no refresh, no replicas, state `loading`.

        Retried by hand: after a timeout the index may exist, made by us (same `run` in _meta).
        """
        mapping = load_mapping()
        mapping["_meta"] = self._meta("loading", **meta)
        body = {
            "settings": {"index": {"number_of_shards": shards, **LOAD_SETTINGS}},
            "mappings": mapping,
            "aliases": {load_alias(name): {}},
        }
        attempt = 0
        while True:
            try:
                self._call(
                    f"create index {name}",
                    lambda: self.client.indices.create(index=name, body=body, params={"wait_for_active_shards": "1"}),
                    index=name,
                    retry=False,
                )
                return
            except OpenSearchError as exc:
                if exc.status is not None and exc.status < 500 and exc.status != 429:
                    existing = self.info(name)
                    if existing is not None and existing.meta.get("run") == meta.get("run"):
                        return  # our own create, applied before the answer was lost
                    raise
                if attempt >= self.policy.max_retries or not self.policy.sleep(attempt):
                    raise
                existing = self.info(name)
                if existing is not None and existing.meta.get("run") == meta.get("run"):
                    return
                attempt += 1

    def finish_load(self, name: str, replicas: int, refresh_interval: str = "1s") -> None:
        """Back to search settings (refresh interval, replicas), then refresh so counts are exact.

        The load alias goes first: a bulk request still travelling after this finds nothing to write to."""
        self._call(
            f"remove the load alias of {name}",
            lambda: self.client.indices.delete_alias(index=name, name=load_alias(name), ignore=[404]),
            index=name,
        )
        self._call(
            f"restore the settings of {name}",
            lambda: self.client.indices.put_settings(
                index=name, body={"index": {"refresh_interval": refresh_interval, "number_of_replicas": replicas}}
            ),
            index=name,
        )
        self.refresh(name)

    def refresh(self, name: str) -> None:
        self._call(f"refresh {name}", lambda: self.client.indices.refresh(index=name), index=name)

    def health(self, name: str, wait_for_green: float = 0) -> dict[str, Any]:
        """Cluster health of one index, waiting up to `wait_for_green` seconds for green."""
        kwargs: dict[str, Any] = {}
        if wait_for_green:
            kwargs.update(
                wait_for_status="green",
                timeout=f"{max(1, int(wait_for_green))}s",
                request_timeout=wait_for_green + self.settings.timeout,
            )
        health = self._call(
            f"check the health of {name}",
            lambda: self.client.cluster.health(index=name, ignore=[408], **kwargs),
            index=name,
        )
        return health

    def replicas_allocated(self, name: str, replicas: int, timeout: float) -> tuple[bool, str]:
        """Wait for every copy of `name` to be active; (ok, one-line detail)."""
        health = self.health(name, wait_for_green=timeout) if replicas else self.health(name)
        status = health.get("status")
        active = health.get("active_shards", "?")
        detail = (
            f"health {status}, {active} active shard copies, {health.get('unassigned_shards', '?')} unassigned, "
            f"{health.get('initializing_shards', '?')} initializing, {health.get('number_of_data_nodes', '?')} "
            "data node(s)"
        )
        return status == "green", detail

    def mark(self, name: str, state: str, **extra: Any) -> None:
        """Set the lifecycle state in _meta, keeping the other fields already there."""
        current = self._call(
            f"read the mapping of {name}", lambda: self.client.indices.get_mapping(index=name), index=name
        )
        meta = dict(current.get(name, {}).get("mappings", {}).get("_meta", {}).get("indexer", {}))
        meta.update(self._meta(state, **extra)["indexer"])
        self._call(
            f"mark index {name} as {state}",
            lambda: self.client.indices.put_mapping(index=name, body={"_meta": {"indexer": meta}}),
            index=name,
        )

    def block_writes(self, name: str) -> None:
        self._call(
            f"block writes to {name}",
            lambda: self.client.indices.put_settings(index=name, body={"index": {"blocks.write": True}}),
            index=name,
        )

    def count(self, index: str) -> int:
        found = self._call(
            f"count the documents in {index}", lambda: complete(self.client.count(index=index)), index=index
        )
        return int(found["count"])

    def move_alias(self, to: str, replace_index: bool = False, expected: list[str] | None = None) -> list[str]:
        """Point the alias at `to` in ONE atomic _aliases call; returns the previous holders.

        `expected`: the holders the caller saw; if the alias moved since, nothing is done.
        With replace_index, a concrete index that has the alias's name (left by the old
        scripts) is deleted in the same atomic call. A failure that may have applied (a
        timeout, a lost connection) is checked by reading the alias back before retrying.
        """
        previous = [] if replace_index else [n for n in self.alias_holders() if n != to]
        if expected is not None and not replace_index and sorted(previous) != sorted(n for n in expected if n != to):
            raise OpenSearchError(
                f"alias {self.alias} moved to {', '.join(previous) or 'nothing'} while this run worked "
                f"(it was on {', '.join(expected) or 'nothing'}); not moving it to {to}"
            )
        actions: list[dict[str, Any]] = [{"remove": {"index": n, "alias": self.alias}} for n in previous]
        if replace_index:
            actions.append({"remove_index": {"index": self.alias}})
        actions.append({"add": {"index": to, "alias": self.alias}})
        attempt = 0
        while True:
            try:
                self._call(
                    f"move alias {self.alias} to {to}",
                    lambda: self.client.indices.update_aliases(body={"actions": actions}),
                    index=to,
                    retry=False,
                )
                return previous
            except OpenSearchError as exc:
                if exc.status is not None and exc.status not in (429, 500, 502, 503, 504):
                    if attempt and self.alias_holders() == [to]:
                        return previous  # an earlier attempt whose answer was lost applied (this one: 404)
                    raise
                try:
                    now = self.alias_holders()
                except OpenSearchError:
                    raise OpenSearchError(
                        f"moving alias {self.alias} to {to} failed without a clear answer ({exc}) and the alias "
                        "could not be read back: it may or may not have moved; check with `listings-indexer status`"
                    ) from None
                if now == [to]:
                    return previous  # the call applied; its answer was lost
                if sorted(now) != sorted(previous) or attempt >= self.policy.max_retries:
                    raise
                if not self.policy.sleep(attempt):
                    raise
                attempt += 1

    def delete(self, names: list[str]) -> None:
        for name in names:
            if not self.is_managed(name):  # never delete what we did not create
                raise ValueError(f"refusing to delete unmanaged index {name}")
            self._call(
                f"delete index {name}",
                lambda name=name: self.client.indices.delete(index=name, ignore=[404]),
                index=name,
            )

    def prune(self, current: str, previous: list[str], keep: int, protect: set[str] | None = None) -> list[str]:
        """Delete managed indices older than `current`, except the rollback candidates.

        Kept: `current`, the indices the alias was just moved away from, and further
        validated `complete` ones (newest first) up to `keep` in all, and `protect`
        (e.g. an index a lock holder says it is building). Deleted: every other older
        index, including `loading`/`failed` leftovers of killed or failed runs. Newer
        indices (a run in progress) are never touched.
        """
        older = [i for i in reversed(self.managed()) if i.name < current]
        kept = {current, *previous, *(protect or set())}
        for info in older:
            if len(kept) >= keep:
                break
            if info.validated:
                kept.add(info.name)
        doomed = [i.name for i in older if i.name not in kept]
        self.delete(doomed)
        return doomed


def date_formats(
    client: OpenSearch, settings: OpenSearchSettings, index: str, policy: RetryPolicy | None = None
) -> dict[str, str | None]:
    """The date format of created_at/updated_at in each index behind `index`."""
    found = call(
        policy or RetryPolicy(),
        settings,
        f"read the mapping of {index}",
        lambda: client.indices.get_mapping(index=index),
        index=index,
    )
    formats = {}
    for name, body in found.items():
        props = body.get("mappings", {}).get("properties", {})
        for name_of_field in ("created_at", "updated_at"):
            formats[f"{name}.{name_of_field}"] = props.get(name_of_field, {}).get("format")
    return formats
