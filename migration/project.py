"""The dbt project's settings that the Python tools must agree with.

Read from dbt_project.yml so that a var changed there (the UUID namespace, the
B2C id offset, the schema of the monolith view) is the one place to change it.
The commands that act on a build (publish, report) take its schema from where dbt
built (`target_schema`: --schema, LISTINGS_SCHEMA, or the one build ledger in the
database) and its policy from what the build recorded, not from this file: a
profiles.yml `schema:` or a `dbt build --vars ...` is what they follow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
import yaml

from listings_common.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


LEDGER_SUFFIX = "_migration"


@dataclass(frozen=True)
class ProjectSettings:
    target_schema: str | None  # None: not given (find it with `target_schema`)
    monolith_schema: str
    uuid_namespace: str
    b2c_id_offset: int
    service_schema: str
    monolith_time_zone: str


def load(root: Path = ROOT) -> ProjectSettings:
    variables = yaml.safe_load((root / "dbt_project.yml").read_text())["vars"]
    return ProjectSettings(
        target_schema=os.environ.get("LISTINGS_SCHEMA") or None,
        # dbt_project.yml reads the same variable with the same default.
        monolith_schema=os.environ.get("MONOLITH_SCHEMA") or "monolith",
        uuid_namespace=variables["listing_uuid_namespace"],
        b2c_id_offset=int(variables["b2c_id_offset"]),
        service_schema=os.environ.get("SERVICE_SCHEMA") or os.environ.get("LISTINGS_SCHEMA") or "public",
        monolith_time_zone=os.environ.get("MONOLITH_TIME_ZONE") or variables.get("monolith_time_zone") or "UTC",
    )


def target_schema(conn: psycopg.Connection, explicit: str | None) -> str:
    """The dbt target schema to act on: `explicit` (--schema or LISTINGS_SCHEMA) if given; else
    the one schema here whose `<schema>_migration.dbt_builds` ledger a build wrote (whatever
    the profile's `schema:` said); else "public", the profile example's default. Several
    ledgers and no choice is a ConfigError naming them."""
    if explicit:
        return explicit
    found = [
        name[: -len(LEDGER_SUFFIX)]
        for (name,) in conn.execute(
            "select n.nspname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where c.relname = 'dbt_builds' and c.relkind in ('r', 'p') and n.nspname like %s order by 1",
            ("%" + LEDGER_SUFFIX,),
        )
    ]
    if len(found) > 1:
        raise ConfigError(
            f"dbt has built into {len(found)} schemas of this database ({', '.join(found)}):"
            " say which with --schema or LISTINGS_SCHEMA"
        )
    return found[0] if found else "public"
