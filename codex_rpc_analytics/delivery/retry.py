"""When to retry a delivery, and how long to wait (python-stack.md §3.3)."""

from __future__ import annotations

import email.utils
import enum
import random
import time

import msgspec


class RetryPolicy(msgspec.Struct, frozen=True):
    """Backoff and timeout settings of every sink.

    The defaults follow python-stack.md §3.3: base 0.5 s, x2, capped at 30 s, +-20 % jitter, and a
    ``Retry-After`` honoured as a minimum but itself capped so a hostile or confused collector
    cannot park delivery for hours. Tests pass tiny values to run fast.
    """

    base_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 30.0
    jitter: float = 0.2
    retry_after_cap_s: float = 60.0
    # Codex's own analytics client uses a 10 s total; connect includes waiting for a pool slot.
    timeout_total_s: float = 10.0
    timeout_connect_s: float = 3.0
    # After a 401 (or credentials that cannot be read): the events are not at fault and
    # retrying soon cannot help, so wait long; a change of the credentials retries at once.
    auth_retry_s: float = 300.0

    def delay(self, failures: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1-based)."""
        exponent = max(failures - 1, 0)
        # Cap the exponent first: 2.0 ** 2000 overflows a float.
        backoff = min(self.base_s * self.factor ** min(exponent, 64), self.cap_s)
        backoff *= random.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        backoff = min(backoff, self.cap_s)
        if retry_after_s is not None:
            backoff = max(backoff, min(retry_after_s, self.retry_after_cap_s))
        return max(backoff, 0.0)


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REJECTED = "rejected"


def classify_status(status: int) -> Verdict:
    """2xx delivered; 408, 429 and 5xx (except 501/505) retried; anything else rejected.

    501 Not Implemented and 505 HTTP Version Not Supported will not change on a retry (the
    Segment SDK makes the same exception). Redirects are not followed for a POST, so a 3xx means a
    wrong URL: rejected, visible, never retried forever.
    """
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status in (408, 429) or (500 <= status < 600 and status not in (501, 505)):
        return Verdict.RETRY
    return Verdict.REJECTED


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)
