"""Hand-computed answers for the hand-built dumps in fixtures/.

Every expected number below was worked out by hand from docs/dump-format.md
alone, while the analyzer was being written by someone else, and never
copied from its output: these tests are the independent check of
``gctrace analyze``.
The comment beside each number shows the arithmetic; fixtures/README.md draws
each heap and lists the readings of the spec that the answers rest on.

Addresses: page k of a 4 KiB fixture is ``0xc000000000 + k * 0x1000``.

The report may grow keys ("more may be added"), so each test compares the
keys the spec fixes, all of them, and nothing else. The spec does not fix the
order of ``maps``; both sides are compared sorted by ``hmap``.
"""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gctrace.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

OBJECT_KEYS = ("count", "bytes", "reachable", "reachable_bytes", "unreachable",
               "unreachable_bytes", "external_ptrs")
PAGE_KEYS = ("total", "live", "garbage", "idle", "lazyfree", "untracked", "nonresident",
             "flagged", "flagged_bytes")
MAP_KEYS = ("hmap", "reachable", "B", "count", "growing", "buckets_bytes", "oldbuckets_bytes",
            "overflow_count", "overflow_bytes", "max_chain", "empty_bucket_bytes")
# A Swiss map's entry (docs/dump-format.md, "Swiss-table maps" and the JSON report), findings included.
SWISS_MAP_KEYS = ("hmap", "impl", "reachable", "count", "capacity", "dir_len", "tables", "directory_bytes",
                  "tables_bytes", "groups_bytes", "tombstones", "empty_slots", "empty_slot_bytes",
                  "retained_bytes", "findings")
MISSING = "<missing>"


def analyze(name):
    """analyze runs ``gctrace analyze --json`` in-process on a fixture and returns the report."""
    r = CliRunner().invoke(main, ["analyze", "--json", str(FIXTURES / name)])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def flagged_pages(report):
    """flagged_pages expands the report's flagged runs back to one entry a page, as the hand answers list them.

    The page size is the report's own flagged_bytes / flagged, independent of the
    runs; the runs must be in address order, apart, and add up to pages.flagged.
    """
    runs, pages = report["flagged"], report["pages"]
    assert sum(r["n"] for r in runs) == pages["flagged"]
    if not runs:
        return []
    ps = pages["flagged_bytes"] // pages["flagged"]
    assert all(r["n"] >= 1 for r in runs)
    assert all(a["addr"] + a["n"] * ps <= b["addr"] for a, b in zip(runs, runs[1:])), "runs overlap or are unsorted"
    # maximal: two touching runs of one class would be one run
    assert not any(a["addr"] + a["n"] * ps == b["addr"] and a["class"] == b["class"] for a, b in zip(runs, runs[1:]))
    return [{"addr": r["addr"] + i * ps, "class": r["class"]} for r in runs for i in range(r["n"])]


def analyze_text(name):
    """analyze_text runs ``gctrace analyze`` in-process on a fixture and returns the text report."""
    r = CliRunner().invoke(main, ["analyze", "--all", str(FIXTURES / name)])
    assert r.exit_code == 0, r.output
    return r.stdout


def spec_view(report):
    """spec_view keeps exactly the report keys that the spec fixes, maps sorted by hmap, flagged runs as pages."""
    assert "barrier" not in report, "barrier is present only with --barrier"
    pick = lambda d, keys: {k: d.get(k, MISSING) for k in keys}  # noqa: E731
    return {
        "format": report.get("format", MISSING),
        "version": report.get("version", MISSING),
        "residency": report.get("residency", MISSING),
        "objects": pick(report["objects"], OBJECT_KEYS),
        "pages": pick(report["pages"], PAGE_KEYS),
        "flagged": flagged_pages(report),
        "maps": sorted((pick(m, SWISS_MAP_KEYS if m.get("impl") == "swiss" else MAP_KEYS) for m in report["maps"]),
                       key=lambda m: m["hmap"]),
        **({"notes": report["notes"]} if "notes" in report else {}),
    }


def no_waste_pages(total, live):
    """no_waste_pages is the pages section of a dump whose pages are all live."""
    assert total == live
    return {"total": total, "live": live, "garbage": 0, "idle": 0, "lazyfree": 0,
            "untracked": 0, "nonresident": 0, "flagged": 0, "flagged_bytes": 0}


