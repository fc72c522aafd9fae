"""diff compares two analyses: pages per class, bytes per map, reachable objects, objects by address."""

from __future__ import annotations

import numpy as np

from .analyze import Analysis
from .pages import CLASSES

DIFF_FORMAT = "gctrace.diff"
DIFF_VERSION = 1


def _map_bytes(a: Analysis) -> dict:
    out = {}
    for m in a.maps:
        if m.header.impl == "swiss":
            out[m.header.hmap] = {"directory_bytes": m.directory_bytes, "tables_bytes": m.tables_bytes,
                                  "groups_bytes": m.groups_bytes, "count": m.header.count}
        else:
            out[m.header.hmap] = {"buckets_bytes": m.buckets_bytes, "oldbuckets_bytes": m.oldbuckets_bytes,
                                  "overflow_bytes": m.overflow_bytes, "count": m.header.count}
    return out


def diff(old: Analysis, new: Analysis) -> dict:
    """diff returns what changed from ``old`` to ``new`` as plain data (the ``diff --json`` report).

    Objects are matched by start address: an address present in only one dump
    appeared or disappeared (a resized object at the same address counts as changed).
    """
    ho, hn = old.heap, new.heap
    common, io, in_ = np.intersect1d(ho.obj_addr, hn.obj_addr, assume_unique=True, return_indices=True)
    gone = np.setdiff1d(ho.obj_addr, hn.obj_addr, assume_unique=True)
    came = np.setdiff1d(hn.obj_addr, ho.obj_addr, assume_unique=True)
    resized = common[ho.obj_size[io] != hn.obj_size[in_]]
    pages = {}
    for c in CLASSES + ("flagged",):
        o = old.pages.flagged if c == "flagged" else old.pages.count(c)
        n = new.pages.flagged if c == "flagged" else new.pages.count(c)
        pages[c] = {"old": o, "new": n, "delta": n - o}
    mo, mn = _map_bytes(old), _map_bytes(new)
    maps = []
    for h in sorted(set(mo) | set(mn)):
        a, b = mo.get(h), mn.get(h)
        entry = {"hmap": h, "old": a, "new": b}
        if a and b and a.keys() == b.keys():  # the same kind of map at the same address
            entry["delta"] = {k: b[k] - a[k] for k in a}
        maps.append(entry)
    ro, rn = int(old.reachable.sum()), int(new.reachable.sum())
    return {
        "format": DIFF_FORMAT, "version": DIFF_VERSION,
        "pages": pages,
        "flagged_bytes": {"old": old.pages.flagged * old.pages.page_size,
                          "new": new.pages.flagged * new.pages.page_size,
                          "delta": new.pages.flagged * new.pages.page_size
                          - old.pages.flagged * old.pages.page_size},
        "reachable": {"old": ro, "new": rn, "delta": rn - ro},
        "maps": maps,
        "objects": {"appeared": [int(x) for x in came], "disappeared": [int(x) for x in gone],
                    "resized": [int(x) for x in resized]},
    }
