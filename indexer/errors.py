"""The failures the CLI reports as one line, with their exit codes.

Exit codes: 1 = the data is wrong (validation mismatch, documents rejected),
2 = configuration or connection problem (wrong URL, server down, credentials,
missing view). `migration.pg.ConfigError` is treated like an exit-2 error too.
"""

from __future__ import annotations


class IndexerError(Exception):
    """An expected failure: message is one line, safe to print (no secrets)."""

    exit_code = 2


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

    exit_code = 1
