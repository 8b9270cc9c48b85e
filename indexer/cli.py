"""Command line: `python -m indexer reindex|validate|rollback|status [flags]`.

Exit codes: 0 ok; 1 validation mismatch or rejected documents (or nothing to roll
back to); 2 configuration or connection problem; 130 interrupted. Expected failures
are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType

from migration.pg import ConfigError

from . import commands
from .config import DEFAULT_ALIAS, Config, load_config
from .errors import IndexerError

PROG = "indexer"


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
    group.add_argument("--quiet", action="store_true", help="no progress lines")
    return common


def _sample_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sample", type=int, metavar="N", help="documents compared field by field (default 200)")
    parser.add_argument("--seed", type=int, help="seed of the sample (default: random, printed)")


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
    reindex.add_argument("--replicas", type=int, help="replicas after loading (default 0: single node)")
    reindex.add_argument("--shards", type=int, help="primary shards (default 1)")
    reindex.add_argument("--keep", type=int, help="indices kept: current + previous ... (default 2)")
    reindex.add_argument("--batch-docs", type=int, metavar="N", help="documents per bulk request (default 2000)")
    reindex.add_argument("--batch-mb", type=float, metavar="MB", help="max bulk body size (default 8)")
    reindex.add_argument("--senders", type=int, metavar="N", help="concurrent bulk requests (default 2)")
    reindex.add_argument(
        "--max-retries", type=int, metavar="N", help="retries of 429/5xx/connection errors (default 6)"
    )
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
    _sample_flags(reindex)

    validate = sub.add_parser("validate", parents=[common], help="compare the live alias with the database")
    validate.add_argument("--index", help="validate this index instead of the alias")
    _sample_flags(validate)

    rollback = sub.add_parser("rollback", parents=[common], help="move the alias back to the previous index")
    rollback.add_argument("--to", metavar="INDEX", help="roll back to this index instead")

    sub.add_parser("status", parents=[common], help="alias, indices and counts")
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
        schema=args.schema,
        alias=args.alias,
        replicas=get("replicas"),
        shards=get("shards"),
        keep=get("keep"),
        batch_docs=get("batch_docs"),
        batch_bytes=int(batch_mb * 1024 * 1024) if batch_mb is not None else None,
        senders=get("senders"),
        max_retries=get("max_retries"),
        replace_index=get("replace_index") or None,
        keep_failed=get("keep_failed") or None,
        allow_empty=get("allow_empty") or None,
        sample=get("sample"),
        seed=get("seed"),
        progress=False if args.quiet else None,
    )


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # same clean-up as Ctrl-C


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace, config: Config) -> None:
    if config.opensearch.url.startswith("https") and not config.opensearch.verify_certs:
        print(f"{PROG}: warning: TLS certificate verification is off", file=sys.stderr)
    if args.command == "reindex":
        with _sigterm_as_interrupt():
            commands.reindex(config)
    elif args.command == "validate":
        commands.validate_command(config, index=args.index)
    elif args.command == "rollback":
        commands.rollback(config, to=args.to)
    else:
        commands.status(config)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args, config_from_args(args, os.environ))
    except IndexerError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0
