"""What a report looks at: a time window and optional client and model filters, as SQL.

Every panel's query starts from :meth:`Scope.where`: the event types it reads, the window on
``occurred_at_ms`` (half-open, ``[since, until)``), and the filters. The window and the types
lead the clause so both dialects use the ``(event_type, occurred_at_ms, …)`` covering index
(store/schema.py, migration 2). Days are UTC days: ``occurred_at_ms / 86400000`` is the same
integer expression on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

DAY_MS = 86_400_000
# The last second datetime can show (9999-12-31T23:59:59Z): every moment is within [0, this].
LAST_MOMENT_S = 253_402_300_799
MOMENT_FORMS = "unix seconds, an ISO 8601 time or an age such as 30m, 12h, 7d"
_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_moment(text: str, now: float) -> float:
    """``--since``/``--until`` (CLI) and ``?since=``/``?until=`` (dashboard): unix seconds, an
    ISO 8601 time (naive: local time), or an age before ``now``. The one parser of both.

    Raises :class:`ValueError` with a one-line reason for anything else, including ``nan``,
    ``inf``, a negative age and a time before 1970 or after 9999. An age reaching before 1970
    (``100000d``) means "from the start": 0."""
    text = text.strip()
    age = _AGE.match(text)
    if age:
        return max(now - float(age.group(1)) * _SECONDS[age.group(2)], 0.0)
    try:
        moment = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"expected {MOMENT_FORMS}") from None
        if parsed.tzinfo is None:
            parsed = parsed.astimezone()  # a naive time is local time, as people write it
        moment = parsed.timestamp()
    if not math.isfinite(moment) or not 0 <= moment <= LAST_MOMENT_S:
        raise ValueError(f"expected {MOMENT_FORMS}, between 1970 and 9999")
    return moment
STEER = "codex_turn_steer_event"


@dataclass(frozen=True)
class Scope:
    since_ms: int
    until_ms: int
    client: str | None = None
    model: str | None = None

    def where(self, *event_types: str) -> tuple[str, list[object]]:
        """``WHERE …`` for rows of ``event_types`` in this scope, and its parameters.

        The model filter matches the ``model`` column (a turn's model, a thread's, the
        ``model_slug`` of skill, app and plugin events). Steers carry no model: a steer
        matches when its thread had a turn on that model in the window.
        """
        params: list[object] = [self.since_ms, self.until_ms]
        types = ", ".join(f"'{t}'" for t in event_types)
        type_clause = (f"event_type = {types}" if len(event_types) == 1
                       else f"event_type IN ({types})")
        clauses = [type_clause, "occurred_at_ms >= $1", "occurred_at_ms < $2"]
        if self.client is not None:
            params.append(self.client)
            clauses.append(f"client = ${len(params)}")
        if self.model is not None:
            params.append(self.model)
            mark = f"${len(params)}"
            if STEER in event_types:
                clauses.append(
                    f"(model = {mark} OR event_type = '{STEER}' AND thread_id IN ("
                    "SELECT thread_id FROM events WHERE event_type = 'codex_turn_event'"
                    f" AND occurred_at_ms >= $1 AND occurred_at_ms < $2 AND model = {mark}))")
            else:
                clauses.append(f"model = {mark}")
        return "WHERE " + " AND ".join(clauses), params

    def days(self, first_seen_ms: int | None) -> list[str]:
        """The UTC days a time axis spans: the whole window, or from the first event when the
        window reaches far back (``--since 0``), at most 400 days of labels."""
        start = self.since_ms
        if first_seen_ms is not None and self.until_ms - start > 400 * DAY_MS:
            start = max(start, first_seen_ms)
        first, last = start // DAY_MS, (self.until_ms - 1) // DAY_MS
        first = max(first, last - 399)
        return [day_label(day) for day in range(first, last + 1)]

    def describe(self) -> str:
        text = f"{iso_minute(self.since_ms)} to {iso_minute(self.until_ms)} UTC"
        if self.client is not None:
            text += f", client {self.client}"
        if self.model is not None:
            text += f", model {self.model}"
        return text


def day_label(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")


def iso_minute(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)
