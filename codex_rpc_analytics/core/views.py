"""Typed views of the few messages analytics reads, decoded only when needed.

Every field is optional with a default and unknown members are skipped without building
objects (msgspec's "avoid decoding unused fields"), so a multi-MB ``thread/resume`` result
costs one pass over its bytes. codex marks some of these members required but has changed
them between versions, so the views stay lenient (docs/python-stack.md §2.2). Values that
analytics passes through verbatim (approval policy, ``source``, ``codexErrorInfo``) are kept
as plain JSON values, never normalised.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

JsonValue = Any  # a decoded JSON value passed through verbatim

T = TypeVar("T")


class View(msgspec.Struct, rename="camel", frozen=True):
    """Base of all views: camelCase on the wire, snake_case in Python."""


# --- initialize -----------------------------------------------------------------------------


class ClientInfo(View, frozen=True):
    name: str | None = None
    title: str | None = None
    version: str | None = None


class Capabilities(View, frozen=True):
    experimental_api: bool = False


class InitializeParams(View, frozen=True):
    client_info: ClientInfo | None = None
    # Absent and null both mean "no capabilities" (experimental_api_enabled: null), a
    # present object without experimentalApi means false: UNSET keeps the three apart.
    capabilities: Capabilities | msgspec.UnsetType | None = msgspec.UNSET


class InitializeResult(View, frozen=True):
    user_agent: str | None = None
    platform_os: str | None = None
    platform_family: str | None = None


# --- threads --------------------------------------------------------------------------------


class ThreadView(View, frozen=True):
    id: str | None = None
    session_id: str | None = None
    forked_from_id: str | None = None
    parent_thread_id: str | None = None
    preview: str | None = None
    ephemeral: bool = False
    model_provider: str | None = None
    model: str | None = None
    reasoning_effort: str | None = None
    created_at: int | None = None
    source: JsonValue = None
    thread_source: str | None = None
    originator: str | None = None
    # Only emptiness matters (is_first_turn); the raw slice avoids building the history.
    turns: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET

    def has_history(self) -> bool:
        """Whether the thread had turns when announced (docs/analytics-events.md §5.6):
        ``preview`` covers resumes with ``excludeTurns``, which return ``turns: []``."""
        turns = bytes(self.turns).strip() if self.turns is not msgspec.UNSET else b"[]"
        return turns not in (b"[]", b"null") or bool(self.preview)


class SandboxPolicy(View, frozen=True):
    type: str | None = None
    network_access: JsonValue = None


class CollaborationSettings(msgspec.Struct, frozen=True):
    """``collaborationMode.settings`` (snake_case on the wire). A missing effort is ``None``,
    as codex reads it."""

    model: str | None = None
    reasoning_effort: str | None = None


class CollaborationMode(View, frozen=True):
    mode: str | None = None
    settings: CollaborationSettings | None = None


class ThreadResult(View, frozen=True):
    """The result of ``thread/start``, ``thread/resume`` and ``thread/fork``."""

    thread: ThreadView | None = None
    model: str | None = None
    model_provider: str | None = None
    service_tier: str | None = None
    approval_policy: JsonValue = None
    approvals_reviewer: str | None = None
    sandbox: SandboxPolicy | None = None
    reasoning_effort: str | None = None
    collaboration_mode: CollaborationMode | None = None


class ThreadRequestParams(View, frozen=True):
    """The request members the result does not echo back."""

    thread_id: str | None = None
    personality: str | None = None
    config: JsonValue = None  # config.toml-style overrides; see config_override()

    def config_override(self, key: str) -> str | None:
        """A string-valued override of the request's ``config`` member, if any."""
        value = self.config.get(key) if isinstance(self.config, dict) else None
        return value if isinstance(value, str) else None


class ThreadNotification(View, frozen=True):
    """``thread/started``."""

    thread: ThreadView | None = None


class ThreadArchiveNotification(View, frozen=True):
    """``thread/archived`` and ``thread/unarchived``."""

    thread_id: str | None = None


# --- turns ----------------------------------------------------------------------------------


class TurnErrorView(View, frozen=True):
    message: str | None = None
    codex_error_info: JsonValue = None


class TurnView(View, frozen=True):
    id: str | None = None
    root_turn_id: str | None = None
    status: str | None = None
    error: TurnErrorView | None = None
    started_at: int | None = None
    completed_at: int | None = None
    duration_ms: int | None = None


