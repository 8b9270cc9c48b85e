"""Secrets, encodings and ownership around PostgreSQL: listings_common/pg.py, migration/fdw.py
and scripts/postgres.sh, against real servers.

* The monolith password never reaches a statement's text: a throw-away cluster with
  pg_stat_statements (track = all) and log_statement = all proves it, for a good
  attach, a wrong password and a failing CREATE USER MAPPING.
* postgres_fdw gets the caller's TLS settings (pg_foreign_server.srvoptions, and the
  fdw connection really is TLS; verify-full really is enforced).
* attach/detach never drop what they did not create (no CASCADE).
* PgSettings never shows its password; connections speak UTF-8 whatever
  PGCLIENTENCODING says, send TCP keepalives, and have no statement timeout unless asked.
* scripts/postgres.sh never retunes or takes over a cluster it did not create
  (tested on throw-away Debian clusters on other ports; needs root, like the script).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import libpq_params, passfile_password, pg_env
from psycopg import sql

import standin
from listings_common.errors import ConfigError
from listings_common.pg import PgSettings
from migration import fdw

ROOT = Path(__file__).resolve().parents[1]


def monolith_env(settings: PgSettings, password: str | None, **extra: str) -> dict[str, str]:
    env = {f"MONOLITH_{key}": value for key, value in pg_env(settings).items()}
    env["MONOLITH_PGPASSWORD"] = password or ""
    return {**env, **extra}


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- PgSettings ------------------------------------------------------------------------------


def test_settings_never_show_the_password_in_repr_str_or_a_pytest_diff(tmp_path):
    secret = "s3cret-" + uuid.uuid4().hex
    settings = PgSettings("db.internal", 5432, "owner", "listings_db", secret)
    for text in (repr(settings), str(settings), f"{settings!r}", f"{settings}", settings.describe()):
        assert secret not in text
        assert "db.internal" in text
    assert settings == PgSettings("db.internal", 5432, "owner", "listings_db", secret)
    assert settings != PgSettings("db.internal", 5432, "owner", "listings_db", "other")
    assert hash(settings) == hash(settings.with_database("listings_db"))
    assert settings.with_database("x").password == secret

    # a real pytest assertion diff of two settings that differ only in their password
    test = tmp_path / "test_diff.py"
    test.write_text(
        "import os\n"
        "from listings_common.pg import PgSettings\n"
        "def test_diff():\n"
        "    left = PgSettings('h', 1, 'u', 'd', os.environ['LEFT_SECRET'])\n"
        "    right = PgSettings('h', 1, 'u', 'd', os.environ['RIGHT_SECRET'])\n"
        "    assert left == right\n"
        "def test_diff_in_a_list():\n"
        "    assert [PgSettings('h', 1, 'u', 'd', os.environ['LEFT_SECRET'])] == []\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-vv", "-p", "no:cacheprovider", str(test)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "LEFT_SECRET": secret, "RIGHT_SECRET": secret[::-1]},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1 and output.count("AssertionError") >= 2, output
    assert "PgSettings(host='h', port=1" in output  # the diff shows the settings...
    assert secret not in output and secret[::-1] not in output, output  # ...never the password


def test_tls_settings_come_from_the_prefixed_libpq_variables():
    env = {
        "PGHOST": "target",
        "PGSSLMODE": "verify-full",
        "MONOLITH_PGHOST": "mono",
        "MONOLITH_PGUSER": "reader",
        "MONOLITH_PGDATABASE": "svetubd",
        "MONOLITH_PGSSLROOTCERT": "/etc/ssl/monolith-ca.pem",
        "MONOLITH_PGSSLMINPROTOCOLVERSION": "TLSv1.3",
    }
    assert PgSettings.from_env(env).tls_options == {"sslmode": "verify-full"}
    assert PgSettings.from_env(env, prefix="MONOLITH_PG").tls_options == {
        "sslrootcert": "/etc/ssl/monolith-ca.pem",
        "ssl_min_protocol_version": "TLSv1.3",
    }


def test_connections_speak_utf8_whatever_pgclientencoding_or_the_database_says(scratch_db, monkeypatch):
    text = "Ђорђе Шћепановић, Čačak — 10 000 дин."
    with scratch_db.connect(autocommit=True) as conn:
        conn.execute(
            sql.SQL("alter database {} set client_encoding = 'WIN1251'").format(sql.Identifier(scratch_db.dbname))
        )
    monkeypatch.setenv("PGCLIENTENCODING", "WIN1251")

    # without the pin, this environment really gives WIN1251 bytes (so the test can fail)
    with psycopg.connect(**libpq_params(scratch_db)) as raw:
        assert raw.execute("show client_encoding").fetchone()[0] == "WIN1251"
        cyrillic = "Ђорђе Шћепановић"  # WIN1251 has no Č: the control uses the Cyrillic part only
        assert raw.pgconn.exec_(f"select '{cyrillic}'".encode("cp1251")).get_value(0, 0) == cyrillic.encode("cp1251")

    with scratch_db.connect() as conn:
        assert conn.execute("show client_encoding").fetchone()[0] == "UTF8"
        assert conn.execute("select %s::text", (text,)).fetchone()[0] == text
        # the raw bytes PostgreSQL sends (what the indexer ships as is) are UTF-8
        raw_bytes = conn.pgconn.exec_(f"select '{text}'".encode()).get_value(0, 0)
        assert raw_bytes == text.encode("utf-8")


def test_connections_send_tcp_keepalives(scratch_db):
    with scratch_db.connect() as conn:
        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        try:
            if sock.family == socket.AF_UNIX:
                pytest.skip("PGHOST is a Unix socket: TCP keepalives do not apply")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 5
        finally:
            sock.close()


def test_statement_timeout_is_off_unless_asked_for(scratch_db, monkeypatch):
    monkeypatch.delenv("LISTINGS_PG_STATEMENT_TIMEOUT", raising=False)
    with psycopg.connect(**libpq_params(scratch_db)) as raw:
        server_default = raw.execute("show statement_timeout").fetchone()[0]
    with scratch_db.connect() as conn:
        assert conn.execute("show statement_timeout").fetchone()[0] == server_default == "0"
        conn.execute("select pg_sleep(0.3)")

    monkeypatch.setenv("LISTINGS_PG_STATEMENT_TIMEOUT", "100ms")
    settings = PgSettings.from_env().with_database(scratch_db.dbname)
    with settings.connect() as conn:
        assert conn.execute("show statement_timeout").fetchone()[0] == "100ms"
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("select pg_sleep(2)")
    with scratch_db.connect(statement_timeout="1min") as conn:
        assert conn.execute("show statement_timeout").fetchone()[0] == "1min"


def test_a_failed_connection_is_one_line_without_the_password():
    port = _free_port()
    secret = "s3cret-" + uuid.uuid4().hex
    with pytest.raises(ConfigError) as caught:
        PgSettings("127.0.0.1", port, "nobody", "nothing", secret).connect()
    assert secret not in str(caught.value) and "\n" not in str(caught.value)
    assert f"postgresql://nobody@127.0.0.1:{port}/nothing" in str(caught.value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- attach-monolith: TLS options, and nothing dropped that the tool did not create ------------


def fdw_cli(settings: PgSettings, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m migration ARGS` (the fdw commands): the real main(), its exit codes and one-line errors."""
    return subprocess.run(
        [sys.executable, "-m", "migration", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **pg_env(settings), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def attach_cli(target: PgSettings, monolith: PgSettings, *args: str, **env: str) -> subprocess.CompletedProcess:
    return fdw_cli(
        target,
        "attach-monolith",
        "--schema",
        "monolith_remote",
        *args,
        env=monolith_env(monolith, passfile_password(monolith), **env),
    )


def server_options(conn: psycopg.Connection) -> dict[str, str]:
    row = conn.execute("select srvoptions from pg_foreign_server where srvname = %s", (fdw.SERVER,)).fetchone()
    return dict(option.split("=", 1) for option in row[0])


@pytest.fixture
def monolith_db(scratch_db: PgSettings) -> PgSettings:
    """A scratch database holding the stand-in monolith; attach-monolith reads it from itself."""
    with scratch_db.connect(autocommit=True) as conn:
        standin.load_schema(conn)
        standin.generate(conn, c2c=3, b2c=2, dirty=False)
    return scratch_db


def test_monolith_tls_settings_fall_back_to_the_callers():
    env = {
        "PGHOST": "target",
        "PGSSLMODE": "verify-full",
        "PGSSLCRL": "/etc/ssl/target.crl",
        "MONOLITH_PGHOST": "mono",
        "MONOLITH_PGUSER": "reader",
        "MONOLITH_PGDATABASE": "svetubd",
        "MONOLITH_PGSSLROOTCERT": "/etc/ssl/monolith-ca.pem",
        "MONOLITH_PGSSLCRL": "/etc/ssl/monolith.crl",
    }
    assert fdw.monolith_settings(env).tls_options == {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ssl/monolith-ca.pem",
        "sslcrl": "/etc/ssl/monolith.crl",
    }


def test_foreign_server_gets_the_callers_tls_settings_and_uses_tls(monolith_db):
    missing = "/nonexistent/listings-migration"
    tls = {
        "MONOLITH_PGSSLROOTCERT": f"{missing}/root.crt",  # absent: fine for sslmode=require
        "MONOLITH_PGSSLCERT": f"{missing}/client.crt",
        "MONOLITH_PGSSLKEY": f"{missing}/client.key",
        "MONOLITH_PGSSLCRL": f"{missing}/root.crl",
        "MONOLITH_PGSSLMINPROTOCOLVERSION": "TLSv1.2",
        "PGSSLMODE": "require",  # the caller's, carried over (the local server has ssl = on)
    }
    result = attach_cli(monolith_db, monolith_db, **tls)
    assert result.returncode == 0, result.stderr
    with monolith_db.connect() as conn:
        assert server_options(conn) == {
            "host": monolith_db.host,
            "port": str(monolith_db.port),
            "dbname": monolith_db.dbname,
            "fetch_size": "10000",
            "sslmode": "require",
            "sslrootcert": f"{missing}/root.crt",
            "sslcert": f"{missing}/client.crt",
            "sslkey": f"{missing}/client.key",
            "sslcrl": f"{missing}/root.crl",
            "ssl_min_protocol_version": "TLSv1.2",
        }
        # the fdw connection really is TLS
        assert conn.execute("select count(*) from monolith_remote.unified_listings").fetchone()[0] == 5
        ssl = conn.execute(
            "select s.ssl, s.version from pg_stat_ssl s join pg_stat_activity a using (pid)"
            " where a.application_name = 'postgres_fdw' and a.datname = %s and a.pid <> pg_backend_pid()",
            (monolith_db.dbname,),
        ).fetchall()
        assert ssl and all(on and version in ("TLSv1.2", "TLSv1.3") for on, version in ssl), ssl

    # attached again with fewer settings: the server says what the environment says now
    del tls["MONOLITH_PGSSLCRL"]
    assert attach_cli(monolith_db, monolith_db, **tls).returncode == 0
    with monolith_db.connect() as conn:
        assert "sslcrl" not in server_options(conn) and server_options(conn)["sslmode"] == "require"


def test_verify_full_is_enforced_by_postgres_fdw(monolith_db):
    result = attach_cli(
        monolith_db,
        monolith_db,
        MONOLITH_PGSSLMODE="verify-full",
        MONOLITH_PGSSLROOTCERT="/nonexistent/listings-migration/root.crt",
    )
    assert result.returncode == 2
    line = one_line(result)
    assert "root certificate file" in line and "does not exist" in line, line
    with monolith_db.connect() as conn:  # nothing was kept
        assert conn.execute("select count(*) from pg_foreign_server").fetchone()[0] == 0


def test_attach_refuses_a_schema_holding_objects_it_did_not_create(monolith_db):
    with monolith_db.connect(autocommit=True) as conn:
        conn.execute("create schema monolith_remote")
        conn.execute("create sequence monolith_remote.invoice_numbers")
        conn.execute("create function monolith_remote.answer() returns int language sql as 'select 42'")
    result = attach_cli(monolith_db, monolith_db)
    assert result.returncode == 2
    line = one_line(result)
    assert "sequence monolith_remote.invoice_numbers" in line and "function monolith_remote.answer()" in line, line
    detached = fdw_cli(monolith_db, "detach-monolith", "--schema", "monolith_remote")
    assert detached.returncode == 2 and "invoice_numbers" in one_line(detached)
    with monolith_db.connect() as conn:
        assert conn.execute(
            "select monolith_remote.answer(), nextval('monolith_remote.invoice_numbers')"
        ).fetchone() == (
            42,
            1,
        )


def test_reattach_keeps_dependent_views_and_detach_never_cascades(monolith_db):
    assert attach_cli(monolith_db, monolith_db).returncode == 0
    with monolith_db.connect(autocommit=True) as conn:
        conn.execute("create schema reporting")
        conn.execute("create view reporting.titles as select id, title from monolith_remote.unified_listings")
        table_oid = conn.execute("select 'monolith_remote.unified_listings'::regclass::oid").fetchone()[0]

    # the view on the monolith did not change: the foreign table (and the view on it) stay
    assert attach_cli(monolith_db, monolith_db).returncode == 0, "re-attach"
    with monolith_db.connect() as conn:
        assert conn.execute("select 'monolith_remote.unified_listings'::regclass::oid").fetchone()[0] == table_oid
        assert conn.execute("select count(*) from reporting.titles").fetchone()[0] == 5

    # detach would have to drop reporting.titles: refused, nothing dropped
    detached = fdw_cli(monolith_db, "detach-monolith", "--schema", "monolith_remote")
    assert detached.returncode == 2
    assert "view reporting.titles depends on foreign table monolith_remote.unified_listings" in one_line(detached)

    # the monolith's view changed: the old foreign table cannot go while the view uses it
    with monolith_db.connect(autocommit=True) as conn:
        conn.execute("alter view monolith.unified_listings rename to unified_listings_v1")
        conn.execute("create view monolith.unified_listings as select *, 1 as extra from monolith.unified_listings_v1")
    changed = attach_cli(monolith_db, monolith_db)
    assert changed.returncode == 2 and "the monolith's view changed" in one_line(changed)
    with monolith_db.connect(autocommit=True) as conn:
        assert conn.execute("select count(*) from reporting.titles").fetchone()[0] == 5
        conn.execute("drop view reporting.titles")
    assert attach_cli(monolith_db, monolith_db).returncode == 0
    with monolith_db.connect() as conn:
        assert conn.execute("select count(extra) from monolith_remote.unified_listings").fetchone()[0] == 5

    # another role's user mapping on the server: detach refuses to drop it with the server
    other = f"other_{uuid.uuid4().hex[:10]}"
    with monolith_db.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier(other)))
        try:
            conn.execute(
                sql.SQL("create user mapping for {} server {}").format(
                    sql.Identifier(other), sql.Identifier(fdw.SERVER)
                )
            )
            detached = fdw_cli(monolith_db, "detach-monolith", "--schema", "monolith_remote")
            assert detached.returncode == 2
            assert f"user mapping for {other} on server {fdw.SERVER}" in one_line(detached)
            assert conn.execute("select count(*) from pg_user_mappings where usename = %s", (other,)).fetchone()[0] == 1
            assert conn.execute("select to_regclass('monolith_remote.unified_listings')").fetchone()[0] is not None
            conn.execute(
                sql.SQL("drop user mapping for {} server {}").format(sql.Identifier(other), sql.Identifier(fdw.SERVER))
            )
        finally:
            conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(other)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(other)))

    detached = fdw_cli(monolith_db, "detach-monolith", "--schema", "monolith_remote")
    assert detached.returncode == 0, detached.stderr
    with monolith_db.connect() as conn:
        assert conn.execute("select count(*) from pg_namespace where nspname = 'monolith_remote'").fetchone()[0] == 0
        assert conn.execute("select count(*) from pg_foreign_server").fetchone()[0] == 0


