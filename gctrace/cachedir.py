"""cachedir says where gctrace keeps its caches: one root, a part of it per cache.

``$GCTRACE_CACHE_DIR``, else ``$XDG_CACHE_HOME/gctrace``, else
``~/.cache/gctrace``; ``GCTRACE_CACHE=0`` turns every cache off. The root
is the user's: gctrace never deletes in it. The analyzer's heap cache
(analysis/heapcache.py) keeps its entries in ``gctrace-heapcache-v1/``, the
importer's DWARF index (tracer/goheap/dwarfcache.py) in ``dwarf-v1/``; each touches
only what it made.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path


def cache_root() -> Path | None:
    """cache_root returns gctrace's cache directory, or None when caching is off (GCTRACE_CACHE=0)."""
    if os.environ.get("GCTRACE_CACHE", "1") == "0":
        return None
    if os.environ.get("GCTRACE_CACHE_DIR"):
        return Path(os.environ["GCTRACE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gctrace"


@cache
def sources_digest(directory: Path, names: tuple) -> str:
    """sources_digest hashes the named source files of ``directory`` (a missing one as empty), once per process.

    A cache puts it in its key, so that a gctrace whose code for that cache
    changed never reads what an older one wrote.
    """
    h = hashlib.sha256()
    for name in names:
        p = Path(directory) / name
        h.update(name.encode() + b"\0" + (p.read_bytes() if p.exists() else b"") + b"\0")
    return h.hexdigest()
