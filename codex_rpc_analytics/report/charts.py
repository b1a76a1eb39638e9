"""Vega-Lite specifications of the report's charts, one function per panel.

Each function turns a panel's rows (already aggregated by the store) into a spec with the
data inline; the browser draws it with Vega (bundled in the page, see :mod:`.assets`), with
the numbers in tooltips. Reshaping here is presentation only (day numbers to dates, token
columns into the four parts of a stack); every sum is the store's.
"""

from __future__ import annotations

from typing import Any

from .panels import TOOL_KINDS, PanelData
from .scope import day_label

Spec = dict[str, Any]

STATUS_COLORS = {"completed": "#4c9a5f", "failed": "#d1495b", "interrupted": "#edae49",
                 "never completed": "#9aa0a6"}
TOKEN_PARTS = ("input (not cached)", "cached input", "output (not reasoning)", "reasoning")
TOKEN_COLORS = ("#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d")
WIDE = 860
HALF = 380


def _base(data: list[dict[str, Any]], height: int = 220) -> Spec:
    return {
        "data": {"values": data},
        "width": "container",
        "height": height,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "config": {"view": {"stroke": None}, "axis": {"labelFontSize": 11},
                   "legend": {"labelFontSize": 11, "labelLimit": 220}},
    }


def _day_axis(days: list[str]) -> Spec:
    return {"field": "day", "type": "ordinal", "title": None, "scale": {"domain": days},
            "axis": {"labelAngle": -45, "labelOverlap": True, "labelExpr":
                     "slice(datum.value, 5)"}}


def _with_days(data: PanelData) -> list[dict[str, Any]]:
    records = data.records()
    for record in records:
        record["day"] = day_label(record["day"])
    return records


def adoption(data: PanelData, days: list[str]) -> Spec:
    records = _with_days(data)
    for record in records:
        record["what"] = "turns" if record.pop("event_type") == "codex_turn_event" else "threads"
    spec = _base(records, 240)
    spec["params"] = [
        {"name": "measure", "value": "turns",
         "bind": {"input": "radio", "options": ["turns", "threads"], "name": "count "}},
        {"name": "split", "value": "client",
         "bind": {"input": "radio", "options": ["client", "source"], "name": " by "}},
    ]
    spec["transform"] = [
        {"filter": "datum.what == measure"},
        {"calculate": "split == 'client' ? datum.client : datum.source", "as": "by"},
    ]
    spec["mark"] = {"type": "bar", "tooltip": True}
    spec["encoding"] = {
        "x": _day_axis(days),
        "y": {"aggregate": "sum", "field": "count", "type": "quantitative", "title": None},
        "color": {"field": "by", "type": "nominal", "title": None},
        "tooltip": [{"field": "day", "title": "day"}, {"field": "by", "title": "who"},
                    {"field": "what", "title": "counting"},
                    {"aggregate": "sum", "field": "count", "title": "count", "format": ","}],
    }
    return spec


def outcomes(data: PanelData, days: list[str]) -> Spec:
    spec = _base(_with_days(data))
    spec["mark"] = {"type": "bar"}
    spec["encoding"] = {
        "x": _day_axis(days),
        "y": {"field": "turns", "type": "quantitative", "title": "turns", "stack": True},
        "color": {"field": "status", "type": "nominal", "title": None,
                  "scale": {"domain": list(STATUS_COLORS), "range": list(STATUS_COLORS.values())}},
        "order": {"field": "status"},
        "tooltip": [{"field": "day"}, {"field": "status"},
                    {"field": "turns", "format": ","}],
    }
    return spec


