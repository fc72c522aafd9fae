"""The C record parser takes only what the Python checks accept, and never crashes.

Whatever it does not take, the loader reads in Python, which accepts it or
names the problem; so for every input below the loader must answer exactly
as with the C parser turned off (GCTRACE_FASTPARSE=0). The C file is also
built with AddressSanitizer and UBSan and run over a corpus and a quick fuzz.
"""

import json
import random

import numpy as np
import pytest

from dumps import BASE, FIXTURES
from gctrace.analysis import fastparse
from gctrace.analysis.load import load_dump
from gctrace.errors import DumpError
import fuzzing
from fuzzing import FUZZ_MAIN, FUZZ_PROLOGUE
from sanitized import run_sanitized

NEEDS_C = pytest.mark.skipif(not fastparse.available(),
                             reason="the C parser is not built (make native): nothing to compare")
HEADER = b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096, "ptr_size": 8}}'
A = str(BASE).encode()

# (taken by C, object body); "@" stands for the address BASE.
OBJECTS = [
    (True, b'{"addr": @, "size": 16}'),
    (True, b'{"size":16,"kind":"hmap","addr":@,"ptrs":[[8, @]],"slots":[0,8],"type":"T","site":5,"map":@}'),
    (True, b'{"addr": @, "size": 16, "x": {"a": [1, -2, {"b": null}], "c": true, "d": "\xc3\xa9"}}'),
    (True, b'{"addr": @, "size": 16, "ptrs": [[8, @], [0, 7]]}'),  # unsorted fields
    (True, b' {\t"addr" :\r@ , "size":16 } '),
    (True, b'{"addr": 9223372036854775807, "size": 1}'),  # ends exactly at 2^63
    (False, b'{"addr": 9223372036854775807, "size": 2}'),  # past 2^63
    (False, b'{"addr": 9223372036854775808, "size": 16}'),  # 2^63
    (False, b'{"addr": 18446744073709551616, "size": 16}'),  # orjson: a float
    (False, b'{"addr": 4096.0, "size": 16}'),
    (False, b'{"addr": 4e3, "size": 16}'),
    (False, b'{"addr": @, "size": -16}'),
    (False, b'{"addr": @, "size": 0}'),
    (False, b'{"addr": @, "size": true}'),
    (False, b'{"addr": @, "size": "16"}'),
    (False, b'{"addr": 01, "size": 16}'),
    (False, b'{"size": 16}'),
    (False, b'{"addr": @, "addr": 4096, "size": 16}'),  # a key twice: refused (orjson would keep the last)
    (False, b'{"addr": @, "size": 16, "x": 1, "x": 2}'),  # an unknown key twice
    (False, b'{"addr": @, "size": 16, "x": {"a": 1, "a": 2}}'),  # a key twice in a skipped value
    (True, b'{"addr": @, "size": 16, "x": {"a": 1}, "y": {"a": 2}}'),  # the same key in two objects
    (False, b'{"addr": @, "size": 16, "kind": "h\\u0061map"}'),
    (False, b'{"addr": @, "size": 16, "kind": "a\\"b"}'),
    (False, b'{"addr": @, "size": 16, "kind": "\xff"}'),  # not UTF-8
    (False, b'{"addr": @, "size": 16, "kind": "\xed\xa0\x80"}'),  # a surrogate
    (False, b'{"addr": @, "size": 16, "kind": "a\tb"}'),  # a raw control character
    (False, b'{"addr": @, "size": 16, "kind": null}'),
    (False, b'{"addr": @, "size": 16, "x": 1.5}'),
    (False, b'{"addr": @, "size": 16, "x": ' + b"[" * 100 + b"]" * 100 + b"}"),
    (False, b'{"addr": @, "size": 16, "map": "m"}'),  # Python ignores a strange map
    (False, b'{"addr": @, "size": 16, "ptrs": [[8, 0]]}'),
    (False, b'{"addr": @, "size": 16, "ptrs": [[0, @], [4, @]]}'),
    (False, b'{"addr": @, "size": 16, "ptrs": [[12, @]]}'),
    (False, b'{"addr": @, "size": 16, "ptrs": [[8, @, 1]]}'),
    (False, b'{"addr": @, "size": 16, "ptrs": {}}'),
    (False, b'{"addr": @, "size": 16, "slots": [9]}'),
    (False, b'{"addr": @, "size": 16, "site": -1}'),
    (False, b'{"addr": @, "size": 16,}'),
    (False, b'{"addr": @, "size": 16'),
    (False, b'[]'),
]
EVENTS = [
    (True, b'{"seq": 1, "op": "alloc", "addr": @, "size": 16, "kind": "value"}'),
    (True, b'{"op": "write", "seq": 2, "obj": 0, "off": 0, "old": 0, "new": @, "root": "g"}'),
    (True, b'{"seq": 3, "op": "write", "obj": @, "off": 8, "old": 0, "new": @, "root": 5}'),
    (True, b'{"seq": 4, "op": "evacuate", "hmap": @, "bucket": 3, "same_size": true}'),
    (True, b'{"seq": 5, "op": "gc_start", "addr": "x", "same_size": 7}'),
    (True, b'{"seq": 6, "op": "madvise", "addr": @, "len": 4096, "advice": "free", "z": [null]}'),
    (False, b'{"seq": 7, "op": "alloc", "addr": 0, "size": 16, "kind": "v"}'),
    (False, b'{"seq": 8, "op": "write", "obj": 0, "off": 0, "old": 0, "new": @}'),
    (False, b'{"seq": 9, "op": "grow_start", "hmap": @, "same_size": 1}'),
    (False, b'{"seq": 10, "op": "grow_end", "hmap": @, "bucket": null}'),
    (False, b'{"seq": 11, "op": "shrink"}'),
    (False, b'{"seq": -1, "op": "gc_start"}'),
    (False, b'{"seq": 12, "seq": 13, "op": "gc_start"}'),
    (False, b'{"seq": 12, "op": "gc_start", "z": 1, "z": 1}'),
    (False, b'{"seq": 14, "op": "free"}'),
    (False, b'{"seq": 15.0, "op": "gc_start"}'),
    (False, b'{"seq": 16, "op": "g\\u0063_start"}'),
]


