"""`python -m bench --out bench-report.json [--quick]`."""

import sys

from .run import main

sys.exit(main())
