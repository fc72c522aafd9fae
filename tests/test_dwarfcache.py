"""The DWARF cache: a binary's index is read once, kept by build ID, and never trusted when it does not fit."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from gctrace.cachedir import cache_root
from gctrace.tracer.goheap import dwarfcache
from gctrace.tracer.goheap.goimport import import_heapdump
from gctrace.tracer.goheap.gotypes import Binary
from test_goheapdump import BINARY, DUMPS

DUMP = DUMPS / "free-dontneed.heapdump.gz"
RES = DUMPS / "free-dontneed.residency.json"


def forbid_indexing(monkeypatch):
    def boom(self):
        raise AssertionError("read the DWARF although cached")

    monkeypatch.setattr(Binary, "_index_dwarf", boom)
    monkeypatch.setattr(Binary, "_load_symbols", boom)


def entries():
    d = cache_root() / dwarfcache.SUBDIR
    return sorted(d.iterdir()) if d.exists() else []


def test_the_second_import_reads_no_dwarf_and_gives_the_same_dump(monkeypatch):
    # GIVEN a first import, which indexes the binary's DWARF and stores the index
    first = import_heapdump(DUMP, str(BINARY), RES)
    assert [p.suffix for p in entries()] == [".json"]
    # WHEN the same binary is imported again with DWARF indexing forbidden
    forbid_indexing(monkeypatch)
    again = import_heapdump(DUMP, str(BINARY), RES)
    # THEN the dump is the same, typed maps and all
    assert again == first and first["maps"] and first["meta"]["typed_objects"] > 0


def test_a_copy_of_the_binary_shares_the_entry(tmp_path, monkeypatch):
    Binary(BINARY).close()
    copy = tmp_path / "prog"
    shutil.copy(BINARY, copy)
    forbid_indexing(monkeypatch)
    b = Binary(copy)
    assert b.symbol_at(b.typed_globals()[0].addr) is not None
    b.close()


def test_the_build_id_is_gos_own():
    go = shutil.which("go") or "/usr/lib/go-1.19/bin/go"
    if not shutil.which(go):
        pytest.skip("no Go toolchain to read the build ID independently (go tool buildid)")
    want = subprocess.run([go, "tool", "buildid", str(BINARY)], capture_output=True, text=True, check=True).stdout
    b = Binary(BINARY)
    assert dwarfcache.build_id(b.elf) == "go:" + want.strip()
    b.close()


def indexed(monkeypatch) -> int:
    """indexed counts the DWARF indexings of one Binary(BINARY)."""
    calls = []
    real = Binary._index_dwarf

    def counting(self):
        calls.append(1)
        real(self)

    monkeypatch.setattr(Binary, "_index_dwarf", counting)
    b = Binary(BINARY)
    assert {"main.ints", "main.cache"} <= {g.name for g in b.typed_globals()}
    b.close()
    monkeypatch.setattr(Binary, "_index_dwarf", real)
    return len(calls)


@pytest.fixture(scope="module")
def good_entry(tmp_path_factory):
    """good_entry is (the name of the fixture binary's entry, the document a first Binary stores there)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GCTRACE_CACHE_DIR", str(tmp_path_factory.mktemp("dwarf")))
    Binary(BINARY).close()
    (entry,) = entries()
    mp.undo()
    return entry.name, json.loads(entry.read_text())


@pytest.mark.parametrize("damage", [
    lambda d: {**d, "version": 99},
    lambda d: {**d, "build_id": "go:someone-else"},
    lambda d: {**d, "size": d["size"] + 1},
    lambda d: {**d, "code": "0" * 64},
    lambda d: {**d, "attrs": {**d["attrs"], "globals": [["main.x", 4096, None]]}},  # lists, not tuples
    lambda d: {**d, "attrs": {**d["attrs"], "type_by_runtime": {"d": [["1", 2]]}}},  # a string key
    lambda d: {**d, "attrs": {**d["attrs"], "_syms": {"x": 1}}},  # no such tag
    lambda d: {**d, "attrs": {}},
])
def test_a_damaged_entry_is_a_miss_and_is_rewritten(monkeypatch, good_entry, damage):
    # GIVEN a stored index, then damaged
    name, doc = good_entry
    entry = cache_root() / dwarfcache.SUBDIR / name
    entry.parent.mkdir(parents=True)
    entry.write_text(json.dumps(doc))
    assert indexed(monkeypatch) == 0  # the good entry is used
    entry.write_text(json.dumps(damage(doc)))
    # THEN the next Binary indexes the DWARF again (right answers) and stores a good entry
    assert indexed(monkeypatch) == 1
    assert indexed(monkeypatch) == 0


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff" * 10, b'"not a dict"', b'{"format": "x"}'])
def test_an_unreadable_or_foreign_file_is_left_alone(monkeypatch, content):
    # GIVEN something at the entry's name that gctrace did not write
    b = Binary(BINARY)
    path = dwarfcache.entry_path(dwarfcache.build_id(b.elf))
    b.close()
    path.unlink()
    path.write_bytes(content)
    # THEN every Binary indexes the DWARF itself, and the file stays as it was
    assert indexed(monkeypatch) == 1 and indexed(monkeypatch) == 1
    assert path.read_bytes() == content
    assert [p.name for p in entries()] == [path.name]  # no temporary file left behind


def test_no_cache_when_caching_is_off_or_there_is_no_build_id(tmp_path, monkeypatch):
    monkeypatch.setenv("GCTRACE_CACHE", "0")
    assert indexed(monkeypatch) == 1 and indexed(monkeypatch) == 1
    monkeypatch.delenv("GCTRACE_CACHE")
    assert entries() == []
    if not shutil.which("objcopy"):
        pytest.skip("no objcopy to remove the build ID notes")
    bare = tmp_path / "bare"
    subprocess.run(["objcopy", "--remove-section", ".note.go.buildid", "--remove-section",
                    ".note.gnu.build-id", str(BINARY), str(bare)], check=True)
    b = Binary(bare)
    assert dwarfcache.build_id(b.elf) is None and len(b.typed_globals()) > 0
    b.close()
    assert entries() == []


def test_plain_data_round_trips_and_anything_else_is_refused():
    v = {"a": [(1, "x", None), (2, "y", 3)], 5: {"k": True}, (1, 2): []}
    assert dwarfcache._decode(json.loads(json.dumps(dwarfcache._encode(v)))) == v
    with pytest.raises(TypeError):
        dwarfcache._encode({"x": b"bytes"})
    with pytest.raises(ValueError):
        dwarfcache._decode({"t": [1], "d": []})
