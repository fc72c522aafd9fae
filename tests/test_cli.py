"""The CLI: exit codes, --fail-on, --all, -o and diff."""

import json

from click.testing import CliRunner

from dumps import BASE, FIXTURES, PAGE, dump_doc
from gctrace.cli import main

CLEARED = FIXTURES / "map_after_mapclear.json"  # 1 garbage page = 4096 flagged bytes
DELETED = FIXTURES / "map_emptied_by_deletes.json"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_fail_on_flagged_exits_1_above_the_threshold():
    assert run("analyze", CLEARED, "--fail-on", "flagged").exit_code == 1
    assert run("analyze", CLEARED, "--fail-on", "flagged:4096").exit_code == 0
    assert run("analyze", CLEARED, "--fail-on", "flagged:4095").exit_code == 1
    assert run("analyze", CLEARED, "--fail-on", "flagged:4KiB").exit_code == 0
    r = run("analyze", CLEARED, "--fail-on", "flagged")
    assert "flagged 4096 B exceeds --fail-on 0 B" in r.stderr


def test_bad_fail_on_is_a_usage_error():
    r = run("analyze", CLEARED, "--fail-on", "garbage:10")
    assert r.exit_code == 2 and r.stderr.startswith("gctrace: --fail-on")


def test_missing_file_is_one_line():
    r = run("analyze", "/nonexistent/dump.json")
    assert r.exit_code == 2
    assert r.stderr == "gctrace: /nonexistent/dump.json: cannot read: No such file or directory\n"


def test_all_lists_every_run_and_runs_limits(write_dump):
    # GIVEN 12 separate garbage pages
    objs = [{"addr": BASE + 2 * k * PAGE, "size": 8} for k in range(12)]
    p = write_dump(dump_doc(objs))
    short = run("analyze", p, "--runs", "3").stdout
    full = run("analyze", p, "--all").stdout
    assert "(12 runs, the largest 3 shown; --all lists every run)" in short
    assert full.count("garbage   other x1") == 12 and short.count("garbage   other x1") == 3


def test_output_file_is_written_whole(tmp_path):
    out = tmp_path / "r.json"
    assert run("analyze", CLEARED, "--json", "-o", out).exit_code == 0
    assert json.loads(out.read_text())["pages"]["garbage"] == 1


def test_output_is_not_touched_when_the_dump_is_bad(tmp_path):
    out = tmp_path / "r.txt"
    out.write_text("previous")
    r = run("analyze", FIXTURES / "bad" / "overlap.json", "-o", out)
    assert r.exit_code == 2 and out.read_text() == "previous"


def test_diff_mapclear_against_deletes():
    # GIVEN the two ways of emptying a map
    r = run("diff", DELETED, CLEARED, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    old = json.loads(run("analyze", DELETED, "--json").stdout)
    new = json.loads(run("analyze", CLEARED, "--json").stdout)
    # THEN every page delta is new - old of the two reports
    for cls in ("live", "garbage", "idle", "lazyfree", "untracked", "nonresident", "flagged"):
        assert d["pages"][cls] == {"old": old["pages"][cls], "new": new["pages"][cls],
                                   "delta": new["pages"][cls] - old["pages"][cls]}
    assert d["reachable"]["delta"] == new["objects"]["reachable"] - old["objects"]["reachable"]
    text = run("diff", DELETED, CLEARED).stdout
    assert "Reachable objects" in text and "map 0x" in text


def test_diff_objects_by_address(write_dump, tmp_path):
    a = write_dump(dump_doc([{"addr": BASE, "size": 8}, {"addr": BASE + 64, "size": 8}]), "a.json")
    b = write_dump(dump_doc([{"addr": BASE, "size": 16}, {"addr": BASE + 128, "size": 8}]), "b.json")
    d = json.loads(run("diff", a, b, "--json").stdout)
    assert d["objects"] == {"appeared": [BASE + 128], "disappeared": [BASE + 64], "resized": [BASE]}


def test_diff_fail_on_growth(write_dump):
    a = write_dump(dump_doc([]), "a.json")
    b = write_dump(dump_doc([{"addr": BASE, "size": 8}]), "b.json")
    assert run("diff", a, b, "--fail-on", "flagged").exit_code == 1
    assert run("diff", b, a, "--fail-on", "flagged").exit_code == 0


def test_why_top_diff_and_html_read_swiss_maps(tmp_path):
    deleted, cleared = FIXTURES / "swiss_deleted.json", FIXTURES / "swiss_cleared.json"
    # top: the Map header retains everything, and is marked as a map
    (first, second, *_) = json.loads(run("top", deleted, "--json").stdout)
    assert (first["addr"], first["kind"], first["retained_bytes"], first["map"]) == (BASE, "swiss_map", 704, True)
    assert (second["kind"], second["retained_bytes"]) == ("swiss_directory", 656)  # 16 + 64 + 576
    # why: a value is kept through the table and its groups array, which starts 8 B into its object
    r = run("why", FIXTURES / "swiss_malloc_header.json", f"{BASE + 0x810:#x}")
    assert r.exit_code == 0
    assert "(swiss_table, 32 B) [+0x10] = 0xc000000408" in r.stdout
    assert "(swiss_groups, 576 B) [+0x28] = 0xc000000810" in r.stdout
    # diff: a Swiss map's bytes by directory, tables and groups
    d = json.loads(run("diff", deleted, cleared, "--json").stdout)
    (m,) = d["maps"]
    assert m["delta"] == {"directory_bytes": 16, "tables_bytes": 32, "groups_bytes": 288, "count": 0}
    assert "directory 16 B -> 32 B, tables 64 B -> 96 B, groups 576 B -> 864 B" in run("diff", deleted, cleared).stdout
    # diff of a classic and a Swiss map at one address: both sides shown, no delta of unlike keys
    d = json.loads(run("diff", FIXTURES / "map_after_mapclear.json", deleted, "--json").stdout)
    assert "delta" not in d["maps"][0] and d["maps"][0]["old"] and d["maps"][0]["new"]
    # html: the map's heading, figures and diagnosis
    out = tmp_path / "r.html"
    assert run("analyze", cleared, "--html", out).exit_code == 0
    page = out.read_text()
    assert "(swiss): reachable, 3 tables, capacity 48, count 0" in page and "clear(m) ran (clear_seq 1)" in page
