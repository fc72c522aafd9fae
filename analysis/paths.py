"""paths answers "why is this object alive?": the shortest chains of pointers from the roots to it.

The search graph is the heap's objects (0..n-1), one node per root that
lands inside an object (n..n+R-1) and a virtual super-root (n+R) pointing at
every root node. Two roots into the same object are two nodes, so they give
two paths. One shortest path is a BFS (scipy's, in C) and a walk back along
its predecessors. For k of them, networkx's ``shortest_simple_paths`` (Yen's
algorithm) runs on a small subgraph only: the object's ancestors, cut to the
``cap`` nodes closest to both the roots and the object when there are more.

For an unreachable object there is no path: ``why`` reports what still
points at it (its referrers, all unreachable too) and the entry points of
its garbage: unreachable ancestors that nothing points at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, shortest_path

from gctrace.errors import UsageError

from .mark import Marking, followed_edges
from .model import Heap

DEFAULT_CAP = 20_000  # nodes handed to networkx for k > 1
REFERRER_LIMIT = 50


@dataclass(frozen=True)
class Hop:
    """Hop is one pointer on a path: field ``off`` of object ``src`` holds ``value``, inside ``dst``."""

    src: int  # object index
    off: int
    value: int  # the pointer's value (may be interior)
    dst: int  # object index


@dataclass(frozen=True)
class RootPath:
    """RootPath is one chain from root ``root`` (an index into heap.roots) to the object."""

    root: int
    hops: tuple[Hop, ...]

    @property
    def objects(self) -> list[int]:
        """objects lists the object indices along the path, first the root's target."""
        return [self.hops[0].src] + [h.dst for h in self.hops] if self.hops else []

    def __len__(self) -> int:
        return len(self.hops)


@dataclass(frozen=True)
class Why:
    """Why is the answer for one address: the object that contains it and how it is kept alive."""

    addr: int
    obj: int
    reachable: bool
    paths: list[RootPath] = field(default_factory=list)
    first_objects: list[int] = field(default_factory=list)  # each path's root target, in order
    referrers: list[Hop] = field(default_factory=list)  # unreachable object: fields pointing at it
    more_referrers: int = 0
    garbage_entries: list[int] = field(default_factory=list)  # unreachable ancestors nothing points at
    more_entries: int = 0


def _graph(heap: Heap, marking: Marking):
    """_graph builds the search graph (objects, root nodes, super-root) in CSR form."""
    n = heap.n_objects
    src, dst = followed_edges(heap, marking.ptr_dest)
    roots = np.flatnonzero(marking.root_dest >= 0)
    r = len(roots)
    super_root = n + r
    rows = np.concatenate([src, n + np.arange(r), np.full(r, super_root)])
    cols = np.concatenate([dst, marking.root_dest[roots], n + np.arange(r)])
    size = n + r + 1
    g = csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(size, size))
    return g, roots, super_root


def _hop(heap: Heap, marking: Marking, u: int, v: int) -> Hop:
    """_hop returns u's lowest-offset pointer field into object v."""
    lo, hi = heap.ptr_start[u], heap.ptr_start[u + 1]
    k = lo + int(np.flatnonzero(marking.ptr_dest[lo:hi] == v)[0])
    return Hop(u, int(heap.ptr_off[k]), int(heap.ptr_target[k]), v)


def _to_path(heap, marking, nodes, roots, n) -> tuple[RootPath, int]:
    """_to_path turns [super-root, root node, obj, ..., obj] into a RootPath and its first object."""
    root_node, objs = nodes[1], nodes[2:]
    hops = tuple(_hop(heap, marking, objs[i], objs[i + 1]) for i in range(len(objs) - 1))
    return RootPath(int(roots[root_node - n]), hops), int(objs[0])


def why(heap: Heap, marking: Marking, addr: int, k: int = 1, cap: int = DEFAULT_CAP) -> Why:
    """why finds up to ``k`` shortest root paths to the object containing ``addr``, shortest first.

    >>> from gctrace.analysis.mark import mark
    >>> h = tiny_heap([(0x1000, 16), (0x2000, 16), (0x3000, 16)],
    ...               ptrs=[(0, 8, 0x2004), (1, 0, 0x3000)], roots=[0x1000])
    >>> w = why(h, mark(h), 0x3008)
    >>> w.reachable, [(hop.src, hop.off, hex(hop.value), hop.dst) for hop in w.paths[0].hops]
    (True, [(0, 8, '0x2004', 1), (1, 0, '0x3000', 2)])
    """
    if k < 1:
        raise UsageError(f"-k {k}: ask for at least one path")
    (obj,) = heap.find([addr])
    if obj < 0:
        raise UsageError(f"{addr:#x} is inside no object of the dump")
    obj = int(obj)
    if not marking.reachable[obj]:
        return _unreachable(heap, marking, addr, obj)
    g, roots, sr = _graph(heap, marking)
    n = heap.n_objects
    if k == 1:
        _, pred = breadth_first_order(g, sr, directed=True, return_predecessors=True)
        nodes = [obj]
        while nodes[-1] != sr:
            nodes.append(int(pred[nodes[-1]]))
        p, first = _to_path(heap, marking, nodes[::-1], roots, n)
        return Why(addr, obj, True, [p], [first])
    found = _k_paths(g, sr, obj, k, cap)
    paths, firsts = [], []
    for nodes in found:
        p, first = _to_path(heap, marking, nodes, roots, n)
        paths.append(p)
        firsts.append(first)
    return Why(addr, obj, True, paths, firsts)


