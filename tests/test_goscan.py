"""The C scanner of heap-dump object records takes only what the Python parser accepts, and never crashes.

Whatever the scanner does not take, Python reads (and accepts or names the
problem), so for every input below parse must answer exactly as with the
scanner turned off (GCTRACE_GOHEAPDUMP_C=0): the same HeapDump, or the same
HeapDumpError. The inputs are random valid dumps built from the grammar,
random damage to them, and the committed real dumps. The C file is also built
with AddressSanitizer and UBSan and run over a corpus and a quick fuzz.
"""

from __future__ import annotations

import gzip
import random
import struct
from pathlib import Path

import numpy as np
import pytest

from gctrace.tracer.goheap import goscan
from gctrace.tracer.goheap.goheapdump import HEADER, HeapDumpError, parse
import fuzzing
from fuzzing import FUZZ_MAIN, FUZZ_PROLOGUE
from sanitized import run_sanitized
from test_goheapdump import DUMPS, small_dump, sv, uv

NEEDS_C = pytest.mark.skipif(not goscan.available(),
                             reason="the C scanner is not built (make native): nothing to compare")
COLS = ("addr", "off", "size", "field_start", "field_kind", "field_off")


def outcome(raw: bytes, fast: bool, monkeypatch):
    """outcome is what parsing raw gives: everything the HeapDump holds, or the error line."""
    monkeypatch.setenv("GCTRACE_GOHEAPDUMP_C", "1" if fast else "0")
    try:
        d = parse(raw, "x.dump")
    except HeapDumpError as e:
        return str(e)
    arrays = [getattr(d.objects, c).tolist() for c in COLS]
    rest = {k: v for k, v in vars(d).items() if k != "objects"}
    return [d.obj_addr, d.obj_size, d.obj_off, d.obj_fields, arrays, rest]


def assert_same(raw: bytes, monkeypatch):
    fast = outcome(raw, True, monkeypatch)
    assert fast == outcome(raw, False, monkeypatch)
    return fast


def long_uv(rng: random.Random, x: int) -> bytes:
    """long_uv is x as a varint, sometimes overlong (padded with 0x80 bytes and a final 0), as uv() accepts."""
    b = bytearray(uv(x))
    pad = rng.choice([0, 0, 0, 1, 2]) if len(b) < 9 else 0
    if pad:
        b[-1] |= 0x80
        b += b"\x80" * (pad - 1) + b"\x00"
    return bytes(b)


