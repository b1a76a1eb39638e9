"""codex-rpc-analytics: Codex app-server analytics from the JSON-RPC wire, in your own hands."""

from importlib.metadata import PackageNotFoundError, version

try:
    # The version lives in one place, pyproject.toml; the installed metadata carries it here.
    __version__ = version("codex-rpc-analytics")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
