"""Command line: `listings-indexer reindex|sync|validate|rollback|status|unlock [flags]`.

Exit codes: 0 ok; 1 the data is wrong: validation mismatch, rejected documents, a source
much smaller than the live index (shrink guard), nothing valid to roll back to; 2
configuration or connection problem, OpenSearch failing persistently, an index block, the
alias locked by another run; 130 interrupted (Ctrl-C or SIGTERM). Expected failures are
one line on stderr, "listings-indexer <command>: error: <message>", never a traceback
(listings_common.cli.run). Each sub-parser names its function in `handler` (as in
migration.cli); SIGTERM gets Ctrl-C's clean-up (listings_common.cli.run).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from listings_common.cli import run as run_cli

from . import commands, sync
from .config import DEFAULT_ALIAS, Config, load_config

PROG = "listings-indexer"


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection (flags override the environment)")
    group.add_argument("--opensearch-url", metavar="URL", help="default $OPENSEARCH_URL or http://localhost:9200")
    group.add_argument(
        "--opensearch-user", metavar="USER", help="default $OPENSEARCH_USER (password: $OPENSEARCH_PASSWORD only)"
    )
    group.add_argument("--ca-certs", metavar="PATH", help="CA bundle for https; default $OPENSEARCH_CA_CERTS")
    group.add_argument(
        "--verify-certs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="verify TLS certificates (default on; $OPENSEARCH_VERIFY_CERTS)",
    )
    group.add_argument(
        "--schema",
        help="dbt target schema holding listings (default $LISTINGS_SCHEMA or "
        "public); the documents view is read from <schema>_search",
    )
    group.add_argument("--alias", help=f"alias, and prefix of the versioned indices (default {DEFAULT_ALIAS})")
    group.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="per OpenSearch request (default $OPENSEARCH_TIMEOUT or 120)"
    )
    group.add_argument(
        "--max-retries",
        type=int,
        metavar="N",
        help="retries of an OpenSearch call failing with 429/5xx, a timeout or a lost connection (default 10: "
        "about 2 minutes of exponential backoff from 0.5 s to 30 s, longer if Retry-After says so)",
    )
    group.add_argument(
        "--allow-insecure-auth",
        action="store_true",
        default=None,
        help="send credentials over plain http to a host that is not loopback ($OPENSEARCH_ALLOW_INSECURE_AUTH=1)",
    )
    group.add_argument("--quiet", action="store_true", help="no progress lines")
    return common


def _lock_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lock-lease",
        type=float,
        metavar="SECONDS",
        help="lease of the alias lock, renewed every quarter of it while running (default 60); a lock "
        "not renewed for this long is taken over by the next run",
    )


def _sample_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="documents also compared field by field (default 200, at most 10,000); every document is "
        "compared by its content hash in any case",
    )
    parser.add_argument(
        "--random-state", type=int, metavar="N", help="random state of the sample (default: random, printed)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Index listing documents from PostgreSQL into OpenSearch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()

    reindex = sub.add_parser(
        "reindex",
        parents=[common],
        help="build a new index, validate it, move the alias",
        description="Load every document into a new index <alias>_<UTC timestamp>, validate it, then move "
        "the alias to it in one atomic step and prune old indices. If documents are rejected or validation "
        "fails, the alias stays where it was and the new index is deleted (with --keep-failed: kept, marked "
        "failed in _meta, write-blocked); exit 1.",
    )
    reindex.add_argument(
        "--replicas",
        type=int,
        help="replicas, added after loading and allocated before the alias moves (default: 1 if the "
        "cluster has more than one data node, else 0)",
    )
    reindex.add_argument("--shards", type=int, help="primary shards (default: one per 10 million listings, at least 1)")
    reindex.add_argument(
        "--refresh-interval", metavar="TIME", help="refresh interval restored after loading (default 1s)"
    )
    reindex.add_argument(
        "--replica-timeout",
        type=float,
        metavar="SECONDS",
        help="wait this long for the replicas to allocate, else fail without moving the alias (default 300)",
    )
    reindex.add_argument(
        "--wait-for-active-shards",
        metavar="N|all",
        help="shard copies that must be active for each bulk request (default all)",
    )
    reindex.add_argument("--keep", type=int, help="indices kept: current + previous ... (default 2)")
    reindex.add_argument("--batch-docs", type=int, metavar="N", help="documents per bulk request (default 2000)")
    reindex.add_argument("--batch-mb", type=float, metavar="MB", help="max bulk body size (default 8)")
    reindex.add_argument("--senders", type=int, metavar="N", help="concurrent bulk requests (default 2)")
    reindex.add_argument(
        "--replace-index",
        action="store_true",
        help="delete a plain index named like the alias (old scripts) when the alias moves",
    )
    reindex.add_argument(
        "--keep-failed",
        action="store_true",
        help="on failure keep the new index (marked failed, write-blocked) instead of deleting it",
    )
    reindex.add_argument(
        "--allow-empty",
        action="store_true",
        help="let an empty listings table replace an index that has documents",
    )
    reindex.add_argument(
        "--allow-shrink",
        action="store_true",
        help="let a source with less than half the documents the alias serves replace it",
    )
    _lock_flags(reindex)
    _sample_flags(reindex)
    reindex.set_defaults(handler=lambda args, config: commands.reindex(config))

    validate = sub.add_parser("validate", parents=[common], help="compare the live alias with the database")
    validate.add_argument("--index", help="validate this index instead of the alias")
    _sample_flags(validate)
    validate.set_defaults(handler=lambda args, config: commands.validate_command(config, index=args.index))

    rollback = sub.add_parser("rollback", parents=[common], help="move the alias back to the previous index")
    rollback.add_argument("--to", metavar="INDEX", help="roll back to this (complete, validated) index instead")
    _lock_flags(rollback)
    rollback.set_defaults(handler=lambda args, config: commands.rollback(config, to=args.to))

    sync_parser = sub.add_parser(
        "sync",
        parents=[common],
        help="apply what the publish ledger says changed since the last sync to the live alias",
        description="Upsert the listings the publish ledger says changed since the checkpoint, delete those "
        "without a document, in (version, listing_id) order, with versioned writes (a stale write never "
        "overwrites newer data); the checkpoint advances after each acknowledged batch. Holds the alias's lock: "
        "a second sync exits at once (2) naming the holder. No checkpoint and an index that does not record its "
        "publish run: exit 2, reindex first. Rejected documents: exit 1.",
    )
    sync_parser.add_argument("--batch-docs", type=int, metavar="N", help="changes per bulk request (default 2000)")
    sync_parser.add_argument(
        "--wait-for-active-shards",
        metavar="N|all",
        help="shard copies that must be active for each bulk request (default all, as reindex)",
    )
    _lock_flags(sync_parser)
    sync_parser.set_defaults(handler=lambda args, config: sync.sync(config))

    sub.add_parser("status", parents=[common], help="alias, lock, indices and counts").set_defaults(
        handler=lambda args, config: commands.status(config)
    )

    unlock = sub.add_parser(
        "unlock",
        parents=[common],
        help="remove the alias's lock left by a run that is gone",
        description="Remove the lock of the alias if its holder is gone (lease expired, or its process on "
        "this host no longer exists). With --force, remove it whoever holds it: only when you know that run "
        "is not running any more.",
    )
    unlock.add_argument("--force", action="store_true", help="remove the lock even if its holder looks alive")
    unlock.set_defaults(handler=lambda args, config: commands.unlock(config, force=args.force))
    return parser


def config_from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
    get = lambda name: getattr(args, name, None)  # noqa: E731 - flags only some commands have
    batch_mb = get("batch_mb")
    return load_config(
        env,
        opensearch_url=args.opensearch_url,
        opensearch_user=args.opensearch_user,
        ca_certs=args.ca_certs,
        verify_certs=args.verify_certs,
        timeout=args.timeout,
        allow_insecure_auth=args.allow_insecure_auth,
        schema=args.schema,
        alias=args.alias,
        replicas=get("replicas"),
        shards=get("shards"),
        refresh_interval=get("refresh_interval"),
        replica_timeout=get("replica_timeout"),
        wait_for_active_shards=get("wait_for_active_shards"),
        allow_shrink=get("allow_shrink") or None,
        lock_lease=get("lock_lease"),
        keep=get("keep"),
        batch_docs=get("batch_docs"),
        batch_bytes=int(batch_mb * 1024 * 1024) if batch_mb is not None else None,
        senders=get("senders"),
        max_retries=get("max_retries"),
        replace_index=get("replace_index") or None,
        keep_failed=get("keep_failed") or None,
        allow_empty=get("allow_empty") or None,
        sample=get("sample"),
        random_state=get("random_state"),
        progress=False if args.quiet else None,
    )


def run(args: argparse.Namespace, config: Config) -> None:
    if config.opensearch.url.startswith("https") and not config.opensearch.verify_certs:
        print(f"{PROG} {args.command}: warning: TLS certificate verification is off", file=sys.stderr)
    args.handler(args, config)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: run(args, config_from_args(args, os.environ)), prog=f"{PROG} {args.command}")