def test_interior_pointers():
    # GIVEN a root into the middle of A, A -> middle of B, B -> last byte of D, and E -> A
    #       with nothing pointing at E
    # WHEN analyzed
    report = spec_view(analyze("interior_pointers.json"))
    # THEN interior targets count as pointers to their objects; only E is garbage
    assert report == {
        "format": "gctrace.report", "version": 2,
        "residency": "measured",  # the dump has pages
        "objects": {
            "count": 4,                          # A, B, D, E
            "bytes": 288,                        # 64 + 128 + 32 + 64
            "reachable": 3,                      # A (root -> A+0x20), B (A+8 -> B+0x10), D (B -> D+0x1f)
            "reachable_bytes": 224,              # 64 + 128 + 32
            "unreachable": 1,                    # E: its pointer into A does not make E reachable
            "unreachable_bytes": 64,
            "external_ptrs": 0,                  # A+8 lies inside A: E's field is internal
        },
        "pages": {
            "total": 3,                          # one run of 3 pages
            "live": 2,                           # page 0 (A, B), page 1 (D)
            "garbage": 1,                        # page 2 (E only)
            "idle": 0, "lazyfree": 0, "untracked": 0, "nonresident": 0,
            "flagged": 1,                        # garbage 1
            "flagged_bytes": 1 * 4096,
        },
        "flagged": [{"addr": 0xc000002000, "class": "garbage"}],
        "maps": [],
    }


def test_external_pointers():
    # GIVEN fields pointing at libc, one byte past the end of A, and into a free page,
    #       an external root, a root into the free page, a nil root
    # WHEN analyzed
    report = spec_view(analyze("external_pointers.json"))
    # THEN external fields are counted (in every object) and followed nowhere; roots are not counted
    assert report == {
        "format": "gctrace.report", "version": 2,
        "residency": "measured",
        "objects": {
            "count": 3,                          # A, B, C
            "bytes": 144,                        # 64 + 32 + 48
            "reachable": 2,                      # A (root main.a), B (A+0 -> B)
            "reachable_bytes": 96,               # 64 + 32
            "unreachable": 1,                    # C: only main.env/main.stale/main.err could reach, none do
            "unreachable_bytes": 48,
            "external_ptrs": 4,                  # A+8 -> libc, A+16 -> A+0x40 (one past A, a gap),
                                                 # B+0 -> page 1 + 0x80 (free page), C+0 -> libc
        },
        "pages": {
            "total": 3,
            "live": 1,                           # page 0 (A, B)
            "garbage": 1,                        # page 2 (C)
            "idle": 1,                           # page 1: free, resident, no object (main.stale is no object)
            "lazyfree": 0, "untracked": 0, "nonresident": 0,
            "flagged": 2,                        # garbage 1 + idle 1
            "flagged_bytes": 2 * 4096,
        },
        "flagged": [
            {"addr": 0xc000001000, "class": "idle"},
            {"addr": 0xc000002000, "class": "garbage"},
        ],
        "maps": [],
    }


def test_unreachable_cycle():
    # GIVEN a rooted 2-cycle R <-> R2, an unrooted 3-cycle X -> Y -> Z -> X (Y also -> Y),
    #       and an unrooted 2-cycle U <-> V with V -> R
    # WHEN analyzed
    report = spec_view(analyze("unreachable_cycle.json"))
    # THEN cycles keep nothing alive: X, Y, Z, U, V are garbage
    assert report == {
        "format": "gctrace.report", "version": 2,
        "residency": "measured",
        "objects": {
            "count": 7,                          # R, R2, X, Y, Z, U, V
            "bytes": 3744,                       # 16 + 16 + 512 + 1024 + 2048 + 64 + 64
            "reachable": 2,                      # R, R2
            "reachable_bytes": 32,               # 16 + 16
            "unreachable": 5,                    # X, Y, Z, U, V
            "unreachable_bytes": 3712,           # 512 + 1024 + 2048 + 64 + 64
            "external_ptrs": 0,                  # every target lies in an object (Z+0x10 inside Z)
        },
        "pages": {
            "total": 4,
            "live": 1,                           # page 0 (R, R2)
            "garbage": 3,                        # page 1 (X, Y), page 2 (Z), page 3 (U, V)
            "idle": 0, "lazyfree": 0, "untracked": 0, "nonresident": 0,
            "flagged": 3,
            "flagged_bytes": 3 * 4096,
        },
        "flagged": [
            {"addr": 0xc000001000, "class": "garbage"},
            {"addr": 0xc000002000, "class": "garbage"},
            {"addr": 0xc000003000, "class": "garbage"},
        ],
        "maps": [],
    }


