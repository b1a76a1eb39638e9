"""Recognise, from a line's bytes, the notifications the tap would only count.

Most of a codex session is server notifications the tap never reads (``item/*/delta`` alone
are ~90% of the lines). The tap classifies each line with a full envelope decode; for those it
would only add one to ``lines`` and ``notifications``. ``NotificationFilter`` spots them for a
fraction of that cost, and exactly: a line is *ignorable* only when the tap, given it, would
return no fact and change nothing but those two counters.

How it stays exact. codex writes a notification as ``{"method":"NAME",...}``; a line that
does not start with those bytes is not a candidate. A candidate is decoded for ``id`` and
``method`` only, with the same parser, types and duplicate-key rule as the tap's envelope
(everything else is skipped, which checks the JSON as the envelope's raw members do: about
half the cost of the envelope decode, and none of its objects): it is ignorable when that
succeeds, ``id`` is absent and the method is not one the tap reads. So a truncated line, an
``"id"`` written with escapes, a second ``"method"`` member or an escaped method name all go
to the tap as before. (Comparing the method's bytes before decoding costs more than it saves:
nearly every candidate is a delta that has to be decoded anyway.)

The set of methods comes from the tap itself (``Tap.notification_methods``, the keys of its
handler table): a method the tap learns to read is never skipped. The property test in
tests/core/test_prefilter.py replays generated and recorded sessions with and without the
filter and requires the same events and the same stats.

``without_bulk`` is byte tests alone, for a relay under a flood (adapters/session.py): no
decode, so a line it takes out may be one the tap would have called malformed; such lines are
counted as skipped, never analysed.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

PREFIX = b'{"method":"'
TEXT_PREFIX = PREFIX.decode()
_ID = b'"id"'
_METHOD_START = len(PREFIX)


class _Probe(msgspec.Struct, gc=False):
    """The two envelope members that decide a notification: same types as ``Envelope``'s
    ``method``; ``id`` kept raw (any value at all makes the line something else)."""

    id: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    method: str | None = None


_probe = msgspec.json.Decoder(_Probe).decode


class NotificationProbe(msgspec.Struct, gc=False):
    """``_Probe`` plus ``params``, kept raw as the envelope keeps it: for a line held as text
    (replay), so that a notification the tap reads goes to it without a second decode
    (``Tap.notification``). When ``id`` is absent and ``method`` a string, the envelope decode
    of the same line would succeed with exactly this ``method`` and ``params`` (the same types,
    the same skipping of everything else, the same last-one-wins for repeated members) and no
    ``id``: a notification, and all of it the tap's handlers read."""

    id: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    method: str | None = None
    params: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_probe_notification = msgspec.json.Decoder(NotificationProbe).decode


class NotificationFilter:
    """Built from the notification methods a tap reads; see the module docstring."""

    __slots__ = ("_read_bytes", "_read_prefixes", "_read_text")

    def __init__(self, read_methods: Iterable[str]) -> None:
        methods = frozenset(read_methods)
        self._read_text = methods
        self._read_bytes = frozenset(method.encode() for method in methods)
        # {"method":"NAME" for each method read, closing quote included (a longer name that
        # starts with one of them is another method).
        self._read_prefixes = tuple(PREFIX + method + b'"' for method in sorted(self._read_bytes))

    def without_bulk(self, lines: list[bytes]) -> list[bytes]:
        """The whole lines that are not bulk, in order. Bulk: starts ``{"method":"`` and not
        with a method the tap reads (its closing quote included: a longer name is another
        method), and holds no ``"id"`` (a server request, whatever the order of its members).
        Two C-level prefix tests a line, a search on the candidates, no decode: the cost of a
        flood's bulk."""
        read = self._read_prefixes
        return [line for line in lines if not line.startswith(PREFIX) or line.startswith(read)
                or _ID in line]

    def ignorable(self, line: bytes) -> bool:
        """Exactly the lines the tap would count as a notification and otherwise ignore."""
        if not line.startswith(PREFIX):
            return False
        try:
            probe = _probe(line)
        except (ValueError, RecursionError):
            return False  # the tap counts it as malformed
        method = probe.method
        return probe.id is msgspec.UNSET and method is not None and method not in self._read_text

    @property
    def read_methods(self) -> frozenset[str]:
        return self._read_text

    @staticmethod
    def probe_text(line: str) -> NotificationProbe | None:
        """For a line held as text (a transcript's ``raw``), without encoding it: the probe of
        a candidate (``{"method":"`` first), ``None`` for any other line and for one that is
        not JSON (the tap decides those). The line is ignorable exactly when the probe has no
        ``id`` and a ``method`` the tap does not read (``read_methods``), as ``ignorable``
        says of its bytes; with no ``id`` and a method the tap reads, it is that
        notification (``NotificationProbe``)."""
        if not line.startswith(TEXT_PREFIX):
            return None
        try:
            return _probe_notification(line)
        except (ValueError, RecursionError):
            return None
