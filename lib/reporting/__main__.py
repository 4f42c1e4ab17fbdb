"""`python -m lib.reporting run|index ...`: see `lib.reporting.cli`."""

import sys

from lib.reporting.cli import main

sys.exit(main())
