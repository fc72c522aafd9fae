"""The fast import (batched map slots, numpy records, the C line writer) writes the reference path's bytes.

Every committed Go heap dump (fixtures/go/versions/*/ and fixtures/go/heapdumps/*) is imported twice:
the reference way, slot by slot (goimport.BATCH off), each record read word by word (VECTOR_FIELDS
past any object) and every line orjson's of the record dict; and the fast way, as the CLI does. The
files, JSON Lines plain and gzipped and the JSON document, must be equal byte for byte.
"""

from __future__ import annotations

import gzip
import json

import pytest

from gctrace.tracer.goheap import goimport, gowrite
from gctrace.tracer.goheap.goimport import import_heapdump, write_dump
from test_goimport_versions import CASES as VERSION_CASES, VERSIONS, _binary, _residency
from test_goheapdump import BINARY, CASES as HEAPDUMP_CASES, DUMPS

FIXTURES = ([(f"versions/{c}", VERSIONS / c / "heapdump.gz", _binary(VERSIONS / c), _residency(VERSIONS / c))
             for c in VERSION_CASES]
            + [(f"heapdumps/{c}", DUMPS / f"{c}.heapdump.gz", BINARY, DUMPS / f"{c}.residency.json")
               for c in HEAPDUMP_CASES])


def _write_all(tmp_path, name, dump, binary, residency):
    doc = import_heapdump(dump, binary, residency)
    out = {}
    for suffix in ("jsonl", "jsonl.gz", "json"):
        path = tmp_path / f"{name}.{suffix}"
        write_dump(doc, path)
        out[suffix] = path.read_bytes()
    return doc, out


@pytest.mark.parametrize("name,dump,binary,residency", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_fast_import_writes_the_reference_bytes(tmp_path, monkeypatch, name, dump, binary, residency):
    # GIVEN the reference import of a real dump: slot by slot, word by word, every line by orjson
    with monkeypatch.context() as m:
        m.setattr(goimport, "BATCH", False)
        m.setattr(goimport, "VECTOR_FIELDS", 1 << 62)
        m.setattr(gowrite, "available", lambda: False)
        ref_doc, ref = _write_all(tmp_path, "ref", dump, binary, residency)
    # WHEN the fast path imports it, every record of more than 0 fields read with numpy
    monkeypatch.setattr(goimport, "VECTOR_FIELDS", 0)
    doc, fast = _write_all(tmp_path, "fast", dump, binary, residency)
    # THEN the files are equal byte for byte, and the dumps are not trivial
    assert fast == ref
    assert doc["meta"]["typed_objects"] == ref_doc["meta"]["typed_objects"] > 0 and doc["maps"]
    # AND the gzipped file is exactly what gzip.compress(data, 6, mtime=0) makes of the plain one
    assert fast["jsonl.gz"] == gzip.compress(fast["jsonl"], compresslevel=6, mtime=0)
    assert json.loads(fast["json"])["objects"] == [json.loads(x)["object"] for x in fast["jsonl"].splitlines()
                                                  if x.startswith(b'{"object"')]


def test_the_default_threshold_path_writes_the_same(tmp_path):
    # GIVEN a Go 1.23 dump (classic buckets, records read both ways at the default VECTOR_FIELDS)
    name, dump, binary, residency = next(f for f in FIXTURES if f[0] == "versions/go1.23")
    _, default = _write_all(tmp_path, "d", dump, binary, residency)
    # THEN the same bytes as with every record read with numpy (held to the reference above)
    import unittest.mock as mock
    with mock.patch.object(goimport, "VECTOR_FIELDS", 0):
        _, numpy_only = _write_all(tmp_path, "n", dump, binary, residency)
    assert default == numpy_only
