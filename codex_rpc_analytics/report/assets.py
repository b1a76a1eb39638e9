"""The chart library the page carries inline: Vega, Vega-Lite and vega-embed, from
``vl-convert-python``.

vl-convert ships the three libraries inside its wheel and bundles them into one script with no
network access, which is what lets a report open from disk anywhere. Bundling takes a second or
two, so the bundle is kept per process and in the user's cache directory, keyed by the
vl-convert version.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import tempfile
from pathlib import Path

VEGA_LITE_VERSION = "6.4"
# What the bundle defines for the page's own script.
_SNIPPET = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codex-rpc-analytics"


@functools.cache
def vega_bundle() -> str:
    """The script that defines ``vegaEmbed`` (and ``vega``, ``vegaLite``) on ``window``."""
    version = importlib.metadata.version("vl-convert-python")
    cached = _cache_dir() / f"vega-bundle-{version}-vl{VEGA_LITE_VERSION}.js"
    try:
        return cached.read_text(encoding="utf-8")
    except OSError:
        pass
    import vl_convert  # a large native module: loaded only when a bundle must be made

    bundle: str = vl_convert.javascript_bundle(_SNIPPET, vl_version=VEGA_LITE_VERSION)
    if "</script" in bundle.lower():
        raise RuntimeError("the Vega bundle contains '</script': it cannot be inlined")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=cached.parent,
                                         delete=False, suffix=".tmp") as tmp:
            tmp.write(bundle)
        os.replace(tmp.name, cached)
    except OSError:
        pass  # a read-only home: bundle again next time
    return bundle
