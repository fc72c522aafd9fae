"""dumps: paths and literal-dump builders shared by the tests."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
PAGE = 4096
BASE = 0xC000000000


def dump_doc(objects=(), roots=(), pages=None, maps=None, events=None, **meta):
    """dump_doc returns a version-1 dump as a dict from literal records."""
    d = {"format": "gctrace.dump", "version": 1,
         "meta": {"page_size": PAGE, "ptr_size": 8, "source": "synthetic", **meta},
         "objects": list(objects), "roots": list(roots)}
    for key, val in (("pages", pages), ("maps", maps), ("events", events)):
        if val is not None:
            d[key] = list(val)
    return d


