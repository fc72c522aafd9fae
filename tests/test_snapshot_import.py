"""The fast import of a snapshot (batched typer walk, the heap typed in read_snapshot's buffer) writes the reference bytes.

A snapshot of a running snapdemo with -grow (a slice of tens of thousands
of linked 64-byte nodes, besides its maps, finalizers and cleanups) is
imported twice: the reference way, every value walked one by one (goimport.BATCH
off), every record read word by word and written by orjson, and the heap's
runs copied into a buffer of their own (the path a live capture's and a core
file's image still take); and the fast way, as the CLI does, once with the
default thresholds and once with every walk batched (BATCH_MIN 1) in small
chunks (WALK_CHUNK). The dumps must be equal byte for byte. The committed Go
heap dumps go through the batched walk at every size too, against the same
reference.
"""

from __future__ import annotations

import pytest

from gctrace.tracer.goheap import goimport, gosnapshot as gs, gowrite
from gctrace.tracer.goheap.goimport import import_heapdump, write_dump
from gctrace.tracer.goheap.gotypes import Binary

from test_goimport_fast import FIXTURES
from test_snapshot import demo, running


@pytest.fixture(scope="module")
def binaries(tmp_path_factory):
    return tmp_path_factory.mktemp("snapdemo")


def _reference(m):
    """_reference sets the importer's one-by-one paths on the monkeypatch context m."""
    m.setattr(goimport, "BATCH", False)
    m.setattr(goimport, "VECTOR_FIELDS", 1 << 62)
    m.setattr(gowrite, "available", lambda: False)


def _written(doc, tmp_path, name) -> dict:
    out = {}
    for suffix in ("jsonl", "json"):
        path = tmp_path / f"{name}.{suffix}"
        write_dump(doc, path)
        out[suffix] = path.read_bytes()
    return out


@pytest.mark.parametrize("minor", ["1.22", "1.26"])
def test_the_fast_import_of_a_snapshot_writes_the_reference_bytes(binaries, minor, tmp_path, monkeypatch):
    # GIVEN a snapshot file of snapdemo holding 4 MiB of linked nodes in one slice (65k objects)
    exe = demo(binaries, minor)
    with running(exe, "-grow", "4") as p:
        gs.write_snapshot(gs.capture(p.pid), tmp_path / "s.snap")
    snap = str(tmp_path / "s.snap")
    b = Binary(exe)
    try:
        # WHEN it is imported the reference way: one by one, word by word, orjson, the heap's runs copied
        with monkeypatch.context() as m:
            _reference(m)
            m.setattr(gs._Image, "store_offset", lambda self, addr, n: None)
            ref_doc = gs.import_snapshot(snap, b)
            ref = _written(ref_doc, tmp_path, "ref")
        # AND the fast way, as the CLI does, then with every walk batched, a thousand values at a time
        doc = gs.import_snapshot(snap, b)
        fast = _written(doc, tmp_path, "fast")
        with monkeypatch.context() as m:
            m.setattr(goimport, "BATCH_MIN", 1)
            m.setattr(goimport, "WALK_CHUNK", 1000)
            every = _written(gs.import_snapshot(snap, b), tmp_path, "every")
    finally:
        b.close()
    # THEN the three write the same bytes, and the dump is not trivial: the nodes are all typed
    assert fast == ref and every == ref
    assert doc["meta"]["typed_objects"] == ref_doc["meta"]["typed_objects"] > 65536
    assert gs.import_summary(doc) == gs.import_summary(ref_doc)
    assert any(m.get("name") for m in doc["maps"])


@pytest.mark.parametrize("name,dump,binary,residency", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_every_walk_batched_writes_the_reference_bytes_of_the_committed_heap_dumps(
        tmp_path, monkeypatch, name, dump, binary, residency):
    # GIVEN the reference import of a real heap dump, every value walked one by one
    with monkeypatch.context() as m:
        _reference(m)
        ref = _written(import_heapdump(dump, binary, residency), tmp_path, "ref")
    # WHEN every walk of it is batched, however small, three values at a time
    monkeypatch.setattr(goimport, "BATCH_MIN", 1)
    monkeypatch.setattr(goimport, "WALK_CHUNK", 3)
    doc = import_heapdump(dump, binary, residency)
    # THEN the same bytes
    assert _written(doc, tmp_path, "batched") == ref
    assert doc["meta"]["typed_objects"] > 0
