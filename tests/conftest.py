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

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from opensearchpy import OpenSearch
from psycopg import sql

import standin
from listings_common.errors import ConfigError
from listings_common.pg import PgSettings


def _admin_settings() -> PgSettings:
    settings = PgSettings.from_env()
    return settings.with_database(os.environ.get("PGTEST_ADMIN_DATABASE") or "postgres")


def _create_database(admin: PgSettings, template: str | None = None) -> str:
    """CREATE DATABASE pytest_<n> (a copy of `template` if given), the first n free; returns the name.

    The names repeat from test to test (a database is dropped when its test ends), so that
    dbt's partial parsing holds: dbt re-parses the whole project whenever the database it
    connects to changes, and `run_dbt` keeps its parse cache per database name. A name
    another run holds is skipped, so two suites on one server never share a database."""
    clause = sql.SQL(" TEMPLATE {}").format(sql.Identifier(template)) if template else sql.SQL("")
    with admin.connect(autocommit=True) as conn:
        for n in range(1000):
            name = f"pytest_{n}"
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}{}").format(sql.Identifier(name), clause))
                return name
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                continue
    raise RuntimeError("no free pytest_<n> database name below 1000")


@contextmanager
def scratch_database(template: str | None = None) -> Iterator[PgSettings]:
    """A new database (empty, or a copy of `template`), dropped WITH FORCE afterwards."""
    admin = _admin_settings()
    try:
        name = _create_database(admin, template)
    except (ConfigError, psycopg.Error) as exc:
        pytest.fail(f"the tests need a PostgreSQL role with CREATEDB (see tests/conftest.py): {exc}")
    try:
        yield admin.with_database(name)
    finally:
        with admin.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def scratch_db() -> Iterator[PgSettings]:
    """Settings for a new, empty database that is dropped (WITH FORCE) after the test."""
    with scratch_database() as settings:
        yield settings


# --- dbt: a database where the monolith fixtures were loaded and `dbt build` ran ---------


ROOT = Path(__file__).resolve().parents[1]
DBT = str(Path(sys.executable).with_name("dbt"))


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

    # A target path per database name (see _create_database): dbt re-uses its parse of
    # the project there (partial parsing) as long as the database and the vars are the
    # same; the tests run dbt one at a time.
    work = tmp_path_factory.mktemp("dbt")

    def run(settings: PgSettings, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        full_env = {
            **os.environ,
            "PGHOST": settings.host,
            "PGPORT": str(settings.port),
            "PGUSER": settings.user,
            "PGDATABASE": settings.dbname,
            "DBT_PROFILES_DIR": dbt_profiles_dir,
            "DBT_TARGET_PATH": str(work / settings.dbname / "target"),
            "DBT_LOG_PATH": str(work / settings.dbname / "logs"),
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
    """`dbt build ARGS` without the dbt unit tests, which test the SQL's rules on rows of their
    own, whatever the database holds: they run in test_dbt_migration's builds and in
    scripts/test.sh's; a complete build for publish is every model, seed and data test."""
    result = run_dbt(settings, "build", "--exclude-resource-type", "unit_test", *args, env=env)
    assert result.returncode == 0, result.stdout[-4000:]


def publish(settings: PgSettings, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m migration publish ARGS`; asserts success unless args say otherwise."""
    result = migration_cli(settings, "publish", *args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def migrated_db(run_dbt) -> Iterator[PgSettings]:
    """A database with generated + every dirty monolith row, after `dbt build` (unit tests
    included) and `publish` (per module)."""
    with scratch_database() as settings:
        load_monolith(settings)
        result = run_dbt(settings, "build")
        assert result.returncode == 0, result.stdout[-4000:]
        publish(settings)
        yield settings


@pytest.fixture(scope="session")
def published_copy(run_dbt) -> Iterator:
    """published_copy(c2c=, b2c=, dirty=) -> a context manager of a new database that holds the
    stand-in monolith (load_monolith's arguments) after a first `dbt build` and `publish`.

    Copied (CREATE DATABASE ... TEMPLATE) from a database built once per session for those
    arguments, so the tests that start from a published migration do not each build it.
    Nothing in a database names the database, so the copy is what a build there would give."""
    templates: dict[tuple, PgSettings] = {}
    with contextlib.ExitStack() as stack:

        @contextmanager
        def copy(*, c2c: int = 30, b2c: int = 10, dirty: bool = False) -> Iterator[PgSettings]:
            key = (c2c, b2c, dirty)
            if key not in templates:
                template = stack.enter_context(scratch_database())
                load_monolith(template, c2c=c2c, b2c=b2c, dirty=dirty)
                build(run_dbt, template)
                publish(template)
                templates[key] = template
            with scratch_database(template=templates[key].dbname) as settings:
                yield settings

        yield copy


# --- OpenSearch: a real node, and a private alias (and indices) per test ---------------------


@pytest.fixture(scope="session")
def opensearch_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """$OPENSEARCH_URL if set, else the local node of `scripts/opensearch.sh start`."""
    if os.environ.get("OPENSEARCH_URL"):
        return os.environ["OPENSEARCH_URL"]
    script = ROOT / "scripts" / "opensearch.sh"
    # One `start` at a time: the workers of a parallel run (pytest-xdist) all get here.
    with open(tmp_path_factory.getbasetemp().parent / "opensearch-start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
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


def libpq_params(settings: PgSettings) -> dict:
    """psycopg.connect keywords for `settings`, none of PgSettings.connect's own (a plain session)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "user": settings.user,
        "dbname": settings.dbname,
        "password": settings.password,
    }


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
