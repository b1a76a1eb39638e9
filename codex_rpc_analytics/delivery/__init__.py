"""Delivery: the durable outbox and the sinks events are shipped to.

Layer contract: this package receives events already encoded by the core (compact JSON bytes,
exactly as codex sends them) and never re-encodes them; it imports nothing from the core.
"""

from .codex_auth import AuthUnavailable, ChatGptCredentials, load_chatgpt_credentials
from .codex_config import CodexConfig, load_codex_config, resolve_codex_home
from .commands import flush_command, requeue_command
from .outbox import Outbox, OutboxError, SinkCounts, resolve_state_dir
from .pipeline import Delivery
from .retry import RetryPolicy
from .settings import (
    BatchSettings,
    ConfigError,
    OutboxSettings,
    Settings,
    load_settings,
    with_configured_tokens,
)
from .sinks import (
    CodexSinkSpec,
    HttpSinkSpec,
    JsonlSinkSpec,
    SinkSpec,
    SinkSpecError,
    accepted_forms,
    parse_sink_spec,
    register_sink_scheme,
)
from .status import DeliveryStatus, FlushResult, SinkStatus

__all__ = [
    "AuthUnavailable",
    "BatchSettings",
    "ChatGptCredentials",
    "CodexConfig",
    "CodexSinkSpec",
    "ConfigError",
    "Delivery",
    "DeliveryStatus",
    "FlushResult",
    "HttpSinkSpec",
    "JsonlSinkSpec",
    "Outbox",
    "OutboxError",
    "OutboxSettings",
    "RetryPolicy",
    "Settings",
    "SinkCounts",
    "SinkSpec",
    "SinkSpecError",
    "SinkStatus",
    "accepted_forms",
    "flush_command",
    "load_chatgpt_credentials",
    "load_codex_config",
    "load_settings",
    "parse_sink_spec",
    "register_sink_scheme",
    "requeue_command",
    "resolve_codex_home",
    "resolve_state_dir",
    "with_configured_tokens",
]
