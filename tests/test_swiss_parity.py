"""The native Swiss map and real Go 1.26 give `gctrace analyze` the same story (issue 12's parity must-show).

The real side is fixtures/go/swissparity: a Go 1.26.6 program that gives two
global maps the native scenarios' histories (tracer/native/scenarios.py: keys
0..n-1, then delete every key, or clear(m)), collects, scavenges and writes
a heap dump. Its facts.json is what it read about its maps through unsafe,
so the import is held to Go's own reading first. Then the same histories are
recorded on the tracer's Swiss map with the same n and shape, and both
dumps are analyzed: the same finding codes, the same shape, and tombstone
fractions within a few points of each other (the hash seeds differ, so the
tombstone count is the one figure that may).
"""

from __future__ import annotations

import gzip
import json

import pytest
from click.testing import CliRunner

from dumps import FIXTURES
from tracer_native import require_native

require_native()

from gctrace.analysis.analyze import analyze  # noqa: E402
from gctrace.analysis.load import load_dump  # noqa: E402
from gctrace.analysis.report import json_report  # noqa: E402
from gctrace.cli import cli  # noqa: E402
from gctrace.tracer.native.scenarios import record_scenario  # noqa: E402

REAL = FIXTURES / "go" / "swissparity"
FACTS = json.loads((REAL / "facts.json").read_text())
HISTORIES = {"fill-delete": "main.deleted", "clear": "main.cleared"}  # native scenario -> the real program's global
SEEDS = (1, 2, 3)
# Hash seeds differ between the two sides (and between runs of the real
# program: 22,424-23,296 tombstones of 65,536 slots in seven runs, the
# native map 22,832-23,344 over six seeds), so the fractions may differ by
# a point or two; a map that left no tombstones, or one in every deleted
# slot of a full group, would be off by ten.
TOMBSTONE_FRACTION_TOLERANCE = 0.03
SHAPE_KEYS = ("count", "dir_len", "tables", "capacity")


