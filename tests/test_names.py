"""Names over addresses: the HTML page, the graph, top and why call a map, a root and a page what the text report does."""

import json
import re

from click.testing import CliRunner

from dumps import BASE, FIXTURES, PAGE
from gctrace.cli import main

Q, S, L = BASE, BASE + 0x100, BASE + 0x400  # a healthy map, a small and a large unreachable one
SB, LB = BASE + 0x200, BASE + 0x800  # their bucket arrays: 2 and 32 buckets of 32 B


def three_maps(write_dump):
    """three_maps writes a heap whose maps, in address order, are the healthy one, then garbage of 64 B and 1 KiB."""
    return write_dump({
        "format": "gctrace.dump", "version": 1,
        "meta": {"page_size": PAGE, "ptr_size": 8, "source": "synthetic"},
        "objects": [
            {"addr": Q, "size": 48, "kind": "hmap", "type": "map[int64]int64"},
            {"addr": S, "size": 48, "kind": "hmap", "ptrs": [[16, SB]]},
            {"addr": SB, "size": 64, "kind": "buckets", "slots": [0, 0]},
            {"addr": L, "size": 48, "kind": "hmap", "ptrs": [[16, LB]]},
            {"addr": LB, "size": 1024, "kind": "buckets", "slots": [0] * 32},
        ],
        "roots": [{"name": "main.q", "kind": "global", "target": Q}],
        "pages": [{"addr": BASE, "n": 1, "resident": True, "state": "used"}],
        "maps": [
            {"hmap": Q, "B": 0, "count": 0, "buckets": 0, "oldbuckets": 0, "nevacuate": 0, "bucketsize": 32,
             "name": "runtime.quiet"},
            {"hmap": S, "B": 1, "count": 0, "buckets": SB, "oldbuckets": 0, "nevacuate": 0, "bucketsize": 32,
             "name": "main.small"},
            {"hmap": L, "B": 5, "count": 0, "buckets": LB, "oldbuckets": 0, "nevacuate": 0, "bucketsize": 32,
             "name": "main.large"},
        ],
    })


def run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r


def test_the_text_report_names_the_maps(write_dump):
    # GIVEN the dump WHEN analyzed as text THEN the maps have their names (the reference for the other outputs)
    r = run("analyze", three_maps(write_dump))
    assert r.exit_code == 0, r.output
    assert f"map main.large ({L:#x}): UNREACHABLE" in r.stdout
    assert "with nothing to reclaim, live and in use: runtime.quiet (B=0, count 0)" in r.stdout


def test_html_names_maps_sorts_by_reclaimable_bytes_and_collapses_healthy_ones(write_dump, tmp_path):
    out = tmp_path / "r.html"
    r = run("analyze", three_maps(write_dump), "--html", out, "-o", tmp_path / "r.txt")
    assert r.exit_code == 0, r.output
    maps = out.read_text().split('<h2 id="maps">')[1].split('<h2 id="heap">')[0]
    # THEN the cards are the two maps with something to reclaim, the 1 KiB one first, by name
    cards = re.findall(r'<div class="map [a-z]+" id="map-report-(0x[0-9a-f]+)"><h3>map ([^<]*)<', maps)
    assert cards == [(f"{L:#x}", "main.large "), (f"{S:#x}", "main.small ")]
    # AND the healthy map is one row of a collapsed list after them, not a card
    details = maps.split("<details", 1)[1]
    assert maps.index("<details") > maps.index(f"map-report-{S:#x}")
    assert "1 map with nothing to reclaim" in details and f"runtime.quiet ({Q:#x})" in details
    assert f'<div class="map reachable" id="map-report-{Q:#x}"' not in maps


def test_the_graph_names_the_map_clusters_and_hmaps(write_dump, tmp_path):
    out = tmp_path / "g.dot"
    r = run("render", three_maps(write_dump), "-o", out)
    assert r.exit_code == 0, r.output
    dot = out.read_text()
    assert f"map main.large ({L:#x}): B=5" in dot
    # the hmap node says which map it is
    assert re.search(r'label="map main\.large\\n0xc000000400', dot), dot


def test_top_names_the_map_its_type_and_root(write_dump):
    r = run("top", three_maps(write_dump), "-n", "1")
    assert r.exit_code == 0, r.output
    assert f"{Q:#x} (hmap, map[int64]int64): map runtime.quiet, B=0, count 0, root main.q" in r.stdout
    (e,) = json.loads(run("top", three_maps(write_dump), "-n", "1", "--json").stdout)
    assert (e["map_name"], e["type"], e["roots"], e["B"], e["count"]) == ("runtime.quiet", "map[int64]int64",
                                                                          ["main.q"], 0, 0)


def test_why_accepts_a_root_name():
    # GIVEN the golden dump whose root main.m holds the map WHEN why is asked by name
    by_name = run("why", FIXTURES / "map_growing_prealloc.json", "main.m")
    by_addr = run("why", FIXTURES / "map_growing_prealloc.json", "0xc000000000")
    # THEN it explains the root's target exactly as when asked by its address
    assert by_name.exit_code == 0, by_name.output
    assert by_name.stdout == by_addr.stdout
    assert "root main.m (global) = 0xc000000000" in by_name.stdout


def test_why_of_an_unknown_name_is_one_line_naming_the_roots():
    r = run("why", FIXTURES / "map_growing_prealloc.json", "main.nope")
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        f"gctrace: {FIXTURES / 'map_growing_prealloc.json'}: 'main.nope' is not an address "
        "(hex like 0xc000010000, or decimal) and not a root (main.m)"]


def test_why_of_a_flagged_page_address_explains_the_page_and_its_run():
    # GIVEN an address from the golden report's own Flagged pages table: the idle run 0xc000001000-0xc000002000
    dump = FIXTURES / "external_pointers.json"
    golden = (FIXTURES / "external_pointers.report.txt").read_text()
    row = next(line for line in golden.splitlines() if "idle" in line and line.startswith("  0x"))
    # WHEN why is asked about an address in the middle of that run
    r = run("why", dump, "0xc000001800")
    # THEN it succeeds and gives the page, the run exactly as the report lists it, and its class
    assert r.exit_code == 0, r.output
    assert "0xc000001800 is inside no object of the dump. It is on page 0xc000001000" in r.stdout
    assert row in r.stdout.splitlines()
    assert "idle: resident, free in the allocator (flagged)" in r.stdout


def test_why_outside_every_page_is_still_bad_input():
    r = run("why", FIXTURES / "external_pointers.json", "0xd000000000")
    assert r.exit_code == 2 and "inside no object of the dump and on no page of it" in r.output