def taken(line: bytes) -> bool:
    """taken reports whether the C parser reads the JSON Lines record itself."""
    items = list(fastparse.Parser(8).lines(line, len(line)))
    return not any(type(i) is fastparse.Record for i in items)


def outcome(path, fast: bool, monkeypatch):
    """outcome is what loading path gives: the heap's content, or the error line."""
    monkeypatch.setenv("GCTRACE_FASTPARSE", "1" if fast else "0")
    try:
        h = load_dump(path)
    except DumpError as e:
        return str(e)
    ev = h.events
    return ([getattr(h, f).tolist() for f in ("obj_addr", "obj_size", "obj_kind", "obj_type", "obj_map",
                                               "ptr_start", "ptr_off", "ptr_target", "slot_start",
                                               "slot_count", "has_slots")]
            + [h.kinds, h.types, h.roots.name]
            + [getattr(ev, c).tolist() for c in ("seq", "op", "a", "b", "old", "new", "same_size")]
            + [[ev.strings[t] if t >= 0 else None for t in ev.text]])


def assert_same(tmp_path, name, data, monkeypatch):
    path = tmp_path / name
    path.write_bytes(data)
    assert outcome(path, True, monkeypatch) == outcome(path, False, monkeypatch)


@NEEDS_C
@pytest.mark.parametrize("wrap,cases", [("object", OBJECTS), ("event", EVENTS)])
def test_edge_records_are_taken_or_left_to_python(tmp_path, monkeypatch, wrap, cases):
    for expect, body in cases:
        body = body.replace(b"@", A)
        line = b'{"' + wrap.encode() + b'": ' + body + b"}"
        # GIVEN an unusual record WHEN the C parser sees it THEN it takes it only when expected
        assert taken(line) == expect, line
        # AND the loader answers as without the C parser, in both forms
        assert_same(tmp_path, "d.jsonl", HEADER + b"\n" + line + b"\n", monkeypatch)
        section = b'"objects": [' + body + b'], "roots": []' if wrap == "object" else \
            b'"objects": [], "roots": [], "events": [' + body + b"]"
        assert_same(tmp_path, "d.json", HEADER[:-1] + b", " + section + b"}", monkeypatch)


