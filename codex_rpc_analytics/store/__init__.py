"""The team side's store: the query schema and the queries, SQLite and PostgreSQL behind one
interface (:class:`EventStore`), and the local outbox read the same way.

Layer contract: imports :mod:`..delivery` (to read an outbox) and nothing above it; the
collector and the report import this package; ``core/`` and ``adapters/`` never do.
"""

from .base import (
    EventStore,
    IngestResult,
    Rejected,
    Row,
    StoreError,
    StoreRefusing,
    StoreUnavailable,
)
from .commands import events_command, stats_command, summary, summary_lines
from .fields import MAX_EVENT_BYTES, NotAnEvent, make_row, occurred_at_ms
from .open import DEFAULT_STORE_FILENAME, is_postgres, open_reader, open_store
from .outbox_view import LOCAL_SOURCE, OutboxView
from .postgres import PostgresStore, redact_dsn
from .schema import COLUMN_NAMES, COLUMNS, SCHEMA_VERSION
from .sqlite import SqliteStore

__all__ = [
    "COLUMNS",
    "COLUMN_NAMES",
    "DEFAULT_STORE_FILENAME",
    "LOCAL_SOURCE",
    "MAX_EVENT_BYTES",
    "SCHEMA_VERSION",
    "EventStore",
    "IngestResult",
    "NotAnEvent",
    "OutboxView",
    "PostgresStore",
    "Rejected",
    "Row",
    "SqliteStore",
    "StoreError",
    "StoreRefusing",
    "StoreUnavailable",
    "events_command",
    "is_postgres",
    "make_row",
    "occurred_at_ms",
    "open_reader",
    "open_store",
    "redact_dsn",
    "stats_command",
    "summary",
    "summary_lines",
]
