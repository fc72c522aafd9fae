"""why: shortest root paths on hand-made heaps with known answers."""

import pytest
from click.testing import CliRunner

from dumps import BASE, FIXTURES, dump_doc
from gctrace.analysis.mark import mark
from builders import tiny_heap
from gctrace.analysis.paths import why
from gctrace.cli import main
from gctrace.errors import UsageError

# A heap with two roots and several routes to T:
#   r0 -> A+8 (interior)   A -> B+0x10 -> T+0x20 (interior)      length 2 from A
#   r1 -> C                C -> T                                length 1 from C
#   r0 -> A, A -> D -> E -> T                                     length 3
#   X -> T, nothing points at X
A, B, C, D, E, T, X = (0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000, 0x7000)
OBJS = [(a, 64) for a in (A, B, C, D, E, T, X)]
IA, IB, IC, ID, IE, IT, IX = range(7)
PTRS = [(IA, 0, B + 0x10), (IA, 8, D), (IB, 0, T + 0x20), (IC, 16, T), (ID, 0, E), (IE, 0, T + 63), (IX, 0, T)]


def heap(roots=(A + 8, C)):
    h = tiny_heap(OBJS, ptrs=PTRS, roots=list(roots))
    return h, mark(h)


def chain(p):
    return [p.hops[0].src] + [h.dst for h in p.hops] if p.hops else []


def test_one_shortest_path_prefers_the_nearer_root():
    h, m = heap()
    w = why(h, m, T + 5)
    assert w.reachable and w.obj == IT
    (p,) = w.paths
    # THEN root r1 -> C -> T, one hop, field C+16 holding T exactly
    assert p.root == 1 and chain(p) == [IC, IT]
    assert [(x.src, x.off, x.value, x.dst) for x in p.hops] == [(IC, 16, T, IT)]


def test_k_paths_in_order_of_length_with_interior_pointers():
    h, m = heap()
    w = why(h, m, T, k=5)
    got = [(p.root, chain(p)) for p in w.paths]
    # THEN exactly three simple paths exist, by length: 1 hop, 2 hops, 3 hops
    assert got == [(1, [IC, IT]), (0, [IA, IB, IT]), (0, [IA, ID, IE, IT])]
    # the hops carry the interior values as stored
    assert [x.value for x in w.paths[1].hops] == [B + 0x10, T + 0x20]
    assert [x.value for x in w.paths[2].hops][-1] == T + 63


def test_two_roots_on_one_object_are_two_paths():
    h, m = heap(roots=(A, A + 8, 0))
    w = why(h, m, B, k=3)
    assert sorted(p.root for p in w.paths) == [0, 1]
    assert all(chain(p) == [IA, IB] for p in w.paths)


def test_root_target_itself_has_a_path_of_no_hops():
    h, m = heap()
    w = why(h, m, C + 1)
    assert w.paths[0].root == 1 and len(w.paths[0]) == 0 and w.first_objects == [IC]


def test_unreachable_object_lists_its_referrers_and_entry():
    h, m = heap(roots=())
    w = why(h, m, T)
    assert not w.reachable and not w.paths
    assert sorted((x.src, x.off) for x in w.referrers) == [(IB, 0), (IC, 16), (IE, 0), (IX, 0)]
    # A, C and X are pointed at by nothing: the garbage enters there
    assert w.garbage_entries == [IA, IC, IX]


def test_address_outside_every_object_is_a_usage_error():
    h, m = heap()
    with pytest.raises(UsageError, match="inside no object"):
        why(h, m, 0x9999)


def test_cli_why_text_and_graph(tmp_path):
    out = tmp_path / "why.svg"
    r = CliRunner().invoke(main, ["why", str(FIXTURES / "interior_pointers.json"), f"{BASE + 0x1010:#x}",
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "root main.tail (global)" in r.stdout and "2 pointer hops" in r.stdout
    import xml.etree.ElementTree as ET

    ids = {g.get("id") for g in ET.parse(out).iter("{http://www.w3.org/2000/svg}g")}
    assert {f"obj-{BASE:#x}", f"obj-{BASE + 0x100:#x}", f"obj-{BASE + 0x1000:#x}"} <= ids


def test_cli_why_unreachable_and_decimal_address():
    r = CliRunner().invoke(main, ["why", str(FIXTURES / "interior_pointers.json"), str(BASE + 0x2000)])
    assert r.exit_code == 0, r.output
    assert "UNREACHABLE" in r.stdout and "Nothing points at it." in r.stdout


def test_cli_why_bad_address_is_one_line_exit_2():
    r = CliRunner().invoke(main, ["why", str(FIXTURES / "interior_pointers.json"), "0xzz"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "not an address" in r.stderr


def test_k_paths_on_a_big_ancestor_set_stay_bounded():
    # GIVEN a ladder of 3000 rungs (every object has two referrers) so the ancestors exceed the cap
    n = 3000
    objs = [(0x10000 + 0x100 * i, 64) for i in range(2 * n)]
    ptrs = []
    for i in range(n - 1):
        for a in (2 * i, 2 * i + 1):
            ptrs += [(a, 0, objs[2 * i + 2][0]), (a, 8, objs[2 * i + 3][0])]
    h = tiny_heap(objs, ptrs=ptrs, roots=[objs[0][0], objs[1][0]])
    w = why(h, mark(h), objs[-1][0], k=4, cap=500)
    assert len(w.paths) == 4 and all(len(p) == n - 1 for p in w.paths)
