"""The heap graph's C loops answer as the definitions and the numpy/scipy/Python paths do.

- find: the same object for every address as a linear scan and numpy's
  searchsorted. Heaps are random and shaped to reach every branch: dense runs
  of small objects (short linear walks), clusters far apart (long granule
  ranges, so binary search), single objects, objects ending at 2^63. Queries
  hit starts, last bytes, ends, gaps, and addresses outside on both sides.
- reach: the same objects as scipy's BFS.
- dominators: the same tree and retained sizes as dominators.py's
  Cooper-Harvey-Kennedy (itself checked against networkx and brute force).
The C file is also run under AddressSanitizer and UBSan against brute force
written in the test: a linear scan, a fixpoint mark, and remove-and-re-mark
retained sizes.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gctrace.analysis import heapgraph
from gctrace.analysis.dominators import dominators
from gctrace.analysis.mark import mark, reach
from builders import tiny_heap
from sanitized import run_sanitized

NEEDS_C = pytest.mark.skipif(not heapgraph.available(),
                             reason="the heap graph library is not built (make native) or is off: nothing to compare")


def linear_scan(addr, size, q):
    """linear_scan is the definition: the object with addr <= q < addr + size, or -1."""
    out = []
    for t in q:
        hit = [k for k in range(len(addr)) if addr[k] <= t < addr[k] + size[k]]
        out.append(hit[0] if hit else -1)
    return out


@st.composite
def heaps(draw):
    """heaps draws sorted disjoint objects in clusters, and queries around and inside them."""
    n_clusters = draw(st.integers(1, 4))
    addr, size = [], []
    at = draw(st.sampled_from([1, 0x1000, 0xC000000000]))
    for _ in range(n_clusters):
        at += draw(st.sampled_from([0, 1, 16, 4096, 1 << 20, 1 << 40]))
        for _ in range(draw(st.integers(1, 40))):
            s = draw(st.sampled_from([1, 8, 16, 48, 144, 8192]))
            addr.append(at)
            size.append(s)
            at += s + draw(st.sampled_from([0, 0, 0, 8, 100]))
    if draw(st.booleans()) and at < (1 << 62):
        # the last object ends exactly at 2^63, the loader's upper bound
        addr.append((1 << 63) - 64)
        size.append(64)
    q = []
    for a, s in zip(addr, size):
        q += [a, a + s - 1, a + s, a - 1, a + s // 2]
    q += draw(st.lists(st.integers(-(1 << 63), (1 << 63) - 1), max_size=20))
    q += [0, addr[0] - 1, addr[-1] + size[-1], (1 << 63) - 1, -(1 << 63)]
    q = [min(max(t, -(1 << 63)), (1 << 63) - 1) for t in q]
    draw(st.randoms()).shuffle(q)
    return np.array(addr, np.int64), np.array(size, np.int64), np.array(q, np.int64)


@NEEDS_C
@settings(max_examples=300, deadline=None)
@given(heaps())
def test_c_index_matches_a_linear_scan_and_searchsorted(h):
    addr, size, q = h
    want = linear_scan(addr.tolist(), size.tolist(), q.tolist())
    assert heapgraph.find(addr, size, q).tolist() == want
    assert tiny_heap(list(zip(addr.tolist(), size.tolist())))._find(q).tolist() == want


@NEEDS_C
def test_no_objects_finds_nothing():
    empty = np.zeros(0, np.int64)
    assert heapgraph.find(empty, empty, np.array([0, 1, 0x1000])).tolist() == [-1, -1, -1]


@NEEDS_C
def test_a_big_mark_is_the_same_with_and_without_the_c_index(monkeypatch):
    # GIVEN 50k objects and 200k pointers, enough for Heap.find to take the C path, some interior, some external
    rng = np.random.default_rng(11)
    n = 50_000
    sizes = rng.choice([16, 32, 48, 144], size=n)
    addr = 0xC000000000 + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    src = np.sort(rng.integers(0, n, size=200_000))
    tgt = addr[rng.integers(0, n, size=200_000)] + rng.integers(0, 20, size=200_000)
    tgt[rng.random(200_000) < 0.01] = 0x7F0000000000
    ptrs = sorted({(int(s), 0, int(t)) for s, t in zip(src, tgt)})
    h = tiny_heap(list(zip(addr.tolist(), sizes.tolist())), ptrs=ptrs, roots=addr[:5].tolist())
    # WHEN it is marked with the C index and BFS, and with numpy and scipy alone
    with_c = mark(h)
    monkeypatch.setenv("GCTRACE_HEAPGRAPH", "0")
    without = mark(h)
    # THEN every pointer resolves alike and the same objects are reachable
    assert with_c.ptr_dest.tolist() == without.ptr_dest.tolist()
    assert (with_c.reachable == without.reachable).all()
    assert 0 < with_c.external_ptrs == without.external_ptrs < len(ptrs)


DRIVER = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "_heapgraph.c"

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

int main(void)
{
    enum { N = 300, M = 2000 };
    static int64_t addr[N], size[N], q[M], out[M], start[N + 1], roots[4];
    static uint8_t seen[N], want_seen[N], without[N];
    static int64_t idom[N], retained[N];
    for (int round = 0; round < 3000; round++) {
        int n = (int)(next() % N);
        int64_t at = (int64_t)(next() % 0x10000) + 1;
        for (int k = 0; k < n; k++) {
            if (next() % 16 == 0)
                at += (int64_t)(next() % (1ULL << (next() % 50)));
            addr[k] = at;
            size[k] = (int64_t)(next() % 300) + 1;
            at += size[k] + (int64_t)(next() % 3 == 0 ? next() % 64 : 0);
        }
        for (int i = 0; i < M; i++) {
            q[i] = n && next() % 4 ? addr[next() % n] + (int64_t)(next() % 400) - 100 : (int64_t)next();
        }
        if (hg_find(n, addr, size, M, q, out) != 0)
            return 3;
        for (int i = 0; i < M; i++) {
            int64_t want = -1;
            for (int k = 0; k < n; k++)
                if (addr[k] <= q[i] && q[i] < addr[k] + size[k])
                    want = k;
            if (out[i] != want) {
                printf("round %d: q=%lld got %lld want %lld\n", round, (long long)q[i], (long long)out[i],
                       (long long)want);
                return 1;
            }
        }
        /* the first resolved targets as n objects' fields, 0 to 3 each (sparse: long chains, real dominators),
           marked from 4 roots */
        start[0] = 0;
        for (int k = 0; k < n; k++)
            start[k + 1] = start[k] + (int64_t)(next() % 4);
        for (int r = 0; r < 4; r++)
            roots[r] = n ? (int64_t)(next() % (n + 1)) - 1 : -1;
        int64_t count = hg_mark(n, start, out, 4, roots, seen);
        for (int k = 0; k < n; k++)
            want_seen[k] = 0;
        for (int r = 0; r < 4; r++)
            if (roots[r] >= 0)
                want_seen[roots[r]] = 1;
        for (int changed = 1; changed;) {  /* fixpoint: mark what a marked object points to */
            changed = 0;
            for (int k = 0; k < n; k++)
                for (int64_t e = start[k]; want_seen[k] && e < start[k + 1]; e++)
                    if (out[e] >= 0 && !want_seen[out[e]])
                        want_seen[out[e]] = changed = 1;
        }
        int64_t want_count = 0;
        for (int k = 0; k < n; k++) {
            want_count += want_seen[k];
            if (seen[k] != want_seen[k]) {
                printf("round %d: object %d marked %d, want %d\n", round, k, seen[k], want_seen[k]);
                return 1;
            }
        }
        if (count != want_count) {
            printf("round %d: hg_mark counted %lld, want %lld\n", round, (long long)count, (long long)want_count);
            return 1;
        }
        /* dominators of small heaps: removing d and re-marking loses exactly d's retained bytes */
        if (n > 60)
            continue;
        if (hg_dominators(n, start, out, 4, roots, size, idom, retained) != want_count)
            return 4;
        for (int d = 0; d < n; d++) {
            for (int k = 0; k < n; k++)
                without[k] = 0;
            for (int r = 0; r < 4; r++)
                if (roots[r] >= 0 && roots[r] != d)
                    without[roots[r]] = 1;
            for (int changed = 1; changed;) {
                changed = 0;
                for (int k = 0; k < n; k++)
                    for (int64_t e = start[k]; without[k] && e < start[k + 1]; e++)
                        if (out[e] >= 0 && out[e] != d && !without[out[e]])
                            without[out[e]] = changed = 1;
            }
            int64_t lost = 0;
            for (int k = 0; k < n; k++)
                lost += want_seen[k] && !without[k] ? size[k] : 0;
            if (retained[d] != lost || (idom[d] == -1) != !want_seen[d]) {
                printf("round %d: object %d retains %lld, want %lld\n", round, d, (long long)retained[d],
                       (long long)lost);
                return 1;
            }
        }
    }
    puts("ok");
    return 0;
}
"""


