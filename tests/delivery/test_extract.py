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


def test_the_outbox_and_the_store_read_the_same_fields_from_every_event() -> None:
    """Two decoders on purpose: the outbox's reads only what batching needs, on the proxy's
    commit path, and delivery may not import the store (tests/store/test_layers.py); they must
    never disagree on what they both read. Every recorded event, a generated week of traffic,
    and events whose keys have unexpected types (each decoder's slow path)."""
    from codex_rpc_analytics.store import COLUMN_NAMES, make_row
    from tests.support import replayed_events
    from tests.traffic import month_of_traffic

    odd = [
        b'{"event_type":"x","event_params":{"status":{"a":1},"thread_id":"t",'
        b'"app_server_client":{"product_client_id":"c"}}}',
        b'{"event_type":"x","event_params":{"turn_id":5,"product_client_id":"flat",'
        b'"initialization_mode":"new"}}',
        b'{"event_type":"x","event_params":{"app_server_client":"not-an-object",'
        b'"product_client_id":"flat"}}',
    ]
    events = [*replayed_events(), *odd,
              *(g.payload for g in month_of_traffic(3000, 1_796_200_000_000, days=7))]
    columns = [COLUMN_NAMES.index(name) for name in
               ("client", "thread_id", "turn_id", "initialization_mode", "status")]
    for payload in events:
        f = extract_fields(payload)
        row = make_row("s", "e", payload, 0)
        assert (f.client, f.thread_id, f.turn_id, f.initialization_mode, f.status) == tuple(
            row[i] for i in columns), payload[:200]