@NEEDS_C
@pytest.mark.parametrize("lines", [
    [b'{"object": {"addr": 4096, "size": 16}, "object": {"addr": 8192, "size": 16}}'],  # a key twice: refused
    [b'{"object": {"addr": 4096, "size": 16}, "x": 1}'],
    [b'{"root": {"name": "g", "kind": "global", "target": 4096}}', b'{"object": {"addr": 4096, "size": 16}}'],
    [b'{"objects": {"addr": 4096, "size": 16}}'],
    [b'{"object": {"addr": 4096, "size": 16}}', b"", b"  \t\r", b'{"object": {"addr": 8192, "size": 16}}'],
    [b'{"object": {"addr": 4096, "size": 16}}', b"\x0c"],
    [b'{"object": {"addr": 4096, "size": 16}}', b'{"object": {"addr": 8192, "si'],  # cut inside a line
    [b'{"object": {"addr": 4096, "size": 16}} {"object": {"addr": 8192, "size": 16}}'],
    [b'{"object": {"addr": 4096, "size": 16}}', b'{"format": "gctrace.dump", "version": 1, "meta": {}}'],
])
@pytest.mark.parametrize("newline_at_end", [True, False])
def test_unusual_lines_load_as_without_the_c_parser(tmp_path, monkeypatch, lines, newline_at_end):
    data = b"\n".join([HEADER] + lines) + (b"\n" if newline_at_end else b"")
    assert_same(tmp_path, "d.jsonl", data, monkeypatch)


@NEEDS_C
@pytest.mark.parametrize("doc", [
    b'{"objects": [{"addr": 4096, "size": 16}], "roots": [], "format": "gctrace.dump", "version": 1, '
    b'"meta": {"page_size": 4096}}',
    b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096}, "objects": [], "roots": [], '
    b'"objects": [{"addr": 4096, "size": 16}]}',  # a key twice: refused
    b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096}, "objects": [{"addr": 4096, '
    b'"size": 16} {"addr": 8192, "size": 16}], "roots": []}',  # a missing comma
    b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096}, "objects": [{"addr": 4096, '
    b'"size": 16},], "roots": []}',
    b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096}, "objects": {}, "roots": []}',
    b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096}, "objects": [], "roots": []} x',
    b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096}, "objects": [{"addr": 4096, '
    b'"size": 16, "kind": "\\u00e9"}], "roots": [], "events": [{"seq": 1, "op": "gc_start"}]}',
    b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096}, "objects": [{"addr": 4096, '
    b'"size": 16}], "roots": [], "bogus": 1}',
])
def test_unusual_documents_load_as_without_the_c_parser(tmp_path, monkeypatch, doc):
    assert_same(tmp_path, "d.json", doc, monkeypatch)


DOC = b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096}, %s}'


