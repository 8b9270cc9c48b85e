"""The encoding of the stand-in data files (standin/data/*.json).

JSON has no decimals, timestamps or NaN, so such values are tagged objects of one key:
{"$decimal": "15000.00"} (also "NaN"), {"$timestamp": "2024-03-01T10:00:00"} (no zone),
{"$timestamptz": "2025-01-15T08:30:00-05:00"}, and {"$repeat": ["Opis. ", 70000]} for a long
repeated text. `decode(encode(x)) == x` for every value used here, with the same types.
Plain strings stay strings: 'infinity' and '0044-03-15 12:00:00 BC' go to PostgreSQL as text.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

_DECIMAL, _TIMESTAMP, _TIMESTAMPTZ, _REPEAT = "$decimal", "$timestamp", "$timestamptz", "$repeat"


def encode(value: Any) -> Any:
    """A JSON-ready copy of `value`: Decimals and datetimes become tagged objects."""
    if isinstance(value, Decimal):
        return {_DECIMAL: str(value)}
    if isinstance(value, datetime):
        return {_TIMESTAMP if value.tzinfo is None else _TIMESTAMPTZ: value.isoformat()}
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith("$"):
            raise ValueError(f"a one-key object with a '$' key would read as a tag: {value!r}")
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, float):
        raise ValueError(f"floats are not used in the stand-in rows (write a Decimal): {value!r}")
    return value


def decode(value: Any) -> Any:
    """The inverse of `encode` (and the reader of `{"$repeat": [text, times]}`)."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, item),) = value.items()
            if tag == _DECIMAL:
                return Decimal(item)
            if tag in (_TIMESTAMP, _TIMESTAMPTZ):
                moment = datetime.fromisoformat(item)
                if (moment.tzinfo is None) != (tag == _TIMESTAMP):
                    raise ValueError(f"{tag} {item!r}: the zone does not match the tag")
                return moment
            if tag == _REPEAT:
                text, times = item
                return text * times
            if tag.startswith("$"):
                raise ValueError(f"unknown tag {tag!r} in a stand-in data file")
        return {key: decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value


def read(path: Path) -> Any:
    return decode(json.loads(path.read_text(encoding="utf-8")))
