"""The one way the command lines end: expected failures are one line on stderr, never a traceback.

`run(action, prog=...)` calls `action()` and returns its exit code (None: 0). `prog` is the
argparse prog of the command that ran (the console-script name, then the sub-command if
any: "listings-migration publish", "listings-indexer reindex", "listings-standin"), so a
failure reads like argparse's own usage errors: a `ListingsError` prints
"<prog>: error: <message>" and exits with its `exit_code`; a psycopg error prints
"<prog>: error: database error: <message>" and exits 2; Ctrl-C (KeyboardInterrupt) and SIGTERM
(turned into KeyboardInterrupt while the action runs, so that every open transaction is rolled
back and every clean-up runs) print "<prog>: interrupted" and exit 130.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import psycopg

from listings_common.errors import EXIT_ERROR, EXIT_INTERRUPTED, ListingsError


def one_line(exc: BaseException) -> str:
    """The exception's message with all whitespace runs (newlines too) made one space."""
    return " ".join(str(exc).split()) or exc.__class__.__name__


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the same clean-up as Ctrl-C


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread while the block runs."""
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(action: Callable[[], int | None], *, prog: str) -> int:
    try:
        with sigterm_as_interrupt():
            return action() or 0
    except ListingsError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except psycopg.Error as exc:
        print(f"{prog}: error: database error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
