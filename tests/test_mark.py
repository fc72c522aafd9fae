"""mark follows pointers from roots; interior pointers resolve, external ones and nil roots are counted."""

import pytest

from gctrace.analysis.mark import mark
from builders import tiny_heap


def test_interior_root_and_interior_pointer_resolve_to_their_objects():
    # GIVEN A <- root into A's middle, A -> B's middle, C unreferenced
    h = tiny_heap([(0x1000, 64), (0x2000, 64), (0x3000, 64)], ptrs=[(0, 8, 0x2020)], roots=[0x1030])
    m = mark(h)
    assert m.reachable.tolist() == [True, True, False]
    assert m.ptr_dest.tolist() == [1]


def test_external_pointers_are_counted_not_followed():
    # GIVEN A -> outside (just past B's end), A -> B; B -> C would make C reachable
    h = tiny_heap([(0x1000, 16), (0x2000, 16), (0x3000, 16)],
                  ptrs=[(0, 0, 0x2010), (0, 8, 0x2000)], roots=[0x1000, 0, 0x9000])
    m = mark(h)
    assert m.reachable.tolist() == [True, True, False]
    assert (m.external_ptrs, m.nil_roots, m.external_roots) == (1, 1, 1)


def test_an_unreachable_cycle_stays_unreachable():
    h = tiny_heap([(0x1000, 16), (0x2000, 16), (0x3000, 16)],
                  ptrs=[(1, 0, 0x3000), (2, 0, 0x2000)], roots=[0x1000])
    assert mark(h).reachable.tolist() == [True, False, False]


def test_no_roots_marks_nothing_and_empty_heap_is_fine():
    assert mark(tiny_heap([(0x1000, 16)])).reachable.tolist() == [False]
    assert mark(tiny_heap([], roots=[0x1000])).reachable.tolist() == []


def test_long_chain_is_followed_to_its_end():
    n = 10_000
    objs = [(0x1000 + 16 * i, 16) for i in range(n)]
    ptrs = [(i, 0, 0x1000 + 16 * (i + 1)) for i in range(n - 1)]
    assert mark(tiny_heap(objs, ptrs=ptrs, roots=[0x1000])).reachable.all()


@pytest.mark.parametrize("c_loops", ["1", "0"])
def test_retained_by_equals_remove_and_remark_on_random_graphs(c_loops, monkeypatch):
    import numpy as np

    monkeypatch.setenv("GCTRACE_HEAPGRAPH", c_loops)  # the C BFS, then scipy's

    from gctrace.analysis.mark import retained_by

    rng = np.random.default_rng(3)
    for _ in range(30):
        # GIVEN a random heap of 40 objects, 80 pointers (some interior), 3 roots
        n = 40
        objs = [(0x1000 * (k + 1), int(rng.integers(8, 64))) for k in range(n)]
        ptrs = [(int(s), 8 * int(j), 0x1000 * (int(t) + 1) + int(rng.integers(0, 8)))
                for j, (s, t) in enumerate(rng.integers(0, n, size=(80, 2)))]
        ptrs = [(s, o % 8, t) for s, o, t in ptrs]
        ptrs = list({(s, o): (s, o, t) for s, o, t in ptrs}.values())
        roots = [0x1000 * (int(r) + 1) for r in rng.integers(0, n, size=3)]
        h = tiny_heap(objs, ptrs=ptrs, roots=roots)
        base = mark(h).reachable
        # WHEN each object's retained size is computed
        got = retained_by(h, mark(h), range(n))
        # THEN it equals: drop the object (its fields and the roots to it), re-mark, sum what is lost
        for k in range(n):
            kept = [p for p in ptrs if p[0] != k and h.find([p[2]])[0] != k]
            r = [t for t in roots if h.find([t])[0] != k]
            after = mark(tiny_heap(objs, ptrs=kept, roots=r)).reachable
            lost = base & ~after
            assert got[k] == int(h.obj_size[lost].sum()), (k, got[k])
