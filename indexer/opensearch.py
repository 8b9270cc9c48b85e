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
from dataclasses import dataclass
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

STAMP_FORMAT = "%Y%m%dt%H%M%Sz"
LOAD_SETTINGS = {"refresh_interval": "-1", "number_of_replicas": 0}
ZONED_DATE_FORMAT = "strict_date_time||strict_date_time_no_millis"


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
    """A client that does not retry on its own (the bulk loader retries, with backoff)."""
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
        line = f"cannot reach OpenSearch at {url} ({_reason(exc)}); is it running and is OPENSEARCH_URL right?"
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


class Indices:
    """The versioned indices behind one alias, and the operations on them."""

    def __init__(self, client: OpenSearch, settings: OpenSearchSettings, alias: str) -> None:
        self.client = client
        self.settings = settings
        self.alias = alias
        self._pattern = re.compile(rf"^{re.escape(alias)}_\d{{8}}t\d{{6}}z$")

    def _errors(self, action: str) -> Any:
        return translate_errors(self.settings, action)

    def check_server(self) -> str:
        """Fail with one line unless the URL answers like OpenSearch; returns its version."""
        with self._errors("read the cluster info"):
            info = self.client.info()
        version = info.get("version", {}) if isinstance(info, dict) else {}
        if not version.get("number"):
            raise OpenSearchError(f"{self.settings.describe()} does not look like OpenSearch")
        return f"{version.get('distribution', 'opensearch')} {version['number']}"

    def is_managed(self, name: str) -> bool:
        return bool(self._pattern.match(name))

    def alias_holders(self) -> list[str]:
        """Indices the alias points to now (normally one; none before the first run)."""
        with self._errors(f"read alias {self.alias}"):
            found = self.client.indices.get_alias(name=self.alias, ignore=[404])
        # A missing alias answers 404 with {"error": ..., "status": 404}: no index entries.
        return sorted(
            name for name, body in found.items() if isinstance(body, dict) and self.alias in body.get("aliases", {})
        )

    def concrete_index_named_like_alias(self) -> bool:
        """True if a real index (e.g. from the old reindex script) has the alias's name."""
        with self._errors(f"look up index {self.alias}"):
            found = self.client.indices.get(index=self.alias, ignore=[404])
        return self.alias in found and "error" not in found

    def managed(self, with_counts: bool = False) -> list[IndexInfo]:
        """All managed indices, oldest first."""
        with self._errors(f"list the {self.alias}_* indices"):
            found = self.client.indices.get(index=f"{self.alias}_*", expand_wildcards="open,closed")
        infos = []
        for name in sorted(n for n in found if self.is_managed(n)):
            body = found[name]
            meta = body.get("mappings", {}).get("_meta", {}).get("indexer", {})
            created_ms = body.get("settings", {}).get("index", {}).get("creation_date")
            created = datetime.fromtimestamp(int(created_ms) / 1000, UTC) if created_ms else None
            docs = None
            state = meta.get("state", "unknown")
            if with_counts and state != "loading":
                docs = self.count(name)
            infos.append(IndexInfo(name, created, state, self.alias in body.get("aliases", {}), docs))
        return infos

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

    def create(self, name: str, shards: int) -> None:
        """Create the index for loading: strict mapping, no refresh, no replicas."""
        mapping = load_mapping()
        mapping["_meta"] = self._meta("loading")
        body = {"settings": {"index": {"number_of_shards": shards, **LOAD_SETTINGS}}, "mappings": mapping}
        with self._errors(f"create index {name}"):
            self.client.indices.create(index=name, body=body)

    def finish_load(self, name: str, replicas: int) -> None:
        """Back to search settings (refresh 1s, replicas), then refresh so counts are exact."""
        with self._errors(f"restore the settings of {name}"):
            self.client.indices.put_settings(
                index=name, body={"index": {"refresh_interval": "1s", "number_of_replicas": replicas}}
            )
            self.client.indices.refresh(index=name)

    def wait_for_replicas(self, name: str, timeout: str = "60s") -> bool:
        with self._errors(f"check the health of {name}"):
            health = self.client.cluster.health(index=name, wait_for_status="green", timeout=timeout, ignore=[408])
        return health.get("status") == "green"

    def mark(self, name: str, state: str, **extra: Any) -> None:
        with self._errors(f"mark index {name} as {state}"):
            self.client.indices.put_mapping(index=name, body={"_meta": self._meta(state, **extra)})

    def block_writes(self, name: str) -> None:
        with self._errors(f"block writes to {name}"):
            self.client.indices.put_settings(index=name, body={"index": {"blocks.write": True}})

    def count(self, index: str) -> int:
        with self._errors(f"count the documents in {index}"):
            return int(self.client.count(index=index)["count"])

    def move_alias(self, to: str, replace_index: bool = False) -> list[str]:
        """Point the alias at `to` in ONE atomic _aliases call; returns the previous holders.

        With replace_index, a concrete index that has the alias's name (left by the old
        scripts) is deleted in the same atomic call.
        """
        previous = [] if replace_index else [n for n in self.alias_holders() if n != to]
        actions: list[dict[str, Any]] = [{"remove": {"index": n, "alias": self.alias}} for n in previous]
        if replace_index:
            actions.append({"remove_index": {"index": self.alias}})
        actions.append({"add": {"index": to, "alias": self.alias}})
        with self._errors(f"move alias {self.alias} to {to}"):
            self.client.indices.update_aliases(body={"actions": actions})
        return previous

    def delete(self, names: list[str]) -> None:
        for name in names:
            if not self.is_managed(name):  # never delete what we did not create
                raise ValueError(f"refusing to delete unmanaged index {name}")
            with self._errors(f"delete index {name}"):
                self.client.indices.delete(index=name, ignore=[404])

    def prune(self, current: str, previous: list[str], keep: int) -> list[str]:
        """Delete managed indices older than `current`, except the rollback candidates.

        Kept: `current`, the indices the alias was just moved away from, and further
        `complete` ones (newest first) up to `keep` in all. Deleted: every other older
        index, including `loading`/`failed` leftovers of killed or failed runs. Newer
        indices (a run in progress) are never touched.
        """
        older = [i for i in reversed(self.managed()) if i.name < current]
        kept = {current, *previous}
        for info in older:
            if len(kept) >= keep:
                break
            if info.state == "complete":
                kept.add(info.name)
        doomed = [i.name for i in older if i.name not in kept]
        self.delete(doomed)
        return doomed


def date_formats(client: OpenSearch, settings: OpenSearchSettings, index: str) -> dict[str, str | None]:
    """The date format of created_at/updated_at in each index behind `index`."""
    with translate_errors(settings, f"read the mapping of {index}"):
        found = client.indices.get_mapping(index=index)
    formats = {}
    for name, body in found.items():
        props = body.get("mappings", {}).get("properties", {})
        for field in ("created_at", "updated_at"):
            formats[f"{name}.{field}"] = props.get(field, {}).get("format")
    return formats
