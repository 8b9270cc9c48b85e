"""What the two tools (`migration`, `indexer`) share, and nothing else: PostgreSQL settings
and connections (pg), the error base class with its exit codes (errors), the runner that
turns expected failures into one line on stderr (cli), and progress lines (progress).

Neither `migration` nor `indexer` imports the other; both import this package.
"""
