"""Analysis computes derived data once: edges, page spans, map headers by address, per-map retained sizes.

GIVEN a fixture with maps and flagged runs, WHEN every reporter asks, THEN the
underlying computation ran once, and its answer is the one the pure functions give.
"""

import numpy as np

import gctrace.analysis.analyze as analyze_mod
from dumps import FIXTURES
from gctrace.analysis.analyze import analyze
from gctrace.analysis.load import load_dump
from gctrace.analysis.mark import followed_edges, retained_by
from gctrace.analysis.pages import object_pages
from gctrace.analysis.report import json_report, run_kinds, text_report


def _counting(monkeypatch, name):
    calls = []
    real = getattr(analyze_mod, name)

    def wrapper(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(analyze_mod, name, wrapper)
    return calls


def test_page_spans_once_for_every_flagged_row(monkeypatch):
    a = analyze(load_dump(str(FIXTURES / "page_states.json")))
    calls = _counting(monkeypatch, "object_pages")
    runs = a.pages.flagged_runs()
    assert len(runs) > 1
    for first, n, _ in runs:
        run_kinds(a, first, n)
    text_report(a, runs=None)
    assert len(calls) == 1
    p0, p1 = object_pages(a.heap)
    assert np.array_equal(a.object_pages[0], p0) and np.array_equal(a.object_pages[1], p1)


def test_retained_once_per_map_whoever_asks(monkeypatch):
    a = analyze(load_dump(str(FIXTURES / "map_unreachable.json")))
    loud = [m for m in a.maps if a.map_findings.get(m.header.hmap)]
    assert len(a.maps) == 2 and len(loud) == 1
    calls = _counting(monkeypatch, "retained_by")
    text_report(a)  # asks for the map with findings only
    assert [int(i) for i in calls[0][2]] == [int(i) for i in a.heap.find([loud[0].header.hmap])]
    json_report(a)  # asks for all of them
    json_report(a)  # asks again: nothing left to compute
    asked = sorted(int(i) for args in calls for i in args[2])
    assert asked == sorted(int(i) for i in a.heap.find([m.header.hmap for m in a.maps]))  # each map once
    want = retained_by(a.heap, a.marking, a.heap.find([m.header.hmap for m in a.maps]))
    assert [a.map_retained()[m.header.hmap] for m in a.maps] == want


def test_edges_and_map_index_are_the_pure_answers():
    a = analyze(load_dump(str(FIXTURES / "map_growing_prealloc.json")))
    src, dst = followed_edges(a.heap, a.marking.ptr_dest)
    assert a.edges is a.edges
    assert np.array_equal(a.edges[0], src) and np.array_equal(a.edges[1], dst)
    for m in a.maps:
        assert a.map_at(m.header.hmap) is m
    assert a.map_at(1) is None
