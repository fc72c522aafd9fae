"""Real Go 1.19 and 1.21-1.27 heap dumps (fixtures/go/versions/) against what mapsdemo read about itself.

Each go1.XX/ directory holds mapsdemo (fixtures/go/versions/prog/) built and
run with that Go version: the binary, its heap dump, its residency file and
facts.json, every map's header read by the program itself through unsafe
(see fixtures/go/README.md; `make go-fixtures` regenerates them). Nothing
here needs a Go toolchain, except the gctraceres unit tests at the end.

Two kinds of tests:
- the facts against Go's own invariants (runtime/map.go for the classic
  hmap, internal/runtime/maps for Swiss tables), and the residency against
  MemStats: these hold the ground truth itself to account;
- the importer against the facts: every map found with the same header,
  objects and bytes equal to MemStats, and `gctrace analyze` accepting the
  import, on every version.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from gctrace.cli import cli

ROOT = Path(__file__).resolve().parent.parent
VERSIONS_DIR = ROOT / "fixtures" / "go" / "versions"
VERSIONS = sorted(p.name for p in VERSIONS_DIR.glob("go1.*") if p.is_dir())
SWISS = {"go1.24", "go1.25", "go1.26", "go1.27"}
GLOBALS = ["main.deleted", "main.cleared", "main.growing", "main.small", "main.nested", "main.flat", "main.ptrs"]
N_OUTER = 24  # main.nested's inner maps, main.nested[0..23], holding 8*i entries each
MALLOC_HEADER_RANGE = (513, 32 << 10)  # Go 1.22+: scan objects of these sizes start with an 8-byte header

# The header keys a dump's map record shares with the facts (docs/dump-format.md).
HMAP_KEYS = ["hmap", "count", "flags", "B", "noverflow", "hash0", "buckets", "oldbuckets", "nevacuate",
             "bucketsize"]
SWISS_KEYS = ["hmap", "impl", "count", "dir_ptr", "dir_len", "global_depth", "clear_seq", "slot_size",
              "group_size"]
SWISS_OPTIONAL = ["seed", "global_shift", "tombstone_possible", "key_size", "elem_size"]
TABLE_KEYS = ["addr", "capacity", "used", "growth_left", "local_depth", "index", "groups", "groups_len", "ctrl"]


def facts(version: str) -> dict:
    return json.loads((VERSIONS_DIR / version / "facts.json").read_text())


def residency(version: str) -> dict:
    return json.loads((VERSIONS_DIR / version / "residency.json").read_text())


def maps(version: str) -> dict:
    return {m["name"]: m for m in facts(version)["maps"]}


def test_every_version_is_there():
    assert VERSIONS == ["go1.19", "go1.21", "go1.22", "go1.23", "go1.24", "go1.24-noswissmap", "go1.25",
                        "go1.26", "go1.27"]


# --- the facts hold Go's own invariants -------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_facts_come_from_that_version(version):
    f = facts(version)
    release = version.split("-")[0]
    assert f["go_version"] == release or f["go_version"].startswith(release + ".")
    if version == "go1.24-noswissmap":
        assert f["goexperiment"] == "noswissmap" and "X:noswissmap" in f["go_version"]
    else:
        assert "goexperiment" not in f
    assert f["map_impl"] == ("swiss" if version in SWISS else "hmap")
    assert f["clear_by"] == ("for k := range m { delete(m, k) }" if version == "go1.19" else "clear(m)")
    names = [m["name"] for m in f["maps"]]
    assert names == GLOBALS + [f"main.nested[{i}]" for i in range(N_OUTER)]
    for m in f["maps"]:
        assert m["impl"] == f["map_impl"] and m["count"] == m["len"] and m["hmap"] == m["addr"] > 0
    want_len = {"main.deleted": 0, "main.cleared": 0, "main.small": 5, "main.nested": N_OUTER,
                "main.flat": 4000, "main.ptrs": 2000}
    by_name = maps(version)
    for name, n in want_len.items():
        assert by_name[name]["len"] == n, name
    for i in range(N_OUTER):
        assert by_name[f"main.nested[{i}]"]["len"] == 8 * i
    assert by_name["main.growing"]["len"] >= 1500


def classic(versions):
    return [v for v in versions if v not in SWISS]


@pytest.mark.parametrize("version", classic(VERSIONS))
def test_hmap_facts_hold_the_load_factor_and_evacuation_bounds(version):
    for m in facts(version)["maps"]:
        growing = m["oldbuckets"] != 0
        old = 1 << m["B"] if m["flags"] & 8 else 1 << max(m["B"] - 1, 0)  # sameSizeGrow keeps 2^B
        if growing:
            assert 0 <= m["nevacuate"] < old, m["name"]
        else:
            # runtime/map.go overLoadFactor: count > 8 && count > 6.5 * 2^B triggers a grow
            assert m["count"] <= 8 or m["count"] <= 13 * (1 << m["B"]) // 2, m["name"]
        assert m["buckets"] != 0 or m["count"] == 0
        assert m["bucketsize"] == 8 + 8 * (m["keysize"] + m["elemsize"]) + 8, m["name"]


@pytest.mark.parametrize("version", classic(VERSIONS))
def test_hmap_histories(version):
    by_name = maps(version)
    # Emptied maps keep their 512 buckets: 3000 entries needed B = 9 (3000 > 6.5 * 2^8).
    for name in ("main.deleted", "main.cleared"):
        m = by_name[name]
        assert m["count"] == 0 and m["B"] == 9 and m["buckets"] != 0, name
    if version == "go1.24-noswissmap":
        assert by_name["main.cleared"]["clear_seq"] == 1 and by_name["main.deleted"]["clear_seq"] == 0
    g = by_name["main.growing"]
    old = 1 << (g["B"] - 1)
    assert g["oldbuckets"] != 0 and not g["flags"] & 8
    assert old <= 3 * g["nevacuate"] and g["nevacuate"] < old  # a third or more evacuated, not done
    assert by_name["main.small"]["B"] == 0
    assert by_name["main.nested[0]"]["buckets"] == 0  # make(map) without a hint allocates buckets lazily
    outer = by_name["main.nested"]
    assert MALLOC_HEADER_RANGE[0] <= (1 << outer["B"]) * outer["bucketsize"] <= MALLOC_HEADER_RANGE[1]
    # No pointers in main.flat's buckets (8 + 8*8 + 8*8 + overflow)
    assert by_name["main.flat"]["bucketsize"] == 144


def swiss(versions):
    return [v for v in versions if v in SWISS]


def check_swiss(m):
    """check_swiss asserts internal/runtime/maps' invariants on one Swiss map fact."""
    name = m["name"]
    assert m["group_size"] == 8 + 8 * m["slot_size"], name
    assert m["slot_size"] >= m["key_size"] + m["elem_size"], name
    if m["dir_len"] == 0:
        assert m["tables"] == [] and m["global_depth"] == 0, name
        if m["dir_ptr"] == 0:
            assert m["count"] == 0 and "small" not in m, name
        else:
            assert sum(m["small"]["ctrl"]) == 8 and m["small"]["ctrl"][0] == m["count"], name
        return
    assert m["dir_len"] == 1 << m["global_depth"], name
    assert m["global_shift"] == 64 - m["global_depth"], name  # depthToShift on 64-bit
    entries = 0
    for t in m["tables"]:
        assert t["index"] == entries, name  # a table's index is its first directory entry
        assert t["local_depth"] <= m["global_depth"]
        entries += 1 << (m["global_depth"] - t["local_depth"])
        assert t["groups_len"] & (t["groups_len"] - 1) == 0 and t["capacity"] == 8 * t["groups_len"], name
        assert len(t["ctrl"]) == t["groups_len"] and all(sum(c) == 8 for c in t["ctrl"]), name
        assert sum(c[0] for c in t["ctrl"]) == t["used"], name
        assert t["growth_left"] <= t["capacity"] * 7 // 8 - t["used"], name
    assert entries == m["dir_len"], name
    assert sum(t["used"] for t in m["tables"]) == m["count"], name
    assert len({t["addr"] for t in m["tables"]}) == len(m["tables"]), name


