"""The loader reads both forms, gzipped or not, into sorted columnar arrays, and refuses what the spec forbids."""

import gzip
import json

import numpy as np
import pytest

from dumps import BASE, FIXTURES, PAGE, dump_doc
from gctrace.analysis.load import load_dump
from gctrace.errors import DumpError

OBJS = [
    {"addr": BASE + 0x100, "size": 32, "kind": "value", "ptrs": [[8, BASE], [0, BASE + 0x10]]},
    {"addr": BASE, "size": 48, "kind": "hmap", "ptrs": [[16, BASE + 0x100]], "note": "kept and ignored"},
]


def to_lines(doc):
    lines = [{"format": doc["format"], "version": doc["version"], "meta": doc["meta"]}]
    for section, name in (("objects", "object"), ("roots", "root"), ("pages", "page"),
                          ("maps", "map"), ("events", "event")):
        lines += [{name: r} for r in reversed(doc.get(section, []))]
    return "\n".join(json.dumps(x) for x in lines) + "\n"


def test_objects_are_sorted_and_pointers_follow_their_object(write_dump):
    # GIVEN objects out of address order, pointers out of offset order
    heap = load_dump(write_dump(dump_doc(OBJS, [{"name": "g", "kind": "global", "target": BASE}])))
    # THEN rows are by address and each CSR row by offset
    assert heap.obj_addr.tolist() == [BASE, BASE + 0x100]
    assert heap.kinds[heap.obj_kind[0]] == "hmap"
    assert heap.ptr_start.tolist() == [0, 1, 3]
    assert heap.ptr_off.tolist() == [16, 0, 8]
    assert heap.ptr_target.tolist() == [BASE + 0x100, BASE + 0x10, BASE]
    assert heap.pages is None


@pytest.mark.parametrize("name,compress", [("d.jsonl", False), ("d.jsonl.gz", True), ("d.json.gz", True),
                                           ("no-extension", False)])
def test_all_forms_load_the_same(tmp_path, name, compress):
    # GIVEN one dump written as a document and in the other forms
    doc = dump_doc(OBJS, [{"name": "g", "kind": "global", "target": BASE}],
                   pages=[{"addr": BASE, "resident": True, "state": "used"}],
                   events=[{"seq": 2, "op": "gc_start"}, {"seq": 1, "op": "alloc", "addr": BASE, "size": 48,
                                                          "kind": "hmap"}])
    (tmp_path / "d.json").write_text(json.dumps(doc))
    text = to_lines(doc) if "jsonl" in name or name == "no-extension" else json.dumps(doc)
    data = gzip.compress(text.encode()) if compress else text.encode()
    (tmp_path / name).write_bytes(data)
    # WHEN both are loaded
    a, b = load_dump(tmp_path / "d.json"), load_dump(tmp_path / name)
    # THEN every array is equal
    for field in ("obj_addr", "obj_size", "ptr_start", "ptr_off", "ptr_target"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert a.pages.first.tolist() == b.pages.first.tolist() == [BASE // PAGE]
    assert a.events.seq.tolist() == b.events.seq.tolist() == [1, 2]


@pytest.mark.parametrize("doc,message", [
    (dump_doc([{"addr": BASE, "size": 16, "ptrs": [[0, BASE], [4, BASE]]}]), "pointer fields at +0 and +4 overlap"),
    (dump_doc([{"addr": BASE, "size": 8, "ptrs": [[0, 0]]}]), "must be a non-nil address"),
    (dump_doc([{"addr": BASE, "size": 8, "slots": [9]}]), "slot count 9 is not an integer 0..8"),
    (dump_doc(roots=[{"name": "r", "kind": "heap", "target": 0}]), "root 'r': kind \"heap\""),
    (dump_doc(roots=[{"name": "r", "kind": "global"}]), "root 'r': missing required key 'target'"),
    (dump_doc(events=[{"seq": 1, "op": "write", "obj": 0, "off": 0, "old": 0, "new": 0}]),
     "event 1: missing required key 'root'"),
    (dump_doc([{"addr": BASE, "size": 48}], maps=[{"hmap": BASE, "B": 0, "count": 0, "buckets": 0,
                                                    "oldbuckets": 0, "nevacuate": 0, "bucketsize": 8}]),
     "bucketsize 8 cannot hold an overflow pointer"),
    ({**dump_doc(), "meta": {"page_size": 4096, "madvise": "sometimes"}}, "madvise must be"),
    ({**dump_doc(), "meta": {"page_size": 4096, "ptr_size": 3}}, "ptr_size must be 4 or 8"),
    ([1, 2, 3], "top level must be a JSON object"),
])
def test_violations_name_the_record(write_dump, doc, message):
    with pytest.raises(DumpError) as e:
        load_dump(write_dump(doc))
    assert message in str(e.value)
    assert str(e.value).startswith(str(write_dump(doc)))


def test_map_nevacuate_cannot_pass_the_old_buckets(write_dump):
    objs = [{"addr": BASE, "size": 48}, {"addr": BASE + 0x1000, "size": 4 * 144},
            {"addr": BASE + 0x2000, "size": 2 * 144}]
    doc = dump_doc(objs, maps=[{"hmap": BASE, "B": 2, "count": 0, "buckets": BASE + 0x1000,
                                "oldbuckets": BASE + 0x2000, "nevacuate": 3, "bucketsize": 144}])
    with pytest.raises(DumpError, match="nevacuate 3 exceeds the 2 old buckets"):
        load_dump(write_dump(doc))


def test_unknown_meta_keys_are_kept(write_dump):
    heap = load_dump(write_dump(dump_doc(binary="/bin/prog", custom={"x": 1})))
    assert heap.meta["custom"] == {"x": 1}


def test_every_fixture_loads():
    for path in sorted(p for p in FIXTURES.glob("*.json*") if ".report." not in p.name):
        load_dump(path)
