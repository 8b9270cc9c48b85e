"""Fill the stand-in monolith (schema `monolith`) with realistic listings, at any size.

Three entry points, all writing through an open psycopg connection:

- `load_schema(conn)` runs monolith/schema.sql: drops and recreates schema `monolith`.
- `seed_example(conn)` inserts the seed's example: 10 listings (6 C2C, 4 B2C), 12 images.
- `generate(conn, c2c=N, b2c=M, ...)` inserts N C2C listings and M B2C products with their
  stores and images, set-based on the server: every value is derived from the row number
  with `hashint8extended(n, seed * 1000 + stream)`, so a seed always gives the same rows
  (PostgreSQL keeps these hash functions stable, hash partitioning depends on them).
  With `dirty=True` it also inserts the dirty catalogue (`DIRTY_CASES`, see `add_dirty`).

Ids: clean C2C listings, B2C products, stores and both image tables each count from 1, so
the same id appears on both sides, as in the monolith. The dirty rows use ids from
`DIRTY_ID_BASE + 1` on every table: they never clash with clean rows, and dirty C2C ids,
B2C ids and image ids collide with each other in the same way.

Each function runs in `conn.transaction()`: it commits when called outside a transaction,
and is a savepoint inside one. The CLI is `python -m migration fixtures --help`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from migration.pg import ConfigError, PgSettings

SCHEMA_SQL = Path(__file__).resolve().parent.parent / "monolith" / "schema.sql"
SERVICE_SCHEMA_SQL = Path(__file__).resolve().parent.parent / "microservice" / "schema.sql"

# Dirty rows (and their stores and images) take ids from DIRTY_ID_BASE + 1 upwards.
DIRTY_ID_BASE = 900_000_000
MAX_IMAGES_PER_LISTING = 6

Progress = Callable[[str], None]

# --------------------------------------------------------------------------------------
# Word lists. Languages: 0 = Serbian Latin, 1 = Serbian Cyrillic, 2 = Russian, 3 = English.
# Lists indexed by language have one entry per language, in that order.
# --------------------------------------------------------------------------------------

LANGUAGE_CODES = ["sr", "sr", "ru", "en"]


def _words(text: str) -> list[str]:
    """Word lists written compactly: entries separated by '|'."""
    return [word.strip() for word in text.split("|")]


ITEMS = [
    _words(
        "Bicikl | Mobilni telefon | Laptop | Frižider | Veš mašina | Kauč | Trpezarijski sto | Dečja kolica"
        " | Zimske gume | Gitara | Fotoaparat | Televizor | Patike | Jakna | Usisivač | Radni sto"
    ),
    _words(
        "Бицикл | Мобилни телефон | Лаптоп | Фрижидер | Веш машина | Кауч | Трпезаријски сто | Дечја колица"
        " | Зимске гуме | Гитара | Фотоапарат | Телевизор | Патике | Јакна | Усисивач | Радни сто"
    ),
    _words(
        "Велосипед | Мобильный телефон | Ноутбук | Холодильник | Стиральная машина | Диван | Обеденный стол"
        " | Детская коляска | Зимние шины | Гитара | Фотоаппарат | Телевизор | Кроссовки | Куртка | Пылесос"
        " | Письменный стол"
    ),
    _words(
        "Bicycle | Mobile phone | Laptop | Fridge | Washing machine | Sofa | Dining table | Baby stroller"
        " | Winter tyres | Guitar | Camera | TV | Sneakers | Jacket | Vacuum cleaner | Desk"
    ),
]
# Two brands per item: item i uses BRANDS[2i] or BRANDS[2i+1].
BRANDS = _words(
    "Scott | Capriolo | Samsung | Xiaomi | Lenovo | Dell | Gorenje | Beko | Bosch | Candy | IKEA | Matis"
    " | IKEA | Forma Ideale | Chicco | Cybex | Michelin | Tigar | Yamaha | Fender | Canon | Nikon | LG | Samsung"
    " | Nike | Adidas | Zara | The North Face | Philips | Rowenta | IKEA | Forma Ideale"
)
# Typical price in RSD per item (same order as ITEMS); a listing's price varies x0.3..x3.3 around it.
ITEM_PRICES_RSD = [30000, 35000, 70000, 45000, 40000, 35000, 15000, 20000]
ITEM_PRICES_RSD += [16000, 25000, 50000, 45000, 8000, 7000, 12000, 10000]
RSD_PER_EUR = 117.0
QUALIFIERS = [
    _words(
        "kao nov | odlično stanje | hitno | povoljno | malo korišćen | sa garancijom | zamena moguća | bez oštećenja"
    ),
    _words("као нов | одлично стање | хитно | повољно | мало коришћен | са гаранцијом | замена могућа | без оштећења"),
    _words(
        "как новый | отличное состояние | срочно | недорого | мало использовался | с гарантией"
        " | возможен обмен | без повреждений"
    ),
    _words(
        "like new | excellent condition | urgent | good price | barely used | with warranty | swap possible | no damage"
    ),
]
CONDITIONS = ["new", "used", "like_new", "refurbished"]
CONDITION_WORDS = [
    _words("novo | korišćeno | kao novo | obnovljeno"),
    _words("ново | коришћено | као ново | обновљено"),
    _words("новое | б/у | как новое | восстановленное"),
    _words("new | used | like new | refurbished"),
]
SELL_PREFIX = ["Prodajem ", "Продајем ", "Продаю ", "Selling "]
CONDITION_LABEL = ["Stanje:", "Стање:", "Состояние:", "Condition:"]
PICKUP_LABEL = ["Preuzimanje: ", "Преузимање: ", "Самовывоз: ", "Pickup: "]
EXTRA_LINE = [
    "Cena nije fiksna, javite se porukom.",
    "Цена није фиксна, јавите се поруком.",
    "Цена обсуждается, пишите в сообщения.",
    "Price negotiable, message me.",
]
PRODUCT_LINE = [
    "Novo, u originalnom pakovanju.",
    "Ново, у оригиналном паковању.",
    "Новый товар в оригинальной упаковке.",
    "Brand new, in original packaging.",
]
WARRANTY_LABEL = ["Garancija:", "Гаранција:", "Гарантия:", "Warranty:"]
MONTHS_WORD = [" meseci", " месеци", " мес.", " months"]
DELIVERY_LINE = [
    "Isporuka na teritoriji cele Srbije.",
    "Испорука на територији целе Србије.",
    "Доставка по всей Сербии.",
    "Delivery across Serbia.",
]
MODEL_PREFIXES = ["A", "S", "X", "Pro ", "Serie ", "RK-", "M", "GT "]
COLORS = ["crna", "bela", "siva", "plava", "crvena", "zelena"]
STORE_NAMES = _words(
    "TehnoMax | Digitalni svet | Кућа и башта | Sport Centar | Dečiji svet | Мода Стил | Knjižara Zona"
    " | Auto Delovi Plus | Бела техника | Gaming Zona | Nameštaj Lux | Foto Optika"
)
STREETS = [
    _words(
        "Bulevar oslobođenja | Knez Mihailova | Cara Dušana | Njegoševa | Vojvode Stepe | Kralja Petra"
        " | Takovska | Zmaj Jovina"
    ),
    _words(
        "Булевар ослобођења | Кнез Михаилова | Цара Душана | Његошева | Војводе Степе | Краља Петра"
        " | Таковска | Змај Јовина"
    ),
]
CITIES = [
    ("Beograd", "Београд", "Belgrade", 44.8176, 20.4633),
    ("Novi Sad", "Нови Сад", "Novi Sad", 45.2671, 19.8335),
    ("Niš", "Ниш", "Nis", 43.3209, 21.8958),
    ("Kragujevac", "Крагујевац", "Kragujevac", 44.0128, 20.9114),
    ("Subotica", "Суботица", "Subotica", 46.1005, 19.6650),
    ("Zrenjanin", "Зрењанин", "Zrenjanin", 45.3816, 20.3686),
    ("Pančevo", "Панчево", "Pancevo", 44.8708, 20.6403),
    ("Čačak", "Чачак", "Cacak", 43.8914, 20.3497),
    ("Novi Pazar", "Нови Пазар", "Novi Pazar", 43.1367, 20.5122),
    ("Kraljevo", "Краљево", "Kraljevo", 43.7257, 20.6873),
    ("Smederevo", "Смедерево", "Smederevo", 44.6628, 20.9300),
    ("Leskovac", "Лесковац", "Leskovac", 42.9981, 21.9461),
    ("Užice", "Ужице", "Uzice", 43.8586, 19.8488),
    ("Valjevo", "Ваљево", "Valjevo", 44.2751, 19.8982),
    ("Šabac", "Шабац", "Sabac", 44.7489, 19.6908),
    ("Sombor", "Сомбор", "Sombor", 45.7742, 19.1122),
]
# Weights: Belgrade and Novi Sad dominate, as on any Serbian marketplace.
CITY_WEIGHTS = [8, 3] + [1] * (len(CITIES) - 2)

IMAGE_HOST = "https://s3.svetu.rs"
FILE_EXTENSIONS = [(".jpg", 8), (".png", 1), (".webp", 1)]  # C2C uploads: (extension, weight)

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
    """SQL expressions for pseudo-random values derived from a row number and the seed.

    `stream` numbers keep the draws of different columns independent; each generator step
    uses its own hundred (listings 1-99, C2C images 100-199, stores 200-299, ...).
    """

    seed: int

    def h(self, stream: int, n: str = "n") -> str:
        """A non-negative 31-bit hash of `n`."""
        return f"(hashint8extended({n}, {self.seed * 1000 + stream}) & 2147483647)"

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
        md5('{d.seed}:c2c:' || (first_id + j)) || {d.weighted(103, FILE_EXTENSIONS, "j + first_id")} AS file_name
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
            || md5('{d.seed}:b2c:' || (first_id + j)) AS base
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


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


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


def generate(
    conn: psycopg.Connection,
    *,
    c2c: int,
    b2c: int,
    stores: int | None = None,
    images_per_listing: float = 2.17,
    dirty: bool = False,
    seed: int = 42,
    progress: Progress | None = None,
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
    _check_int("seed", seed, -(2**40), 2**40)
    if isinstance(images_per_listing, bool) or not 0 <= images_per_listing <= MAX_IMAGES_PER_LISTING:
        raise ValueError(f"images_per_listing must be between 0 and {MAX_IMAGES_PER_LISTING}")
    p = float(images_per_listing) / MAX_IMAGES_PER_LISTING
    draws = _Draws(seed)
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
            _report(progress, f"{name}: {counts[name]} rows in {time.monotonic() - started:.1f} s")
        if dirty:
            dirty_counts = add_dirty(conn)
            for key in ("c2c_listings", "c2c_images", "b2c_stores", "b2c_products", "b2c_images"):
                counts[key] += dirty_counts[key]
            counts["dirty_cases"] = dirty_counts["dirty_cases"]
            _report(progress, f"dirty catalogue: {len(DIRTY_CASES)} cases")
        started = time.monotonic()
        for table, name, definition in foreign_keys:
            conn.execute(f"ALTER TABLE monolith.{table} ADD CONSTRAINT {name} {definition}")
        _report(progress, f"foreign keys checked in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        conn.execute(
            "ANALYZE monolith.c2c_listings, monolith.c2c_images, monolith.b2c_stores,"
            " monolith.b2c_products, monolith.b2c_product_images"
        )
        _report(progress, f"analyze: {time.monotonic() - started:.1f} s")
    counts.setdefault("dirty_cases", 0)
    return _with_totals(counts)


_FOREIGN_KEYS_SQL = """
SELECT quote_ident(c.relname), quote_ident(k.conname), pg_get_constraintdef(k.oid)
FROM pg_constraint AS k
JOIN pg_class AS c ON c.oid = k.conrelid
WHERE k.contype = 'f' AND c.relnamespace = 'monolith'::regnamespace
ORDER BY c.relname, k.conname
"""


def view_counts(conn: psycopg.Connection) -> tuple[int, int]:
    """(rows, images) of monolith.unified_listings, the figures the old scripts reported."""
    rows, images = conn.execute(
        "SELECT count(*), coalesce(sum(jsonb_array_length(images)), 0) FROM monolith.unified_listings"
    ).fetchone()
    return int(rows), int(images)


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


def _report(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _with_totals(counts: dict[str, int]) -> dict[str, int]:
    counts["listings"] = counts["c2c_listings"] + counts["b2c_products"]
    counts["images"] = counts["c2c_images"] + counts["b2c_images"]
    return counts


# --------------------------------------------------------------------------------------
# Hand-written rows: the seed's example and the dirty catalogue
# --------------------------------------------------------------------------------------

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


def _c2c_image(listing_id: int, image_id: int, name: str, is_main: bool) -> dict[str, Any]:
    path = f"listings/{listing_id}/{name}"
    return {
        "id": image_id,
        "listing_id": listing_id,
        "file_path": path,
        "file_name": name,
        "public_url": f"{IMAGE_HOST}/{path}",
        "is_main": is_main,
        "storage_type": "minio",
    }


def _b2c_image(
    store_id: int, product_id: int, image_id: int, name: str, is_default: bool, order: int | None
) -> dict[str, Any]:
    base = f"{IMAGE_HOST}/storefront-products/{store_id}/{product_id}/{name}"
    return {
        "id": image_id,
        "storefront_product_id": product_id,
        "image_url": f"{base}.webp",
        "thumbnail_url": f"{base}_thumb.webp",
        "is_default": is_default,
        "display_order": order,
    }


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _example_rows() -> dict[str, list[dict[str, Any]]]:
    def c2c(id_: int, **values: Any) -> dict[str, Any]:
        row = dict.fromkeys(C2C_COLUMNS)
        row.update(views_count=0, show_on_map=True, needs_reindex=False)
        row.update(id=id_, **values)
        return row

    def b2c(id_: int, **values: Any) -> dict[str, Any]:
        row = dict.fromkeys(B2C_COLUMNS)
        row.update(has_variants=False, is_active=True)
        row.update(id=id_, **values)
        return row

    listings = [
        c2c(
            1,
            user_id=101,
            category_id=1001,
            title="Bicikl Scott Aspect 950 – odlično stanje",
            description="Prodajem bicikl Scott Aspect 950, veličina rama L.\nStanje:\tkorišćeno, redovno servisiran."
            "\nPreuzimanje: Beograd, Novi Beograd.",
            price=Decimal("45000.00"),
            condition="used",
            status="active",
            location="Bulevar Mihajla Pupina 10, Beograd",
            latitude=Decimal("44.816500"),
            longitude=Decimal("20.418300"),
            address_city="Beograd",
            address_country="Serbia",
            views_count=154,
            original_language="sr",
            created_at=_ts("2025-03-14 09:12:45.123456"),
            updated_at=_ts("2025-04-02 18:40:00"),
            address_multilingual={"sr": "Београд", "sr-Latn": "Beograd", "en": "Belgrade"},
        ),
        c2c(
            2,
            user_id=102,
            category_id=1006,
            title="Кауч на развлачење, као нов",
            description="Продајем кауч на развлачење, коришћен годину дана.\nБоја: сива.\nПреузимање: Нови Сад.",
            price=Decimal("18500.00"),
            condition="like_new",
            status="active",
            location="Змај Јовина 4, Нови Сад",
            latitude=Decimal("45.255100"),
            longitude=Decimal("19.845200"),
            address_city="Нови Сад",
            address_country="Србија",
            views_count=37,
            original_language="sr",
            created_at=_ts("2024-11-02 14:05:00"),
            updated_at=_ts("2024-11-02 14:05:00"),
        ),
        c2c(
            3,
            user_id=103,
            category_id=1008,
            title="Детская коляска Chicco, почти новая",
            description="Продаю детскую коляску Chicco 3 в 1.\nСостояние:\tотличное.\nСамовывоз: Белград, Врачар.",
            price=Decimal("21000.00"),
            condition="like_new",
            status="sold",
            location="Beograd",
            latitude=Decimal("44.798600"),
            longitude=Decimal("20.476900"),
            address_city="Beograd",
            address_country="Serbia",
            views_count=289,
            original_language="ru",
            created_at=_ts("2024-06-20 08:00:00"),
            updated_at=_ts("2024-07-01 12:30:00"),
            metadata={"source": "mobile_app", "app_version": "3.4.0"},
        ),
        c2c(
            4,
            user_id=101,
            category_id=1002,
            title="iPhone 13 128GB, battery 89%",
            description="Selling my iPhone 13, 128 GB, midnight.\nCondition:\tused, no scratches.\nPickup: Belgrade.",
            price=Decimal("52999.99"),
            condition="used",
            status="active",
            location="Knez Mihailova 22, Beograd",
            latitude=Decimal("44.817600"),
            longitude=Decimal("20.456900"),
            address_city="Beograd",
            address_country="Serbia",
            views_count=512,
            original_language="en",
            created_at=_ts("2025-09-30 21:15:10"),
            updated_at=_ts("2025-10-05 10:00:00"),
        ),
        c2c(
            5,
            user_id=104,
            category_id=1009,
            title="Zimske gume Michelin 205/55 R16",
            description="Četiri zimske gume, dubina šare 6 mm.\nStanje:\tkorišćeno\nCena nije fiksna.",
            price=Decimal("16000.00"),
            condition="used",
            status="active",
            location="Niš",
            latitude=Decimal("43.320900"),
            longitude=Decimal("21.895800"),
            address_city="Niš",
            address_country="Serbia",
            views_count=12,
            original_language="sr",
            created_at=_ts("2023-10-10 10:10:10"),
            updated_at=_ts("2024-01-05 16:45:30"),
        ),
        c2c(
            6,
            user_id=105,
            category_id=1017,
            title="Иво Андрић – На Дрини ћуприја, прво издање",
            description="Стара књига у добром стању.\nЋирилица, тврди повез.",
            price=Decimal("3500.00"),
            condition="used",
            status="inactive",
            location="Крагујевац",
            latitude=Decimal("44.012800"),
            longitude=Decimal("20.911400"),
            address_city="Крагујевац",
            address_country="Србија",
            views_count=8,
            original_language="sr",
            created_at=_ts("2025-01-20 19:00:00"),
            updated_at=_ts("2025-02-01 09:30:00"),
        ),
    ]
    c2c_images = [
        _c2c_image(1, 1, "bicikl-scott-bok.jpg", False),
        _c2c_image(1, 2, "bicikl-scott-front.jpg", True),  # the main image is not the first id
        _c2c_image(2, 3, "kauc-siva.jpg", True),
        _c2c_image(4, 4, "iphone13-front.jpg", True),
        _c2c_image(4, 5, "iphone13-back.jpg", False),
        _c2c_image(4, 6, "iphone13-box.png", False),
        _c2c_image(5, 7, "gume-michelin.webp", True),
    ]
    stores = [
        {
            "id": 1,
            "user_id": 201,
            "name": "TehnoMax Beograd",
            "address": "Bulevar kralja Aleksandra 73, Beograd",
            "latitude": Decimal("44.805900"),
            "longitude": Decimal("20.478500"),
            "city": "Beograd",
            "country": "Serbia",
        },
        {
            "id": 2,
            "user_id": 202,
            "name": "Кућа и башта Нови Сад",
            "address": "Булевар ослобођења 30, Нови Сад",
            "latitude": Decimal("45.254600"),
            "longitude": Decimal("19.842100"),
            "city": "Нови Сад",
            "country": "Србија",
        },
    ]
    products = [
        b2c(
            1,
            storefront_id=1,
            name="Samsung Galaxy A54 5G 128GB",
            category_id=1002,
            description="Novo, u originalnom pakovanju.\nGarancija:\t24 meseci\nIsporuka na teritoriji cele Srbije.",
            price=Decimal("42999.00"),
            currency="RSD",
            sku="TM-A54-128",
            barcode="8806094725123",
            stock_quantity=14,
            stock_status="in_stock",
            attributes={"color": "crna", "warranty_months": 24},
            view_count=221,
            created_at=datetime(2025, 2, 10, 8, 0, tzinfo=UTC),
            updated_at=datetime(2025, 9, 1, 12, 0, tzinfo=UTC),
        ),
        b2c(
            2,
            storefront_id=1,
            name="Usisivač Bosch Serie 4",
            category_id=1015,
            description="Novo, u originalnom pakovanju.\nGarancija:\t36 meseci",
            price=Decimal("189.90"),
            currency="EUR",
            sku="TM-BOSCH-S4",
            stock_quantity=3,
            stock_status="low_stock",
            attributes={"color": "plava"},
            view_count=48,
            created_at=datetime(2024, 12, 1, 9, 30, tzinfo=UTC),
            updated_at=datetime(2025, 1, 15, 10, 0, tzinfo=UTC),
        ),
        b2c(
            3,
            storefront_id=2,
            name="Садница јабуке Ајдаред",
            category_id=1020,
            description="Садни материјал, сертификован.\nИспорука на територији целе Србије.",
            price=Decimal("350.00"),
            currency="RSD",
            sku="KB-JAB-01",
            stock_quantity=250,
            stock_status="in_stock",
            view_count=19,
            created_at=datetime(2025, 3, 1, 7, 0, tzinfo=UTC),
            updated_at=datetime(2025, 3, 1, 7, 0, tzinfo=UTC),
        ),
        b2c(
            4,
            storefront_id=2,
            name="Электрический чайник Xiaomi",
            category_id=1021,
            description="Новый товар в оригинальной упаковке.\nГарантия:\t12 мес.",
            price=Decimal("29.99"),
            currency="EUR",
            sku="KB-XI-KETTLE",
            stock_quantity=0,
            stock_status="out_of_stock",
            view_count=5,
            created_at=datetime(2025, 5, 5, 15, 45, tzinfo=UTC),
            updated_at=datetime(2025, 6, 1, 8, 0, tzinfo=UTC),
        ),
    ]
    b2c_images = [
        _b2c_image(1, 1, 1, "a54-front", True, 0),
        _b2c_image(1, 1, 2, "a54-back", False, 1),
        _b2c_image(1, 2, 3, "bosch-serie4", True, 0),
        _b2c_image(2, 3, 4, "jabuka-sadnica", False, 0),
        _b2c_image(2, 3, 5, "jabuka-plod", True, 1),  # the default image is not display_order 0
    ]
    return {
        "c2c_listings": listings,
        "c2c_images": c2c_images,
        "b2c_stores": stores,
        "b2c_products": products,
        "b2c_images": b2c_images,
    }


_TABLES = {
    "c2c_listings": ("c2c_listings", C2C_COLUMNS),
    "c2c_images": ("c2c_images", C2C_IMAGE_COLUMNS),
    "b2c_stores": ("b2c_stores", STORE_COLUMNS),
    "b2c_products": ("b2c_products", B2C_COLUMNS),
    "b2c_images": ("b2c_product_images", B2C_IMAGE_COLUMNS),
}


def _insert_all(conn: psycopg.Connection, rows: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    return {key: _insert(conn, table, columns, rows[key]) for key, (table, columns) in _TABLES.items()}


def seed_example(conn: psycopg.Connection) -> dict[str, int]:
    """The seed's example: 6 C2C listings (ids 1-6) and 4 B2C products (ids 1-4), 12 images.

    Clean rows; ids 1-4 exist on both sides, image ids 1-5 in both image tables; B2C prices
    in RSD and EUR; Serbian Latin and Cyrillic, Russian and English text.
    """
    with conn.transaction():
        counts = _insert_all(conn, _example_rows())
    counts["dirty_cases"] = 0
    return _with_totals(counts)


@dataclass(frozen=True)
class _DirtyCase:
    name: str
    description: str
    values: dict[str, Any] = field(default_factory=dict)
    # None: one ordinary image (main/default). Otherwise one dict of overrides per image.
    images: list[dict[str, Any]] | None = None
    # The row's monolith id; None: the next one after DIRTY_ID_BASE on its side.
    row_id: int | None = None

    @property
    def source_type(self) -> str:
        return self.name[:3]


_EMOJI = "\U0001f600"  # 😀, four bytes in UTF-8
_FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧, a ZWJ sequence

_DIRTY: list[_DirtyCase] = [
    # --- C2C listings -----------------------------------------------------------------
    _DirtyCase("c2c_title_null", "title is NULL", {"title": None}),
    _DirtyCase("c2c_title_blank", "title is three spaces", {"title": "   "}),
    _DirtyCase("c2c_price_null", "price is NULL", {"price": None}),
    _DirtyCase("c2c_user_id_null", "user_id is NULL", {"user_id": None}),
    _DirtyCase("c2c_price_negative", "price is -150.00", {"price": Decimal("-150.00")}),
    _DirtyCase(
        "c2c_price_too_big",
        "price 123456789.00 does not fit numeric(10,2)",
        {"price": Decimal("123456789.00")},
    ),
    _DirtyCase("c2c_latitude_out_of_range", "latitude is 95", {"latitude": Decimal("95")}),
    _DirtyCase("c2c_longitude_out_of_range", "longitude is -200", {"longitude": Decimal("-200")}),
    _DirtyCase("c2c_longitude_missing", "latitude set, longitude NULL", {"longitude": None}),
    _DirtyCase("c2c_status_upper_case", "status 'ACTIVE'", {"status": "ACTIVE"}),
    _DirtyCase("c2c_status_padded", "status ' Sold ' (spaces, capital)", {"status": " Sold "}),
    _DirtyCase("c2c_status_empty", "status '' (empty string)", {"status": ""}),
    _DirtyCase("c2c_status_null", "status is NULL", {"status": None}),
    _DirtyCase("c2c_status_capitalised", "status 'Archived'", {"status": "Archived"}),
    _DirtyCase("c2c_status_draft", "status 'draft'", {"status": "draft"}),
    _DirtyCase("c2c_status_unknown", "status 'pending_review' (not a known status)", {"status": "pending_review"}),
    _DirtyCase("c2c_currency_eur", "metadata currency 'EUR' on a C2C row", {"metadata": {"currency": "EUR"}}),
    _DirtyCase("c2c_currency_lower_case", "metadata currency 'eur'", {"metadata": {"currency": "eur"}}),
    _DirtyCase("c2c_currency_invalid", "metadata currency 'EURO'", {"metadata": {"currency": "EURO"}}),
    _DirtyCase("c2c_created_at_null", "created_at is NULL", {"created_at": None}),
    _DirtyCase("c2c_updated_at_null", "updated_at is NULL", {"updated_at": None}),
    _DirtyCase(
        "c2c_image_url_null",
        "2 images; the main one has public_url NULL",
        images=[{"is_main": True, "public_url": None}, {}],
    ),
    _DirtyCase(
        "c2c_image_url_blank",
        "2 images; the second has public_url '' (blank)",
        images=[{"is_main": True}, {"public_url": ""}],
    ),
    _DirtyCase("c2c_images_two_main", "2 images, both is_main", images=[{"is_main": True}, {"is_main": True}]),
    _DirtyCase("c2c_images_no_main", "2 images, neither is_main", images=[{}, {}]),
    _DirtyCase("c2c_no_images", "no images at all", images=[]),
    _DirtyCase(
        "c2c_text_serbian_cyrillic",
        "Serbian Cyrillic title and description (ђ ћ љ њ џ)",
        {
            "title": "Продајем ђачки бицикл – Љубљана, Њујорк, Џервин, Ћуприја",
            "description": "Ђурђевдан попуст!\nПреузимање у Чачку или Шапцу.",
            "original_language": "sr",
        },
    ),
    _DirtyCase(
        "c2c_text_russian",
        "Russian title and description (ё, ъ, ы)",
        {
            "title": "Продаю ёлочные игрушки, объём большой",
            "description": "Съёмный чехол, почти новый.\nЦена — обсуждается.",
            "original_language": "ru",
        },
    ),
    _DirtyCase(
        "c2c_text_emoji",
        f"emoji: {_EMOJI} (4-byte), {_FAMILY} (ZWJ sequence), ❤️ and a flag",
        {
            "title": f"{_EMOJI} Telefon na prodaju {_FAMILY} porodični paket",
            "description": f"Super stanje ❤️ \U0001f1f7\U0001f1f8\nJavite se {_EMOJI}{_EMOJI}",
        },
    ),
    _DirtyCase(
        "c2c_text_control_whitespace",
        "tabs in the title; \\n, \\r\\n and tabs in the description",
        {"title": "Sto\tza\tračunar", "description": "Red 1\nRed 2\r\nRed 3\tkolona\r\n\tuvučeno"},
    ),
    _DirtyCase(
        "c2c_text_quotes_backslashes",
        "double and single quotes, backslashes (also a literal backslash-n)",
        {
            "title": "Monitor 27\" LG 'UltraGear' C:\\Users\\marko",
            "description": "Kaže: \"radi\" i 'nema mrtvih piksela'.\nPutanja: C:\\temp\\new\\n nije novi red \\\\",
        },
    ),
    _DirtyCase(
        "c2c_text_json_looking",
        "title and description that look like JSON (the description's \\u0000 escape is refused by jsonb)",
        {"title": '{"title": "not json", "price": 1}', "description": '[1, 2, {"a": null, "b": "\\u0000"}]'},
    ),
    # --- B2C products -----------------------------------------------------------------
    _DirtyCase("b2c_currency_null", "currency is NULL", {"currency": None}),
    _DirtyCase("b2c_currency_usd", "currency 'USD'", {"currency": "USD"}),
    _DirtyCase("b2c_inactive", "is_active false (status 'inactive' in the view)", {"is_active": False}),
    _DirtyCase(
        "b2c_images_duplicate_display_order",
        "3 images, display_order 0, 1, 1",
        images=[{"is_default": True, "display_order": 0}, {"display_order": 1}, {"display_order": 1}],
    ),
    _DirtyCase(
        "b2c_images_null_display_order",
        "3 images, display_order 0, NULL, 1",
        images=[{"is_default": True, "display_order": 0}, {"display_order": None}, {"display_order": 1}],
    ),
    _DirtyCase(
        "b2c_images_gapped_display_order",
        "3 images, display_order 0, 5, 9",
        images=[{"is_default": True, "display_order": 0}, {"display_order": 5}, {"display_order": 9}],
    ),
    _DirtyCase(
        "b2c_images_two_default",
        "2 images, both is_default",
        images=[{"is_default": True, "display_order": 0}, {"is_default": True, "display_order": 1}],
    ),
    _DirtyCase(
        "b2c_images_no_default",
        "2 images, neither is_default",
        images=[{"display_order": 0}, {"display_order": 1}],
    ),
    _DirtyCase(
        "b2c_image_url_null",
        "2 images; the default one has image_url NULL (thumbnail_url set)",
        images=[{"is_default": True, "display_order": 0, "image_url": None}, {"display_order": 1}],
    ),
    _DirtyCase(
        "b2c_timestamps_non_utc",
        "created_at '2025-01-15 08:30:00-05', updated_at '2025-06-01 12:00:00+02' (13:30 and 10:00 UTC)",
        {
            "created_at": datetime(2025, 1, 15, 8, 30, tzinfo=timezone(timedelta(hours=-5))),
            "updated_at": datetime(2025, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        },
    ),
    _DirtyCase(
        "b2c_individual_location",
        "individual_address/latitude/longitude override the store's",
        {
            "individual_address": "Trg slobode 1, Novi Sad",
            "individual_latitude": Decimal("45.255000"),
            "individual_longitude": Decimal("19.845000"),
        },
    ),
    _DirtyCase(
        "b2c_store_coordinates_out_of_range",
        "the product's store has latitude 95.5, longitude 200",
        {"storefront_id": DIRTY_ID_BASE + 2},
    ),
    _DirtyCase("b2c_price_null", "price is NULL", {"price": None}),
    _DirtyCase("b2c_title_null", "name (the view's title) is NULL", {"name": None}),
    # --- edge values: every row is published or quarantined with a reason -------------
    _DirtyCase("c2c_id_negative_odd", "id -3 (mod(-3, 2) is -1)", row_id=-3),
    _DirtyCase("c2c_id_zero", "id 0", row_id=0),
    _DirtyCase("c2c_id_int_max", "id 2147483647", row_id=2_147_483_647),
    _DirtyCase("c2c_id_int_min", "id -2147483648", row_id=-2_147_483_648),
    _DirtyCase("b2c_id_negative_odd", "id -3", row_id=-3),
    _DirtyCase("b2c_id_int_max", "id 2147483647", row_id=2_147_483_647),
    _DirtyCase("c2c_created_at_infinity", "created_at 'infinity'", {"created_at": "infinity"}),
    _DirtyCase("c2c_updated_at_minus_infinity", "updated_at '-infinity'", {"updated_at": "-infinity"}),
    _DirtyCase("c2c_created_at_bc", "created_at 0044-03-15 BC", {"created_at": "0044-03-15 12:00:00 BC"}),
    _DirtyCase(
        "c2c_created_at_far_future",
        "created_at 9999-12-31 23:59:59",
        {"created_at": datetime(9999, 12, 31, 23, 59, 59)},
    ),
    _DirtyCase("b2c_created_at_infinity", "created_at 'infinity' (timestamptz)", {"created_at": "infinity"}),
    _DirtyCase("c2c_price_nan", "price NaN", {"price": Decimal("NaN")}),
    _DirtyCase("c2c_price_zero", "price 0.00 (the service's CHECK price > 0)", {"price": Decimal("0.00")}),
    _DirtyCase("c2c_latitude_nan", "latitude NaN", {"latitude": Decimal("NaN")}),
    _DirtyCase(
        "c2c_title_unicode_blank", "title of no-break, em and ideographic spaces", {"title": "\u00a0\u2003\u3000"}
    ),
    _DirtyCase("b2c_title_unicode_blank", "name of em spaces and a zero-width space", {"name": "\u2003\u200b\u2003"}),
    _DirtyCase("c2c_title_too_short", "title 'ab' (the service's CHECK: 3 non-blank characters)", {"title": "ab"}),
    _DirtyCase("c2c_category_null", "category_id NULL (the service's NOT NULL)", {"category_id": None}),
    _DirtyCase("c2c_description_huge", "description of 400 KB", {"description": "Opis. " * 70_000}),
    _DirtyCase("c2c_images_300", "300 images, one main", images=[{"is_main": True}] + [{}] * 299),
]

DIRTY_CASES: list[tuple[str, str]] = [(case.name, case.description) for case in _DIRTY]


def _dirty_ids() -> dict[str, tuple[str, int]]:
    ids: dict[str, tuple[str, int]] = {}
    for side in ("c2c", "b2c"):
        for offset, case in enumerate(c for c in _DIRTY if c.source_type == side and c.row_id is None):
            ids[case.name] = (side, DIRTY_ID_BASE + 1 + offset)
        ids.update((c.name, (side, c.row_id)) for c in _DIRTY if c.source_type == side and c.row_id is not None)
    return ids


# case name -> (source_type, id) of its row in monolith.unified_listings
DIRTY_CASE_IDS: dict[str, tuple[str, int]] = _dirty_ids()

_DIRTY_STORES = [
    {
        "id": DIRTY_ID_BASE + 1,
        "user_id": 9001,
        "name": "Prodavnica za testiranje",
        "address": "Takovska 2, Beograd",
        "latitude": Decimal("44.813000"),
        "longitude": Decimal("20.470000"),
        "city": "Beograd",
        "country": "Serbia",
    },
    {
        "id": DIRTY_ID_BASE + 2,
        "user_id": 9002,
        "name": "Prodavnica van mape",
        "address": "Nepoznata bb",
        "latitude": Decimal("95.500000"),
        "longitude": Decimal("200.000000"),
        "city": "Beograd",
        "country": "Serbia",
    },
]


def _dirty_rows() -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {key: [] for key in _TABLES}
    rows["b2c_stores"] = list(_DIRTY_STORES)
    next_image = {"c2c": DIRTY_ID_BASE + 1, "b2c": DIRTY_ID_BASE + 1}
    for case in _DIRTY:
        side, row_id = DIRTY_CASE_IDS[case.name]
        if side == "c2c":
            row = {
                "id": row_id,
                "user_id": 9100,
                "category_id": 1002,
                "title": "Mobilni telefon Samsung – odlično stanje",
                "description": "Prodajem telefon Samsung.\nStanje:\tkorišćeno",
                "price": Decimal("15000.00"),
                "condition": "used",
                "status": "active",
                "location": "Knez Mihailova 12, Beograd",
                "latitude": Decimal("44.817600"),
                "longitude": Decimal("20.463300"),
                "address_city": "Beograd",
                "address_country": "Serbia",
                "views_count": 17,
                "show_on_map": True,
                "original_language": "sr",
                "created_at": datetime(2024, 3, 1, 10, 0),
                "updated_at": datetime(2024, 3, 2, 11, 30),
                "external_id": f"dirty:{case.name}",
                "metadata": None,
                "needs_reindex": False,
                "address_multilingual": None,
            }
        else:
            row = {
                "id": row_id,
                "storefront_id": DIRTY_ID_BASE + 1,
                "name": "Usisivač Philips PowerPro FC9332",
                "description": "Novo, u originalnom pakovanju.\nGarancija:\t24 meseci",
                "price": Decimal("12999.99"),
                "currency": "RSD",
                "category_id": 1015,
                "sku": f"dirty:{case.name}",
                "barcode": None,
                "stock_quantity": 5,
                "stock_status": "in_stock",
                "is_active": True,
                "attributes": {"color": "crna"},
                "has_variants": False,
                "view_count": 3,
                "individual_address": None,
                "individual_latitude": None,
                "individual_longitude": None,
                "show_on_map": None,
                "created_at": datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
                "updated_at": datetime(2024, 5, 2, 9, 0, tzinfo=UTC),
            }
        row.update(case.values)
        rows[f"{side}_listings" if side == "c2c" else "b2c_products"].append(row)
        overrides = case.images if case.images is not None else [{"is_main": True, "is_default": True}]
        for position, image_values in enumerate(overrides, start=1):
            image_id = next_image[side]
            next_image[side] += 1
            name = f"dirty-{row_id}-{position}"
            if side == "c2c":
                image = _c2c_image(row_id, image_id, name + ".jpg", False)
            else:
                image = _b2c_image(row["storefront_id"], row_id, image_id, name, False, position - 1)
            image.update((k, v) for k, v in image_values.items() if k in image)
            rows[f"{side}_images"].append(image)
    return rows


def add_dirty(conn: psycopg.Connection) -> dict[str, int]:
    """Insert the dirty catalogue: one C2C listing or B2C product per entry of DIRTY_CASES.

    Ids come from DIRTY_ID_BASE + 1 (see DIRTY_CASE_IDS), on both sides and in both image
    tables, so dirty C2C and B2C ids collide, and so do their image ids. Each row's
    external_id (C2C) or sku (B2C) is 'dirty:<case name>'. Two stores are added: a clean one
    and one with out-of-range coordinates.
    """
    with conn.transaction():
        counts = _insert_all(conn, _dirty_rows())
    counts["dirty_cases"] = len(_DIRTY)
    return _with_totals(counts)


# --------------------------------------------------------------------------------------
# CLI: python -m migration fixtures ...
# --------------------------------------------------------------------------------------


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fixtures",
        help="fill the stand-in monolith (schema monolith) with listings",
        description="Load monolith/schema.sql into the PG* database and fill it with the seed's example "
        "or with generated listings; prints the counts of monolith.unified_listings.",
    )
    size = parser.add_argument_group("what to insert (either --example or --c2c/--b2c)")
    size.add_argument("--example", action="store_true", help="the seed's example: 10 listings, 12 images")
    size.add_argument("--c2c", type=int, metavar="N", help="generated C2C listings")
    size.add_argument("--b2c", type=int, metavar="N", help="generated B2C products")
    size.add_argument("--stores", type=int, metavar="N", help="B2C stores (default: one per 3 products)")
    size.add_argument(
        "--images-per-listing", type=float, metavar="X", help="mean images per listing, 0-6 (default 2.17)"
    )
    parser.add_argument("--dirty", action="store_true", help="also insert the dirty catalogue")
    parser.add_argument(
        "--service",
        action="store_true",
        help="also apply the microservice stand-in (microservice/schema.sql) into $LISTINGS_SCHEMA (default public)"
        " if its tables are not there yet",
    )
    parser.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    parser.add_argument("--no-schema", action="store_true", help="keep the existing schema (tables must be empty)")
    parser.add_argument(
        "--replace-schema",
        action="store_true",
        help="drop an existing monolith schema even if these fixtures did not create it (disposable databases only)",
    )
    parser.set_defaults(handler=run_cli)


def _load(conn: psycopg.Connection, args: argparse.Namespace, progress: Progress) -> dict[str, int]:
    if not args.no_schema:
        load_schema(conn, replace_foreign=args.replace_schema)
    elif conn.execute("SELECT to_regclass('monolith.unified_listings') IS NULL").fetchone()[0]:
        raise ConfigError("no monolith.unified_listings in this database: drop --no-schema")
    if not args.example:
        return generate(
            conn,
            c2c=args.c2c or 0,
            b2c=args.b2c or 0,
            stores=args.stores,
            images_per_listing=2.17 if args.images_per_listing is None else args.images_per_listing,
            dirty=args.dirty,
            seed=args.seed,
            progress=progress,
        )
    counts = seed_example(conn)
    if args.dirty:
        dirty = add_dirty(conn)
        counts = {key: value + dirty[key] for key, value in counts.items()}
    return counts


def run_cli(args: argparse.Namespace) -> int:
    generated = [args.c2c, args.b2c, args.stores, args.images_per_listing]
    if args.example and any(v is not None for v in generated):
        raise ConfigError("--example cannot be combined with --c2c/--b2c/--stores/--images-per-listing")
    if not args.example and args.c2c is None and args.b2c is None:
        raise ConfigError("say what to insert: --example, or --c2c N and/or --b2c N")
    settings = PgSettings.from_env()
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"fixtures: {message}", file=sys.stderr, flush=True)

    with settings.connect() as conn:
        try:
            with conn.transaction():  # all or nothing: a failure leaves the database as it was
                counts = _load(conn, args, progress)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        rows, images = view_counts(conn)
        if getattr(args, "service", False):
            schema = os.environ.get("LISTINGS_SCHEMA") or "public"
            applied = load_service_schema(conn, schema)
            conn.commit()
            print(
                f"fixtures: microservice stand-in {'applied to' if applied else 'already in'} schema {schema}",
                file=sys.stderr,
            )
    print(
        f"fixtures: monolith.unified_listings has {rows} listings and {images} images "
        f"(c2c {counts['c2c_listings']}, b2c {counts['b2c_products']}, dirty cases {counts['dirty_cases']}) "
        f"in {settings.describe()}, {time.monotonic() - started:.1f} s"
    )
    return 0
