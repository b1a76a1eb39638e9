"""``app_server_client``: the connection's client as every thread, turn and steer event
carries it (docs/analytics-events.md §3.1). A leaf module, so both event modules import it."""

from __future__ import annotations

import msgspec


class AppServerClient(msgspec.Struct, frozen=True):
    product_client_id: str
    client_name: str | None
    client_version: str | None
    rpc_transport: str
    experimental_api_enabled: bool | None
