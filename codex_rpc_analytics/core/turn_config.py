"""A thread's effective turn configuration, and how ``turn/start`` overrides change it.

The thread result gives the starting point; each ``turn/start`` override replaces a value
and persists for later turns of the thread, except ``serviceTierForTurn`` and
``outputSchema`` which are for that turn only (docs/analytics-events.md §5.3). Values pass
through verbatim except where the analytics keys need a mapping.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from .model_catalog import ModelCatalog
from .views import SandboxPolicy, ThreadRequestParams, ThreadResult, TurnStartParams

_SANDBOX_NAMES = {
    "readOnly": "read_only",
    "workspaceWrite": "workspace_write",
    "dangerFullAccess": "full_access",
    "externalSandbox": "external_sandbox",
}
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")
# The service tier as analytics names it: codex 0.169.0 knows "fast" (the wire's and its
# model catalog's "priority") and "flex"; any other tier runs, and is reported, as "default".
_SERVICE_TIER_NAMES = {"priority": "fast", "fast": "fast", "flex": "flex"}


class TurnConfig(msgspec.Struct, frozen=True):
    model: str | None = None
    model_provider: str | None = None
    service_tier: str | None = None
    approval_policy: Any = None
    approvals_reviewer: str | None = None
    sandbox: SandboxPolicy | None = None
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None
    personality: str | None = None
    collaboration_mode: str | None = None

    @classmethod
    def from_thread_result(
        cls, result: ThreadResult, request: ThreadRequestParams | None
    ) -> TurnConfig:
        thread = result.thread
        model, provider = result.model, result.model_provider
        if thread is not None:
            model = model if model is not None else thread.model
            provider = provider if provider is not None else thread.model_provider
        return cls(
            model=model,
            model_provider=provider,
            service_tier=result.service_tier,
            approval_policy=result.approval_policy,
            approvals_reviewer=result.approvals_reviewer,
            sandbox=result.sandbox,
            reasoning_effort=result.reasoning_effort,
            # The result does not say: only the request's own config override shows it.
            reasoning_summary=(request.config_override("model_reasoning_summary")
                               if request is not None else None),
            personality=request.personality if request is not None else None,
            collaboration_mode=(result.collaboration_mode.mode
                                if result.collaboration_mode is not None else None),
        )

    def with_overrides(self, params: TurnStartParams) -> TurnConfig:
        """The configuration that persists after this ``turn/start``."""
        changes: dict[str, Any] = {}
        for name, value in (
            ("model", params.model),
            ("service_tier", params.service_tier),
            ("approval_policy", params.approval_policy),
            ("approvals_reviewer", params.approvals_reviewer),
            ("sandbox", params.sandbox_policy),
            ("reasoning_effort", params.effort),
            ("reasoning_summary", params.summary),
            ("personality", params.personality),
        ):
            if value is not msgspec.UNSET:
                changes[name] = value
        if params.collaboration_mode is not msgspec.UNSET:
            mode = params.collaboration_mode
            changes["collaboration_mode"] = mode.mode if mode is not None else None
            if mode is not None and mode.settings is not None:
                # A collaboration mode's settings take precedence over model and effort.
                if mode.settings.model is not None:
                    changes["model"] = mode.settings.model
                changes["reasoning_effort"] = mode.settings.reasoning_effort
        return msgspec.structs.replace(self, **changes) if changes else self

    # -- analytics renderings -----------------------------------------------------------------

    def sandbox_policy_name(self) -> str | None:
        kind = self.sandbox.type if self.sandbox is not None else None
        if kind is None:
            return None
        return _SANDBOX_NAMES.get(kind) or _CAMEL_BOUNDARY.sub("_", kind).lower()

    def sandbox_network_access(self) -> bool | None:
        if self.sandbox is None or self.sandbox.type is None:
            return None
        access = self.sandbox.network_access
        if self.sandbox.type == "dangerFullAccess":
            return True
        if self.sandbox.type == "externalSandbox":
            return bool(access == "enabled")
        return access is True

    def approval_policy_name(self) -> str | None:
        policy = self.approval_policy
        if isinstance(policy, str):
            return policy
        if isinstance(policy, dict) and len(policy) == 1:
            # {"granular": {...}}: codex's rendering is unknown; its variant name is our guess.
            return str(next(iter(policy)))
        return None

    def summary_name(self, catalog: ModelCatalog) -> str | None:
        """The override when there is one, else the model's catalog default."""
        summary = self.reasoning_summary
        if summary is None:
            return catalog.defaults(self.model).reasoning_summary
        return None if summary == "none" else summary

    @staticmethod
    def service_tier_name(tier: str | None) -> str:
        return "default" if tier is None else _SERVICE_TIER_NAMES.get(tier, "default")

    def personality_name(self) -> str | None:
        return None if self.personality in (None, "none") else self.personality

    def collaboration_mode_name(self) -> str:
        return "plan" if self.collaboration_mode == "plan" else "default"
