"""``python -m fopa``: the command line (:mod:`fopa.cli`).

``python -m`` puts the current directory first on ``sys.path``, so a file there
named like a standard module (``tomllib.py``, ``json.py``) would be imported
instead of it by everything fopa imports later. fopa is already imported when
this runs, so the entry is dropped: ``python -m fopa`` then imports what the
``fopa`` script imports.
"""

import os
import sys

if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from .cli import main  # noqa: E402  (after the sys.path fix, on purpose)

sys.exit(main())
