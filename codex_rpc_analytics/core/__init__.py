"""The sans-I/O core: framing, envelopes, the tap, facts, the reducer and the event types.

Nothing in this package performs I/O, starts a thread, touches asyncio or reads a clock:
callers pass bytes and times in and get facts or events back.
"""

from .analyzer import Analyzer, AnalyzerStats
from .events import AnyEvent, encode_event, event_type_of
from .facts import Transport
from .runtime import RuntimeInfo

__all__ = ["Analyzer", "AnalyzerStats", "AnyEvent", "RuntimeInfo", "Transport", "encode_event",
           "event_type_of"]
