"""barrier_bench times the write-barrier replay of a one-million-event mark.

A synthetic heap of 200,000 objects (a random graph, 4 pointer fields each,
one global and one stack root per 1,000 objects) goes through gc_start, then
1,000,000 events (writes of reachable-looking pointers into random fields,
root stores, allocations of objects that are in the dump), then mark_done.
The dump is built in memory (the loader is not what is measured) and the
replay runs once per barrier mode at mark rate 1. Target: < 10 s per mode.
The mutator here is random, not well-behaved (it may store a pointer to an
object that was already garbage), so even Yuasa can "lose" objects: the
figures are for speed, the theorems are tests/test_barrier_property.py's.

    .venv/bin/python bench/barrier_bench.py [--events N] [--objects N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gctrace.analysis.barrier import MODES, replay
from gctrace.analysis.model import EVENT_OPS, ROOT_KINDS, Events, Heap, Roots

SIZE = 32
FIELDS = 4


def build(n_objects: int, n_events: int, seed: int = 1) -> Heap:
    """build returns a heap whose event log holds one mark of n_events events."""
    rng = np.random.default_rng(seed)
    n_new = n_events // 10  # one event in ten allocates
    n_old = n_objects
    n = n_old + n_new
    addr = 0xC000000000 + SIZE * np.arange(n, dtype=np.int64)
    # Events: gc_start, then writes / root writes / allocs, then mark_done.
    kind = rng.choice(3, size=n_events, p=[0.85, 0.05, 0.10])
    kind[np.flatnonzero(kind == 2)[n_new:]] = 0
    n_alloc = int((kind == 2).sum())
    op = np.full(n_events + 2, EVENT_OPS.index("write"), np.int8)
    op[0], op[-1] = EVENT_OPS.index("gc_start"), EVENT_OPS.index("mark_done")
    body = slice(1, n_events + 1)
    op[body][kind == 2] = EVENT_OPS.index("alloc")
    a = np.zeros(n_events + 2, np.int64)
    b = np.zeros(n_events + 2, np.int64)
    old = np.zeros(n_events + 2, np.int64)
    new = np.zeros(n_events + 2, np.int64)
    text = np.full(n_events + 2, -1, np.int32)
    # Allocation k creates object n_old + k; writes only touch objects already allocated.
    alloc_pos = np.flatnonzero(kind == 2)
    a[1:-1][alloc_pos] = addr[n_old + np.arange(n_alloc)]
    b[1:-1][alloc_pos] = SIZE
    born_before = np.searchsorted(alloc_pos, np.arange(n_events))  # objects allocated before event i
    limit = n_old + born_before
    obj = (rng.random(n_events) * limit).astype(np.int64)
    tgt = (rng.random(n_events) * limit).astype(np.int64)
    tgt_addr = np.where(rng.random(n_events) < 0.2, 0, addr[tgt])
    writes = kind == 0
    a[1:-1][writes] = addr[obj[writes]]
    b[1:-1][writes] = 8 * rng.integers(0, FIELDS, n_events)[writes]
    new[1:-1][writes | (kind == 1)] = tgt_addr[writes | (kind == 1)]
    # Root writes: obj 0, a root name.
    n_roots = max(2, n_old // 1000)
    names = tuple(f"r{i}" for i in range(n_roots))
    rw = np.flatnonzero(kind == 1)
    text[1:-1][rw] = rng.integers(0, n_roots, len(rw))
    # Chain each field's old values: old = the previous value of that field (initial: dump value).
    init = np.where(rng.random((n_old, FIELDS)) < 0.7, addr[rng.integers(0, n_old, (n_old, FIELDS))], 0)
    state = {}
    for i in np.flatnonzero(kind != 2):
        e = i + 1
        key = (int(a[e]), int(b[e])) if kind[i] == 0 else ("root", int(text[e]))
        if key not in state:
            if kind[i] == 0:
                o = (key[0] - 0xC000000000) // SIZE
                state[key] = int(init[o, key[1] // 8]) if o < n_old else 0
            else:
                state[key] = 0
        old[e] = state[key]
        state[key] = int(new[e])
    final = {}
    for o in range(n_old):
        for f in range(FIELDS):
            if init[o, f]:
                final[(int(addr[o]), 8 * f)] = int(init[o, f])
    for key, v in state.items():
        if key[0] != "root":
            final[key] = v
    items = sorted((k, v) for k, v in final.items() if v)
    src = (np.array([k[0] for k, _ in items], np.int64) - 0xC000000000) // SIZE
    counts = np.bincount(src, minlength=n)
    roots_final = np.zeros(n_roots, np.int64)
    for key, v in state.items():
        if key[0] == "root":
            roots_final[key[1]] = v
    return Heap(
        path="<bench>", page_size=4096, ptr_size=8, meta={"page_size": 4096},
        obj_addr=addr, obj_size=np.full(n, SIZE, np.int64), obj_kind=np.zeros(n, np.int16), kinds=("other",),
        ptr_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        ptr_off=np.array([k[1] for k, _ in items], np.int64), ptr_target=np.array([v for _, v in items], np.int64),
        slot_start=np.zeros(n + 1, np.int64), slot_count=np.zeros(0, np.int8), has_slots=np.zeros(n, bool),
        roots=Roots(names, np.array([ROOT_KINDS.index("global" if i % 2 else "stack") for i in range(n_roots)],
                                    np.int8), roots_final),
        pages=None, maps=(),
        events=Events(seq=np.arange(1, n_events + 3, dtype=np.int64), op=op, a=a, b=b, old=old, new=new,
                      text=text, same_size=np.zeros(n_events + 2, bool), strings=names),
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--objects", type=int, default=200_000)
    args = p.parse_args()
    t = time.perf_counter()
    heap = build(args.objects, args.events)
    print(f"built {heap.n_objects} objects, {len(heap.events)} events in {time.perf_counter() - t:.1f} s")
    for mode in MODES:
        t, c = time.perf_counter(), time.process_time()
        r = replay(heap, mode)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        print(f"{mode:9s} replay {dt:6.2f} s wall, {dc:6.2f} s cpu ({len(heap.events) / dt / 1e6:.2f} M events/s)  "
              f"lost {len(r.lost)}, floating {len(r.floating)}, unexplained writes {r.unexplained_writes}"
              f"  {'OK' if dt < 10 else 'OVER the 10 s target'}")


if __name__ == "__main__":
    main()
