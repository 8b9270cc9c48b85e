"""Benchmark the indexer against its ceiling, on listings already in PostgreSQL.

1. indexer: the first N documents of `<schema>_search.listing_search_documents`,
   streamed from PostgreSQL and bulk-loaded into a fresh index, exactly as `reindex`
   loads them (same batches, senders, index settings), up to the final refresh.
   Peak RSS (VmHWM) of this process is read right after.
2. ceiling: the same documents, dumped beforehand (not timed) as the very same NDJSON
   `_bulk` bodies into a temp file, sent to another fresh index with the same batch size
   and concurrency: no PostgreSQL and no per-document Python work while timed.

3. with --validate: `validate` of the index from 1 (every id and content hash merged with
   PostgreSQL's, plus the sample), timed, with this process's peak RSS after it.
4. with --validate-missing N: 1 loads all but the last N documents of the view, then
   `validate` compares that index with the whole view: N documents missing, every one
   counted, the first 25 kept. The peak RSS is measured over the validation alone (VmHWM
   reset before it), to show that memory stays flat however many documents differ.

Usage:  python scripts/bench_indexer.py [--docs N] [--batch-docs N] [--batch-mb MB] [--senders N]
                                        [--validate] [--validate-missing N] [--no-ceiling]
Settings come from the same environment as the indexer (PG*, LISTINGS_SCHEMA,
OPENSEARCH_URL, ...). The benchmark indices are deleted at the end unless --keep-indices.
Generate data first, e.g. `listings-standin --c2c 700000 --b2c 300000 && dbt build`.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.bulk import FILTER_PATH, NDJSON, BulkLoader, Row, batched, ndjson
from indexer.config import Config, load_config
from indexer.errors import IndexerError
from indexer.opensearch import Indices, make_client
from indexer.source import ReadSnapshot
from indexer.validate import validate
from listings_common.errors import ConfigError
from listings_common.progress import Progress


def peak_rss_mib() -> float:
    """VmHWM (peak resident set size) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rows_of(config: Config, snapshot: ReadSnapshot, docs: int):
    return batched(
        snapshot.documents(fetch_rows=min(config.batch_docs, 5000), limit=docs),
        config.batch_docs,
        config.batch_bytes,
    )


def bench_indexer(config: Config, indices: Indices, docs: int) -> tuple[str, int, float, float]:
    name = indices.new_index_name()
    indices.create(name, config.shards or 1)
    progress = Progress(docs, label="indexer:", enabled=config.progress)
    loader = BulkLoader(indices.client, config.opensearch, name, config.senders, config.max_retries, progress)
    first_row: list[float] = []

    def timed(chunks: Iterator[list[Row]]) -> Iterator[list[Row]]:
        for chunk in chunks:
            if not first_row:
                first_row.append(time.monotonic() - started)
            yield chunk

    started = time.monotonic()
    with ReadSnapshot(config.pg, config.schema) as snapshot, progress.ticking():
        result = loader.load(timed(rows_of(config, snapshot, docs)))
    indices.finish_load(name, config.replicas or 0)
    seconds = time.monotonic() - started
    if result.rejected:
        raise IndexerError(f"{result.rejected} documents rejected, e.g. {result.rejections[:3]}")
    return name, result.indexed, seconds, first_row[0] if first_row else float("nan")


def bench_validate(config: Config, indices: Indices, name: str, docs: int) -> None:
    """Time `validate` of the loaded index (only valid when --docs is every document of the view)."""
    started = time.monotonic()
    with ReadSnapshot(config.pg, config.schema) as snapshot:
        report = validate(indices.client, config.opensearch, name, snapshot, sample=200, random_state=1)
    seconds = time.monotonic() - started
    verdict = "ok" if report.ok else "FAILED (expected unless --docs covers the whole view)"
    print(
        f"validate {docs:>11,} docs  {seconds:7.2f} s  {docs / seconds:9,.0f} docs/s  "
        f"peak RSS {peak_rss_mib():,.0f} MiB, {verdict}",
        flush=True,
    )
    if not report.ok:
        print("\n".join(report.lines()[:12]), flush=True)