@pytest.mark.parametrize("version", swiss(VERSIONS))
def test_swiss_facts_hold_the_table_invariants(version):
    for m in facts(version)["maps"]:
        check_swiss(m)


@pytest.mark.parametrize("version", swiss(VERSIONS))
def test_swiss_histories(version):
    by_name = maps(version)
    deleted, cleared = by_name["main.deleted"], by_name["main.cleared"]
    # GIVEN two maps of 3000 entries, one emptied key by key, one by clear(m)
    for m in (deleted, cleared):
        # THEN both keep every table: 3000 entries took 4 tables of 1024 slots
        assert m["count"] == 0 and len(m["tables"]) == 4 and all(t["capacity"] == 1024 for t in m["tables"])
    ctrl = [c for t in deleted["tables"] for c in t["ctrl"]]
    assert sum(c[1] for c in ctrl) > 0 and sum(c[0] for c in ctrl) == 0  # tombstones left by delete
    assert deleted["clear_seq"] == 0
    assert cleared["clear_seq"] == 1
    assert all(c == [0, 0, 8] for t in cleared["tables"] for c in t["ctrl"])  # clear empties every slot
    if version != "go1.24":
        assert deleted["tombstone_possible"] is True and cleared["tombstone_possible"] is False
    else:
        assert "tombstone_possible" not in deleted  # the field came in Go 1.25
    # The growing map stopped right after a split doubled its directory: the
    # split table's two halves are the only tables at the new global depth.
    g = by_name["main.growing"]
    assert g["dir_len"] >= 2 and sum(t["local_depth"] == g["global_depth"] for t in g["tables"]) == 2
    small = by_name["main.small"]
    assert small["dir_len"] == 0 and small["small"] == {"ctrl": [5, 0, 3]}
    assert by_name["main.nested[0]"]["dir_ptr"] == 0  # no group before the first insert
    assert by_name["main.nested[1]"]["small"] == {"ctrl": [8, 0, 0]}
    outer = by_name["main.nested"]
    (t,) = outer["tables"]
    assert MALLOC_HEADER_RANGE[0] <= t["groups_len"] * outer["group_size"] <= MALLOC_HEADER_RANGE[1]
    assert by_name["main.flat"]["group_size"] == 8 + 8 * 16


