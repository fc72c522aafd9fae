"""Big outputs stay proportional to what there is to say: runs not pages, dumps without events, groups not columns."""

import json
import re

from click.testing import CliRunner

from dumps import BASE, PAGE
from gctrace.analysis.render import PER_GROUP
from gctrace.cli import main
from tracer_native import require_native


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_json_report_of_a_million_page_lazyfree_run_is_one_entry(write_dump):
    # GIVEN a live object on one page and a released, resident run of 2^20 pages after it
    n = 1 << 20
    dump = write_dump({
        "format": "gctrace.dump", "version": 1, "meta": {"page_size": PAGE, "ptr_size": 8},
        "objects": [{"addr": BASE, "size": 64, "kind": "other"}],
        "roots": [{"name": "main.a", "kind": "global", "target": BASE}],
        "pages": [{"addr": BASE, "n": 1, "resident": True, "state": "used"},
                  {"addr": BASE + PAGE, "n": n, "resident": True, "state": "released"}],
    })
    # WHEN the JSON report is written
    r = run("analyze", dump, "--json")
    assert r.exit_code == 0, r.output
    # THEN flagged is one run of 2^20 lazyfree pages, and the whole report is a few hundred bytes
    report = json.loads(r.stdout)
    assert report["flagged"] == [{"addr": BASE + PAGE, "n": n, "class": "lazyfree"}]
    assert report["pages"]["flagged"] == n
    assert len(r.stdout) < 4096  # one entry a page was 2^20 entries, ~70 MB


def test_record_no_events_writes_the_same_heap_without_the_log(tmp_path):
    require_native()
    # GIVEN the same scenario recorded with and without its event log
    full, bare = tmp_path / "full.jsonl", tmp_path / "bare.jsonl"
    for out, extra in ((full, []), (bare, ["--no-events"])):
        r = run("record", "fill-delete", "--n", "3000", "--madvise", "free", "-q", "-o", out, *extra)
        assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in bare.read_text().splitlines()]
    # THEN the bare dump has no event record and says so in its meta; the full one has thousands
    assert not [x for x in records if x.get("type") == "event"]
    assert records[0]["meta"]["events_recorded"] is False
    assert sum('"event"' in line for line in full.read_text().splitlines()) > 3000
    assert bare.stat().st_size * 5 < full.stat().st_size
    # AND the analysis is the same: objects, pages, flagged runs and maps
    reports = [json.loads(run("analyze", p, "--json").stdout) for p in (full, bare)]
    assert reports[0] == reports[1]
    # AND replay says why it has nothing to replay
    r = run("replay", bare, "-o", tmp_path / "t.svg")
    assert r.exit_code == 2 and "recorded with --no-events" in r.output


def test_focus_on_a_bucket_array_summarises_its_overflow_buckets(write_dump, tmp_path):
    # GIVEN a bucket array whose 300 buckets each chain one overflow bucket (identical boxes)
    arr, nb = BASE, 300
    ovf = [BASE + 0x10000 + 32 * i for i in range(nb)]
    dump = write_dump({
        "format": "gctrace.dump", "version": 1, "meta": {"page_size": PAGE, "ptr_size": 8},
        "objects": [{"addr": arr, "size": 32 * nb, "kind": "buckets",
                     "ptrs": [[32 * i + 24, o] for i, o in enumerate(ovf)]}]
                   + [{"addr": o, "size": 32, "kind": "overflow"} for o in ovf],
        "roots": [{"name": "main.b", "kind": "global", "target": arr}],
    })
    # WHEN the neighbourhood of the bucket array is drawn
    out = tmp_path / "f.dot"
    r = run("render", dump, "-o", out, "--focus", f"{arr:#x}", "--depth", "1")
    assert r.exit_code == 0, r.output
    # THEN the focus and a few overflow buckets are drawn one by one, the rest is one counted group
    shown, summarised = map(int, re.search(r"(\d+) objects drawn one by one, (\d+) summarised", r.output).groups())
    assert shown == 1 + PER_GROUP and summarised == nb - PER_GROUP
    assert f"{nb - PER_GROUP} more overflow" in out.read_text()
