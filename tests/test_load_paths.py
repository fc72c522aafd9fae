"""The fast (batched) loader and the record-by-record loader build identical heaps.

Big dumps go through vectorised batches; anything unusual falls back to the
checked path. The two must agree exactly, on random dumps of every shape, in
both forms of the format.
"""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dumps import BASE, dump_doc
from gctrace.analysis import load as load_mod
from gctrace.analysis.analyze import analyze
from gctrace.analysis.load import load_dump
from gctrace.analysis.report import json_report

FIELDS = ("obj_addr", "obj_size", "obj_kind", "obj_type", "obj_map", "ptr_start", "ptr_off", "ptr_target",
          "slot_start", "slot_count", "has_slots")


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
        objs.append(o)
    objs = draw(st.permutations(objs))
    events = [{"seq": s, "op": "alloc", "addr": o["addr"], "size": o["size"], "kind": o.get("kind", "other")}
              for s, o in enumerate(objs)]
    events += [{"seq": len(objs) + k, "op": "write", "obj": 0, "off": 0, "old": 0, "new": int(a), "root": "r"}
               for k, a in enumerate(addrs[:2])]
    roots = [{"name": "r", "kind": "global", "target": int(a)} for a in addrs[:2]]
    return dump_doc(objs, roots, events=events,
                    pages=[{"addr": BASE, "n": 4, "resident": True, "state": "used"}] if n < 50 else None)


def to_lines(doc):
    out = [{"format": doc["format"], "version": doc["version"], "meta": doc["meta"]}]
    for section, name in (("objects", "object"), ("roots", "root"), ("pages", "page"), ("events", "event")):
        out += [{name: r} for r in doc.get(section, [])]
    return "\n".join(json.dumps(x) for x in out) + "\n"


def load_slowly(path):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(load_mod._Builder, "add_object_batch", lambda self, bodies: False)
        m.setattr(load_mod._Builder, "add_event_batch", lambda self, bodies: False)
        return load_dump(path)


@settings(max_examples=60, deadline=None)
@given(doc=random_dump(), batch=st.sampled_from([1, 3, 2048]))
def test_batched_and_record_by_record_loads_agree(tmp_path_factory, doc, batch):
    d = tmp_path_factory.mktemp("paths")
    (d / "a.json").write_text(json.dumps(doc))
    (d / "a.jsonl").write_text(to_lines(doc))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(load_mod, "BATCH", batch)
        heaps = [load_dump(d / "a.json"), load_dump(d / "a.jsonl"), load_slowly(d / "a.json"),
                 load_slowly(d / "a.jsonl")]
    first = heaps[0]
    for h in heaps[1:]:
        for f in FIELDS:
            assert np.array_equal(getattr(first, f), getattr(h, f)), f
        for col in ("seq", "op", "a", "b", "old", "new", "same_size"):
            assert np.array_equal(getattr(first.events, col), getattr(h.events, col)), col
        names = lambda heap: [heap.events.strings[t] if t >= 0 else None for t in heap.events.text]  # noqa: E731
        assert names(first) == names(h)
        assert [first.kinds[k] for k in first.obj_kind] == [h.kinds[k] for k in h.obj_kind]
        assert json_report(analyze(first)) == json_report(analyze(h))


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
