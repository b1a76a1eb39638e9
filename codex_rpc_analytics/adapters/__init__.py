"""Adapters around the core: where bytes come from (replay, stdio proxy, in-process)."""
