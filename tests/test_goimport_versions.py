"""Go heap dumps of every supported release (1.19, 1.21 to 1.27) imported against the program's own reading.

The dumps come from fixtures/go/versions/<case>/ (mapsdemo, its heapdump.gz
and the facts.json it printed about itself through unsafe: every map's
header, tables and control words in the dump format's keys, and MemStats;
see fixtures/go/README.md). $GCTRACE_GO_VERSIONS points the tests at another
directory of the same layout. The unit tests at the end need no Go at all.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gctrace.cli import cli
from gctrace.tracer.goheap.goheapdump import read_heapdump
from gctrace.tracer.goheap.goimport import GoRuntime, _phantoms, import_heapdump, write_dump
from gctrace.tracer.goheap.gotypes import Binary

GO = Path(__file__).resolve().parent.parent / "fixtures" / "go"
VERSIONS = Path(os.environ.get("GCTRACE_GO_VERSIONS") or GO / "versions")
CASES = sorted(p.name for p in VERSIONS.glob("go1.*") if (p / "facts.json").is_file())
FACT_ONLY = {"name", "go_type", "history", "len", "addr"}  # what the program says that a map record does not


_BINARIES = {}


def _binary(d: Path) -> Path:
    """_binary is the case's program: mapsdemo, or mapsdemo.gz (as committed) unpacked once into a temp dir."""
    if (d / "mapsdemo").is_file():
        return d / "mapsdemo"
    if d not in _BINARIES:
        out = Path(tempfile.mkdtemp(prefix="gctrace-mapsdemo-")) / "mapsdemo"
        out.write_bytes(gzip.decompress((d / "mapsdemo.gz").read_bytes()))
        out.chmod(0o755)
        _BINARIES[d] = out
    return _BINARIES[d]


def _residency(d: Path):
    p = d / "residency.json"
    if p.is_file() and "pages" in json.loads(p.read_text()):
        return p
    return None


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """imported maps a case to (gctrace dump dict, its file, the program's facts)."""
    out = {}
    tmp = tmp_path_factory.mktemp("goversions")

    def get(case):
        if case not in out:
            d = VERSIONS / case
            doc = import_heapdump(d / "heapdump.gz", _binary(d), _residency(d))
            path = tmp / f"{case}.jsonl.gz"
            write_dump(doc, path)
            out[case] = (doc, path, json.loads((d / "facts.json").read_text()))
        return out[case]

    return get


def _is_swiss(facts):
    return facts.get("map_impl") == "swiss"


@pytest.mark.parametrize("case", CASES)
def test_every_map_equals_the_programs_reading(imported, case):
    # GIVEN every map the program read through unsafe (globals and the maps nested in one)
    doc, _, facts = imported(case)
    got = {m["hmap"]: m for m in doc["maps"]}
    assert facts["maps"], case
    for want in facts["maps"]:
        # THEN the importer found it from the dump alone, with every field the program printed
        m = got.get(want["hmap"])
        assert m is not None, (case, want["name"])
        for k, v in want.items():
            if k not in FACT_ONLY:
                assert m.get(k) == v, (case, want["name"], k)
        assert m["count"] == want["len"], (case, want["name"])


@pytest.mark.parametrize("case", CASES)
def test_objects_and_bytes_equal_memstats(imported, case):
    # GIVEN the MemStats of the dump's own record and those the program read just before it
    doc, _, facts = imported(case)
    n, nbytes = len(doc["objects"]), sum(o["size"] for o in doc["objects"])
    # THEN the objects are exactly the heap's: no tail slot of a span counts as one
    assert (n, nbytes) == (doc["meta"]["memstats"]["HeapObjects"], doc["meta"]["memstats"]["HeapAlloc"])
    assert (n, nbytes) == (facts["memstats"]["HeapObjects"], facts["memstats"]["HeapAlloc"])


@pytest.mark.parametrize("case", CASES)
def test_dropped_slots_are_the_dumps_excess_and_no_pointer_is_refused(imported, case):
    doc, _, _ = imported(case)
    d = VERSIONS / case
    records = read_heapdump(d / "heapdump.gz").counts["object"]
    ph = doc["meta"]["phantom_slots"]
    # THEN objects written + tail slots dropped = object records of the heap dump
    assert len(doc["objects"]) + ph["objects"] == records
    version = GoRuntime.parse(doc["meta"]["go_version"]).version
    if version < (1, 22):
        assert ph["objects"] == 0  # spans reserved no tail before malloc headers
    # AND every pointer written is one the analyzer takes
    assert all(0 < t < 1 << 63 for o in doc["objects"] for _, t in o["ptrs"])


