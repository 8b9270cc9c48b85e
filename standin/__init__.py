"""The stand-in monolith's data, for demos and tests (not production code).

Modules: words (word lists), generate (listings at any size, in SQL on the server),
data + codec (the example and the dirty catalogue, read from data/*.json), load
(schemas, the example, the dirty rows), cli (`listings-standin`; `listings-migration
fixtures` is a hidden compatibility alias of it); synthetic (a stand-in of the service's
published tables and the documents view, for the indexer's tests and benchmarks). The API
the tests use is re-exported here.
"""

from standin.data import DIRTY_CASE_IDS, DIRTY_CASES, DIRTY_EXPECTATIONS, DIRTY_ID_BASE
from standin.generate import generate
from standin.load import add_dirty, load_example, load_schema, load_service_schema, view_counts

__all__ = [
    "DIRTY_CASES",
    "DIRTY_CASE_IDS",
    "DIRTY_EXPECTATIONS",
    "DIRTY_ID_BASE",
    "add_dirty",
    "generate",
    "load_example",
    "load_schema",
    "load_service_schema",
    "view_counts",
]