@pytest.mark.parametrize("version", VERSIONS)
def test_residency_adds_up_to_memstats(version):
    """The page allocator was read on every version, and its pages add up to MemStats.

    mapsdemo calls debug.FreeOSMemory before the dump, so every free page is
    released. The allocator's ranges hold exactly HeapSys + StackInuse bytes.
    Pages it marks allocated are at least HeapInuse + StackInuse (more: the
    running P's page cache and the collector's work buffers are allocated
    pages that MemStats counts as idle), and released pages at most
    HeapReleased, for the same reason.
    """
    r = residency(version)
    ms = r["memstats"]
    assert r["page_state"].startswith("runtime: mheap_.pages") and r["ranges_from"] == "runtime: mheap_.pages.inUse"
    assert r["agreed"] is True and r["madvise"] == "dontneed"
    ps = r["page_size"]
    total = sum(hi - lo for lo, hi in r["ranges"])
    by_state = {"used": 0, "free": 0, "released": 0}
    resident_released = 0
    for p in r["pages"]:
        by_state[p["state"]] += p["n"] * ps
        resident_released += p["n"] * ps if p["resident"] and p["state"] == "released" else 0
    assert sum(by_state.values()) == total == ms["HeapSys"] + ms["StackInuse"]
    assert by_state["used"] >= ms["HeapInuse"] + ms["StackInuse"]
    assert 0 < by_state["released"] <= ms["HeapReleased"]
    assert resident_released == 0  # MADV_DONTNEED drops released pages at once
    assert r["memstats_at_dump"]["HeapObjects"] == facts(version)["memstats"]["HeapObjects"]


# --- the importer against the facts -----------------------------------------