def test_c_loops_under_asan_and_ubsan_match_brute_force(tmp_path):
    # GIVEN the library built with ASan and UBSan, and a driver with brute-force answers
    # WHEN 3000 random heaps (sparse and dense) are queried 2000 times each, marked, and the small ones dominated
    r = run_sanitized(tmp_path, DRIVER, "heap graph library")
    # THEN every lookup, mark and retained size is the brute-force one, with no memory error or UB
    assert r.returncode == 0 and r.stdout == "ok\n", r.stdout[-2000:] + r.stderr[-3000:]


@st.composite
def graphs(draw):
    """graphs draws n objects, each with 0-4 fields pointing at an object or nowhere (-1), and roots."""
    n = draw(st.integers(0, 60))
    counts = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    ptr_start = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
    dest = np.array(draw(st.lists(st.integers(-1, n - 1), min_size=int(ptr_start[-1]),
                                  max_size=int(ptr_start[-1]))), np.int64)
    roots = np.array(draw(st.lists(st.integers(-1, n - 1), max_size=5)), np.int64)
    return n, ptr_start, dest, roots


@NEEDS_C
@settings(max_examples=300, deadline=None)
@given(graphs())
def test_c_bfs_reaches_what_scipy_reaches(g):
    n, ptr_start, dest, roots = g
    src = np.repeat(np.arange(n), np.diff(ptr_start))
    keep = dest >= 0
    want = reach(n, src[keep], dest[keep], roots)
    assert heapgraph.reach(n, ptr_start, dest, roots).tolist() == want.tolist()


