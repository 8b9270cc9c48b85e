"""Reading from PostgreSQL: row counts, the documents view, samples.

Everything a run reads comes from ONE read-only REPEATABLE READ transaction, so the
counts used for progress and validation describe exactly the rows that were streamed.
Documents are streamed through a server-side (named) cursor as `(id, document text)`
pairs: the json is rendered to text by PostgreSQL and never parsed in Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import TracebackType

import psycopg
from psycopg import sql
from psycopg.abc import Buffer
from psycopg.adapt import Loader

from listings_common.pg import PgSettings

from .errors import SourceError

VIEW = "listing_search_documents"
FETCH_ROWS = 2000


@dataclass(frozen=True)
class Counts:
    listings: int
    images: int


def _one_line(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return " ".join((primary or str(exc) or exc.__class__.__name__).split())


class ReadSnapshot:
    """A consistent, read-only view of the microservice database: one REPEATABLE READ transaction
    (a database snapshot; not a dbt snapshot, not a backup).

    Use as a context manager. `schema` is the dbt target schema (tables); the view
    is read from `<schema>_search`.
    """

    def __init__(self, pg: PgSettings, schema: str) -> None:
        self.pg = pg
        self.schema = schema
        self.search_schema = f"{schema}_search"
        self._conn: psycopg.Connection | None = None

    def __enter__(self) -> ReadSnapshot:
        conn = self.pg.connect(autocommit=False, application_name="listings-indexer")
        # Documents go to OpenSearch as the bytes PostgreSQL sends: they must be UTF-8,
        # whatever PGCLIENTENCODING or the role's default says.
        conn.execute("set client_encoding to 'UTF8'")
        # The snapshot is idle in its transaction while the senders back off, replicas
        # allocate or validation waits on OpenSearch (minutes): a server-wide
        # idle_in_transaction_session_timeout must not end hours of load. This session
        # only (read only, no locks beyond ACCESS SHARE); the DBA's setting stays for the rest.
        conn.execute("set idle_in_transaction_session_timeout = 0")
        conn.commit()
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        self._conn = conn
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.rollback()
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> psycopg.Connection:
        if self._conn is None:
            raise RuntimeError("ReadSnapshot used outside its `with` block")
        return self._conn

    def _table(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))

    def _view(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.search_schema), sql.Identifier(VIEW))

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn PostgreSQL errors into one-line SourceErrors."""
        try:
            yield
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName) as exc:
            raise SourceError(
                f"PostgreSQL ({self.pg.describe()}): {_one_line(exc)} while reading {what}; "
                "run `dbt build` first (and check LISTINGS_SCHEMA)"
            ) from None
        except psycopg.errors.UndefinedColumn as exc:
            raise SourceError(
                f"PostgreSQL: {_one_line(exc)} while reading {what}; the view does not have the "
                "expected columns (id, document): rebuild it with `dbt build`"
            ) from None
        except psycopg.Error as exc:
            raise SourceError(
                f"PostgreSQL ({self.pg.describe()}) error while reading {what}: {_one_line(exc)}"
            ) from None

    def counts(self) -> Counts:
        """Rows in `listings` and `listing_images`: what the index must hold.

        Where dbt built the service's staging views (`<schema>_migration.stg_microservice__listings`,
        which leaves out the listings the service marked deleted when `soft_delete_column` is set),
        a soft-deleted listing and its images are not counted: search does not serve them."""
        served = sql.Identifier(f"{self.schema}_migration", "stg_microservice__listings")
        with self._errors("row counts"), self.conn.cursor() as cur:
            cur.execute("select to_regclass(%s) is not null", (served.as_string(cur),))
            staged_view = bool(cur.fetchone()[0])
        if staged_view:
            query = sql.SQL(
                "select (select count(*) from {served}),"
                " (select count(*) from {images} as i where exists"
                " (select from {served} as l where l.listing_id = i.listing_id))"
            ).format(served=served, images=self._table("listing_images"))
        else:
            query = sql.SQL("select (select count(*) from {}), (select count(*) from {})").format(
                self._table("listings"), self._table("listing_images")
            )
        with self._errors("row counts"), self.conn.cursor() as cur:
            cur.execute(query)
            listings, images = cur.fetchone()
        return Counts(listings=listings, images=images)

    def check_view(self) -> None:
        """Fail early, with a clear message, if the documents view is missing."""
        query = sql.SQL("select id, document from {} where false").format(self._view())
        with self._errors(f"{self.search_schema}.{VIEW}"), self.conn.cursor() as cur:
            cur.execute(query)

    def documents(self, fetch_rows: int = FETCH_ROWS, limit: int | None = None) -> Iterator[list[tuple[int, bytes]]]:
        """All documents in id order (the first `limit` only, if given), as lists of
        (id, document as UTF-8 bytes) of up to fetch_rows.

        The view itself is ordered by id (a merge join over the primary keys); an outer
        `order by` here would make PostgreSQL sort every document before the first one
        is sent, so the order is left to the view."""
        query = sql.SQL("select id, document::text from {}").format(self._view())
        if limit is not None:
            query = sql.SQL("{} limit {}").format(query, sql.Literal(limit))
        with (
            self._errors(f"{self.search_schema}.{VIEW}"),
            self.conn.cursor(name="indexer_documents") as cur,
        ):
            # The document text goes to OpenSearch as the bytes PostgreSQL sent:
            # no UTF-8 decode here and encode again when the body is built.
            cur.adapters.register_loader("text", _RawText)
            cur.itersize = fetch_rows
            cur.execute(query)
            while rows := cur.fetchmany(fetch_rows):
                yield rows

    def document_hashes(self, fetch_rows: int = 10000) -> Iterator[tuple[int, str]]:
        """(id, md5 of the document's UTF-8 text) for every document, ascending by id.

        The same bytes the bulk loader hashes (document::text in UTF-8), hashed on the
        server: only ids and hashes cross the wire. Sorting (id, hash) pairs is cheap."""
        query = sql.SQL("select id, md5(convert_to(document::text, 'UTF8')) from {} order by id").format(self._view())
        with (
            self._errors(f"{self.search_schema}.{VIEW}"),
            self.conn.cursor(name="indexer_hashes") as cur,
        ):
            cur.itersize = fetch_rows
            cur.execute(query)
            while rows := cur.fetchmany(fetch_rows):
                yield from rows

    def documents_by_id(self, ids: list[int]) -> dict[int, str]:
        """The documents (as text) of the given listing ids; absent ids are left out."""
        query = sql.SQL("select id, document::text from {} where id = any(%s)").format(self._view())
        with self._errors(f"{self.search_schema}.{VIEW}"), self.conn.cursor() as cur:
            cur.execute(query, (ids,))
            return dict(cur.fetchall())

    def sample_ids(self, size: int, random_state: int) -> list[int]:
        """`size` listing ids chosen pseudo-randomly but reproducibly from `random_state`."""
        query = sql.SQL("select id from {} order by md5(%s || ':' || id::text) limit %s").format(
            self._table("listings")
        )
        with self._errors("a sample of listing ids"), self.conn.cursor() as cur:
            cur.execute(query, (str(random_state), size))
            return sorted(row[0] for row in cur.fetchall())

    def listing_ids(self, fetch_rows: int = 10000) -> Iterator[int]:
        """Every listing id, ascending (server-side cursor: flat memory)."""
        query = sql.SQL("select id from {} order by id").format(self._table("listings"))
        with self._errors("listing ids"), self.conn.cursor(name="indexer_ids") as cur:
            cur.itersize = fetch_rows
            cur.execute(query)
            while rows := cur.fetchmany(fetch_rows):
                for (listing_id,) in rows:
                    yield listing_id


class _RawText(Loader):
    """Loads a text column as the raw bytes PostgreSQL sent (UTF-8)."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)
