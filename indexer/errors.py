"""The failures the CLI reports as one line, with their exit codes.

Exit codes: 1 = the data is wrong (validation mismatch, documents rejected),
2 = configuration or connection problem (wrong URL, server down, credentials,
missing view). `listings_common.errors.ConfigError` (a bad setting) is the same kind of
exit-2 failure: both are `ListingsError`s, which `listings_common.cli.run` reports.
"""

from __future__ import annotations

from listings_common.errors import EXIT_DATA, ListingsError


class IndexerError(ListingsError):
    """An expected failure of the indexer: message is one line, safe to print (no secrets)."""


class SourceError(IndexerError):
    """PostgreSQL could not give us what we need."""


class OpenSearchError(IndexerError):
    """OpenSearch is unreachable, refused us, or answered with an error.

    `status` is the HTTP status of the answer that failed, when there was one.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DataError(IndexerError):
    """The index does not match the database, or documents were rejected."""

    exit_code = EXIT_DATA
