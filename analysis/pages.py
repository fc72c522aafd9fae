"""pages classifies every page of the heap, as the spec defines the classes.

A page is ``live`` when a reachable object touches it; otherwise, when it is
not resident, ``nonresident``; otherwise ``garbage`` when an unreachable
object touches it, and by the allocator's state when no object does:
``untracked`` (used), ``idle`` (free) or ``lazyfree`` (released). The flagged
pages, unreachable-but-resident, are garbage + idle + lazyfree.

The work is done on intervals, never page by page: object extents become
page intervals, their unions are merged, and the address space is cut at
every boundary of a page run or a union. Each piece has one class. A dump
that declares a terabyte of released pages costs nothing more than one
that declares a page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import PAGE_STATES, Heap

CLASSES = ("live", "garbage", "idle", "lazyfree", "untracked", "nonresident")
FLAGGED = ("garbage", "idle", "lazyfree")
_LIVE, _GARBAGE, _IDLE, _LAZYFREE, _UNTRACKED, _NONRESIDENT = range(6)
_BY_STATE = {PAGE_STATES.index("used"): _UNTRACKED, PAGE_STATES.index("free"): _IDLE,
             PAGE_STATES.index("released"): _LAZYFREE}


@dataclass(frozen=True)
class PageClasses:
    """PageClasses are the heap's pages as maximal runs of one class and residency.

    ``first`` and ``n`` are page numbers and counts, in address order.
    """

    page_size: int
    first: np.ndarray  # int64
    n: np.ndarray  # int64
    cls: np.ndarray  # int8 codes into CLASSES
    resident: np.ndarray  # bool
    assumed: bool  # residency assumed: the dump has no pages

    def count(self, cls: str) -> int:
        """count returns the number of pages of class ``cls``."""
        return int(self.n[self.cls == CLASSES.index(cls)].sum())

    @property
    def total(self) -> int:
        """total is the number of pages in the heap."""
        return int(self.n.sum())

    @property
    def resident_pages(self) -> int:
        """resident_pages is the number of resident pages, whatever their class."""
        return int(self.n[self.resident].sum())

    @property
    def flagged_mask(self) -> np.ndarray:
        """flagged_mask selects the runs that are unreachable-but-resident."""
        return np.isin(self.cls, [CLASSES.index(c) for c in FLAGGED])

    @property
    def flagged(self) -> int:
        """flagged is the number of unreachable-but-resident pages."""
        return int(self.n[self.flagged_mask].sum())

    def flagged_runs(self) -> list[tuple[int, int, str]]:
        """flagged_runs returns (first page, pages, class) of each flagged run, merging only same-class neighbours."""
        sel = np.flatnonzero(self.flagged_mask)
        return [(int(self.first[i]), int(self.n[i]), CLASSES[self.cls[i]]) for i in sel]

    def run_at(self, page: int) -> int:
        """run_at returns the index of the run holding page number ``page``, or -1 when no run does."""
        k = int(np.searchsorted(self.first, page, side="right")) - 1
        return k if k >= 0 and page < self.first[k] + self.n[k] else -1

    def flagged_pages(self) -> tuple[np.ndarray, np.ndarray]:
        """flagged_pages returns (page numbers, class codes), one row per flagged page."""
        sel = np.flatnonzero(self.flagged_mask)
        n = self.n[sel]
        pages = np.repeat(self.first[sel] - np.concatenate([[0], np.cumsum(n)[:-1]]), n) + np.arange(n.sum())
        return pages, np.repeat(self.cls[sel], n)


def merge_intervals(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """merge_intervals returns the union of half-open intervals, sorted, as (starts, ends).

    Touching intervals merge too.

    >>> s, e = merge_intervals(np.array([5, 1, 2, 9]), np.array([7, 3, 4, 10]))
    >>> s.tolist(), e.tolist()
    ([1, 5, 9], [4, 7, 10])
    """
    if len(starts) == 0:
        return starts.astype(np.int64), ends.astype(np.int64)
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    brk = np.ones(len(s), dtype=bool)
    brk[1:] = s[1:] > reach[:-1]
    idx = np.flatnonzero(brk)
    return s[idx], np.maximum.reduceat(e, idx)


def _inside(starts, ends, points):
    """_inside returns, for each point, whether it lies in one of the sorted disjoint intervals."""
    if len(starts) == 0:
        return np.zeros(len(points), dtype=bool), np.full(len(points), -1)
    k = np.searchsorted(starts, points, side="right") - 1
    ok = (k >= 0) & (points < ends[np.maximum(k, 0)])
    return ok, k


def object_pages(heap: Heap) -> tuple[np.ndarray, np.ndarray]:
    """object_pages returns each object's first page and one past its last page."""
    ps = heap.page_size
    return heap.obj_addr // ps, (heap.obj_addr + heap.obj_size - 1) // ps + 1


