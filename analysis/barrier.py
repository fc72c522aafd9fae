"""barrier replays a concurrent mark over the event log and finds lost and floating objects.

A concurrent marker races the mutator. The tricolour argument says the mark
is safe as long as no black object ends up pointing at a white object that
nothing grey still reaches; a write barrier is what keeps that true.
Dijkstra's barrier shades the pointer being stored (incremental update),
Yuasa's the pointer being overwritten (snapshot at the beginning), Go's
hybrid both. Stores into stacks and registers are never barriered (it would
cost every local assignment), and stacks are not rescanned, so a pointer
moved from the heap into a stack slips past Dijkstra's barrier: that is the
object Go's hybrid barrier exists to save.

The replay follows docs/dump-format.md, "Write-barrier replay", with the
readings written down in docs/barrier-replay.md:

- the heap at event t is the dump with every write after t undone (restore
  ``old``, by field address or by root name) and every object allocated
  after t removed. So the graph at the last ``gc_start``, and the graph "as
  it stands at mark_done", are both this rule;
- at ``gc_start`` every root's object is shaded grey; after every event from
  ``gc_start`` up to ``mark_done`` (the event's effect first, its barrier
  included), the marker scans ``mark_rate`` grey objects, oldest shade first;
- at ``mark_done`` the marker drains what is still grey (mark termination,
  world stopped), then: lost = reachable and white, floating = black and
  unreachable.

Objects never move and a ``free`` after ``gc_start`` is refused, so every
address resolves once, up front, against the dump's sorted objects (a
searchsorted, as in mark); an object allocated after ``gc_start`` simply is
not there before its ``alloc``. The per-event loop is inherently sequential;
it runs over plain Python lists of precomputed integers (field ids, target
object indices, what to shade), about 1 s per million events; everything
else is numpy (bench/barrier_bench.py measures it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gctrace.errors import DumpError

from .mark import reach
from .model import EVENT_OPS, ROOT_KINDS, Heap

MODES = ("none", "dijkstra", "yuasa", "hybrid")
UNBARRIERED = ("stack", "register")  # root kinds whose stores are never barriered

_WRITE, _ALLOC, _FREE = EVENT_OPS.index("write"), EVENT_OPS.index("alloc"), EVENT_OPS.index("free")
_GC_START, _MARK_DONE = EVENT_OPS.index("gc_start"), EVENT_OPS.index("mark_done")
_WHITE, _GREY, _BLACK, _ABSENT = 0, 1, 2, 3


@dataclass(frozen=True)
class Hide:
    """Hide is one event that helped hide a lost object from the marker.

    ``action`` is ``stored`` (a pointer to the object was stored and not
    shaded), ``overwritten`` (a pointer to it was overwritten and not shaded)
    or ``via`` (no event touched it: it is reachable only through the lost
    object ``obj``, field ``off``). A store into a root has ``root`` and
    ``root_kind`` and ``obj`` 0. ``scanned`` says whether the object written
    into was already black at that event (scanned, or allocated black).
    """

    seq: int | None
    action: str
    obj: int = 0
    off: int = 0
    root: str | None = None
    root_kind: str | None = None
    scanned: bool = False
    allocated_black: bool = False


@dataclass(frozen=True)
class Replay:
    """Replay is the outcome of one barrier mode's replay of the last mark.

    ``gc_start`` is None when the log has no ``gc_start`` (nothing replayed);
    ``mark_done`` is None when the log ends mid-mark (the mark is then taken
    to terminate after the last event). ``step_seq``/``grey``/``black``/
    ``white`` are the colour counts after each event from ``gc_start`` to
    ``mark_done`` (white counts the objects that exist at that event).
    ``hides`` tells the story of the first ``max_stories`` lost objects (by
    address). ``unexplained_writes`` counts writes after ``gc_start`` whose ``old`` is
    not the value the field held (the log missed a store), and
    ``events_in_mark`` the events strictly between gc_start and mark_done.
    """

    mode: str
    mark_rate: int
    gc_start: int | None = None
    mark_done: int | None = None
    lost: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    floating: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    lost_bytes: int = 0
    floating_bytes: int = 0
    step_seq: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    grey: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    black: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    white: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    hides: dict = field(default_factory=dict)  # lost address -> tuple[Hide, ...]
    unexplained_writes: int = 0
    events_in_mark: int = 0

    @property
    def replayed(self) -> bool:
        """replayed reports whether the log had a mark to replay (a gc_start)."""
        return self.gc_start is not None


def replay(heap: Heap, mode: str = "hybrid", mark_rate: int = 1, max_hides: int = 8,
           max_stories: int = 1000) -> Replay:
    """replay re-runs the last concurrent mark of the log under ``mode`` and returns what it lost and kept.

    A stack takes C (unbarriered), then the heap's last pointer to C is
    overwritten before the marker reaches it: Dijkstra loses C, Yuasa keeps it.

    >>> # the dump: global g -> A -> B -> P, stack s -> C; at gc_start s was nil and P -> C
    >>> h = with_events(tiny_heap([(0x1000, 16), (0x2000, 16), (0x3000, 16), (0x4000, 16)],
    ...                           ptrs=[(0, 0, 0x2000), (1, 0, 0x3000)], roots=[0x1000, 0x4000]),
    ...                 ["gc_start", ("write", 0, 0, 0, 0x4000, "r1"), ("write", 0x3000, 0, 0x4000, 0),
    ...                  "mark_done"], root_kinds=["global", "stack"])
    >>> [replay(h, m, mark_rate=1).lost.tolist() for m in MODES]
    [[16384], [16384], [], []]
    """
    if mode not in MODES:
        raise ValueError(f"unknown barrier mode {mode!r}: one of {', '.join(MODES)}")
    if mark_rate < 1:
        raise ValueError(f"mark_rate must be >= 1, got {mark_rate}")
    window = _last_mark(heap)
    if window is None:
        return Replay(mode, mark_rate)
    g, m = window
    ev = heap.events
    n_ev = len(ev.op)
    born = _births(heap, g)  # event index of each object's alloc after gc_start, -1 = before
    w = _Writes(heap, g, born)
    fdest, rdest = _fields_at_start(heap, w)
    in_mark = (w.idx > g) & (w.idx < m)
    plan = _plan(heap, w, born, g, m, mode, in_mark)
    color, fd, grey_l, black_l, scan_at = _mark_loop(born, w.fstart, fdest, rdest, plan, mark_rate)
    fdest, src, keep, lost_i, float_i = _outcome(heap, w, in_mark, color, fd, rdest)
    step_seq, grey, black, white = _timeline(heap, born, g, m, plan[0], grey_l, black_l)
    hides = _hides(heap, w, in_mark, lost_i, np.array(scan_at, np.int64) + g, born, src, fdest, keep,
                   max_hides, max_stories)
    return Replay(
        mode=mode, mark_rate=mark_rate, gc_start=int(ev.seq[g]),
        mark_done=int(ev.seq[m]) if m < n_ev else None,
        lost=heap.obj_addr[lost_i], floating=heap.obj_addr[float_i],
        lost_bytes=int(heap.obj_size[lost_i].sum()), floating_bytes=int(heap.obj_size[float_i].sum()),
        step_seq=step_seq, grey=grey, black=black, white=white, hides=hides,
        unexplained_writes=w.unexplained, events_in_mark=m - g - 1,
    )


def _last_mark(heap: Heap) -> tuple[int, int] | None:
    """_last_mark returns the event indices (gc_start, mark_done) of the log's last mark, None without one.

    mark_done's index is past the end when the log stops mid-mark. A free
    after that gc_start means the dump was taken after the sweep: the objects
    the replay needs are gone, and it refuses (a DumpError, see docs/validation.md).
    """
    ev = heap.events
    op = ev.op
    starts = np.flatnonzero(op == _GC_START)
    if len(starts) == 0:
        return None
    g = int(starts[-1])
    later = slice(g + 1, len(op))
    frees = np.flatnonzero(op[later] == _FREE)
    if len(frees):
        f = g + 1 + int(frees[0])
        raise DumpError(heap.path, f"event {ev.seq[f]}: free of {ev.a[f]:#x} after the last gc_start "
                                   f"(event {ev.seq[g]}): the dump was taken after the sweep, so the "
                                   "objects the write-barrier replay needs are gone; dump before the sweep "
                                   "(gctrace record SCENARIO --gc concurrent --at mark_done)")
    dones = np.flatnonzero(op[later] == _MARK_DONE)
    return g, (g + 1 + int(dones[0]) if len(dones) else len(op))


def _fields_at_start(heap: Heap, w: "_Writes") -> tuple[np.ndarray, np.ndarray]:
    """_fields_at_start returns each field's and each root's target object at gc_start (-1 none).

    That is the dump's value with every later write undone: the first write's old value wins.
    """
    fdest = np.full(w.n_fields, -1, np.int64)
    fdest[w.dump_fid] = heap.find(heap.ptr_target)
    heap_w = w.fid >= 0
    first = _first_per_key(w.fid[heap_w])
    fdest[w.fid[heap_w][first]] = w.old_dest[heap_w][first]
    rdest = heap.find(heap.roots.target)
    root_w = ~heap_w
    first = _first_per_key(w.root[root_w])
    rdest[w.root[root_w][first]] = w.old_dest[root_w][first]
    return fdest, rdest


def _plan(heap: Heap, w: "_Writes", born: np.ndarray, g: int, m: int, mode: str, in_mark: np.ndarray):
    """_plan returns what the loop does at each event of the mark, as arrays of m - g steps.

    (kind, shade1, shade2, field, new): kind is 0 nothing, 1 a write (shade
    the barrier's one or two objects, then set the field to ``new``), 2 an
    alloc (``new`` is the object, born black). -1 means none.
    """
    kinds = np.asarray(heap.roots.kind)
    root_w = w.fid < 0
    barriered = np.ones(len(w.idx), bool)
    rk = kinds[np.maximum(w.root, 0)] if len(kinds) else np.zeros(len(w.idx), np.int8)
    unbarriered_codes = [ROOT_KINDS.index(k) for k in UNBARRIERED]
    barriered[root_w] = ~np.isin(rk[root_w], unbarriered_codes)
    shade_new = w.new_dest if mode in ("dijkstra", "hybrid") else np.full(len(w.idx), -1, np.int64)
    shade_old = w.old_dest if mode in ("yuasa", "hybrid") else np.full(len(w.idx), -1, np.int64)
    shade_new = np.where(barriered, shade_new, -1)
    shade_old = np.where(barriered, shade_old, -1)

    span = m - g  # events from gc_start (inclusive) to mark_done (exclusive)
    kind = np.zeros(span, np.int8)
    sh1 = np.full(span, -1, np.int64)
    sh2 = np.full(span, -1, np.int64)
    fid = np.full(span, -1, np.int64)
    nd = np.full(span, -1, np.int64)
    pos = w.idx[in_mark] - g
    kind[pos] = 1
    sh1[pos], sh2[pos] = shade_old[in_mark], shade_new[in_mark]
    fid[pos], nd[pos] = w.fid[in_mark], w.new_dest[in_mark]
    new_objs = np.flatnonzero((born > g) & (born < m))
    kind[born[new_objs] - g] = 2
    nd[born[new_objs] - g] = new_objs  # an alloc's object rides in nd
    return kind, sh1, sh2, fid, nd


def _mark_loop(born: np.ndarray, fstart: np.ndarray, fdest: np.ndarray, rdest: np.ndarray, plan, mark_rate: int):
    """_mark_loop runs the mark: per step the event's effect (with barrier), then K grey objects, oldest first.

    It returns (colours, each field's target at the end, grey and black
    counts per step, the step each object was scanned at, -1 never). Plain
    lists and a bytearray: the loop is sequential, and list indexing is what
    CPython does fastest.
    """
    n = len(born)
    kind, sh1, sh2, fid, nd = plan
    span = len(kind)
    # Index n is a sentinel for "no object" (nil or external), permanently
    # _ABSENT like the objects not allocated yet, so one colour test per
    # pointer decides whether to shade.
    none_ = n
    color = bytearray(np.where(born < 0, _WHITE, _ABSENT).astype(np.uint8).tobytes() + bytes([_ABSENT]))
    fstart = fstart.tolist()
    fd = np.where(fdest >= 0, fdest, none_).tolist()
    queue: list[int] = []
    grey_l = [0] * (span + 1)
    black_l = [0] * (span + 1)
    scan_at = [-1] * n
    for r in rdest.tolist():
        if r >= 0 and not color[r]:
            color[r] = _GREY
            queue.append(r)

    head = 0
    nblack = 0
    K = mark_rate
    sh1 = np.where(sh1 >= 0, sh1, none_)
    sh2 = np.where(sh2 >= 0, sh2, none_)
    nd = np.where(nd >= 0, nd, none_)
    kind_l, sh1_l, sh2_l, fid_l, nd_l = kind.tolist(), sh1.tolist(), sh2.tolist(), fid.tolist(), nd.tolist()
    for s in range(span + 1):
        if s == span:  # mark termination: drain whatever is still grey
            K = n + 1  # each object is scanned at most once
        else:
            k = kind_l[s]
            if k == 1:
                d = sh1_l[s]
                if not color[d]:
                    color[d] = _GREY
                    queue.append(d)
                d = sh2_l[s]
                if not color[d]:
                    color[d] = _GREY
                    queue.append(d)
                f = fid_l[s]
                if f >= 0:
                    fd[f] = nd_l[s]
            elif k == 2:
                color[nd_l[s]] = _BLACK
                nblack += 1
        for _ in range(K):
            if head == len(queue):
                break
            x = queue[head]
            head += 1
            for f in range(fstart[x], fstart[x + 1]):
                d = fd[f]
                if not color[d]:
                    color[d] = _GREY
                    queue.append(d)
            color[x] = _BLACK
            scan_at[x] = s
            nblack += 1
        grey_l[s] = len(queue) - head
        black_l[s] = nblack
    return color, fd, grey_l, black_l, scan_at


def _outcome(heap: Heap, w: "_Writes", in_mark: np.ndarray, color: bytearray, fd: list, rdest: np.ndarray):
    """_outcome compares the mark with the graph as it stands at mark_done: what it lost, what floats.

    The graph is the loop's fields and the roots with the mark's writes
    applied. It returns (field targets, field owners, the fields both of whose
    ends exist, lost object indices, floating object indices).
    """
    n = heap.n_objects
    fdest = np.array(fd, np.int64)
    fdest[fdest == n] = -1
    in_mark_root = (w.fid < 0) & in_mark
    last = _last_per_key(w.root[in_mark_root])
    rdest[w.root[in_mark_root][last]] = w.new_dest[in_mark_root][last]
    colors = np.frombuffer(bytes(color), np.uint8)[:n]
    present_m = colors != _ABSENT
    src = w.field_obj
    keep = (fdest >= 0) & present_m[src]
    keep[keep] &= present_m[fdest[keep]]
    starts_m = rdest[(rdest >= 0)]
    starts_m = starts_m[present_m[starts_m]]
    reachable = reach(n, src[keep], fdest[keep], starts_m)
    marked = (colors == _GREY) | (colors == _BLACK)
    return fdest, src, keep, np.flatnonzero(reachable & ~marked), np.flatnonzero(marked & ~reachable)


def _timeline(heap: Heap, born: np.ndarray, g: int, m: int, kind: np.ndarray, grey_l: list, black_l: list):
    """_timeline returns (event seq, grey, black, white) per step of the mark, for the replay's chart."""
    ev = heap.events
    n_ev = len(ev.op)
    span = m - g
    live_l = int((born < 0).sum()) + np.cumsum(kind == 2)
    live_l = np.append(live_l, live_l[-1])
    steps = np.arange(g, g + span + 1)
    step_seq = ev.seq[np.minimum(steps, n_ev - 1)]
    grey = np.array(grey_l, np.int64)
    black = np.array(black_l, np.int64)
    white = live_l - grey - black
    if m == n_ev:  # no mark_done: the drain is folded into the last event's step
        step_seq, grey, black, white = step_seq[:-1], grey[:-1], black[:-1], white[:-1]
        if len(grey):
            grey[-1], black[-1], white[-1] = grey_l[-1], black_l[-1], live_l[-1] - grey_l[-1] - black_l[-1]
    return step_seq, grey, black, white


class _Writes:
    """_Writes resolves every write after gc_start: its field or root, and its old/new target objects."""

    def __init__(self, heap: Heap, g: int, born: np.ndarray):
        ev = heap.events
        self.idx = idx = g + 1 + np.flatnonzero(ev.op[g + 1:] == _WRITE)
        obj, off = ev.a[idx], ev.b[idx]
        into_heap = obj != 0
        oi = heap.find(obj)
        bad = into_heap & ((oi < 0) | (heap.obj_addr[np.maximum(oi, 0)] != obj))
        if n_bad := bad.sum():
            i = idx[np.flatnonzero(bad)[0]]
            raise DumpError(heap.path, f"event {ev.seq[i]}: write into {ev.a[i]:#x}, which is not the start of "
                                       f"an object of the dump ({n_bad} such writes after the last gc_start)")
        ois = np.maximum(oi, 0)
        bad = into_heap & ((born[ois] > idx) | (off < 0) | (off >= heap.obj_size[ois]))
        if bad.any():
            j = np.flatnonzero(bad)[0]
            i = idx[j]
            why = (f"offset {off[j]} is outside its {heap.obj_size[ois[j]]} bytes" if born[ois[j]] <= i
                   else f"the object is allocated only at event {ev.seq[born[ois[j]]]}")
            raise DumpError(heap.path, f"event {ev.seq[i]}: write into {obj[j]:#x}: {why}")
        # Fields: every pointer field of the dump and every field written, by absolute address.
        dump_field = heap.ptr_field_addr()
        written = (obj + off)[into_heap]
        addrs = np.sort(np.concatenate([dump_field, written]))
        addrs = addrs[np.concatenate([[True], addrs[1:] != addrs[:-1]])[:len(addrs)]]  # np.unique, no hashing
        self.addrs = addrs
        self.n_fields = len(addrs)
        self.dump_fid = np.searchsorted(addrs, dump_field)
        self.field_obj = heap.find(addrs)
        self.fstart = np.searchsorted(self.field_obj, np.arange(heap.n_objects + 1))
        self.fid = np.full(len(idx), -1, np.int64)
        self.fid[into_heap] = np.searchsorted(addrs, written)
        # Roots, by name.
        self.root = np.full(len(idx), -1, np.int64)
        names = {}
        for r, name in enumerate(heap.roots.name):
            names.setdefault(name, []).append(r)
        for j in np.flatnonzero(~into_heap):
            name = ev.strings[ev.text[idx[j]]]
            rows = names.get(name, [])
            if len(rows) != 1:
                problem = "no root of the dump has that name" if not rows else f"{len(rows)} roots have that name"
                raise DumpError(heap.path, f"event {ev.seq[idx[j]]}: write into root {name!r}: {problem}")
            self.root[j] = rows[0]
        self.old_dest = heap.find(ev.old[idx])
        self.new_dest = heap.find(ev.new[idx])
        self.unexplained = _unexplained(heap, self, ev.old[idx], ev.new[idx])


def _births(heap: Heap, g: int) -> np.ndarray:
    """_births returns, per object, the index of its alloc event after event ``g`` (-1: allocated before)."""
    ev = heap.events
    idx = g + 1 + np.flatnonzero(ev.op[g + 1:] == _ALLOC)
    born = np.full(heap.n_objects, -1, np.int64)
    oi = heap.find(ev.a[idx])
    bad = (oi < 0) | (heap.obj_addr[np.maximum(oi, 0)] != ev.a[idx])
    if bad.any():
        i = idx[np.flatnonzero(bad)[0]]
        raise DumpError(heap.path, f"event {ev.seq[i]}: alloc of {ev.a[i]:#x} after the last gc_start, "
                                   "but no object of the dump starts there")
    uniq, first, counts = np.unique(oi, return_index=True, return_counts=True)
    if (counts > 1).any():
        o = uniq[counts > 1][0]
        raise DumpError(heap.path, f"object {heap.obj_addr[o]:#x}: allocated twice after the last gc_start "
                                   "with no free between")
    born[uniq] = idx[first]
    return born


def _first_per_key(keys: np.ndarray) -> np.ndarray:
    """_first_per_key returns the positions of each key's first occurrence.

    >>> _first_per_key(np.array([5, 3, 5, 3, 7])).tolist()
    [1, 0, 4]
    """
    return np.unique(keys, return_index=True)[1]


def _last_per_key(keys: np.ndarray) -> np.ndarray:
    """_last_per_key returns the positions of each key's last occurrence.

    >>> _last_per_key(np.array([5, 3, 5, 3, 7])).tolist()
    [3, 2, 4]
    """
    return len(keys) - 1 - np.unique(keys[::-1], return_index=True)[1]


def _unexplained(heap: Heap, w: _Writes, old: np.ndarray, new: np.ndarray) -> int:
    """_unexplained counts writes whose ``old`` differs from what the previous write (or the dump) left."""
    key = np.where(w.fid >= 0, w.fid, -1 - w.root)
    order = np.argsort(key, kind="stable")
    k, o, nw = key[order], old[order], new[order]
    same = k[1:] == k[:-1]
    bad = int((same & (o[1:] != nw[:-1])).sum())
    last = np.ones(len(k), bool)
    last[:-1] = ~same
    final = np.zeros(w.n_fields + 1, np.int64)  # one spare slot, so indexing never meets an empty array
    final[w.dump_fid] = heap.ptr_target
    root_final = np.append(heap.roots.target, 0)
    kl, nl = k[last], nw[last]
    dump_val = np.where(kl >= 0, final[np.maximum(kl, 0)], root_final[np.maximum(-1 - kl, 0)])
    return bad + int((nl != dump_val).sum())


def _hides(heap, w, in_mark, lost_i, scanned_at, born, src, fdest, keep, max_hides, max_stories) -> dict:
    """_hides finds, for the first ``max_stories`` lost objects, the events of the mark that stored or overwrote
    a pointer to them (at most ``max_hides`` each, the last ones), or a lost object they hang from."""
    out: dict[int, tuple[Hide, ...]] = {}
    if len(lost_i) == 0:
        return out
    ev = heap.events
    told = lost_i[:max_stories]
    story = np.zeros(heap.n_objects + 1, bool)  # slot n: "no object", never a story
    story[told] = True
    j_all = np.flatnonzero(in_mark)
    nd, od = w.new_dest[j_all], w.old_dest[j_all]
    kinds = heap.roots.kind
    per: dict[int, list[Hide]] = {}
    for j in j_all[story[nd] | story[od]].tolist():
        i = int(w.idx[j])
        seq = int(ev.seq[i])
        if w.root[j] >= 0:
            r = int(w.root[j])
            where = dict(root=heap.roots.name[r], root_kind=ROOT_KINDS[kinds[r]])
        else:
            o = int(w.field_obj[w.fid[j]])
            where = dict(obj=int(heap.obj_addr[o]), off=int(ev.b[i]), scanned=bool(0 <= scanned_at[o] < i),
                         allocated_black=bool(0 <= born[o] < i))
        for dest, action in ((w.new_dest[j], "stored"), (w.old_dest[j], "overwritten")):
            if story[dest]:
                per.setdefault(int(dest), []).append(Hide(seq, action, **where))
    lost = np.zeros(heap.n_objects, bool)
    lost[lost_i] = True
    s, d = src[keep], fdest[keep]
    via = lost[s] & story[d] & (s != d)
    vs, vd, vf = s[via], d[via], w.addrs[keep][via]
    for o in told.tolist():
        hs = per.get(o, [])
        if not hs:
            preds = np.flatnonzero(vd == o)
            if len(preds):
                p = preds[np.argmin(vs[preds])]
                a = int(heap.obj_addr[vs[p]])
                hs = [Hide(None, "via", obj=a, off=int(vf[p]) - a)]
        out[int(heap.obj_addr[o])] = tuple(hs[-max_hides:])
    return out
