"""`listings-indexer sync`: apply to the live alias what the publish ledger says changed.

`listings-migration publish` records, per listing it published, the run that last
changed it (`<schema>_migration.published_listings.version`, deletions included: the
row stays as a tombstone). A sync reads, in ONE read-only REPEATABLE READ snapshot, the
ledger rows past its checkpoint in `(version, listing_id)` order and each one's document
from the documents view: a listing with a document is upserted, one without (deleted,
soft-deleted, quarantined) is deleted from the index. Writes go in bulk requests of
`--batch-docs` through the alias (`require_alias`: a deleted index is never re-created),
with `wait_for_active_shards` (`--wait-for-active-shards`, default all, as the reindex's).

Every write carries an external version, `version_type=external_gte`: the ledger's
`version` (0 for the service's own listings, which are not in the ledger). A replayed
write (same version) rewrites the same state; an older one is refused by OpenSearch
with 409, counted as `skipped`: a stale or late write can never overwrite newer data.
Deletes are versioned too; their tombstone lasts `index.gc_deletes`, which sync sets to
GC_DELETES (a day) on the index when its checkpoint starts there (OpenSearch's default is
60 s, after which an older write would re-create a deleted document).

The checkpoint lives with the data, `<schema>_migration.index_sync_checkpoints` (one
row per alias: the index it is for, and the position `(run_id, last_listing_id)`, all
changes up to and including it applied; `last_listing_id` null: all of `run_id`). It
advances in its own transaction after each batch OpenSearch acknowledged, so a sync
killed at any point resumes at the first unacknowledged batch: nothing skipped, and the
one batch that may be re-sent is harmless (equal versions). Each run is a row of
`<schema>_migration.index_sync_runs` (from/to position, counts, status).

`reindex` records in its index's `_meta.indexer.published_run` the last publish run its
snapshot saw; after moving the alias it runs this catch-up from that run under the same
lock and writes the checkpoint. If the checkpoint is missing or names another index than
the alias's (a rollback, a reindex killed right after the move), the sync starts from the
alias's index's `published_run`; an index without one (built before versioned writes)
is refused: reindex first.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TextIO

import psycopg
from opensearchpy import OpenSearch
from opensearchpy.exceptions import SerializationError, TransportError
from psycopg import sql

from listings_common.errors import ConfigError

from .bulk import with_hash
from .config import Config
from .errors import DataError, IndexerError, OpenSearchError, SourceError
from .lock import Lock, LockLost, alias_lock
from .opensearch import Indices, describe_error
from .retry import RetryPolicy, block_message, is_transient
from .source import VIEW, ReadSnapshot, _one_line, _RawText

CHECKPOINTS = "index_sync_checkpoints"
RUNS = "index_sync_runs"
LEDGER = "published_listings"
PUBLISH_RUNS = "publish_runs"
SERVICE_VERSION = 0  # the version of a listing the service wrote itself (not in the ledger)
MAX_ID = 2**63 - 1
FILTER_PATH = "errors,items.*._id,items.*.status,items.*.result,items.*.error.type,items.*.error.reason"
REJECTION_SAMPLE = 20
DOCUMENT_CHUNK = 10_000  # changes whose documents are read in one query (see _changes)
# How long OpenSearch keeps the version of a deleted document (index.gc_deletes, default 60 s):
# a write older than a delete is refused (409) only while its tombstone lasts, so sync keeps
# them a day on the indices it writes to: a stale write later than that would re-create it.
GC_DELETES = "1d"


class NoCheckpoint(IndexerError):
    """Nothing says where the alias's index stands: reindex first (exit 2)."""


