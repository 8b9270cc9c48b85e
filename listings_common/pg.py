"""PostgreSQL connection settings, read from the libpq environment variables.

One place for the PG* defaults that `profiles.yml.example` also uses, so dbt and
the Python tools always talk to the same database. Passwords are never printed:
`describe()` shows only where we connect, and neither repr() nor str() of the
settings (nor a pytest assertion diff of them) contains the password.

Every connection `connect()` opens:
  * speaks UTF-8 (client_encoding=UTF8 in the startup packet, so PGCLIENTENCODING
    or a role's or database's client_encoding cannot turn text into other bytes);
  * runs in UTC (TimeZone=UTC);
  * sends TCP keepalives (a dead peer is noticed in about a minute instead of
    hanging on a half-open connection for the kernel's two hours);
  * has no statement timeout of its own unless one is asked for
    (LISTINGS_PG_STATEMENT_TIMEOUT, e.g. "30min", or `statement_timeout=`).
The TLS settings (PGSSLMODE, PGSSLROOTCERT, ... or MONOLITH_PGSSLMODE, ... with a
prefix) are carried in `tls`, so a prefixed server is reached the way its
variables say and postgres_fdw can be given the same options.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg

from listings_common.errors import ConfigError

DEFAULTS = {
    "PGHOST": "localhost",
    "PGPORT": "5432",
    "PGUSER": "postgres",
    "PGDATABASE": "listings_db",
}

# libpq's TLS (and transport security) environment variables, without the "PG"
# prefix, and the connection keyword each one sets.
TLS_VARIABLES = {
    "SSLMODE": "sslmode",
    "SSLROOTCERT": "sslrootcert",
    "SSLCERT": "sslcert",
    "SSLKEY": "sslkey",
    "SSLCRL": "sslcrl",
    "SSLCRLDIR": "sslcrldir",
    "SSLSNI": "sslsni",
    "SSLCOMPRESSION": "sslcompression",
    "SSLMINPROTOCOLVERSION": "ssl_min_protocol_version",
    "SSLMAXPROTOCOLVERSION": "ssl_max_protocol_version",
    "REQUIREPEER": "requirepeer",
    "GSSENCMODE": "gssencmode",
    "CHANNELBINDING": "channel_binding",
}

# TCP keepalives: first probe after 30 s idle, then every 10 s, dead after 5 lost
# probes; unacknowledged data is given up on after 2 minutes. Ignored on Unix sockets.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 5,
    "tcp_user_timeout": 120_000,
}

STATEMENT_TIMEOUT_VARIABLE = "LISTINGS_PG_STATEMENT_TIMEOUT"


@dataclass(frozen=True)
class PgSettings:
    host: str
    port: int
    user: str
    dbname: str
    password: str | None = field(default=None, repr=False)
    # (libpq keyword, value) pairs: sslmode, sslrootcert, ... (see TLS_VARIABLES)
    tls: tuple[tuple[str, str], ...] = ()
    # e.g. "30min"; None: the server's (role's, database's) setting stays in force
    statement_timeout: str | None = None

    def __eq__(self, other: object) -> bool:
        # Written out (not generated) so that pytest, seeing a hand-written __eq__,
        # shows only the reprs in an assertion diff and never drills into fields.
        if other.__class__ is not self.__class__:
            return NotImplemented
        return dataclasses.astuple(self) == dataclasses.astuple(other)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, prefix: str = "PG") -> PgSettings:
        """Settings from PGHOST/PGPORT/... (or e.g. MONOLITH_PGHOST/... with a prefix)."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(prefix + name)
            if value in (None, "") and prefix == "PG":
                return DEFAULTS.get("PG" + name)
            return value or None

        port = get("PORT") or "5432"
        try:
            port_number = int(port)
        except ValueError:
            raise ConfigError(f"{prefix}PORT must be a number, got {port!r}") from None
        host, user, dbname = get("HOST"), get("USER"), get("DATABASE")
        missing = [prefix + n for n, v in (("HOST", host), ("USER", user), ("DATABASE", dbname)) if not v]
        if missing:
            raise ConfigError("missing setting(s): " + ", ".join(missing))
        tls = tuple((keyword, value) for name, keyword in TLS_VARIABLES.items() if (value := get(name)))
        timeout = (env.get(STATEMENT_TIMEOUT_VARIABLE) or None) if prefix == "PG" else None
        return cls(
            host=host,
            port=port_number,
            user=user,
            dbname=dbname,
            password=get("PASSWORD"),
            tls=tls,
            statement_timeout=timeout,
        )

    def with_database(self, dbname: str) -> PgSettings:
        return dataclasses.replace(self, dbname=dbname)

    @property
    def tls_options(self) -> dict[str, str]:
        """The TLS settings as libpq connection keywords (what postgres_fdw's server options take)."""
        return dict(self.tls)

    def describe(self) -> str:
        """Where we connect, without the password."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect(
        self, *, options: str | None = None, statement_timeout: str | None = None, **kwargs
    ) -> psycopg.Connection:
        """Open a connection; a failure becomes a one-line ConfigError.

        `options` is appended to the fixed startup options (libpq's `options`:
        "-c name=value ..."); `statement_timeout` overrides the settings' own;
        other keyword arguments (autocommit, application_name, keepalives_idle, ...)
        go to psycopg.connect and win over the defaults above.
        """
        timeout = statement_timeout or self.statement_timeout
        startup = ["-c TimeZone=UTC"]
        if timeout:
            startup.append("-c statement_timeout=" + escape_option(timeout))
        if options:
            startup.append(options)
        params = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": self.dbname,
            "password": self.password,
            "connect_timeout": 10,
            "client_encoding": "UTF8",
            **KEEPALIVES,
            **self.tls_options,
            **kwargs,
            "options": " ".join(startup),
        }
        try:
            return psycopg.connect(**params)
        except psycopg.OperationalError as exc:
            # libpq reports each attempt (e.g. with TLS, then without): the same failure twice says no more
            attempts: dict[str, str] = {}
            for line in str(exc).splitlines():
                line = " ".join(line.split())
                if line:
                    attempts.setdefault(line.removeprefix("connection failed: "), line)
            reason = " ".join(attempts.values()) or exc.__class__.__name__
            if self.password:
                reason = reason.replace(self.password, "***")
            raise ConfigError(f"cannot connect to {self.describe()}: {reason}") from None


def escape_option(value: str) -> str:
    """A value for libpq's `options` ("-c name=value"): backslash and whitespace escaped."""
    return "".join("\\" + char if char == "\\" or char.isspace() else char for char in value)
