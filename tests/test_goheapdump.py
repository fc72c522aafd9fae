"""Go heap-dump importer: real dumps of fixtures/go/mapheap against what the program printed about itself.

Everything here runs on committed files (fixtures/go/heapdumps/, the mapheap
binary): no Go toolchain at test time. See fixtures/go/README.md.
"""

from __future__ import annotations

import json
import random
import struct
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gctrace.cli import cli
from gctrace.tracer.goheap.goheapdump import HEADER, HeapDumpError, parse, read_heapdump
from gctrace.tracer.goheap.goimport import import_heapdump, write_dump
from gctrace.tracer.goheap.gotypes import Binary

GO = Path(__file__).resolve().parent.parent / "fixtures" / "go"
DUMPS = GO / "heapdumps"
BINARY = GO / "mapheap" / "mapheap"
CASES = ["range-delete", "perkey-delete", "grow", "free-madvfree", "free-dontneed"]
GLOBAL_MAPS = ("main.ints", "main.cache")


@pytest.fixture(scope="module")
def binary():
    b = Binary(BINARY)
    yield b
    b.close()


@pytest.fixture(scope="module")
def imported(binary, tmp_path_factory):
    """imported maps each case to (gctrace dump dict, its file, the program's facts)."""
    out = {}
    d = tmp_path_factory.mktemp("go")

    def get(case):
        if case not in out:
            doc = import_heapdump(DUMPS / f"{case}.heapdump.gz", binary, DUMPS / f"{case}.residency.json")
            path = d / f"{case}.json.gz"
            write_dump(doc, path)
            out[case] = (doc, path, json.loads((DUMPS / f"{case}.facts.json").read_text()))
        return out[case]

    return get


def _analysis(path):
    from gctrace.analysis.analyze import analyze
    from gctrace.analysis.load import load_dump

    return analyze(load_dump(path))


@pytest.mark.parametrize("case", CASES)
def test_global_maps_equal_what_the_program_read_through_unsafe(imported, case):
    # GIVEN the hmap headers the program printed at the moment of its dump
    doc, _, facts = imported(case)
    by_name = {m.get("name"): m for m in doc["maps"]}
    for name in GLOBAL_MAPS:
        want = facts["maps"][name]
        # THEN the importer, from the dump alone, decodes the same header
        got = by_name[name]
        for k in ("hmap", "count", "B", "noverflow", "nevacuate", "oldbuckets", "buckets", "flags", "hash0"):
            assert got[k] == want[k], (case, name, k)
        assert got["bucketsize"] == 144
    assert by_name["main.ints"]["noscan"] is True and by_name["main.cache"]["noscan"] is False


@pytest.mark.parametrize("case", CASES)
def test_objects_add_up_to_memstats(imported, case):
    doc, _, _ = imported(case)
    ms = doc["meta"]["memstats"]
    assert len(doc["objects"]) == ms["HeapObjects"]
    assert sum(o["size"] for o in doc["objects"]) == ms["HeapAlloc"]
    assert doc["meta"]["residency_agreed"] is True
    assert doc["meta"]["pages_filled"] == 0  # every object page came from the residency file


def test_growing_maps_are_caught_mid_growth(imported):
    doc, _, _ = imported("grow")
    for m in doc["maps"]:
        if m.get("name") in GLOBAL_MAPS:
            assert m["oldbuckets"] and 0 < m["nevacuate"] < 1 << (m["B"] - 1)
    a = _analysis(imported("grow")[1])
    audits = {m.header.hmap: m for m in a.maps}
    ints = next(m for m in doc["maps"] if m.get("name") == "main.ints")
    assert audits[ints["hmap"]].oldbuckets_bytes >= (1 << (ints["B"] - 1)) * 144