def classify(heap: Heap, reachable: np.ndarray) -> PageClasses:
    """classify assigns every page of the heap its class.

    >>> h = tiny_heap([(0x1000, 16), (0x2ff8, 16)])   # the second straddles two pages
    >>> pc = classify(h, np.array([True, False]))
    >>> [(int(f), int(n), CLASSES[c]) for f, n, c in zip(pc.first, pc.n, pc.cls)]
    [(1, 1, 'live'), (2, 2, 'garbage')]
    """
    p0, p1 = object_pages(heap)
    live_s, live_e = merge_intervals(p0[reachable], p1[reachable])
    any_s, any_e = merge_intervals(p0, p1)
    if heap.pages is None:
        run_first, run_end = any_s, any_e
        run_res = np.ones(len(any_s), dtype=bool)
        run_state = np.full(len(any_s), PAGE_STATES.index("used"), dtype=np.int8)
    else:
        run_first, run_end = heap.pages.first, heap.pages.first + heap.pages.n
        run_res, run_state = heap.pages.resident, heap.pages.state
    cuts = np.unique(np.concatenate([run_first, run_end, live_s, live_e, any_s, any_e]))
    seg_s, seg_e = cuts[:-1], cuts[1:]
    in_run, r = _inside(run_first, run_end, seg_s)
    seg_s, seg_e, r = seg_s[in_run], seg_e[in_run], r[in_run]
    in_live, _ = _inside(live_s, live_e, seg_s)
    in_any, _ = _inside(any_s, any_e, seg_s)
    resident = run_res[r]
    by_state = np.full(len(PAGE_STATES), _UNTRACKED, dtype=np.int8)
    for state, cls in _BY_STATE.items():
        by_state[state] = cls
    cls = np.where(in_live, _LIVE,
                   np.where(~resident, _NONRESIDENT,
                            np.where(in_any, _GARBAGE, by_state[run_state[r]]))).astype(np.int8)
    # Merge neighbours that are contiguous and alike.
    if len(seg_s):
        brk = np.ones(len(seg_s), dtype=bool)
        brk[1:] = (seg_s[1:] != seg_e[:-1]) | (cls[1:] != cls[:-1]) | (resident[1:] != resident[:-1])
        idx = np.flatnonzero(brk)
        ends = np.maximum.reduceat(seg_e, idx)
        seg_s, cls, resident = seg_s[idx], cls[idx], resident[idx]
        n = ends - seg_s
    else:
        n = seg_s
    return PageClasses(heap.page_size, seg_s.astype(np.int64), n.astype(np.int64), cls, resident,
                       assumed=heap.pages is None)


def pages_off_used_runs(heap: Heap) -> tuple[int, int]:
    """pages_off_used_runs returns (pages holding objects that lie in no ``used`` run, pages holding objects).

    At one moment every page an object touches belongs to a span in use:
    such pages in a ``free`` or ``released`` run, or in no run, mean that
    the residency was read at another moment or from another process.

    >>> h = tiny_heap([(0x1000, 16), (0x2ff8, 16)])   # pages 1, 2 and 3, no runs: none are off
    >>> pages_off_used_runs(h)
    (0, 3)
    """
    s, e = merge_intervals(*object_pages(heap))
    total = int((e - s).sum())
    if heap.pages is None or total == 0:
        return 0, total
    used = heap.pages.state == PAGE_STATES.index("used")
    a, b = heap.pages.first[used], heap.pages.first[used] + heap.pages.n[used]
    covered = _pages_below(s, e, b) - _pages_below(s, e, a)  # object pages inside each used run
    return total - int(covered.sum()), total


def _pages_below(s: np.ndarray, e: np.ndarray, x: np.ndarray) -> np.ndarray:
    """_pages_below counts, for each x, the pages of the sorted disjoint intervals [s, e) below x.

    >>> _pages_below(np.array([0, 10]), np.array([5, 12]), np.array([3, 7, 11, 20])).tolist()
    [3, 5, 6, 7]
    """
    cum = np.concatenate([[0], np.cumsum(e - s)])
    k = np.searchsorted(s, x, side="right")
    over = np.where(k > 0, np.maximum(e[np.maximum(k - 1, 0)] - x, 0), 0)
    return cum[k] - over