def failures(data: PanelData, days: list[str]) -> Spec:
    records = _with_days(data)
    https = ["no HTTP status"]
    for record in records:
        status = record["http_status"]
        record["http"] = f"HTTP {status}" if status is not None else "no HTTP status"
        if record["http"] not in https:
            https.append(record["http"])
    daily = {
        "width": "container", "height": 200,
        "mark": {"type": "bar"},
        "encoding": {
            "x": _day_axis(days),
            "y": {"aggregate": "sum", "field": "turns", "type": "quantitative",
                  "title": "failed turns"},
            "color": {"field": "error_kind", "type": "nominal", "title": "codex_error_kind"},
            "tooltip": [{"field": "day"}, {"field": "error_kind", "title": "kind"},
                        {"aggregate": "sum", "field": "turns", "title": "failed turns"}],
        },
    }
    totals = {
        "width": "container", "height": {"step": 16},
        "mark": {"type": "bar"},
        "encoding": {
            "y": {"field": "error_kind", "type": "nominal", "title": None,
                  "sort": {"op": "sum", "field": "turns", "order": "descending"}},
            "x": {"aggregate": "sum", "field": "turns", "type": "quantitative",
                  "title": "failed turns in the window"},
            "color": {"field": "http", "type": "nominal", "title": "HTTP status",
                      "scale": {"domain": https, "range": _http_colors(https)}},
            "tooltip": [{"field": "error_kind", "title": "kind"}, {"field": "http"},
                        {"aggregate": "sum", "field": "turns", "title": "failed turns"}],
        },
    }
    spec = _base(records)
    del spec["height"]
    spec["vconcat"] = [daily, totals]
    spec["resolve"] = {"scale": {"color": "independent"}}
    return spec


def _http_colors(labels: list[str]) -> list[str]:
    palette = ["#e15759", "#f28e2b", "#b07aa1", "#76b7b2", "#59a14f", "#edc948", "#ff9da7"]
    return ["#c7ccd1"] + [palette[i % len(palette)] for i in range(len(labels) - 1)]


def speed(data: PanelData) -> Spec:
    points = []
    for record in data.records():
        for name in ("p50", "p90", "p99"):
            points.append({"model": record["model"], "turns": record["turns"],
                           "percentile": name, "seconds": record[f"{name}_ms"] / 1000})
    ranges = [{"model": r["model"], "p50": r["p50_ms"] / 1000, "p99": r["p99_ms"] / 1000}
              for r in data.records()]
    spec = _base(points, height=max(60, 34 * len(ranges)))
    x = {"field": "seconds", "type": "quantitative", "title": "turn duration (s, log scale)",
         "scale": {"type": "log"}}
    spec["layer"] = [
        {"data": {"values": ranges}, "mark": {"type": "rule", "strokeWidth": 3,
                                              "color": "#c7ccd1"},
         "encoding": {"y": {"field": "model", "type": "nominal", "title": None},
                      "x": {"field": "p50", "type": "quantitative", "scale": {"type": "log"}},
                      "x2": {"field": "p99"}}},
        {"mark": {"type": "point", "filled": True, "size": 110},
         "encoding": {"y": {"field": "model", "type": "nominal", "title": None}, "x": x,
                      "color": {"field": "percentile", "type": "nominal", "title": None,
                                "scale": {"domain": ["p50", "p90", "p99"],
                                          "range": ["#4c9a5f", "#edae49", "#d1495b"]}},
                      "tooltip": [{"field": "model"}, {"field": "percentile"},
                                  {"field": "seconds", "format": ",.1f", "title": "seconds"},
                                  {"field": "turns", "format": ",",
                                   "title": "completed turns"}]}},
    ]
    return spec


def _token_parts(record: dict[str, Any]) -> list[tuple[str, int]]:
    """A turn's tokens as four parts that add up to its total: cached input is part of
    input, reasoning part of output (as codex counts them)."""
    def n(key: str) -> int:
        return int(record[key] or 0)
    return list(zip(TOKEN_PARTS, (
        n("input_tokens") - n("cached_input_tokens"), n("cached_input_tokens"),
        n("output_tokens") - n("reasoning_output_tokens"), n("reasoning_output_tokens")),
        strict=True))


