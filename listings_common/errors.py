"""The failures a user can act on, and their exit codes.

Exit codes: 1 = the data is wrong (a subclass sets `exit_code = 1`), 2 = configuration
or connection problem (the default), 130 = interrupted (see `listings_common.cli`).
"""

from __future__ import annotations

EXIT_DATA = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class ListingsError(Exception):
    """An expected failure: its message is one line, safe to print (no secrets)."""

    exit_code = EXIT_ERROR


class ConfigError(ListingsError):
    """A setting the user must fix; reported as one line."""
