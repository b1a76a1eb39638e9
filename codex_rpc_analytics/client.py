"""``from codex_rpc_analytics.client import AnalyticsEventsClient``: the public name of the
in-process client, which lives with the other adapters in :mod:`.adapters.client`."""

from __future__ import annotations

from .adapters.client import *  # noqa: F403
from .adapters.client import __all__ as __all__
