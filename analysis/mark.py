"""mark computes reachability from the roots over the heap's pointer arrays.

Why not networkx: on this project's 2-core machines, building a networkx
DiGraph of 1M objects and BFS-ing it takes 8-22 s and ~1 GB; scipy's
csgraph BFS over the same edges in CSR form takes ~0.15 s and ~125 MB, 1.3x
a plain C BFS, and gctrace's own C loop (prefetching, no graph copy) 0.02 s
(bench/scale_bench.py measures all of them). So the mark is:
resolve every pointer target to the object containing it (``Heap.find``: a
C granule index like Go's spanOf, or searchsorted over sorted addresses;
interior pointers resolve, external ones come back -1),
then BFS from the roots' objects: in C over the heap's own arrays
(``_heapgraph.c``), or, where it is not built, with scipy from one virtual
super-root with an edge to every root's object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order

from . import heapgraph
from .model import Heap


@dataclass(frozen=True)
class Marking:
    """Marking is the result of a mark: which objects are reachable, and what was not followed."""

    reachable: np.ndarray  # bool per object
    ptr_dest: np.ndarray  # int64 per pointer field: index of the target object, -1 = external
    root_dest: np.ndarray  # int64 per root: index of the target object, -1 = nil or external
    external_ptrs: int  # pointer fields whose target is outside every object
    external_roots: int  # non-nil roots whose target is outside every object
    nil_roots: int

    @property
    def reachable_count(self) -> int:
        """reachable_count is the number of reachable objects."""
        return int(self.reachable.sum())


def followed_edges(heap: Heap, ptr_dest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """followed_edges returns (src, dst): the object-to-object edges of the resolved pointer fields, sorted by src.

    ``ptr_dest`` is each field's target object (a Marking's), -1 for the external ones, which are left out.

    >>> h = tiny_heap([(0x1000, 16), (0x2000, 16)], ptrs=[(0, 0, 0x2008), (1, 8, 0x9999)])
    >>> [e.tolist() for e in followed_edges(h, resolve(h)[0])]
    [[0], [1]]
    """
    keep = ptr_dest >= 0
    return heap.ptr_src[keep], ptr_dest[keep]


def reach(n: int, src: np.ndarray, dst: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """reach returns a bool array of the nodes reachable from ``starts`` along src->dst edges.

    ``src`` must be sorted (it is: pointer fields come in object order), so the
    CSR matrix is built directly, without scipy's COO conversion and its copies.

    >>> reach(4, np.array([0, 1, 3]), np.array([1, 2, 0]), np.array([1])).tolist()
    [False, True, True, False]
    """
    seen = np.zeros(n, dtype=bool)
    starts = np.unique(starts[starts >= 0])
    if n == 0 or len(starts) == 0:
        return seen
    # Node n is a virtual super-root with an edge to every start.
    indptr = np.zeros(n + 2, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:n + 1])
    indptr[n + 1] = indptr[n] + len(starts)
    indices = np.concatenate([dst, starts]).astype(np.int32 if n < 2**31 - 1 else np.int64)
    # float64 data is what csgraph works on: any other dtype is copied to it first (0.02 s a 1M-node mark).
    data = np.ones(len(indices))
    graph = csr_matrix((data, indices, indptr), shape=(n + 1, n + 1))
    order = breadth_first_order(graph, n, directed=True, return_predecessors=False)
    seen[order[order < n]] = True
    return seen


def mark(heap: Heap) -> Marking:
    """mark finds every object reachable from a root; interior pointers count, external ones do not.

    >>> h = tiny_heap([(0x1000, 16), (0x2000, 16), (0x3000, 16)],
    ...               ptrs=[(0, 0, 0x2004)], roots=[0x1008, 0, 0x7000])
    >>> m = mark(h)
    >>> m.reachable.tolist(), m.nil_roots, m.external_roots
    ([True, True, False], 1, 1)
    """
    ptr_dest, root_dest = resolve(heap)
    targets = heap.roots.target
    return Marking(
        reachable=reach_objects(heap, ptr_dest, root_dest),
        ptr_dest=ptr_dest,
        root_dest=root_dest,
        external_ptrs=int((ptr_dest < 0).sum()),
        external_roots=int(((root_dest < 0) & (targets != 0)).sum()),
        nil_roots=int((targets == 0).sum()),
    )


def resolve(heap: Heap) -> tuple[np.ndarray, np.ndarray]:
    """resolve returns (ptr_dest, root_dest): the object each pointer field and each root points into, -1 for none.

    >>> h = tiny_heap([(0x1000, 16), (0x2000, 16)], ptrs=[(0, 0, 0x200f), (0, 8, 0x2010)], roots=[0x1008, 0])
    >>> [d.tolist() for d in resolve(h)]
    [[1, -1], [0, -1]]
    """
    return heap.find(heap.ptr_target), heap.find(heap.roots.target)


def reach_objects(heap: Heap, ptr_dest: np.ndarray, root_dest: np.ndarray) -> np.ndarray:
    """reach_objects returns a bool per object: reachable from the roots' objects along resolved pointers.

    >>> h = tiny_heap([(0x1000, 16), (0x2000, 16), (0x3000, 16)], ptrs=[(1, 0, 0x3000)])
    >>> reach_objects(h, np.array([2]), np.array([1])).tolist()
    [False, True, True]
    """
    # The C BFS walks the heap's own arrays; scipy needs a copy of the graph built first (see _heapgraph.c).
    reachable = heapgraph.reach(heap.n_objects, heap.ptr_start, ptr_dest, root_dest)
    if reachable is None:
        reachable = reach(heap.n_objects, *followed_edges(heap, ptr_dest), root_dest)
    return reachable


def retained_by(heap: Heap, marking: Marking, objs) -> list[int]:
    """retained_by returns, for each object index, the bytes that removing it would make unreachable.

    That is the definition of a retained size (remove the object, re-mark,
    sum what is lost), computed without a full re-mark: let X be everything
    reachable from the object. A member of X survives the removal exactly when
    a path from a root reaches it without the object, and such a path enters X
    through a root or an edge from a reachable object outside X (an object
    outside X cannot owe its life to the removed one). So the survivors are a
    BFS inside X from those entry points. An unreachable object retains 0.

    >>> h = tiny_heap([(0x1000, 8), (0x2000, 16), (0x3000, 32), (0x4000, 64)],
    ...               ptrs=[(0, 0, 0x2000), (0, 4, 0x4000), (1, 0, 0x3000), (3, 0, 0x3000)], roots=[0x1000])
    >>> retained_by(h, mark(h), [0, 1, 2, 3])
    [120, 16, 32, 64]
    """
    reachable = marking.reachable
    n = heap.n_objects
    src, dst = followed_edges(heap, marking.ptr_dest)
    roots = marking.root_dest[marking.root_dest >= 0]
    objs = [int(i) for i in objs]
    # X for every asked object first; then one pass over all edges keeps those into any X, and each
    # object's own work runs on those few (not one pass over every edge per object).
    reachable_from = _bfs_from(heap, marking, src, dst)
    xs = {i: reachable_from(i) for i in dict.fromkeys(objs) if reachable[i]}
    union = np.zeros(n, dtype=bool)
    for members in xs.values():
        union[members] = True
    into_any = np.flatnonzero(union[dst])
    cand_src, cand_dst = src[into_any], dst[into_any]
    out = []
    for i in objs:
        if i not in xs:
            out.append(0)
            continue
        members = xs[i]
        into = _member(members, cand_dst)
        s_in, d_in = cand_src[into], cand_dst[into]
        s_inside = _member(members, s_in)
        entry = ~s_inside & reachable[s_in]
        entries = np.concatenate([d_in[entry], roots[_member(members, roots)]])
        entries = entries[entries != i]
        # The survivors' BFS runs on X alone, renumbered 0..|X|-1 in address order, which keeps
        # the edges sorted by source (reach needs that): small, whatever the heap.
        within = s_inside & (s_in != i) & (d_in != i)
        local_src = np.searchsorted(members, s_in[within])
        local_dst = np.searchsorted(members, d_in[within])
        survivors = reach(len(members), local_src, local_dst, np.searchsorted(members, entries))
        out.append(int(heap.obj_size[members[~survivors]].sum()))
    return out


def _bfs_from(heap: Heap, marking: Marking, src: np.ndarray, dst: np.ndarray):
    """_bfs_from returns a function giving the sorted indices of the objects reachable from one object.

    The C BFS walks the heap's own arrays; without it, scipy's graph is built once for every call.
    """
    if heapgraph.available():
        return lambda i: np.flatnonzero(heapgraph.reach(heap.n_objects, heap.ptr_start, marking.ptr_dest,
                                                        np.array([i])))
    n = heap.n_objects
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    # float64 data and int32 indices are what csgraph works on: no copy per BFS.
    graph = csr_matrix((np.ones(len(dst)), dst.astype(np.int32 if n < 2**31 - 1 else np.int64), indptr),
                       shape=(n, n))
    return lambda i: np.sort(breadth_first_order(graph, i, directed=True, return_predecessors=False))


def _member(members: np.ndarray, x: np.ndarray) -> np.ndarray:
    """_member reports, for each value of x, whether it is in the sorted array members.

    >>> _member(np.array([2, 5, 9]), np.array([5, 0, 9, 10])).tolist()
    [True, False, True, False]
    """
    if len(members) == 0:
        return np.zeros(len(x), dtype=bool)
    at = np.minimum(np.searchsorted(members, x), len(members) - 1)
    return members[at] == x