@pytest.mark.parametrize("name,data,where", [
    # GIVEN a second objects array (orjson keeps the last: the first array's objects would vanish)
    ("d.json", DOC % b'"objects": [{"addr": 4096, "size": 16}], "roots": [], "objects": []', 'top level: key "objects"'),
    ("d.json", DOC % b'"objects": [{"addr": 4096, "size": 16}, {"addr": 8192, "size": 16, "size": 32}], "roots": []',
     'objects[1]: key "size"'),
    ("d.json", DOC % b'"objects": [], "roots": [{"name": "g", "kind": "global", "target": 0, "x": {"k": 1, "k": 2}}]',
     'roots[0]: key "k"'),
    ("d.json", b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096, "page_size": 8192}, '
               b'"objects": [], "roots": []}', 'meta: key "page_size"'),
    ("d.json", DOC % b'"objects": [], "roots": [], "events": [{"seq": 1, "op": "gc_start", "z": 1, "z": 2}]',
     'events[0]: key "z"'),
    ("d.jsonl", HEADER + b'\n{"object": {"addr": 4096, "size": 16}}\n{"object": {"addr": 8192, "kind": "a", '
                         b'"size": 16, "kind": "b"}}\n', 'line 3: key "kind"'),
    ("d.jsonl", HEADER + b'\n{"object": {"addr": 4096, "size": 16}, "object": {"addr": 8192, "size": 16}}\n',
     'line 2: key "object"'),
    ("d.jsonl", HEADER[:-1] + b', "version": 1}\n', 'line 1: key "version"'),
])
@pytest.mark.parametrize("fast", [True, False])
def test_a_key_given_twice_is_refused_by_both_parsers(tmp_path, monkeypatch, name, data, where, fast):
    # This replaces the old enshrined "orjson keeps the last": both parsers now refuse, naming the record.
    if fast and not fastparse.available():
        pytest.skip("the C parser is not built")
    path = tmp_path / name
    path.write_bytes(data)
    assert outcome(path, fast, monkeypatch) == f"{path}: {where} given twice"


def test_a_string_holding_quote_colon_is_no_repeated_key(tmp_path, monkeypatch):
    # GIVEN a '"' and ':' inside strings (more key-like text than keys) WHEN loaded THEN it is accepted
    path = tmp_path / "d.json"
    path.write_bytes(DOC % b'"objects": [{"addr": 4096, "size": 16, "type": "a\\":\\" :"}], "roots": []')
    for fast in (True, False):
        assert outcome(path, fast, monkeypatch)[12] == ("", 'a":" :')  # h.types


def mutate(rng: random.Random, data: bytes) -> bytes:
    """mutate returns data with a few random byte-level edits, biased towards JSON's own characters."""
    return fuzzing.mutate(rng, data, lambda rng: rng.randrange(256),
                          [b'"', b"\\", b"[", b"]", b"{", b"}", b",", b":", b"-", b".5", b"e9", b"0", b"\xff", b"\xc3",
                           b"true", b"null", b"9223372036854775808", b" ", b"\n", b"\t", b"\x00"],
                          lambda rng: str(rng.choice([0, 1, 7, 8, 16, 4096, BASE])).encode())


SEED_LINES = [
    b'{"object": {"addr": @, "size": 48, "kind": "hmap", "ptrs": [[16, @], [8, 12]], "type": "T"}}',
    b'{"object": {"addr": @, "size": 144, "kind": "buckets", "slots": [8, 0, 3], "map": @, "site": 9}}',
    b'{"event": {"seq": 3, "op": "alloc", "addr": @, "size": 48, "kind": "hmap"}}',
    b'{"event": {"seq": 4, "op": "write", "obj": 0, "off": 0, "old": 0, "new": @, "root": "g"}}',
    b'{"event": {"seq": 5, "op": "evacuate", "hmap": @, "bucket": 1, "same_size": false}}',
    b'{"event": {"seq": 6, "op": "madvise", "addr": @, "len": 8192, "advice": "dontneed"}}',
]


@NEEDS_C
def test_mutated_records_load_as_without_the_c_parser(tmp_path, monkeypatch):
    # GIVEN valid records, randomly damaged (seeded, so a failure replays)
    rng = random.Random(20261126)
    seeds = [s.replace(b"@", A) for s in SEED_LINES]
    took = 0
    for _ in range(300):
        line = mutate(rng, rng.choice(seeds)).replace(b"\n", b" ")
        took += taken(line)
        # THEN the loader's answer never depends on the C parser, in either form
        assert_same(tmp_path, "d.jsonl", HEADER + b"\n" + line + b"\n", monkeypatch)
        body = line[line.find(b":") + 1:line.rfind(b"}")] if b":" in line else line
        sections = b'"objects": [], "events": [' if line.startswith(b'{"event"') else b'"objects": ['
        assert_same(tmp_path, "d.json", HEADER[:-1] + b', "roots": [], ' + sections + body + b"]}", monkeypatch)
    assert took > 20  # the fuzz reaches the C path, not only the fallback


