"""render draws the reachability graph of a heap through graphviz, summarised to a hard node budget.

The picture reads left to right: roots, then each map's hmap, its bucket
array and oldbuckets, its overflow chains, then the values they point at.
Green objects are reachable, red ones unreachable; a thick coloured border
marks an object on a flagged page (garbage, idle or lazyfree). Objects are
clustered by the map whose structure holds them (default) or by page run
(``cluster="page"``), the cluster coloured by the run's class.

A heap of a million objects cannot be drawn object by object, and a
networkx graph of it would cost seconds and a gigabyte before drawing
anything. So the subgraph is chosen with numpy first:

1. Every object gets a group key: (cluster, kind, reachable, class of the
   flagged page it touches). hmaps, bucket arrays, the objects roots point
   at and the focus object get a key of their own.
2. Each group is one node to start with. When there are more groups than
   the budget, the biggest (by bytes) keep their node and the rest share
   one "N more objects" node.
3. The budget left over is spread evenly (water-filling): each group shows
   up to c of its objects one by one, lowest address (or, with ``focus``,
   nearest) first, and one node for the rest ("N more value, 47 MiB").
   c is at most PER_GROUP, with a focus too: a few examples read better than
   hundreds of identical boxes (a bucket array's 296 overflow buckets).
4. Pointer edges are mapped onto the chosen nodes and counted.

``max_nodes`` bounds every node drawn (roots and placeholders included);
the legend is the graph's label, not a node. Only the chosen nodes and
their aggregated edges reach graphviz.

Every node carries an SVG ``id`` and ``class`` so tests and scripts can read
the picture back: ``obj-0x<addr>`` with class ``obj reachable|unreachable
kind-<kind> onpage-<flagged class>|onpage-ok``, ``grp-<k>`` and ``more-<k>``
for summaries, ``root-<i>`` or ``roots-<kind>`` for roots; clusters are
``map-0x<hmap>`` or ``pages-0x<addr>-<n>`` with class ``pagerun <class>``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix

from gctrace.errors import MissingToolError, UsageError

from .analyze import Analysis
from .pagemap_svg import CLASS_COLORS
from .pages import CLASSES, FLAGGED
from .report import fmt_bytes, map_brief, map_label

DEFAULT_MAX_NODES = 300
DEFAULT_DEPTH = 2
PER_GROUP = 4  # objects of one group drawn one by one; the rest become one node
REACHABLE_FILL = "#a5d6a7"
UNREACHABLE_FILL = "#ef9a9a"
ROOT_FILL = "#bbdefb"
MORE_FILL = "#eeeeee"
PAGE_FILLS = {c: CLASS_COLORS[c] + "33" for c in CLASSES}  # the page map's colours, translucent
STRUCTURE = ("hmap", "buckets", "overflow", "mapextra", "swiss_map", "swiss_directory", "swiss_table", "swiss_groups")
# Roles drawn as a node of their own (the header and the arrays it points at); the rest of a map's
# structure (overflow buckets, tables, groups arrays) is summarised by kind, as values are.
OWN_NODE = ("hmap", "buckets", "oldbuckets", "swiss_map", "directory")
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
DOT_MISSING = ("graphviz's dot program is not installed; it draws {what} "
               "(Debian/Ubuntu: apt-get install graphviz). Writing a .dot file needs no dot.")


@dataclass(frozen=True)
class RenderOptions:
    """RenderOptions says what to draw: the budget, the clustering and an optional focus."""

    max_nodes: int = DEFAULT_MAX_NODES
    cluster: str = "map"  # "map" or "page"
    focus: int | None = None  # an address; draws its neighbourhood only
    depth: int = DEFAULT_DEPTH  # pointer hops around the focus, either direction
    unreachable_only: bool = False
    title: str | None = None


@dataclass
class RenderedGraph:
    """RenderedGraph is the chosen subgraph as a graphviz Digraph, with what was summarised."""

    dot: object  # graphviz.Digraph
    node_count: int
    edge_count: int
    shown_objects: int  # objects drawn one by one
    summarised_objects: int  # objects inside group and "more" nodes
    dropped_edges: int = 0
    notes: list = field(default_factory=list)

    @property
    def source(self) -> str:
        """source is the DOT text of the graph."""
        return self.dot.source


# ---------------------------------------------------------------- selection (numpy only)

def flagged_class(a: Analysis) -> np.ndarray:
    """flagged_class returns, per object, the class code of the first flagged page it touches, -1 if none."""
    pc = a.pages
    sel = pc.flagged_mask
    f_first, f_end, f_cls = pc.first[sel], (pc.first + pc.n)[sel], pc.cls[sel].astype(np.int64)
    p0, p1 = a.object_pages
    if not len(f_first):
        return np.full(a.heap.n_objects, -1, np.int64)
    k = np.searchsorted(f_end, p0, side="right")
    ks = np.minimum(k, len(f_first) - 1)
    hit = (k < len(f_first)) & (f_first[ks] < p1)
    return np.where(hit, f_cls[ks], -1)


def map_owner(a: Analysis) -> np.ndarray:
    """map_owner returns, per object, the index of the map whose structure holds it or points at it, -1 if none.

    A map holds its hmap, bucket array, oldbuckets, the overflow buckets on its
    chains and the unreachable buckets attributed to it by size; the objects
    those point at directly (keys, values, mapextra) belong to it too.
    """
    heap = a.heap
    owner = np.full(heap.n_objects, -1, np.int64)
    for j, m in enumerate(a.maps):
        h = m.header
        orphaned = a.orphans.by_map.get(h.hmap)
        parts = [np.array(sorted(m.structure), np.int64)]
        if orphaned is not None:
            parts += [orphaned[0], orphaned[1]]
        sel = np.concatenate(parts)
        owner[sel[sel >= 0]] = j
    struct = np.isin(heap.obj_kind, [heap.kind_code(k) for k in STRUCTURE if heap.kind_code(k) >= 0])
    src, dest = a.edges
    take = (owner[src] >= 0) & struct[src] & (owner[dest] < 0)
    # Lowest-indexed owner wins when two maps point at one object: assign in reverse order.
    order = np.flatnonzero(take)[::-1]
    owner[dest[order]] = owner[src[order]]
    return owner


def neighbourhood(a: Analysis, obj: int, depth: int) -> np.ndarray:
    """neighbourhood returns each object's distance in pointer hops (either direction) from ``obj``, -1 beyond ``depth``."""
    n = a.heap.n_objects
    src, dst = a.edges
    g = csr_matrix((np.ones(2 * len(src), bool), (np.concatenate([src, dst]), np.concatenate([dst, src]))),
                   shape=(n, n))
    dist = np.full(n, -1, np.int64)
    dist[obj] = 0
    frontier = np.zeros(n, bool)
    frontier[obj] = True
    for d in range(1, depth + 1):
        reached = (g.T @ frontier.astype(np.int8)) > 0
        new = reached & (dist < 0)
        if not new.any():
            break
        dist[new] = d
        frontier = new
    return dist


