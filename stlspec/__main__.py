"""``python -m stlspec``: the same command line as the ``stlspec`` console script."""

import sys

from stlspec.cli import main

sys.exit(main())
