"""`python -m migration ...` (the same as the `listings-migration` console script)."""

import sys

from migration.cli import main

sys.exit(main())
