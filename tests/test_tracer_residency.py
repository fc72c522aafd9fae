"""The scavenger has a real kernel effect, and the analyzer sees it.

After fill-delete + GC + scavenge the values' pages are released: under
MADV_DONTNEED they leave RAM at once (mincore: not resident), under MADV_FREE
they stay resident until memory pressure (smaps: LazyFree). The analyzer
classes them nonresident and lazyfree, and the two reports' flagged bytes
differ by the released bytes.
"""

import json
import subprocess
import sys

import pytest

from tracer_native import require_native

require_native()

from gctrace.tracer.native.scenarios import record_scenario  # noqa: E402

N = 40000


def analyze_json(path):
    out = subprocess.run([sys.executable, "-m", "gctrace", "analyze", "--json", str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def released_pages(path):
    """released_pages returns (resident, total) released OS pages in the dump's page runs."""
    res = tot = 0
    with open(path) as f:
        doc = json.load(f)
    for p in doc["pages"]:
        if p["state"] == "released":
            tot += p["n"]
            res += p["n"] if p["resident"] else 0
    return res, tot, doc["meta"]


@pytest.fixture(scope="module")
def dumps(tmp_path_factory):
    d = tmp_path_factory.mktemp("residency")
    out = {}
    for advice in ("dontneed", "free"):
        p = d / f"fd-{advice}.json"
        out[advice] = (p, record_scenario("fill-delete", p, n=N, madvise=advice, record=False))
    return out


def test_released_pages_leave_ram_under_dontneed(dumps):
    path, summary = dumps["dontneed"]
    res, tot, meta = released_pages(path)
    assert summary["released_bytes"] >= N * 64 * 0.9
    assert tot * meta["page_size"] == summary["released_bytes"]
    assert res == 0
    assert meta["madvise"] == "dontneed" and meta["arena_lazyfree_kb"] == 0


def test_released_pages_stay_resident_under_madv_free(dumps):
    path, summary = dumps["free"]
    res, tot, meta = released_pages(path)
    # (a released page the process never touched, e.g. the unused tail of a
    # preallocated bucket array, was never resident in the first place)
    assert tot > 0 and res >= 0.98 * tot
    assert meta["madvise"] == "free"
    # smaps agrees with mincore: the released bytes are LazyFree
    assert meta["arena_lazyfree_kb"] * 1024 >= 0.9 * summary["released_bytes"]


@pytest.mark.parametrize("advice", ["dontneed", "free"])
def test_pagemap_agrees_with_mincore(dumps, advice):
    path = dumps[advice][0]
    doc = json.loads(path.read_text())
    resident = sum(p["n"] for p in doc["pages"] if p["resident"])
    assert doc["meta"]["arena_pagemap_present"] == resident


def test_analyzer_classes_them_nonresident_and_lazyfree(dumps):
    dn = analyze_json(dumps["dontneed"][0])
    fr = analyze_json(dumps["free"][0])
    released = dumps["free"][1]["released_bytes"]
    page = 4096
    assert dn["residency"] == fr["residency"] == "measured"
    assert dn["pages"]["lazyfree"] == 0
    assert 0.98 * released <= fr["pages"]["lazyfree"] * page <= released
    assert dn["pages"]["nonresident"] - fr["pages"]["nonresident"] == fr["pages"]["lazyfree"]
    diff = fr["pages"]["flagged_bytes"] - dn["pages"]["flagged_bytes"]
    assert abs(diff - released) <= 0.05 * released


def test_the_emptied_map_keeps_its_buckets_live(dumps):
    doc = json.loads(dumps["dontneed"][0].read_text())
    (m,) = doc["maps"]
    assert m["count"] == 0 and m["B"] > 10  # Go maps never shrink
    report = analyze_json(dumps["dontneed"][0])
    (rm,) = report["maps"]
    assert rm["reachable"] and rm["buckets_bytes"] >= (1 << m["B"]) * 144
    assert rm["empty_bucket_bytes"] >= (1 << m["B"]) * 144