def test_range_delete_leaves_overflow_buckets_as_garbage(imported):
    # GIVEN maps emptied with `for k := range m { delete(m, k) }` (mapclear)
    doc, path, _ = imported("range-delete")
    a = _analysis(path)
    names = {m["hmap"]: m["name"] for m in doc["maps"] if m.get("name") in GLOBAL_MAPS}
    audits = [m for m in a.maps if m.header.hmap in names]
    # THEN the arrays stay live with every slot empty and no overflow bucket on a chain
    for m in audits:
        assert m.reachable and m.buckets_reachable and m.header.count == 0
        assert m.occupied_buckets == 0 and m.overflow_count == 0 and m.max_chain == 0
    # AND the dropped overflow buckets are unreachable objects of kind overflow, each owned by its map
    dropped = [o for o in doc["objects"] if o["kind"] == "overflow" and o.get("map") in names]
    assert {o["map"] for o in dropped} == set(names)
    assert len(dropped) > 256  # more than the 256 preallocated per array, so separately allocated
    reach = dict(zip(a.heap.obj_addr.tolist(), a.marking.reachable.tolist()))
    assert not any(reach[o["addr"]] for o in dropped)
    assert any(sum(o["slots"]) for o in dropped)  # mapclear does not wipe them: the old entries are still there
    from gctrace.analysis.report import text_report

    text = text_report(a)
    assert "never shrink" in text
    # AND each map's own diagnosis names its dropped overflow buckets (the dump says whose they are)
    assert text.count("are unreachable garbage until the next sweep (attributed to this map by the dump)") == 2


def test_perkey_delete_keeps_every_bucket_live_and_empty(imported):
    # GIVEN maps emptied by deleting each key
    doc, path, facts = imported("perkey-delete")
    a = _analysis(path)
    names = {m["hmap"]: m["name"] for m in doc["maps"] if m.get("name") in GLOBAL_MAPS}
    for m in (m for m in a.maps if m.header.hmap in names):
        # THEN the array and its overflow chains stay reachable with no occupied slot
        assert m.reachable and m.buckets_reachable and m.occupied_buckets == 0
        assert m.overflow_count > 0 and m.max_chain >= 1
        assert m.empty_bucket_bytes >= m.primary_buckets * 144
    from gctrace.analysis.report import text_report

    text = text_report(a)
    assert "never shrink" in text and "stay on the chains" in text


def test_madv_free_keeps_released_pages_resident(imported):
    # GIVEN the same program after debug.FreeOSMemory(), once with MADV_FREE, once with MADV_DONTNEED
    free_doc, free_path, free_facts = imported("free-madvfree")
    dn_doc, dn_path, _ = imported("free-dontneed")
    assert free_doc["meta"]["madvise"] == "free" and dn_doc["meta"]["madvise"] == "dontneed"
    af, ad = _analysis(free_path), _analysis(dn_path)
    # THEN with MADV_FREE the released pages are still resident (lazyfree), as smaps LazyFree says
    lazy_kb = free_doc["meta"]["arena_lazyfree_kb"]
    assert lazy_kb > 1024
    from gctrace.analysis.report import json_report, text_report

    pf, pd = json_report(af)["pages"], json_report(ad)["pages"]
    assert pf["lazyfree"] * 4 == pytest.approx(lazy_kb, rel=0.05)
    assert pd["lazyfree"] == 0 and dn_doc["meta"]["arena_lazyfree_kb"] == 0
    assert pd["nonresident"] > pf["nonresident"] + pf["lazyfree"] // 2  # dontneed: gone from RSS

    assert "MADV_FREE" in text_report(af) and "lazyfree 0" in text_report(ad)


def test_roots_are_named(imported):
    doc, _, _ = imported("grow")
    kinds = {r["kind"] for r in doc["roots"]}
    assert {"global", "stack"} <= kinds
    # the three os.File finalizers (stdin, stdout, stderr) were read; their function values and the
    # pointers in the finalized objects lie outside the heap, so they make no root
    assert doc["meta"]["records"]["finalizer"] == 3
    names = {r["name"] for r in doc["roots"] if r["kind"] == "global"}
    assert {"main.ints", "main.cache"} <= names
    assert "main.main" in {r["name"] for r in doc["roots"] if r["kind"] == "stack"}


