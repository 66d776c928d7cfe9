"""Which model to use: a path from a parameter or the dock (empty = the bundled one), loaded once."""
from __future__ import annotations

import threading
from pathlib import Path

from .bundle import ModelBundle
from .errors import BundleError
from .resources import BUNDLED_MODEL, check_bundled_model

_lock = threading.Lock()
_cache: dict[tuple[str, int, int], ModelBundle] = {}


def model_path(path: str | Path | None) -> Path:
    """The bundle file meant by ``path``: the bundled model when empty."""
    text = str(path or "").strip()
    if not text:
        if not BUNDLED_MODEL.is_file():
            raise BundleError(f"The bundled model is missing ({BUNDLED_MODEL}). Reinstall the plugin, "
                              "or choose a .sinr model file.")
        return BUNDLED_MODEL
    return Path(text).expanduser()


def load_model(path: str | Path | None = None) -> ModelBundle:
    """A validated ``ModelBundle``; the same file (same size and time stamp) is read only once.

    Bundles are read-only after loading, so algorithms running in parallel may share them. The
    bundled model's file must be the one its catalogue entry describes (``BundleError`` if not).
    """
    p = model_path(path)
    try:
        st = p.stat()
    except OSError:
        return ModelBundle.load(p)  # raises the bundle's own "does not exist" message
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    with _lock:
        bundle = _cache.get(key)
    if bundle is None:
        bundle = ModelBundle.load(p)
        check_bundled_model(bundle)
        with _lock:
            _cache.clear()  # keep one model in memory; switching models is rare
            _cache[key] = bundle
    return bundle
