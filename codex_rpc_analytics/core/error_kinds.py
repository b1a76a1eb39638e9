"""Classifying errors the way the reference reports them.

``codex_error_kind`` is core's internal error category, which the wire only shows through the
coarser client-facing ``codexErrorInfo``; this is the best-effort reverse mapping of
docs/analytics-events.md §5.7. Ambiguous values (``badRequest``, ``responseStreamDisconnected``)
and unknown ones give ``None``: an unknown kind is better than a wrong one.

Steer rejection reasons come from the app-server handler's exact error messages (§7).
"""

from __future__ import annotations

from typing import Any

from .views import ErrorObject

_STRING_KINDS = {
    "contextWindowExceeded": "context_window_exceeded",
    "sessionBudgetExceeded": "session_budget_exceeded",
    "rateLimitExceeded": "rate_limit_exceeded",
    "usageLimitExceeded": "usage_limit_reached",
    "serverOverloaded": "server_overloaded",
    "cyberPolicy": "cyber_policy",
    "misalignmentPolicyViolation": "misalignment_policy_violation",
    "unauthorized": "refresh_token_failed",
    "sandboxError": "sandbox",
    "internalServerError": "internal_server_error",
}

_OBJECT_KINDS = {
    "httpConnectionFailed": "connection_failed",
    "responseStreamConnectionFailed": "response_stream_failed",
    "responseTooManyFailedAttempts": "retry_limit",
    "responseStreamDisconnected": None,  # ambiguous: several core errors project onto it
}


def codex_error_kind(info: Any) -> str | None:
    if isinstance(info, str):
        return _STRING_KINDS.get(info)
    if isinstance(info, dict) and len(info) == 1:
        (name,) = info
        return _OBJECT_KINDS.get(name)
    return None


def codex_error_http_status(info: Any) -> int | None:
    """``httpStatusCode`` inside an object-valued ``codexErrorInfo``."""
    if isinstance(info, dict) and len(info) == 1:
        (body,) = info.values()
        if isinstance(body, dict):
            status = body.get("httpStatusCode")
            if isinstance(status, int) and not isinstance(status, bool):
                return status
    return None


class NoSteerEvent(Exception):
    """The reference reports no event for this rejection (params that never decoded)."""


def steer_rejection_reason(error: ErrorObject) -> str | None:
    """The ``rejection_reason`` of a rejected ``turn/steer``; raises :class:`NoSteerEvent`
    where the reference does not report the error to analytics at all."""
    message = error.message or ""
    if message.startswith("Invalid request:") or message == "expectedTurnId must not be empty":
        raise NoSteerEvent
    data = error.data if isinstance(error.data, dict) else {}
    if error.code == -32602 and data.get("input_error_code") == "input_too_large":
        return "input_too_large"
    if message == "no active turn to steer":
        return "no_active_turn"
    if message.startswith("expected active turn id"):
        return "expected_turn_mismatch"
    if message == "input must not be empty":
        return "empty_input"
    info = data.get("codexErrorInfo")
    if isinstance(info, dict):
        not_steerable = info.get("activeTurnNotSteerable")
        if isinstance(not_steerable, dict):
            kind = not_steerable.get("turnKind")
            if kind in ("review", "compact"):
                return f"non_steerable_{kind}"
    if message == "cannot steer a review turn":
        return "non_steerable_review"
    if message == "cannot steer a compact turn":
        return "non_steerable_compact"
    return None
