"""The dbt project's settings that the Python tools must agree with.

Read from dbt_project.yml so that a var changed there (the UUID namespace, the
B2C id offset, the schema of the monolith view) is the one place to change it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ProjectSettings:
    target_schema: str
    monolith_schema: str
    uuid_namespace: str
    b2c_id_offset: int
    service_schema: str
    monolith_time_zone: str


def load(root: Path = ROOT) -> ProjectSettings:
    variables = yaml.safe_load((root / "dbt_project.yml").read_text())["vars"]
    return ProjectSettings(
        target_schema=os.environ.get("LISTINGS_SCHEMA") or "public",
        # dbt_project.yml reads the same variable with the same default.
        monolith_schema=os.environ.get("MONOLITH_SCHEMA") or "monolith",
        uuid_namespace=variables["listing_uuid_namespace"],
        b2c_id_offset=int(variables["b2c_id_offset"]),
        service_schema=os.environ.get("SERVICE_SCHEMA") or os.environ.get("LISTINGS_SCHEMA") or "public",
        monolith_time_zone=os.environ.get("MONOLITH_TIME_ZONE") or variables.get("monolith_time_zone") or "UTC",
    )
