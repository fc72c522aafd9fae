"""The loader's three paths build identical heaps: C parser, Python batches, record by record.

(And the analysis of each is the same with and without the heap graph's C loops.)

Big dumps go through the optional C parser (analysis/_fastparse.c) when it is
built, else through vectorised Python batches; anything unusual falls back to
the checked record-by-record path. All three must agree exactly, on random
dumps of every shape, in both forms of the format.
"""

import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dumps import BASE, dump_doc
from gctrace.analysis import fastparse
from gctrace.analysis import load as load_mod
from gctrace.analysis.analyze import analyze
from gctrace.analysis.dominators import heap_dominators
from gctrace.analysis.load import load_dump
from gctrace.analysis.mark import mark
from gctrace.analysis.report import json_report

FIELDS = ("obj_addr", "obj_size", "obj_kind", "obj_type", "obj_map", "ptr_start", "ptr_off", "ptr_target",
          "slot_start", "slot_count", "has_slots")


NEEDS_C = pytest.mark.skipif(not fastparse.available(),
                             reason="the C parser is not built (make native): only the Python paths are compared")


def shuffled(draw, rec):
    """shuffled returns rec with its keys in a random order and, sometimes, an unknown key."""
    if draw(st.integers(0, 5)) == 0:
        rec["x-extra"] = draw(st.sampled_from([None, True, "s", [1, [2, {"k": "v"}]], {"a": {}}, -3, []]))
    keys = draw(st.permutations(list(rec)))
    return {k: rec[k] for k in keys}


def random_events(draw, objs, addrs):
    events = [{"seq": s, "op": "alloc", "addr": o["addr"], "size": o["size"], "kind": o.get("kind", "other")}
              for s, o in enumerate(objs)]
    events += [{"seq": len(objs) + k, "op": "write", "obj": 0, "off": 0, "old": 0, "new": int(a), "root": "r"}
               for k, a in enumerate(addrs[:2])]
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["free", "write", "gc_start", "mark_done", "sweep_done", "madvise",
                                   "grow_start", "evacuate", "grow_end"]))
        ev = {"seq": len(events), "op": op}
        a = int(addrs[0]) if addrs else 4096
        if op == "free":
            ev["addr"] = a
        elif op == "write":
            ev.update(obj=a, off=8, old=0, new=a)
        elif op == "madvise":
            ev.update(addr=a, len=4096, advice=draw(st.sampled_from(["free", "dontneed"])))
        elif op.startswith(("grow", "evac")):
            ev["hmap"] = a
            if draw(st.booleans()):
                ev["bucket"] = draw(st.integers(0, 7))
            if draw(st.booleans()):
                ev["same_size"] = draw(st.booleans())
        events.append(ev)
    return [shuffled(draw, e) for e in events]


