"""builders make small in-memory heaps from literals, for the tests and the package's docstring examples.

They skip the loader and its validation on purpose: the data is known-good,
written by hand. They live here, not in the package, because no command
needs them; tests/test_doctests.py hands them to every docstring example as
globals, so an example reads ``h = tiny_heap([(0x1000, 16)])`` with no import.
"""

from dataclasses import replace

import numpy as np

from gctrace.analysis.model import EVENT_OPS, ROOT_KINDS, Events, Heap, Roots, empty_events


def tiny_heap(objects, ptrs=(), roots=(), page_size=4096) -> Heap:
    """tiny_heap builds a Heap from literals, for the tests and the package's docstring examples.

    ``objects`` is ``[(addr, size)]`` or ``[(addr, size, kind)]`` sorted by
    address, ``ptrs`` is ``[(src_index, offset, target)]``, ``roots`` is a list
    of targets. No validation: the loader validates, this is for known-good data.
    """
    objects = [tuple(o) + ("other",) * (3 - len(o)) for o in objects]
    kinds = tuple(sorted({o[2] for o in objects}))
    n = len(objects)
    ptrs = sorted(ptrs)
    counts = np.bincount([p[0] for p in ptrs], minlength=n) if ptrs else np.zeros(n, np.int64)
    z = np.zeros(n + 1, np.int64)
    return Heap(
        path="<literal>", page_size=page_size, ptr_size=8, meta={"page_size": page_size},
        obj_addr=np.array([o[0] for o in objects], np.int64),
        obj_size=np.array([o[1] for o in objects], np.int64),
        obj_kind=np.array([kinds.index(o[2]) for o in objects], np.int16),
        kinds=kinds,
        ptr_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        ptr_off=np.array([p[1] for p in ptrs], np.int64),
        ptr_target=np.array([p[2] for p in ptrs], np.int64),
        slot_start=z, slot_count=np.zeros(0, np.int8), has_slots=np.zeros(n, bool),
        roots=Roots(tuple(f"r{i}" for i in range(len(roots))),
                    np.full(len(roots), ROOT_KINDS.index("global"), np.int8),
                    np.array(roots, np.int64)),
        pages=None, maps=(), events=empty_events(),
    )


def with_events(heap: Heap, events, root_kinds=None, root_names=None) -> Heap:
    """with_events returns ``heap`` with a literal event log (seq 1, 2, ...), for the tests and the docstring examples.

    Each event is an op name (``"gc_start"``) or a tuple: ``("write", obj, off,
    old, new)``, ``("write", 0, 0, old, new, root_name)``, ``("alloc", addr,
    size)`` or ``("free", addr)``. ``root_kinds`` and ``root_names`` replace the
    roots' kinds and names (tiny_heap's are global and r0, r1, ...).
    """
    rows = [(e,) if isinstance(e, str) else tuple(e) for e in events]
    strings: dict[str, int] = {}
    cols = {k: [] for k in ("op", "a", "b", "old", "new", "text")}
    for r in rows:
        op, args = r[0], list(r[1:])
        a = b = old = new = 0
        text = -1
        if op == "write":
            a, b, old, new = args[:4]
            if len(args) > 4:
                text = strings.setdefault(args[4], len(strings))
        elif op in ("alloc", "free"):
            a = args[0]
            b = args[1] if len(args) > 1 else 0
        for k, v in zip(cols, (EVENT_OPS.index(op), a, b, old, new, text)):
            cols[k].append(v)
    n = len(rows)
    events = Events(seq=np.arange(1, n + 1, dtype=np.int64), op=np.array(cols["op"], np.int8),
                    a=np.array(cols["a"], np.int64), b=np.array(cols["b"], np.int64),
                    old=np.array(cols["old"], np.int64), new=np.array(cols["new"], np.int64),
                    text=np.array(cols["text"], np.int32), same_size=np.zeros(n, bool),
                    strings=tuple(sorted(strings, key=strings.get)))
    roots = heap.roots
    if root_kinds is not None:
        roots = Roots(roots.name, np.array([ROOT_KINDS.index(k) for k in root_kinds], np.int8), roots.target)
    if root_names is not None:
        roots = Roots(tuple(root_names), roots.kind, roots.target)
    return replace(heap, events=events, roots=roots)
