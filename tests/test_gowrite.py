"""The prototype C writer of a Go import's object lines writes exactly what write_dump writes for them."""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest

from gctrace.tracer import gowrite
from gctrace.tracer.goheapdump import read_heapdump
from gctrace.tracer.goimport import import_heapdump, write_dump
from gctrace.tracer.gotypes import Binary
from test_goheapdump import BINARY, CASES, DUMPS

PLAIN = ("addr", "size", "kind", "ptrs", "map", "type")  # the keys gw_objects writes, in goimport's order
NEEDS_C = pytest.mark.skipif(not gowrite.available(), reason="the C writer is not built (make native)")


@pytest.fixture(scope="module")
def binary():
    b = Binary(BINARY)
    yield b
    b.close()


@NEEDS_C
@pytest.mark.parametrize("case", CASES)
def test_object_lines_equal_write_dumps(tmp_path, binary, monkeypatch, case):
    # GIVEN a real heap dump, imported and written by goimport
    path = DUMPS / f"{case}.heapdump.gz"
    doc = import_heapdump(path, binary)
    out = tmp_path / "d.jsonl"
    write_dump(doc, out)
    want = b"".join(line + b"\n" for line in out.read_bytes().splitlines() if line.startswith(b'{"object"'))
    # WHEN the C writer writes the plain ones from the dump's arrays (kinds as goimport chose them) and the
    # importer's own lines for the rest
    hd = read_heapdump(path)
    by_addr = {o["addr"]: o for o in doc["objects"]}
    names = sorted({o["kind"] for o in doc["objects"]} | {o["type"] for o in doc["objects"] if "type" in o})
    objs = [by_addr.get(a) for a in hd.obj_addr]
    kind = np.array([names.index(o["kind"]) if o else 0 for o in objs], np.int32)
    type_ = np.array([names.index(o["type"]) if o and "type" in o else -1 for o in objs], np.int32)
    owner = np.array([o.get("map", 0) if o else 0 for o in objs], np.uint64)
    plain = np.array([o is not None and [k for k in o if k in PLAIN] == list(o) for o in objs])
    monkeypatch.setattr(gowrite, "BUFFER", 4096)  # many calls, the buffer full each time
    f = io.BytesIO()
    n = gowrite.write_objects(f, hd, kind, type_, owner, names, plain,
                              lambda k: orjson.dumps({"object": objs[k]}) if objs[k] else None)
    # THEN every line is the same, byte for byte, in the same order
    assert n == len(doc["objects"]) and plain.sum() > len(plain) // 2
    assert type_[plain].max() >= 0  # typed objects among them
    assert f.getvalue() == want


@NEEDS_C
def test_every_key_and_word_is_written_as_orjson_writes_it():
    # GIVEN the hand-built dump (6 objects of 16 bytes, each pointing at the next), with owners (one 2^64-1)
    # and a type name JSON must escape
    from test_goheapdump import small_dump
    from gctrace.tracer.goheapdump import parse

    hd = parse(small_dump())
    n = len(hd.obj_addr)
    names = ["other", "value", 'main.T"\\\n']
    kind = np.array([1, 0, 1, 0, 1, 0], np.int32)
    type_ = np.array([2, -1, 2, -1, -1, 2], np.int32)
    owner = np.array([0, (1 << 64) - 1, 0, 0xC000000000, 0, 0], np.uint64)
    f = io.BytesIO()
    assert gowrite.write_objects(f, hd, kind, type_, owner, names, np.ones(n, bool), None) == n
    # THEN each line is orjson's for the same dict
    want = b""
    for i in np.argsort(hd.obj_addr, kind="stable").tolist():
        a = hd.obj_addr[i]
        w = [hd.word(hd.raw[hd.obj_off[i]:], off) for off in hd.obj_fields[i]]
        o = {"addr": a, "size": hd.obj_size[i], "kind": names[kind[i]],
             "ptrs": [[off, x] for off, x in zip(hd.obj_fields[i], w) if x]}
        if owner[i]:
            o["map"] = int(owner[i])
        if type_[i] >= 0:
            o["type"] = names[type_[i]]
        want += orjson.dumps({"object": o}) + b"\n"
    assert f.getvalue() == want and b'"map":18446744073709551615' in want