@NEEDS_C
def test_mutated_documents_load_as_without_the_c_parser(tmp_path, monkeypatch):
    rng = random.Random(7)
    doc = (FIXTURES / "map_emptied_by_deletes.json").read_bytes()
    for _ in range(150):
        assert_same(tmp_path, "d.json", mutate(rng, doc), monkeypatch)


DRIVER_HEAD = r"""
#include "_fastparse.c"
"""
DRIVER_BODY = r"""enum { CAP = 64 };
static int64_t addr[CAP], size[CAP], nptr[CAP], nslot[CAP], owner[CAP], site[CAP], poff[4 * CAP], ptgt[4 * CAP];
static int64_t seq[CAP], a[CAP], b[CAP], old[CAP], nw[CAP], sstart[CAP], slen[CAP];
static int16_t kind[CAP]; static int32_t type[CAP], text[CAP], hash[2 * CAP];
static int8_t slot8[CAP], has[CAP], op[CAP], same[CAP];

static void reset(fp_out *o) {
    o->obj_cap = 1 + next() % CAP; o->ptr_cap = next() % (4 * CAP); o->slot_cap = next() % CAP;
    o->ev_cap = 1 + next() % CAP; o->str_cap = 1 + next() % CAP; o->hash_cap = 2 * CAP;
    o->n_obj = o->n_ptr = o->n_slot = o->n_ev = o->n_str = 0;
    for (int i = 0; i < 2 * CAP; i++) hash[i] = -1;
}

static void check(const fp_out *o, int64_t n) {
    CHECK(o->n_obj <= o->obj_cap && o->n_ptr <= o->ptr_cap && o->n_slot <= o->slot_cap);
    CHECK(o->n_ev <= o->ev_cap && o->n_str <= o->str_cap && o->pos >= 0 && o->pos <= n);
    int64_t np = 0, ns = 0;
    for (int64_t i = 0; i < o->n_obj; i++) {
        CHECK(addr[i] >= 1 && size[i] >= 1 && kind[i] >= -1 && kind[i] < o->n_str);
        np += nptr[i]; ns += nslot[i];
    }
    CHECK(np == o->n_ptr && ns == o->n_slot);
    for (int64_t i = 0; i < o->n_str; i++) CHECK(sstart[i] >= 0 && sstart[i] + slen[i] <= n);
}

static void drive(int (*fn)(const uint8_t *, fp_out *), const uint8_t *buf, int64_t n, int section) {
    fp_out o = {0};
    o.addr = addr; o.size = size; o.kind = kind; o.type = type; o.nptr = nptr; o.ptr_off = poff;
    o.ptr_target = ptgt; o.nslot = nslot; o.slots = slot8; o.has_slots = has; o.owner = owner;
    o.site = site;
    o.seq = seq; o.op = op; o.a = a; o.b = b; o.old = old; o.new_ = nw; o.text = text; o.same = same;
    o.str_start = sstart; o.str_len = slen; o.hash = hash;
    o.end = n; o.ptr_size = (next() & 1) ? 8 : 4; o.section = section;
    for (int guard = 0; guard < 100000; guard++) {
        reset(&o);
        int64_t before = o.pos;
        int st = fn(buf, &o);
        check(&o, n);
        if (st == FP_DONE || st == FP_BAD) return;
        if (st == FP_FULL && o.pos != before) continue;
        CHECK(o.rec_start >= o.pos && o.rec_end > o.rec_start && o.rec_end <= n);
        o.pos = o.rec_end; o.index++;
    }
    CHECK(0 && "no progress");
}

static void run(const uint8_t *data, int64_t n) {
    uint8_t *buf = malloc(n ? n : 1);  /* exactly n bytes: any overread is caught */
    memcpy(buf, data, n);
    drive(fp_parse_lines, buf, n, 0);
    drive(fp_parse_array, buf, n, 0);
    drive(fp_parse_array, buf, n, 1);
    int64_t out[4 * 8];
    int64_t k = fp_scan_document(buf, n, out, 8);
    for (int64_t i = 0; i < k; i++) CHECK(out[4 * i + 2] <= out[4 * i + 3] && out[4 * i + 3] <= n);
    for (int64_t i = 0; i < n && i < 32; i++) CHECK(fp_skip_value(buf, n, i) <= n);
    free(buf);
}

static const char *TOKENS[] = {"\"", "\\", "[", "]", "{", "}", ",", ":", "-", "1e5", "\xff", "\xe2\x82",
                               "9223372036854775808", "\n", "{\"object\": {", "{\"event\": {", "0"};
"""
DRIVER = DRIVER_HEAD + FUZZ_PROLOGUE + DRIVER_BODY + FUZZ_MAIN