@dataclass
class _Selection:
    node_of: np.ndarray  # per object: display node index, -1 hidden
    nodes: list  # dicts describing each display node
    roots: list  # (label, node id, target nodes, class) per root node
    summarised: int
    cluster: np.ndarray  # per object: its cluster (map index, page run or page class), -1 none
    coarse: bool  # page clusters are whole classes, not runs
    fcls: np.ndarray  # per object: class code of the first flagged page it touches, -1 none
    roles: dict  # object index -> "buckets" or "oldbuckets" of a map


def _select(a: Analysis, opts: RenderOptions) -> _Selection:
    """_select chooses the display nodes: which objects are drawn alone, which share a group node, which roots show."""
    if opts.max_nodes < 1:
        raise UsageError(f"--max-nodes {opts.max_nodes}: draw at least one node")
    universe, rank, focus = _universe(a, opts)
    fcls = flagged_class(a)
    cluster, coarse = _clusters(a, opts, universe)
    root_idx, root_mode, kinds_present, n_root_nodes = _root_plan(a, universe, opts.max_nodes)
    members, key, roles = _group_keys(a, universe, rank, focus, cluster, fcls, root_idx)
    node_of, nodes = _nodes(a.heap, members, key, opts.max_nodes - n_root_nodes)
    roots = _root_nodes(a, root_idx, root_mode, kinds_present, n_root_nodes, node_of)
    summarised = int(sum(len(x["objs"]) for x in nodes if x["kind"] != "single"))
    return _Selection(node_of, nodes, roots, summarised, cluster, coarse, fcls, roles)


