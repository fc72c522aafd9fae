"""Dominator tree and retained sizes: hand-computed answers, networkx, and brute force."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from dumps import FIXTURES
from gctrace.analysis.dominators import dominators, heap_dominators, immediate_dominators
from gctrace.analysis.mark import reach
from builders import tiny_heap
from gctrace.analysis.mark import mark
from gctrace.cli import main


def brute_retained(n, src, dst, starts, size):
    """brute_retained removes each node in turn, re-marks, and sums the sizes of what is lost."""
    order = np.argsort(src, kind="stable")  # reach wants edges in source order
    src, dst = src[order], dst[order]
    base = reach(n, src, dst, starts)
    out = np.zeros(n, np.int64)
    for v in np.flatnonzero(base):
        keep = (src != v) & (dst != v)
        after = reach(n, src[keep], dst[keep], starts[starts != v])
        lost = base & ~after
        out[v] = int(size[lost].sum())
    return out


def random_graph(rng, n, m, nstarts):
    src = rng.integers(0, n, m)
    dst = rng.integers(0, n, m)
    starts = rng.choice(n, nstarts, replace=False)
    size = rng.integers(1, 100, n)
    return src, dst, starts, size


@pytest.mark.parametrize("seed", range(40))
def test_retained_matches_brute_force_on_random_graphs(seed):
    # GIVEN a random graph with self loops, cycles, parallel edges and several roots
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    src, dst, starts, size = random_graph(rng, n, int(rng.integers(0, 3 * n)), int(rng.integers(1, min(n, 4) + 1)))
    # WHEN retained sizes come from the dominator tree
    d = dominators(n, src, dst, starts, size)
    # THEN each equals what removing the node and re-marking loses
    assert d.retained.tolist() == brute_retained(n, src, dst, starts, size).tolist()


@pytest.mark.parametrize("seed", range(20))
def test_immediate_dominators_match_networkx(seed):
    nx = pytest.importorskip("networkx")
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(2, 200))
    src, dst, starts, _ = random_graph(rng, n, int(rng.integers(n, 4 * n)), int(rng.integers(1, 5)))
    g = nx.DiGraph()
    g.add_node(n)
    g.add_edges_from(zip(src.tolist(), dst.tolist()))
    g.add_edges_from((n, int(s)) for s in starts)
    want = nx.immediate_dominators(g, n)
    got = immediate_dominators(n, src, dst, starts)
    for v in range(n):
        assert got[v] == want.get(v, -1), v


def test_long_chain_and_a_diamond():
    # GIVEN root -> 0 -> 1 -> ... -> 999, and 0 -> 500 as a shortcut; sizes 1 each
    n = 1000
    src = np.concatenate([np.arange(n - 1), [0]])
    dst = np.concatenate([np.arange(1, n), [500]])
    d = dominators(n, src, dst, np.array([0]), np.ones(n, np.int64))
    # THEN 1..499 retain only the chain up to 499; 500 is dominated by 0 and retains 500..999
    assert d.idom[500] == 0 and d.idom[501] == 500
    assert d.retained[0] == n and d.retained[1] == 499 and d.retained[500] == 500


def test_retained_hand_computed_on_a_tiny_heap():
    # GIVEN   root -> A -> B -> D,  A -> C -> D (interior), E unreachable -> A
    #         sizes A 16, B 32, C 64, D 128, E 256
    h = tiny_heap([(0x1000, 16), (0x2000, 32), (0x3000, 64), (0x4000, 128), (0x5000, 256)],
                  ptrs=[(0, 0, 0x2000), (0, 8, 0x3000), (1, 0, 0x4010), (2, 0, 0x4000), (4, 0, 0x1000)],
                  roots=[0x1008])
    d = heap_dominators(h, mark(h))
    # THEN A retains everything reachable (16+32+64+128); B and C only themselves (D has two
    #      referrers); D itself; E is unreachable: 0
    assert d.retained.tolist() == [240, 32, 64, 128, 0]
    assert d.top(2).tolist() == [0, 3]


# Hand-computed: what dropping each map frees, from the sketches in fixtures/README.md.
MAP_RETAINED = {
    "map_after_mapclear.json": {0xC000000000: 48 + 17 * 32},          # hmap + NB; OVa/OVb already garbage
    "map_emptied_by_deletes.json": {0xC000000000: 48 + 17 * 32 + 3 * 32},  # + OVa, OVb, OVc
    "map_growing_prealloc.json": {0xC000000000: 48 + 17 * 32 + 8 * 32 + 2 * 32},  # + OB, OV1, OV2
    "map_same_size_growth.json": {0xC000000000: 48 + 4 * 32 + 4 * 32 + 3 * 32},
    "map_ptr4.json": {0x10000000: 32 + 2 * 76 + 76 + 76 + 16},        # hmap, NB, O1, O2, V
    "map_unreachable.json": {0xC000000000: 0, 0xC000001000: 48},     # H2 already garbage; H1 alone
    "no_pages_assumed.json": {0xC000000100: 48 + 144},
}


@pytest.mark.parametrize("name", sorted(MAP_RETAINED))
def test_report_map_retained_bytes(name):
    r = CliRunner().invoke(main, ["analyze", "--json", str(FIXTURES / name)])
    assert r.exit_code == 0, r.output
    got = {m["hmap"]: m["retained_bytes"] for m in json.loads(r.stdout)["maps"]}
    assert got == MAP_RETAINED[name]


def test_top_lists_the_map_first():
    r = CliRunner().invoke(main, ["top", str(FIXTURES / "map_growing_prealloc.json"), "-n", "2", "--json"])
    assert r.exit_code == 0, r.output
    top = json.loads(r.stdout)
    assert [(e["addr"], e["retained_bytes"]) for e in top] == [(0xC000000000, 912), (0xC000000400, 544 + 32)]