def random_dump(rng: random.Random) -> bytes:
    """random_dump is a valid heap dump: params, then objects with every field kind among other records."""
    ptr = rng.choice([8, 8, 4])
    v = lambda x: long_uv(rng, x)  # noqa: E731
    recs = [HEADER, v(6) + v(0) + v(ptr) + v(0xC000000000) + v(0xC004000000) + sv(b"amd64") + sv(b"go1.26.6")
            + v(2)]
    others = [
        lambda: v(3) + v(rng.randrange(1 << 40)) + v(rng.randrange(1 << 20)) + sv(b"main.T") + v(rng.randrange(2)),
        lambda: v(8) + v(rng.randrange(1 << 40)) + v(rng.randrange(1 << 40)),
        lambda: v(2) + sv(b"finq") + v(rng.randrange(1 << 64)),
        lambda: v(7) + b"".join(v(rng.randrange(1 << 48)) for _ in range(5)),
        lambda: v(4) + b"".join(v(rng.randrange(1 << 40)) for _ in range(8)) + sv(b"chan receive")
        + b"".join(v(0) for _ in range(4)),
        lambda: v(5) + v(0x7000) + v(1) + v(0) + sv(struct.pack("<QQ", 0xC000000000, 0)) + v(0x401000)
        + v(0x401010) + v(0x401010) + sv(b"main.main") + v(1) + v(0) + v(0),
        lambda: v(9) + v(1) + v(2) + v(3),
        lambda: v(17) + v(0xC000000000) + v(0x8000),
    ]
    addr = 0xC000000000
    for _ in range(rng.randrange(60)):
        if rng.random() < 0.2:
            recs.append(rng.choice(others)())
            continue
        size = rng.choice([ptr, 2 * ptr, 3 * ptr, 48, 136, 1 + rng.randrange(300)])
        fields = b""
        for _ in range(rng.randrange(6) if size >= ptr else 0):
            kind = rng.choice([1, 1, 2, 3])
            width = 1 if kind == 1 else 2
            if width * ptr <= size:
                fields += v(kind) + v(ptr * rng.randrange((size - width * ptr) // ptr + 1))
        addr += rng.choice([size, 4096, 1 << 40]) if rng.random() < 0.9 else 0
        recs.append(v(1) + v(rng.choice([addr, addr, 1 << 63, (1 << 64) - 1]))
                    + sv(bytes(rng.randrange(256) for _ in range(size))) + fields + v(0))
    recs.append(v(0))
    return b"".join(recs)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """mutate returns data with a few random byte-level edits, biased towards the grammar's own bytes."""
    return fuzzing.mutate(rng, data, lambda rng: rng.choice([0, 1, 2, 3, 4, 7, 0x7F, 0x80, 0xFF, rng.randrange(256)]),
                          [b"\x00", b"\x01", b"\x80", b"\xff" * 9 + b"\x01", b"\x80" * 10 + b"\x00", b"\x05"],
                          lambda rng: uv(rng.choice([0, 1, 8, 16, 48, 1 << 40, (1 << 64) - 1])))


@NEEDS_C
def test_random_valid_dumps_parse_as_without_the_scanner(monkeypatch):
    # GIVEN valid dumps built at random from the grammar (seeded, so a failure replays)
    rng = random.Random(20261201)
    objects = 0
    for _ in range(300):
        got = assert_same(random_dump(rng), monkeypatch)
        # THEN both parsers read them, identically
        assert not isinstance(got, str), got
        objects += len(got[0])
    assert objects > 3000


@NEEDS_C
def test_damaged_dumps_parse_or_fail_as_without_the_scanner(monkeypatch):
    # GIVEN valid dumps, randomly damaged
    rng = random.Random(11)
    errors = taken = 0
    for _ in range(1500):
        raw = mutate(rng, random_dump(rng) if rng.random() < 0.8 else small_dump())
        # THEN the answer, a HeapDump or the error line, never depends on the scanner
        got = assert_same(raw, monkeypatch)
        errors += isinstance(got, str)
        taken += not isinstance(got, str) and len(got[0]) > 0
    assert errors > 300 and taken > 100  # both outcomes are exercised


@NEEDS_C
@pytest.mark.parametrize("raw", [
    HEADER + uv(1) + uv(0xC000000000) + sv(b"x" * 8) + uv(1) + uv(8) + uv(0),  # field past the contents
    HEADER + uv(1) + uv(0xC000000000) + sv(b"x" * 8) + uv(7) + uv(0) + uv(0),  # unknown field kind
    HEADER + uv(1) + uv(0xC000000000) + sv(b"x" * 8) + uv(1) + uv(4) + uv(0),  # not pointer-aligned
    HEADER + uv(1) + uv(0xC000000000) + sv(b"x" * 16) + uv(2) + uv(8) + uv(0),  # iface half outside
    HEADER + uv(1) + uv(0xC000000000) + sv(b"x" * 8) + uv(1) + b"\xff" * 9 + b"\x01" + uv(0),  # off 2^64-1
    HEADER + uv(1) + uv(0) + sv(b"x" * 8) + uv(0),  # address 0
    HEADER + uv(1) + uv(0xC000000000) + uv(0) + uv(0),  # no contents
    HEADER + uv(1) + uv(0xC000000000) + uv(1 << 40),  # contents past the end
    HEADER + uv(1) + b"\xff" * 9 + b"\x02",  # address over 64 bits
    HEADER + b"\x81\x00" + uv(0xC000000000) + sv(b"x" * 8) + uv(0) + uv(6) + uv(0) + uv(8) + uv(0) + uv(0)
    + sv(b"amd64") + sv(b"go") + uv(1) + uv(0),  # an overlong tag 1, then params, then eof: valid
])
def test_edge_object_records_parse_as_without_the_scanner(monkeypatch, raw):
    assert_same(raw, monkeypatch)


@NEEDS_C
@pytest.mark.parametrize("case", ["range-delete", "grow", "free-dontneed"])
def test_real_dumps_parse_as_without_the_scanner(monkeypatch, case):
    raw = gzip.decompress((DUMPS / f"{case}.heapdump.gz").read_bytes())
    got = assert_same(raw, monkeypatch)
    assert len(got[0]) == got[5]["memstats"]["HeapObjects"] > 100


@NEEDS_C
def test_the_columns_grow_for_many_objects_and_fields():
    # GIVEN 100 objects of 40 pointer fields each, and a scanner with room for 16 objects and 16 fields
    rec = uv(1) + uv(0xC000000000) + sv(bytes(320)) + b"".join(uv(1) + uv(8 * k) for k in range(40)) + uv(0)
    raw = HEADER + rec * 100 + uv(0)
    s = goscan.Scanner(raw, 1)
    # WHEN it scans THEN it grows its columns and stops only at the eof record, for Python
    status, pos = s.scan(len(HEADER), len(raw), 8)
    assert (status, pos) == (goscan.OTHER, len(raw) - 1)
    cols = s.columns()
    assert len(cols["addr"]) == 100 and cols["field_end"][-1] == 4000
    assert np.array_equal(cols["field_off"][:40], 8 * np.arange(40))
    head = len(uv(1) + uv(0xC000000000) + uv(320))
    assert cols["off"].tolist() == [len(HEADER) + k * len(rec) + head for k in range(100)]


@NEEDS_C
def test_progress_limit_stops_at_a_record_boundary():
    raw = small_dump()
    first = raw.index(uv(1) + uv(0xC000000000))
    s = goscan.Scanner(raw, 16)
    status, pos = s.scan(first, first + 1, 8)
    assert status == goscan.LIMIT and len(s.columns()["addr"]) == 1 and raw[pos] == 1


DRIVER_HEAD = r"""
#include "_goheapdump.c"
"""
DRIVER_BODY = r"""enum { CAP = 64 };
static uint64_t addr[CAP]; static int64_t off[CAP], size[CAP], fend[CAP], foff[CAP]; static uint8_t fkind[CAP];

static void run(const uint8_t *data, int64_t n) {
    uint8_t *buf = malloc(n ? n : 1);  /* exactly n bytes: any overread is caught */
    memcpy(buf, data, n);
    ghd_scan_t s = {0};
    s.addr = addr; s.off = off; s.size = size; s.field_end = fend; s.field_kind = fkind; s.field_off = foff;
    s.end = n; s.pos = n < 16 ? n : 16; s.limit = n; s.ptr_size = (next() & 1) ? 8 : 4;
    for (int guard = 0; guard < 100000; guard++) {
        s.obj_cap = 1 + next() % CAP; s.field_cap = next() % CAP; s.n_obj = s.n_field = 0;
        int64_t before = s.pos;
        int st = ghd_scan(buf, &s);
        CHECK(s.n_obj <= s.obj_cap && s.n_field <= s.field_cap && s.pos >= before && s.pos <= n);
        for (int64_t i = 0; i < s.n_obj; i++) {
            CHECK(addr[i] && size[i] > 0 && off[i] + size[i] <= n && fend[i] <= s.n_field);
            CHECK(i == 0 || fend[i] >= fend[i - 1]);
        }
        for (int64_t k = 0; k < s.n_field; k++) CHECK(fkind[k] >= 1 && fkind[k] <= 3 && foff[k] % s.ptr_size == 0);
        if (st == GHD_END) break;
        if (st == GHD_FULL) continue;  /* full: the next capacities may fit the record */
        s.pos++;  /* skip a byte past what Python would read, to keep scanning the rest */
    }
    free(buf);
}

/* runs of varint continuation bytes, ending in one that stops: uvarints too long or overflowing 64 bits */
static const char *TOKENS[] = {"\xff", "\xff\xff", "\xff\xff\xff", "\xff\xff\xff\xff", "\xff\xff\xff\xff\xff",
                               "\xff\xff\xff\xff\xff\xff", "\xff\xff\xff\xff\xff\xff\xff",
                               "\xff\xff\xff\xff\xff\xff\xff\xff", "\xff\xff\xff\xff\xff\xff\xff\xff\xff",
                               "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"};
"""
DRIVER = DRIVER_HEAD + FUZZ_PROLOGUE + DRIVER_BODY + FUZZ_MAIN


def test_c_scanner_under_asan_and_ubsan(tmp_path):
    # GIVEN a corpus: random valid dumps, the hand-built one with every record, the start of a real dump
    rng = random.Random(3)
    corpus = []
    for i, raw in enumerate([small_dump()] + [random_dump(rng) for _ in range(8)]
                            + [gzip.decompress((DUMPS / "grow.heapdump.gz").read_bytes())[:60000]]):
        p = Path(tmp_path) / f"c{i}.dump"
        p.write_bytes(raw)
        corpus.append(p)
    # WHEN the scanner, built with ASan and UBSan, reads them and 3000 random mutations of them
    r = run_sanitized(tmp_path, DRIVER, "heap-dump scanner", ["3000", *corpus], include="tracer/goheap")
    # THEN nothing is read or written out of bounds, no UB, every invariant holds
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr[-3000:]