@pytest.mark.parametrize("case", CASES)
def test_analyze_accepts_every_import(imported, case, request):
    doc, path, facts = imported(case)
    r = CliRunner().invoke(cli, ["analyze", str(path), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["objects"]["count"] == len(doc["objects"])


def _check_swiss_record(m, objs, starts):
    """_check_swiss_record asserts the invariants docs/dump-format.md lists for a Swiss map record."""
    import bisect

    def within(a):
        i = bisect.bisect_right(starts, a) - 1
        assert i >= 0 and a < starts[i] + objs[starts[i]]["size"], hex(a)
        return objs[starts[i]]

    assert m["hmap"] in objs and objs[m["hmap"]]["kind"] == "swiss_map"
    assert m["group_size"] == 8 + 8 * m["slot_size"] or m["group_size"] >= 8 + 8 * (m["key_size"] + m["elem_size"])
    if m["dir_len"] == 0:
        assert m["tables"] == []
        if m["dir_ptr"]:
            assert within(m["dir_ptr"])["kind"] == "swiss_groups"
            assert sum(m["small"]["ctrl"]) == 8 and m["small"]["ctrl"][0] == m["count"]
        return
    assert m["dir_len"] == 1 << m["global_depth"]
    assert within(m["dir_ptr"])["kind"] == "swiss_directory"
    for t in m["tables"]:
        assert within(t["addr"])["kind"] == "swiss_table" and t["addr"] in objs
        g = within(t["groups"])
        assert g["kind"] == "swiss_groups"
        assert t["groups"] + t["groups_len"] * m["group_size"] <= g["addr"] + g["size"]
        assert t["groups_len"] & (t["groups_len"] - 1) == 0 and t["capacity"] == 8 * t["groups_len"]
        assert len(t["ctrl"]) == t["groups_len"] and all(sum(c) == 8 for c in t["ctrl"])
        assert t["used"] == sum(c[0] for c in t["ctrl"])
        assert t["local_depth"] <= m["global_depth"]
        assert t["growth_left"] <= t["capacity"] * 7 // 8 - t["used"]
    assert m["count"] == sum(t["used"] for t in m["tables"])
    assert len({t["addr"] for t in m["tables"]}) == len(m["tables"])


@pytest.mark.parametrize("case", CASES)
def test_swiss_records_keep_the_contract(imported, case):
    doc, _, facts = imported(case)
    objs = {o["addr"]: o for o in doc["objects"]}
    starts = sorted(objs)
    swiss = [m for m in doc["maps"] if m.get("impl") == "swiss"]
    # THEN a Swiss build's maps are all Swiss records, a classic build's none
    assert bool(swiss) == _is_swiss(facts) and (not swiss or len(swiss) == len(doc["maps"]))
    for m in swiss:
        _check_swiss_record(m, objs, starts)
    assert doc["meta"]["map_impl"] == (["swiss"] if _is_swiss(facts) else ["hmap"])


@pytest.mark.parametrize("case", CASES)
def test_version_warnings_and_missing_roots_in_meta(imported, case):
    doc, _, facts = imported(case)
    meta = doc["meta"]
    assert meta["go_version"].startswith(facts["go_version"])
    assert meta["binary_go_version"] == meta["go_version"]  # runtime.buildVersion, read from the ELF file
    assert meta["warnings"] == []  # every layout of 1.19 to 1.27 is known
    if GoRuntime.parse(meta["go_version"]).version >= (1, 24):
        assert any("AddCleanup" in r for r in meta["roots_missing"])
        assert any("weak" in r for r in meta["roots_missing"])
    else:
        assert "roots_missing" not in meta


@pytest.mark.parametrize("case", [c for c in CASES if c >= "go1.24" and "noswissmap" not in c][:1])
def test_a_swiss_layout_gctrace_does_not_know_is_one_warning(case, monkeypatch, tmp_path):
    # GIVEN a binary whose DWARF lost the table<K,V> structs (a future Go renaming them)
    d = VERSIONS / case
    b = Binary(_binary(d))
    for name in [n for n in b.struct_by_name if n.startswith("table<")]:
        del b.struct_by_name[name]
    doc = import_heapdump(d / "heapdump.gz", b)
    b.close()
    # THEN no map is decoded, and each map type says so once, not a silent "maps: 0"
    assert doc["maps"] == []
    assert doc["meta"]["warnings"] and all("not decoded" in w for w in doc["meta"]["warnings"])
    assert len(doc["meta"]["warnings"]) == len(set(doc["meta"]["warnings"]))


def test_an_unknown_map_layout_warns_on_stderr(monkeypatch, tmp_path):
    # GIVEN the committed Go 1.19 program, its DWARF made to lack bucket<K,V> (no layout gctrace knows)
    real = Binary.map_layout
    monkeypatch.setattr(Binary, "map_layout", lambda self, off: "unknown" if real(self, off) == "hmap" else "swiss")
    out = tmp_path / "d.json"
    r = CliRunner().invoke(cli, ["import", "go-heapdump", str(GO / "heapdumps" / "grow.heapdump.gz"),
                                 "--binary", str(GO / "mapheap" / "mapheap"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    # THEN stderr has one warning line naming the map types, and meta keeps it
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(lines) == 1 and "map[" in lines[0] and "layout is unknown" in lines[0]
    assert "maps: 0" in r.stderr
    assert json.loads(out.read_text())["meta"]["warnings"]


# --- no Go needed: the runtime's arithmetic, checked by hand -------------------------------------------

@pytest.mark.parametrize("version,size,scan,want", [
    ("go1.21.13", 48, True, 170),  # 8192 // 48: no reserve before malloc headers
    ("go1.22.10", 48, True, 168),  # (8192 - 128 heap bits) // 48
    ("go1.22.10", 48, False, 170),  # noscan spans keep no heap bits
    ("go1.22.10 X:noallocheaders", 48, True, 170),  # the experiment existed in 1.22 only
    ("go1.24.11", 8, True, 1008),  # (8192 - 128) // 8
    ("go1.24.11", 576, True, 14),  # above 512 B: a malloc header per object, no bits in the span
    ("go1.25.5", 16, False, 512),
    ("go1.25.5 X:greenteagc", 16, False, 504),  # (8192 - 128 inline mark bits) // 16
    ("go1.26.6", 48, True, 165),  # (8192 - 128 - 128) // 48
    ("go1.26.6", 48, False, 168),
    ("go1.26.6", 8, False, 1024),  # gcUsesSpanInlineMarkBits needs size >= 16
    ("go1.27.3 X:nogreenteagc", 48, False, 170),
])
def test_nelems_is_initspans(version, size, scan, want):
    assert GoRuntime.parse(version).nelems(size, scan) == want


def _span(base, size, slots, fields):
    """_span returns (addr, size, has_fields) arrays for the given slot indices of one span."""
    addr = np.array([base + i * size for i in slots], dtype=np.uint64)
    return addr, np.full(len(slots), size, dtype=np.uint64), np.full(len(slots), fields, dtype=bool)


def test_tail_slots_of_a_scan_span_are_phantoms_from_go_1_22():
    # GIVEN a page of 48-byte objects with every slot dumped, as dumpobjs writes a full scan span
    addr, size, fields = _span(0xc000010000, 48, range(170), True)
    # THEN Go 1.22 keeps slots 0..167, 1.26 slots 0..164, 1.21 all of them
    assert np.flatnonzero(_phantoms(addr, size, fields, GoRuntime.parse("go1.22.10"))).tolist() == [168, 169]
    assert np.flatnonzero(_phantoms(addr, size, fields, GoRuntime.parse("go1.26.6"))).tolist() == [165, 166, 167, 168, 169]
    assert not _phantoms(addr, size, fields, GoRuntime.parse("go1.21.13")).any()


def test_a_noscan_span_keeps_its_tail_objects_until_green_tea():
    # GIVEN a pointer-free page of 48-byte objects, every slot allocated
    addr, size, fields = _span(0xc000010000, 48, range(170), False)
    assert not _phantoms(addr, size, fields, GoRuntime.parse("go1.24.11")).any()
    # THEN from 1.26 only the 128 bytes of inline mark bits are a tail: slots 168 and 169
    assert np.flatnonzero(_phantoms(addr, size, fields, GoRuntime.parse("go1.26.6"))).tolist() == [168, 169]


def test_a_span_with_only_tail_slots_dumped():
    # GIVEN a page where only slots 168 and 169 were dumped: a scan span with no live object keeps both
    rt = GoRuntime.parse("go1.22.10")
    addr, size, fields = _span(0xc000010000, 48, [168, 169], False)
    assert _phantoms(addr, size, fields, rt).tolist() == [True, True]
    # AND one tail slot alone can only be a noscan span's object (a scan span dumps its whole tail)
    addr, size, fields = _span(0xc000010000, 48, [169], False)
    assert _phantoms(addr, size, fields, rt).tolist() == [False]


RELEASES = {"go1.19", "go1.21", "go1.22", "go1.23", "go1.24", "go1.25", "go1.26", "go1.27"}


def test_fixtures_cover_every_release():
    if not CASES:
        pytest.skip(f"no {VERSIONS}/go1.*: the per-release fixtures are committed by the gofix branch "
                    "(or set $GCTRACE_GO_VERSIONS)")
    assert RELEASES <= set(CASES)


@pytest.mark.parametrize("case", [c for c in CASES if c in ("go1.22", "go1.26")])
def test_spans_read_wrong_are_a_warning_not_a_silent_count(case, monkeypatch):
    # GIVEN an importer that gets a span's nelems wrong (as it would for a future runtime)
    monkeypatch.setattr(GoRuntime, "nelems", lambda self, size, scan: _all_slots(size))
    d = VERSIONS / case
    doc = import_heapdump(d / "heapdump.gz", _binary(d))
    # THEN the objects exceed MemStats, and meta says so in one line
    assert len(doc["objects"]) > doc["meta"]["memstats"]["HeapObjects"]
    assert [w for w in doc["meta"]["warnings"] if "MemStats" in w]


def _all_slots(size):
    """_all_slots is dumpobjs' slot count of a one-page span, blind to every reserve."""
    return 8192 // size