def story(heap):
    """story analyzes a heap and returns (analysis, JSON report maps by name)."""
    a = analyze(heap)
    return a, {m.get("name", hex(m["hmap"])): m for m in json_report(a)["maps"]}


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """real is the analyzed import of the Go 1.26 program's heap dump: (import records by name, analysis, report maps)."""
    d = tmp_path_factory.mktemp("swissparity")
    exe = d / "swissparity"
    exe.write_bytes(gzip.decompress((REAL / "swissparity.gz").read_bytes()))
    exe.chmod(0o755)
    out = d / "real.json"
    r = CliRunner().invoke(cli, ["import", "go-heapdump", str(REAL / "heapdump.gz"), "--binary", str(exe),
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    records = {m["name"]: m for m in json.loads(out.read_text())["maps"] if "name" in m}
    return (records, *story(load_dump(out)))


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    """native(history, seed) records that history on the tracer's Swiss map as the real program ran it, and analyzes it."""
    d = tmp_path_factory.mktemp("native")
    done = {}

    def get(history, seed):
        if (history, seed) not in done:
            p = d / f"{history}-{seed}.jsonl"
            record_scenario(history, p, n=FACTS["n"], shape=FACTS["shape"], seed=seed, impl="swiss", record=False)
            a, maps = story(load_dump(p))
            (m,) = maps.values()
            done[history, seed] = (a, m)
        return done[history, seed]

    return get


def structure_live(a, m) -> dict:
    """structure_live counts the map's own objects by role, and says whether every one is reachable."""
    (audit,) = [x for x in a.maps if x.header.hmap == m["hmap"]]
    roles = {}
    for role in audit.structure.values():
        roles[role] = roles.get(role, 0) + 1
    return {"reachable": bool(all(a.reachable[i] for i in audit.structure)), **roles}


def tombstone_fraction(m) -> float:
    return m["tombstones"] / m["capacity"]


def test_the_program_ran_the_native_scenarios_histories():
    # GIVEN the facts the Go 1.26 program read through unsafe after GC and scavenge
    assert FACTS["go_version"].startswith("go1.26") and FACTS["shape"] == "int64->*value"
    deleted, cleared = FACTS["maps"]
    # THEN its maps are the two histories: every key gone, every table kept,
    # tombstones after deletes, every slot empty (and clear_seq 1) after clear
    assert [deleted["name"], deleted["history"], cleared["name"], cleared["history"]] == \
        ["main.deleted", "fill-delete", "main.cleared", "clear"]
    for m in (deleted, cleared):
        assert m["count"] == m["full"] == 0 and m["capacity"] == 1024 * m["tables"] >= FACTS["n"]
        assert m["tombstones"] + m["empty_slots"] == m["capacity"]
    assert deleted["tombstones"] > 0 and deleted["clear_seq"] == 0 and deleted["tombstone_possible"] is True
    assert cleared["tombstones"] == 0 and cleared["clear_seq"] == 1


@pytest.mark.parametrize("name", HISTORIES.values())
def test_the_import_reads_what_the_program_read(real, name):
    # GIVEN the program's own reading of one map, and the importer's record of it from the heap dump
    records, _, maps = real
    (want,) = [m for m in FACTS["maps"] if m["name"] == name]
    rec, m = records[name], maps[name]
    # THEN header, tables and control bytes agree, and so does the analysis built on them
    assert (rec["hmap"], rec["count"], rec["dir_len"], rec["clear_seq"]) == \
        (want["hmap"], want["count"], want["dir_len"], want["clear_seq"])
    assert len(rec["tables"]) == want["tables"]
    assert sum(t["growth_left"] for t in rec["tables"]) == want["growth_left"]
    assert sum(c[1] for t in rec["tables"] for c in t["ctrl"]) == want["tombstones"]
    assert {k: m[k] for k in SHAPE_KEYS + ("tombstones", "empty_slots")} == \
        {k: want[k] for k in SHAPE_KEYS + ("tombstones", "empty_slots")}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("history", HISTORIES)
def test_native_and_real_go_keep_the_same_structure_live(real, native, history, seed):
    # GIVEN the same history on real Go 1.26 and on the native Swiss map
    _, ra, rmaps = real
    na, nm = native(history, seed)
    rm = rmaps[HISTORIES[history]]
    # THEN both keep the same shape: no entry, every table and groups array live
    assert {k: nm[k] for k in SHAPE_KEYS} == {k: rm[k] for k in SHAPE_KEYS}
    assert nm["capacity"] / FACTS["n"] == rm["capacity"] / FACTS["n"] > 1  # room for more than the peak
    live = structure_live(na, nm)
    assert live == structure_live(ra, rm)
    assert live["reachable"] and live["table"] == live["groups"] == rm["tables"]
    # with tombstones after deletes, every slot empty after clear
    if history == "clear":
        assert nm["tombstones"] == rm["tombstones"] == 0 and nm["empty_slots"] == rm["empty_slots"] == rm["capacity"]
    else:
        assert nm["tombstones"] > 0 and rm["tombstones"] > 0
        assert abs(tombstone_fraction(nm) - tombstone_fraction(rm)) <= TOMBSTONE_FRACTION_TOLERANCE


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("history", HISTORIES)
def test_analyze_finds_the_same_causes_in_both(real, native, history, seed):
    # GIVEN both analyses of the same history
    _, _, rmaps = real
    _, nm = native(history, seed)
    rm = rmaps[HISTORIES[history]]
    codes = [f["code"] for f in rm["findings"]]
    # THEN the same findings, in the same order, and the ones the history calls for
    assert [f["code"] for f in nm["findings"]] == codes
    assert codes == (["tables_kept", "tombstones"] if history == "fill-delete" else ["cleared_tables_kept"])
    for nf, rf in zip(nm["findings"], rm["findings"]):
        if nf["code"] == "tombstones":
            # Go's growthLeft = 7/8 capacity - used - tombstones on both sides
            assert nf["growth_room_lost"] == nf["count"] and rf["growth_room_lost"] == rf["count"]
            assert abs(nf["count"] - rf["count"]) <= TOMBSTONE_FRACTION_TOLERANCE * rf["capacity"]
        else:
            same = ("tables", "groups_arrays", "capacity", "count", "clear_seq")
            assert {k: nf.get(k) for k in same} == {k: rf.get(k) for k in same}
            # Bytes kept: a groups array of 1024 slots is 128 x 136 = 17,408 B (17,416 with Go's malloc
            # header), 18 KiB in both size-class tables; the directory and tables are the same sizes too
            assert nf["bytes"] == rf["bytes"]
