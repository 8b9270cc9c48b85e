"""`listings-standin`: load the stand-in monolith's data (test data, not part of the migration).

Loads monolith/schema.sql into the PG* database and fills it with the example of the
hand-run scripts or with generated listings (optionally with the dirty catalogue, and the
microservice's stand-in schema); prints the counts of monolith.unified_listings. For demos
and tests only: never point it at a real monolith (it refuses to drop a `monolith` schema
it did not create, unless --replace-schema).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import psycopg

from listings_common.cli import run as run_cli
from listings_common.errors import ConfigError
from listings_common.pg import PgSettings
from standin.generate import StepLog, generate
from standin.load import add_dirty, load_example, load_schema, load_service_schema, view_counts

PROG = "listings-standin"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Load monolith/schema.sql into the PG* database and fill it with the example of the hand-run "
        "scripts or with generated listings, for demos and tests; prints the counts of monolith.unified_listings.",
    )
    size = parser.add_argument_group("what to insert (either --example or --c2c/--b2c)")
    size.add_argument("--example", action="store_true", help="the hand-run scripts' example: 10 listings, 12 images")
    size.add_argument("--c2c", type=int, metavar="N", help="generated C2C listings")
    size.add_argument("--b2c", type=int, metavar="N", help="generated B2C products")
    size.add_argument("--stores", type=int, metavar="N", help="B2C stores (default: one per 3 products)")
    size.add_argument(
        "--images-per-listing", type=float, metavar="X", help="mean images per listing, 0-6 (default 2.17)"
    )
    parser.add_argument("--dirty", action="store_true", help="also insert the dirty catalogue")
    parser.add_argument(
        "--service",
        action="store_true",
        help="also apply the microservice stand-in (microservice/schema.sql) into $LISTINGS_SCHEMA (default public)"
        " if its tables are not there yet",
    )
    parser.add_argument(
        "--random-state", type=int, default=42, metavar="N", help="random state of the generator (default 42)"
    )
    parser.add_argument("--no-schema", action="store_true", help="keep the existing schema (tables must be empty)")
    parser.add_argument(
        "--replace-schema",
        action="store_true",
        help="drop an existing monolith schema even if these fixtures did not create it (disposable databases only)",
    )
    return parser


def _load(conn: psycopg.Connection, args: argparse.Namespace, log: StepLog) -> dict[str, int]:
    if not args.no_schema:
        load_schema(conn, replace_foreign=args.replace_schema)
    elif conn.execute("SELECT to_regclass('monolith.unified_listings') IS NULL").fetchone()[0]:
        raise ConfigError("no monolith.unified_listings in this database: drop --no-schema")
    if not args.example:
        return generate(
            conn,
            c2c=args.c2c or 0,
            b2c=args.b2c or 0,
            stores=args.stores,
            images_per_listing=2.17 if args.images_per_listing is None else args.images_per_listing,
            dirty=args.dirty,
            random_state=args.random_state,
            log=log,
        )
    counts = load_example(conn)
    if args.dirty:
        dirty = add_dirty(conn)
        counts = {key: value + dirty[key] for key, value in counts.items()}
    return counts


def load(args: argparse.Namespace, name: str = "standin") -> int:
    """Do what the parsed flags say; messages start with "<name>: "."""
    generated = [args.c2c, args.b2c, args.stores, args.images_per_listing]
    if args.example and any(v is not None for v in generated):
        raise ConfigError("--example cannot be combined with --c2c/--b2c/--stores/--images-per-listing")
    if not args.example and args.c2c is None and args.b2c is None:
        raise ConfigError("say what to insert: --example, or --c2c N and/or --b2c N")
    settings = PgSettings.from_env()
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"{name}: {message}", file=sys.stderr, flush=True)

    with settings.connect() as conn:
        try:
            with conn.transaction():  # all or nothing: a failure leaves the database as it was
                counts = _load(conn, args, log)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        rows, images = view_counts(conn)
        if args.service:
            schema = os.environ.get("LISTINGS_SCHEMA") or "public"
            applied = load_service_schema(conn, schema)
            conn.commit()
            log(f"microservice stand-in {'applied to' if applied else 'already in'} schema {schema}")
    print(
        f"{name}: monolith.unified_listings has {rows} listings and {images} images "
        f"(c2c {counts['c2c_listings']}, b2c {counts['b2c_products']}, dirty cases {counts['dirty_cases']}) "
        f"in {settings.describe()}, {time.monotonic() - started:.1f} s"
    )
    return 0


def main(argv: Sequence[str] | None = None, *, prog: str = PROG, name: str = "standin") -> int:
    """`prog` names the command in usage and error lines, `name` starts the progress and summary lines
    (`listings-migration fixtures`, the hidden compatibility alias, passes its own)."""
    args = build_parser(prog).parse_args(argv)
    return run_cli(lambda: load(args, name), prog=prog)