def reset_peak_rss() -> bool:
    """Start VmHWM again from the current RSS (Linux: `5` into /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_validate_missing(config: Config, indices: Indices, name: str, indexed: int, missing: int) -> None:
    """`validate` of an index that lacks `missing` documents of the view: all counted, memory flat."""
    before = current_rss_mib()
    reset = reset_peak_rss()
    started = time.monotonic()
    with ReadSnapshot(config.pg, config.schema) as snapshot:
        report = validate(indices.client, config.opensearch, name, snapshot, sample=200, random_state=1)
    seconds = time.monotonic() - started
    peak = peak_rss_mib()
    counted = report.problem_total
    print(
        f"validate-missing {indexed:,} indexed, {missing:,} missing  {seconds:7.2f} s  "
        f"{(indexed + missing) / seconds:9,.0f} ids/s  RSS {before:,.0f} MiB before, peak "
        f"{peak:,.0f} MiB during validation{'' if reset else ' (VmHWM not reset: peak of the whole run)'}; "
        f"{counted:,} differences counted, {len(report.problems)} kept",
        flush=True,
    )
    print("\n".join(line for line in report.lines() if not line.startswith("  id=")), flush=True)
    if report.ok or counted < missing:
        raise IndexerError(f"expected {missing:,} missing documents to be counted, got {counted:,}")


def dump_bodies(config: Config, docs: int, path: str) -> list[tuple[int, int]]:
    """Write the bulk bodies to `path`; returns (offset, length) of each."""
    spans = []
    offset = 0
    with ReadSnapshot(config.pg, config.schema) as snapshot, open(path, "wb") as out:
        for rows in rows_of(config, snapshot, docs):
            body = ndjson(rows)
            out.write(body)
            spans.append((offset, len(body)))
            offset += len(body)
    return spans


def bench_ceiling(config: Config, indices: Indices, path: str, spans: list[tuple[int, int]]) -> tuple[str, float]:
    name = indices.new_index_name()
    indices.create(name, config.shards or 1)
    work: queue.Queue = queue.Queue()
    for span in spans:
        work.put(span)
    errors: list[str] = []
    fd = os.open(path, os.O_RDONLY)

    def sender() -> None:
        while not errors:
            try:
                offset, length = work.get_nowait()
            except queue.Empty:
                return
            body = os.pread(fd, length, offset)
            response = indices.client.transport.perform_request(
                "POST", f"/{name}/_bulk", params={"filter_path": FILTER_PATH}, body=body, headers=NDJSON
            )
            if response.get("errors"):
                errors.append(f"bulk response with errors at offset {offset}")

    started = time.monotonic()
    threads = [threading.Thread(target=sender) for _ in range(config.senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    indices.finish_load(name, config.replicas or 0)
    seconds = time.monotonic() - started
    os.close(fd)
    if errors:
        raise IndexerError(errors[0])
    return name, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000, help="documents to index (default 1,000,000)")
    parser.add_argument("--batch-docs", type=int, help="documents per bulk request (indexer default)")
    parser.add_argument("--batch-mb", type=float, help="max bulk body size in MB (indexer default)")
    parser.add_argument("--senders", type=int, help="concurrent bulk requests (indexer default)")
    parser.add_argument("--alias", default="bench_indexer", help="prefix of the benchmark indices")
    parser.add_argument("--keep-indices", action="store_true", help="do not delete the benchmark indices")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--validate", action="store_true", help="also time `validate` of the loaded index")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the NDJSON ceiling run")
    parser.add_argument(
        "--validate-missing",
        type=int,
        metavar="N",
        help="load all but the last N documents of the view, then validate against the whole view and print "
        "the peak RSS of the validation (no ceiling run; --docs is ignored)",
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(
            alias=args.alias,
            batch_docs=args.batch_docs,
            batch_bytes=int(args.batch_mb * 1024 * 1024) if args.batch_mb else None,
            senders=args.senders,
            progress=not args.quiet,
        )
        indices = Indices(make_client(config.opensearch, config.senders + 2), config.opensearch, config.alias)
        version = indices.check_server()
        with ReadSnapshot(config.pg, config.schema) as snapshot:
            snapshot.check_view()
            available = snapshot.counts().listings
        if args.validate_missing is not None:
            if not 0 < args.validate_missing < available:
                raise IndexerError(
                    f"--validate-missing must be between 1 and {available - 1:,} (the view has {available:,})"
                )
            args.docs = available - args.validate_missing
            args.no_ceiling = True
        if available < args.docs:
            raise IndexerError(
                f"only {available:,} listings in {config.pg.describe()} schema {config.schema}; load more "
                "(listings-standin --c2c N --b2c M && dbt build) or pass --docs"
            )
        print(
            f"bench_indexer: {args.docs:,} docs, batches of {config.batch_docs} docs / "
            f"{config.batch_bytes / 2**20:g} MB, {config.senders} senders, {version}",
            flush=True,
        )
        created = []
        try:
            name, indexed, seconds, first = bench_indexer(config, indices, args.docs)
            created.append(name)
            rss = peak_rss_mib()
            print(
                f"indexer  {indexed:>11,} docs  {seconds:7.2f} s  {indexed / seconds:9,.0f} docs/s  "
                f"peak RSS {rss:,.0f} MiB, first row after {first:.2f} s",
                flush=True,
            )
            if args.validate_missing is not None:
                bench_validate_missing(config, indices, name, indexed, args.validate_missing)
            elif args.validate:
                bench_validate(config, indices, name, args.docs)
            if not args.keep_indices:  # no background merges of it while the ceiling runs
                indices.delete([name])
            if args.no_ceiling:
                return 0
            with tempfile.TemporaryDirectory(prefix="bench_indexer_") as tmp:
                path = os.path.join(tmp, "bulk.ndjson")
                spans = dump_bodies(config, args.docs, path)
                size_mib = os.path.getsize(path) / 2**20
                name, ceiling_seconds = bench_ceiling(config, indices, path, spans)
                created.append(name)
            print(
                f"ceiling  {indexed:>11,} docs  {ceiling_seconds:7.2f} s  {indexed / ceiling_seconds:9,.0f} docs/s  "
                f"(same {len(spans)} bodies, {size_mib:,.0f} MiB, from a file)"
            )
            print(f"ratio    indexer = {ceiling_seconds / seconds:.2f} x ceiling throughput")
        finally:
            if not args.keep_indices:
                indices.delete(created)
    except (IndexerError, ConfigError) as exc:
        print(f"bench_indexer: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
