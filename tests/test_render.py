"""render: every fixture draws as valid SVG within the node budget, colours agreeing with the report."""

import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dumps import FIXTURES, ROOT
from gctrace.analysis.analyze import analyze
from gctrace.analysis.load import load_dump
from gctrace.analysis.pagemap_svg import CLASS_COLORS, pagemap_svg
from gctrace.analysis.pages import CLASSES
from gctrace.analysis.render import REACHABLE_FILL, UNREACHABLE_FILL
from gctrace.cli import main

SVG = "{http://www.w3.org/2000/svg}"
DUMPS = sorted(p for p in FIXTURES.iterdir()
               if p.name.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")) and ".report." not in p.name)
HAVE_DOT = any(os.access(os.path.join(d, "dot"), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep))
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="graphviz's dot is not installed (apt-get install graphviz)")


def run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r


def report(path):
    return json.loads(run("analyze", "--json", path).stdout)


def nodes(svg_path):
    """nodes returns {id: (classes, fill, stroke)} for every graphviz node of the SVG."""
    out = {}
    for g in ET.parse(svg_path).iter(f"{SVG}g"):
        cls = (g.get("class") or "").split()
        if "node" not in cls:
            continue
        shape = next((e for e in g.iter() if e is not g and e.get("fill") not in (None, "none")), None)
        out[g.get("id")] = (set(cls), shape.get("fill") if shape is not None else None,
                            shape.get("stroke") if shape is not None else None)
    return out


def clusters(svg_path):
    return {g.get("id"): set(g.get("class").split()) for g in ET.parse(svg_path).iter(f"{SVG}g")
            if "cluster" in (g.get("class") or "").split()}


def flagged_pages(rep, page_size):
    """flagged_pages maps each flagged page's address to its class, expanding the report's runs."""
    return {r["addr"] + i * page_size: r["class"] for r in rep["flagged"] for i in range(r["n"])}


