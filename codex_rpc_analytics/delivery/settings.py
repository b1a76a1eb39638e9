"""The tool's own config file: where events go, with which token, and the outbox's limits.

An IDE launches the proxy with fixed arguments, so everything a user or a team sets up must be
settable without flags. The file is TOML, at ``$CODEX_RPC_ANALYTICS_CONFIG`` when that is set
(then it must exist), else ``${XDG_CONFIG_HOME:-~/.config}/codex-rpc-analytics/config.toml``
(absent: every default)::

    enabled = true                 # false: no analytics at all (no outbox, no sink, no event)
    state_dir = "~/.local/state/codex-rpc-analytics"

    [batch]
    max_events = 100               # 1..200 events a request
    max_bytes = 262144             # request body bound (a single larger event goes alone)
    linger_seconds = 1.0           # how long a partial batch waits for company

    [outbox]
    retention_days = 30            # settled events older than this are deleted
    max_pending_events = 100000    # per sink; past it the oldest pending are dropped, counted

    [[sinks]]
    url = "https://collector.example.com/"
    token_file = "~/.config/codex-rpc-analytics/collector.token"   # or: token_env = "NAME"

    [[sinks]]
    url = "jsonl:~/codex-events.jsonl"

Decisions: a token is never written in the file itself (``token = …`` is refused: config files
end up in dotfile repositories), only a file holding it or the name of an environment variable;
unknown keys are errors (a typo must not silently turn a setting off); ``codex`` is not accepted
as a configured sink, because codex already posts those events itself (it stays available to
in-process hosts and to ``flush --sink codex``). Flags override the file: ``--sink`` replaces
its sink list (a ``--sink`` whose URL is configured here still gets its token), ``--state-dir``
its state directory. The state directory's precedence is flag, then
``$CODEX_RPC_ANALYTICS_STATE_DIR``, then this file, then the default.

Relative paths in the file are relative to the file's directory. Every error is one line
naming the file, the line and the key, so the user knows what to fix.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from .http_sink import CodexSinkSpec, HttpSinkSpec
from .pipeline import MAX_BATCH_EVENTS
from .sink_base import SinkSpec, SinkSpecError
from .sinks import parse_sink_spec

CONFIG_ENV = "CODEX_RPC_ANALYTICS_CONFIG"
CONFIG_DIRNAME = "codex-rpc-analytics"
CONFIG_FILENAME = "config.toml"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ConfigError(Exception):
    """The config file cannot be used; the message is one line: file, line, key, what to fix."""


class BatchSettings(msgspec.Struct, frozen=True):
    max_events: int = 100
    max_bytes: int = 256 * 1024
    linger_s: float = 1.0


class OutboxSettings(msgspec.Struct, frozen=True):
    retention_days: float = 30.0
    max_pending_events: int = 100_000


class Settings(msgspec.Struct, frozen=True):
    """What the file says, with defaults for what it does not. ``path``: the file read (None
    when there was none)."""

    path: str | None = None
    enabled: bool = True
    state_dir: Path | None = None
    sinks: tuple[SinkSpec, ...] = ()
    batch: BatchSettings = BatchSettings()
    outbox: OutboxSettings = OutboxSettings()


def default_config_path() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / CONFIG_DIRNAME / CONFIG_FILENAME


def config_path() -> tuple[Path, bool]:
    """The config file to read, and whether it was named explicitly (then it must exist)."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named).expanduser(), True
    return default_config_path(), False


def load_settings(path: Path | None = None) -> Settings:
    """Read the config file (``path``, else :func:`config_path`); raises :class:`ConfigError`."""
    explicit = path is not None
    if path is None:
        path, explicit = config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(
                f"config file {path} does not exist (named by ${CONFIG_ENV})"
            ) from None
        return Settings()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
        doc = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        line = _decode_error_line(str(exc))
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    return _Reader(path, text).settings(doc)


