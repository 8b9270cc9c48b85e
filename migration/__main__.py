"""`python -m migration <command> ...`: one sub-command per module in COMMAND_MODULES.

Each module exposes `add_cli(subparsers)`, which adds its sub-parser and sets
`handler=<function(args) -> int>` as a default. Expected failures (bad settings, the
database refusing) end as one line on stderr and exit code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import psycopg

from migration.pg import ConfigError

COMMAND_MODULES = [
    "migration.fixtures",
    "migration.report",
    "migration.publish",
    "migration.fdw",
    "migration.preflight",
]

EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m migration", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_cli(subparsers)
    return parser


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except ConfigError as exc:
        print(f"{args.command}: {one_line(exc)}", file=sys.stderr)
    except psycopg.Error as exc:
        print(f"{args.command}: database error: {one_line(exc)}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{args.command}: interrupted", file=sys.stderr)
        return 130
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
