"""``python -m fomm_tutorial``: the ``fomm-tutorial`` command line (:mod:`fomm_tutorial.cli`)."""

import sys

from fomm_tutorial.cli import main

if __name__ == "__main__":
    sys.exit(main())
