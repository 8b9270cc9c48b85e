"""PostgreSQL connection settings, read from the libpq environment variables.

One place for the PG* defaults that `profiles.yml.example` also uses, so dbt and
the Python tools always talk to the same database. Passwords are never printed:
`describe()` shows only where we connect.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg

DEFAULTS = {
    "PGHOST": "localhost",
    "PGPORT": "5432",
    "PGUSER": "postgres",
    "PGDATABASE": "listings_db",
}


class ConfigError(Exception):
    """A setting the user must fix; reported as one line."""


@dataclass(frozen=True)
class PgSettings:
    host: str
    port: int
    user: str
    dbname: str
    password: str | None = None

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
        return cls(host=host, port=port_number, user=user, dbname=dbname, password=get("PASSWORD"))

    def with_database(self, dbname: str) -> PgSettings:
        return PgSettings(self.host, self.port, self.user, dbname, self.password)

    def describe(self) -> str:
        """Where we connect, without the password."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect(self, **kwargs) -> psycopg.Connection:
        """Open a connection; a failure becomes a one-line ConfigError."""
        try:
            return psycopg.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                dbname=self.dbname,
                password=self.password,
                connect_timeout=10,
                options="-c TimeZone=UTC",
                **kwargs,
            )
        except psycopg.OperationalError as exc:
            reason = " ".join(str(exc).split()) or exc.__class__.__name__
            raise ConfigError(f"cannot connect to {self.describe()}: {reason}") from None
