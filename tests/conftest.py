"""Shared fixtures for the Python tests: real PostgreSQL, one scratch database per test.

How the connection is set: the same libpq variables that `listings_common.pg.PgSettings.from_env`
reads, PGHOST, PGPORT, PGUSER and PGPASSWORD (defaults localhost, 5432, postgres, none).
PGDATABASE is not used: `scratch_db` connects to a maintenance database,
PGTEST_ADMIN_DATABASE (default "postgres"), to create and drop the scratch databases, so
PGUSER must be a role with CREATEDB. Usually `scripts/test.sh` sets them (through
`eval "$(scripts/postgres.sh env)"`, the local cluster's `listings` role); by hand, e.g. with
a throw-away role:

    su postgres -c "psql -c \"CREATE ROLE migration_test LOGIN CREATEDB PASSWORD 'secret'\""
    PGHOST=localhost PGUSER=migration_test PGPASSWORD=secret .venv/bin/pytest tests

Without a reachable server the tests that use `scratch_db` fail (they are not skipped).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from listings_common.errors import ConfigError
from listings_common.pg import PgSettings


def _admin_settings() -> PgSettings:
    settings = PgSettings.from_env()
    return settings.with_database(os.environ.get("PGTEST_ADMIN_DATABASE") or "postgres")


@pytest.fixture
def scratch_db() -> Iterator[PgSettings]:
    """Settings for a new, empty database that is dropped (WITH FORCE) after the test."""
    admin = _admin_settings()
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except (ConfigError, psycopg.Error) as exc:
        pytest.fail(f"scratch_db needs a PostgreSQL role with CREATEDB (see tests/conftest.py): {exc}")
    try:
        yield admin.with_database(name)
    finally:
        with admin.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- dbt: a database where the monolith fixtures were loaded and `dbt build` ran ---------

import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

import standin  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DBT = str(Path(sys.executable).with_name("dbt"))


@contextmanager
def scratch_database(prefix: str = "scratch") -> Iterator[PgSettings]:
    """Like the `scratch_db` fixture, for fixtures of a wider scope."""
    admin = _admin_settings()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin.with_database(name)
    finally:
        with admin.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def dbt_profiles_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """DBT_PROFILES_DIR if set, else a copy of profiles.yml.example (it reads PG* only)."""
    if os.environ.get("DBT_PROFILES_DIR"):
        return os.environ["DBT_PROFILES_DIR"]
    directory = tmp_path_factory.mktemp("dbt_profile")
    shutil.copy(ROOT / "profiles.yml.example", directory / "profiles.yml")
    return str(directory)


@pytest.fixture(scope="session")
def run_dbt(dbt_profiles_dir: str, tmp_path_factory: pytest.TempPathFactory):
    """run_dbt(settings, *args, env=None) -> CompletedProcess: dbt against `settings`' database."""

    # One target path for the session: dbt parses the project once and re-uses it
    # (partial parsing); the tests run dbt one at a time.
    work = tmp_path_factory.mktemp("dbt")

    def run(settings: PgSettings, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        full_env = {
            **os.environ,
            "PGHOST": settings.host,
            "PGPORT": str(settings.port),
            "PGUSER": settings.user,
            "PGDATABASE": settings.dbname,
            "DBT_PROFILES_DIR": dbt_profiles_dir,
            "DBT_TARGET_PATH": str(work / "target"),
            "DBT_LOG_PATH": str(work / "logs"),
            **(env or {}),
        }
        if settings.password:
            full_env["PGPASSWORD"] = settings.password
        return subprocess.run(
            [DBT, *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=600, check=False
        )

    return run


def load_monolith(
    settings: PgSettings, *, dirty: bool = True, c2c: int = 200, b2c: int = 100, service: bool = True
) -> None:
    """The stand-in monolith: generated rows and (by default) every dirty case; and the
    microservice's stand-in schema (its tables exist before the migration runs)."""
    with settings.connect(autocommit=True) as conn:
        standin.load_schema(conn)
        standin.generate(conn, c2c=c2c, b2c=b2c, dirty=dirty)
        if service:
            standin.load_service_schema(conn)


def build(run_dbt, settings: PgSettings, *args: str, env: dict[str, str] | None = None) -> None:
    result = run_dbt(settings, "build", *args, env=env)
    assert result.returncode == 0, result.stdout[-4000:]


def publish(settings: PgSettings, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m migration publish ARGS`; asserts success unless args say otherwise."""
    result = migration_cli(settings, "publish", *args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def migrated_db(run_dbt) -> Iterator[PgSettings]:
    """A database with generated + every dirty monolith row, after `dbt build` and `publish` (per module)."""
    with scratch_database("migrated") as settings:
        load_monolith(settings)
        build(run_dbt, settings)
        publish(settings)
        yield settings


# --- OpenSearch: a real node, and a private alias (and indices) per test ---------------------

from opensearchpy import OpenSearch  # noqa: E402


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    """$OPENSEARCH_URL if set, else the local node of `scripts/opensearch.sh start`."""
    if os.environ.get("OPENSEARCH_URL"):
        return os.environ["OPENSEARCH_URL"]
    script = ROOT / "scripts" / "opensearch.sh"
    started = subprocess.run([str(script), "start"], capture_output=True, text=True, timeout=900, check=False)
    if started.returncode != 0:
        pytest.fail(f"scripts/opensearch.sh start failed: {(started.stderr or started.stdout).strip()[-2000:]}")
    url = subprocess.run([str(script), "url"], capture_output=True, text=True, timeout=60, check=True)
    return url.stdout.strip()


@pytest.fixture
def opensearch_alias(opensearch_url: str) -> Iterator[str]:
    """A unique alias (= index prefix) for one test; its indices are deleted afterwards."""
    alias = f"test_{uuid.uuid4().hex[:10]}_listings"
    yield alias
    client = OpenSearch(hosts=[opensearch_url], timeout=60)
    try:
        client.indices.delete(index=f"{alias}_*", expand_wildcards="all", ignore=[404])
        client.indices.delete(index=alias, ignore=[404])
    finally:
        client.close()


def pg_env(settings: PgSettings) -> dict[str, str]:
    """The PG* variables that point a child process at `settings`' database."""
    env = {
        "PGHOST": settings.host,
        "PGPORT": str(settings.port),
        "PGUSER": settings.user,
        "PGDATABASE": settings.dbname,
    }
    if settings.password:
        env["PGPASSWORD"] = settings.password
    return env


def passfile_password(settings: PgSettings) -> str | None:
    """The password libpq would take from PGPASSFILE for `settings` (the local default keeps it there)."""
    if settings.password:
        return settings.password
    path = os.environ.get("PGPASSFILE")
    if not path or not os.path.exists(path):
        return None
    for line in Path(path).read_text().splitlines():
        host, port, _db, user, password = line.split(":", 4)
        if host in (settings.host, "*") and port in (str(settings.port), "*") and user in (settings.user, "*"):
            return password
    return None


def migration_cli(settings: PgSettings, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m migration ARGS` against `settings`' database (env overrides last)."""
    return subprocess.run(
        [sys.executable, "-m", "migration", *args],
        cwd=ROOT,
        env={**os.environ, **pg_env(settings), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def client(opensearch_url: str) -> Iterator[OpenSearch]:
    """A client of the test node (test modules with a cluster of their own override it)."""
    client = OpenSearch(hosts=[opensearch_url], timeout=60)
    yield client
    client.close()


@pytest.fixture
def alias(opensearch_alias: str, client: OpenSearch) -> Iterator[str]:
    """The test's alias; its lock document is removed afterwards, whatever happened."""
    from indexer.lock import LOCK_INDEX

    yield opensearch_alias
    client.delete(index=LOCK_INDEX, id=opensearch_alias, ignore=[404], refresh=True)
