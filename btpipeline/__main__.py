"""``python -m btpipeline``: the same command line as the ``btpipeline`` script."""

import sys

from btpipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
