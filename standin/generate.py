"""Generate the stand-in monolith's listings at any size, set-based on the server.

`generate(conn, c2c=N, b2c=M, ...)` inserts N C2C listings and M B2C products with their
stores and images: every value is derived from the row number with
`hashint8extended(n, random_state * 1000 + stream)`, so a random state always gives the same
rows (PostgreSQL keeps these hash functions stable, hash partitioning depends on them).
With `dirty=True` it also inserts the dirty catalogue (`standin.load.add_dirty`).

Ids: clean C2C listings, B2C products, stores and both image tables each count from 1, so
the same id appears on both sides, as in the monolith. The dirty rows use ids from
`DIRTY_ID_BASE + 1` on every table: they never clash with clean rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from standin.data import DIRTY_CASES, DIRTY_ID_BASE
from standin.load import add_dirty, with_totals
from standin.words import (
    BRANDS,
    CITIES,
    CITY_WEIGHTS,
    COLORS,
    CONDITION_LABEL,
    CONDITION_WORDS,
    CONDITIONS,
    DELIVERY_LINE,
    EXTRA_LINE,
    FILE_EXTENSIONS,
    IMAGE_HOST,
    ITEM_PRICES_RSD,
    ITEMS,
    LANGUAGE_CODES,
    MODEL_PREFIXES,
    MONTHS_WORD,
    PICKUP_LABEL,
    PRODUCT_LINE,
    QUALIFIERS,
    RSD_PER_EUR,
    SELL_PREFIX,
    STORE_NAMES,
    STREETS,
    WARRANTY_LABEL,
)

MAX_IMAGES_PER_LISTING = 6

# Called with one line per finished step (rows, seconds); the CLI prints them on stderr.
StepLog = Callable[[str], None]

# --------------------------------------------------------------------------------------
# SQL building helpers: literals, arrays, deterministic draws.
# --------------------------------------------------------------------------------------


def _lit(value: str) -> str:
    """A standard SQL string literal (no backslash escapes, quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _text_array(values: Sequence[str]) -> str:
    return "(ARRAY[" + ", ".join(_lit(v) for v in values) + "]::text[])"


def _float_array(values: Sequence[float]) -> str:
    return "(ARRAY[" + ", ".join(repr(float(v)) for v in values) + "]::float8[])"


def _flat(per_language: Sequence[Sequence[str]]) -> str:
    """Per-language lists of equal length as one flat text[] (index lang * length + i + 1)."""
    assert len({len(words) for words in per_language}) == 1
    return _text_array([word for words in per_language for word in words])


@dataclass(frozen=True)
class _Draws:
    """SQL expressions for pseudo-random values derived from a row number and the random state.

    `stream` numbers keep the draws of different columns independent; each generator step
    uses its own hundred (listings 1-99, C2C images 100-199, stores 200-299, ...).
    """

    random_state: int

    def h(self, stream: int, n: str = "n") -> str:
        """A non-negative 31-bit hash of `n`."""
        return f"(hashint8extended({n}, {self.random_state * 1000 + stream}) & 2147483647)"

    def mod(self, stream: int, modulo: int | str, n: str = "n") -> str:
        return f"({self.h(stream, n)} % {modulo})"

    def unit(self, stream: int, n: str = "n") -> str:
        """A float in [0, 1)."""
        return f"({self.h(stream, n)}::float8 / 2147483648.0::float8)"

    def weighted(self, stream: int, choices: Sequence[tuple[Any, int]], n: str = "n") -> str:
        """One of `choices` (value, weight): the value repeated `weight` times, indexed by hash."""
        values = [value for value, weight in choices for _ in range(weight)]
        if all(isinstance(v, str) for v in values):
            array = _text_array(values)
        else:
            array = "(ARRAY[" + ", ".join(str(int(v)) for v in values) + "]::int[])"
        return f"{array}[1 + {self.mod(stream, len(values), n)}]"

    def image_count(self, first_stream: int, p: float, n: str = "n") -> str:
        """Binomial(6, p) as a sum of six independent draws: 0..6 images, mean 6p."""
        terms = [f"({self.unit(first_stream + j, n)} < {p!r})::int" for j in range(MAX_IMAGES_PER_LISTING)]
        return "(" + " + ".join(terms) + ")"


def _city_sql() -> dict[str, str]:
    latin, cyrillic, english, lat, lon = zip(*CITIES, strict=True)
    return {
        "latin": _text_array(latin),
        "cyrillic": _text_array(cyrillic),
        "english": _text_array(english),
        "lat": _float_array(lat),
        "lon": _float_array(lon),
    }


# created_at is spread over 2023-01-01 .. 2025-10-28 (89,000,000 s); updated_at lies between
# created_at and the end of the window.
_TIME_SPAN_SECONDS = 89_000_000
_TIME_END = "2025-10-31 23:59:59"


def _c2c_listings_sql(d: _Draws, count: int, users: int) -> str:
    city = _city_sql()
    items, n_items = _flat(ITEMS), len(ITEMS[0])
    quals, n_quals = _flat(QUALIFIERS), len(QUALIFIERS[0])
    conds, n_conds = _flat(CONDITION_WORDS), len(CONDITIONS)
    return f"""
INSERT INTO monolith.c2c_listings (
    id, user_id, category_id, title, description, price, condition, status, location,
    latitude, longitude, address_city, address_country, views_count, show_on_map,
    original_language, created_at, updated_at, external_id, metadata, needs_reindex,
    address_multilingual)
SELECT
    n, user_id, 1001 + item, title,
    {_text_array(SELL_PREFIX)}[1 + lang] || item_name || ' ' || brand || ', ' || qualifier || '.'
        || E'\\n' || {_text_array(CONDITION_LABEL)}[1 + lang]
        || CASE WHEN tab_roll = 0 THEN ' ' ELSE E'\\t' END || condition_word
        || E'\\n' || {_text_array(PICKUP_LABEL)}[1 + lang] || city_name
        || CASE WHEN extra_roll = 0 THEN E'\\n' || {_text_array(EXTRA_LINE)}[1 + lang] ELSE '' END,
    CASE WHEN price_roll < 7 THEN round(price_raw::numeric, -2) ELSE round(price_raw::numeric, 2) END,
    {_text_array(CONDITIONS)}[1 + cond], status,
    CASE WHEN street_roll = 0 THEN city_name ELSE street || ' ' || house || ', ' || city_name END,
    round(({city["lat"]}[1 + city] + (lat_u - 0.5) * 0.08)::numeric, 6),
    round(({city["lon"]}[1 + city] + (lon_u - 0.5) * 0.10)::numeric, 6),
    city_name,
    CASE WHEN country_roll < (CASE WHEN lang IN (1, 2) THEN 3 ELSE 1 END) THEN 'Србија' ELSE 'Serbia' END,
    (floor(exp(views_u * 8.5)) - 1)::int, map_roll <> 0,
    {_text_array(LANGUAGE_CODES)}[1 + lang],
    created_at,
    CASE WHEN updated_roll < 35 THEN created_at
         ELSE created_at + (timestamp '{_TIME_END}' - created_at) * updated_u END,
    CASE WHEN external_roll < 5 THEN 'import-' || lpad(n::text, 8, '0') END,
    CASE WHEN meta_roll < 70 THEN NULL
         WHEN meta_roll < 88 THEN jsonb_build_object('source', 'web')
         WHEN meta_roll < 98 THEN jsonb_build_object('source', 'mobile_app', 'app_version', '3.' || app_minor || '.0')
         WHEN meta_roll < 99 THEN jsonb_build_object('source', 'web', 'promoted', true)
         ELSE jsonb_build_object('source', 'web', 'currency', 'RSD') END,
    reindex_roll < 3,
    CASE WHEN multilingual_roll < 25 THEN jsonb_build_object(
        'sr', {city["cyrillic"]}[1 + city], 'sr-Latn', {city["latin"]}[1 + city], 'en', {city["english"]}[1 + city])
    END
FROM (
    SELECT *,
        item_name || ' ' || brand || ' – ' || qualifier AS title,
        CASE WHEN lang IN (1, 2) THEN {city["cyrillic"]}[1 + city] ELSE {city["latin"]}[1 + city] END AS city_name,
        {_flat(STREETS)}[1 + (CASE WHEN lang IN (1, 2) THEN {len(STREETS[0])} ELSE 0 END) + street_index] AS street,
        timestamp '2023-01-01 00:00:00' + created_s * interval '1 second'
            + created_us * interval '1 microsecond' AS created_at
    FROM (
        SELECT *,
            {items}[1 + lang * {n_items} + item] AS item_name,
            {_text_array(BRANDS)}[1 + item * 2 + brand_index] AS brand,
            {quals}[1 + lang * {n_quals} + qualifier_index] AS qualifier,
            {conds}[1 + lang * {n_conds} + cond] AS condition_word
        FROM (
            SELECT n,
                {d.weighted(1, [(0, 8), (1, 4), (2, 3), (3, 5)])} AS lang,
                {d.weighted(2, list(enumerate(CITY_WEIGHTS)))} AS city,
                {d.mod(3, n_items)} AS item,
                {d.mod(4, 2)} AS brand_index,
                {d.mod(5, n_quals)} AS qualifier_index,
                {d.weighted(6, [(1, 55), (2, 20), (0, 15), (3, 10)])} AS cond,
                {d.weighted(7, [("active", 80), ("sold", 8), ("inactive", 6), ("draft", 4), ("archived", 2)])}
                    AS status,
                {_float_array(ITEM_PRICES_RSD)}[1 + {d.mod(3, n_items)}] * exp(({d.unit(8)} - 0.5) * 2.4)
                    AS price_raw,
                {d.mod(9, 10)} AS price_roll,
                {d.unit(10)} AS lat_u,
                {d.unit(11)} AS lon_u,
                {d.mod(12, _TIME_SPAN_SECONDS)} AS created_s,
                {d.mod(13, 1_000_000)} AS created_us,
                {d.mod(14, 100)} AS updated_roll,
                {d.unit(15)} AS updated_u,
                {d.unit(16)} AS views_u,
                {d.mod(17, 10)} AS map_roll,
                {d.mod(18, 100)} AS meta_roll,
                {d.mod(19, 100)} AS reindex_roll,
                {d.mod(20, 100)} AS multilingual_roll,
                1 + {d.mod(21, users)} AS user_id,
                {d.mod(22, 8)} AS street_index,
                1 + {d.mod(23, 120)} AS house,
                {d.mod(24, 5)} AS street_roll,
                {d.mod(25, 3)} AS tab_roll,
                {d.mod(26, 2)} AS extra_roll,
                {d.mod(27, 4)} AS country_roll,
                {d.mod(28, 100)} AS external_roll,
                {d.mod(29, 10)} AS app_minor
            FROM generate_series(1, {count}) AS g (n)
            OFFSET 0
        ) AS draws
        OFFSET 0
    ) AS words
    OFFSET 0
) AS listing
"""


def _c2c_images_sql(d: _Draws, count: int, p: float) -> str:
    return f"""
INSERT INTO monolith.c2c_images (id, listing_id, file_path, file_name, public_url, is_main, storage_type)
SELECT id, listing_id, 'listings/' || listing_id || '/' || file_name, file_name,
    '{IMAGE_HOST}/listings/' || listing_id || '/' || file_name, is_main, 'minio'
FROM (
    SELECT (first_id + j)::int AS id, n AS listing_id, j = main_j AS is_main,
        md5('{d.random_state}:c2c:' || (first_id + j))
            || {d.weighted(103, FILE_EXTENSIONS, "j + first_id")} AS file_name
    FROM (
        SELECT n, k, 1 + {d.mod(102, "k")} AS main_j, sum(k) OVER (ORDER BY n) - k AS first_id
        FROM (
            SELECT n, {d.image_count(110, p)} AS k FROM generate_series(1, {count}) AS g (n) OFFSET 0
        ) AS counted
        WHERE k > 0
    ) AS listing
    CROSS JOIN LATERAL generate_series(1, listing.k) AS j
    OFFSET 0
) AS image
"""


def _stores_sql(d: _Draws, count: int, users: int) -> str:
    city = _city_sql()
    return f"""
INSERT INTO monolith.b2c_stores (id, user_id, name, address, latitude, longitude, city, country)
SELECT n, user_id, {_text_array(STORE_NAMES)}[1 + name_index] || ' ' || city_name,
    {_flat(STREETS)}[1 + script * {len(STREETS[0])} + street_index] || ' ' || house || ', ' || city_name,
    round(({city["lat"]}[1 + city] + (lat_u - 0.5) * 0.06)::numeric, 6),
    round(({city["lon"]}[1 + city] + (lon_u - 0.5) * 0.08)::numeric, 6),
    city_name, CASE WHEN country_roll = 0 THEN 'Србија' ELSE 'Serbia' END
FROM (
    SELECT *, CASE WHEN script = 1 THEN {city["cyrillic"]}[1 + city] ELSE {city["latin"]}[1 + city] END AS city_name
    FROM (
        SELECT n,
            1 + {d.mod(201, users)} AS user_id,
            {d.mod(202, len(STORE_NAMES))} AS name_index,
            {d.weighted(203, list(enumerate(CITY_WEIGHTS)))} AS city,
            {d.mod(204, 2)} AS script,
            {d.mod(205, 8)} AS street_index,
            1 + {d.mod(206, 150)} AS house,
            {d.unit(207)} AS lat_u,
            {d.unit(208)} AS lon_u,
            {d.mod(209, 5)} AS country_roll
        FROM generate_series(1, {count}) AS g (n)
        OFFSET 0
    ) AS draws
    OFFSET 0
) AS store
"""


def _store_of(product: str, products: int, stores: int) -> str:
    """Stores own consecutive blocks of products (about products / stores each)."""
    return f"(1 + (({product}::bigint - 1) * {stores}) / {products})::int"


def _b2c_products_sql(d: _Draws, count: int, stores: int) -> str:
    items, n_items = _flat(ITEMS), len(ITEMS[0])
    return f"""
INSERT INTO monolith.b2c_products (
    id, storefront_id, name, description, price, currency, category_id, sku, barcode,
    stock_quantity, stock_status, is_active, attributes, has_variants, view_count,
    individual_address, individual_latitude, individual_longitude, show_on_map,
    created_at, updated_at)
SELECT
    n, store_id,
    item_name || ' ' || brand || ' ' || {_text_array(MODEL_PREFIXES)}[1 + model_prefix] || model_number,
    {_text_array(PRODUCT_LINE)}[1 + lang]
        || E'\\n' || {_text_array(WARRANTY_LABEL)}[1 + lang] || E'\\t' || warranty
        || {_text_array(MONTHS_WORD)}[1 + lang]
        || E'\\n' || {_text_array(DELIVERY_LINE)}[1 + lang],
    CASE WHEN currency = 'EUR' THEN round((price_raw / {RSD_PER_EUR!r})::numeric, 0) - 0.01
         ELSE round((price_raw / 10)::numeric, 0) * 10 - 0.01 END,
    currency, 1001 + item,
    'SKU-' || lpad(store_id::text, 6, '0') || '-' || lpad(n::text, 8, '0'),
    CASE WHEN barcode_roll <> 0 THEN '860' || lpad(barcode_number::text, 10, '0') END,
    stock, CASE WHEN stock = 0 THEN 'out_of_stock' WHEN stock < 5 THEN 'low_stock' ELSE 'in_stock' END,
    active_roll <> 0,
    jsonb_build_object('color', {_text_array(COLORS)}[1 + color], 'warranty_months', warranty),
    variants_roll = 0,
    (floor(exp(views_u * 9.0)) - 1)::int,
    CASE WHEN override_roll = 0 THEN {_text_array(STREETS[0])}[1 + street_index] || ' ' || house || ', ' || s.city END,
    CASE WHEN override_roll = 0 THEN round(s.latitude + ((lat_u - 0.5) * 0.02)::numeric, 6) END,
    CASE WHEN override_roll = 0 THEN round(s.longitude + ((lon_u - 0.5) * 0.02)::numeric, 6) END,
    CASE WHEN map_roll < 17 THEN NULL WHEN map_roll < 19 THEN true ELSE false END,
    created_at,
    CASE WHEN updated_roll < 30 THEN created_at
         ELSE created_at + (timestamptz '{_TIME_END}+00' - created_at) * updated_u END
FROM (
    SELECT *,
        {items}[1 + lang * {n_items} + item] AS item_name,
        {_text_array(BRANDS)}[1 + item * 2 + brand_index] AS brand,
        timestamptz '2023-01-01 00:00:00+00' + created_s * interval '1 second'
            + created_us * interval '1 microsecond' AS created_at
    FROM (
        SELECT n,
            {_store_of("n", count, stores)} AS store_id,
            {d.weighted(301, [(0, 12), (1, 5), (2, 1), (3, 2)])} AS lang,
            {d.mod(302, n_items)} AS item,
            {d.mod(303, 2)} AS brand_index,
            {d.mod(304, len(MODEL_PREFIXES))} AS model_prefix,
            100 + {d.mod(305, 900)} AS model_number,
            {d.weighted(306, [("RSD", 17), ("EUR", 3)])} AS currency,
            {_float_array(ITEM_PRICES_RSD)}[1 + {d.mod(302, n_items)}] * exp(({d.unit(307)} - 0.5) * 2.4)
                AS price_raw,
            {d.mod(308, 10)} AS barcode_roll,
            {d.mod(309, 1_000_000_000)} AS barcode_number,
            CASE WHEN {d.mod(310, 12)} = 0 THEN 0 ELSE 1 + {d.mod(311, 120)} END AS stock,
            {d.mod(312, 14)} AS active_roll,
            {d.mod(313, len(COLORS))} AS color,
            {d.weighted(314, [(12, 3), (24, 5), (36, 1), (60, 1)])} AS warranty,
            {d.mod(315, 10)} AS variants_roll,
            {d.unit(316)} AS views_u,
            {d.mod(317, 50)} AS override_roll,
            {d.mod(318, 8)} AS street_index,
            1 + {d.mod(319, 150)} AS house,
            {d.unit(320)} AS lat_u,
            {d.unit(321)} AS lon_u,
            {d.mod(322, 20)} AS map_roll,
            {d.mod(323, _TIME_SPAN_SECONDS)} AS created_s,
            {d.mod(324, 1_000_000)} AS created_us,
            {d.mod(325, 100)} AS updated_roll,
            {d.unit(326)} AS updated_u
        FROM generate_series(1, {count}) AS g (n)
        OFFSET 0
    ) AS draws
    OFFSET 0
) AS product
JOIN monolith.b2c_stores AS s ON s.id = product.store_id
"""


def _b2c_images_sql(d: _Draws, count: int, stores: int, p: float) -> str:
    return f"""
INSERT INTO monolith.b2c_product_images (id, storefront_product_id, image_url, thumbnail_url, is_default, display_order)
SELECT id, n, base || '.webp', base || '_thumb.webp', j = default_j, j - 1
FROM (
    SELECT (first_id + j)::int AS id, n, j, default_j,
        '{IMAGE_HOST}/storefront-products/' || {_store_of("n", count, stores)} || '/' || n || '/'
            || md5('{d.random_state}:b2c:' || (first_id + j)) AS base
    FROM (
        SELECT n, k, sum(k) OVER (ORDER BY n) - k AS first_id,
            CASE WHEN {d.mod(402, 5)} = 0 THEN 1 + {d.mod(403, "k")} ELSE 1 END AS default_j
        FROM (
            SELECT n, {d.image_count(410, p)} AS k FROM generate_series(1, {count}) AS g (n) OFFSET 0
        ) AS counted
        WHERE k > 0
    ) AS product
    CROSS JOIN LATERAL generate_series(1, product.k) AS j
    OFFSET 0
) AS image
"""


def generate(
    conn: psycopg.Connection,
    *,
    c2c: int,
    b2c: int,
    stores: int | None = None,
    images_per_listing: float = 2.17,
    dirty: bool = False,
    random_state: int = 42,
    log: StepLog | None = None,
) -> dict[str, int]:
    """Insert `c2c` C2C listings and `b2c` B2C products (ids from 1) with images, then ANALYZE.

    stores: B2C stores, default one per three products. images_per_listing: the mean number
    of images per listing and per product (each has 0..6). dirty: also insert the dirty
    catalogue (`add_dirty`). The same arguments always give the same rows. The monolith
    tables must be empty (call `load_schema` first). Returns the row counts inserted.
    """
    _check_int("c2c", c2c, 0, DIRTY_ID_BASE // MAX_IMAGES_PER_LISTING)
    _check_int("b2c", b2c, 0, DIRTY_ID_BASE // MAX_IMAGES_PER_LISTING)
    if stores is None:
        stores = math.ceil(b2c / 3)
    _check_int("stores", stores, 1 if b2c else 0, max(b2c, 1))
    _check_int("random_state", random_state, -(2**40), 2**40)
    if isinstance(images_per_listing, bool) or not 0 <= images_per_listing <= MAX_IMAGES_PER_LISTING:
        raise ValueError(f"images_per_listing must be between 0 and {MAX_IMAGES_PER_LISTING}")
    p = float(images_per_listing) / MAX_IMAGES_PER_LISTING
    draws = _Draws(random_state)
    users = max(100, c2c // 4)
    steps = [
        ("c2c_listings", _c2c_listings_sql(draws, c2c, users) if c2c else None),
        ("c2c_images", _c2c_images_sql(draws, c2c, p) if c2c else None),
        ("b2c_stores", _stores_sql(draws, stores, users + stores) if stores else None),
        ("b2c_products", _b2c_products_sql(draws, b2c, stores) if b2c else None),
        ("b2c_images", _b2c_images_sql(draws, b2c, stores, p) if b2c else None),
    ]
    counts = dict.fromkeys([name for name, _ in steps], 0)
    with conn.transaction():
        _require_empty(conn)
        conn.execute("SET LOCAL work_mem = '256MB'")
        # Row-by-row foreign-key triggers would double the load time: drop the monolith's
        # foreign keys, load, and add them back as they were (one validating join each).
        foreign_keys = conn.execute(_FOREIGN_KEYS_SQL).fetchall()
        for table, name, _definition in foreign_keys:
            conn.execute(f"ALTER TABLE monolith.{table} DROP CONSTRAINT {name}")
        for name, statement in steps:
            if statement is None:
                continue
            started = time.monotonic()
            counts[name] = conn.execute(statement).rowcount
            _report(log, f"{name}: {counts[name]} rows in {time.monotonic() - started:.1f} s")
        if dirty:
            dirty_counts = add_dirty(conn)
            for key in ("c2c_listings", "c2c_images", "b2c_stores", "b2c_products", "b2c_images"):
                counts[key] += dirty_counts[key]
            counts["dirty_cases"] = dirty_counts["dirty_cases"]
            _report(log, f"dirty catalogue: {len(DIRTY_CASES)} cases")
        started = time.monotonic()
        for table, name, definition in foreign_keys:
            conn.execute(f"ALTER TABLE monolith.{table} ADD CONSTRAINT {name} {definition}")
        _report(log, f"foreign keys checked in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        conn.execute(
            "ANALYZE monolith.c2c_listings, monolith.c2c_images, monolith.b2c_stores,"
            " monolith.b2c_products, monolith.b2c_product_images"
        )
        _report(log, f"analyze: {time.monotonic() - started:.1f} s")
    counts.setdefault("dirty_cases", 0)
    return with_totals(counts)


_FOREIGN_KEYS_SQL = """
SELECT quote_ident(c.relname), quote_ident(k.conname), pg_get_constraintdef(k.oid)
FROM pg_constraint AS k
JOIN pg_class AS c ON c.oid = k.conrelid
WHERE k.contype = 'f' AND c.relnamespace = 'monolith'::regnamespace
ORDER BY c.relname, k.conname
"""


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer between {low} and {high}, got {value!r}")


def _require_empty(conn: psycopg.Connection) -> None:
    busy = conn.execute(
        "SELECT EXISTS (SELECT FROM monolith.c2c_listings) OR EXISTS (SELECT FROM monolith.b2c_products)"
        " OR EXISTS (SELECT FROM monolith.b2c_stores)"
    ).fetchone()[0]
    if busy:
        raise ValueError("the monolith tables already hold rows: load the schema first")


def _report(log: StepLog | None, message: str) -> None:
    if log is not None:
        log(message)