def tokens_daily(data: PanelData, days: list[str]) -> Spec:
    """Input and output one above the other: input is usually two orders of magnitude larger,
    and a single stack would hide output."""
    records = []
    models: list[str] = []
    for record in _with_days(data):
        if record["model"] not in models:
            models.append(record["model"])
        for rank, (part, tokens) in enumerate(_token_parts(record)):
            records.append({"day": record["day"], "model": record["model"], "part": part,
                            "rank": rank, "side": "input" if rank < 2 else "output",
                            "tokens": tokens})

    def side(name: str, parts: slice) -> Spec:
        return {
            "width": "container", "height": 170,
            "transform": [{"filter": f"datum.side == '{name}'"}],
            "mark": {"type": "bar"},
            "encoding": {
                "x": _day_axis(days),
                "y": {"aggregate": "sum", "field": "tokens", "type": "quantitative",
                      "title": f"{name} tokens", "axis": {"format": "~s"}},
                "color": {"field": "part", "type": "nominal", "title": None,
                          "scale": {"domain": list(TOKEN_PARTS[parts]),
                                    "range": list(TOKEN_COLORS[parts])}},
                "order": {"field": "rank"},
                "tooltip": [{"field": "day"}, {"field": "part"},
                            {"aggregate": "sum", "field": "tokens", "format": ",",
                             "title": "tokens"}],
            },
        }

    spec = _base(records)
    del spec["height"]
    spec["params"] = [{"name": "model_pick", "value": "all models",
                       "bind": {"input": "select", "options": ["all models", *models],
                                "name": "model "}}]
    spec["transform"] = [{"filter": "model_pick == 'all models' || datum.model == model_pick"}]
    spec["vconcat"] = [side("input", slice(0, 2)), side("output", slice(2, 4))]
    spec["resolve"] = {"scale": {"color": "independent"}}
    return spec


def tokens_by_model(data: PanelData) -> Spec:
    records = [{"model": r["model"], "part": part, "rank": rank, "tokens": tokens}
               for r in data.records() for rank, (part, tokens) in enumerate(_token_parts(r))]
    spec = _base(records, height=max(60, 30 * len(data.rows)))
    spec["mark"] = {"type": "bar"}
    spec["encoding"] = {
        "y": {"field": "model", "type": "nominal", "title": None, "sort": None},
        "x": {"field": "tokens", "type": "quantitative", "title": "tokens in the window",
              "axis": {"format": "~s"}},
        "color": {"field": "part", "type": "nominal", "title": None,
                  "scale": {"domain": list(TOKEN_PARTS), "range": list(TOKEN_COLORS)}},
        "order": {"field": "rank"},
        "tooltip": [{"field": "model"}, {"field": "part"},
                    {"field": "tokens", "format": ",", "title": "tokens"}],
    }
    return spec


def tools(data: PanelData) -> Spec:
    cells = [{"model": r["model"], "kind": kind, "per_turn": r[kind] / r["turns"],
              "calls": r[kind]}
             for r in data.records() if r["turns"] for kind, _ in TOOL_KINDS]
    spec = _base(cells, height=max(60, 30 * len(data.rows)))
    encoding = {
        "x": {"field": "kind", "type": "nominal", "title": None, "sort": None,
              "axis": {"labelAngle": 0}},
        "y": {"field": "model", "type": "nominal", "title": None, "sort": None},
    }
    spec["layer"] = [
        {"mark": {"type": "rect"},
         "encoding": {**encoding,
                      "color": {"field": "per_turn", "type": "quantitative",
                                "title": "calls per turn", "scale": {"scheme": "blues"}},
                      "tooltip": [{"field": "model"}, {"field": "kind"},
                                  {"field": "per_turn", "format": ".2f",
                                   "title": "calls per turn"},
                                  {"field": "calls", "format": ",", "title": "calls"}]}},
        {"mark": {"type": "text", "fontSize": 12},
         "encoding": {**encoding, "text": {"field": "per_turn", "format": ".2f"},
                      "color": {"condition": {"test": "datum.per_turn > 2", "value": "white"},
                                "value": "#222"}}},
    ]
    return spec


