"""Classifying errors the way codex reports them.

``codex_error_kind`` is core's internal error category, which the wire only shows through the
coarser client-facing ``codexErrorInfo`` and the error's message. Driving codex 0.169.0 through
every failure of the scenario matrix (docs/conformance.md) gave the mapping below: the info
where it names one kind, codex's own fixed message texts where one info covers several kinds.
What is still ambiguous (an ``other`` error whose message is the API's own text: an invalid
prompt, a content-policy or bio-policy refusal) gives ``None``: an unknown kind is better than
a wrong one.

Steer rejection reasons come from the app-server handler's exact error messages (§7).
"""

from __future__ import annotations

from typing import Any

import msgspec

from .views import ErrorObject

# codexErrorInfo strings that name one internal kind each.
_STRING_KINDS = {
    "contextWindowExceeded": "context_window_exceeded",
    "sessionBudgetExceeded": "session_budget_exceeded",
    "rateLimitExceeded": "rate_limit_exceeded",
    "serverOverloaded": "server_overloaded",
    "cyberPolicy": "cyber_policy",
    "misalignmentPolicyViolation": "misalignment_policy_violation",
    "unauthorized": "refresh_token_failed",
    "sandboxError": "sandbox",
    "modelNotFound": "model_not_found",
    "policyCapacityUnavailable": "policy_capacity_unavailable",
    "inferenceHookDenied": "inference_hook_denied",
    "flexUnavailable": "flex_unavailable",
}

# codexErrorInfo strings shared by several internal kinds, told apart by codex's own fixed
# messages (0.169.0); the first entry is the kind of any other message.
_BY_MESSAGE: dict[str, tuple[str | None, tuple[tuple[str, str], ...]]] = {
    "usageLimitExceeded": ("usage_limit_reached", (
        ("Quota exceeded. Check your plan and billing details.", "quota_exceeded"),
        ("To use Codex with your ChatGPT plan, upgrade to Plus", "usage_not_included"),
    )),
    "internalServerError": ("internal_server_error", (
        ("internal error; agent loop died unexpectedly", "internal_agent_died"),
        ("session configured event was not the first event", "session_configured_not_first_event"),
    )),
    "badRequest": (None, (
        ("unsupported operation: ", "unsupported_operation"),
        ("no thread with id: ", "thread_not_found"),
        ("agent thread limit reached", "agent_limit_reached"),
    )),
    # "other" is every kind without a client-facing name of its own; most carry fixed text.
    "other": (None, (
        ("stream disconnected before completion: ", "stream"),
        ("turn aborted. ", "turn_aborted"),
        ("interrupted (Ctrl-C)", "interrupted"),
        ("Image poisoning", "invalid_image_request"),
        ("timeout waiting for child process to exit", "timeout"),
        ("request timed out", "request_timeout"),
        ("spawn failed: ", "spawn"),
        ("Fatal error: ", "fatal"),
        ("codex-linux-sandbox was required but not provided",
         "landlock_sandbox_executable_not_provided"),
    )),
}

# Object-shaped codexErrorInfo: {"name": {"httpStatusCode": N}}. An unexpected HTTP status and
# a failed connection share httpConnectionFailed; only the first has a status.
_OBJECT_KINDS: dict[str, tuple[str | None, str | None]] = {
    "httpConnectionFailed": ("unexpected_status", "connection_failed"),
    "responseStreamConnectionFailed": ("response_stream_failed", "response_stream_failed"),
    "responseTooManyFailedAttempts": ("retry_limit", "retry_limit"),
    "responseStreamDisconnected": ("stream", "stream"),
}

# Kinds whose HTTP status codex reports although the wire's codexErrorInfo has none.
_IMPLIED_STATUS = {"model_not_found": 404}


class ErrorKind(msgspec.Struct, frozen=True):
    kind: str | None
    http_status_code: int | None


NO_ERROR = ErrorKind(None, None)


def turn_error_kind(info: Any, message: str | None) -> ErrorKind:
    """``codex_error_kind`` and ``codex_error_http_status_code`` of a failed turn, from the
    ``turn.error`` of its ``turn/completed`` (docs/conformance.md lists what stays unknown)."""
    if info is None:
        return NO_ERROR
    if isinstance(info, str):
        kind = _STRING_KINDS.get(info)
        if kind is None and info in _BY_MESSAGE:
            kind = _kind_by_message(info, message or "")
        return ErrorKind(kind, _IMPLIED_STATUS.get(kind or ""))
    status = codex_error_http_status(info)
    if isinstance(info, dict) and len(info) == 1:
        (name,) = info
        with_status, without_status = _OBJECT_KINDS.get(name, (None, None))
        return ErrorKind(with_status if status is not None else without_status, status)
    return ErrorKind(None, status)


def _kind_by_message(info: str, message: str) -> str | None:
    default, known = _BY_MESSAGE[info]
    for prefix, kind in known:
        if message.startswith(prefix):
            return kind
    if info == "other" and _is_json(message):
        # An HTTP 400 answer: codex reports its body verbatim as the message.
        return "invalid_request"
    # Anything else with "other" is the API's own text (invalid prompt, content policy, …).
    return default


def _is_json(text: str) -> bool:
    text = text.strip()
    if not text or text[0] not in "{[\"":
        return False
    try:
        msgspec.json.decode(text)
    except msgspec.DecodeError:
        return False
    return True


def redact_error_message(message: str) -> str:
    """A turn error's message with its content gone and its kind kept: the fixed prefix of
    one of codex's own texts, ``{}`` for an API answer (JSON), else a placeholder."""
    for _default, known in _BY_MESSAGE.values():
        for prefix, _kind in known:
            if message.startswith(prefix):
                return prefix + "[redacted]"
    return "{}" if _is_json(message) else "[redacted]"


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