def test_cli_import_and_analyze(tmp_path):
    out = tmp_path / "d.jsonl.gz"
    r = CliRunner().invoke(cli, ["import", "go-heapdump", str(DUMPS / "free-dontneed.heapdump.gz"),
                                 "--binary", str(BINARY), "--residency",
                                 str(DUMPS / "free-dontneed.residency.json"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["analyze", "--json", str(out)])
    assert r.exit_code == 0 and json.loads(r.output)["residency"] == "measured"


def test_record_go_runs_the_committed_binary(tmp_path):
    out = tmp_path / "rec.json.gz"
    r = CliRunner().invoke(cli, ["record-go", "-o", str(out), "--", str(BINARY), "-mode", "grow"])
    assert r.exit_code == 0, r.output
    doc = json.loads(__import__("gzip").decompress(out.read_bytes()))
    assert doc["meta"]["exit_status"] == 0
    assert {"main.ints", "main.cache"} <= {m.get("name") for m in doc["maps"]}
    assert len(doc["objects"]) == doc["meta"]["memstats"]["HeapObjects"]



def test_record_go_reads_its_dump_back_before_writing(tmp_path, monkeypatch):
    # GIVEN an import that (as a bug would) gives one map twice
    from gctrace.tracer.goheap import goimport

    real = goimport.import_heapdump

    def broken(*args, **kwargs):
        doc = real(*args, **kwargs)
        doc["maps"].append(dict(doc["maps"][0]))
        return doc

    monkeypatch.setattr(goimport, "import_heapdump", broken)
    out = tmp_path / "rec.jsonl"
    # WHEN record-go runs the program and imports its dump
    r = CliRunner().invoke(cli, ["record-go", "-o", str(out), "--", str(BINARY), "-mode", "grow"])
    # THEN the loader's refusal is the one line, and nothing is written
    assert r.exit_code == 2, r.output
    assert "heap dump: the import gives a dump that analyze refuses" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_record_go_keeps_its_files_but_never_replaces_the_users(tmp_path):
    keep = tmp_path / "keep"
    out = tmp_path / "rec.jsonl"
    # GIVEN --keep a new directory: the raw heap dump and residency file stay there
    r = CliRunner().invoke(cli, ["record-go", "-o", str(out), "--keep", str(keep), "--", str(BINARY)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in keep.iterdir()) == ["heap.dump", "heap.residency.json"]
    # WHEN it is run again into the same directory (which now holds files gctrace may not replace)
    before = (keep / "heap.dump").read_bytes()
    out.unlink()
    r = CliRunner().invoke(cli, ["record-go", "-o", str(out), "--keep", str(keep), "--", str(BINARY)])
    # THEN it refuses in one line before running the program, and the files are as they were
    assert r.exit_code == 2 and "already holds heap.dump: gctrace will not replace it" in r.output, r.output
    assert (keep / "heap.dump").read_bytes() == before and not out.exists()


# --- corrupt input -----------------------------------------------------------


def uv(x: int) -> bytes:
    out = bytearray()
    while x >= 0x80:
        out.append(x & 0x7F | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


def sv(b: bytes) -> bytes:
    return uv(len(b)) + b


def small_dump() -> bytes:
    """small_dump is a valid heap dump using every record type, built by hand."""
    rec = [HEADER, uv(6) + uv(0) + uv(8) + uv(0xC000000000) + uv(0xC004000000) + sv(b"amd64") + sv(b"go1.19.8") + uv(2)]
    rec.append(uv(3) + uv(0x4000) + uv(16) + sv(b"main.T") + uv(1))
    rec.append(uv(8) + uv(0x5000) + uv(0x4000))
    for i in range(6):
        body = struct.pack("<QQ", 0xC000000000 + 16 * ((i + 1) % 6), i)
        rec.append(uv(1) + uv(0xC000000000 + 16 * i) + sv(body) + uv(1) + uv(0) + uv(0))
    rec.append(uv(4) + b"".join(uv(x) for x in (0xC000100000, 0x7000, 1, 0x401000, 4, 0, 0, 0))
               + sv(b"sleep") + uv(0) + uv(0xC000200000) + uv(0) + uv(0))
    rec.append(uv(5) + uv(0x7000) + uv(0) + uv(0) + sv(struct.pack("<QQ", 0xC000000000, 0)) + uv(0x401000)
               + uv(0x401010) + uv(0x401010) + sv(b"main.main") + uv(1) + uv(0) + uv(0))
    rec.append(uv(9) + uv(0xC000200000) + uv(0) + uv(1234))
    rec.append(uv(12) + uv(0x580000) + sv(struct.pack("<Q", 0xC000000010)) + uv(1) + uv(0) + uv(0))
    rec.append(uv(13) + uv(0x590000) + sv(struct.pack("<Q", 0)) + uv(1) + uv(0) + uv(0))
    rec.append(uv(7) + b"".join(uv(x) for x in (0xC000000020, 0x5100, 0x401100, 0x4000, 0x4000)))
    rec.append(uv(11) + b"".join(uv(x) for x in (0xC000000030, 0x5100, 0x401100, 0x4000, 0x4000)))
    rec.append(uv(2) + sv(b"other") + uv(0xC000000040))
    rec.append(uv(14) + b"".join(uv(x) for x in (0x6000, 0xC000100000, 0x7000, 0x401000, 0, 0, 0)))
    rec.append(uv(15) + b"".join(uv(x) for x in (0x6100, 0xC000100000, 0x4000, 0xC000000000, 0, 0)))
    rec.append(uv(10) + b"".join(uv(i) for i in range(24)) + b"".join(uv(0) for _ in range(256)) + uv(3))
    rec.append(uv(16) + uv(0x8000) + uv(16) + uv(1) + sv(b"main.main") + sv(b"main.go") + uv(12) + uv(5) + uv(1))
    rec.append(uv(17) + uv(0xC000000000) + uv(0x8000))
    rec.append(uv(0))
    return b"".join(rec)


def test_small_dump_parses_every_record():
    d = parse(small_dump())
    assert len(d.obj_addr) == 6 and d.memstats["NumGC"] == 3 and d.memstats["HeapAlloc"] == 6
    assert set(d.counts) == {"dumpparams", "type", "itab", "object", "goroutine", "stackframe", "osthread",
                             "data", "bss", "finalizer", "queuedfinalizer", "otherroot", "defer", "panic",
                             "memstats", "memprof", "allocsample", "eof"}
    assert d.frames[0].name == "main.main" and d.frames[0].goroutine == 0xC000100000


@pytest.mark.parametrize("mutate, problem", [
    (lambda b: b[:-1], "before the eof record"),
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b"go1.6 heap dump\n" + b[16:], "bad header"),
    (lambda b: b"", "empty file"),
    (lambda b: HEADER + b"\x80" * 11, "bad uvarint"),
    (lambda b: HEADER + b"\xff" * 9 + b"\x7f", "bad uvarint (overflows 64 bits)"),
    (lambda b: HEADER + uv(1) + uv(0xC000000000) + uv(1 << 40), "runs past the end"),
    (lambda b: HEADER + uv(99), "unknown tag 99"),
    (lambda b: b + b"\x00", "after the eof record"),
    (lambda b: HEADER + uv(1) + uv(0xC000000000) + sv(b"x" * 8) + uv(1) + uv(8) + uv(0), "outside"),
    (lambda b: HEADER + uv(1) + uv(0xC000000000) + sv(b"x" * 8) + uv(7) + uv(0) + uv(0), "unknown field kind"),
])
def test_corrupt_dumps_are_refused(mutate, problem):
    with pytest.raises(HeapDumpError) as e:
        parse(mutate(small_dump()), "bad.dump")
    assert problem in str(e.value) and str(e.value).startswith("bad.dump: ")


def test_every_truncation_of_a_real_dump_is_refused():
    raw = read_heapdump(DUMPS / "free-dontneed.heapdump.gz").raw
    for cut in [0, 5, 16, 17, 100, 4096, len(raw) // 3, len(raw) - 2, len(raw) - 1]:
        with pytest.raises(HeapDumpError):
            parse(raw[:cut], "cut.dump")


def test_cli_refuses_a_corrupt_dump_in_one_line(tmp_path):
    bad = tmp_path / "bad.dump"
    bad.write_bytes(small_dump()[:-7])
    r = CliRunner().invoke(cli, ["import", "go-heapdump", str(bad), "--binary", str(BINARY), "-o",
                                 str(tmp_path / "o.json")])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and r.output.startswith(f"gctrace: {bad}: ") and "Traceback" not in r.output


def _fuzz(seconds: float, seed: int) -> int:
    rng = random.Random(seed)
    base = small_dump()
    n = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        b = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            if not b:
                break
            op, i = rng.randrange(4), rng.randrange(len(b))
            if op == 0:
                b[i] = rng.randrange(256)
            elif op == 1:
                del b[i:i + rng.randint(1, 8)]
            elif op == 2:
                b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            else:
                b = b[:i]
        try:
            parse(bytes(b), "fuzz.dump")
        except HeapDumpError as e:
            assert str(e).startswith("fuzz.dump: ") and "\n" not in str(e)
        n += 1
    return n


def test_parser_fuzz_quick():
    assert _fuzz(1.0, 1) > 100


@pytest.mark.slow
def test_parser_fuzz_a_minute():
    assert _fuzz(60.0, 2) > 10000


# --- too big to hold -----------------------------------------------------------


@pytest.mark.parametrize("form", ["gzip bomb", "endless pipe"])
def test_a_dump_too_big_to_hold_is_refused_when_it_gets_there(tmp_path, monkeypatch, form):
    import gzip
    import os
    import threading

    from gctrace.tracer.goheap import goheapdump

    # GIVEN a limit of 8 MiB (half of MemAvailable on a real machine) and a valid start of a dump
    monkeypatch.setattr(goheapdump, "memory_limit", lambda: 8 << 20)
    head = (DUMPS / "grow.heapdump.gz").read_bytes()
    head = gzip.decompress(head)[:4096]
    path = tmp_path / "heap.dump"
    if form == "gzip bomb":  # 64 MiB of zeros after it, in 64 KiB of gzip
        path.write_bytes(gzip.compress(head + bytes(64 << 20), 9))
        assert path.stat().st_size < 200_000
    else:  # a FIFO whose writer never stops
        os.mkfifo(path)

        def feed():
            try:
                with open(path, "wb") as w:
                    w.write(head)
                    while True:
                        w.write(bytes(1 << 20))
            except BrokenPipeError:
                pass

        threading.Thread(target=feed, daemon=True).start()
    # WHEN it is read
    with pytest.raises(HeapDumpError) as e:
        goheapdump.read_heapdump(str(path))
    # THEN it is refused at the limit, naming the file and why
    assert "runs past 8 MiB, half of this machine's available memory" in str(e.value)
    assert str(path) in str(e.value)


def test_the_limit_is_half_of_memavailable():
    from gctrace.tracer.goheap.goheapdump import memory_limit

    with open("/proc/meminfo") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    assert abs(memory_limit() - kib * 512) < 256 << 20  # MemAvailable moves a little between the two reads


def test_a_heap_dump_through_a_fifo_imports_as_the_file_does(tmp_path):
    import os
    import threading

    # GIVEN the same gzipped heap dump as a file and through a FIFO (which can be read once only)
    src = DUMPS / "grow.heapdump.gz"
    fifo = tmp_path / "heap.fifo"
    os.mkfifo(fifo)
    threading.Thread(target=lambda: fifo.write_bytes(src.read_bytes()), daemon=True).start()
    # WHEN both are imported
    outs = []
    for i, path in enumerate((fifo, src)):
        out = tmp_path / f"d{i}.jsonl"
        r = CliRunner().invoke(cli, ["import", "go-heapdump", str(path), "--binary", str(BINARY), "-o", str(out)])
        assert r.exit_code == 0, r.output
        outs.append(json.loads(line) for line in out.read_text().splitlines())
    # THEN the dumps are the same but for the name of their source
    a, b = ([{"meta": {k: v for k, v in rec["meta"].items() if k != "heapdump"}} if "meta" in rec else rec
             for rec in o] for o in outs)
    assert a == b
