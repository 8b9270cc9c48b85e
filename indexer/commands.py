"""The commands: reindex, validate, rollback, status, unlock.

Each prints its report on `out` (stdout), progress on `err` (stderr), and raises an
`IndexerError` (one line, see errors.py) when it fails.

reindex and rollback hold the alias's lock (lock.py) for their whole run: a second run
on the same alias is refused at once, naming the holder.

A reindex that fails (documents rejected, validation mismatch, replicas that do not
allocate, Ctrl-C or SIGTERM, lost connection, lost lock) never moves the alias. Its new
index is deleted, or with --keep-failed left in place with `_meta.indexer.state = failed`
and a write block, for inspection; the next successful reindex prunes it. A run killed
outright (SIGKILL) leaves an index in state `loading` that never got the alias (and a lock
that the next run takes over); the next successful run prunes the index.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import TextIO

from opensearchpy import OpenSearch

from listings_common.progress import Progress

from . import sync as index_sync
from .bulk import BulkLoader, LoadResult, batched
from .config import Config
from .errors import DataError, IndexerError, OpenSearchError
from .lock import LockStore, alias_lock, this_host
from .lock import unlock as remove_lock
from .opensearch import IndexInfo, Indices, load_alias, make_client
from .retry import RetryPolicy
from .source import ReadSnapshot
from .validate import validate

# A source with fewer documents than this share of what the alias serves is refused
# without --allow-shrink (a wrong schema, a half-built source, a filter bug).
SHRINK_LIMIT = 0.5
# Primary shards when --shards is not given: one per this many listings (at least one).
DOCS_PER_SHARD = 10_000_000


def _connect(config: Config) -> tuple[OpenSearch, Indices]:
    client = make_client(config.opensearch, pool_size=config.senders + 3)
    indices = Indices(client, config.opensearch, config.alias, RetryPolicy(max_retries=config.max_retries))
    indices.check_server()
    return client, indices


def _rejection_lines(result: LoadResult) -> list[str]:
    lines = [f"rejected documents: {result.rejected:,}" + (" (stopped early)" if result.stopped_early else "")]
    lines += [f"  id={r.listing_id}  HTTP {r.status}  {r.reason}" for r in result.rejections]
    if result.rejected > len(result.rejections):
        lines.append(f"  ... and {result.rejected - len(result.rejections):,} more")
    return lines


def _abandon(indices: Indices, name: str, keep_failed: bool, reason: str, err: TextIO) -> None:
    """Best effort after a failed run: delete the new index, or mark it failed and block writes.

    Never when the alias points at it (a move whose answer was lost may still have applied):
    deleting it would delete the alias with it."""
    try:
        if name in indices.alias_holders():
            print(f"reindex: {name} holds alias {indices.alias} after all; left in place", file=err)
            return
        if keep_failed:
            indices.mark(name, "failed", reason=reason)
            indices.block_writes(name)
            print(f"reindex: left {name} in place, marked failed", file=err)
        else:
            indices.delete([name])
            print(f"reindex: deleted the unfinished index {name}", file=err)
    except (IndexerError, ValueError) as exc:
        print(f"reindex: could not clean up {name} ({exc}); the next reindex prunes it", file=err)


def _quick(indices: Indices, seconds: float = 5.0) -> Indices:
    """The same indices with a short retry budget, for clean-up on the way out."""
    return Indices(indices.client, indices.settings, indices.alias, RetryPolicy(max_retries=2, backoff_max=seconds))


def _check_replace_index(indices: Indices, config: Config) -> None:
    plain = indices.concrete_index_named_like_alias()
    if plain and not config.replace_index:
        raise OpenSearchError(
            f"a plain index named {config.alias} exists (made by the old scripts?), so no alias can have "
            "that name; re-run with --replace-index to delete it in the same step that adds the alias"
        )
    if config.replace_index and not plain:
        raise OpenSearchError(
            f"--replace-index was given but there is no plain index named {config.alias} to replace; run without it"
        )


def _replicas(indices: Indices, config: Config) -> tuple[int, str]:
    """--replicas, or 1 on a cluster with more than one data node, else 0; checked against the nodes."""
    nodes = indices.data_nodes()
    replicas = config.replicas if config.replicas is not None else (1 if nodes > 1 else 0)
    if replicas > max(nodes - 1, 0):
        raise OpenSearchError(
            f"--replicas {replicas} needs at least {replicas + 1} data nodes, and the cluster has {nodes}; "
            f"a replica is never allocated on its primary's node (use --replicas {max(nodes - 1, 0)})"
        )
    how = "--replicas" if config.replicas is not None else "default"
    return replicas, f"{replicas} replica(s): {how}, {nodes} data node(s)"


def _shrink_guard(indices: Indices, config: Config, listings: int, holders: list[str]) -> None:
    """Refuse a source much smaller than what the alias serves (--allow-shrink / --allow-empty)."""
    if not holders or config.allow_shrink:
        return
    served = indices.count(config.alias)
    source = f"{config.schema}.listings in {config.pg.describe()}"
    built_from = sorted(
        {str(i.meta["source"]) for i in indices.managed() if i.name in holders and i.meta.get("source")}
    )
    serving = (
        f"alias {config.alias} (index {', '.join(holders)}, built from {'; '.join(built_from) or 'an unknown source'})"
    )
    if listings == 0 and served and not config.allow_empty:
        raise DataError(
            f"{source} is empty but {serving} serves {served:,} documents; refusing to replace it with an "
            "empty index (--allow-empty to do it anyway)"
        )
    if listings and served and listings < SHRINK_LIMIT * served:
        raise DataError(
            f"refusing to shrink the index: {source} has {listings:,} listings but {serving} serves "
            f"{served:,} documents (less than {SHRINK_LIMIT:.0%}); check the source "
            "(LISTINGS_SCHEMA, PGDATABASE, the last dbt build or publish), or pass --allow-shrink"
        )


def _ensure_replicas(indices: Indices, name: str, replicas: int, timeout: float) -> None:
    if not replicas:
        return
    ok, detail = indices.replicas_allocated(name, replicas, timeout)
    if not ok:
        raise OpenSearchError(
            f"the {replicas} replica(s) of {name} are not all allocated after {timeout:.0f}s ({detail}); "
            "alias not moved"
        )


def reindex(config: Config, out: TextIO | None = None, err: TextIO | None = None) -> None:
    """Load every document into a new index, validate it, then move the alias to it."""
    out, err = out or sys.stdout, err or sys.stderr
    client, indices = _connect(config)
    _check_replace_index(indices, config)
    with alias_lock(client, config.opensearch, indices.policy, config.alias, "reindex", config.lock_lease, err) as lock:
        _reindex_locked(config, client, indices, lock, out, err)


def _reindex_locked(config: Config, client: OpenSearch, indices: Indices, lock, out: TextIO, err: TextIO) -> None:
    started = time.monotonic()
    replicas, replica_note = _replicas(indices, config)
    with ReadSnapshot(config.pg, config.schema) as snapshot:
        snapshot.check_view()
        counts = snapshot.counts()
        # the last publish run this snapshot sees: recorded in _meta, the catch-up sync starts there
        published_run = index_sync.published_run(snapshot.conn, config.schema)
        holders = indices.alias_holders()
        _shrink_guard(indices, config, counts.listings, holders)
        shards = config.shards or max(1, math.ceil(counts.listings / DOCS_PER_SHARD))
        name = indices.new_index_name()
        newer = [h for h in holders if indices.is_managed(h) and h > name]
        if newer:
            raise OpenSearchError(f"alias {config.alias} already serves a newer index {newer[0]}; not building {name}")
        lock.note(index=name)
        indices.create(
            name,
            shards,
            run=lock.token,
            host=this_host(),
            pid=os.getpid(),
            source=f"{config.pg.describe()} schema {config.schema}",
            replicas=replicas,
            published_run=published_run,
        )
        print(
            f"reindex: {counts.listings:,} listings -> {name} ({shards} shard(s), {replica_note})",
            file=err,
            flush=True,
        )
        loader: BulkLoader | None = None
        try:
            progress = Progress(counts.listings, stream=err, enabled=config.progress)
            loader = BulkLoader(
                client,
                config.opensearch,
                name,
                config.senders,
                config.max_retries,
                progress,
                wait_for_active_shards=config.wait_for_active_shards,
                write_alias=load_alias(name),
            )
            lock.on_lost(loader.abort)
            # (id, document, version): every write carries the ledger's version (sync.py)
            rows = index_sync.versioned_documents(snapshot, fetch_rows=min(config.batch_docs, 5000))
            with progress.ticking():
                result = loader.load(batched(rows, config.batch_docs, config.batch_bytes))
            load_seconds = time.monotonic() - started
            indices.finish_load(name, replicas, config.refresh_interval)
            if result.rejected:
                print("\n".join(_rejection_lines(result)), file=out)
                raise DataError(f"{result.rejected:,} documents rejected by OpenSearch (ids above); alias not moved")
            _ensure_replicas(indices, name, replicas, config.replica_timeout)
            report = validate(
                client, config.opensearch, name, snapshot, config.sample, config.random_state, counts, indices.policy
            )
            print("\n".join(report.lines()), file=out)
            if not report.ok:
                raise DataError(f"validation of the new index {name} failed (see above); alias not moved")
            indices.mark(
                name,
                "complete",
                documents=counts.listings,
                images=counts.images,
                validated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            )
            # Still ours, and every copy still there (a node may have left during validation)?
            lock.check()
            _ensure_replicas(indices, name, replicas, min(config.replica_timeout, 60.0))
            previous = indices.move_alias(name, replace_index=config.replace_index, expected=holders)
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, IndexerError) else exc.__class__.__name__
            cleanup = _quick(indices)
            _abandon(cleanup, name, config.keep_failed, reason, err)
            if loader is not None and loader.busy() and not config.keep_failed:
                # A bulk request still in flight could re-create the index: delete it again.
                loader.wait(2.0)
                _abandon(cleanup, name, False, reason, err)
            raise
    # The alias is on the new, validated index: what was published while it loaded comes first,
    # then the old indices go. A prune that fails is a warning: the next reindex prunes them.
    caught_up = index_sync.catch_up(config, client, indices, lock, name, published_run, err)
    try:
        pruned = indices.prune(name, previous, config.keep)
    except OpenSearchError as exc:
        print(f"reindex: warning: {exc}; the alias is on {name}, the next reindex prunes the rest", file=err)
        pruned = []
    seconds = time.monotonic() - started
    moved_from = f" (was on {', '.join(previous)})" if previous else " (new alias)"
    print(
        "\n".join(
            [
                "reindex: OK",
                f"  index      {name}",
                f"  documents  {result.indexed:,}  images {counts.images:,}"
                + (f"  skipped {result.skipped:,} (a newer version was already there)" if result.skipped else ""),
                f"  shards     {shards} primary, {replicas} replica(s), refresh {config.refresh_interval}",
                f"  seconds    {seconds:.1f} (loading {load_seconds:.1f})",
                f"  docs/s     {result.indexed / load_seconds if load_seconds else 0:,.0f} (loading)",
                f"  retries    {result.retried_requests} requests, {result.retried_items} items",
                f"  alias      {config.alias} -> {name}, moved{moved_from}",
                f"  pruned     {', '.join(pruned) if pruned else 'nothing'}",
                f"  sync       {caught_up}",
            ]
        ),
        file=out,
    )


def validate_command(config: Config, index: str | None = None, out: TextIO | None = None) -> None:
    """Validate the live alias (or the given index) against the database."""
    out = out or sys.stdout
    client, indices = _connect(config)
    target = index or config.alias
    if index is None and not indices.alias_holders():
        raise OpenSearchError(f"alias {config.alias} does not exist; run `reindex` first")
    with ReadSnapshot(config.pg, config.schema) as snapshot:
        report = validate(
            client, config.opensearch, target, snapshot, config.sample, config.random_state, policy=indices.policy
        )
    print("\n".join(report.lines()), file=out)
    if not report.ok:
        failed = sum(1 for passed, _ in report.checks if not passed)
        raise DataError(f"validation of {target} failed: {failed} check(s), {report.problem_total} difference(s)")


def _refuse_target(indices: Indices, info: IndexInfo | None, name: str, current: str) -> None:
    """One line if `name` may not get the alias: only a complete, validated, open index may."""
    alias = indices.alias
    if info is None:
        raise DataError(f"{name} is not an index of alias {alias} (not found, or not named {alias}_<timestamp>)")
    if name == current:
        raise DataError(f"{name} already has alias {alias}")
    if not info.is_open:
        raise DataError(f"{name} is closed; refusing to point alias {alias} at it")
    if info.state != "complete":
        raise DataError(f"{name} is in state {info.state}; only a complete, validated index can get alias {alias}")
    if not info.validated:
        raise DataError(f"{name} was never validated (no validated_at in its _meta); refusing to point {alias} at it")
    expected = info.meta.get("documents")
    if isinstance(expected, int):
        actual = indices.count(name)
        if actual != expected:
            raise DataError(f"{name} holds {actual:,} documents but was validated with {expected:,}; refusing it")


def rollback(config: Config, to: str | None = None, out: TextIO | None = None, err: TextIO | None = None) -> None:
    """Move the alias back to the newest validated index older than the current one (or to `to`).

    Kill-safe: the current index is marked `rolled_back` (with `rolled_back_to`) BEFORE the
    alias moves; a rollback killed between the two leaves the alias on an index marked
    rolled_back, and the next `rollback` finishes the move to the recorded target.
    """
    out, err = out or sys.stdout, err or sys.stderr
    client, indices = _connect(config)
    lease = config.lock_lease
    with alias_lock(client, config.opensearch, indices.policy, config.alias, "rollback", lease, err) as lock:
        holders = indices.alias_holders()
        if len(holders) != 1 or not indices.is_managed(holders[0]):
            raise DataError(f"alias {config.alias} points to {holders or 'nothing'}; cannot tell what to roll back")
        current = holders[0]
        infos = {info.name: info for info in indices.managed()}
        resumed = ""
        current_info = infos.get(current)
        if to is not None:
            target = to
        elif (
            current_info is not None and current_info.state == "rolled_back" and current_info.meta.get("rolled_back_to")
        ):
            target = str(current_info.meta["rolled_back_to"])
            resumed = " (finishing an interrupted rollback)"
        else:
            candidates = [n for n, i in infos.items() if n < current and i.validated and i.is_open]
            if not candidates:
                raise DataError(f"no previous complete, validated index to roll back to (alias is on {current})")
            target = max(candidates)
        _refuse_target(indices, infos.get(target), target, current)
        indices.mark(current, "rolled_back", rolled_back_to=target)
        try:
            lock.check()
            indices.move_alias(target, expected=[current])
            index_sync.reset_for(config, target, infos[target].meta.get("published_run"), err)
        except BaseException:
            try:
                if _quick(indices).alias_holders() == [current]:
                    _quick(indices).mark(current, "complete", rolled_back_to=None)
            except IndexerError:
                pass
            raise
    print(f"rollback: {config.alias} -> {target} (was on {current}, now marked rolled_back){resumed}", file=out)


def unlock(config: Config, force: bool = False, out: TextIO | None = None) -> None:
    """Remove the alias's lock if its holder is gone (lease expired, or its pid on this host), or with force."""
    out = out or sys.stdout
    client, indices = _connect(config)
    _, message = remove_lock(client, config.opensearch, indices.policy, config.alias, force)
    print(f"unlock: {message}", file=out)