def test_c_parser_under_asan_and_ubsan(tmp_path):
    # GIVEN a corpus: the fixtures (good and bad), and lines of every record type
    corpus = [p for p in sorted(FIXTURES.glob("*.json*")) + sorted((FIXTURES / "bad").glob("*.json*"))
              if p.suffix != ".gz" and not p.name.endswith((".stderr", ".report.json")) and p.stat().st_size < 60000]
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(HEADER + b"\n" + b"\n".join(s.replace(b"@", A) for s in SEED_LINES) + b"\n"
                      + b"\n".join(b'{"object": ' + body.replace(b"@", A) + b"}" for _, body in OBJECTS) + b"\n"
                      + b"\n".join(b'{"event": ' + body.replace(b"@", A) + b"}" for _, body in EVENTS) + b"\n")
    arrays = tmp_path / "array.txt"  # an array's contents, as the array parser sees them after '['
    arrays.write_bytes(b" " + b", ".join(body.replace(b"@", A) for ok, body in OBJECTS if ok) + b"]")
    corpus = [lines, arrays] + corpus[:60]
    # WHEN the parser, built with ASan and UBSan, reads them and 3000 random mutations of them
    r = run_sanitized(tmp_path, DRIVER, "C parser", ["3000", *corpus])
    # THEN nothing is read or written out of bounds, no UB, every invariant holds
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr[-3000:]


@NEEDS_C
def test_an_object_with_more_pointers_than_the_buffers_hold_is_still_read(tmp_path, monkeypatch):
    # GIVEN an object with 5000 pointer fields and C buffers sized for 2 objects
    monkeypatch.setattr(fastparse, "OBJECTS", 2)
    obj = {"addr": BASE, "size": 8 * 5000, "ptrs": [[8 * k, BASE] for k in range(5000)][::-1]}
    path = tmp_path / "big.jsonl"
    path.write_bytes(HEADER + b"\n" + json.dumps({"object": obj}).encode() + b"\n")
    # WHEN it is loaded THEN the buffers grow and the fields come out sorted
    h = load_dump(path)
    assert np.array_equal(h.ptr_off, 8 * np.arange(5000))
    assert outcome(path, True, monkeypatch) == outcome(path, False, monkeypatch)


@NEEDS_C
@pytest.mark.parametrize("extra", [1018, 1019, 1020, 1021, 1022, 1023])
def test_nesting_near_orjsons_limit_loads_as_without_the_c_parser(tmp_path, monkeypatch, extra):
    # GIVEN an element (or meta) whose unknown key nests right at orjson's depth limit of the whole document
    deep = b"[" * extra + b"]" * extra
    obj = b'{"addr": 4096, "size": 16, "x": ' + deep + b"}"
    doc = (b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096, "x": ' + deep + b'}, '
           b'"objects": [' + obj + b'], "roots": []}')
    # THEN the C path fails (or not) exactly where orjson on the whole document does
    assert_same(tmp_path, "d.json", doc, monkeypatch)
    assert_same(tmp_path, "d.jsonl", HEADER + b"\n" + b'{"object": ' + obj + b"}\n", monkeypatch)