def test_multi_page_objects():
    # GIVEN L = exactly pages 0-2 (rooted through L+0x1800), S straddling pages 3|4,
    #       unrooted U (8 KiB from page 5.5 to 7.5), E ending exactly at page 9, page 9 used but empty
    # WHEN analyzed
    report = spec_view(analyze("multi_page_objects.json"))
    # THEN an object touches every page overlapping [addr, addr+size) and no more
    assert report == {
        "format": "gctrace.report", "version": 2,
        "residency": "measured",
        "objects": {
            "count": 5,                          # L, S, G, U, E
            "bytes": 20928,                      # 12288 + 128 + 64 + 8192 + 256
            "reachable": 2,                      # L (root interior), S (L+0x2ff8 -> S)
            "reachable_bytes": 12416,            # 12288 + 128
            "unreachable": 3,                    # G, U, E
            "unreachable_bytes": 8512,           # 64 + 8192 + 256
            "external_ptrs": 0,
        },
        "pages": {
            "total": 10,                         # one run of 10 pages
            "live": 5,                           # pages 0,1,2 (L), 3,4 (S; G on 4 too)
            "garbage": 4,                        # pages 5,6,7 (U: 0x5800..0x7800), 8 (E: 0x8f00..0x9000)
            "idle": 0, "lazyfree": 0,
            "untracked": 1,                      # page 9: used, resident, E ends at its first byte
            "nonresident": 0,
            "flagged": 4,                        # garbage 4
            "flagged_bytes": 4 * 4096,
        },
        "flagged": [
            {"addr": 0xc000005000, "class": "garbage"},
            {"addr": 0xc000006000, "class": "garbage"},
            {"addr": 0xc000007000, "class": "garbage"},
            {"addr": 0xc000008000, "class": "garbage"},
        ],
        "maps": [],
    }


def test_page_states():
    # GIVEN 13 pages in runs of every state x residency (listed out of order, some without "n"),
    #       a reachable B on a non-resident page, an unreachable C on a non-resident page
    # WHEN analyzed
    report = spec_view(analyze("page_states.json"))
    # THEN live wins regardless of residency; every other class needs the page resident
    assert report == {
        "format": "gctrace.report", "version": 2,
        "residency": "measured",
        "objects": {
            "count": 4,                          # A, B, C, D
            "bytes": 1376,                       # 64 + 256 + 1024 + 32
            "reachable": 2,                      # A (root), B (A -> B)
            "reachable_bytes": 320,              # 64 + 256
            "unreachable": 2,                    # C, D
            "unreachable_bytes": 1056,           # 1024 + 32
            "external_ptrs": 0,
        },
        "pages": {
            "total": 13,                         # 1+1+2+1+2+1+3+1+1 (pages 0..12)
            "live": 2,                           # page 0 (A), page 1 (B, not resident)
            "garbage": 1,                        # page 3 (D)
            "idle": 2,                           # pages 4, 5: free, resident
            "lazyfree": 3,                       # pages 7, 8, 9: released, resident
            "untracked": 1,                      # page 11: used, resident, no object
            "nonresident": 4,                    # page 2 (C only), 6 (free), 10 (released), 12 (used)
            "flagged": 6,                        # garbage 1 + idle 2 + lazyfree 3
            "flagged_bytes": 6 * 4096,
        },
        "flagged": [
            {"addr": 0xc000003000, "class": "garbage"},
            {"addr": 0xc000004000, "class": "idle"},
            {"addr": 0xc000005000, "class": "idle"},
            {"addr": 0xc000007000, "class": "lazyfree"},
            {"addr": 0xc000008000, "class": "lazyfree"},
            {"addr": 0xc000009000, "class": "lazyfree"},
        ],
        "maps": [],
    }


def test_page_states_flagged_runs():
    # GIVEN the same dump WHEN analyzed THEN the JSON report lists the flagged pages as maximal runs of one class
    assert analyze("page_states.json")["flagged"] == [
        {"addr": 0xc000003000, "n": 1, "class": "garbage"},   # page 3
        {"addr": 0xc000004000, "n": 2, "class": "idle"},      # pages 4, 5
        {"addr": 0xc000007000, "n": 3, "class": "lazyfree"},  # pages 7, 8, 9
    ]


def test_map_growing_prealloc():
    # GIVEN a doubling growth B=4 (bucketsize 32): 16 buckets + 1 preallocated tail bucket,
    #       8 old buckets with nevacuate 3; chains new[2] -> tail[16] -> OV1 and old[5] -> OV2
    # WHEN analyzed
    report = spec_view(analyze("map_growing_prealloc.json"))
    # THEN the tail bucket lengthens the chain but is no overflow object
    assert report == {
        "format": "gctrace.report", "version": 2,
        "residency": "measured",
        "objects": {
            "count": 5,                          # hmap, buckets, oldbuckets, OV1, OV2
            "bytes": 912,                        # 48 + 17*32 + 8*32 + 32 + 32
            "reachable": 5,                      # root -> hmap -> both arrays -> OV1 (tail field), OV2
            "reachable_bytes": 912,
            "unreachable": 0, "unreachable_bytes": 0,
            "external_ptrs": 0,                  # buckets+88 -> buckets+0x200 lies in the array itself
        },
        "pages": no_waste_pages(total=1, live=1),
        "flagged": [],
        "maps": [{
            "hmap": 0xc000000000,
            "reachable": True,
            "B": 4,
            "count": 47,                         # header value (26 + 3 new side, 16 + 2 old side)
            "growing": True,                     # oldbuckets != 0
            "buckets_bytes": 544,                # 17 * 32: the whole array, tail included
            "oldbuckets_bytes": 256,             # 8 * 32
            "overflow_count": 2,                 # OV1, OV2 (tail[16] is part of the array, not overflow)
            "overflow_bytes": 64,                # 2 * 32
            "max_chain": 2,                      # new[2] -> tail[16] -> OV1; old[5] -> OV2 is 1
            "empty_bucket_bytes": 480,           # 32 * (11 new primaries 3,4,5,6,7,9,11..15
                                                 #       + 4 old primaries 0,1,2 (evacuated), 6)
        }],
    }