# --- attach-monolith: the password in no statement text, log or statistics ---------------------


def _pg_bindir() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if not found:
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine for a throw-away cluster")
    return Path(found).parent


class ThrowAwayCluster:
    """initdb + pg_ctl in a temporary directory, on a free port; as `postgres` when run as root."""

    def __init__(self, config: dict[str, str]) -> None:
        self.bindir = _pg_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="pg_safety_"))
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.port = _free_port()
        self.admin_password = uuid.uuid4().hex
        self.log = self.root / "server.log"
        (self.root / "pw").write_text(self.admin_password + "\n")
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.root, self.root / "pw"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        os.chmod(self.root, 0o700)
        self._run("initdb", "-D", "data", "-U", "admin", "--pwfile", "pw", "-A", "scram-sha-256", "-N", "-E", "UTF8")
        settings = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "off",
            "ssl": "off",
            **config,
        }
        with open(self.root / "data" / "postgresql.auto.conf", "a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self._run("pg_ctl", "-D", "data", "-l", str(self.log), "-w", "-t", "30", "start")
        self.admin = PgSettings("127.0.0.1", self.port, "admin", "postgres", self.admin_password)

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bindir / program), *args],
            cwd=self.root,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", "data", "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def logging_cluster() -> Iterator[ThrowAwayCluster]:
    """A cluster that keeps and logs every statement: pg_stat_statements (track = all, utility
    statements too), log_statement = all, the statement of every error, connections, and
    all debug messages."""
    cluster = ThrowAwayCluster(
        {
            "shared_preload_libraries": "'pg_stat_statements'",
            "pg_stat_statements.track": "all",
            "pg_stat_statements.track_utility": "on",
            "log_statement": "all",
            "log_min_error_statement": "info",
            "log_connections": "on",
            "log_min_messages": "debug5",  # the startup packet's options are not logged even then
        }
    )
    try:
        # the monolith (5 listings) and its reader; set-up statements are neither logged nor
        # tracked (the reader's password is in one)
        cluster.reader_password = "Mono lith'pw\\" + uuid.uuid4().hex  # a space, a quote, a backslash
        with cluster.admin.connect(autocommit=True) as conn:
            conn.execute("set log_statement = none")
            conn.execute("set pg_stat_statements.track = none")
            conn.execute(
                sql.SQL("create role migration_reader login password {}").format(sql.Literal(cluster.reader_password))
            )
            conn.execute("create database monolith")
            conn.execute("create extension pg_stat_statements")
        with cluster.admin.with_database("monolith").connect(autocommit=True) as conn:
            conn.execute("set log_statement = none")
            conn.execute("set pg_stat_statements.track = none")
            standin.load_schema(conn)
            standin.generate(conn, c2c=3, b2c=2, dirty=False)
            conn.execute("grant usage on schema monolith to migration_reader")
            conn.execute("grant select on monolith.unified_listings to migration_reader")
        cluster.monolith = PgSettings(
            "127.0.0.1", cluster.port, "migration_reader", "monolith", cluster.reader_password
        )
        yield cluster
    finally:
        cluster.stop()


