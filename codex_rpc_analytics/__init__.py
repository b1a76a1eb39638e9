"""codex-rpc-analytics: Codex app-server analytics from the JSON-RPC wire, in your own hands."""

__version__ = "0.1.0"