def with_configured_tokens(
    specs: Sequence[SinkSpec], configured: Sequence[SinkSpec]
) -> list[SinkSpec]:
    """``specs`` (from flags, or rebuilt from outbox keys), each replaced by the configured sink
    of the same key when there is one: a ``--sink URL`` gets the token the file sets for URL."""
    by_key = {spec.key: spec for spec in configured}
    return [by_key.get(spec.key, spec) for spec in specs]


def _decode_error_line(message: str) -> int | None:
    match = re.search(r"at line (\d+)", message)
    return int(match.group(1)) if match else None


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")


class _Reader:
    """Validates the decoded document; knows the text only to name lines in errors."""

    def __init__(self, path: Path, text: str) -> None:
        self._path = path
        self._lines = text.splitlines()

    def _resolve(self, value: str) -> Path:
        """A path from the file: ``~`` expanded, relative to the file's own directory (the
        proxy's working directory is whatever the IDE chose)."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self._path.parent / path

    # -- errors ---------------------------------------------------------------------------------

    def _line_of(self, table: str | None, index: int | None, key: str) -> int | None:
        """The line that sets ``key`` in ``[table]`` (the ``index``-th ``[[table]]``), or the
        table's header when ``key`` is None-like; None when the text does not show it plainly
        (inline tables, dotted keys)."""
        current: str | None = None
        arrays: dict[str, int] = {}
        position: int | None = None
        table_line: int | None = None  # the header of the table, if the key is not there
        assignment = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number, line in enumerate(self._lines, 1):
            header = _HEADER.match(line)
            if header:
                current = header.group(2).strip().strip("\"'")
                if header.group(1) == "[[":
                    arrays[current] = arrays.get(current, -1) + 1
                    position = arrays[current]
                else:
                    position = None
                if current == key and table is None:
                    return number
                if current == table and position == index and table_line is None:
                    table_line = number
                continue
            if current == table and position == index and assignment.match(line):
                return number
        return table_line

    def _fail(
        self, key: str, problem: str, *, table: str | None = None, index: int | None = None
    ) -> ConfigError:
        line = self._line_of(table, index, key)
        name = key if table is None else (
            f"{table}[{index}].{key}" if index is not None else f"{table}.{key}"
        )
        where = f"{self._path}:{line}" if line else str(self._path)
        return ConfigError(f"{where}: {name}: {problem}")

    # -- values ---------------------------------------------------------------------------------

    def _unknown(self, table: dict[str, Any], known: set[str], *, table_name: str | None = None,
                 index: int | None = None) -> None:
        for key in table:
            if key not in known:
                hint = ", ".join(sorted(known))
                raise self._fail(key, f"unknown key (known here: {hint})",
                                 table=table_name, index=index)

    def _int(self, table: dict[str, Any], key: str, default: int, low: int, high: int, *,
             table_name: str) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self._fail(key, f"must be a whole number from {low} to {high}",
                             table=table_name)
        return value

    def _number(self, table: dict[str, Any], key: str, default: float, low: float, high: float,
                *, table_name: str, above: bool = False) -> float:
        value = table.get(key, default)
        ok = not isinstance(value, bool) and isinstance(value, int | float)
        if ok:
            ok = (low < value if above else low <= value) and value <= high
        if not ok:
            bound = f"above {low:g}" if above else f"from {low:g}"
            raise self._fail(key, f"must be a number {bound} to {high:g}", table=table_name)
        return float(value)

    def _table(self, doc: dict[str, Any], key: str) -> dict[str, Any]:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            raise self._fail(key, f"must be a table ([{key}])")
        return value

    # -- the document ---------------------------------------------------------------------------

    def settings(self, doc: dict[str, Any]) -> Settings:
        self._unknown(doc, {"enabled", "state_dir", "batch", "outbox", "sinks"})
        enabled = doc.get("enabled", True)
        if not isinstance(enabled, bool):
            raise self._fail("enabled", "must be true or false")
        state_dir = doc.get("state_dir")
        if state_dir is not None and (not isinstance(state_dir, str) or not state_dir):
            raise self._fail("state_dir", "must be a directory path (a non-empty string)")
        batch = self._table(doc, "batch")
        self._unknown(batch, {"max_events", "max_bytes", "linger_seconds"}, table_name="batch")
        defaults = BatchSettings()
        batch_settings = BatchSettings(
            max_events=self._int(batch, "max_events", defaults.max_events, 1, MAX_BATCH_EVENTS,
                                 table_name="batch"),
            max_bytes=self._int(batch, "max_bytes", defaults.max_bytes, 1024, 64 << 20,
                                table_name="batch"),
            linger_s=self._number(batch, "linger_seconds", defaults.linger_s, 0, 60,
                                  table_name="batch"),
        )
        outbox = self._table(doc, "outbox")
        self._unknown(outbox, {"retention_days", "max_pending_events"}, table_name="outbox")
        outbox_defaults = OutboxSettings()
        outbox_settings = OutboxSettings(
            retention_days=self._number(outbox, "retention_days",
                                        outbox_defaults.retention_days, 0, 36500,
                                        table_name="outbox", above=True),
            max_pending_events=self._int(outbox, "max_pending_events",
                                         outbox_defaults.max_pending_events, 1, 100_000_000,
                                         table_name="outbox"),
        )
        return Settings(
            path=str(self._path),
            enabled=enabled,
            state_dir=self._resolve(state_dir) if state_dir else None,
            sinks=self._sinks(doc.get("sinks", [])),
            batch=batch_settings,
            outbox=outbox_settings,
        )

    def _sinks(self, value: Any) -> tuple[SinkSpec, ...]:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self._fail("sinks", "must be an array of tables ([[sinks]] with url = …)")
        specs: dict[str, SinkSpec] = {}
        for index, table in enumerate(value):
            spec = self._sink(table, index)
            if spec.key in specs:
                raise self._fail("url", f"{spec.key} is configured twice", table="sinks",
                                 index=index)
            specs[spec.key] = spec
        return tuple(specs.values())

    def _sink(self, table: dict[str, Any], index: int) -> SinkSpec:
        def fail(key: str, problem: str) -> ConfigError:
            return self._fail(key, problem, table="sinks", index=index)

        if "token" in table:
            raise fail("token", "a token is never written in the config file: put it in a "
                                "file (token_file = PATH, mode 0600) or name an environment "
                                "variable (token_env = NAME)")
        self._unknown(table, {"url", "token_file", "token_env"}, table_name="sinks",
                      index=index)
        url = table.get("url")
        if not isinstance(url, str) or not url:
            raise fail("url", "each [[sinks]] needs url = \"https://HOST/PATH/\" or "
                              "\"jsonl:PATH\"")
        if url.startswith("jsonl:") and url[6:] not in ("", "-"):
            url = "jsonl:" + str(self._resolve(url[6:]))
        try:
            spec = parse_sink_spec(url)
        except SinkSpecError as exc:
            raise fail("url", str(exc)) from None
        if isinstance(spec, CodexSinkSpec):
            raise fail("url", "the codex sink is not configured here: codex app-server "
                              "already posts these events to OpenAI itself (the sink is "
                              "for in-process hosts that replace codex)")
        token_file = table.get("token_file")
        token_env = table.get("token_env")
        if token_file is None and token_env is None:
            return spec
        if token_file is not None and token_env is not None:
            raise fail("token_env", "give token_file or token_env, not both")
        if not isinstance(spec, HttpSinkSpec):
            key = "token_file" if token_file is not None else "token_env"
            raise fail(key, "only an http(s) sink takes a token")
        if token_file is not None:
            if not isinstance(token_file, str) or not token_file:
                raise fail("token_file", "must be the path of a file holding the token")
            return msgspec.structs.replace(spec, token_file=str(self._resolve(token_file)))
        if not isinstance(token_env, str) or not _ENV_NAME.fullmatch(token_env):
            raise fail("token_env", "must be the name of an environment variable, such as "
                                    "COLLECTOR_TOKEN (not the token itself)")
        return msgspec.structs.replace(spec, token_env=token_env)
