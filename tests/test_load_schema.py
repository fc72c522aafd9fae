"""The object columns are declared once (gctrace.analysis.load.schema) and every path agrees with that list.

GIVEN the schema, THEN the C parser's struct (struct fp_out in _fastparse.c), fastparse's ctypes mirror
and chunks, and the assembled Heap all carry exactly its columns, in its order, with its types.
"""

import re
from pathlib import Path

import numpy as np

from dumps import FIXTURES
from gctrace.analysis import fastparse
from gctrace.analysis.load import load_dump
from gctrace.analysis.load.schema import OBJECT_COLUMNS, OBJECT_NAMES

C_SOURCE = Path(fastparse.__file__).resolve().parent / "_fastparse.c"
C_TYPE = {np.int64: "int64_t", np.int32: "int32_t", np.int16: "int16_t", np.int8: "int8_t", np.bool_: "int8_t"}


def c_object_pointers() -> list[tuple[str, str]]:
    """c_object_pointers returns (name, C type) of each column pointer in fp_out's objects part, in order."""
    body = re.search(r"typedef struct fp_out \{(.*?)\} fp_out;", C_SOURCE.read_text(), re.S).group(1)
    objects = body.split("/* objects */")[1].split("/* events */")[0]
    objects = re.sub(r"/\*.*?\*/", "", objects, flags=re.S)
    out = []
    for decl in objects.split(";"):
        m = re.match(r"\s*(\w+)\s+(.*)", decl)
        if m and "*" in m.group(2):
            out += [(name.strip().lstrip("*").strip(), m.group(1)) for name in m.group(2).split(",")]
    return out


def test_the_c_struct_has_the_schema_columns_in_order():
    assert c_object_pointers() == [(c.name, C_TYPE[c.dtype]) for c in OBJECT_COLUMNS]


def test_the_ctypes_mirror_and_chunks_follow_the_schema():
    mirror = [name for name, _ in fastparse._Out._fields_]
    at = mirror.index("addr")
    assert tuple(mirror[at:at + len(OBJECT_COLUMNS)]) == OBJECT_NAMES
    assert fastparse.ObjectChunk._fields == OBJECT_NAMES + ("strings",)


def test_every_path_gives_the_schema_dtypes(monkeypatch):
    # GIVEN one dump, WHEN loaded by the C parser and by the Python paths, THEN the same columns result.
    dump = FIXTURES / "map_growing_prealloc.json"
    heaps = [load_dump(dump)]
    monkeypatch.setenv("GCTRACE_FASTPARSE", "0")
    heaps.append(load_dump(dump))
    for h in heaps:
        assert h.obj_addr.dtype == np.int64 and h.obj_kind.dtype == np.int16 and h.slot_count.dtype == np.int8
    assert all(np.array_equal(getattr(heaps[0], f), getattr(heaps[1], f))
               for f in ("obj_addr", "obj_size", "obj_kind", "ptr_start", "ptr_off", "ptr_target", "slot_count",
                         "has_slots", "obj_map", "obj_type"))


def test_the_heap_cache_key_covers_every_loader_file(tmp_path):
    from gctrace import cachedir
    from gctrace.analysis import heapcache

    here = Path(heapcache.__file__).resolve().parent
    loader = {str(p.relative_to(here)) for p in (here / "load").glob("*.py")}
    assert len(loader) >= 7 and loader | {"model.py", "fastparse.py", "_fastparse.c"} <= set(heapcache._LOADER_SOURCES)
    # and the digest moves with any one of them
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    before = cachedir.sources_digest(tmp_path, ("a.py", "b.py"))
    (tmp_path / "b.py").write_text("x = 2\n")
    cachedir.sources_digest.cache_clear()
    assert cachedir.sources_digest(tmp_path, ("a.py", "b.py")) != before


def test_site_is_kept_by_every_path(tmp_path, monkeypatch):
    # GIVEN objects with and without a site, in both forms, WHEN loaded by each path, THEN obj_site is the records'.
    import json

    objects = [{"addr": 0x1000 + 0x100 * i, "size": 16, **({"site": 0x401000 + i} if i % 3 else {})} for i in range(9)]
    doc = {"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096}, "objects": objects, "roots": []}
    (tmp_path / "d.json").write_text(json.dumps(doc))
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(x) for x in (
        {"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096}},
        *({"object": o} for o in objects))) + "\n")
    want = [o.get("site", 0) for o in objects]
    got = [load_dump(tmp_path / "d.json").obj_site.tolist(), load_dump(tmp_path / "d.jsonl").obj_site.tolist()]
    monkeypatch.setenv("GCTRACE_FASTPARSE", "0")
    got += [load_dump(tmp_path / "d.json").obj_site.tolist(), load_dump(tmp_path / "d.jsonl").obj_site.tolist()]
    assert got == [want] * 4
    no_site = {**doc, "objects": [{k: v for k, v in o.items() if k != "site"} for o in objects]}
    (tmp_path / "n.json").write_text(json.dumps(no_site))
    assert len(load_dump(tmp_path / "n.json").obj_site) == 0  # like obj_map: no column when no record says