def _id(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


# --- the ledger and the checkpoint in PostgreSQL ------------------------------------------------


def state_schema(schema: str) -> str:
    return f"{schema}_migration"


def _exists(conn: psycopg.Connection, schema: str, name: str | None = None) -> bool:
    if name is None:
        return bool(conn.execute("select to_regnamespace(%s) is not null", (f'"{schema}"',)).fetchone()[0])
    return bool(conn.execute("select to_regclass(%s) is not null", (f'"{schema}"."{name}"',)).fetchone()[0])


def published_run(conn: psycopg.Connection, schema: str) -> int | None:
    """The last publish run visible to `conn`'s snapshot: 0 before the first publish, None without
    the migration's schema (no ledger will ever be here, e.g. a hand-made documents view)."""
    state = state_schema(schema)
    if not _exists(conn, state):
        return None
    if not _exists(conn, state, PUBLISH_RUNS):
        return 0
    query = sql.SQL("select coalesce(max(run_id), 0) from {}").format(_id(state, PUBLISH_RUNS))
    return int(conn.execute(query).fetchone()[0])


def versioned_documents(snapshot: ReadSnapshot, fetch_rows: int = 2000) -> Iterator[list[tuple[int, bytes, int]]]:
    """Every document with its external version, (id, document bytes, version), in the snapshot.

    The version is the ledger's (`published_listings.version`), 0 for listings not in it (the
    service's own, or every listing before the first publish)."""
    state = state_schema(snapshot.schema)
    view = _id(snapshot.search_schema, VIEW)
    if _exists(snapshot.conn, state, LEDGER):
        query = sql.SQL(
            "select d.id, d.document::text, coalesce(p.version, {v}) from {view} as d"
            " left join {ledger} as p on p.listing_id = d.id"
        ).format(view=view, ledger=_id(state, LEDGER), v=sql.Literal(SERVICE_VERSION))
    else:
        query = sql.SQL("select id, document::text, {v}::bigint from {view}").format(
            view=view, v=sql.Literal(SERVICE_VERSION)
        )
    with snapshot._errors(f"{snapshot.search_schema}.{VIEW}"), snapshot.conn.cursor(name="indexer_versioned") as cur:
        cur.adapters.register_loader("text", _RawText)
        cur.itersize = fetch_rows
        cur.execute(query)
        while rows := cur.fetchmany(fetch_rows):
            yield rows


@dataclass(frozen=True)
class Position:
    """All changes up to and including (run_id, last_listing_id) are applied; None: all of run_id."""

    run_id: int
    last_listing_id: int | None = None

    def describe(self) -> str:
        return f"run {self.run_id}" + (f" listing {self.last_listing_id}" if self.last_listing_id is not None else "")


@dataclass(frozen=True)
class Checkpoint:
    alias: str
    index_name: str
    position: Position


class Store:
    """The checkpoint and the run log: a writable autocommit connection of its own."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.state = state_schema(config.schema)
        self.conn: psycopg.Connection | None = None

    def __enter__(self) -> Store:
        self.conn = self.config.pg.connect(autocommit=True, application_name="listings-indexer sync")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _do(self, what: str, query: sql.Composable, params: tuple | dict = ()) -> list[tuple]:
        assert self.conn is not None
        try:
            cur = self.conn.execute(query, params)
            return cur.fetchall() if cur.description else []
        except psycopg.errors.InsufficientPrivilege as exc:
            raise SourceError(
                f"PostgreSQL: {_one_line(exc)} while {what}; the indexer's role needs CREATE on schema {self.state}"
                f" (or a DBA creates {self.state}.{CHECKPOINTS} and {self.state}.{RUNS}) and"
                " SELECT, INSERT, UPDATE on them"
            ) from None
        except psycopg.Error as exc:
            raise SourceError(f"PostgreSQL error while {what}: {_one_line(exc)}") from None

    def has_schema(self) -> bool:
        assert self.conn is not None
        return _exists(self.conn, self.state)

    def ensure(self) -> None:
        """The two tables, created if missing (needs the migration's schema: `dbt build` made it)."""
        assert self.conn is not None
        if _exists(self.conn, self.state, CHECKPOINTS) and _exists(self.conn, self.state, RUNS):
            return
        ddl = sql.SQL("""
            create table if not exists {checkpoints} (
                alias text primary key,
                index_name text not null,
                run_id bigint not null,
                last_listing_id bigint,
                updated_at timestamptz not null default now(),
                upserted bigint not null default 0,
                deleted bigint not null default 0,
                skipped bigint not null default 0,
                last_sync_id bigint
            );
            comment on table {checkpoints} is
                'listings-indexer sync: per alias, the index and the position in the publish ledger (version,'
                ' listing_id) up to which every change is in that index; last_listing_id null: all of run_id.'
                ' Counts are totals since the index was built.';
            create table if not exists {runs} (
                sync_id bigint generated always as identity primary key,
                alias text not null,
                index_name text not null,
                command text not null,
                from_run bigint not null,
                from_listing_id bigint,
                to_run bigint not null,
                started_at timestamptz not null default now(),
                finished_at timestamptz,
                status text not null,
                batches integer not null default 0,
                upserted bigint not null default 0,
                deleted bigint not null default 0,
                skipped bigint not null default 0,
                message text
            );
            comment on table {runs} is
                'One row per listings-indexer sync (and per reindex catch-up): from/to position, counts, status'
                ' (running, ok, failed; killed when a later sync found it still running).';
        """).format(checkpoints=_id(self.state, CHECKPOINTS), runs=_id(self.state, RUNS))
        try:
            self._do(f"creating {self.state}.{CHECKPOINTS}", ddl)
        except SourceError:
            if not (_exists(self.conn, self.state, CHECKPOINTS) and _exists(self.conn, self.state, RUNS)):
                raise  # (else: a concurrent create of another alias won)

    def read(self, alias: str) -> Checkpoint | None:
        if not _exists(self.conn, self.state, CHECKPOINTS):
            return None
        rows = self._do(
            "reading the sync checkpoint",
            sql.SQL("select index_name, run_id, last_listing_id from {} where alias = %s").format(
                _id(self.state, CHECKPOINTS)
            ),
            (alias,),
        )
        if not rows:
            return None
        index_name, run_id, last = rows[0]
        return Checkpoint(alias, index_name, Position(run_id, last))

    def reset(self, alias: str, index_name: str, position: Position) -> None:
        """Point the alias's checkpoint at `index_name`, at `position` (counts start again)."""
        self.ensure()
        self._do(
            "writing the sync checkpoint",
            sql.SQL(
                "insert into {} as c (alias, index_name, run_id, last_listing_id) values (%s, %s, %s, %s)"
                " on conflict (alias) do update set index_name = excluded.index_name, run_id = excluded.run_id,"
                " last_listing_id = excluded.last_listing_id, updated_at = now(), upserted = 0, deleted = 0,"
                " skipped = 0"
            ).format(_id(self.state, CHECKPOINTS)),
            (alias, index_name, position.run_id, position.last_listing_id),
        )

    def start_run(self, alias: str, index_name: str, command: str, start: Position, to_run: int) -> int:
        runs = _id(self.state, RUNS)
        # We hold the alias's lock: a run of this alias still `running` was killed.
        self._do(
            "recording the sync run",
            sql.SQL(
                "update {} set status = 'killed', message = 'found still running by sync ' || %s"
                " where alias = %s and status = 'running'"
            ).format(runs),
            (command, alias),
        )
        rows = self._do(
            "recording the sync run",
            sql.SQL(
                "insert into {} (alias, index_name, command, from_run, from_listing_id, to_run, status)"
                " values (%s, %s, %s, %s, %s, %s, 'running') returning sync_id"
            ).format(runs),
            (alias, index_name, command, start.run_id, start.last_listing_id, to_run),
        )
        return int(rows[0][0])

    def advance(self, alias: str, index_name: str, sync_id: int, position: Position, counts: SyncCounts) -> None:
        """One transaction: the checkpoint moves to `position`, the counts of this batch are added."""
        assert self.conn is not None
        try:
            with self.conn.transaction():
                updated = self.conn.execute(
                    sql.SQL(
                        "update {} set run_id = %s, last_listing_id = %s, updated_at = now(),"
                        " upserted = upserted + %s, deleted = deleted + %s, skipped = skipped + %s,"
                        " last_sync_id = %s where alias = %s and index_name = %s"
                    ).format(_id(self.state, CHECKPOINTS)),
                    (
                        position.run_id, position.last_listing_id, counts.upserted, counts.deleted, counts.skipped,
                        sync_id, alias, index_name,
                    ),
                ).rowcount  # fmt: skip
                if updated != 1:
                    raise SourceError(
                        f"the sync checkpoint of alias {alias} no longer names index {index_name} (changed by another"
                        " run?); stopping"
                    )
                self.conn.execute(
                    sql.SQL(
                        "update {} set batches = batches + %s, upserted = upserted + %s, deleted = deleted + %s,"
                        " skipped = skipped + %s where sync_id = %s"
                    ).format(_id(self.state, RUNS)),
                    (counts.batches, counts.upserted, counts.deleted, counts.skipped, sync_id),
                )
        except psycopg.Error as exc:
            raise SourceError(f"PostgreSQL error while advancing the sync checkpoint: {_one_line(exc)}") from None

    def finish_run(self, sync_id: int, status: str, message: str | None = None) -> None:
        self._do(
            "recording the end of the sync run",
            sql.SQL(
                "update {} set status = %s, message = %s, finished_at = clock_timestamp() where sync_id = %s"
            ).format(_id(self.state, RUNS)),
            (status, message, sync_id),
        )


# --- writing to OpenSearch ---------------------------------------------------------------------


@dataclass
class SyncCounts:
    upserted: int = 0
    deleted: int = 0  # includes deletes of documents that were not there (`absent`)
    absent: int = 0
    skipped: int = 0  # 409: the index already holds a newer version
    batches: int = 0
    retried: int = 0

    def add(self, other: SyncCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Change:
    listing_id: int
    version: int
    document: bytes | None  # None: no document in the view, delete it

    def action(self) -> bytes:
        op = b"index" if self.document is not None else b"delete"
        line = b'{"%b":{"_id":"%d","version":%d,"version_type":"external_gte"}}\n' % (op, self.listing_id, self.version)
        if self.document is None:
            return line
        return line + with_hash(self.document) + b"\n"


@dataclass
class Rejected:
    rejections: list[str] = field(default_factory=list)
    total: int = 0


class Writer:
    """Versioned bulk writes through the alias, retried like the loader's; 409 counted as skipped.

    Each request carries `wait_for_active_shards` (`--wait-for-active-shards`, default all, as
    the reindex's): a write is not applied while copies of its shard are missing; OpenSearch
    waits for them, and a request that times out is retried, then sync fails in one line."""

    def __init__(self, client: OpenSearch, config: Config, policy: RetryPolicy, target: str) -> None:
        self.client = client
        self.config = config
        self.settings = config.opensearch
        self.policy = policy
        self.target = target

    def _post(self, body: bytes) -> dict:
        params = {"filter_path": FILTER_PATH, "require_alias": "true"}
        if self.config.wait_for_active_shards:
            params["wait_for_active_shards"] = self.config.wait_for_active_shards
        return self.client.transport.perform_request(
            "POST",
            f"/{self.target}/_bulk",
            params=params,
            body=body,
            headers={"content-type": "application/x-ndjson"},
            timeout=self.settings.timeout,
        )

    def send(self, changes: list[Change], rejected: Rejected) -> SyncCounts:
        counts = SyncCounts(batches=1)
        pending = changes
        retry_after: float | None = None
        for attempt in range(self.policy.max_retries + 1):
            if attempt and not self.policy.sleep(attempt - 1, retry_after):
                raise KeyboardInterrupt
            retry_after = None
            try:
                response = self._post(b"".join(c.action() for c in pending))
            except SerializationError:
                raise OpenSearchError(
                    f"{self.settings.describe()} answered a bulk request with a body that is not JSON"
                ) from None
            except TransportError as exc:
                reason = describe_error(exc, self.settings, f"bulk-write into {self.target}")
                if "alias" in reason and exc.status_code == 404:
                    raise OpenSearchError(f"alias {self.target} is gone (deleted while syncing?): {reason}") from None
                blocked = block_message(self.target, "", reason)
                if blocked:
                    raise OpenSearchError(f"could not write: {blocked}", exc.status_code) from None
                if is_transient(exc) and attempt < self.policy.max_retries:
                    retry_after = getattr(exc, "retry_after", None)
                    counts.retried += 1
                    continue
                raise OpenSearchError(reason + (f" (after {attempt} retries)" if attempt else "")) from None
            items = response.get("items") if isinstance(response, dict) else None
            if not isinstance(items, list) or len(items) != len(pending):
                raise OpenSearchError(
                    f"OpenSearch answered a bulk request of {len(pending)} writes into {self.target} with"
                    f" {len(items) if isinstance(items, list) else 'no'} items; the answer cannot be trusted, stopping"
                )
            retry: list[Change] = []
            for change, item in zip(pending, items, strict=True):
                result = next(iter(item.values())) if isinstance(item, dict) and item else {}
                status = result.get("status", 0) if isinstance(result, dict) else 0
                error = (result.get("error") if isinstance(result, dict) else None) or {}
                if change.document is None and status in (200, 404) and not error:
                    counts.deleted += 1
                    counts.absent += status == 404
                elif isinstance(status, int) and 200 <= status < 300:
                    counts.upserted += 1
                elif status == 409:
                    counts.skipped += 1
                else:
                    kind, why = str(error.get("type", "error")), str(error.get("reason", ""))
                    blocked = block_message(self.target, kind, why)
                    if blocked:
                        raise OpenSearchError(f"could not write: {blocked}", status)
                    if status == 429 or (isinstance(status, int) and status >= 500):
                        retry.append(change)
                        continue
                    rejected.total += 1
                    if len(rejected.rejections) < REJECTION_SAMPLE:
                        text = " ".join(why.split())
                        rejected.rejections.append(f"  id={change.listing_id}  HTTP {status}  {kind}: {text}")
            if not retry:
                return counts
            counts.retried += 1
            pending = retry
        raise OpenSearchError(
            f"OpenSearch kept refusing {len(pending)} writes (HTTP 429/5xx) into {self.target} after"
            f" {self.policy.max_retries} retries; first id {pending[0].listing_id}"
        )


# --- the sync ------------------------------------------------------------------------------------


def keep_tombstones(indices: Indices, index: str) -> None:
    """index.gc_deletes = GC_DELETES on `index` (once, when the checkpoint starts on it)."""
    indices._call(
        f"set index.gc_deletes of {index}",
        lambda: indices.client.indices.put_settings(index=index, body={"index": {"gc_deletes": GC_DELETES}}),
        index=index,
    )


def _changes(snapshot: ReadSnapshot, start: Position, to_run: int, batch: int) -> Iterator[list[Change]]:
    """The ledger's changes after `start` up to `to_run`, in (version, listing_id) order, with their
    documents (None: delete), in batches: all from the one snapshot.

    Documents are read for up to DOCUMENT_CHUNK changes at a time (one `id = any(...)` query on
    the view; at 1M listings each such query costs about half a second whatever its size, as the
    view's location join reads the whole listing_locations), then handed out `batch` at a time."""
    state = state_schema(snapshot.schema)
    conn = snapshot.conn
    query = sql.SQL(
        "select listing_id, version from {ledger} where version <= %(to)s"
        " and (version > %(run)s or (version = %(run)s and listing_id > %(last)s))"
        " order by version, listing_id"
    ).format(ledger=_id(state, LEDGER))
    docs = sql.SQL("select id, document::text from {} where id = any(%s)").format(_id(snapshot.search_schema, VIEW))
    last = MAX_ID if start.last_listing_id is None else start.last_listing_id
    params = {"to": to_run, "run": start.run_id, "last": last}
    chunk = max(batch, DOCUMENT_CHUNK)
    with snapshot._errors(f"{state}.{LEDGER}"), conn.cursor(name="indexer_sync_changes") as cur:
        cur.itersize = chunk
        cur.execute(query, params)
        while rows := cur.fetchmany(chunk):
            with snapshot._errors(f"{snapshot.search_schema}.{VIEW}"), conn.cursor() as doc_cur:
                doc_cur.adapters.register_loader("text", _RawText)
                found = dict(doc_cur.execute(docs, ([r[0] for r in rows],)).fetchall())
            changes = [Change(listing_id, version, found.pop(listing_id, None)) for listing_id, version in rows]
            del found
            for begin in range(0, len(changes), batch):
                yield changes[begin : begin + batch]


@dataclass
class SyncResult:
    index: str
    start: Position
    end: Position
    counts: SyncCounts
    seconds: float
    started_from: str

    def lines(self, command: str = "sync") -> list[str]:
        c = self.counts
        absent = f" ({c.absent:,} were not in the index)" if c.absent else ""
        return [
            f"{command}: OK" if command == "sync" else f"{command}:",
            f"  index      {self.index}",
            f"  from       {self.start.describe()} ({self.started_from})",
            f"  to         {self.end.describe()}",
            f"  upserted   {c.upserted:,}",
            f"  deleted    {c.deleted:,}{absent}",
            f"  skipped    {c.skipped:,} (the index already had a newer version)",
            f"  batches    {c.batches:,}, retried requests {c.retried:,}",
            f"  seconds    {self.seconds:.2f}",
        ]


def run_sync(
    config: Config,
    client: OpenSearch,
    indices: Indices,
    lock: Lock,
    err: TextIO,
    *,
    command: str = "sync",
    start_over: tuple[str, Position] | None = None,
) -> SyncResult | None:
    """Apply the ledger's changes since the checkpoint to the alias (the caller holds its lock).

    `start_over=(index, position)`: write that checkpoint first (reindex's catch-up). Returns None
    when there is no migration schema (no ledger can exist: nothing to sync)."""
    started = time.monotonic()
    holders = indices.alias_holders()
    if len(holders) != 1 or not indices.is_managed(holders[0]):
        raise NoCheckpoint(
            f"alias {config.alias} points to {', '.join(holders) or 'nothing'}; run `listings-indexer reindex` first"
        )
    index = holders[0]
    with Store(config) as store:
        if not store.has_schema():
            if start_over is not None:
                return None
            raise NoCheckpoint(
                f"no publish ledger: schema {store.state} does not exist (no `dbt build` / publish here?);"
                " nothing to sync from (check LISTINGS_SCHEMA)"
            )
        origin = "checkpoint"
        if start_over is not None:
            store.reset(config.alias, *start_over)
            keep_tombstones(indices, index)
            origin = "the new index's snapshot"
        checkpoint = store.read(config.alias)
        if checkpoint is None or checkpoint.index_name != index:
            info = indices.info(index)
            recorded = info.meta.get("published_run") if info is not None else None
            if not isinstance(recorded, int):
                why = (
                    "no sync checkpoint"
                    if checkpoint is None
                    else f"the sync checkpoint is for index {checkpoint.index_name}"
                )
                raise NoCheckpoint(
                    f"{why} of alias {config.alias} and its index {index} does not record the publish run it was"
                    f" built from; run `listings-indexer reindex --alias {config.alias}` first"
                )
            store.reset(config.alias, index, Position(recorded))
            keep_tombstones(indices, index)
            origin = (
                f"{index}'s snapshot: no checkpoint yet"
                if checkpoint is None
                else f"{index}'s snapshot: the checkpoint was for {checkpoint.index_name}"
            )
            checkpoint = store.read(config.alias)
        assert checkpoint is not None
        start = checkpoint.position
        counts = SyncCounts()
        rejected = Rejected()
        writer = Writer(client, config, indices.policy, config.alias)
        with ReadSnapshot(config.pg, config.schema) as snapshot:
            to_run = published_run(snapshot.conn, config.schema) or 0
            if to_run < start.run_id:
                raise DataError(
                    f"the sync checkpoint of alias {config.alias} is at {start.describe()} but the last publish run"
                    f" here is {to_run} (another database? a restored ledger?); check PGDATABASE, then reindex"
                )
            sync_id = store.start_run(config.alias, index, command, start, to_run)
            position = start
            try:
                changes = (
                    _changes(snapshot, start, to_run, config.batch_docs)
                    if to_run > start.run_id or (start.last_listing_id is not None)
                    else iter(())
                )
                for batch in changes:
                    if lock.lost:
                        raise LockLost(f"{lock.lost}; stopping (checkpoint at {position.describe()})")
                    done = writer.send(batch, rejected)
                    if rejected.total:
                        lines = "\n".join(rejected.rejections)
                        print(f"{command}: rejected writes: {rejected.total:,}\n{lines}", file=err)
                        raise DataError(
                            f"{rejected.total:,} writes rejected by OpenSearch (ids above); checkpoint left at"
                            f" {position.describe()}"
                        )
                    position = Position(batch[-1].version, batch[-1].listing_id)
                    if lock.lost:
                        raise LockLost(f"{lock.lost}; stopping (checkpoint at {position.describe()})")
                    store.advance(config.alias, index, sync_id, position, done)
                    counts.add(done)
                    if config.progress:
                        print(
                            f"{command}: {position.describe()}: {counts.upserted:,} upserted,"
                            f" {counts.deleted:,} deleted, {counts.skipped:,} skipped",
                            file=err,
                            flush=True,
                        )
                end = Position(to_run)
                if end != position:
                    store.advance(config.alias, index, sync_id, end, SyncCounts())
                if counts.batches:
                    indices.refresh(config.alias)
            except BaseException as exc:
                message = str(exc) if isinstance(exc, IndexerError) else exc.__class__.__name__
                with suppress(IndexerError):
                    store.finish_run(sync_id, "failed", message)
                raise
            store.finish_run(sync_id, "ok")
    return SyncResult(index, start, end, counts, time.monotonic() - started, origin)


def sync(config: Config, out: TextIO | None = None, err: TextIO | None = None) -> SyncResult:
    """`listings-indexer sync`: under the alias's lock, apply the ledger's changes since the checkpoint."""
    from .commands import _connect  # commands imports this module for reindex's catch-up

    out, err = out or sys.stdout, err or sys.stderr
    client, indices = _connect(config)
    with alias_lock(client, config.opensearch, indices.policy, config.alias, "sync", config.lock_lease, err) as lock:
        result = run_sync(config, client, indices, lock, err)
    assert result is not None
    print("\n".join(result.lines()), file=out)
    return result


def catch_up(
    config: Config, client: OpenSearch, indices: Indices, lock: Lock, index: str, run: int | None, err: TextIO
) -> str:
    """reindex, right after moving the alias to `index` (built from a snapshot that saw publish run `run`),
    under the same lock: write the checkpoint and apply what was published since. One line for the summary."""
    if run is None:
        return f"no publish ledger (schema {state_schema(config.schema)} does not exist): no checkpoint written"
    try:
        result = run_sync(
            config, client, indices, lock, err, command="reindex catch-up", start_over=(index, Position(run))
        )
    except (IndexerError, ConfigError) as exc:
        error = IndexerError(
            f"alias {config.alias} moved to {index}, but the catch-up sync from publish run {run} failed: {exc};"
            " run `listings-indexer sync`"
        )
        error.exit_code = getattr(exc, "exit_code", 2)
        raise error from None
    if result is None:
        return "no publish ledger: no checkpoint written"
    c = result.counts
    return (
        f"caught up from publish run {run} to {result.end.run_id}: {c.upserted:,} upserted, {c.deleted:,} deleted,"
        f" {c.skipped:,} skipped; checkpoint written"
    )


def reset_for(config: Config, index: str, recorded: object, err: TextIO) -> None:
    """After a rollback: the checkpoint of the alias restarts at `index`'s recorded publish run (best effort:
    a sync that finds the checkpoint naming another index does the same)."""
    if not isinstance(recorded, int):
        return
    try:
        with Store(config) as store:
            if store.has_schema():
                store.reset(config.alias, index, Position(recorded))
    except (IndexerError, ConfigError, psycopg.Error) as exc:
        print(f"rollback: could not reset the sync checkpoint ({exc}); the next sync does it", file=err)


def status_line(config: Config) -> str:
    """One line for `status`: where the alias's checkpoint stands against the last publish. Never raises."""
    try:
        with Store(config) as store:
            if not store.has_schema():
                return f"no publish ledger ({store.state} does not exist)"
            checkpoint = store.read(config.alias)
            last = published_run(store.conn, config.schema)
    except (IndexerError, ConfigError, psycopg.Error) as exc:
        return f"checkpoint unreadable ({exc})"
    if checkpoint is None:
        return f"no checkpoint for alias {config.alias} (last publish run {last}); the next reindex writes it"
    behind = (last or 0) - checkpoint.position.run_id
    partly = checkpoint.position.last_listing_id is not None
    lag = "up to date" if behind <= 0 and not partly else f"{behind} run(s) behind" + (", one partly" if partly else "")
    return f"checkpoint {checkpoint.position.describe()} in {checkpoint.index_name}; last publish run {last} ({lag})"