class TurnNotification(View, frozen=True):
    """``turn/started`` and ``turn/completed``."""

    thread_id: str | None = None
    turn: TurnView | None = None


class UserInputView(View, frozen=True):
    type: str | None = None
    url: str | None = None  # image inputs; a data: URL carries the image itself


class TurnStartParams(View, frozen=True):
    """``turn/start`` params. Overrides are UNSET when omitted (keep the thread's value) and
    ``None`` when sent as null (clear it), as codex distinguishes the two."""

    thread_id: str | None = None
    input: list[UserInputView] = []
    model: str | msgspec.UnsetType | None = msgspec.UNSET
    effort: str | msgspec.UnsetType | None = msgspec.UNSET
    summary: str | msgspec.UnsetType | None = msgspec.UNSET
    service_tier: str | msgspec.UnsetType | None = msgspec.UNSET
    service_tier_for_turn: str | msgspec.UnsetType | None = msgspec.UNSET
    approval_policy: JsonValue | msgspec.UnsetType = msgspec.UNSET
    approvals_reviewer: str | msgspec.UnsetType | None = msgspec.UNSET
    sandbox_policy: SandboxPolicy | msgspec.UnsetType | None = msgspec.UNSET
    personality: str | msgspec.UnsetType | None = msgspec.UNSET
    collaboration_mode: CollaborationMode | msgspec.UnsetType | None = msgspec.UNSET
    turn_trigger: str | None = None


class TurnStartResult(View, frozen=True):
    turn: TurnView | None = None


class TokenBreakdown(View, frozen=True):
    total_tokens: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0


class TokenUsage(View, frozen=True):
    total: TokenBreakdown | None = None
    last: TokenBreakdown | None = None


class TokenUsageNotification(View, frozen=True):
    """``thread/tokenUsage/updated``."""

    thread_id: str | None = None
    turn_id: str | None = None
    token_usage: TokenUsage | None = None


class ItemView(View, frozen=True):
    type: str | None = None
    id: str | None = None
    kind: str | None = None
    # subAgentActivity: the spawned agent (codex announces a v2 agent's thread only here)
    agent_thread_id: str | None = None
    model: str | None = None
    reasoning_effort: str | None = None
    started_at_ms: int | None = None
    completed_at_ms: int | None = None


class ItemNotification(View, frozen=True):
    """``item/completed``."""

    thread_id: str | None = None
    turn_id: str | None = None
    item: ItemView | None = None


class SteerParams(View, frozen=True):
    thread_id: str | None = None
    expected_turn_id: str | None = None
    input: list[UserInputView] = []


class SteerResult(View, frozen=True):
    turn_id: str | None = None


class InterruptParams(View, frozen=True):
    thread_id: str | None = None
    turn_id: str | None = None


class QueueParams(View, frozen=True):
    """``thread/queue/add``, ``/delete`` and ``/start``: prompts queued for later turns."""

    thread_id: str | None = None
    input: list[UserInputView] = []
    queued_submission_id: str | None = None


class QueuedSubmission(View, frozen=True):
    id: str | None = None


class QueueResult(View, frozen=True):
    queued_submission: QueuedSubmission | None = None
    turn: TurnView | None = None


class ApprovalRequestParams(View, frozen=True):
    """A server's ``item/commandExecution/requestApproval`` or ``item/fileChange/…``."""

    thread_id: str | None = None
    turn_id: str | None = None
    item_id: str | None = None
    started_at_ms: int | None = None


class ApprovalAnswer(View, frozen=True):
    """The client's answer: a decision string, or an object such as
    ``{"acceptWithExecpolicyAmendment": {...}}``."""

    decision: JsonValue = None


class ThreadTaskParams(View, frozen=True):
    """``review/start`` and ``thread/compact/start``: a turn codex runs as a task of its own."""

    thread_id: str | None = None


class ErrorObject(msgspec.Struct, frozen=True):
    """A JSON-RPC error object; ``data`` kept verbatim."""

    code: int | None = None
    message: str | None = None
    data: JsonValue = None


_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def decode_view(raw: msgspec.Raw | bytes | msgspec.UnsetType, view: type[T]) -> T | None:
    """Decode a raw member into a view; ``None`` when absent or of the wrong shape."""
    if raw is msgspec.UNSET:
        return None
    decoder = _decoders.get(view)
    if decoder is None:
        decoder = _decoders[view] = msgspec.json.Decoder(view)
    try:
        result: T = decoder.decode(raw)
    except (ValueError, RecursionError):
        return None
    return result
