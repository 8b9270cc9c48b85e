"""Load the stand-in monolith (schema `monolith`) and the microservice's stand-in schema.

- `load_schema(conn)` runs monolith/schema.sql: drops and recreates schema `monolith`.
- `load_service_schema(conn)` applies microservice/schema.sql unless the service's tables exist.
- `load_example(conn)` inserts the example of the hand-run scripts (data/example.json).
- `add_dirty(conn)` inserts the dirty catalogue (data/dirty.json, see standin.data).
- `view_counts(conn)`: rows and images of monolith.unified_listings.

Each runs in `conn.transaction()`: it commits when called outside a transaction, and is
a savepoint inside one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from listings_common.errors import ConfigError
from standin import data

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_SQL = ROOT / "monolith" / "schema.sql"
SERVICE_SCHEMA_SQL = ROOT / "microservice" / "schema.sql"

# The comment on schema `monolith` that says this loader made it. It keeps the command's old
# name: databases loaded before it was renamed `listings-standin` carry this exact text, and a
# new text would make the loader refuse to reload them.
SCHEMA_MARKER = "stand-in monolith created by listings-migration fixtures"


def load_schema(
    conn: psycopg.Connection, schema_sql_path: str | Path | None = None, *, replace_foreign: bool = False
) -> None:
    """Run monolith/schema.sql: drop and recreate schema `monolith` (tables and the view).

    A `monolith` schema that these fixtures did not create (no marker comment) could be
    the real monolith: it is only dropped with replace_foreign=True. schema.sql sets
    search_path; the connection's own search_path is restored afterwards.
    """
    path = Path(schema_sql_path) if schema_sql_path is not None else SCHEMA_SQL
    try:
        ddl = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read schema file {path}: {exc.strerror}") from None
    existing = conn.execute(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = 'monolith'"
    ).fetchone()
    if existing is not None and existing[0] != SCHEMA_MARKER and not replace_foreign:
        raise ConfigError(
            "schema monolith exists and was not created by these fixtures (a real monolith?); "
            "refusing to drop it: use another database, or --replace-schema if it is disposable"
        )
    with conn.transaction():
        search_path = conn.execute("SELECT current_setting('search_path')").fetchone()[0]
        conn.execute(ddl)
        conn.execute(sql.SQL("COMMENT ON SCHEMA monolith IS {}").format(sql.Literal(SCHEMA_MARKER)))
        conn.execute("SELECT set_config('search_path', %s, false)", [search_path])


def load_service_schema(conn: psycopg.Connection, schema: str = "public") -> bool:
    """Apply the microservice stand-in (microservice/schema.sql) into `schema`, unless its
    `listings` table already exists there (then it is the service's: left as it is).
    True when it was applied."""
    if conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f'"{schema}".listings']).fetchone()[0]:
        return False
    ddl = SERVICE_SCHEMA_SQL.read_text(encoding="utf-8")
    with conn.transaction():
        search_path = conn.execute("SELECT current_setting('search_path')").fetchone()[0]
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute("SELECT set_config('search_path', %s, true)", [sql.Identifier(schema).as_string(conn)])
        conn.execute(ddl)
        conn.execute("SELECT set_config('search_path', %s, false)", [search_path])
    return True


def view_counts(conn: psycopg.Connection) -> tuple[int, int]:
    """(rows, images) of monolith.unified_listings, the figures the old scripts reported."""
    rows, images = conn.execute(
        "SELECT count(*), coalesce(sum(jsonb_array_length(images)), 0) FROM monolith.unified_listings"
    ).fetchone()
    return int(rows), int(images)


C2C_COLUMNS = [
    "id",
    "user_id",
    "category_id",
    "title",
    "description",
    "price",
    "condition",
    "status",
    "location",
    "latitude",
    "longitude",
    "address_city",
    "address_country",
    "views_count",
    "show_on_map",
    "original_language",
    "created_at",
    "updated_at",
    "external_id",
    "metadata",
    "needs_reindex",
    "address_multilingual",
]
C2C_IMAGE_COLUMNS = ["id", "listing_id", "file_path", "file_name", "public_url", "is_main", "storage_type"]
STORE_COLUMNS = ["id", "user_id", "name", "address", "latitude", "longitude", "city", "country"]
B2C_COLUMNS = [
    "id",
    "storefront_id",
    "name",
    "description",
    "price",
    "currency",
    "category_id",
    "sku",
    "barcode",
    "stock_quantity",
    "stock_status",
    "is_active",
    "attributes",
    "has_variants",
    "view_count",
    "individual_address",
    "individual_latitude",
    "individual_longitude",
    "show_on_map",
    "created_at",
    "updated_at",
]
B2C_IMAGE_COLUMNS = [
    "id",
    "storefront_product_id",
    "image_url",
    "thumbnail_url",
    "is_default",
    "display_order",
]


def _insert(conn: psycopg.Connection, table: str, columns: list[str], rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    # One multi-row INSERT: these tables get tens of rows, far below the 65535 parameter limit.
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    statement = f"INSERT INTO monolith.{table} ({', '.join(columns)}) VALUES " + ", ".join([placeholders] * len(rows))
    return conn.execute(statement, [_adapt(row[c]) for row in rows for c in columns]).rowcount


def _adapt(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, (dict, list)) else value


_TABLES = {
    "c2c_listings": ("c2c_listings", C2C_COLUMNS),
    "c2c_images": ("c2c_images", C2C_IMAGE_COLUMNS),
    "b2c_stores": ("b2c_stores", STORE_COLUMNS),
    "b2c_products": ("b2c_products", B2C_COLUMNS),
    "b2c_images": ("b2c_product_images", B2C_IMAGE_COLUMNS),
}


def _insert_all(conn: psycopg.Connection, rows: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    return {key: _insert(conn, table, columns, rows[key]) for key, (table, columns) in _TABLES.items()}


def with_totals(counts: dict[str, int]) -> dict[str, int]:
    counts["listings"] = counts["c2c_listings"] + counts["b2c_products"]
    counts["images"] = counts["c2c_images"] + counts["b2c_images"]
    return counts


def load_example(conn: psycopg.Connection) -> dict[str, int]:
    """The example of the hand-run scripts: 6 C2C listings (ids 1-6) and 4 B2C products (ids 1-4), 12 images.

    Clean rows; ids 1-4 exist on both sides, image ids 1-5 in both image tables; B2C prices
    in RSD and EUR; Serbian Latin and Cyrillic, Russian and English text.
    """
    with conn.transaction():
        counts = _insert_all(conn, data.example_rows())
    counts["dirty_cases"] = 0
    return with_totals(counts)


def add_dirty(conn: psycopg.Connection) -> dict[str, int]:
    """Insert the dirty catalogue: one C2C listing or B2C product per entry of data.DIRTY_CASES.

    Ids come from DIRTY_ID_BASE + 1 (see data.DIRTY_CASE_IDS), on both sides and in both image
    tables, so dirty C2C and B2C ids collide, and so do their image ids. Each row's
    external_id (C2C) or sku (B2C) is 'dirty:<case name>'. Two stores are added: a clean one
    and one with out-of-range coordinates.
    """
    with conn.transaction():
        counts = _insert_all(conn, data.dirty_rows())
    counts["dirty_cases"] = len(data.DIRTY_CASES)
    return with_totals(counts)