@st.composite
def random_dump(draw):
    n = draw(st.integers(0, 60))
    sizes = draw(st.lists(st.sampled_from([16, 32, 48, 144]), min_size=n, max_size=n))
    addrs = list(BASE + np.cumsum([0] + sizes[:-1]).astype(int)) if n else []
    objs = []
    for a, size in zip(addrs, sizes):
        o = {"addr": int(a), "size": size}
        if draw(st.booleans()):
            o["kind"] = draw(st.sampled_from(["value", "overflow", "buckets", "hmap"]))
        k = draw(st.integers(0, size // 8 if draw(st.booleans()) else 0))
        offs = draw(st.lists(st.integers(0, size // 8 - 1), min_size=k, max_size=k, unique=True))
        if offs or draw(st.booleans()):
            o["ptrs"] = [[8 * f, int(draw(st.sampled_from(addrs))) + draw(st.integers(0, 7))] for f in offs]
        if draw(st.integers(0, 3)) == 0:
            o["slots"] = draw(st.lists(st.integers(0, 8), max_size=3))
        if draw(st.integers(0, 4)) == 0:
            o["type"] = draw(st.sampled_from(["T", "bmap[int64]int64"]))
        if draw(st.integers(0, 4)) == 0:
            o["map"] = int(addrs[0])
        if draw(st.integers(0, 4)) == 0:
            o["site"] = draw(st.integers(0, 1 << 40))
        objs.append(shuffled(draw, o))
    objs = draw(st.permutations(objs))
    events = random_events(draw, objs, addrs)
    roots = [{"name": "r", "kind": "global", "target": int(a)} for a in addrs[:2]]
    return dump_doc(objs, roots, events=events,
                    pages=[{"addr": BASE, "n": 4, "resident": True, "state": "used"}] if n < 50 else None)


def to_lines(doc, seed=0):
    """to_lines writes doc as JSON Lines, interleaving the sections and varying the whitespace by seed."""
    rng = random.Random(seed)
    out = [{"format": doc["format"], "version": doc["version"], "meta": doc["meta"]}]
    recs = [{name: r} for section, name in (("objects", "object"), ("roots", "root"), ("pages", "page"),
                                            ("maps", "map"), ("events", "event")) for r in doc.get(section, [])]
    if seed:  # interleave the sections, each in its own order
        recs = _interleave(rng, recs)
    seps = [(",", ":"), (", ", ": "), (" ,\t", " :  ")]
    lines = [json.dumps(x, separators=rng.choice(seps)) for x in out + recs]
    if seed:
        lines.insert(rng.randrange(1, len(lines) + 1), "  \t")  # a blank line
    return "\n".join(lines) + ("\n" if rng.random() < 0.8 else "")


def _interleave(rng, recs):
    """_interleave merges the records of each section in a random order, keeping each section's own order."""
    queues = {}
    for r in recs:
        queues.setdefault(next(iter(r)), []).append(r)
    out = []
    while queues:
        name = rng.choice(sorted(queues))
        out.append(queues[name].pop(0))
        if not queues[name]:
            del queues[name]
    return out


def to_document(doc, seed=0):
    """to_document writes doc as one JSON document, compact or indented by seed."""
    return json.dumps(doc, indent=[None, 1, "\t"][seed % 3])


def load_batched(path):
    with pytest.MonkeyPatch.context() as m:
        m.setenv("GCTRACE_FASTPARSE", "0")
        return load_dump(path)


def load_slowly(path):
    with pytest.MonkeyPatch.context() as m:
        m.setenv("GCTRACE_FASTPARSE", "0")
        m.setattr(load_mod._Builder, "add_object_batch", lambda self, bodies: False)
        m.setattr(load_mod._Builder, "add_event_batch", lambda self, bodies: False)
        return load_dump(path)


def assert_same_heap(first, h):
    for f in FIELDS:
        assert np.array_equal(getattr(first, f), getattr(h, f)), f
    assert first.kinds == h.kinds and first.types == h.types
    for col in ("seq", "op", "a", "b", "old", "new", "same_size"):
        assert np.array_equal(getattr(first.events, col), getattr(h.events, col)), col
    names = lambda heap: [heap.events.strings[t] if t >= 0 else None for t in heap.events.text]  # noqa: E731
    assert names(first) == names(h)
    assert first.roots.name == h.roots.name and np.array_equal(first.roots.target, h.roots.target)
    assert first.maps == h.maps and (first.pages is None) == (h.pages is None)
    assert json_report(analyze(first)) == json_report(analyze(h))


@settings(max_examples=60, deadline=None)
@given(doc=random_dump(), batch=st.sampled_from([1, 3, 2048]), seed=st.integers(0, 5),
       chunk=st.sampled_from([1, 2, 7, 64, 1 << 20]), chunk_bytes=st.sampled_from([1, 100, 8 << 20]))
def test_c_batched_and_record_by_record_loads_agree(tmp_path_factory, doc, batch, seed, chunk, chunk_bytes):
    d = tmp_path_factory.mktemp("paths")
    (d / "a.json").write_text(to_document(doc, seed))
    (d / "a.jsonl").write_text(to_lines(doc, seed))
    with pytest.MonkeyPatch.context() as m:
        # Small batches, C buffers and byte chunks exercise every boundary.
        m.setattr(load_mod, "BATCH", batch)
        m.setattr(fastparse, "OBJECTS", chunk)
        m.setattr(load_mod, "CHUNK", chunk_bytes)
        heaps = [load_batched(d / "a.json"), load_batched(d / "a.jsonl"), load_slowly(d / "a.json"),
                 load_slowly(d / "a.jsonl")]
        if fastparse.available():
            heaps += [load_dump(d / "a.json"), load_dump(d / "a.jsonl")]
    for h in heaps[1:]:
        assert_same_heap(heaps[0], h)
    # and the analysis is the same with the heap graph's C loops as with numpy, scipy and Python
    h = heaps[0]
    report, doms = json_report(analyze(h)), heap_dominators(h, mark(h))
    with pytest.MonkeyPatch.context() as m:
        m.setenv("GCTRACE_HEAPGRAPH", "0")
        assert json_report(analyze(h)) == report
        slow = heap_dominators(h, mark(h))
    assert doms.idom.tolist() == slow.idom.tolist() and doms.retained.tolist() == slow.retained.tolist()


@NEEDS_C
def test_the_c_parser_takes_the_common_records(tmp_path, monkeypatch):
    # GIVEN a dump of plain objects and events, in both forms
    objs = [{"addr": BASE + 64 * k, "size": 64, "kind": "value", "ptrs": [[0, BASE]]} for k in range(100)]
    evs = [{"seq": k, "op": "alloc", "addr": o["addr"], "size": 64, "kind": "value"} for k, o in enumerate(objs)]
    doc = dump_doc(objs, events=evs)
    (tmp_path / "d.json").write_text(json.dumps(doc))
    (tmp_path / "d.jsonl").write_text(to_lines(doc))
    # WHEN it is loaded with the record-by-record path turned into a tripwire
    def tripwire(self, rec, where):
        raise AssertionError(f"{where} went to the Python path")
    monkeypatch.setattr(load_mod._Builder, "add_object", tripwire)
    monkeypatch.setattr(load_mod._Builder, "add_event", tripwire)
    # THEN every object and event is read by the C parser
    for name in ("d.json", "d.jsonl"):
        h = load_dump(tmp_path / name)
        assert h.n_objects == 100 and len(h.events) == 100 and h.kinds == ("value",)


def test_a_bad_record_in_a_batch_is_named_by_its_line(tmp_path):
    # GIVEN 5000 good objects and one bad one deep inside a batch
    objs = [{"addr": BASE + 64 * k, "size": 64} for k in range(5000)]
    objs[3000]["size"] = -1
    (tmp_path / "d.jsonl").write_text(to_lines(dump_doc(objs)))
    with pytest.raises(load_mod.DumpError, match=r"line 3002: object 0xc00002ee00: 'size' must be >= 1"):
        load_dump(tmp_path / "d.jsonl")
    (tmp_path / "d.json").write_text(json.dumps(dump_doc(objs)))
    with pytest.raises(load_mod.DumpError, match=r"^.*d.json: object 0xc00002ee00: 'size' must be >= 1"):
        load_dump(tmp_path / "d.json")
