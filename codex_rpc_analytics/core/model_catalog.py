"""Per-model defaults of codex's built-in model catalog, per codex version.

Some turn-event keys are not on the wire but follow from the model a turn runs on: codex reads
them from the model catalog compiled into the binary (``reasoning_summary`` when no override was
given, ``multi_agent_version`` of a new thread, the default reasoning effort tool events
report). The values below were taken from the binary's observable behaviour, not from its
source: ``model/list`` (``includeHidden: true``) for the slugs, their default effort and
multi-agent version, and one turn per slug (plus unknown slugs) for what codex then posted.
``tests/realpeer`` re-runs that probe against the real binary (scenario group ``catalog``).

A model codex does not know gets the catalog's fallback entry. A codex version without a table
of its own uses the newest table that is not newer than it (or the oldest), counted by the
reducer as ``catalog_version_fallbacks``.

Not reproduced: codex can also refresh its catalog from the backend (``GET …/models``), and a
user's ``features.multi_agent_v2`` changes the version of models whose catalog entry has none;
neither shows on the wire.
"""

from __future__ import annotations

import re

import msgspec

from .images import HIGH_DETAIL, ORIGINAL_DETAIL, ImageBudget


class ModelDefaults(msgspec.Struct, frozen=True):
    reasoning_summary: str | None  # the analytics value without an override (None for "none")
    multi_agent_version: str  # of a thread started on this model
    reasoning_effort: str | None  # codex's default effort for the model
    image_budget: ImageBudget  # how images are prepared for the model (images.py)


class ModelCatalog(msgspec.Struct, frozen=True):
    version: str
    models: dict[str, ModelDefaults]
    fallback: ModelDefaults

    def defaults(self, model: str | None) -> ModelDefaults:
        if model is None:
            return self.fallback
        return self.models.get(model, self.fallback)


def _entry(effort: str, multi_agent: str) -> ModelDefaults:
    # Every 0.169.0 catalog model has default_reasoning_summary "none": no summary reported.
    # ... and takes images at original detail.
    return ModelDefaults(reasoning_summary=None, multi_agent_version=multi_agent,
                         reasoning_effort=effort, image_budget=ORIGINAL_DETAIL)


CATALOGS: dict[str, ModelCatalog] = {
    "0.169.0": ModelCatalog(
        version="0.169.0",
        models={
            "gpt-6.1-sol": _entry("low", "v2"),
            "gpt-6-astra": _entry("low", "v2"),
            "gpt-6-sol": _entry("medium", "v2"),
            "gpt-6-luna": _entry("medium", "v2"),
            "gpt-5.6-sol": _entry("low", "v2"),
            "gpt-6.1-terra": _entry("low", "v2"),
            "gpt-5.6-terra": _entry("medium", "v2"),
            "gpt-5.6-luna": _entry("medium", "v1"),
            "gpt-daybreak-blue-latest": _entry("low", "v2"),
            "gpt-daybreak-red-latest": _entry("medium", "v2"),
            # No multi-agent version in its catalog entry: codex's feature default applies.
            "gpt-5.5": _entry("medium", "v1"),
            "codex-auto-review": _entry("medium", "v1"),
        },
        fallback=ModelDefaults(reasoning_summary="auto", multi_agent_version="v1",
                               reasoning_effort=None, image_budget=HIGH_DETAIL),
    ),
}

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def _key(version: str) -> tuple[int, int, int] | None:
    match = _VERSION.match(version)
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch)


_ORDERED = sorted(CATALOGS.values(), key=lambda catalog: _key(catalog.version) or (0, 0, 0))


def catalog_for(codex_version: str | None) -> tuple[ModelCatalog, bool]:
    """The catalog of a codex version, and whether it is that version's own."""
    if codex_version is not None and codex_version in CATALOGS:
        return CATALOGS[codex_version], True
    wanted = _key(codex_version) if codex_version is not None else None
    if wanted is None:
        return _ORDERED[-1], False
    older = [c for c in _ORDERED if (_key(c.version) or (0, 0, 0)) <= wanted]
    return (older[-1] if older else _ORDERED[0]), False