MAPCLEAR_REPORT = {
    "format": "gctrace.report", "version": 2,
    "residency": "measured",
    "objects": {
        "count": 4,                              # hmap, buckets, OVa, OVb
        "bytes": 656,                            # 48 + 17*32 + 32 + 32
        "reachable": 2,                          # hmap, buckets (zeroed: no overflow fields left)
        "reachable_bytes": 592,                  # 48 + 544
        "unreachable": 2,                        # OVa -> OVb, cut off by mapclear
        "unreachable_bytes": 64,                 # 32 + 32
        "external_ptrs": 0,
    },
    "pages": {
        "total": 2,
        "live": 1,                               # page 0 (hmap, buckets)
        "garbage": 1,                            # page 1 (OVa, OVb)
        "idle": 0, "lazyfree": 0, "untracked": 0, "nonresident": 0,
        "flagged": 1,
        "flagged_bytes": 1 * 4096,
    },
    "flagged": [{"addr": 0xc000001000, "class": "garbage"}],
    "maps": [{
        "hmap": 0xc000000000,
        "reachable": True,
        "B": 4,
        "count": 0,
        "growing": False,                        # oldbuckets 0
        "buckets_bytes": 544,                    # 17 * 32, kept by mapclear
        "oldbuckets_bytes": 0,
        "overflow_count": 0,                     # OVa, OVb are on no chain any more
        "overflow_bytes": 0,
        "max_chain": 0,
        "empty_bucket_bytes": 512,               # 16 primaries * 32; the empty tail[16] is on no chain
    }],
}


@pytest.mark.parametrize("name", [
    "map_after_mapclear.json",
    "map_after_mapclear_lines.jsonl",            # JSON Lines twin, records shuffled
    "map_after_mapclear_gz.json.gz",             # gzipped document twin
    "map_after_mapclear_lines_gz.jsonl.gz",      # gzipped JSON Lines twin
])
def test_map_after_mapclear(name):
    # GIVEN a B=4 map after mapclear: same bucket array all zero, count 0, old overflow buckets dropped
    # WHEN analyzed, in any of the four encodings of the same records
    report = spec_view(analyze(name))
    # THEN the array stays live and empty, the former overflow buckets are garbage
    assert report == MAPCLEAR_REPORT


def test_map_emptied_by_deletes():
    # GIVEN the same B=4 map emptied by deleting every key: chains bucket[0] -> tail[16] -> OVa -> OVb
    #       and bucket[7] -> OVc still in place, every slot 0
    # WHEN analyzed
    report = spec_view(analyze("map_emptied_by_deletes.json"))
    # THEN nothing is garbage: every empty bucket stays live (the contrast to mapclear)
    assert report == {
        "format": "gctrace.report", "version": 2,
        "residency": "measured",
        "objects": {
            "count": 5,                          # hmap, buckets, OVa, OVb, OVc
            "bytes": 688,                        # 48 + 544 + 3*32
            "reachable": 5,
            "reachable_bytes": 688,
            "unreachable": 0, "unreachable_bytes": 0,
            "external_ptrs": 0,
        },
        "pages": no_waste_pages(total=2, live=2),
        "flagged": [],
        "maps": [{
            "hmap": 0xc000000000,
            "reachable": True,
            "B": 4,
            "count": 0,
            "growing": False,
            "buckets_bytes": 544,                # 17 * 32
            "oldbuckets_bytes": 0,
            "overflow_count": 3,                 # OVa, OVb, OVc
            "overflow_bytes": 96,                # 3 * 32
            "max_chain": 3,                      # bucket[0] -> tail[16] -> OVa -> OVb
            "empty_bucket_bytes": 640,           # 32 * (16 primaries + tail[16] + OVa + OVb + OVc)
        }],
    }


