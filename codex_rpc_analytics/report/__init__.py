"""The report: what a team lead opens. Panels as queries over the store (:mod:`.panels`), a
renderer (:mod:`.page`, :mod:`.charts`), the ``report`` command and the collector's live
dashboard route (:mod:`.web`).

Layer contract: imports :mod:`..store` and nothing else of the package; the collector and the
CLI import this package; ``core/``, ``delivery/``, ``adapters/`` and ``store/`` never do.
"""

from .build import build_report
from .command import report_command
from .panels import PANELS, Panel, PanelData, run_panels
from .scope import Scope

__all__ = ["PANELS", "Panel", "PanelData", "Scope", "build_report", "report_command",
           "run_panels"]
