"""Settings for the indexer: environment variables and command-line flags, in one place.

PostgreSQL comes from the same PG* variables as the dbt profile (`migration.pg`).
OpenSearch from OPENSEARCH_URL (default http://localhost:9200), OPENSEARCH_USER,
OPENSEARCH_PASSWORD, OPENSEARCH_CA_CERTS and OPENSEARCH_VERIFY_CERTS (default true).
LISTINGS_SCHEMA (default public) is the dbt target schema; the documents view lives in
`<LISTINGS_SCHEMA>_search`. A flag, where there is one, wins over the variable.
The password is read from the environment only (never a flag) and never printed:
`describe()` methods and the dataclass reprs leave it out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from migration.pg import ConfigError, PgSettings

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
    replicas: int = 0
    shards: int = 1
    keep: int = 2
    batch_docs: int = 2000
    batch_bytes: int = 8 * 1024 * 1024
    senders: int = 2
    max_retries: int = 6
    replace_index: bool = False
    keep_failed: bool = False
    allow_empty: bool = False
    # validate (reindex validates too)
    sample: int = 200
    seed: int | None = None
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


def opensearch_settings(
    env: Mapping[str, str],
    url: str | None = None,
    user: str | None = None,
    ca_certs: str | None = None,
    verify_certs: bool | None = None,
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
    return OpenSearchSettings(url=clean_url, user=user, password=password, verify_certs=verify_certs, ca_certs=ca)


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
    schema: str | None = None,
    **options: object,
) -> Config:
    """The full configuration: env, then the given flag values on top.

    `options` are the remaining Config fields (alias, keep, sample, ...); a value of
    None means "flag not given" and keeps the default.
    """
    env = os.environ if env is None else env
    pg = PgSettings.from_env(env)
    opensearch = opensearch_settings(env, opensearch_url, opensearch_user, ca_certs, verify_certs)
    schema = schema or env.get("LISTINGS_SCHEMA") or DEFAULT_SCHEMA
    given = {k: v for k, v in options.items() if v is not None}
    config = Config(pg=pg, opensearch=opensearch, schema=schema, **given)  # type: ignore[arg-type]
    check_name(config.alias, "alias")
    for name, minimum in (
        ("replicas", 0),
        ("shards", 1),
        ("keep", 1),
        ("batch_docs", 1),
        ("batch_bytes", 64 * 1024),
        ("senders", 1),
        ("max_retries", 0),
        ("sample", 0),
    ):
        if getattr(config, name) < minimum:
            if name == "batch_bytes":
                raise ConfigError("--batch-mb must be at least 0.0625 (64 KiB)")
            raise ConfigError(f"--{name.replace('_', '-')} must be at least {minimum}")
    return config
