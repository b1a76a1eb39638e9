"""The report's panels as queries: one SQL query per panel, the same text on SQLite and
PostgreSQL, aggregating in the store over the typed columns.

A panel's query returns at most a few thousand rows whatever the number of events (days x
clients x sources at the most), so building a report takes memory that does not grow with the
store. Every query reads only columns of the ``(event_type, occurred_at_ms, …)`` covering
index (store/schema.py, migration 2), except the rare rows of steer rejections, skills, apps
and plugins.

Dialect notes, kept to a minimum: ``SUM`` of a BIGINT is NUMERIC on PostgreSQL, so sums are
cast back to BIGINT (and anything asyncpg still hands back as ``Decimal`` is made an ``int``
here); percentiles come from a 100 ms histogram with window functions, which both dialects
have, rather than PostgreSQL's ``percentile_cont``, which SQLite lacks; NULL ordering is
always spelled out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..store import EventStore
from .scope import Scope

TURN = "codex_turn_event"
THREAD = "codex_thread_initialized"
STEER = "codex_turn_steer_event"
SKILL = "skill_invocation"
APP_USED = "codex_app_used"
PLUGIN_USED = "codex_plugin_used"

DAY = "occurred_at_ms / 86400000"
DURATION_BUCKET_MS = 100
TOP_N = 10


def _sum(column: str) -> str:
    return f"CAST(SUM({column}) AS BIGINT)"


def _count_if(condition: str) -> str:
    return f"COUNT(CASE WHEN {condition} THEN 1 END)"


# where(*event_types) -> the scope's WHERE clause for those types (no types: the panel's own).
# Every clause takes the same parameters, so one query may read several kinds of rows.
Where = Callable[..., str]


@dataclass(frozen=True)
class Panel:
    name: str
    columns: tuple[str, ...]
    event_types: tuple[str, ...]
    sql: Callable[[Where], str]


@dataclass(frozen=True)
class PanelData:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _headline(where: Where) -> str:
    """Each part from its own rows; distinct threads and clients by GROUP BY in a subquery,
    which PostgreSQL hashes (a ``COUNT(DISTINCT …)`` would sort every row)."""
    return f"""
WITH turns AS (
    SELECT COUNT(*) AS turns,
           {_count_if("status = 'completed'")} AS completed,
           {_count_if("status = 'failed'")} AS failed,
           {_count_if("status = 'interrupted'")} AS interrupted,
           {_count_if("status IS NULL")} AS never_completed,
           {_sum("input_tokens")} AS input_tokens,
           {_sum("cached_input_tokens")} AS cached_input_tokens,
           {_sum("output_tokens")} AS output_tokens,
           {_sum("reasoning_output_tokens")} AS reasoning_output_tokens,
           {_count_if("steer_count > 0")} AS steered_turns,
           {_count_if("interrupt_requested_at_ms IS NOT NULL")} AS interrupts_requested,
           MIN(occurred_at_ms) AS first_ms, MAX(occurred_at_ms) AS last_ms
    FROM events {where(TURN)}
), threads AS (
    SELECT COUNT(*) AS threads, COALESCE(SUM(subagent), 0) AS subagent_threads
    FROM (SELECT thread_id,
                 MAX(CASE WHEN subagent_source IS NOT NULL THEN 1 ELSE 0 END) AS subagent
          FROM events {where(THREAD)} GROUP BY thread_id) AS initialized
), steers AS (
    SELECT COUNT(*) AS steers, {_count_if("steer_result = 'accepted'")} AS steers_accepted
    FROM events {where(STEER)}
), clients AS (
    SELECT COUNT(*) AS clients
    FROM (SELECT client FROM events {where(TURN)} GROUP BY client) AS active
)
SELECT turns, completed, failed, interrupted, never_completed, input_tokens,
       cached_input_tokens, output_tokens, reasoning_output_tokens, steered_turns,
       interrupts_requested, threads, CAST(subagent_threads AS BIGINT), steers,
       steers_accepted, clients, first_ms, last_ms
FROM turns, threads, steers, clients"""


HEADLINE = Panel(
    "headline",
    ("turns", "completed", "failed", "interrupted", "never_completed", "input_tokens",
     "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "steered_turns",
     "interrupts_requested", "threads", "subagent_threads", "steers", "steers_accepted",
     "clients", "first_ms", "last_ms"),
    (TURN, THREAD, STEER),
    _headline,
)

ADOPTION = Panel(
    "adoption",
    ("day", "event_type", "client", "source", "count"),
    (TURN, THREAD),
    lambda where: f"""
SELECT {DAY}, event_type, COALESCE(client, '(none)'), source, COUNT(*)
FROM events {where()}
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4""",
)

# Outcomes and steering per day share one scan: turns by status, with the steers and interrupt
# requests among them (the steering chart adds the statuses up).
OUTCOMES = Panel(
    "outcomes",
    ("day", "status", "turns", "steered_turns", "steers", "interrupts_requested"),
    (TURN,),
    lambda where: f"""
