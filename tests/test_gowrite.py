"""The C writer of a Go import's object lines writes exactly what orjson writes for goimport's records."""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest

from gctrace.tracer.goheap import gowrite
from gctrace.tracer.goheap.goheapdump import parse
from gctrace.tracer.goheap.goimport import import_heapdump
from gctrace.tracer.goheap.gotypes import Binary
from sanitized import run_sanitized
from test_goheapdump import BINARY, CASES, DUMPS, small_dump

NEEDS_C = pytest.mark.skipif(not gowrite.available(), reason="the C writer is not built (make native)")


@pytest.fixture(scope="module")
def binary():
    b = Binary(BINARY)
    yield b
    b.close()


@NEEDS_C
@pytest.mark.parametrize("case", CASES)
def test_object_lines_equal_orjsons_of_the_records(binary, monkeypatch, case):
    # GIVEN a real heap dump, imported (its objects: goimport.GoObjects)
    doc = import_heapdump(DUMPS / f"{case}.heapdump.gz", binary)
    objs = doc["objects"]
    want = b"".join(orjson.dumps({"object": o}) + b"\n" for o in objs)  # the records, one dict each
    # WHEN the C writer writes them, its buffer full at every call
    monkeypatch.setattr(gowrite, "BUFFER", 4096)
    f = io.BytesIO()
    objs.write(f, native=True)
    # THEN every line is the same, byte for byte, in the same order; most were written by C
    assert f.getvalue() == want
    assert len(objs.t.bucketsize) < len(objs) // 2


@NEEDS_C
def test_every_key_and_word_is_written_as_orjson_writes_it():
    # GIVEN the hand-built dump (6 objects of 16 bytes, each pointing at the next), with owners (one 2^64-1),
    # a type name JSON must escape, one object left to Python and one left out
    hd = parse(small_dump())
    n = len(hd.obj_addr)
    order = np.argsort(hd.objects.addr, kind="stable")
    names = ["other", "value", 'main.T"\\\n']
    kind = np.array([1, 0, 1, 0, 1, 0], np.int32)
    type_ = np.array([2, -1, 2, -1, -1, 2], np.int32)
    owner = np.array([0, (1 << 64) - 1, 0, 0xC000000000, 0, 0], np.uint64)
    plain = np.array([1, 1, 0, 1, 0, 1], bool)
    f = io.BytesIO()
    lines = {2: b'{"object":"by python"}', 4: None}
    assert gowrite.write_objects(f, hd, order, kind, type_, owner, names, plain, lines.__getitem__) == n - 1
    # THEN each plain line is orjson's for the same dict
    want = b""
    for k, i in enumerate(order.tolist()):
        if not plain[k]:
            want += lines[k] + b"\n" if lines[k] else b""
            continue
        a = hd.obj_addr[i]
        w = [hd.word(hd.raw[hd.obj_off[i]:], off) for off in hd.obj_fields[i]]
        o = {"addr": a, "size": hd.obj_size[i], "kind": names[kind[k]],
             "ptrs": [[off, x] for off, x in zip(hd.obj_fields[i], w) if x]}
        if owner[k]:
            o["map"] = int(owner[k])
        if type_[k] >= 0:
            o["type"] = names[type_[k]]
        want += orjson.dumps({"object": o}) + b"\n"
    assert f.getvalue() == want and b'"map":18446744073709551615' in want


@NEEDS_C
def test_words_that_are_no_address_are_left_out():
    # GIVEN one object whose fields hold 0, 2^63, 2^64-1 and 2^63-1
    from test_goheapdump import sv, uv
    from gctrace.tracer.goheap.goheapdump import HEADER

    body = b"".join(x.to_bytes(8, "little") for x in (0, 1 << 63, (1 << 64) - 1, (1 << 63) - 1))
    raw = (HEADER + uv(6) + uv(0) + uv(8) + uv(0) + uv(1 << 40) + sv(b"amd64") + sv(b"go1.26.6") + uv(1)
           + uv(1) + uv(0xC000000000) + sv(body) + b"".join(uv(1) + uv(8 * i) for i in range(4)) + uv(0) + uv(0))
    hd = parse(raw)
    f = io.BytesIO()
    gowrite.write_objects(f, hd, np.zeros(1, np.int64), np.zeros(1, np.int32), np.full(1, -1, np.int32),
                          np.zeros(1, np.uint64), ["other"], np.ones(1, bool), None)
    # THEN only the address below 2^63 is written, as the loader demands
    assert f.getvalue() == b'{"object":{"addr":824633720832,"size":32,"kind":"other","ptrs":[[24,9223372036854775807]]}}\n'


