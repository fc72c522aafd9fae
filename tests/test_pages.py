"""classify gives every page exactly the spec's class, working on intervals."""

import numpy as np

from dumps import BASE, PAGE, dump_doc
from gctrace.analysis.load import load_dump
from gctrace.analysis.mark import mark
from gctrace.analysis.pages import CLASSES, classify


def classes_by_page(pc):
    out = {}
    for f, n, c in zip(pc.first, pc.n, pc.cls):
        for p in range(f, f + n):
            out[p * pc.page_size - BASE] = CLASSES[c]
    return out


def test_each_class_from_literal_pages(write_dump):
    # GIVEN: page 0 live object; page 1 garbage object; page 2 free; 3 released+resident;
    # 4 released+gone; 5 used, no object; 6 garbage but not resident; 7 live and not resident
    objs = [{"addr": BASE + 8, "size": 8}, {"addr": BASE + PAGE, "size": 8},
            {"addr": BASE + 6 * PAGE, "size": 8}, {"addr": BASE + 7 * PAGE, "size": 8}]
    roots = [{"name": "a", "kind": "global", "target": BASE + 8},
             {"name": "b", "kind": "stack", "target": BASE + 7 * PAGE}]
    pages = [{"addr": BASE, "n": 2, "resident": True, "state": "used"},
             {"addr": BASE + 2 * PAGE, "resident": True, "state": "free"},
             {"addr": BASE + 3 * PAGE, "resident": True, "state": "released"},
             {"addr": BASE + 4 * PAGE, "resident": False, "state": "released"},
             {"addr": BASE + 5 * PAGE, "resident": True, "state": "used"},
             {"addr": BASE + 6 * PAGE, "n": 2, "resident": False, "state": "used"}]
    heap = load_dump(write_dump(dump_doc(objs, roots, pages=pages)))
    pc = classify(heap, mark(heap).reachable)
    got = classes_by_page(pc)
    assert [got[k * PAGE] for k in range(8)] == ["live", "garbage", "idle", "lazyfree", "nonresident",
                                                "untracked", "nonresident", "live"]
    assert pc.flagged == 3 and pc.total == 8 and pc.resident_pages == 5  # pages 0, 1, 2, 3, 5


def test_object_straddling_a_boundary_touches_both_pages(write_dump):
    objs = [{"addr": BASE + PAGE - 8, "size": 16}]
    heap = load_dump(write_dump(dump_doc(objs)))
    pc = classify(heap, np.array([False]))
    assert classes_by_page(pc) == {0: "garbage", PAGE: "garbage"}
    assert pc.assumed


def test_a_huge_run_costs_nothing(write_dump):
    # GIVEN 2^40 released pages: classification is by intervals, never per page
    pages = [{"addr": BASE, "n": 1 << 30, "resident": False, "state": "released"}]
    heap = load_dump(write_dump(dump_doc(pages=pages)))
    pc = classify(heap, np.zeros(0, bool))
    assert pc.count("nonresident") == 1 << 30 and len(pc.n) == 1


def test_live_wins_over_garbage_on_a_shared_page(write_dump):
    objs = [{"addr": BASE, "size": 8}, {"addr": BASE + 8, "size": 8}]
    roots = [{"name": "a", "kind": "global", "target": BASE}]
    heap = load_dump(write_dump(dump_doc(objs, roots)))
    pc = classify(heap, mark(heap).reachable)
    assert classes_by_page(pc) == {0: "live"}
