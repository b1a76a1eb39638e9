"""The panels' queries: the same answers on SQLite and PostgreSQL, and the answers that plain
SQL and arithmetic give for the same events."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import replace
from typing import Any

from codex_rpc_analytics.report import PANELS, PanelData, Scope, run_panels
from codex_rpc_analytics.store import open_reader, open_store
from tests.report.support import SCOPE, independent_figures


def panels_of(spec: str, scope: Scope = SCOPE) -> dict[str, PanelData]:
    async def run() -> dict[str, PanelData]:
        store = await open_reader(spec, None)  # type: ignore[arg-type]
        try:
            return await run_panels(store, scope)
        finally:
            await store.close()
    return asyncio.run(run())


def plain(spec: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        store = await open_reader(spec, None)  # type: ignore[arg-type]
        try:
            return await store.fetch(sql, *params)
        finally:
            await store.close()
    return asyncio.run(run())


def test_every_panel_gives_the_same_rows_on_sqlite_and_postgresql(
        sqlite_store: str, postgres_store: str) -> None:
    on_sqlite, on_postgres = panels_of(sqlite_store), panels_of(postgres_store)
    assert set(on_sqlite) == {p.name for p in PANELS}
    for name, data in on_sqlite.items():
        assert data.rows, name  # the generated month exercises every panel
        assert data.rows == on_postgres[name].rows, name


def test_headline_equals_independent_sql(store_spec: str) -> None:
    head = panels_of(store_spec)["headline"].records()[0]
    async def figures() -> dict[str, int]:
        store = await open_reader(store_spec, None)  # type: ignore[arg-type]
        try:
            return await independent_figures(store, SCOPE)
        finally:
            await store.close()
    expected = asyncio.run(figures())
    assert expected["turns"] > 5000 and expected["failed_turns"] > 50
    assert (head["turns"], head["failed"], head["output_tokens"]) == (
        expected["turns"], expected["failed_turns"], expected["output_tokens"])


def nearest_rank(values: list[int], q: int) -> int:
    ordered = sorted(values)
    rank = -(-len(ordered) * q // 100)  # ceil(n q / 100), 1-based
    return ordered[rank - 1]


def test_speed_percentiles_are_nearest_rank_to_a_tenth_of_a_second(store_spec: str) -> None:
    durations: dict[str, list[int]] = defaultdict(list)
    for model, duration in plain(
            store_spec, "SELECT model, duration_ms FROM events WHERE event_type ="
            " 'codex_turn_event' AND status = 'completed' AND duration_ms IS NOT NULL"
            " AND occurred_at_ms >= $1 AND occurred_at_ms < $2", SCOPE.since_ms, SCOPE.until_ms):
        durations[model].append(duration)
    speed = {r["model"]: r for r in panels_of(store_spec)["speed"].records()}
    assert set(speed) == set(durations)
    for model, values in durations.items():
        row = speed[model]
        assert row["turns"] == len(values)
        for q in (50, 90, 99):
            assert row[f"p{q}_ms"] == nearest_rank(values, q) // 100 * 100, (model, q)
        assert row["max_ms"] == max(values) // 100 * 100


def test_tokens_tools_and_settings_add_up_to_plain_sums(store_spec: str) -> None:
    panels = panels_of(store_spec)
    rows = plain(store_spec, "SELECT model, input_tokens, cached_input_tokens, output_tokens,"
                 " shell_command_count, sandbox_policy FROM events WHERE event_type ="
                 " 'codex_turn_event' AND occurred_at_ms >= $1 AND occurred_at_ms < $2",
                 SCOPE.since_ms, SCOPE.until_ms)
    by_model = {r["model"]: r for r in panels["tokens_by_model"].records()}
    for model in {r[0] for r in rows}:
        mine = [r for r in rows if r[0] == model]
        assert by_model[model]["turns"] == len(mine)
        assert by_model[model]["input_tokens"] == sum(r[1] or 0 for r in mine)
        assert by_model[model]["cached_input_tokens"] == sum(r[2] or 0 for r in mine)
    daily_output = sum(r["output_tokens"] for r in panels["tokens_daily"].records())
    assert daily_output == sum(r[3] or 0 for r in rows)
    assert sum(r["shell"] for r in panels["tools"].records()) == sum(r[4] or 0 for r in rows)
    sandbox = {r["value"]: r["turns"] for r in panels["settings"].records()
               if r["setting"] == "sandbox_policy"}
    assert sandbox == {value: sum(1 for r in rows if (r[5] or "(not set)") == value)
                       for value in {r[5] or "(not set)" for r in rows}}


def test_client_and_model_filters_narrow_every_panel(store_spec: str) -> None:
    client, model = plain(
        store_spec, "SELECT client, model FROM events WHERE event_type = 'codex_turn_event'"
        " AND occurred_at_ms >= $1 GROUP BY 1, 2 ORDER BY COUNT(*) DESC LIMIT 1",
        SCOPE.since_ms)[0]
    narrowed = replace(SCOPE, client=client, model=model)
    head = panels_of(store_spec, narrowed)["headline"].records()[0]
    expected = plain(
        store_spec, "SELECT COUNT(*) FROM events WHERE event_type = 'codex_turn_event' AND"
        " occurred_at_ms >= $1 AND occurred_at_ms < $2 AND client = $3 AND model = $4",
        SCOPE.since_ms, SCOPE.until_ms, client, model)[0][0]
    assert 0 < head["turns"] == expected
    assert head["clients"] == 1
    models = {r["model"] for r in panels_of(store_spec, narrowed)["tokens_by_model"].records()}
    assert models == {model}


def test_an_empty_store_gives_empty_panels_and_a_zero_headline(tmp_path: Any) -> None:
    spec = str(tmp_path / "empty.sqlite3")

    async def create() -> None:
        await (await open_store(spec, migrate=True)).close()
    asyncio.run(create())
    panels = panels_of(spec)
    head = panels.pop("headline").records()[0]
    assert head["turns"] == 0 and head["threads"] == 0 and head["first_ms"] is None
    assert {name: data.rows for name, data in panels.items()} == {
        name: [] for name in panels}
