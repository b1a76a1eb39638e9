"""The report as one self-contained HTML page: headline figures, then a section per panel with
its chart (a Vega-Lite spec drawn in the browser) and, where the rows are few, a table of the
same numbers.

Nothing on the page comes from the network: styles and scripts are inline, and a
Content-Security-Policy that allows no fetch at all makes sure of it (an attempt would be a
console error, which the browser tests look for). Every string from the store (client and
model names, sources, skill names: whatever a sender put in its events) is escaped for HTML,
and the specs travel as JSON inside a ``<script type="application/json">`` with ``<`` escaped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import charts
from .panels import TOOL_KINDS, TOP_N, PanelData
from .scope import Scope, iso_minute

MISSING = "\N{EN DASH}"
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
       "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'")


@dataclass(frozen=True)
class PageContext:
    scope: Scope
    store: str  # where the events are, fit for display (no password)
    generated_at_ms: int
    live: bool = False  # served by the collector (reload for fresh figures) or a file


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _int(value: Any) -> str:
    return f"{int(value or 0):,}"


def _pct(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else MISSING


def _seconds(ms: Any) -> str:
    return MISSING if ms is None else f"{int(ms) / 1000:,.1f} s"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]],
           numeric: Sequence[bool] | None = None) -> str:
    numeric = numeric or [i > 0 for i in range(len(headers))]
    head = "".join(f'<th class="{"num" if n else ""}">{_e(h)}</th>'
                   for h, n in zip(headers, numeric, strict=True))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if n else ""}">{_e(v)}</td>'
                         for v, n in zip(row, numeric, strict=True)) + "</tr>"
        for row in rows)
    return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class PageBuilder:
    def __init__(self, data: dict[str, PanelData], context: PageContext) -> None:
        self.data = data
        self.context = context
        self.specs: dict[str, charts.Spec] = {}
        head = data["headline"].records()[0]
        self.head = head
        self.days = context.scope.days(head["first_ms"])

    # --- pieces ----------------------------------------------------------------------------

    def chart(self, name: str, spec: charts.Spec, *, half: bool = False) -> str:
        self.specs[f"chart-{name}"] = spec
        return f'<div class="chart{" half" if half else ""}" id="chart-{name}"></div>'

    def section(self, name: str, title: str, note: str, body: str) -> str:
        return (f'<section id="panel-{name}"><h2>{_e(title)}</h2>'
                f'<p class="note">{note}</p>{body}</section>')

    @staticmethod
    def empty(what: str) -> str:
        return f'<p class="empty">No {_e(what)} in this window.</p>'

    def panel(self, name: str, what: str, render: Callable[[PanelData], str]) -> str:
        data = self.data[name]
        return render(data) if data.rows else self.empty(what)

    # --- the page --------------------------------------------------------------------------

    def kpis(self) -> str:
        h = self.head
        turns = h["turns"]
        tiles = [
            ("turns", "turns", turns, _int(turns), None),
            ("failed_turns", "failed turns", h["failed"], _int(h["failed"]),
             _pct(h["failed"], turns) + " of turns"),
            ("threads", "threads", h["threads"], _int(h["threads"]),
             f"{_pct(h['subagent_threads'], h['threads'])} subagents"),
            ("clients", "clients", h["clients"], _int(h["clients"]), "with turns"),
            ("output_tokens", "output tokens", h["output_tokens"] or 0,
             _int(h["output_tokens"]),
             f"{_int(h['reasoning_output_tokens'])} reasoning"),
            ("input_tokens", "input tokens", h["input_tokens"] or 0, _int(h["input_tokens"]),
             f"cache hit rate {_pct(h['cached_input_tokens'] or 0, h['input_tokens'] or 0)}"),
            ("steered_turns", "turns steered", h["steered_turns"], _pct(h["steered_turns"],
                                                                        turns),
             f"{_int(h['steers'])} steers, {_int(h['steers_accepted'])} accepted"),
            ("interrupts", "interrupts requested", h["interrupts_requested"],
             _int(h["interrupts_requested"]), _pct(h["interrupts_requested"], turns)
             + " of turns"),
        ]
        out = []
        for key, label, value, shown, sub in tiles:
            sub_html = f'<span class="sub">{_e(sub)}</span>' if sub else ""
            out.append(f'<div class="kpi" data-figure="{key}" data-value="{int(value or 0)}">'
                       f'<span class="value">{_e(shown)}</span>'
                       f'<span class="label">{_e(label)}</span>{sub_html}</div>')
        banner = ""
        if not turns:
            banner = '<p class="empty banner">No turns in this window.</p>'
        return f'{banner}<div class="kpis">{"".join(out)}</div>'

    def adoption(self) -> str:
        body = self.panel("adoption", "threads or turns",
                          lambda d: self.chart("adoption", charts.adoption(d, self.days)))
        return self.section("adoption", "Adoption",
                            "Threads initialized and turns per UTC day, by client "
                            "(<code>product_client_id</code>) or by source (the ingest "
                            "token's name). Hover a bar for its numbers.", body)

    def outcomes(self) -> str:
        body = self.panel("outcomes", "turns",
                          lambda d: self.chart("outcomes", charts.outcomes(d, self.days)))
        fail = self.panel("failures", "failed turns",
                          lambda d: self.chart("failures", charts.failures(d, self.days)))
        return self.section(
            "outcomes", "Outcomes",
            "Turns by status per day; <em>never completed</em> turns ended with their "
            "connection. Below: failed turns by <code>codex_error_kind</code> and HTTP "
            "status.", body + "<h3>Failures</h3>" + fail)

    def speed(self) -> str:
        def render(d: PanelData) -> str:
            rows = [(r["model"], _int(r["turns"]), _seconds(r["p50_ms"]),
                     _seconds(r["p90_ms"]), _seconds(r["p99_ms"]), _seconds(r["max_ms"]))
                    for r in d.records()]
            return self.chart("speed", charts.speed(d)) + _table(
                ["model", "completed turns", "p50", "p90", "p99", "slowest"], rows)
        return self.section(
            "speed", "Speed", "Duration of completed turns per model: median (p50), p90 and "
            "p99, to 0.1 s (a 100 ms histogram in the store).",
            self.panel("speed", "completed turns", render))

    def tokens(self) -> str:
        daily = self.panel("tokens_daily", "turns", lambda d: self.chart(
            "tokens-daily", charts.tokens_daily(d, self.days)))

        def by_model(d: PanelData) -> str:
            rows = []
            for r in d.records():
                rows.append((r["model"], _int(r["turns"]), _int(r["input_tokens"]),
                             _int(r["cached_input_tokens"]), _int(r["output_tokens"]),
                             _int(r["reasoning_output_tokens"]),
                             _pct(r["cached_input_tokens"] or 0, r["input_tokens"] or 0),
                             _int((r["output_tokens"] or 0) // max(r["turns"], 1))))
            return self.chart("tokens-by-model", charts.tokens_by_model(d)) + _table(
                ["model", "turns", "input", "cached input", "output", "reasoning",
                 "cache hit rate", "output per turn"], rows)
        return self.section(
            "tokens", "Cost drivers: tokens",
            "Tokens per day, split into input not served from cache, cached input, output and "
            "reasoning (cached input is part of input, reasoning part of output, as codex "
            "counts them). Cache hit rate = cached input / input.",
            daily + "<h3>By model</h3>" + self.panel("tokens_by_model", "turns", by_model))

    def tools(self) -> str:
        def render(d: PanelData) -> str:
            rows = [(r["model"], _int(r["turns"]), _pct(r["turns_with_tools"], r["turns"]),
                     f"{(r['total_tool_calls'] or 0) / max(r['turns'], 1):.2f}",
                     *(f"{(r[k] or 0) / max(r['turns'], 1):.2f}" for k, _ in TOOL_KINDS))
                    for r in d.records()]
            return self.chart("tools", charts.tools(d)) + _table(
                ["model", "turns", "turns with tools", "all tools", *(k for k, _ in TOOL_KINDS)],
                rows)
        return self.section("tools", "Work done: tool calls per turn",
                            "Average tool calls per turn, by kind and model.",
                            self.panel("tools", "turns", render))

    def steering(self) -> str:
        daily = self.panel("outcomes", "turns", lambda d: self.chart(
            "steering", charts.steering_daily(d, self.days)))

        def results(d: PanelData) -> str:
            rows = [(r["result"], r["reason"] or MISSING, _int(r["steers"])) for r in d.records()]
            return self.chart("steer-results", charts.steer_results(d), half=True) + _table(
                ["result", "rejection reason", "steers"], rows, [False, False, True])
        return self.section(
            "steering", "Steering and interrupts",
            "Share of turns the user steered (<code>turn/steer</code> while running) and "
            "turns with an interrupt requested, per day; then every steer by result and "
            "rejection reason.",
            daily + "<h3>Steers</h3>" + self.panel("steer_results", "steers", results))

    def subagents(self) -> str:
        def render(d: PanelData) -> str:
            records = d.records()
            sub = next((r for r in records if r["kind"] == "*"), {"threads": 0, "parents": 0})
            share = _pct(sub["threads"], self.head["threads"])
            summary = (f'<p class="summary"><strong>{share}</strong>'
                       f" of threads are subagents: {_int(sub['parents'])} parent threads "
                       f"spawned {_int(sub['threads'])} subagent threads"
                       + (f" ({sub['threads'] / sub['parents']:.1f} per parent)."
                          if sub["parents"] else ".") + "</p>")
            rows = [(r["kind"] or "user threads", _int(r["threads"]),
                     _int(r["parents"]) if r["kind"] else MISSING)
                    for r in records if r["kind"] != "*"]
            return summary + self.chart("subagents", charts.subagents(d), half=True) + _table(
                ["thread kind", "threads", "parent threads"], rows)
        return self.section("subagents", "Subagents",
                            "Threads codex spawned itself (<code>subagent_source</code>) "
                            "against threads users started.",
                            self.panel("subagents", "threads", render))

    def settings(self) -> str:
        def render(d: PanelData) -> str:
            rows = [(r["setting"], r["value"], _int(r["turns"])) for r in d.records()]
            return self.chart("settings", charts.settings(d)) + _table(
                ["setting", "value", "turns"], rows, [False, False, True])
        return self.section("settings", "Settings in use",
                            "Sandbox policy, approval policy, reasoning effort and service "
                            "tier of each turn.", self.panel("settings", "turns", render))

    def top_used(self) -> str:
        def render(d: PanelData) -> str:
            rows = [(r["kind"], r["name"], _int(r["uses"]), _int(r["threads"]))
                    for r in d.records()]
            return self.chart("top-used", charts.top_used(d)) + _table(
                ["kind", "name", "uses", "threads"], rows, [False, False, True, True])
        return self.section("top-used", "Skills, apps and plugins",
                            f"The most used of each (top {TOP_N}), by invocations, and in how "
                            "many threads.",
                            self.panel("top_used", "skill, app or plugin use", render))

    def build(self, bundle: str) -> str:
        context = self.context
        sections = [self.kpis(), self.adoption(), self.outcomes(), self.speed(), self.tokens(),
                    self.tools(), self.steering(), self.subagents(), self.settings(),
                    self.top_used()]
        specs = json.dumps(self.specs, separators=(",", ":")).replace("<", "\\u003c")
        refresh = " Reload the page for fresh figures." if context.live else ""
        return PAGE.format(
            csp=CSP, style=STYLE, script=SCRIPT, bundle=bundle, specs=specs,
            scope=_e(context.scope.describe()), store=_e(context.store),
            generated=_e(iso_minute(context.generated_at_ms)), refresh=refresh,
            sections="\n".join(sections),
        )


def render_page(data: dict[str, PanelData], context: PageContext, bundle: str) -> str:
    return PageBuilder(data, context).build(bundle)


STYLE = """
:root { --ink: #1f2328; --muted: #636c76; --line: #d8dee4; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: var(--bg); }
header { padding: 20px 32px 8px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: var(--muted); }
main { padding: 8px 32px 40px; max-width: 1280px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr));
        gap: 12px; margin: 12px 0 20px; }