def test_no_pages_assumed():
    # GIVEN no pages section (and no ptr_size, no kind on some objects, no slots anywhere),
    #       objects on pages 0, 2|3 (B straddles) and 5-6 (C), nothing on pages 1 and 4
    # WHEN analyzed
    report = spec_view(analyze("no_pages_assumed.json"))
    # THEN only touched pages exist, all resident and used; empty_bucket_bytes is null
    assert report == {
        "format": "gctrace.report", "version": 2,
        "residency": "assumed",                  # no pages
        "objects": {
            "count": 5,                          # A, hmap, buckets, B, C
            "bytes": 8448,                       # 32 + 48 + 144 + 32 + 8192
            "reachable": 4,                      # A (stack root), C (A+8 -> C+0x1000), hmap (A+16), buckets
            "reachable_bytes": 8416,             # 32 + 8192 + 48 + 144
            "unreachable": 1,                    # B
            "unreachable_bytes": 32,
            "external_ptrs": 0,
        },
        "pages": {
            "total": 5,                          # touched: 0, 2, 3, 5, 6 (1 and 4 are not heap pages)
            "live": 3,                           # 0 (A, hmap, buckets), 5, 6 (C)
            "garbage": 2,                        # 2, 3 (B: 0x2ff0..0x3010)
            "idle": 0, "lazyfree": 0, "untracked": 0, "nonresident": 0,
            "flagged": 2,
            "flagged_bytes": 2 * 4096,
        },
        "flagged": [
            {"addr": 0xc000002000, "class": "garbage"},
            {"addr": 0xc000003000, "class": "garbage"},
        ],
        "maps": [{
            "hmap": 0xc000000100,
            "reachable": True,
            "B": 0,
            "count": 3,
            "growing": False,
            "buckets_bytes": 144,                # one Go map[int]int bucket: 8 + 8*8 + 8*8 + 8
            "oldbuckets_bytes": 0,
            "overflow_count": 0,
            "overflow_bytes": 0,
            "max_chain": 0,
            "empty_bucket_bytes": None,          # the dump has no slots
        }],
    }


def test_map_same_size_growth():
    # GIVEN a same-size growth (flags 10 = 8|2) at B=2: 4 new and 4 old buckets, nevacuate 1,
    #       chains old[1] -> OVc and old[3] -> OVa -> OVb
    # WHEN analyzed
    report = spec_view(analyze("map_same_size_growth.json"))
    # THEN all 2^B = 4 old buckets are primary (not 2^(B-1) = 2)
    assert report == {
        "format": "gctrace.report", "version": 2,
        "residency": "measured",
        "objects": {
            "count": 6,                          # hmap, buckets, oldbuckets, OVa, OVb, OVc
            "bytes": 400,                        # 48 + 128 + 128 + 3*32
            "reachable": 6,
            "reachable_bytes": 400,
            "unreachable": 0, "unreachable_bytes": 0,
            "external_ptrs": 0,
        },
        "pages": no_waste_pages(total=2, live=2),
        "flagged": [],
        "maps": [{
            "hmap": 0xc000000000,
            "reachable": True,
            "B": 2,
            "count": 26,                         # header value (3 new + 5+2 + 8+8 old side)
            "growing": True,
            "buckets_bytes": 128,                # 4 * 32
            "oldbuckets_bytes": 128,             # 4 * 32: same size
            "overflow_count": 3,                 # OVa, OVb (old[3]), OVc (old[1])
            "overflow_bytes": 96,                # 3 * 32
            "max_chain": 2,                      # old[3] -> OVa -> OVb
            "empty_bucket_bytes": 192,           # 32 * (new 1,2,3 + old 0 (evacuated), 2 + OVb)
        }],
    }


def test_map_unreachable():
    # GIVEN an unrooted B=1 map with one overflow bucket, and a rooted map never written (buckets nil)
    # WHEN analyzed
    report = spec_view(analyze("map_unreachable.json"))
    # THEN the unrooted map is reported with reachable false and its waste still measured
    assert report == {
        "format": "gctrace.report", "version": 2,
        "residency": "measured",
        "objects": {
            "count": 4,                          # H2, buckets2, OV, H1
            "bytes": 192,                        # 48 + 64 + 32 + 48
            "reachable": 1,                      # H1 (root main.live)
            "reachable_bytes": 48,
            "unreachable": 3,                    # H2, buckets2, OV
            "unreachable_bytes": 144,            # 48 + 64 + 32
            "external_ptrs": 0,
        },
        "pages": {
            "total": 2,
            "live": 1,                           # page 1 (H1)
            "garbage": 1,                        # page 0 (H2, buckets2, OV)
            "idle": 0, "lazyfree": 0, "untracked": 0, "nonresident": 0,
            "flagged": 1,
            "flagged_bytes": 1 * 4096,
        },
        "flagged": [{"addr": 0xc000000000, "class": "garbage"}],
        "maps": [
            {
                "hmap": 0xc000000000,            # H2
                "reachable": False,
                "B": 1,
                "count": 2,
                "growing": False,
                "buckets_bytes": 64,             # 2 * 32
                "oldbuckets_bytes": 0,
                "overflow_count": 1,             # bucket[0] -> OV
                "overflow_bytes": 32,
                "max_chain": 1,
                "empty_bucket_bytes": 32,        # bucket[1] (slots [1, 0]); OV holds 1
            },
            {
                "hmap": 0xc000001000,            # H1: make(map) never written, B 0, buckets nil
                "reachable": True,
                "B": 0,
                "count": 0,
                "growing": False,
                "buckets_bytes": 0,              # nil
                "oldbuckets_bytes": 0,
                "overflow_count": 0,
                "overflow_bytes": 0,
                "max_chain": 0,
                "empty_bucket_bytes": 0,         # no buckets at all; the dump does have slots
            },
        ],
    }


