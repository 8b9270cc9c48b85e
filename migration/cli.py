"""`listings-migration <command> ...`: the migration's commands.

Every sub-command is a plain function of a work module (publish, report, fdw,
preflight); this module only parses the flags and calls the parsed command's `handler`
through `listings_common.cli.run`: expected failures (bad settings, the database refusing)
end as one line on stderr, "listings-migration <command>: error: <message>", with exit
code 2 (1 for a publish refusal), without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from listings_common.cli import run as run_cli
from migration import fdw, preflight, project, publish, report

PROG = "listings-migration"
# A compatibility alias, hidden from --help: `listings-migration fixtures ...` (and
# `python -m migration fixtures ...`) is `listings-standin ...`, the test-data loader, which
# is not part of the migration. It stays because scripts outside this repository still run
# `python -m migration fixtures --example --replace-schema`; use `listings-standin`. Not a
# sub-parser: argparse (3.11) lists a sub-parser with help=SUPPRESS as "==SUPPRESS==".
FIXTURES = "fixtures"


def _publish_options(args: argparse.Namespace) -> publish.Options:
    return publish.Options(
        schema=args.schema or project.load().target_schema,  # None: publish finds it
        plan_only=args.plan,
        allow_large_change=args.allow_large_change,
        max_delete_share=args.max_delete_share,
        max_update_share=args.max_update_share,
        lock_timeout=args.lock_timeout,
        timings=args.timings,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="command", required=True)

    sub.add_parser(
        "report",
        help="print the migration summary and validations; exit 1 on FAILURE",
        description=report.__doc__.split("\n\n")[0],
    ).set_defaults(handler=lambda args: report.run_command())

    publish_parser = sub.add_parser(
        "publish",
        help="move the tested result of `dbt build` into the microservice's tables (one transaction)",
        description=publish.__doc__.split("\n\n")[1],
    )
    publish_parser.add_argument(
        "--plan", action="store_true", help="print what would be inserted, updated, deleted; change nothing"
    )
    publish_parser.add_argument(
        "--allow-large-change",
        action="store_true",
        help="publish even when a catch-up would delete more than --max-delete-share or update more than"
        " --max-update-share of the published listings",
    )
    publish_parser.add_argument("--max-delete-share", type=float, default=0.10, metavar="F", help="default 0.10")
    publish_parser.add_argument("--max-update-share", type=float, default=0.50, metavar="F", help="default 0.50")
    publish_parser.add_argument(
        "--lock-timeout", default="5s", metavar="T", help="wait at most T for a lock on the service's tables (5s)"
    )
    publish_parser.add_argument(
        "--schema",
        help="dbt target schema (default $LISTINGS_SCHEMA, else the one schema dbt built into here, else public)",
    )
    publish_parser.add_argument("--timings", action="store_true", help="print each statement's time and rows on stderr")
    publish_parser.set_defaults(handler=lambda args: publish.run_command(_publish_options(args)))

    for name, text in (
        ("attach-monolith", "attach the monolith's unified_listings view via postgres_fdw"),
        ("detach-monolith", "drop the postgres_fdw foreign schema and server"),
    ):
        fdw_parser = sub.add_parser(name, help=text, description=fdw.__doc__.split("\n\n")[1])
        fdw_parser.add_argument(
            "--schema",
            help="local schema for the foreign table (default: MONOLITH_SCHEMA or 'monolith', the dbt var)",
        )
        if name == "attach-monolith":
            fdw_parser.add_argument(
                "--remote-schema", default="monolith", help="schema of the view on the monolith (default: monolith)"
            )
            fdw_parser.set_defaults(handler=lambda args: fdw.attach_command(args.schema, args.remote_schema))
        else:
            fdw_parser.set_defaults(handler=lambda args: fdw.detach_command(args.schema))

    sub.add_parser(
        "preflight",
        help="pre-migration checks; exit 1 if a required one fails",
        description=preflight.__doc__.split("\n\n")[1],
    ).set_defaults(handler=lambda args: preflight.run_command())
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [FIXTURES]:  # the compatibility alias (see FIXTURES): never parsed here, never in --help
        from standin import cli as standin_cli  # test data, not production code: loaded only for `fixtures`

        return standin_cli.main(argv[1:], prog=f"{PROG} {FIXTURES}", name=FIXTURES)
    args = build_parser().parse_args(argv)
    return run_cli(lambda: args.handler(args), prog=f"{PROG} {args.command}")