.kpi { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px;
       display: flex; flex-direction: column; }
.kpi .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums;
              overflow-wrap: anywhere; }
.kpi .label { color: var(--muted); }
.kpi .sub { color: var(--muted); font-size: 12px; margin-top: 2px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 16px 20px; margin: 0 0 16px; }
section h2 { margin: 0 0 4px; font-size: 17px; }
section h3 { margin: 18px 0 4px; font-size: 14px; color: var(--muted); }
.note { margin: 0 0 10px; color: var(--muted); }
.chart { width: 100%; min-height: 40px; }
.chart.half { max-width: 640px; }
.chart .vega-bindings { margin: 6px 0 0; color: var(--muted); font-size: 12px; }
.chart .vega-bind { display: inline-block; margin-right: 14px; }
table { border-collapse: collapse; margin: 12px 0 0; font-size: 13px;
        font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; }
.empty { color: var(--muted); font-style: italic; padding: 12px 0; margin: 0; }
.banner { background: #fff8c5; border: 1px solid #eac54f; border-radius: 8px;
          padding: 10px 14px; font-style: normal; color: var(--ink); }
.summary { margin: 0 0 8px; }
.chart-error { color: #d1495b; }
code { font-size: 12px; background: var(--bg); padding: 1px 4px; border-radius: 4px; }
"""

# Draws every chart, then marks the page ready (tests wait for it). A chart that fails says
# so in its place and on the console.
SCRIPT = """
(function () {
  const specs = JSON.parse(document.getElementById("report-specs").textContent);
  const options = {actions: false, renderer: "svg", mode: "vega-lite",
                   tooltip: {theme: "light"}};
  const drawn = Object.entries(specs).map(([id, spec]) =>
    vegaEmbed("#" + id, spec, options).catch((error) => {
      console.error("chart " + id + ": " + error);
      const place = document.getElementById(id);
      place.textContent = "This chart could not be drawn: " + error;
      place.className += " chart-error";
    }));
  Promise.all(drawn).then(() => { document.documentElement.dataset.charts = "ready"; });
})();
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Codex usage: {scope}</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>Codex usage</h1>
<p>{scope} &middot; from {store} &middot; built {generated} UTC.{refresh}</p>
</header>
<main>
{sections}
</main>
<script type="application/json" id="report-specs">{specs}</script>
<script>{bundle}</script>
<script>{script}</script>
</body>
</html>
"""
