"""The four commands: reindex, validate, rollback, status.

Each prints its report on `out` (stdout), progress on `err` (stderr), and raises an
`IndexerError` (one line, see errors.py) when it fails.

A reindex that fails (documents rejected, validation mismatch, Ctrl-C, lost connection)
never moves the alias. Its new index is deleted, or with --keep-failed left in place
with `_meta.indexer.state = failed` and a write block, for inspection; the next
successful reindex prunes it. A run killed outright (SIGKILL) leaves an index in state
`loading` that never got the alias; the next successful run prunes that too.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from opensearchpy import OpenSearch

from .bulk import BulkLoader, LoadResult, batched
from .config import Config
from .errors import DataError, IndexerError, OpenSearchError
from .opensearch import Indices, make_client
from .progress import Progress
from .source import Snapshot
from .validate import validate


def _connect(config: Config) -> tuple[OpenSearch, Indices]:
    client = make_client(config.opensearch, pool_size=config.senders + 2)
    indices = Indices(client, config.opensearch, config.alias)
    indices.check_server()
    return client, indices


def _rejection_lines(result: LoadResult) -> list[str]:
    lines = [f"rejected documents: {result.rejected:,}" + (" (stopped early)" if result.stopped_early else "")]
    lines += [f"  id={r.listing_id}  HTTP {r.status}  {r.reason}" for r in result.rejections]
    if result.rejected > len(result.rejections):
        lines.append(f"  ... and {result.rejected - len(result.rejections):,} more")
    return lines


def _abandon(indices: Indices, name: str, keep_failed: bool, reason: str, err: TextIO) -> None:
    """Best effort after a failed run: delete the new index, or mark it failed and block writes."""
    try:
        if keep_failed:
            indices.mark(name, "failed", reason=reason)
            indices.block_writes(name)
            print(f"reindex: left {name} in place, marked failed", file=err)
        else:
            indices.delete([name])
            print(f"reindex: deleted the unfinished index {name}", file=err)
    except IndexerError as exc:
        print(f"reindex: could not clean up {name} ({exc}); the next reindex prunes it", file=err)


def reindex(config: Config, out: TextIO | None = None, err: TextIO | None = None) -> None:
    """Load every document into a new index, validate it, then move the alias to it."""
    out, err = out or sys.stdout, err or sys.stderr
    client, indices = _connect(config)
    if indices.concrete_index_named_like_alias() and not config.replace_index:
        raise OpenSearchError(
            f"a plain index named {config.alias} exists (made by the old scripts?), so no alias can have "
            "that name; re-run with --replace-index to delete it in the same step that adds the alias"
        )
    started = time.monotonic()
    with Snapshot(config.pg, config.schema) as snapshot:
        snapshot.check_view()
        counts = snapshot.counts()
        if counts.listings == 0 and not config.allow_empty:
            serving = [n for n in indices.alias_holders() if indices.count(n)]
            if serving:
                raise DataError(
                    f"{config.schema}.listings is empty but {config.alias} serves {serving[0]}; "
                    "refusing to replace it with an empty index (--allow-empty to do it anyway)"
                )
        name = indices.new_index_name()
        indices.create(name, config.shards)
        print(f"reindex: {counts.listings:,} listings -> {name}", file=err, flush=True)
        try:
            progress = Progress(counts.listings, stream=err, enabled=config.progress)
            loader = BulkLoader(client, config.opensearch, name, config.senders, config.max_retries, progress)
            rows = snapshot.documents(fetch_rows=min(config.batch_docs, 5000))
            with progress.ticking():
                result = loader.load(batched(rows, config.batch_docs, config.batch_bytes))
            load_seconds = time.monotonic() - started
            indices.finish_load(name, config.replicas)
            if result.rejected:
                print("\n".join(_rejection_lines(result)), file=out)
                raise DataError(f"{result.rejected:,} documents rejected by OpenSearch (ids above); alias not moved")
            if config.replicas and not indices.wait_for_replicas(name):
                print(f"reindex: warning: not all {config.replicas} replica(s) of {name} are allocated", file=err)
            report = validate(client, config.opensearch, name, snapshot, config.sample, config.seed, counts)
            print("\n".join(report.lines()), file=out)
            if not report.ok:
                raise DataError(f"validation of the new index {name} failed (see above); alias not moved")
            indices.mark(name, "complete", documents=counts.listings, images=counts.images)
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, IndexerError) else exc.__class__.__name__
            _abandon(indices, name, config.keep_failed, reason, err)
            raise
    previous = indices.move_alias(name, replace_index=config.replace_index)
    pruned = indices.prune(name, previous, config.keep)
    seconds = time.monotonic() - started
    moved_from = f" (was on {', '.join(previous)})" if previous else " (new alias)"
    print(
        "\n".join(
            [
                "reindex: OK",
                f"  index      {name}",
                f"  documents  {result.indexed:,}  images {counts.images:,}",
                f"  seconds    {seconds:.1f} (loading {load_seconds:.1f})",
                f"  docs/s     {result.indexed / load_seconds if load_seconds else 0:,.0f} (loading)",
                f"  retries    {result.retried_requests} requests, {result.retried_items} items",
                f"  alias      {config.alias} -> {name}, moved{moved_from}",
                f"  pruned     {', '.join(pruned) if pruned else 'nothing'}",
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
    with Snapshot(config.pg, config.schema) as snapshot:
        report = validate(client, config.opensearch, target, snapshot, config.sample, config.seed)
    print("\n".join(report.lines()), file=out)
    if not report.ok:
        failed = sum(1 for passed, _ in report.checks if not passed)
        raise DataError(f"validation of {target} failed: {failed} check(s), {report.problem_total} difference(s)")


def rollback(config: Config, to: str | None = None, out: TextIO | None = None) -> None:
    """Move the alias back to the newest complete index older than the current one."""
    out = out or sys.stdout
    _, indices = _connect(config)
    holders = indices.alias_holders()
    if len(holders) != 1 or not indices.is_managed(holders[0]):
        raise DataError(f"alias {config.alias} points to {holders or 'nothing'}; cannot tell what to roll back")
    current = holders[0]
    infos = {info.name: info for info in indices.managed()}
    if to is not None:
        if to not in infos or to == current:
            raise DataError(f"{to} is not another index of alias {config.alias}")
        target = to
    else:
        candidates = [n for n, i in infos.items() if n < current and i.state == "complete"]
        if not candidates:
            raise DataError(f"no previous complete index to roll back to (alias is on {current})")
        target = max(candidates)
    indices.move_alias(target)
    indices.mark(current, "rolled_back")
    print(f"rollback: {config.alias} -> {target} (was on {current}, now marked rolled_back)", file=out)


def status(config: Config, out: TextIO | None = None) -> None:
    """The alias, its indices (docs, created, state) and the database's counts."""
    out = out or sys.stdout
    _, indices = _connect(config)
    holders = indices.alias_holders()
    infos = indices.managed(with_counts=True)
    print(f"alias   {config.alias} -> {', '.join(holders) if holders else '(none)'}", file=out)
    width = max([len(i.name) for i in infos] + [5])
    print(f"{'index':<{width}}  {'state':<11}  {'docs':>12}  created (UTC)        alias", file=out)
    for info in infos:
        created = info.created.strftime("%Y-%m-%d %H:%M:%S") if info.created else "?"
        docs = f"{info.docs:,}" if info.docs is not None else "-"
        mark = "*" if info.has_alias else ""
        print(f"{info.name:<{width}}  {info.state:<11}  {docs:>12}  {created}  {mark}", file=out)
    if not infos:
        print("(no indices)", file=out)
    with Snapshot(config.pg, config.schema) as snapshot:
        counts = snapshot.counts()
    print(
        f"database  {counts.listings:,} listings, {counts.images:,} listing_images "
        f"({config.pg.describe()}, schema {config.schema})",
        file=out,
    )