def flagged_of(rep, page_size, addr, size):
    """flagged_of returns the class of the first flagged page [addr, addr+size) touches, per the report."""
    flagged = flagged_pages(rep, page_size)
    for p in range(addr // page_size, (addr + size - 1) // page_size + 1):
        if p * page_size in flagged:
            return flagged[p * page_size]
    return "ok"


@needs_dot
@pytest.mark.parametrize("cluster", ["map", "page"])
@pytest.mark.parametrize("path", DUMPS, ids=lambda p: p.name)
def test_every_fixture_renders_and_agrees_with_the_report(path, cluster, tmp_path):
    # GIVEN a fixture and its JSON report
    rep = report(path)
    heap = load_dump(path)
    a = analyze(heap)
    ps = heap.page_size
    # WHEN rendered to SVG
    out = tmp_path / "g.svg"
    run("render", path, "-o", out, "--cluster", cluster)
    ns = nodes(out)
    # THEN it parses, stays within the budget, and every object node is drawn as the report says
    assert 0 < len(ns) <= 300
    objs = {k: v for k, v in ns.items() if k.startswith("obj-")}
    assert len(objs) == rep["objects"]["count"]  # small fixtures: every object drawn one by one
    reach = {int(heap.obj_addr[i]): bool(a.reachable[i]) for i in range(heap.n_objects)}
    sizes = {int(heap.obj_addr[i]): int(heap.obj_size[i]) for i in range(heap.n_objects)}
    n_reach = bytes_reach = 0
    for nid, (cls, fill, stroke) in objs.items():
        addr = int(nid[4:], 16)
        state = "reachable" if reach[addr] else "unreachable"
        assert state in cls and fill == (REACHABLE_FILL if reach[addr] else UNREACHABLE_FILL), nid
        n_reach += reach[addr]
        bytes_reach += sizes[addr] * reach[addr]
        on = flagged_of(rep, ps, addr, sizes[addr])
        assert f"onpage-{on}" in cls, (nid, on)
        if on != "ok":
            assert stroke == CLASS_COLORS[on], nid
    assert (n_reach, bytes_reach) == (rep["objects"]["reachable"], rep["objects"]["reachable_bytes"])
    # and every page cluster's class agrees with the report's flagged pages
    flagged = flagged_pages(rep, ps)
    for cid, cls in clusters(out).items():
        m = re.fullmatch(r"pages-(0x[0-9a-f]+)-(\d+)", cid)
        if not m:
            continue
        (pclass,) = cls & set(CLASSES)
        first, n = int(m.group(1), 16), int(m.group(2))
        for page in range(first, first + n * ps, ps):
            if pclass in ("garbage", "idle", "lazyfree"):
                assert flagged.get(page) == pclass, (cid, hex(page))
            else:
                assert page not in flagged, (cid, hex(page))


@needs_dot
@pytest.mark.parametrize("max_nodes", [1, 2, 3, 5])
@pytest.mark.parametrize("path", [FIXTURES / "unreachable_cycle.json", FIXTURES / "map_growing_prealloc.json",
                                  FIXTURES / "multi_page_objects.json"], ids=lambda p: p.name)
def test_tiny_budgets_summarise_and_keep_colours(path, max_nodes, tmp_path):
    out = tmp_path / "g.svg"
    run("render", path, "-o", out, "--max-nodes", max_nodes)
    ns = nodes(out)
    assert 0 < len(ns) <= max_nodes
    for nid, (cls, fill, _) in ns.items():
        if "reachable" in cls:
            assert fill == REACHABLE_FILL, nid
        if "unreachable" in cls:
            assert fill == UNREACHABLE_FILL, nid


@pytest.fixture(scope="module")
def big_dump(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from render_bench import synth_dump
    finally:
        sys.path.pop(0)
    path = tmp_path_factory.mktemp("big") / "synth.jsonl"
    synth_dump(str(path), 20_000, nmaps=3)
    return path


@needs_dot
@pytest.mark.parametrize("cluster", ["map", "page"])
def test_big_dump_is_summarised_within_the_budget(big_dump, cluster, tmp_path):
    out = tmp_path / "g.svg"
    r = run("render", big_dump, "-o", out, "--max-nodes", 60, "--cluster", cluster)
    ns = nodes(out)
    assert len(ns) <= 60
    drawn, summarised = map(int, re.search(r"(\d+) objects drawn one by one, (\d+) summarised", r.stderr).groups())
    assert drawn + summarised == report(big_dump)["objects"]["count"]
    assert any(k.startswith("grp-") for k in ns)


@needs_dot
def test_focus_and_unreachable_only(tmp_path):
    path = FIXTURES / "unreachable_cycle.json"
    base = 0xC000000000
    out = tmp_path / "f.svg"
    # X [p1] -> Y -> Z -> X; Y -> Y; depth 1 around X: X, Y (X -> Y), Z (Z -> X)
    run("render", path, "-o", out, "--focus", f"{base + 0x1000:#x}", "--depth", 1)
    assert {k for k in nodes(out) if k.startswith("obj-")} == {
        f"obj-{base + 0x1000:#x}", f"obj-{base + 0x1800:#x}", f"obj-{base + 0x2000:#x}"}
    run("render", path, "-o", out, "--unreachable-only")
    ns = nodes(out)
    assert ns and all("unreachable" in cls for k, (cls, _, _) in ns.items() if k.startswith("obj-"))
    assert not any(k.startswith("root") for k in ns)


def test_dot_output_needs_no_graphviz_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot anywhere
    out = tmp_path / "g.dot"
    run("render", FIXTURES / "map_unreachable.json", "-o", out)
    assert out.read_text().startswith("digraph heap {")
    r = CliRunner().invoke(main, ["render", str(FIXTURES / "map_unreachable.json"), "-o", str(tmp_path / "g.svg")])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "dot" in r.stderr and "apt-get install graphviz" in r.stderr


@needs_dot
@pytest.mark.parametrize("ext, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_binary_formats(ext, magic, tmp_path):
    out = tmp_path / f"g{ext}"
    run("render", FIXTURES / "map_same_size_growth.json", "-o", out)
    assert out.read_bytes().startswith(magic)


@pytest.mark.parametrize("path", DUMPS, ids=lambda p: p.name)
def test_page_map_counts_every_page_by_class(path):
    a = analyze(load_dump(path))
    rep = report(path)
    root = ET.fromstring(pagemap_svg(a.pages))
    got = dict.fromkeys(CLASSES, 0)
    for g in root.iter(f"{SVG}g"):
        cls = (g.get("class") or "").split()
        if cls and cls[0] == "run":
            got[cls[1]] += int(g.get("data-pages"))
            assert all(r.get("fill") == CLASS_COLORS[cls[1]] for r in g.iter(f"{SVG}rect"))
    assert got == {c: rep["pages"][c] for c in CLASSES}


def test_page_map_of_a_huge_heap_is_scaled():
    # GIVEN a terabyte of released pages after one live page
    from gctrace.analysis.pages import PageClasses

    pc = PageClasses(4096, np.array([0, 1]), np.array([1, 1 << 28]), np.array([0, 3], np.int8),
                     np.array([True, True]), False)
    svg = pagemap_svg(pc, max_cells=1024)
    root = ET.fromstring(svg)
    rects = list(root.iter(f"{SVG}rect"))
    assert len(rects) < 100 and "pages, coloured by the class holding most of them" in svg


@pytest.mark.parametrize("path", DUMPS[:8], ids=lambda p: p.name)
def test_budget_is_a_hard_bound_for_every_size(path):
    from gctrace.analysis.render import RenderOptions, build_graph

    a = analyze(load_dump(path))
    for max_nodes in range(1, 12):
        for cluster in ("map", "page"):
            for unreachable_only in (False, True):
                g = build_graph(a, RenderOptions(max_nodes=max_nodes, cluster=cluster,
                                                 unreachable_only=unreachable_only))
                drawn = len(re.findall(r'\bid="?(?:obj|grp|more|root|roots)-', g.source))
                assert drawn == g.node_count <= max_nodes, (max_nodes, cluster, unreachable_only)


def test_a_swiss_maps_structure_is_its_cluster():
    # GIVEN a cleared Swiss map: header, directory, 3 tables, 3 groups arrays
    from gctrace.analysis.render import map_owner

    a = analyze(load_dump(FIXTURES / "swiss_cleared.json"))
    # THEN every one of its 8 objects is clustered with the map
    assert map_owner(a).tolist() == [0] * 8


def test_many_groups_arrays_become_one_counted_node(tmp_path):
    # GIVEN a real Go 1.26 map of 256 tables (fixtures/go/swisswalk)
    out = tmp_path / "g.dot"
    run("render", FIXTURES / "go" / "swisswalk" / "go1.26.6" / "mostlydeleted.json.gz", "-o", out)
    dot = out.read_text()
    # THEN a few tables and groups arrays are drawn, the other 252 of each are one node with their count
    assert "252 more swiss_groups" in dot and "252 more swiss_table" in dot
    assert dot.count("kind-swiss_groups") == 5  # 4 one by one + the counted node
