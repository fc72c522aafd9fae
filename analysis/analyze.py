"""analyze runs the pure analyses over a loaded heap and decides what applies.

It composes mark, page classes and the map audit into one Analysis, and
turns the numbers into findings: data that says which cause of resident
memory applies (``never_shrinks``, ``oldbuckets_pinned``, ...) with the
figures that prove it. Words are the report's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .mark import Marking, mark
from .maps import MapAudit, Orphans, audit, orphans
from .model import Heap
from .pages import PageClasses, classify


@dataclass(frozen=True)
class Finding:
    """Finding is one cause of memory staying resident, with its evidence."""

    code: str
    facts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Analysis:
    """Analysis is everything ``gctrace analyze`` reports about one heap."""

    heap: Heap
    marking: Marking
    pages: PageClasses
    maps: list[MapAudit]
    orphans: Orphans
    map_findings: dict  # hmap -> list[Finding]
    heap_findings: list[Finding]

    @property
    def reachable(self) -> np.ndarray:
        """reachable is the per-object reachability mask."""
        return self.marking.reachable


STEPS = ("mark", "pages", "maps")


def analyze(heap: Heap, on_step=None) -> Analysis:
    """analyze marks the heap, classifies its pages, audits its maps and finds the causes.

    ``on_step(name)``, when given, is called as each of STEPS begins (the CLI
    draws progress with it; this module does no I/O).
    """
    step = on_step or (lambda name: None)
    step("mark")
    marking = mark(heap)
    step("pages")
    pages = classify(heap, marking.reachable)
    step("maps")
    audits = audit(heap, marking.reachable)
    orph = orphans(heap, marking.reachable)
    map_findings = {a.header.hmap: map_causes(heap, a, orph.by_map.get(a.header.hmap)) for a in audits}
    return Analysis(heap, marking, pages, audits, orph, map_findings, heap_causes(heap, pages, orph))


def map_causes(heap: Heap, a: MapAudit, orphaned) -> list[Finding]:
    """map_causes lists why one map's memory stays resident, most important first."""
    m = a.header
    out = []
    if not a.reachable:
        out.append(Finding("unreachable_map", {"bytes": a.buckets_bytes + a.oldbuckets_bytes + a.overflow_bytes}))
    # While growing, entries still sit in oldbuckets: the new array's occupancy says nothing yet.
    if a.reachable and a.buckets_reachable and a.buckets_bytes and not m.growing:
        occupied = a.occupied_buckets
        mostly_empty = (occupied is not None and occupied * 2 <= a.primary_buckets
                        and (a.primary_buckets >= 8 or occupied == 0))
        if mostly_empty or (occupied is None and m.count == 0):
            out.append(Finding("never_shrinks", {
                "occupied": occupied if occupied is not None else 0, "buckets": a.primary_buckets,
                "bytes": a.buckets_bytes, "empty_bytes": a.empty_bucket_bytes, "count": m.count}))
    if m.growing:
        out.append(Finding("oldbuckets_pinned", {
            "bytes": a.oldbuckets_bytes, "evacuated": m.nevacuate, "old_buckets": a.old_primary_buckets,
            "same_size": m.same_size_grow}))
    if a.reachable and a.overflow_count and m.count * 2 <= a.overflow_count * 8:
        out.append(Finding("overflow_kept", {"count": a.overflow_count, "bytes": a.overflow_bytes,
                                             "entries": m.count}))
    if orphaned is not None:
        for code, objs in zip(("overflow_garbage", "old_arrays_garbage"), orphaned):
            if len(objs):
                named = len(heap.obj_map) and bool((heap.obj_map[objs] == m.hmap).all())
                out.append(Finding(code, {"count": len(objs), "bytes": int(heap.obj_size[objs].sum()),
                                          "by": "the dump" if named else "size"}))
    return out


def heap_causes(heap: Heap, pages: PageClasses, orph: Orphans) -> list[Finding]:
    """heap_causes lists the page-level reasons resident memory is not live."""
    ps = heap.page_size
    out = []
    madvise = heap.meta.get("madvise")
    lazy = pages.count("lazyfree")
    if lazy:
        out.append(Finding("lazyfree", {"pages": lazy, "bytes": lazy * ps, "madvise": madvise}))
    idle = pages.count("idle")
    if idle:
        out.append(Finding("idle", {"pages": idle, "bytes": idle * ps}))
    garbage = pages.count("garbage")
    if garbage:
        out.append(Finding("garbage", {"pages": garbage, "bytes": garbage * ps}))
    if len(orph.unattributed):
        out.append(Finding("orphan_buckets", {"count": len(orph.unattributed),
                                              "bytes": int(heap.obj_size[orph.unattributed].sum())}))
    untracked = pages.count("untracked")
    if untracked:
        out.append(Finding("untracked", {"pages": untracked, "bytes": untracked * ps}))
    if pages.assumed:
        out.append(Finding("residency_assumed", {}))
    return out