def test_pages_16k():
    # GIVEN page_size 16384: A straddles the 16K boundary 0x4000, B crosses a 4K line (0x9000)
    #       inside one 16K page; then a free, a released and a used empty page, all resident
    # WHEN analyzed
    report = spec_view(analyze("pages_16k.json"))
    # THEN pages and flagged_bytes are in 16 KiB units
    assert report == {
        "format": "gctrace.report", "version": 2,
        "residency": "measured",
        "objects": {
            "count": 2, "bytes": 64,             # 32 + 32
            "reachable": 1, "reachable_bytes": 32,   # A
            "unreachable": 1, "unreachable_bytes": 32,  # B
            "external_ptrs": 0,
        },
        "pages": {
            "total": 6,                          # 2 + 1 + 1 + 1 + 1
            "live": 2,                           # pages 0, 1 (A: 0x3ff0..0x4010)
            "garbage": 1,                        # page 2 (B: 0x8ff0..0x9010, one 16K page)
            "idle": 1,                           # page 3 free
            "lazyfree": 1,                       # page 4 released, resident
            "untracked": 1,                      # page 5 used, empty
            "nonresident": 0,
            "flagged": 3,                        # 1 + 1 + 1
            "flagged_bytes": 3 * 16384,
        },
        "flagged": [
            {"addr": 0x4000008000, "class": "garbage"},
            {"addr": 0x400000c000, "class": "idle"},
            {"addr": 0x4000010000, "class": "lazyfree"},
        ],
        "maps": [],
    }


def test_map_ptr4():
    # GIVEN ptr_size 4 and bucketsize 76 (8 tophash + 8*4 keys + 8*4 elems + 4 overflow):
    #       overflow fields at b+72; bucket[0] has an elem pointer at b+68 (where b+76-8 would look)
    # WHEN analyzed
    report = spec_view(analyze("map_ptr4.json"))
    # THEN chains follow b + bucketsize - ptr_size: bucket[1] -> O1 -> O2, bucket[0] has none
    assert report == {
        "format": "gctrace.report", "version": 2,
        "residency": "measured",
        "objects": {
            "count": 5,                          # hmap, buckets, O1, O2, value
            "bytes": 352,                        # 32 + 2*76 + 76 + 76 + 16
            "reachable": 5,
            "reachable_bytes": 352,
            "unreachable": 0, "unreachable_bytes": 0,
            "external_ptrs": 0,
        },
        "pages": no_waste_pages(total=1, live=1),
        "flagged": [],
        "maps": [{
            "hmap": 0x10000000,
            "reachable": True,
            "B": 1,
            "count": 19,                         # header value (8 + 3 + 8 + 0)
            "growing": False,
            "buckets_bytes": 152,                # 2 * 76
            "oldbuckets_bytes": 0,
            "overflow_count": 2,                 # O1, O2
            "overflow_bytes": 152,               # 2 * 76
            "max_chain": 2,                      # bucket[1] -> O1 -> O2
            "empty_bucket_bytes": 76,            # O2 only (slots 8, 3 | 8 | 0)
        }],
    }


# -- Swiss-table maps ----------------------------------------------------------
# Hand-built miniatures of Go 1.24+ maps (fixtures/README.md draws each): slot_size 16
# (map[int64]int64), group_size 8 + 8 * 16 = 136; a table of c slots has c / 8 groups and
# may hold c * 7/8 entries before it grows. Object sizes are Go size classes: 2 groups
# (272 B) in 288, 8 groups (1088 B) in 1152, a small map's one group (136 B) in 144.

P0 = 0xc000000000


def objects(count, nbytes, reachable, reachable_bytes):
    return {"count": count, "bytes": nbytes, "reachable": reachable, "reachable_bytes": reachable_bytes,
            "unreachable": count - reachable, "unreachable_bytes": nbytes - reachable_bytes, "external_ptrs": 0}


def swiss(**kw):
    return {"impl": "swiss", "reachable": True, **kw}