def secrets_kept_or_logged(cluster: ThrowAwayCluster, *secrets: str) -> list[str]:
    """Which of `secrets` pg_stat_statements keeps or the server log holds."""
    with cluster.admin.connect() as conn:
        kept = "\n".join(row[0] for row in conn.execute("select query from pg_stat_statements").fetchall())
    log = cluster.log_text()
    return [secret for secret in secrets if secret in kept or secret in log]


def test_the_monolith_password_is_in_no_statement_text_log_or_statistics(logging_cluster):
    cluster = logging_cluster
    password = cluster.reader_password
    wrong = "wrong-" + uuid.uuid4().hex
    canary = "canary-" + uuid.uuid4().hex
    with cluster.admin.connect(autocommit=True) as conn:
        for name in ("target", "target_failing"):
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    with cluster.admin.with_database("target_failing").connect(autocommit=True) as conn:
        conn.execute("set log_statement = none")
        conn.execute(
            "create function refuse() returns event_trigger language plpgsql as"
            " $$ begin raise exception 'user mappings are frozen on this server'; end $$"
        )
        conn.execute(
            "create event trigger no_mappings on ddl_command_start when tag in ('CREATE USER MAPPING')"
            " execute function refuse()"
        )
    with cluster.admin.connect(autocommit=True) as conn:
        conn.execute("select pg_stat_statements_reset()")

    monolith = cluster.monolith
    target = cluster.admin.with_database("target")

    ok = fdw_cli(target, "attach-monolith", "--schema", "monolith_remote", env=monolith_env(monolith, password))
    assert ok.returncode == 0, ok.stderr
    assert "(5 rows)" in ok.stdout and password not in ok.stdout + ok.stderr

    bad = fdw_cli(target, "attach-monolith", "--schema", "monolith_remote", env=monolith_env(monolith, wrong))
    assert bad.returncode == 2
    assert 'password authentication failed for user "migration_reader"' in one_line(bad)
    assert wrong not in bad.stdout + bad.stderr

    refused = fdw_cli(
        cluster.admin.with_database("target_failing"),
        "attach-monolith",
        "--schema",
        "monolith_remote",
        env=monolith_env(monolith, password),
    )
    assert refused.returncode == 2
    assert "cannot create the user mapping for server monolith_server: user mappings are frozen" in one_line(refused)
    assert password not in refused.stdout + refused.stderr

    # a control: a password written into a statement is caught by both checks below
    with target.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("create role canary login password {}").format(sql.Literal(canary)))

    with cluster.admin.connect() as conn:
        kept = "\n".join(row[0] for row in conn.execute("select query from pg_stat_statements").fetchall())
    log = cluster.log_text()
    # what was attached really was tracked and logged...
    assert "create user mapping for current_user server" in kept and "import foreign schema" in kept, kept
    assert "do $attach$" in log and "import foreign schema" in log
    assert "user mappings are frozen on this server" in log
    assert 'password authentication failed for user "migration_reader"' in log
    assert canary in kept and canary in log
    # ...and no password is in either
    for secret in (password, wrong, password.replace("'", "''")):
        assert secret not in kept
        assert secret not in log


