"""analyze runs the pure analyses over a loaded heap and decides what applies.

It composes mark, page classes and the map audit into one Analysis, and
turns the numbers into findings: data that says which cause of resident
memory applies (``never_shrinks``, ``oldbuckets_pinned``, ...) with the
figures that prove it. Words are the report's job.

The Analysis also holds what the reporters and renderers derive from those
results (the object-to-object edges, each object's page span, the map
headers by address, per-map retained sizes), each computed once, on first
use: report, html, render and the CLI read them and never recompute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .mark import Marking, followed_edges, mark, retained_by
from .maps import MapAudit, Orphans, SwissAudit, audit, orphans
from .model import Heap
from .pages import PageClasses, classify, object_pages


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
    maps: list  # MapAudit or SwissAudit, by hmap
    orphans: Orphans
    map_findings: dict  # hmap -> list[Finding]
    heap_findings: list[Finding]
    notes: list[Finding] = field(default_factory=list)  # caveats about the dump itself (roots_missing)

    @property
    def reachable(self) -> np.ndarray:
        """reachable is the per-object reachability mask."""
        return self.marking.reachable

    # Derived data, computed once on first use (cached_property writes the
    # instance's __dict__, which a frozen dataclass allows).

    @cached_property
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """edges is (src, dst), the object-to-object pointer edges the mark followed (mark.followed_edges)."""
        return followed_edges(self.heap, self.marking.ptr_dest)

    @cached_property
    def object_pages(self) -> tuple[np.ndarray, np.ndarray]:
        """object_pages is each object's first page and one past its last page (pages.object_pages)."""
        return object_pages(self.heap)

    @cached_property
    def map_index(self) -> dict:
        """map_index maps an hmap (or Swiss map header) address to its index in ``maps``."""
        return {m.header.hmap: j for j, m in enumerate(self.maps)}

    def map_at(self, addr: int):
        """map_at returns the audit of the map whose header is at ``addr``, or None."""
        j = self.map_index.get(addr)
        return None if j is None else self.maps[j]

    @cached_property
    def _retained(self) -> dict:
        return {}

    def map_retained(self, maps=None) -> dict:
        """map_retained returns, per hmap address, the bytes that dropping the map would free.

        That is the hmap's retained size: its buckets, oldbuckets, overflow
        buckets and whatever only the map keeps alive (mark.retained_by, one
        bounded re-mark per map rather than a dominator tree of the whole
        heap). An unreachable map frees nothing more when dropped: 0. ``maps``
        limits the answer to some of ``maps``; each map's size is computed at
        most once per Analysis, however many reporters ask.
        """
        maps = self.maps if maps is None else maps
        todo = [m for m in maps if m.header.hmap not in self._retained]
        if todo:
            idx = self.heap.find([m.header.hmap for m in todo])
            self._retained.update(zip((m.header.hmap for m in todo), retained_by(self.heap, self.marking, idx)))
        return {m.header.hmap: self._retained[m.header.hmap] for m in maps}


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
    missing = roots_missing(heap.meta)
    notes = [Finding("roots_missing", missing)] if missing is not None else []
    return Analysis(heap, marking, pages, audits, orph, map_findings, heap_causes(heap, pages, orph), notes)


def map_causes(heap: Heap, a, orphaned) -> list[Finding]:
    """map_causes lists why one map's memory stays resident, most important first."""
    if isinstance(a, SwissAudit):
        return swiss_causes(a)
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


# A Swiss table grows at 7/8 full, to twice the slots (7/16 full) or split in
# two tables of ~7/16 each; deletes never shrink it. So a map that only grew
# is at least ~7/16 full, and one below 1/8 has lost 5/7 of its peak entries
# (or was made with a far too large hint): its capacity is "held for far
# fewer entries". Tiny maps (< 64 slots) are flagged only when empty, as the
# classic map's rule does for fewer than 8 buckets.
SWISS_SPARSE = 8  # flag when count x 8 < capacity
SWISS_TINY = 64  # slots
# Go prunes a table's tombstones only once they reach 10% of its capacity
# (table.pruneTombstones): from there on they are worth saying.
SWISS_TOMBSTONES = 10  # flag when tombstones x 10 >= capacity


def swiss_causes(a: SwissAudit) -> list[Finding]:
    """swiss_causes lists why a Swiss map's memory stays resident: capacity kept, clear, tombstones."""
    m = a.header
    if not a.reachable:
        return [Finding("unreachable_map", {"bytes": a.bytes, "impl": "swiss"})]
    out = []
    sparse = m.count * SWISS_SPARSE < a.capacity and (a.capacity >= SWISS_TINY or m.count == 0)
    if m.n_tables and sparse:
        facts = {"tables": m.n_tables, "groups_arrays": a.groups_arrays, "bytes": a.bytes,
                 "capacity": a.capacity, "count": m.count}
        if m.clear_seq:
            out.append(Finding("cleared_tables_kept", {**facts, "clear_seq": m.clear_seq}))
        else:
            out.append(Finding("tables_kept", facts))
    if a.tombstones and a.tombstones * SWISS_TOMBSTONES >= a.capacity:
        out.append(Finding("tombstones", {"count": a.tombstones, "bytes": a.tombstones * m.slot_size,
                                          "capacity": a.capacity, "growth_left": a.growth_left,
                                          "growth_room_lost": a.growth_room_lost}))
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


def go_minor(version) -> int | None:
    """go_minor returns the minor release of a Go version string, None when it names none.

    >>> go_minor("go1.26.6"), go_minor("go1.24.11 X:noswissmap"), go_minor("go1.27.3-X:mapsplitgroup")
    (26, 24, 27)
    >>> go_minor("devel +abc"), go_minor(None)
    (None, None)
    """
    found = re.match(r"go1\.(\d+)", version) if isinstance(version, str) else None
    return int(found.group(1)) if found else None


def roots_missing(meta: dict) -> dict | None:
    """roots_missing says whether the dump may lack roots the collector has: facts for the finding, or None.

    Since Go 1.24 the collector also treats runtime.AddCleanup closures and
    weak-pointer handles as roots, and a heap dump lists neither. A producer
    that knows of other missing roots says so in ``meta.roots_missing``; one
    that read every kind of root (a snapshot does) says ``[]``.

    >>> roots_missing({"go_version": "go1.24.11 X:noswissmap"})
    {'go_version': 'go1.24.11 X:noswissmap'}
    >>> roots_missing({"go_version": "go1.23.9"}) is None, roots_missing({}) is None
    (True, True)
    >>> roots_missing({"go_version": "go1.26.6", "roots_missing": []}) is None
    True
    """
    if meta.get("roots_missing") == []:
        return None
    version = meta.get("go_version")
    minor = go_minor(version)
    if "roots_missing" not in meta and (minor is None or minor < 24):
        return None
    facts = {"go_version": version if isinstance(version, str) else None}
    if "roots_missing" in meta:
        facts["roots_missing"] = meta["roots_missing"]
    return facts
