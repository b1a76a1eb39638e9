"""``--sink`` values: a registry of schemes, each with a parser that returns a :class:`SinkSpec`.

Accepted forms (repeatable): ``jsonl:PATH``, ``https://HOST/PATH/``, ``http://LOOPBACK/PATH/``
and ``codex``. A new scheme is one :func:`register_sink_scheme` call with a parser returning a
``SinkSpec`` subclass whose ``open`` builds the runtime sink.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from .http_sink import CodexSinkSpec, HttpSinkSpec, parse_codex, parse_http
from .jsonl_sink import JsonlSinkSpec, parse_jsonl
from .sink_base import SinkSpec, SinkSpecError

__all__ = [
    "CodexSinkSpec",
    "HttpSinkSpec",
    "JsonlSinkSpec",
    "SinkSpec",
    "SinkSpecError",
    "accepted_forms",
    "parse_sink_spec",
    "register_sink_scheme",
]


class _Scheme(NamedTuple):
    form: str
    parse: Callable[[str], SinkSpec]


# Keyed by the text before the first ':' ("codex" has no ':', so the whole value is the key).
_SCHEMES: dict[str, _Scheme] = {}


def register_sink_scheme(scheme: str, form: str, parse: Callable[[str], SinkSpec]) -> None:
    """Make ``--sink <scheme>:...`` (or the bare word ``scheme``) parse with ``parse``.

    ``parse`` receives the whole value and raises :class:`SinkSpecError` for a bad one; ``form``
    is how the scheme is shown in the list of accepted forms.
    """
    _SCHEMES[scheme.lower()] = _Scheme(form, parse)


register_sink_scheme("jsonl", "jsonl:PATH", parse_jsonl)
register_sink_scheme("https", "https://HOST/PATH/", parse_http)
register_sink_scheme("http", "http://127.0.0.1:PORT/PATH/ (loopback only)", parse_http)
register_sink_scheme(
    "codex", "codex (codex's own chatgpt_base_url, with the ChatGPT login)", parse_codex
)


def accepted_forms() -> str:
    return ", ".join(scheme.form for scheme in _SCHEMES.values())


def parse_sink_spec(value: str) -> SinkSpec:
    """Parse one ``--sink`` value; raises :class:`SinkSpecError` with a one-line message."""
    text = value.strip()
    if text == "-":
        raise SinkSpecError(
            "--sink - is refused: stdout is the JSON-RPC protocol stream; use jsonl:PATH"
        )
    scheme = text.split(":", 1)[0].lower() if text else ""
    entry = _SCHEMES.get(scheme)
    if entry is None:
        raise SinkSpecError(f"unknown sink {value!r}; accepted forms: {accepted_forms()}")
    return entry.parse(text)
