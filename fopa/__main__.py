"""``python -m fopa``: the command line (:mod:`fopa.cli`)."""

import sys

from .cli import main

sys.exit(main())
