"""dominators computes the dominator tree of the heap and each object's retained size.

Object d dominates object v when every chain of pointers from a root to v
passes through d; v's immediate dominator is its closest strict dominator.
The roots hang off one virtual super-root (index n), so an object that two
roots reach is dominated by the super-root alone. The retained size of v is
the bytes of the objects v dominates, v included: exactly what the next GC
would free if v became unreachable (the brute-force check in
tests/test_dominators.py removes each node, re-marks and compares).

Which algorithm, and why. networkx.immediate_dominators (Cooper, Harvey and
Kennedy's iterative algorithm over Python dicts) takes ~35 s on a 1M-object
heap. Lengauer-Tarjan is near-linear but its DFS, semidominators and
path-compressed forest are all sequential pointer chasing: in pure Python
that is ~10 Python-level steps per node and edge, with no numpy to help.
This module keeps Cooper-Harvey-Kennedy ("A Simple, Fast Dominance
Algorithm", 2001) and removes most of its work:

- The traversal order comes from scipy's C BFS, not a Python DFS. (scipy's
  depth_first_order is quadratic in a node's fan-out: 120 s on a heap whose
  bucket arrays hold 200k pointers each, so BFS it is.) CHK is correct for
  any order in which a node's spanning-tree parent comes before the node:
  the parent is then always among the processed predecessors, so every
  dominator estimate lies on the parent's estimate chain and numbers
  strictly decrease up every chain, which is all ``intersect`` needs. The
  order only affects how many passes it takes to converge.
- A node with one predecessor is dominated by it: ``idom`` is that
  predecessor, set at once with numpy. In a heap nearly every object has one
  referrer (a map's values, its overflow buckets, list nodes), so the
  Python-level loop runs only over the few objects with several referrers,
  once per pass, until no estimate changes.

On the 1M-object synthetic dump of bench/render_bench.py this takes ~1 s.
Retained sizes are summed bottom-up in reverse BFS order of the dominator
tree (scipy's BFS again, then one Python pass of additions).

That is the fallback. ``heap_dominators`` runs Semi-NCA in C
(``_heapgraph.c``) when the library is built: on bench/scale_bench.py's random
heaps, where most objects have several referrers, CHK here takes 5-6 s at 1M
objects and 60-70 s at 10M. The tests check both against each other,
networkx and brute force.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order

from . import heapgraph
from .mark import followed_edges


@dataclass(frozen=True)
class Dominators:
    """Dominators is the dominator tree of a heap: ``idom`` and ``retained`` per object.

    ``idom[v]`` is v's immediate dominator, ``n`` (the virtual super-root) when
    only the roots together dominate it, and -1 when v is unreachable.
    ``retained[v]`` is the bytes v keeps alive (0 for unreachable objects).
    """

    n: int
    idom: np.ndarray  # int64 per object
    retained: np.ndarray  # int64 per object

    def top(self, k: int) -> np.ndarray:
        """top returns the indices of the ``k`` objects retaining the most bytes, largest first.

        Ties go to the lower address (index), so the answer is deterministic.
        """
        k = max(0, min(k, self.n))
        order = np.lexsort((np.arange(self.n), -self.retained))
        return order[:k]


def immediate_dominators(n: int, src: np.ndarray, dst: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """immediate_dominators returns each node's immediate dominator over src->dst edges from ``starts``.

    Nodes are 0..n-1; the starts hang off a virtual super-root numbered n,
    which is the answer for the starts themselves and for nodes that no single
    node dominates. Unreachable nodes get -1.

    >>> # 0 -> 1 -> 3, 0 -> 2 -> 3, 3 -> 4; node 5 unreachable
    >>> immediate_dominators(6, np.array([0, 0, 1, 2, 3]), np.array([1, 2, 3, 3, 4]), np.array([0])).tolist()
    [6, 0, 0, 0, 3, -1]
    >>> # two roots reach 1 separately: only the super-root dominates it
    >>> immediate_dominators(3, np.array([0, 2]), np.array([1, 1]), np.array([0, 2])).tolist()
    [3, 3, 3]
    """
    src = np.asarray(src, np.int64)
    dst = np.asarray(dst, np.int64)
    starts = np.unique(np.asarray(starts, np.int64))
    starts = starts[(starts >= 0) & (starts < n)]
    idom = np.full(n, -1, np.int64)
    if n == 0 or len(starts) == 0:
        return idom
    root = n
    rows = np.concatenate([src, np.full(len(starts), root, np.int64)])
    cols = np.concatenate([dst, starts])
    graph = csr_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n + 1, n + 1))
    order = breadth_first_order(graph, root, directed=True, return_predecessors=False)
    # Number the reachable nodes in BFS order (root = 0) and work in numbers from here on.
    num = np.full(n + 1, -1, np.int64)
    num[order] = np.arange(len(order))
    a, b = num[rows], num[cols]
    keep = (a >= 0) & (a != b)  # edges out of unreachable nodes and self loops change nothing
    a, b = a[keep], b[keep]
    pairs = np.sort(b * len(order) + a)  # predecessor lists, sorted, without duplicate edges
    pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])] if len(pairs) else pairs
    b, a = pairs // len(order), pairs % len(order)
    m = len(order)
    indeg = np.bincount(b, minlength=m)
    pstart = np.concatenate([[0], np.cumsum(indeg)])
    dom = np.full(m, -1, np.int64)
    dom[0] = 0
    single = indeg == 1
    dom[single] = a[pstart[:-1][single]]  # one referrer: it is the immediate dominator
    multi = np.flatnonzero(indeg > 1)
    if len(multi):
        dom = _iterate(dom, multi, pstart, a)
    dom[0] = -1
    idom[order[1:]] = np.where(dom[1:] == 0, root, order[np.maximum(dom[1:], 0)])
    return idom


def _iterate(dom: np.ndarray, multi: np.ndarray, pstart: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """_iterate runs Cooper-Harvey-Kennedy passes over the nodes with several predecessors.

    ``dom`` holds the estimates in BFS numbers (-1: not yet processed; the
    single-predecessor nodes are final already). A predecessor counts once it
    is processed: on the first pass, that is the nodes numbered below the
    node being processed (the BFS parent is one of them) and single-
    predecessor nodes whose whole estimate chain is processed, which holds
    for every predecessor numbered below. Later passes see every node.
    """
    d = dom.tolist()
    ps = pstart.tolist()
    pr = preds.tolist()
    todo = multi.tolist()

    def intersect(x: int, y: int) -> int:
        while x != y:
            while x > y:
                x = d[x]
            while y > x:
                y = d[y]
        return x

    first = True
    changed = True
    while changed:
        changed = False
        for v in todo:
            new = -1
            for k in range(ps[v], ps[v + 1]):
                p = pr[k]
                if first and p > v:  # not processed yet on the first pass
                    continue
                if d[p] == -1:
                    continue
                new = p if new == -1 else intersect(p, new)
            if new != d[v]:
                d[v] = new
                changed = True
        first = False
    return np.array(d, np.int64)


def retained_sizes(idom: np.ndarray, size: np.ndarray) -> np.ndarray:
    """retained_sizes sums ``size`` over every node's dominator subtree (0 for unreachable nodes).

    ``idom`` is what immediate_dominators returns: len(idom) is the virtual
    super-root, -1 an unreachable node.

    >>> retained_sizes(np.array([4, 0, 0, -1]), np.array([10, 20, 30, 40])).tolist()
    [60, 20, 30, 0]
    """
    n = len(idom)
    idom = np.asarray(idom, np.int64)
    reach = idom >= 0
    out = np.where(reach, np.asarray(size, np.int64), 0)
    if not reach.any():
        return out
    # The dominator tree's own BFS order puts every parent before its children;
    # summing in reverse order then adds each subtree into its parent once.
    kids = np.flatnonzero(reach)
    tree = csr_matrix((np.ones(len(kids), np.int8), (idom[kids], kids)), shape=(n + 1, n + 1))
    order = breadth_first_order(tree, n, directed=True, return_predecessors=False)[1:]
    parent = idom[order].tolist()
    total = out.tolist()
    for v, p in zip(reversed(order.tolist()), reversed(parent)):
        if p < n:
            total[p] += total[v]
    return np.array(total, np.int64)


def dominators(n: int, src: np.ndarray, dst: np.ndarray, starts: np.ndarray, size: np.ndarray) -> Dominators:
    """dominators computes the dominator tree and retained sizes of n nodes of the given sizes.

    >>> d = dominators(4, np.array([0, 1, 0]), np.array([1, 2, 3]), np.array([0]), np.array([1, 2, 4, 8]))
    >>> d.retained.tolist(), d.top(2).tolist()
    ([15, 6, 4, 8], [0, 3])
    """
    idom = immediate_dominators(n, src, dst, starts)
    return Dominators(n, idom, retained_sizes(idom, size))


def heap_dominators(heap, marking) -> Dominators:
    """heap_dominators computes the dominator tree of a marked heap (the marking's resolved edges and roots).

    >>> from gctrace.analysis.mark import mark
    >>> h = tiny_heap([(0x1000, 16), (0x2000, 32), (0x3000, 64)], ptrs=[(0, 0, 0x2008), (1, 0, 0x3000)],
    ...               roots=[0x1004])
    >>> heap_dominators(h, mark(h)).retained.tolist()
    [112, 96, 64]
    """
    fast = heapgraph.dominators(heap.n_objects, heap.ptr_start, marking.ptr_dest, marking.root_dest, heap.obj_size)
    if fast is not None:
        return Dominators(heap.n_objects, *fast)
    return dominators(heap.n_objects, *followed_edges(heap, marking.ptr_dest), marking.root_dest, heap.obj_size)