def status(config: Config, out: TextIO | None = None) -> None:
    """The alias, its indices (docs, created, state) and the database's counts."""
    out = out or sys.stdout
    client, indices = _connect(config)
    holders = indices.alias_holders()
    infos = indices.managed(with_counts=True)
    print(f"alias   {config.alias} -> {', '.join(holders) if holders else '(none)'}", file=out)
    holder = LockStore(client, config.opensearch, indices.policy).read(config.alias)
    if holder is None:
        print("lock    (free)", file=out)
    else:
        stale = holder.stale_reason()
        print(f"lock    held by {holder.describe()}" + (f"; STALE: {stale}" if stale else ""), file=out)
    width = max([len(i.name) for i in infos] + [5])
    print(f"{'index':<{width}}  {'state':<11}  {'docs':>12}  created (UTC)        alias", file=out)
    for info in infos:
        created = info.created.strftime("%Y-%m-%d %H:%M:%S") if info.created else "?"
        docs = f"{info.docs:,}" if info.docs is not None else "-"
        mark = "*" if info.has_alias else ""
        state = info.state if info.is_open else f"{info.state}/closed"
        print(f"{info.name:<{width}}  {state:<11}  {docs:>12}  {created}  {mark}", file=out)
    if not infos:
        print("(no indices)", file=out)
    with ReadSnapshot(config.pg, config.schema) as snapshot:
        counts = snapshot.counts()
    print(
        f"database  {counts.listings:,} listings, {counts.images:,} listing_images "
        f"({config.pg.describe()}, schema {config.schema})",
        file=out,
    )
    print(f"sync      {index_sync.status_line(config)}", file=out)
