"""The per-version model catalog table (core/model_catalog.py)."""

from __future__ import annotations

from codex_rpc_analytics.core.model_catalog import CATALOGS, catalog_for


def test_a_known_version_gets_its_own_table() -> None:
    catalog, own = catalog_for("0.169.0")
    assert own and catalog is CATALOGS["0.169.0"]


def test_other_versions_fall_back_to_the_nearest_older_table() -> None:
    newer, own = catalog_for("0.170.2")
    assert not own and newer.version == "0.169.0"
    older, own = catalog_for("0.100.0")  # nothing older: the oldest table
    assert not own and older.version == min(CATALOGS)
    unknown, own = catalog_for("not-a-version")
    assert not own and unknown.version in CATALOGS


def test_unknown_models_get_the_fallback_entry() -> None:
    catalog = CATALOGS["0.169.0"]
    assert catalog.defaults("gpt-6.1-sol").multi_agent_version == "v2"
    assert catalog.defaults("gpt-6.1-sol").reasoning_summary is None
    fallback = catalog.defaults("some-model-codex-does-not-know")
    assert (fallback.reasoning_summary, fallback.multi_agent_version) == ("auto", "v1")
    assert catalog.defaults(None) == fallback