# --- scripts/postgres.sh: a cluster it did not create is never retuned or taken over ----------

POSTGRES_SH = ROOT / "scripts" / "postgres.sh"
PG_VERSION = "15"
# every program scripts/postgres.sh runs (through PATH), to record their argv
PROGRAMS = (
    *("psql", "runuser", "pg_ctlcluster", "pg_createcluster", "pg_isready", "pg_lsclusters", "apt-get"),
    *("env", "sed", "cat", "od", "tr", "mktemp", "mv", "chmod", "mkdir", "flock", "sleep", "grep", "tail"),
    *("date", "python3", "chown"),
)


def _needs_debian_root() -> None:
    if os.geteuid() != 0 or not shutil.which("pg_createcluster"):
        pytest.skip("scripts/postgres.sh manages Debian clusters as root (pg_createcluster)")
    if not Path(f"/usr/lib/postgresql/{PG_VERSION}/bin/postgres").exists():
        pytest.skip(f"PostgreSQL {PG_VERSION} server package not installed")


@pytest.fixture
def cluster_name() -> Iterator[str]:
    """A Debian cluster name nobody uses; the cluster (if any was made) is dropped afterwards."""
    _needs_debian_root()
    name = f"lmtest{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        subprocess.run(["pg_dropcluster", "--stop", PG_VERSION, name], capture_output=True, timeout=60, check=False)


