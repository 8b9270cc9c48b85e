"""`python -m indexer ...` (the same as the `listings-indexer` console script)."""

import sys

from indexer.cli import main

sys.exit(main())
