"""Which answers are retried, and how long the backoff waits."""

from __future__ import annotations

import email.utils

import pytest

from codex_rpc_analytics.delivery import RetryPolicy
from codex_rpc_analytics.delivery.retry import Verdict, classify_status, parse_retry_after


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED), (204, Verdict.DELIVERED),
        (408, Verdict.RETRY), (429, Verdict.RETRY), (500, Verdict.RETRY),
        (502, Verdict.RETRY), (503, Verdict.RETRY), (504, Verdict.RETRY), (599, Verdict.RETRY),
        (501, Verdict.REJECTED), (505, Verdict.REJECTED), (400, Verdict.REJECTED),
        (401, Verdict.REJECTED), (404, Verdict.REJECTED), (413, Verdict.REJECTED),
        (301, Verdict.REJECTED),
    ],
)
def test_classify(status: int, verdict: Verdict) -> None:
    assert classify_status(status) is verdict


def test_backoff_doubles_with_jitter_and_cap() -> None:
    policy = RetryPolicy()
    for failures, nominal in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (6, 16.0)]:
        delay = policy.delay(failures)
        assert nominal * 0.8 <= delay <= nominal * 1.2
    assert all(policy.delay(n) <= 30.0 for n in (7, 10, 100, 5000))


def test_retry_after_is_a_capped_minimum() -> None:
    policy = RetryPolicy(retry_after_cap_s=60.0)
    assert policy.delay(1, retry_after_s=12.0) == 12.0
    assert policy.delay(1, retry_after_s=100_000.0) == 60.0
    assert policy.delay(1, retry_after_s=0.0) <= 0.6


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert parse_retry_after(date, now=1_000_000.0) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(10.0, usegmt=True), now=100.0) == 0.0
