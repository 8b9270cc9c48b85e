"""`python -m standin ...` (the same as the `listings-standin` console script)."""

import sys

from standin.cli import main

sys.exit(main())
