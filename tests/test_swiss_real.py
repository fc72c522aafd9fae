"""Real Swiss maps of Go 1.24 to 1.27 load, and are diagnosed by their history.

The maps were read by the program itself through unsafe (fixtures/go/swisswalk).

These are the independent check of the Swiss rules: the maps come from Go's
runtime, not from anyone's idea of it, and the expected findings follow from
what each program did to its map.
"""

import pytest

from dumps import FIXTURES
from gctrace.analysis.analyze import analyze
from gctrace.analysis.load import load_dump
from gctrace.analysis.report import json_report

WALK = FIXTURES / "go" / "swisswalk"
VERSIONS = sorted(p.name for p in WALK.glob("go1.*"))

# history -> (count, directory length, tables, capacity, finding codes)
HISTORY = {
    "small": (5, 0, 0, 8, []),                    # one group, 8 slots
    "t16": (9, 1, 1, 16, []),                     # the 9th insert makes the first 16-slot table
    "split897": (897, 2, 2, 2048, []),            # 897 / 2048 = 44%: what a split leaves, no alarm
    "full10k": (10000, 16, 16, 16384, []),        # issue 12: 16 tables, 16,384 slots at 10,000
    "deleted10k": (0, 16, 16, 16384, ["tables_kept", "tombstones"]),
    "cleared10k": (0, 16, 16, 16384, ["cleared_tables_kept"]),
    "mostlydeleted": (50000, 256, 256, 262144, ["tombstones"]),  # 256 tables at 200,000; 19% full: not < 1/8
    "refilled": (5000, 16, 16, 16384, []),        # 31% full, tombstones under 10%
    "hinted": (0, 128, 128, 131072, ["tables_kept"]),  # make(map, 100000): 100000 * 8/7 -> 128 tables of 1024
}


def test_every_go_version_is_here():
    assert VERSIONS == ["go1.24.11", "go1.25.5", "go1.26.6", "go1.27.3"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("history", sorted(HISTORY))
def test_a_real_swiss_map_is_diagnosed_by_its_history(version, history):
    # GIVEN a map that Go built and the program read through unsafe
    heap = load_dump(WALK / version / f"{history}.json.gz")  # every invariant of the Swiss record holds
    # WHEN analyzed
    report = json_report(analyze(heap))
    (m,) = report["maps"]
    count, dir_len, tables, capacity, codes = HISTORY[history]
    # THEN its shape is Go's, its findings are the ones its history calls for, and the roots are caveated
    assert (m["count"], m["dir_len"], m["tables"], m["capacity"]) == (count, dir_len, tables, capacity)
    assert [f["code"] for f in m["findings"]] == codes
    assert report["notes"] == [{"code": "roots_missing", "go_version": version}]
    if history == "cleared10k":
        assert m["tombstones"] == 0 and m["empty_slots"] == capacity
    if "tombstones" in codes:
        (t,) = [f for f in m["findings"] if f["code"] == "tombstones"]
        # Go: growth_left = capacity * 7/8 - used - tombstones, so the room lost is exactly the tombstones
        assert t["growth_room_lost"] == t["count"] == m["tombstones"]
