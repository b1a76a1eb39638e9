"""``AnalyticsEventsClient``: the reference's in-process analytics client, for Python hosts.

A host (a Python app-server, an IDE extension host, a test harness) reports what it saw with
``track_*`` calls; the client turns them into the same events, through the same reducer,
durable outbox and sinks as the proxy: one pipeline, two producers. It is an adapter like the
proxy: a host hands it facts instead of bytes.

* ``tracking.py``: the ``track_*`` face, ``flush``/``close``/``status``, construction;
* ``worker.py``: the bounded queue and the one thread that reduces it into the delivery;
* ``inputs.py``: the fact builders (raw JSON decoded on the worker, skill paths canonicalised).
"""

from __future__ import annotations

from ...core.app_events import InvocationType, PluginState, SkillScope
from ...core.app_facts import (
    AppInvocation,
    PluginCapabilitySummary,
    PluginTelemetryMetadata,
    SkillInvocation,
    TrackEventsContext,
)
from .inputs import JsonInput
from .tracking import (
    DEFAULT_MAX_QUEUED_FACTS,
    DEFAULT_TIMEOUT_S,
    EXIT_TIMEOUT_S,
    LOGGER,
    AnalyticsEventsClient,
    ClientFlushResult,
)
from .worker import POLL_ACTIVE_S, POLL_IDLE_S, ClientStatus, EventDelivery

__all__ = [
    "DEFAULT_MAX_QUEUED_FACTS",
    "DEFAULT_TIMEOUT_S",
    "EXIT_TIMEOUT_S",
    "LOGGER",
    "POLL_ACTIVE_S",
    "POLL_IDLE_S",
    "AnalyticsEventsClient",
    "AppInvocation",
    "ClientFlushResult",
    "ClientStatus",
    "EventDelivery",
    "InvocationType",
    "JsonInput",
    "PluginCapabilitySummary",
    "PluginState",
    "PluginTelemetryMetadata",
    "SkillInvocation",
    "SkillScope",
    "TrackEventsContext",
]
