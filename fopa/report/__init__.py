"""The reproduction report: the claims table, the figures, ``report.md`` and
``results.json``, from the studies of :mod:`fopa.experiments.registry`.

* :mod:`.claims`: the claims table (each study's rows, grouped by claim);
* :mod:`.figures`: one PNG per study;
* :mod:`.markdown`: ``report.md``;
* :mod:`.reproduce`: ``fopa reproduce`` (run every study, then write the report)
  and :func:`write_report`, which the sweeps' report from stores calls too.
"""

from ..experiments.registry import CONFIG_NAMES, configuration
from .reproduce import reproduce, write_report

#: Parameters of every study by configuration name (read from the registry).
CONFIGS = {name: configuration(name) for name in CONFIG_NAMES}

__all__ = ["CONFIGS", "reproduce", "write_report"]