def _k_paths(g: csr_matrix, sr: int, obj: int, k: int, cap: int) -> list[list[int]]:
    """_k_paths returns up to k shortest simple paths sr -> obj, as node lists, shortest first.

    On obj's ancestors when there are at most ``cap`` of them (exact, Yen's
    algorithm via networkx). Otherwise, when the nodes on shortest paths
    alone exceed ``cap``, the first k shortest paths are walked straight off
    the shortest-path DAG (all of the best length, so they are the k
    shortest); else Yen runs on the ancestors within the largest slack over
    the best length that keeps ``cap`` nodes.
    """
    import networkx as nx

    gt = g.T.tocsr()
    anc = breadth_first_order(gt, obj, directed=True, return_predecessors=False)
    if len(anc) > cap:
        to_obj = shortest_path(gt, directed=True, unweighted=True, indices=obj)
        from_root = shortest_path(g, directed=True, unweighted=True, indices=sr)
        score = to_obj[anc] + from_root[anc]
        best = from_root[obj]
        if (score == best).sum() > cap:
            return _dag_paths(g, sr, obj, k, from_root, to_obj)
        worst = np.sort(score)[cap - 1]  # the cap-th smallest score: keep whole score levels up to it
        keep = score <= worst
        anc = anc[keep if keep.sum() <= cap else score < worst]
    anc = np.sort(anc)
    sub = g[anc][:, anc].tocoo()
    dg = nx.DiGraph()
    dg.add_nodes_from([sr, obj])
    dg.add_edges_from(zip(anc[sub.row].tolist(), anc[sub.col].tolist()))
    out = []
    for nodes in nx.shortest_simple_paths(dg, sr, obj):
        out.append(nodes)
        if len(out) == k:
            break
    return out


def _dag_paths(g, sr, obj, k, from_root, to_obj) -> list[list[int]]:
    """_dag_paths walks up to k paths of the best length, lowest node ids first, off the shortest-path DAG."""
    out = []
    stack = [(sr, [sr])]
    while stack and len(out) < k:
        u, path = stack.pop()
        if u == obj:
            out.append(path)
            continue
        nbrs = g.indices[g.indptr[u]:g.indptr[u + 1]]
        nxt = np.unique(nbrs[(from_root[nbrs] == from_root[u] + 1) & (to_obj[nbrs] == to_obj[u] - 1)])
        stack += [(int(v), path + [int(v)]) for v in nxt[::-1]]
    return out


def _unreachable(heap: Heap, marking: Marking, addr: int, obj: int) -> Why:
    """_unreachable explains an unreachable object: who points at it, where its garbage starts."""
    fields = np.flatnonzero(marking.ptr_dest == obj)
    src = heap.ptr_src[fields] if len(fields) else fields
    refs = [Hop(int(s), int(heap.ptr_off[f]), int(heap.ptr_target[f]), obj)
            for s, f in zip(src[:REFERRER_LIMIT], fields[:REFERRER_LIMIT])]
    # The garbage's entry points: ancestors with no referrer at all (a cycle with
    # no entry has none; then every ancestor is shown as part of it, up to the limit).
    n = heap.n_objects
    s_all, d_all = followed_edges(heap, marking.ptr_dest)
    gt = csr_matrix((np.ones(len(s_all), bool), (d_all, s_all)), shape=(n, n))
    anc = breadth_first_order(gt, obj, directed=True, return_predecessors=False)
    indeg = np.diff(gt.indptr)
    entries = np.sort(anc[indeg[anc] == 0])
    return Why(addr, obj, False, referrers=refs, more_referrers=max(0, len(fields) - REFERRER_LIMIT),
               garbage_entries=entries[:REFERRER_LIMIT].tolist(),
               more_entries=max(0, len(entries) - REFERRER_LIMIT))