@NEEDS_C
def test_c_loops_refuse_field_offsets_that_do_not_fit():
    with pytest.raises(ValueError, match="3 objects need 4 ascending field offsets within 2 fields"):
        heapgraph.reach(3, np.array([0, 1, 2]), np.array([0, 1]), np.array([0]))
    for bad in ([0, 5], [-1, 1], [0, 2, 1]):
        with pytest.raises(ValueError):
            heapgraph.reach(len(bad) - 1, np.array(bad), np.array([0, 0]), np.array([0]))
        with pytest.raises(ValueError):
            heapgraph.dominators(len(bad) - 1, np.array(bad), np.array([0, 0]), np.array([0]), np.ones(len(bad) - 1))


@NEEDS_C
@settings(max_examples=300, deadline=None)
@given(graphs(), st.randoms())
def test_c_dominators_match_cooper_harvey_kennedy(g, rnd):
    n, ptr_start, dest, roots = g
    size = np.array([rnd.randint(1, 100) for _ in range(n)], np.int64)
    src = np.repeat(np.arange(n), np.diff(ptr_start))
    keep = dest >= 0
    want = dominators(n, src[keep], dest[keep], roots, size)
    idom, retained = heapgraph.dominators(n, ptr_start, dest, roots, size)
    assert idom.tolist() == want.idom.tolist()
    assert retained.tolist() == want.retained.tolist()


@NEEDS_C
def test_c_dominators_walk_a_chain_deeper_than_any_call_stack():
    # GIVEN 300k objects in one list (root -> 0 -> 1 -> ...), and a shortcut 0 -> 200000
    n = 300_000
    ptr_start = np.concatenate([[0], np.arange(2, n + 2)]).astype(np.int64)  # object 0 has two fields
    dest = np.concatenate([[1, 200_000], np.arange(2, n), [-1]]).astype(np.int64)
    # WHEN its dominators are computed
    idom, retained = heapgraph.dominators(n, ptr_start, dest, np.array([0]), np.ones(n, np.int64))
    # THEN each node is dominated by its predecessor, but 200000 by 0, and 0 retains everything
    assert idom[1] == 0 and idom[199_999] == 199_998 and idom[200_000] == 0 and idom[200_001] == 200_000
    assert retained[0] == n and retained[1] == 199_999 and retained[200_000] == 100_000