class Script:
    """scripts/postgres.sh for cluster `name`, its state in a private directory, every child's argv recorded."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix="pg_safety_sh_"))
        os.chmod(self.dir, 0o755)  # the shims also run as postgres (runuser)
        self.state = self.dir / "state"
        self.argv_log = self.dir / "argv.log"
        self.argv_log.touch()
        os.chmod(self.argv_log, 0o666)
        shims = self.dir / "bin"
        shims.mkdir()
        os.chmod(shims, 0o755)
        for program in PROGRAMS:
            real = shutil.which(program)
            if real:
                shim = shims / program
                record = f'printf "%s" "{program}"; for a in "$@"; do printf " %s" "$a"; done; echo'
                shim.write_text(f'#!/bin/sh\n{{ {record}; }} >> {self.argv_log}\nexec {real} "$@"\n')
                shim.chmod(0o755)
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LISTINGS_PG"))}
        self.env = {
            **keep,
            "PATH": f"{shims}:{os.environ['PATH']}",
            "LISTINGS_PG_CLUSTER": name,
            "LISTINGS_PG_STATE_DIR": str(self.state),
        }

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(POSTGRES_SH), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    @property
    def conf_dir(self) -> Path:
        return Path(f"/etc/postgresql/{PG_VERSION}/{self.name}")

    @property
    def data_dir(self) -> Path:
        return Path(f"/var/lib/postgresql/{PG_VERSION}/{self.name}")

    def marker(self) -> str | None:
        path = self.data_dir / "listings-migration.owner"
        return path.read_text() if path.exists() else None

    def port(self) -> int:
        out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout
        return next(int(f[2]) for f in map(str.split, out.splitlines()) if f[:2] == [PG_VERSION, self.name])

    def running(self) -> bool:
        return subprocess.run(["pg_ctlcluster", PG_VERSION, self.name, "status"], capture_output=True).returncode == 0

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port(),
            user="listings",
            dbname="listings_db",
            passfile=str(self.state / "pgpass"),
            autocommit=True,
        )

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _settings(conn: psycopg.Connection) -> dict[str, str]:
    names = ("wal_level", "max_wal_senders", "synchronous_commit", "listen_addresses", "shared_buffers")
    return {name: conn.execute(f"show {name}").fetchone()[0] for name in names}


def test_postgres_sh_leaves_a_cluster_it_did_not_create_alone_unless_told_to_adopt_it(cluster_name):
    port = _free_port()
    subprocess.run(
        ["pg_createcluster", PG_VERSION, cluster_name, "--port", str(port)], capture_output=True, timeout=60, check=True
    )
    script = Script(cluster_name)
    try:
        auto_conf = Path(f"/var/lib/postgresql/{PG_VERSION}/{cluster_name}/postgresql.auto.conf")
        before = auto_conf.read_text()

        refused = script("start")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        message = refused.stderr
        assert f"found PostgreSQL cluster {PG_VERSION}/{cluster_name} (stopped, port {port}" in message
        assert "did not create" in message
        for variable in ("PGHOST=", f"PGPORT={port}", "PGUSER=", "PGPASSWORD=", "PGDATABASE="):
            assert variable in message
        assert "--adopt" in message and "LISTINGS_PG_ADOPT=1" in message
        assert not script.running() and auto_conf.read_text() == before and script.marker() is None
        assert script("stop").returncode == 0 and not script.running()

        adopted = script("start", "--adopt")
        assert adopted.returncode == 0, adopted.stderr
        assert "owner=adopted" in script.marker()
        with script.connect() as conn:
            assert _settings(conn) == {
                "wal_level": "replica",
                "max_wal_senders": "10",
                "synchronous_commit": "on",
                "listen_addresses": "localhost",
                "shared_buffers": "128MB",
            }
        assert auto_conf.read_text() == before  # no ALTER SYSTEM at all

        again = script("start")  # adopted once: later plain starts use it, still untouched
        assert again.returncode == 0, again.stderr
        assert auto_conf.read_text() == before
        assert script("stop").returncode == 0 and not script.running()
    finally:
        script.cleanup()


def test_postgres_sh_manages_a_cluster_it_created_and_never_puts_the_password_in_argv(cluster_name):
    script = Script(cluster_name)
    try:
        started = script("start")
        assert started.returncode == 0, started.stderr
        assert "owner=created" in script.marker()
        with script.connect() as conn:
            settings = _settings(conn)
            assert settings["wal_level"] == "minimal" and settings["synchronous_commit"] == "off"
            assert settings["listen_addresses"] == "localhost"
            stored = conn.execute("select rolpassword from pg_authid where rolname = 'listings'").fetchone()[0]
        assert stored.startswith("SCRAM-SHA-256$4096:")

        # set up by an older version of the script (no marker yet): recognised by its settings
        (script.data_dir / "listings-migration.owner").unlink()
        legacy = script("start")
        assert legacy.returncode == 0, legacy.stderr
        assert "carries this script's settings" in legacy.stdout and "owner=created" in script.marker()

        password = (script.state / "password").read_text().strip()
        argv = script.argv_log.read_text()
        assert "pg_createcluster 15" in argv and "psql -X" in argv  # the children were recorded...
        assert password not in argv  # ...and none got the password
        assert script("stop").returncode == 0 and not script.running()

        # the marker goes with the cluster: nothing is left to vouch for a later one of that name
        subprocess.run(["pg_dropcluster", PG_VERSION, cluster_name], capture_output=True, timeout=60, check=True)
        assert not script.conf_dir.exists() and not script.data_dir.exists()
    finally:
        script.cleanup()


def test_a_role_that_may_not_pause_statement_tracking_is_refused_before_the_password_is_used(logging_cluster):
    """The production set-up: attach-monolith as migration_owner, not a superuser (docs/runbook.md)."""
    cluster = logging_cluster
    owner_password = uuid.uuid4().hex
    with cluster.admin.connect(autocommit=True) as conn:
        conn.execute("set log_statement = none")
        conn.execute("set pg_stat_statements.track = none")
        conn.execute(sql.SQL("create role migration_owner login password {}").format(sql.Literal(owner_password)))
        conn.execute("create database target_owned owner migration_owner")
    with cluster.admin.with_database("target_owned").connect(autocommit=True) as conn:
        conn.execute("create extension postgres_fdw")
        conn.execute("grant usage on foreign data wrapper postgres_fdw to migration_owner")
    owner = PgSettings("127.0.0.1", cluster.port, "migration_owner", "target_owned", owner_password)
    args = ("attach-monolith", "--schema", "monolith_remote")
    env = monolith_env(cluster.monolith, cluster.reader_password)

    refused = fdw_cli(owner, *args, env=env)
    assert refused.returncode == 2
    assert "pg_stat_statements.track = all on the target server would keep the monolith password" in one_line(refused)

    with cluster.admin.connect(autocommit=True) as conn:  # PostgreSQL 15: a DBA may grant just that
        conn.execute("grant set on parameter pg_stat_statements.track_utility to migration_owner")
    attached = fdw_cli(owner, *args, env=env)
    assert attached.returncode == 0, attached.stderr
    assert "(5 rows)" in attached.stdout
    assert secrets_kept_or_logged(cluster, cluster.reader_password, owner_password) == []