@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """imported(version) runs `gctrace import go-heapdump` on a version's dump and returns (exit code, output, dump dict)."""
    d = tmp_path_factory.mktemp("goversions")
    done = {}

    def get(version):
        if version not in done:
            src = VERSIONS_DIR / version
            exe = d / f"{version}.mapsdemo"
            exe.write_bytes(gzip.decompress((src / "mapsdemo.gz").read_bytes()))
            exe.chmod(0o755)
            out = d / f"{version}.json"
            r = CliRunner().invoke(cli, ["import", "go-heapdump", str(src / "heapdump.gz"), "--binary", str(exe),
                                         "--residency", str(src / "residency.json"), "-o", str(out)])
            doc = json.loads(out.read_text()) if r.exit_code == 0 else None
            done[version] = (r.exit_code, r.output, doc, out, exe)
        return done[version]

    return get


def header_mismatches(want: dict, got: dict | None) -> list:
    """header_mismatches lists the dump-format keys where an imported map record differs from the facts."""
    if got is None:
        return ["not found"]
    keys = HMAP_KEYS if want["impl"] == "hmap" else SWISS_KEYS + [k for k in SWISS_OPTIONAL if k in got]
    out = [k for k in keys if got.get(k, "hmap" if k == "impl" else None) != want.get(k)]
    if want["impl"] == "swiss":
        if got.get("small") != want.get("small"):
            out.append("small")
        tables = got.get("tables") or []
        if len(tables) != len(want["tables"]):
            out.append("tables")
        else:
            out += [f"tables[{i}].{k}" for i, (w, g) in enumerate(zip(want["tables"], tables))
                    for k in TABLE_KEYS if g.get(k) != w[k]]
    if "[" not in want["name"] and got.get("name") != want["name"]:
        out.append("name")
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_import_finds_every_map_with_the_programs_header(imported, version):
    # GIVEN the headers mapsdemo read through unsafe at the moment of its dump
    code, output, doc, _, _ = imported(version)
    assert code == 0, output
    # WHEN the importer decodes the same dump with the binary's DWARF
    by_addr = {m["hmap"]: m for m in doc["maps"]}
    # THEN every map, inner maps of main.nested too, has the same header
    wrong = {m["name"]: header_mismatches(m, by_addr.get(m["hmap"])) for m in facts(version)["maps"]}
    assert {k: v for k, v in wrong.items() if v} == {}


@pytest.mark.parametrize("version", VERSIONS)
def test_import_objects_equal_memstats(imported, version):
    code, output, doc, _, _ = imported(version)
    assert code == 0, output
    ms = facts(version)["memstats"]  # read by the program just before the dump
    assert (len(doc["objects"]), sum(o["size"] for o in doc["objects"])) == (ms["HeapObjects"], ms["HeapAlloc"])


@pytest.mark.parametrize("version", VERSIONS)
def test_analyze_accepts_the_import(imported, version):
    code, output, _, out, _ = imported(version)
    assert code == 0, output
    r = CliRunner().invoke(cli, ["analyze", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["residency"] == "measured"


@pytest.mark.parametrize("version", VERSIONS)
def test_record_go_runs_each_versions_binary(imported, version, tmp_path):
    # GIVEN mapsdemo as built by this Go version (gctraceres reads $GCTRACE_HEAPDUMP/$GCTRACE_RESIDENCY)
    exe = imported(version)[4]
    out = tmp_path / "rec.json"
    # WHEN gctrace record-go runs it
    r = CliRunner().invoke(cli, ["record-go", "-o", str(out), "--", str(exe)])
    # THEN it wrote a dump and residency the importer read, with page states from the runtime
    assert r.exit_code == 0, r.output
    meta = json.loads(out.read_text())["meta"]
    assert meta["exit_status"] == 0 and meta["residency_agreed"] is True
    assert meta["page_state"].startswith("runtime: mheap_.pages")


# --- gctraceres's own Go tests ----------------------------------------------


def _go():
    for go in (os.environ.get("GCTRACE_GO"), "/usr/lib/go-1.19/bin/go", shutil.which("go")):
        if go and os.path.exists(go):
            return go
    return None


@pytest.mark.skipif(_go() is None, reason="no Go toolchain (set GCTRACE_GO)")
def test_gctraceres_go_tests():
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod", CGO_ENABLED="0")
    r = subprocess.run([_go(), "test", "-count=1", "."], cwd=ROOT / "tracer" / "goheap" / "gctraceres", env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
