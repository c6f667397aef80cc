"""`python -m artgen ...`: the same command line as `artgen ...`."""

import sys

from artgen.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