def steering_daily(data: PanelData, days: list[str]) -> Spec:
    """From the outcomes rows (per day and status): the statuses added up per day, then the
    share of turns steered and of turns with an interrupt requested."""
    spec = _base(_with_days(data), 200)
    spec["transform"] = [
        {"aggregate": [{"op": "sum", "field": f, "as": f} for f in
                       ("turns", "steered_turns", "steers", "interrupts_requested")],
         "groupby": ["day"]},
        {"calculate": "datum.steered_turns / datum.turns", "as": "turns steered"},
        {"calculate": "datum.interrupts_requested / datum.turns",
         "as": "turns with an interrupt requested"},
        {"fold": ["turns steered", "turns with an interrupt requested"],
         "as": ["rate", "share"]},
    ]
    spec["mark"] = {"type": "line", "point": True}
    spec["encoding"] = {
        "x": _day_axis(days),
        "y": {"field": "share", "type": "quantitative", "title": "share of turns",
              "axis": {"format": "%"}},
        "color": {"field": "rate", "type": "nominal", "title": None},
        "tooltip": [{"field": "day"}, {"field": "rate", "title": "what"},
                    {"field": "share", "format": ".1%", "title": "share of turns"},
                    {"field": "turns", "format": ",", "title": "turns that day"},
                    {"field": "steers", "format": ",", "title": "steers that day"}],
    }
    return spec


def steer_results(data: PanelData) -> Spec:
    records = [{**r, "label": r["result"] + (f": {r['reason']}" if r["reason"] else "")}
               for r in data.records()]
    spec = _base(records, height=max(40, 26 * len(records)))
    spec["mark"] = {"type": "bar", "tooltip": True}
    spec["encoding"] = {
        "y": {"field": "label", "type": "nominal", "title": None, "sort": "-x"},
        "x": {"field": "steers", "type": "quantitative", "title": "steers"},
        "color": {"field": "result", "type": "nominal", "title": None,
                  "scale": {"domain": ["accepted", "rejected"],
                            "range": ["#4c9a5f", "#d1495b"]}},
        "tooltip": [{"field": "result"}, {"field": "reason"},
                    {"field": "steers", "format": ","}],
    }
    return spec


def subagents(data: PanelData) -> Spec:
    records = [{"kind": r["kind"] or "user threads", "threads": r["threads"]}
               for r in data.records() if r["kind"] != "*"]
    spec = _base(records, height=max(40, 26 * len(records)))
    spec["mark"] = {"type": "bar"}
    spec["encoding"] = {
        "y": {"field": "kind", "type": "nominal", "title": None, "sort": "-x"},
        "x": {"field": "threads", "type": "quantitative", "title": "threads"},
        "color": {"condition": {"test": "datum.kind == 'user threads'", "value": "#9aa0a6"},
                  "value": "#76b7b2"},
        "tooltip": [{"field": "kind", "title": "thread kind"},
                    {"field": "threads", "format": ","}],
    }
    return spec


def _faceted_bars(records: list[dict[str, Any]], facet: str, y: str, x: str,
                  x_title: str, x_format: str) -> Spec:
    return {
        "data": {"values": records},
        "facet": {"field": facet, "type": "nominal", "title": None,
                  "header": {"labelFontSize": 13, "labelFontWeight": "bold"}},
        "columns": 2,
        "resolve": {"scale": {"y": "independent", "x": "independent"}},
        "spec": {
            "width": HALF - 130, "height": {"step": 18},
            "mark": {"type": "bar", "color": "#4e79a7"},
            "encoding": {
                "y": {"field": y, "type": "nominal", "title": None, "sort": "-x"},
                "x": {"field": x, "type": "quantitative", "title": x_title,
                      "axis": {"format": x_format}},
                "tooltip": [{"field": y}, {"field": x, "format": x_format, "title": x_title}],
            },
        },
        "config": {"view": {"stroke": None}},
    }


def settings(data: PanelData) -> Spec:
    spec = _faceted_bars(data.records(), "setting", "value", "share", "share of turns", ".0%")
    # Every turn has one value of each setting: a setting's rows add up to the turns.
    spec["transform"] = [
        {"joinaggregate": [{"op": "sum", "field": "turns", "as": "total"}],
         "groupby": ["setting"]},
        {"calculate": "datum.turns / datum.total", "as": "share"},
    ]
    spec["spec"]["encoding"]["tooltip"].append({"field": "turns", "format": ","})
    return spec


def top_used(data: PanelData) -> Spec:
    spec = _faceted_bars(data.records(), "kind", "name", "uses", "uses", ",d")
    spec["spec"]["encoding"]["tooltip"].append({"field": "threads", "format": ","})
    return spec
