"""The outbox indexes the client of every event kind: the batch's `originator` header uses it."""

from __future__ import annotations

from codex_rpc_analytics.delivery._extract import extract_fields
from tests.support import recorded_events


def test_client_of_thread_and_turn_events_comes_from_app_server_client() -> None:
    for line in recorded_events("fakeauth_full_flow"):
        assert extract_fields(line).client == "probe"


def test_client_of_flat_events_comes_from_product_client_id() -> None:
    plugin = (b'{"event_type":"codex_plugin_installed","event_params":{"plugin_id":"p@m",'
              b'"remote_plugin_id":null,"plugin_name":"p","marketplace_name":"m",'
              b'"has_skills":false,"mcp_server_count":0,"connector_ids":[],'
              b'"product_client_id":"codex_vscode"}}')
    assert extract_fields(plugin).client == "codex_vscode"
