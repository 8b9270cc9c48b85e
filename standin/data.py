"""The hand-written rows of the stand-in monolith, read from data files.

- `data/example.json`: the example of the hand-run scripts (MIGRATION_SCRIPTS.md): 10 listings
  (6 C2C, 4 B2C), 2 stores, 12 images, every row with every column.
- `data/dirty.json`: the dirty catalogue: per case its name, description, the columns it
  overrides on an ordinary row (`values`), its images (`images`: one dict of overrides
  per image; absent: one ordinary main/default image), its id (`row_id`; absent: the next
  one after DIRTY_ID_BASE on its side) and `expect`, the SQL predicate its row in
  monolith.unified_listings (alias u) must satisfy (tests/test_fixtures.py checks them).
  Also the two dirty stores and the ordinary C2C and B2C row the cases start from.

Values JSON cannot hold (decimals, timestamps) are tagged: see standin.codec.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from standin.codec import read
from standin.words import IMAGE_HOST

DATA_DIR = Path(__file__).resolve().parent / "data"
EXAMPLE_JSON = DATA_DIR / "example.json"
DIRTY_JSON = DATA_DIR / "dirty.json"

# Dirty rows (and their stores and images) take ids from DIRTY_ID_BASE + 1 upwards.
DIRTY_ID_BASE = 900_000_000

Rows = dict[str, list[dict[str, Any]]]

# --- the example ------------------------------------------------------------------------


def example_rows() -> Rows:
    """The example's rows per table key (c2c_listings, c2c_images, b2c_stores, b2c_products, b2c_images)."""
    return read(EXAMPLE_JSON)["rows"]


# --- the dirty catalogue ---------------------------------------------------------------


@cache
def _dirty() -> dict[str, Any]:
    return read(DIRTY_JSON)


def _dirty_cases() -> list[dict[str, Any]]:
    return _dirty()["cases"]


def _source_type(case: dict[str, Any]) -> str:
    return case["name"][:3]


def _dirty_ids() -> dict[str, tuple[str, int]]:
    cases = _dirty_cases()
    ids: dict[str, tuple[str, int]] = {}
    for side in ("c2c", "b2c"):
        numbered = [c for c in cases if _source_type(c) == side and c.get("row_id") is None]
        for offset, case in enumerate(numbered):
            ids[case["name"]] = (side, DIRTY_ID_BASE + 1 + offset)
        ids.update((c["name"], (side, c["row_id"])) for c in cases if _source_type(c) == side and "row_id" in c)
    return ids


# (name, description) of each dirty case, in the file's order
DIRTY_CASES: list[tuple[str, str]] = [(case["name"], case["description"]) for case in _dirty_cases()]
# case name -> (source_type, id) of its row in monolith.unified_listings
DIRTY_CASE_IDS: dict[str, tuple[str, int]] = _dirty_ids()
# case name -> the SQL predicate its row in monolith.unified_listings (alias u) satisfies
DIRTY_EXPECTATIONS: dict[str, str] = {case["name"]: case["expect"] for case in _dirty_cases()}


def c2c_image(listing_id: int, image_id: int, name: str, is_main: bool) -> dict[str, Any]:
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


def b2c_image(
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


def dirty_rows() -> Rows:
    """The dirty catalogue's rows per table key: each case's row is the ordinary row of its
    side with the case's values; its external_id (C2C) or sku (B2C) is 'dirty:<case name>';
    image ids count from DIRTY_ID_BASE + 1 in each image table."""
    dirty = read(DIRTY_JSON)  # a fresh copy: the rows are changed below
    rows: Rows = {key: [] for key in ("c2c_listings", "c2c_images", "b2c_stores", "b2c_products", "b2c_images")}
    rows["b2c_stores"] = dirty["stores"]
    next_image = {"c2c": DIRTY_ID_BASE + 1, "b2c": DIRTY_ID_BASE + 1}
    for case in dirty["cases"]:
        side, row_id = DIRTY_CASE_IDS[case["name"]]
        row = {**dirty["ordinary_rows"][side], "id": row_id}
        row["external_id" if side == "c2c" else "sku"] = f"dirty:{case['name']}"
        row.update(case.get("values", {}))
        rows["c2c_listings" if side == "c2c" else "b2c_products"].append(row)
        overrides = case.get("images", [{"is_main": True, "is_default": True}])
        for position, image_values in enumerate(overrides, start=1):
            image_id = next_image[side]
            next_image[side] += 1
            name = f"dirty-{row_id}-{position}"
            if side == "c2c":
                image = c2c_image(row_id, image_id, name + ".jpg", False)
            else:
                image = b2c_image(row["storefront_id"], row_id, image_id, name, False, position - 1)
            image.update((k, v) for k, v in image_values.items() if k in image)
            rows[f"{side}_images"].append(image)
    return rows
