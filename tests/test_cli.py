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