def test_swiss_small():
    # GIVEN a small map of 3 entries (one group, no directory) and a map made but never written (dir_ptr 0)
    report = spec_view(analyze("swiss_small.json"))
    # THEN both are healthy: capacity is the one group's 8 slots, or nothing at all
    assert report == {
        "format": "gctrace.report", "version": 2, "residency": "measured",
        "objects": objects(3, 48 + 144 + 48, 3, 240),
        "pages": no_waste_pages(1, 1), "flagged": [],
        "maps": [
            swiss(hmap=P0, count=3, capacity=8, dir_len=0, tables=0, directory_bytes=0, tables_bytes=0,
                  groups_bytes=144,                # the group's object (136 B in a 144 B size class)
                  tombstones=0, empty_slots=5,     # ctrl [3, 0, 5]
                  empty_slot_bytes=5 * 16,
                  retained_bytes=48 + 144, findings=[]),
            swiss(hmap=P0 + 0x200, count=0, capacity=0, dir_len=0, tables=0, directory_bytes=0, tables_bytes=0,
                  groups_bytes=0, tombstones=0, empty_slots=0, empty_slot_bytes=0, retained_bytes=48, findings=[]),
        ],
    }


def test_swiss_deleted():
    # GIVEN a map of two 16-slot tables emptied by delete: the group that was full when its keys went
    #       holds 8 tombstones, the other 8 empty slots, in each table (Go's Delete: a tombstone only
    #       where the group has no empty slot); growth_left = 14 - 0 used - 8 tombstones = 6 each
    report = spec_view(analyze("swiss_deleted.json"))
    # THEN every table and groups array stays, the tombstones take growth room, the fix is said
    m = report["maps"][0]
    assert m == swiss(
        hmap=P0, count=0, capacity=2 * 16, dir_len=2, tables=2,
        directory_bytes=16,                      # 2 table pointers
        tables_bytes=2 * 32, groups_bytes=2 * 288,
        tombstones=8 + 8, empty_slots=8 + 8,
        empty_slot_bytes=16 * 32,                # every slot: 16 empty + 16 deleted
        retained_bytes=48 + 16 + 64 + 576,       # the map is all its structure: 704
        findings=[
            {"code": "tables_kept", "tables": 2, "groups_arrays": 2,
             "bytes": 16 + 64 + 576,              # directory, tables, groups: 656
             "capacity": 32, "count": 0},         # 0 * 8 < 32
            {"code": "tombstones", "count": 16,   # 16 * 10 >= 32: past Go's 10% pruning threshold
             "bytes": 16 * 16, "capacity": 32,
             "growth_left": 6 + 6,
             "growth_room_lost": 2 * (14 - 0 - 6)},  # capacity * 7/8 - used - growth_left, per table
        ])
    assert report["notes"] == [{"code": "roots_missing", "go_version": "go1.26.6"}]  # Go >= 1.24
    text = analyze_text("swiss_deleted.json")
    assert ("map main.deleted (0xc000000000) (swiss): reachable, 2 tables, capacity 32, count 0, 16 tombstones, "
            "retains 704 B") in text
    assert text.count("m = make(map[K]V)") == 2 and "m = nil" in text
    assert "runtime.AddCleanup" in text and "weak-pointer handles" in text


def test_swiss_cleared():
    # GIVEN clear(m) once (clear_seq 1) on a map whose directory has 4 entries over 3 tables:
    #       T1 (local_depth 1) serves entries 0 and 1, T2 and T3 (local_depth 2) one each
    report = spec_view(analyze("swiss_cleared.json"))
    # THEN every table is kept, all 48 slots empty, and the finding names clear
    assert report["maps"] == [swiss(
        hmap=P0, count=0, capacity=3 * 16,        # T1 counted once, not twice
        dir_len=4, tables=3,
        directory_bytes=32, tables_bytes=3 * 32, groups_bytes=3 * 288,
        tombstones=0, empty_slots=48, empty_slot_bytes=48 * 16,
        retained_bytes=48 + 32 + 96 + 864,        # 1040
        findings=[{"code": "cleared_tables_kept", "tables": 3, "groups_arrays": 3, "bytes": 32 + 96 + 864,
                   "capacity": 48, "count": 0, "clear_seq": 1}])]
    assert report["notes"] == [{"code": "roots_missing", "go_version": "go1.24.11"}]