SELECT {DAY}, COALESCE(status, 'never completed'), COUNT(*), {_count_if("steer_count > 0")},
       {_sum("steer_count")}, {_count_if("interrupt_requested_at_ms IS NOT NULL")}
FROM events {where()}
GROUP BY 1, 2
ORDER BY 1, 2""",
)

FAILURES = Panel(
    "failures",
    ("day", "error_kind", "http_status", "turns"),
    (TURN,),
    lambda where: f"""
SELECT {DAY}, COALESCE(codex_error_kind, '(not given)'), codex_error_http_status, COUNT(*)
FROM events {where()} AND status = 'failed'
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3 NULLS FIRST""",
)

# Nearest-rank percentiles of completed turns' durations, from a histogram of 100 ms buckets:
# the value shown is the lower edge of the bucket holding the percentile (exact to 0.1 s).
SPEED = Panel(
    "speed",
    ("model", "turns", "p50_ms", "p90_ms", "p99_ms", "max_ms"),
    (TURN,),
    lambda where: f"""
WITH buckets AS (
    SELECT COALESCE(model, '(none)') AS model, duration_ms / {DURATION_BUCKET_MS} AS bucket,
           COUNT(*) AS n
    FROM events {where()} AND status = 'completed' AND duration_ms IS NOT NULL
    GROUP BY 1, 2
), running AS (
    SELECT model, bucket, n,
           SUM(n) OVER (PARTITION BY model ORDER BY bucket) AS below,
           SUM(n) OVER (PARTITION BY model) AS total
    FROM buckets
)
SELECT model, CAST(MAX(total) AS BIGINT),
       MIN(CASE WHEN below * 100 >= total * 50 THEN bucket END) * {DURATION_BUCKET_MS},
       MIN(CASE WHEN below * 100 >= total * 90 THEN bucket END) * {DURATION_BUCKET_MS},
       MIN(CASE WHEN below * 100 >= total * 99 THEN bucket END) * {DURATION_BUCKET_MS},
       MAX(bucket) * {DURATION_BUCKET_MS}
FROM running
GROUP BY model
ORDER BY 2 DESC, 1""",
)

_TOKEN_SUMS = (f"{_sum('input_tokens')}, {_sum('cached_input_tokens')}, "
               f"{_sum('output_tokens')}, {_sum('reasoning_output_tokens')}")
_TOKEN_COLUMNS = ("input_tokens", "cached_input_tokens", "output_tokens",
                  "reasoning_output_tokens")

TOKENS_DAILY = Panel(
    "tokens_daily",
    ("day", "model", *_TOKEN_COLUMNS),
    (TURN,),
    lambda where: f"""
SELECT {DAY}, COALESCE(model, '(none)'), {_TOKEN_SUMS}
FROM events {where()}
GROUP BY 1, 2
ORDER BY 1, 2""",
)

TOKENS_BY_MODEL = Panel(
    "tokens_by_model",
    ("model", "turns", *_TOKEN_COLUMNS),
    (TURN,),
    lambda where: f"""
SELECT COALESCE(model, '(none)'), COUNT(*), {_TOKEN_SUMS}
FROM events {where()}
GROUP BY 1
ORDER BY 2 DESC, 1""",
)

TOOL_KINDS = (
    ("shell", "shell_command_count"),
    ("file change", "file_change_count"),
    ("MCP", "mcp_tool_call_count"),
    ("web search", "web_search_count"),
    ("subagent", "subagent_tool_call_count"),
    ("dynamic", "dynamic_tool_call_count"),
    ("image generation", "image_generation_count"),
)

TOOLS = Panel(
    "tools",
    ("model", "turns", "turns_with_tools", "total_tool_calls", *(k for k, _ in TOOL_KINDS)),
    (TURN,),
    lambda where: f"""
SELECT COALESCE(model, '(none)'), COUNT(*), {_count_if("total_tool_call_count > 0")},
       {_sum("total_tool_call_count")},
       {", ".join(_sum(column) for _, column in TOOL_KINDS)}
FROM events {where()}
GROUP BY 1
ORDER BY 2 DESC, 1""",
)

STEER_RESULTS = Panel(
    "steer_results",
    ("result", "reason", "steers"),
    (STEER,),
    lambda where: f"""
SELECT COALESCE(steer_result, '(none)'),
       COALESCE(rejection_reason,
                CASE WHEN steer_result = 'rejected' THEN '(no reason given)' ELSE '' END),
       COUNT(*)
FROM events {where()}
GROUP BY 1, 2
ORDER BY 3 DESC, 1, 2""",
)

# Per kind of thread (user threads: ''), and one row '*' for all subagent threads together,
# since a parent may have children of several kinds.
SUBAGENTS = Panel(
    "subagents",
    ("kind", "threads", "parents"),
    (THREAD,),
    lambda where: f"""