DRIVER = r"""
#include "_gowrite.c"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s\n", #c); abort(); } } while (0)

/* word returns a random word: often nil, sometimes >= 2^63, small, or any */
static uint64_t word(void) {
    switch (next() % 5) {
    case 0: return 0;
    case 1: return (1ull << 63) | next();
    case 2: return next() % 1000;
    default: return next() >> (next() % 64);
    }
}

int main(int argc, char **argv) {
    long iters = atol(argv[1]);
    static const char *names[] = {"\"other\"", "\"value\"", "\"main.T\\\"\\\\\\n\"", "\"\""};
    int nn = 4;
    int64_t name_start[5] = {0};
    char namebuf[64] = {0};
    for (int c = 0; c < nn; c++) {
        memcpy(namebuf + name_start[c], names[c], strlen(names[c]));
        name_start[c + 1] = name_start[c] + (int64_t)strlen(names[c]);
    }
    uint8_t *nb = malloc(name_start[nn]);  /* exactly the names: any overread is caught */
    memcpy(nb, namebuf, name_start[nn]);
    for (long it = 0; it < iters; it++) {
        int64_t n = next() % 40, nf = 0;
        int64_t *size = malloc(8 * (n + 1)), *off = malloc(8 * (n + 1)), *fs = malloc(8 * (n + 1));
        uint64_t *addr = malloc(8 * (n + 1)), *owner = malloc(8 * (n + 1));
        int32_t *kind = malloc(4 * (n + 1)), *type = malloc(4 * (n + 1));
        uint8_t *plain = malloc(n + 1);
        int64_t *order = malloc(8 * (n + 1)), total = 0;
        for (int64_t i = 0; i < n; i++) {
            size[i] = 8 * (1 + next() % 12); off[i] = total; total += size[i];
            addr[i] = next() >> (next() % 64); owner[i] = (next() & 1) ? next() : 0;
            kind[i] = next() % nn; type[i] = (int32_t)(next() % (nn + 1)) - 1; plain[i] = next() % 4 != 0;
            order[i] = n - 1 - i;
        }
        int64_t *data_off = malloc(8 * (12 * n + 1));
        for (int64_t i = 0; i < n; i++) {
            fs[i] = nf;
            for (int64_t o = 0; o < size[i]; o += 8) if (next() & 1) data_off[nf++] = o;
        }
        fs[n] = nf;
        uint8_t *raw = malloc(total ? total : 1);
        for (int64_t b = 0; b < total; b += 8) { uint64_t w = word(); memcpy(raw + b, &w, 8); }
        /* the reference: each plain object's line as printf writes it */
        char *want = malloc(200 * (n + 1) + 60 * (nf + 1)); int64_t wl = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t k = order[i];
            if (!plain[i]) continue;
            wl += sprintf(want + wl, "{\"object\":{\"addr\":%" PRIu64 ",\"size\":%" PRId64 ",\"kind\":%s,\"ptrs\":[",
                          addr[k], size[k], names[kind[i]]);
            int first = 1;
            for (int64_t f = fs[k]; f < fs[k + 1]; f++) {
                uint64_t w; memcpy(&w, raw + off[k] + data_off[f], 8);
                if (!w || w >= (1ull << 63)) continue;
                wl += sprintf(want + wl, "%s[%" PRId64 ",%" PRIu64 "]", first ? "" : ",", data_off[f], w);
                first = 0;
            }
            wl += sprintf(want + wl, "]");
            if (owner[i]) wl += sprintf(want + wl, ",\"map\":%" PRIu64, owner[i]);
            if (type[i] >= 0) wl += sprintf(want + wl, ",\"type\":%s", names[type[i]]);
            wl += sprintf(want + wl, "}}\n");
        }
        /* the writer, called as gowrite.py calls it, with small exact buffers */
        char *got = malloc(wl + 1); int64_t gl = 0, at = 0;
        int64_t cap = next() % 300;
        while (at < n) {
            uint8_t *out = malloc(cap ? cap : 1);
            int64_t before = at;
            int64_t w = gw_objects(raw, order, n, &at, addr, off, size, fs, data_off, kind, type, owner,
                                   nb, name_start, plain, out, cap);
            CHECK(w >= 0 && w <= cap && at >= before && at <= n);
            CHECK(gl + w <= wl);
            memcpy(got + gl, out, w); gl += w;
            free(out);
            if (at < n && !plain[at]) at++;
            else if (at < n && at == before) cap = 2 * cap + 128 + 2 * 20 + 44 * 12;
        }
        CHECK(gl == wl && memcmp(got, want, wl) == 0);
        free(got); free(want); free(raw); free(data_off); free(order); free(plain); free(type); free(kind);
        free(owner); free(addr); free(fs); free(off); free(size);
    }
    free(nb);
    puts("ok");
    return 0;
}
"""


def test_c_writer_under_asan_and_ubsan(tmp_path):
    # GIVEN random objects: words nil, >= 2^63 or not, owners, names to escape, objects left to Python
    # WHEN the writer, built with ASan and UBSan, writes them 3000 times into exactly-sized small buffers
    r = run_sanitized(tmp_path, DRIVER, "Go import's line writer", ["3000"], include="tracer/goheap")
    # THEN nothing is read or written out of bounds, no UB, and the lines are printf's, byte for byte
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr[-3000:]
