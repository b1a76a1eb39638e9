"""The ``codex-rpc-analytics`` command line."""
