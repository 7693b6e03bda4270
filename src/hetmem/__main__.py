"""``python -m hetmem``: the same command line as ``hetmem``."""

import sys

from hetmem.cli import main

if __name__ == "__main__":
    sys.exit(main())
