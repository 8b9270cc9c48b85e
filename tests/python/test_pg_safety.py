"""Secrets, encodings and ownership around PostgreSQL: migration/pg.py, migration/fdw.py
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
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import pg_env
from psycopg import sql

from migration.pg import ConfigError, PgSettings

ROOT = Path(__file__).resolve().parents[2]


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
        "from migration.pg import PgSettings\n"
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
    with psycopg.connect(**_libpq_params(scratch_db)) as raw:
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
    with psycopg.connect(**_libpq_params(scratch_db)) as raw:
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


def _libpq_params(settings: PgSettings) -> dict:
    return {
        "host": settings.host,
        "port": settings.port,
        "user": settings.user,
        "dbname": settings.dbname,
        "password": settings.password,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