def _universe(a: Analysis, opts: RenderOptions) -> tuple[np.ndarray, np.ndarray, int]:
    """_universe returns which objects may appear, their order of preference (rank) and the focus object (-1)."""
    heap = a.heap
    n = heap.n_objects
    rank = np.arange(n, dtype=np.int64)
    universe = np.ones(n, bool)
    focus = -1
    if opts.focus is not None:
        (focus,) = heap.find([opts.focus])
        if focus < 0:
            raise UsageError(f"--focus {opts.focus:#x} is inside no object of the dump")
        dist = neighbourhood(a, int(focus), opts.depth)
        universe &= dist >= 0
        rank = dist * n + rank
    if opts.unreachable_only:
        universe &= ~a.reachable
    return universe, rank, int(focus)


def _clusters(a: Analysis, opts: RenderOptions, universe: np.ndarray) -> tuple[np.ndarray, bool]:
    """_clusters returns each object's cluster (its map, its page run, or with too many runs its page class)."""
    if opts.cluster == "page":
        pc = a.pages
        p0, _ = a.object_pages
        run = np.searchsorted(pc.first, p0, side="right") - 1
        used = np.unique(run[universe])
        if len(used) > max(opts.max_nodes // 4, 1):
            return pc.cls[run].astype(np.int64), True  # too many runs: one cluster per class
        return run, False
    if opts.cluster == "map":
        return map_owner(a), False
    raise UsageError(f"--cluster {opts.cluster!r}: expected map or page")


def _root_plan(a: Analysis, universe: np.ndarray, budget: int):
    """_root_plan returns the roots that land in the universe and how to draw them within a fifth of the budget.

    (root indices, mode, root kinds present, root nodes): mode "each" draws
    every root, "kind" one node per root kind, "one" a single node.
    """
    heap = a.heap
    rd = a.marking.root_dest
    root_idx = np.flatnonzero(rd >= 0)
    root_idx = root_idx[universe[rd[root_idx]]]
    root_budget = max(budget // 5, 1) if budget > 1 else 0
    kinds_present = sorted({int(k) for k in heap.roots.kind[root_idx]})
    if len(root_idx) <= root_budget:
        return root_idx, "each", kinds_present, len(root_idx)
    if len(kinds_present) <= root_budget:
        return root_idx, "kind", kinds_present, len(kinds_present)
    return root_idx, "one", kinds_present, 1 if root_budget else 0


def _group_keys(a: Analysis, universe, rank, focus: int, cluster, fcls, root_idx):
    """_group_keys sorts the universe by group: same cluster, kind, reachability and flagged class share a key.

    Map headers and the arrays they point at, root targets and the focus
    each get a key of their own. It returns (members, keys, roles), members
    in group order and by rank within a group.
    """
    heap, reach = a.heap, a.reachable
    n = heap.n_objects
    rd = a.marking.root_dest
    special = np.zeros(n, bool)
    special[heap.obj_kind == heap.kind_code("hmap")] = heap.kind_code("hmap") >= 0
    roles = {}
    for m in a.maps:
        for i, role in m.structure.items():
            if role in OWN_NODE:
                special[i] = True
                if role in ("buckets", "oldbuckets", "directory"):
                    roles[i] = role
    special[rd[root_idx]] = True
    if focus >= 0:
        special[focus] = True
    members = np.flatnonzero(universe)
    nk = max(len(heap.kinds), 1)
    key = ((((cluster[members] + 1) * nk + heap.obj_kind[members]) * 2 + reach[members]) * 8 + fcls[members] + 1)
    key = np.where(special[members], -1 - members, key)
    order = np.lexsort((rank[members], key))
    return members[order], key[order], roles


def _nodes(heap, members: np.ndarray, key: np.ndarray, budget: int) -> tuple[np.ndarray, list]:
    """_nodes spends ``budget`` display nodes on the groups: (per object its node, -1 hidden; the nodes)."""
    n = heap.n_objects
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if len(key) else np.zeros(0, np.int64)
    ends = np.concatenate([starts[1:], [len(key)]]).astype(np.int64)
    counts = ends - starts
    sizes = heap.obj_size[members]
    gbytes = np.add.reduceat(sizes, starts) if len(starts) else np.zeros(0, np.int64)
    G = len(starts)

    node_of = np.full(n, -1, np.int64)
    nodes = []

    def add(kind, objs, **info):
        node_of[objs] = len(nodes)
        nodes.append(dict(kind=kind, objs=objs, **info))

    if G > budget:
        # Too many groups: the biggest keep a node, the rest share one.
        gspecial = key[starts] < 0
        pri = np.lexsort((np.arange(G), -gbytes, ~gspecial))
        keep = np.sort(pri[: max(budget - 1, 0)])
        rest = np.sort(pri[max(budget - 1, 0):]) if budget else pri
        for g in keep:
            objs = members[starts[g]:ends[g]]
            add("single" if counts[g] == 1 else "group", objs)
        if budget and len(rest):
            objs = np.concatenate([members[starts[g]:ends[g]] for g in rest])
            add("more", objs, groups=len(rest))
        return node_of, nodes
    # Water-filling: the largest c such that every group shows up to c objects and one node for
    # the rest (a group of c+1 shows all c+1): group costs min(m, c+1) nodes.
    def cost(c):
        return int(np.minimum(counts, c + 1).sum())
    lo, hi = 0, int(counts.max(initial=0))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    # A person reads a few examples of a group, not hundreds: at most PER_GROUP
    # objects of a group are drawn one by one (with a focus, the nearest).
    cap = min(lo, PER_GROUP)
    for g in range(G):
        objs = members[starts[g]:ends[g]]
        m = len(objs)
        if m == 1 or m <= cap + 1:
            for o in objs.tolist():
                add("single", np.array([o]))
        elif cap == 0:
            add("group", objs)
        else:
            for o in objs[:cap].tolist():
                add("single", np.array([o]))
            add("group", objs[cap:], rest=True)
    return node_of, nodes


def _root_nodes(a: Analysis, root_idx, root_mode: str, kinds_present, n_root_nodes: int, node_of) -> list:
    """_root_nodes returns (label, node id, target nodes, class) per root node, as _root_plan chose to draw them."""
    from .model import ROOT_KINDS

    heap = a.heap
    rd = a.marking.root_dest
    names, rkinds = heap.roots.name, heap.roots.kind
    roots = []
    if root_mode == "each":
        for i in root_idx.tolist():
            roots.append((f"{names[i]}\\n({ROOT_KINDS[rkinds[i]]})", f"root-{i}", [int(node_of[rd[i]])], "root"))
    elif root_mode == "kind":
        for kcode in kinds_present:
            sel = root_idx[rkinds[root_idx] == kcode]
            roots.append((f"{len(sel)} {ROOT_KINDS[kcode]} roots", f"roots-{ROOT_KINDS[kcode]}",
                          sorted(set(node_of[rd[sel]].tolist())), "root roots"))
    elif n_root_nodes:
        roots.append((f"{len(root_idx)} roots", "roots-all", sorted(set(node_of[rd[root_idx]].tolist())), "root roots"))
    return roots


# ---------------------------------------------------------------- drawing (graphviz)

def _node_attrs(a: Analysis, sel: _Selection, k: int) -> tuple[str, dict, int]:
    """_node_attrs returns (label, attributes, cluster) of display node k."""
    heap, reach = a.heap, a.reachable
    x = sel.nodes[k]
    objs = x["objs"]
    first = int(objs[0])
    cl = int(sel.cluster[first])
    if x["kind"] == "more":
        total = int(heap.obj_size[objs].sum())
        return (f"{len(objs)} more objects\\nin {x['groups']} groups\\n{fmt_bytes(total)}",
                dict(id=f"more-{k}", **{"class": "more"}, shape="note", style="filled", fillcolor=MORE_FILL), -1)
    r = bool(reach[first])
    kind = heap.kinds[heap.obj_kind[first]]
    fc = int(sel.fcls[first])
    onpage = CLASSES[fc] if fc >= 0 else "ok"
    border = dict(color=CLASS_COLORS[CLASSES[fc]], penwidth="3") if fc >= 0 else dict(color="#424242")
    fill = REACHABLE_FILL if r else UNREACHABLE_FILL
    state = "reachable" if r else "unreachable"
    if x["kind"] == "single":
        size = int(heap.obj_size[first])
        role = sel.roles.get(first, kind)
        if kind in ("hmap", "swiss_map"):  # the map's name, as the text report gives it
            m = a.map_at(int(heap.obj_addr[first]))
            role = f"map {m.header.name}" if m is not None and m.header.name else role
        label = f"{role}\\n{heap.obj_addr[first]:#x}\\n{fmt_bytes(size)}"
        shape = "component" if kind in ("hmap", "swiss_map") else "box"
        attrs = dict(id=f"obj-{heap.obj_addr[first]:#x}", shape=shape, style="filled,rounded", fillcolor=fill,
                     tooltip=f"{kind} {heap.obj_addr[first]:#x}, {size} B, {state}"
                             + (f", on a {onpage} page" if fc >= 0 else ""),
                     **{"class": f"obj {state} kind-{kind} onpage-{onpage}"}, **border)
        return label, attrs, cl
    total = int(heap.obj_size[objs].sum())
    more = "more " if x.get("rest") else ""
    lo, hi = int(heap.obj_addr[objs].min()), int((heap.obj_addr[objs] + heap.obj_size[objs]).max())
    label = f"{len(objs)} {more}{kind}\\n{fmt_bytes(total)}, {state}\\n{lo:#x}..{hi:#x}"
    attrs = dict(id=f"grp-{k}", shape="box3d", style="filled", fillcolor=fill,
                 tooltip=f"{len(objs)} {kind} objects, {total} B, {state}",
                 **{"class": f"group {state} kind-{kind} onpage-{onpage}"}, **border)
    return label, attrs, cl


def _cluster_attrs(a: Analysis, sel: _Selection, cl: int, mode: str) -> tuple[str, dict]:
    """_cluster_attrs returns the graphviz name and attributes of cluster ``cl``."""
    if mode == "map":
        m = a.maps[cl]
        h = m.header
        state = "reachable" if m.reachable else "UNREACHABLE"
        label = f"map {map_label(h)}: {map_brief(m)}{', growing' if h.impl == 'hmap' and h.growing else ''}, {state}"
        return f"cluster_map_{cl}", dict(label=label, id=f"map-{h.hmap:#x}", style="rounded",
                                          color="#1565c0", fontcolor="#1565c0",
                                          **{"class": f"map {'reachable' if m.reachable else 'unreachable'}"})
    pc = a.pages
    ps = pc.page_size
    if sel.coarse:
        name = CLASSES[cl]
        n = pc.count(name)
        return f"cluster_pages_{name}", dict(label=f"{name} pages ({n}, {fmt_bytes(n * ps)})", id=f"pages-{name}",
                                             style="filled", fillcolor=PAGE_FILLS[name],
                                             color=CLASS_COLORS[name], **{"class": f"pagerun {name}"})
    name = CLASSES[pc.cls[cl]]
    first, n = int(pc.first[cl]), int(pc.n[cl])
    flag = ", flagged" if name in FLAGGED else ""
    return (f"cluster_pages_{cl}",
            dict(label=f"{name}{flag}: {first * ps:#x}, {n} page{'s' if n != 1 else ''}",
                 id=f"pages-{first * ps:#x}-{n}", style="filled", fillcolor=PAGE_FILLS[name],
                 color=CLASS_COLORS[name], penwidth="3" if flag else "1", **{"class": f"pagerun {name}"}))


def _legend(a: Analysis, g: RenderedGraph, opts: RenderOptions) -> str:
    """_legend returns the graph's label: an HTML-like table of colours and of what was summarised."""
    rows = [f'<TR><TD BGCOLOR="{REACHABLE_FILL}">reachable</TD><TD BGCOLOR="{UNREACHABLE_FILL}">unreachable</TD>'
            f'<TD BGCOLOR="{ROOT_FILL}">root</TD><TD BGCOLOR="{MORE_FILL}">N more</TD></TR>',
            '<TR>' + "".join(f'<TD COLOR="{CLASS_COLORS[c]}" BORDER="3">on a page: {c}</TD>' for c in FLAGGED)
            + '<TD>box3d: a group</TD></TR>']
    heap = a.heap
    what = (f"{g.shown_objects} of {heap.n_objects} objects drawn one by one, "
            f"{g.summarised_objects} in summary nodes; {g.node_count} nodes (max {opts.max_nodes})")
    rows.append(f'<TR><TD COLSPAN="4">{_html(what)}</TD></TR>')
    for note in g.notes:
        rows.append(f'<TR><TD COLSPAN="4">{_html(note)}</TD></TR>')
    return '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="2">' + "".join(rows) + "</TABLE>>"


def _html(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_graph(a: Analysis, opts: RenderOptions = RenderOptions()) -> RenderedGraph:
    """build_graph chooses at most ``opts.max_nodes`` nodes and returns them as a graphviz Digraph."""
    import graphviz

    sel = _select(a, opts)
    heap = a.heap
    title = opts.title or f"gctrace: {os.path.basename(heap.path)}"
    dot = graphviz.Digraph("heap", graph_attr=dict(rankdir="LR", fontname="Helvetica", fontsize="11",
                                                   labelloc="b", labeljust="l", id="heap-graph",
                                                   tooltip=title, newrank="true"),
                           node_attr=dict(fontname="Helvetica", fontsize="10"),
                           edge_attr=dict(fontname="Helvetica", fontsize="9", color="#616161"))
    by_cluster: dict = {}
    for k in range(len(sel.nodes)):
        label, attrs, cl = _node_attrs(a, sel, k)
        by_cluster.setdefault(cl if cl >= 0 else None, []).append((f"n{k}", label, attrs))
    for cl in sorted(c for c in by_cluster if c is not None):
        name, attrs = _cluster_attrs(a, sel, cl, opts.cluster)
        with dot.subgraph(name=name) as sub:
            sub.attr(**attrs)
            for nid, label, nattrs in by_cluster[cl]:
                sub.node(nid, label, **nattrs)
    for nid, label, nattrs in by_cluster.get(None, []):
        dot.node(nid, label, **nattrs)
    # Roots, in a rank of their own on the left.
    edge_count = 0
    with dot.subgraph(name="roots") as sub:
        sub.attr(rank="min")
        for label, rid, _, cls in sel.roots:
            sub.node(rid, label, id=rid, shape="invhouse", style="filled", fillcolor=ROOT_FILL, **{"class": cls})
    for _, rid, targets, _ in sel.roots:
        for t in targets:
            if t >= 0:
                dot.edge(rid, f"n{t}")
                edge_count += 1
    # Pointer edges between drawn nodes, counted.
    src, dst = a.edges
    s, d = sel.node_of[src], sel.node_of[dst]
    keep = (s >= 0) & (d >= 0)
    s, d = s[keep], d[keep]
    nn = max(len(sel.nodes), 1)
    pair, count = np.unique(s * nn + d, return_counts=True)
    max_edges = 4 * opts.max_nodes
    dropped = 0
    if len(pair) > max_edges:
        top = np.sort(np.lexsort((pair, -count))[:max_edges])
        dropped = len(pair) - max_edges
        pair, count = pair[top], count[top]
    for p, c in zip(pair.tolist(), count.tolist()):
        u, v = divmod(p, nn)
        attrs = dict(label=f"\u00d7{c}", penwidth=str(min(1 + np.log10(c), 4))) if c > 1 else {}
        dot.edge(f"n{u}", f"n{v}", **attrs)
        edge_count += 1
    shown = sum(1 for x in sel.nodes if x["kind"] == "single")
    g = RenderedGraph(dot, len(sel.nodes) + len(sel.roots), edge_count, shown, sel.summarised, dropped)
    if dropped:
        g.notes.append(f"{dropped} edges between summary nodes not drawn (the {max_edges} heaviest are)")
    if opts.focus is not None:
        g.notes.append(f"focus {opts.focus:#x}, {opts.depth} pointer hops either way")
    if opts.unreachable_only:
        g.notes.append("unreachable objects only")
    if opts.cluster == "page" and sel.coarse:
        g.notes.append("too many page runs to draw one cluster each: one cluster per page class")
    dot.attr(label=_legend(a, g, opts))
    assert g.node_count <= opts.max_nodes, (g.node_count, opts.max_nodes)
    return g


def why_graph(a: Analysis, w) -> RenderedGraph:
    """why_graph draws the paths (or the referrers) of a ``paths.Why`` answer, one node per object."""
    import graphviz

    from .model import ROOT_KINDS

    heap = a.heap
    dot = graphviz.Digraph("why", graph_attr=dict(rankdir="LR", fontname="Helvetica", id="why-graph"),
                           node_attr=dict(fontname="Helvetica", fontsize="10"),
                           edge_attr=dict(fontname="Helvetica", fontsize="9"))
    fcls = flagged_class(a)
    seen = set()

    def obj(i):
        if i in seen:
            return f"o{i}"
        seen.add(i)
        r = bool(a.reachable[i])
        kind = heap.kinds[heap.obj_kind[i]]
        fc = int(fcls[i])
        border = dict(color=CLASS_COLORS[CLASSES[fc]], penwidth="3") if fc >= 0 else {}
        state = "reachable" if r else "unreachable"
        target = " target" if i == w.obj else ""
        dot.node(f"o{i}", f"{kind}\\n{heap.obj_addr[i]:#x}\\n{fmt_bytes(int(heap.obj_size[i]))}",
                 id=f"obj-{heap.obj_addr[i]:#x}", shape="box", style="filled,rounded" + (",bold" if target else ""),
                 fillcolor=REACHABLE_FILL if r else UNREACHABLE_FILL,
                 **{"class": f"obj {state} kind-{kind} onpage-{CLASSES[fc] if fc >= 0 else 'ok'}{target}"}, **border)
        return f"o{i}"

    edges = set()
    for p, first in zip(w.paths, w.first_objects):
        rid = f"root-{p.root}"
        if rid not in seen:
            seen.add(rid)
            dot.node(rid, f"{heap.roots.name[p.root]}\\n({ROOT_KINDS[heap.roots.kind[p.root]]})", id=rid,
                     shape="invhouse", style="filled", fillcolor=ROOT_FILL, **{"class": "root"})
        tgt = int(heap.roots.target[p.root])
        off = tgt - int(heap.obj_addr[first])
        if (rid, first) not in edges:
            edges.add((rid, first))
            dot.edge(rid, obj(first), label=f"+{off:#x}" if off else "")
        for h in p.hops:
            if (h.src, h.dst) not in edges:
                edges.add((h.src, h.dst))
                into = h.value - int(heap.obj_addr[h.dst])
                dot.edge(obj(h.src), obj(h.dst), label=f"[{h.off:#x}]" + (f" \u2192 +{into:#x}" if into else ""))
    for h in w.referrers:
        dot.edge(obj(h.src), obj(h.dst), label=f"[{h.off:#x}]")
    for e in w.garbage_entries:
        obj(e)
    obj(w.obj)
    n = len(seen)
    return RenderedGraph(dot, n, len(edges) + len(w.referrers), n, 0)


# ---------------------------------------------------------------- output

def output_format(path: str) -> str:
    """output_format maps an output file name to a graphviz format by its extension.

    >>> output_format("heap.svg"), output_format("x.DOT")
    ('svg', 'dot')
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise UsageError(f"{path}: unknown graph format {ext or '(none)'}; use one of "
                         + ", ".join(sorted(FORMATS)))
    return FORMATS[ext]


def to_bytes(g: RenderedGraph, fmt: str) -> bytes:
    """to_bytes lays the graph out with dot and returns the file in ``fmt``; "dot" needs no binary."""
    if fmt == "dot":
        return g.source.encode()
    import graphviz

    try:
        return g.dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise MissingToolError(DOT_MISSING.format(what=fmt.upper())) from None
    except graphviz.CalledProcessError as e:
        raise MissingToolError(f"dot failed drawing {fmt}: {(e.stderr or b'').decode(errors='replace').strip()}") from None


def svg_fragment(svg: bytes) -> str:
    """svg_fragment strips the XML prolog and DOCTYPE from dot's SVG so it can be inlined in HTML."""
    text = svg.decode()
    i = text.find("<svg")
    return text[i:] if i >= 0 else text