def test_swiss_split():
    # GIVEN the moment after a split: two tables 7 of 16 full (44%), and the table that split, with
    #       its groups array, unreachable on page 1
    report = spec_view(analyze("swiss_split.json"))
    # THEN no finding: a table just under half full is what a split leaves; the old table is garbage
    assert report["objects"] == objects(8, 48 + 16 + 2 * 32 + 2 * 288 + 32 + 288, 6, 48 + 16 + 64 + 576)
    assert report["pages"] == {"total": 2, "live": 1, "garbage": 1, "idle": 0, "lazyfree": 0, "untracked": 0,
                               "nonresident": 0, "flagged": 1, "flagged_bytes": 4096}
    assert report["maps"] == [swiss(
        hmap=P0, count=14, capacity=32, dir_len=2, tables=2, directory_bytes=16, tables_bytes=64,
        groups_bytes=576, tombstones=0,
        empty_slots=(4 + 5) + (3 + 6),            # ctrl [[4,0,4],[3,0,5]] and [[5,0,3],[2,0,6]]
        empty_slot_bytes=18 * 16, retained_bytes=704, findings=[])]
    assert "notes" not in report               # no go_version, no roots_missing: nothing to caveat


def test_swiss_full():
    # GIVEN one 64-slot table at its limit: 54 entries + 2 tombstones = 56 = 64 * 7/8, growth_left 0
    report = spec_view(analyze("swiss_full.json"))
    # THEN healthy: 2 tombstones are under 10% of 64, and 54 * 8 >= 64
    assert report["maps"] == [swiss(
        hmap=P0, count=54, capacity=64, dir_len=1, tables=1, directory_bytes=8, tables_bytes=32,
        groups_bytes=1152,                         # 8 groups * 136 = 1088 in a 1152 B size class
        tombstones=2, empty_slots=6 * 1 + 2,       # [6,2,0], six [7,0,1], [6,0,2]
        empty_slot_bytes=(8 + 2) * 16, retained_bytes=48 + 8 + 32 + 1152, findings=[])]


def test_swiss_malloc_header():
    # GIVEN make(map[int64]*T, 20) holding 3: a 32-slot table whose 544 B groups array starts 8 B
    #       into its 576 B object (Go 1.22's malloc header), with 3 elems pointing at values
    report = spec_view(analyze("swiss_malloc_header.json"))
    # THEN the groups array counts as its whole object, the values are reached through it,
    #      and a 32-slot table is too small to flag for holding 3 (only an empty one would be)
    assert report["objects"] == objects(7, 48 + 8 + 32 + 576 + 3 * 16, 7, 712)
    assert report["maps"] == [swiss(
        hmap=P0, count=3, capacity=32, dir_len=1, tables=1, directory_bytes=8, tables_bytes=32,
        groups_bytes=576, tombstones=0, empty_slots=32 - 3, empty_slot_bytes=29 * 16,
        retained_bytes=712,                        # the values are reachable only through the map
        findings=[])]


def test_swiss_unreachable():
    # GIVEN an unrooted Swiss map (page 0) beside a rooted classic map never written (page 1), and a
    #       producer that says which roots its dump lacks
    report = spec_view(analyze("swiss_unreachable.json"))
    # THEN the Swiss map is measured like a reachable one, retains nothing, and its bytes are garbage
    assert report["objects"] == objects(5, 48 + 8 + 32 + 288 + 48, 1, 48)
    assert report["flagged"] == [{"addr": P0, "class": "garbage"}]
    assert report["maps"] == [
        swiss(hmap=P0, reachable=False, count=5, capacity=16, dir_len=1, tables=1, directory_bytes=8,
              tables_bytes=32, groups_bytes=288, tombstones=0, empty_slots=11, empty_slot_bytes=11 * 16,
              retained_bytes=0,
              findings=[{"code": "unreachable_map", "bytes": 8 + 32 + 288, "impl": "swiss"}]),
        {"hmap": P0 + 0x1000, "reachable": True, "B": 0, "count": 0, "growing": False, "buckets_bytes": 0,
         "oldbuckets_bytes": 0, "overflow_count": 0, "overflow_bytes": 0, "max_chain": 0,
         "empty_bucket_bytes": 0},
    ]
    assert report["notes"] == [{"code": "roots_missing", "go_version": None,
                                "roots_missing": ["runtime.AddCleanup closures", "weak-pointer handles"]}]


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json") if ".report." not in p.name))
def test_json_findings_are_the_text_diagnoses(name):
    # GIVEN any fixture WHEN analyzed both ways
    report, text = analyze(name), analyze_text(name)
    # THEN each map's findings are the "- " lines under its heading, one for one, and a map
    #      without findings is listed among those with nothing to reclaim
    blocks = text.split("\n  map ")[1:]
    for m in report["maps"]:
        assert m["impl"] in ("hmap", "swiss")
        block = next((b for b in blocks if f"{m['hmap']:#x})" in b.split(":")[0] or b.startswith(f"{m['hmap']:#x}")),
                     None)
        if not m["findings"]:
            assert block is None
            continue
        lines = [x for x in block.split("\n")[2:] if x.startswith("    - ")]
        assert len(lines) == len(m["findings"]), (m["hmap"], lines)