SELECT COALESCE(subagent_source, ''), COUNT(DISTINCT thread_id),
       COUNT(DISTINCT parent_thread_id)
FROM events {where()}
GROUP BY 1
UNION ALL
SELECT '*', COUNT(DISTINCT thread_id), COUNT(DISTINCT parent_thread_id)
FROM events {where()} AND subagent_source IS NOT NULL
HAVING COUNT(*) > 0
ORDER BY 2 DESC, 1""",
)

SETTINGS_COLUMNS = ("sandbox_policy", "approval_policy", "reasoning_effort", "service_tier")

# One scan: the combinations first, then each setting's share of turns from them.
SETTINGS = Panel(
    "settings",
    ("setting", "value", "turns"),
    (TURN,),
    lambda where: "WITH combos AS (\n    SELECT " + ", ".join(SETTINGS_COLUMNS)
    + f", COUNT(*) AS n\n    FROM events {where()}\n    GROUP BY 1, 2, 3, 4\n)\n"
    + "\nUNION ALL\n".join(
        f"SELECT '{column}', COALESCE({column}, '(not set)'), {_sum('n')} FROM combos"
        f" GROUP BY 2" for column in SETTINGS_COLUMNS)
    + "\nORDER BY 1, 3 DESC, 2",
)

TOP_USED = Panel(
    "top_used",
    ("kind", "name", "uses", "threads"),
    (SKILL, APP_USED, PLUGIN_USED),
    lambda where: f"""
WITH used AS (
    SELECT CASE event_type WHEN '{SKILL}' THEN 'skill' WHEN '{APP_USED}' THEN 'app'
                ELSE 'plugin' END AS kind,
           COALESCE(CASE event_type WHEN '{SKILL}' THEN skill_name
                                    WHEN '{APP_USED}' THEN COALESCE(app_name, connector_id)
                                    ELSE plugin_id END, '(unnamed)') AS name,
           thread_id
    FROM events {where()}
), counted AS (
    SELECT kind, name, COUNT(*) AS uses, COUNT(DISTINCT thread_id) AS threads
    FROM used
    GROUP BY 1, 2
), ranked AS (
    SELECT kind, name, uses, threads,
           ROW_NUMBER() OVER (PARTITION BY kind ORDER BY uses DESC, name) AS place
    FROM counted
)
SELECT kind, name, uses, threads FROM ranked WHERE place <= {TOP_N}
ORDER BY 1, 3 DESC, 2""",
)

# In the order they are queued: the heaviest (most rows to sort) first.
PANELS: tuple[Panel, ...] = (
    HEADLINE, ADOPTION, SETTINGS, TOKENS_DAILY, TOOLS, SPEED, TOKENS_BY_MODEL, OUTCOMES,
    SUBAGENTS, FAILURES, TOP_USED, STEER_RESULTS,
)


def panel_query(panel: Panel, scope: Scope) -> tuple[str, list[object]]:
    params: list[object] = []

    def where(*event_types: str) -> str:
        clause, params[:] = scope.where(*(event_types or panel.event_types))
        return clause

    return panel.sql(where), params


def _plain(value: object) -> object:
    """asyncpg returns NUMERIC as Decimal; the report wants ints (or floats)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


async def run_panel(store: EventStore, panel: Panel, scope: Scope) -> PanelData:
    sql, params = panel_query(panel, scope)
    rows = await store.fetch(sql, *params)
    return PanelData(panel.columns, [tuple(_plain(v) for v in row) for row in rows])


# Queries in flight at once: two use both cores of a small server. On PostgreSQL they share
# the store's pool (and leave the rest of a collector's pool to ingestion); a SQLite store
# answers one query at a time on its connection's thread, so a SQLite report reads through
# two read-only connections of its own (see :func:`.build.open_lanes`).
PARALLEL_QUERIES = 2


async def run_panels(stores: EventStore | Sequence[EventStore], scope: Scope,
                     panels: Sequence[Panel] = PANELS) -> dict[str, PanelData]:
    """Every panel's rows. ``stores``: one store, or several connections to the same one
    ("lanes"), each running one query at a time; a single store runs
    :data:`PARALLEL_QUERIES` at once. The heaviest panels are queued first."""
    lanes = [stores] * PARALLEL_QUERIES if isinstance(stores, EventStore) else list(stores)
    queue: asyncio.Queue[Panel] = asyncio.Queue()
    for panel in panels:
        queue.put_nowait(panel)
    results: dict[str, PanelData] = {}

    async def lane(store: EventStore) -> None:
        while not queue.empty():
            panel = queue.get_nowait()
            results[panel.name] = await run_panel(store, panel, scope)

    await asyncio.gather(*(lane(store) for store in lanes))
    return {panel.name: results[panel.name] for panel in panels}
