"""Keep secrets out of anything that is logged, stored or shown."""

from __future__ import annotations

import re
from collections.abc import Iterable

_MASK = "***"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each (non-trivial) secret in ``text``, in any letter case.

    Used on every error string that reaches a log line or the outbox's ``last_error`` column: a
    server or a library may echo a header back, lowercased or uppercased, and a credential must
    never be stored.
    """
    for secret in secrets:
        # Very short strings would mangle ordinary text and are not credentials anyway.
        if len(secret) >= 6:
            text = re.sub(re.escape(secret), _MASK, text, flags=re.IGNORECASE)
    return text


def truncate(text: str, limit: int = 300) -> str:
    """Bound error strings: a collector may answer with a whole HTML page."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
