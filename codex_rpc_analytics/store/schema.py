"""The query schema: one ``events`` table, typed columns for what a team filters and groups by,
plus the full event as the sender's exact bytes (PostgreSQL: JSON; SQLite: TEXT).

The columns are declared once here, in table order; :mod:`.fields` fills them from an event and
:mod:`.migrations` creates them. A column's *kind* maps to a type per dialect:

=====  ==================  ==========================
kind   SQLite              PostgreSQL
=====  ==================  ==========================
text   TEXT                TEXT
int    INTEGER             BIGINT
bool   INTEGER (0/1)       BOOLEAN
json   TEXT (exact bytes)  JSON (exact bytes)
=====  ==================  ==========================

The payload is PostgreSQL's ``json``, not ``jsonb``: both validate the event and answer the
same operators (``payload->'event_params'->>'model'``), but ``json`` keeps the sender's bytes
(so ``events`` prints what codex sent, as from an outbox) and costs the database a third less
per insert: one collector ingested 24,600 events/s into ``json`` against 16,500 into
``jsonb`` in back-to-back runs (bench/collect_bench.py). Every figure a team groups by is a
typed column; a team that queries payload keys heavily can add a ``jsonb`` expression index
in a migration.

Times are integers in Unix **milliseconds** on both dialects, so a day bucket is the same
expression everywhere (``occurred_at_ms / 86400000``) and no query depends on a dialect's
date functions. Migration 1 freezes this list as it is today; a later change to the table is a
new migration (``ALTER TABLE``), never an edit of an old one.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Kind = Literal["text", "int", "bool", "json"]


class Column(NamedTuple):
    name: str
    kind: Kind
    not_null: bool = False


# Everything but ``seq`` (the row's identity, assigned by the store), in insert order, as
# migration 1 created them. A later migration appends its columns to COLUMNS below.
COLUMNS_V1: tuple[Column, ...] = (
    # Identity and time.
    Column("source", "text", True),          # the ingest token's name; "local" for an outbox
    Column("event_id", "text", True),        # the sender's stable id; unique per source
    Column("event_type", "text", True),
    Column("occurred_at_ms", "int", True),   # when it happened (see fields.occurred_at_ms)
    Column("received_at_ms", "int", True),   # when the store got it (outbox: commit time)
    # Who: the client and the codex build (app_server_client, runtime).
    Column("client", "text"),                # product_client_id
    Column("client_version", "text"),
    Column("codex_version", "text"),         # runtime.codex_rs_version
    Column("runtime_os", "text"),
    # Threads and subagents.
    Column("thread_id", "text"),
    Column("turn_id", "text"),
    Column("parent_thread_id", "text"),
    Column("thread_source", "text"),
    Column("subagent_source", "text"),
    Column("initialization_mode", "text"),   # new / resumed / forked
    Column("ephemeral", "bool"),
    # Turns: outcome and speed.
    Column("model", "text"),                 # model, or model_slug for skill/app/plugin events
    Column("model_provider", "text"),
    Column("status", "text"),                # turn status; NULL: never completed
    Column("is_first_turn", "bool"),
    Column("codex_error_kind", "text"),
    Column("codex_error_http_status", "int"),
    Column("duration_ms", "int"),
    Column("interrupt_requested_at_ms", "int"),
    Column("steer_count", "int"),
    # Tokens (per turn).
    Column("input_tokens", "int"),
    Column("cached_input_tokens", "int"),
    Column("output_tokens", "int"),
    Column("reasoning_output_tokens", "int"),
    Column("total_tokens", "int"),
    # Tool calls (per turn), by kind.
    Column("total_tool_call_count", "int"),
    Column("shell_command_count", "int"),
    Column("file_change_count", "int"),
    Column("mcp_tool_call_count", "int"),
    Column("dynamic_tool_call_count", "int"),
    Column("subagent_tool_call_count", "int"),
    Column("web_search_count", "int"),
    Column("image_generation_count", "int"),
    # Settings in use (per turn).
    Column("sandbox_policy", "text"),
    Column("approval_policy", "text"),
    Column("reasoning_effort", "text"),
    Column("service_tier", "text"),
    Column("collaboration_mode", "text"),
    # Steers.
    Column("steer_result", "text"),          # accepted / rejected
    Column("rejection_reason", "text"),
    # Skills, apps, plugins, archives.
    Column("skill_name", "text"),
    Column("connector_id", "text"),
    Column("app_name", "text"),
    Column("plugin_id", "text"),             # plugin_id, else remote_plugin_id
    Column("invoke_type", "text"),
    Column("archive_action", "text"),
    # The whole event.
    Column("payload", "json", True),
)
COLUMNS: tuple[Column, ...] = COLUMNS_V1

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
INDEX = {name: i for i, name in enumerate(COLUMN_NAMES)}

_TYPES: dict[str, dict[Kind, str]] = {
    "sqlite": {"text": "TEXT", "int": "INTEGER", "bool": "INTEGER", "json": "TEXT"},
    "postgresql": {"text": "TEXT", "int": "BIGINT", "bool": "BOOLEAN", "json": "JSON"},
}


def column_type(dialect: str, column: Column) -> str:
    return _TYPES[dialect][column.kind]


def _events_table(dialect: str, columns: tuple[Column, ...]) -> str:
    seq = ("seq INTEGER PRIMARY KEY" if dialect == "sqlite"
           else "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
    body = ",\n    ".join(
        f"{c.name} {column_type(dialect, c)}{' NOT NULL' if c.not_null else ''}" for c in columns
    )
    return f"CREATE TABLE events (\n    {seq},\n    {body}\n)"


def migration_1(dialect: str) -> list[str]:
    """The first schema: the table, the exactly-once key and the time-range indexes."""
    return [
        _events_table(dialect, COLUMNS_V1),
        # Exactly once: a resent event (same source, same id) is skipped by ON CONFLICT.
        "CREATE UNIQUE INDEX events_source_event_id ON events (source, event_id)",
        # Time ranges: every panel filters on occurred-at, most also on the type.
        "CREATE INDEX events_occurred ON events (occurred_at_ms)",
        "CREATE INDEX events_type_occurred ON events (event_type, occurred_at_ms)",
        # `events --since`: what was stored since a moment.
        "CREATE INDEX events_received ON events (received_at_ms)",
    ]


# What the report's panels (report/panels.py) read from turn, thread and steer rows besides
# the type and the time. PostgreSQL allows 32 columns in an index, INCLUDE ones counted: these
# 30 and the two keys.
REPORT_COLUMNS: tuple[str, ...] = (
    "source", "client", "model", "status", "codex_error_kind", "codex_error_http_status",
    "duration_ms", "interrupt_requested_at_ms", "steer_count",
    "input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens",
    "total_tool_call_count", "shell_command_count", "file_change_count", "mcp_tool_call_count",
    "dynamic_tool_call_count", "subagent_tool_call_count", "web_search_count",
    "image_generation_count",
    "sandbox_policy", "approval_policy", "reasoning_effort", "service_tier",
    "thread_id", "subagent_source", "parent_thread_id", "steer_result", "rejection_reason",
)
# Skills, apps and plugins are a few percent of the rows: a partial index of their own covers
# the report's top-N panel without widening every turn's index entry. A query uses it when its
# WHERE clause has this very ``event_type IN (…)`` term (SQLite matches partial indexes by
# the term's text).
USED_EVENT_TYPES: tuple[str, ...] = ("skill_invocation", "codex_app_used", "codex_plugin_used")
USED_COLUMNS: tuple[str, ...] = (
    "client", "model", "thread_id", "skill_name", "app_name", "connector_id", "plugin_id")


def migration_2(dialect: str) -> list[str]:
    """The report's covering index: ``(event_type, occurred_at_ms)`` plus every column a panel
    reads, so a panel scans a narrow index instead of the rows with their payloads (a turn row
    is ~2.5 KB; over a million events that is 10x less to read). It replaces migration 1's
    ``(event_type, occurred_at_ms)`` index, which is its prefix, so ingestion keeps the same
    number of indexes to maintain for most rows."""
    columns = ", ".join(REPORT_COLUMNS)
    if dialect == "postgresql":
        create = ("CREATE INDEX events_type_occurred_covering ON events"
                  f" (event_type, occurred_at_ms) INCLUDE ({columns})")
    else:  # SQLite has no INCLUDE: every column is a key column, which serves the same reads.
        create = ("CREATE INDEX events_type_occurred_covering ON events"
                  f" (event_type, occurred_at_ms, {columns})")
    used_types = ", ".join(f"'{t}'" for t in USED_EVENT_TYPES)
    used = (f"CREATE INDEX events_used_covering ON events"
            f" (event_type, occurred_at_ms, {', '.join(USED_COLUMNS)})"
            f" WHERE event_type IN ({used_types})")
    return [create, used, "DROP INDEX events_type_occurred"]


def migration_3(dialect: str) -> list[str]:
    """PostgreSQL compresses the payload with LZ4 instead of its default pglz.

    A row over about 2 KB (a turn event with its 53 columns) has its payload compressed on
    insert; pglz spent a quarter of PostgreSQL's CPU under the collect bench, LZ4 a fraction
    of that for about the same size (PostgreSQL's CPU an event went from ~21 to ~16 µs with
    the same rows). Rows stored before keep pglz; reads decompress either. A server built
    without LZ4 (the ``DO`` block's ``feature_not_supported``) keeps pglz. SQLite does not
    compress: nothing to do there."""
    if dialect != "postgresql":
        return []
    return ["DO $$ BEGIN"
            " EXECUTE 'ALTER TABLE events ALTER COLUMN payload SET COMPRESSION lz4';"
            " EXCEPTION WHEN feature_not_supported THEN NULL; END $$"]


# Version -> statements, per dialect. Append only.
MIGRATIONS: dict[int, dict[str, list[str]]] = {
    1: {dialect: migration_1(dialect) for dialect in ("sqlite", "postgresql")},
    2: {dialect: migration_2(dialect) for dialect in ("sqlite", "postgresql")},
    3: {dialect: migration_3(dialect) for dialect in ("sqlite", "postgresql")},
}
SCHEMA_VERSION = max(MIGRATIONS)
