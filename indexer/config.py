"""Settings for the indexer: environment variables and command-line flags, in one place.

PostgreSQL comes from the same PG* variables as the dbt profile (`listings_common.pg`).
OpenSearch from OPENSEARCH_URL (default http://localhost:9200), OPENSEARCH_USER,
OPENSEARCH_PASSWORD, OPENSEARCH_CA_CERTS, OPENSEARCH_VERIFY_CERTS (default true),
OPENSEARCH_TIMEOUT (seconds per request, default 120) and OPENSEARCH_ALLOW_INSECURE_AUTH
(default false: credentials are never sent over plain http to a host that is not loopback).
LISTINGS_SCHEMA (default public) is the dbt target schema; the documents view lives in
`<LISTINGS_SCHEMA>_search`. A flag, where there is one, wins over the variable.
The password is read from the environment only (never a flag) and never printed:
`describe()` methods and the dataclass reprs leave it out.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from listings_common.errors import ConfigError
from listings_common.pg import PgSettings

DEFAULT_OPENSEARCH_URL = "http://localhost:9200"
DEFAULT_SCHEMA = "public"
DEFAULT_ALIAS = "listings_microservice"

# Index and alias names: lower case, no characters OpenSearch forbids, room for
# the `_<timestamp>` suffix within the 255-byte limit.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,200}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class OpenSearchSettings:
    url: str  # scheme://host:port[/path], never with credentials in it
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    verify_certs: bool = True
    ca_certs: str | None = None
    timeout: float = 120.0
    allow_insecure_auth: bool = False

    def describe(self) -> str:
        """Where we connect, without credentials."""
        return self.url


@dataclass(frozen=True)
class Config:
    pg: PgSettings = field(repr=False)  # PgSettings' own repr would show the password
    opensearch: OpenSearchSettings
    schema: str = DEFAULT_SCHEMA
    alias: str = DEFAULT_ALIAS
    # reindex
    replicas: int | None = None  # None: 1 if the cluster has more than one data node, else 0
    shards: int | None = None  # None: one per DOCS_PER_SHARD documents, at least 1
    refresh_interval: str = "1s"  # restored after the load
    replica_timeout: float = 300.0  # seconds to wait for the replicas to allocate
    wait_for_active_shards: str = "all"  # on every bulk request
    keep: int = 2
    batch_docs: int = 2000
    batch_bytes: int = 8 * 1024 * 1024
    senders: int = 2
    max_retries: int = 10
    replace_index: bool = False
    keep_failed: bool = False
    allow_empty: bool = False
    allow_shrink: bool = False
    # the per-alias lock (reindex, rollback)
    lock_lease: float = 60.0
    # validate (reindex validates too)
    sample: int = 200
    random_state: int | None = None
    progress: bool = True

    @property
    def search_schema(self) -> str:
        return f"{self.schema}_search"


def _flag_or_env(flag: str | None, env: Mapping[str, str], name: str) -> str | None:
    if flag not in (None, ""):
        return flag
    return env.get(name) or None


def _parse_bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def opensearch_settings(
    env: Mapping[str, str],
    url: str | None = None,
    user: str | None = None,
    ca_certs: str | None = None,
    verify_certs: bool | None = None,
    timeout: float | None = None,
    allow_insecure_auth: bool | None = None,
) -> OpenSearchSettings:
    """OpenSearch settings from flags (when given) and the environment.

    Credentials written into the URL (`https://user:pass@host`) are taken out of it,
    so the URL can be shown in messages; explicit user/password settings win.
    """
    raw = _flag_or_env(url, env, "OPENSEARCH_URL") or DEFAULT_OPENSEARCH_URL
    parts = urlsplit(raw if "://" in raw else "http://" + raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("OPENSEARCH_URL must look like http(s)://host:port")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError("OPENSEARCH_URL has an invalid port") from None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    clean_url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    user = _flag_or_env(user, env, "OPENSEARCH_USER") or (unquote(parts.username) if parts.username else None)
    password = env.get("OPENSEARCH_PASSWORD") or (unquote(parts.password) if parts.password else None)
    if password and not user:
        raise ConfigError("OPENSEARCH_PASSWORD is set but OPENSEARCH_USER is not")
    if verify_certs is None:
        verify_env = env.get("OPENSEARCH_VERIFY_CERTS")
        verify_certs = True if verify_env in (None, "") else _parse_bool(verify_env, "OPENSEARCH_VERIFY_CERTS")
    ca = _flag_or_env(ca_certs, env, "OPENSEARCH_CA_CERTS")
    if ca and not os.path.isfile(ca):
        raise ConfigError(f"CA bundle not found: {ca}")
    if timeout is None and env.get("OPENSEARCH_TIMEOUT"):
        try:
            timeout = float(env["OPENSEARCH_TIMEOUT"])
        except ValueError:
            value = env["OPENSEARCH_TIMEOUT"]
            raise ConfigError(f"OPENSEARCH_TIMEOUT must be a number of seconds, got {value!r}") from None
    if timeout is not None and timeout <= 0:
        raise ConfigError("--timeout must be more than 0 seconds")
    if allow_insecure_auth is None:
        insecure_env = env.get("OPENSEARCH_ALLOW_INSECURE_AUTH")
        allow_insecure_auth = bool(insecure_env) and _parse_bool(insecure_env, "OPENSEARCH_ALLOW_INSECURE_AUTH")
    if user and parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_insecure_auth:
        raise ConfigError(
            f"refusing to send OpenSearch credentials over plain http to {clean_url} (not loopback): use https, "
            "or pass --allow-insecure-auth (OPENSEARCH_ALLOW_INSECURE_AUTH=1) on a network you trust"
        )
    return OpenSearchSettings(
        url=clean_url,
        user=user,
        password=password,
        verify_certs=verify_certs,
        ca_certs=ca,
        timeout=timeout if timeout is not None else 120.0,
        allow_insecure_auth=bool(allow_insecure_auth),
    )


def check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ConfigError(f"{what} {value!r} is not a valid index name (lower case letters, digits, '_', '-', '.')")
    return value


def load_config(
    env: Mapping[str, str] | None = None,
    *,
    opensearch_url: str | None = None,
    opensearch_user: str | None = None,
    ca_certs: str | None = None,
    verify_certs: bool | None = None,
    timeout: float | None = None,
    allow_insecure_auth: bool | None = None,
    schema: str | None = None,
    **options: object,
) -> Config:
    """The full configuration: env, then the given flag values on top.

    `options` are the remaining Config fields (alias, keep, sample, ...); a value of
    None means "flag not given" and keeps the default.
    """
    env = os.environ if env is None else env
    pg = PgSettings.from_env(env)
    opensearch = opensearch_settings(
        env, opensearch_url, opensearch_user, ca_certs, verify_certs, timeout, allow_insecure_auth
    )
    schema = schema or env.get("LISTINGS_SCHEMA") or DEFAULT_SCHEMA
    given = {k: v for k, v in options.items() if v is not None}
    config = Config(pg=pg, opensearch=opensearch, schema=schema, **given)  # type: ignore[arg-type]
    check_name(config.alias, "alias")
    for name, minimum in (
        ("replicas", 0),
        ("shards", 1),
        ("replica_timeout", 0),
        ("lock_lease", 2),
        ("keep", 1),
        ("batch_docs", 1),
        ("batch_bytes", 64 * 1024),
        ("senders", 1),
        ("max_retries", 0),
        ("sample", 0),
    ):
        value = getattr(config, name)
        if value is not None and value < minimum:
            if name == "batch_bytes":
                raise ConfigError("--batch-mb must be at least 0.0625 (64 KiB)")
            raise ConfigError(f"--{name.replace('_', '-')} must be at least {minimum}")
    if not re.fullmatch(r"all|[1-9][0-9]*", config.wait_for_active_shards):
        raise ConfigError("--wait-for-active-shards must be `all` or a positive number")
    if not re.fullmatch(r"-1|[1-9][0-9]*(ms|s|m)", config.refresh_interval):
        raise ConfigError("--refresh-interval must look like 1s, 500ms, 1m (or -1: never)")
    return config
