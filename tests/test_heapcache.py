"""The heap cache gives back exactly the heap the loader built, and never a stale or broken one."""

import os

import numpy as np
import pytest
from click.testing import CliRunner

from dumps import FIXTURES, dump_doc
from gctrace.analysis import heapcache
from gctrace.analysis.analyze import analyze
from gctrace.analysis.load import load_dump
from gctrace.analysis.report import json_report
from gctrace.cli import main
from gctrace.errors import DumpError
from test_load_paths import assert_same_heap

GOOD = sorted(p for p in FIXTURES.glob("*.json*") if not p.name.endswith((".report.json", ".stderr")))


@pytest.fixture
def cache_everything(monkeypatch):
    """cache_everything caches dumps of any size, and fails the test if a cached dump is parsed again."""
    monkeypatch.setattr(heapcache, "MIN_OBJECTS", 0)
    monkeypatch.setattr(heapcache, "RACY_NS", 0)  # dumps written a moment ago by the test are cached too
    return monkeypatch


def entries():
    where = heapcache.store_dir()
    return sorted(p for p in where.iterdir() if not p.name.startswith(".")) if where.exists() else []


def forbid_parsing(monkeypatch):
    def parse(*args, **kw):
        raise AssertionError("parsed although cached")

    monkeypatch.setattr(heapcache, "load_dump", parse)


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_a_cached_heap_is_the_loaded_heap(path, cache_everything):
    # GIVEN a fixture loaded once through the cache
    first = heapcache.load_heap(path)
    assert len(entries()) == 1
    # WHEN it is loaded again, with parsing forbidden
    forbid_parsing(cache_everything)
    again = heapcache.load_heap(path)
    # THEN every array, table, map header and event is the same, and so is the report
    assert_same_heap(load_dump(path), again)
    assert again.path == os.fspath(path) and again.meta == first.meta
    assert json_report(analyze(again)) == json_report(analyze(first))


def test_a_changed_dump_is_parsed_again(tmp_path, cache_everything, write_dump):
    # GIVEN a dump loaded through the cache
    path = write_dump(dump_doc([{"addr": 0x1000, "size": 16}]))
    assert heapcache.load_heap(path).n_objects == 1
    # WHEN it is rewritten (another size and time) and loaded again
    path.write_text(path.read_text().replace('"size": 16}', '"size": 16}, {"addr": 8192, "size": 32}'))
    os.utime(path, ns=(10**18, 10**18))
    # THEN the new content is what comes back
    assert heapcache.load_heap(path).obj_size.tolist() == [16, 32]


def test_a_broken_entry_is_dropped_and_the_dump_parsed(cache_everything, write_dump):
    path = write_dump(dump_doc([{"addr": 0x1000, "size": 16}]))
    heapcache.load_heap(path)
    (entry,) = entries()
    breakages = [("skeleton.json", b'{"layout": 2, "heap": {"@array": "../../etc/passwd"}}'),
                 ("skeleton.json", b"{"), ("skeleton.json", None), ("h.obj_size.npy", b"\x93NUMPY junk"),
                 ("h.obj_size.npy", None)]
    for name, junk in breakages:
        # GIVEN one file of the entry replaced by junk, or gone
        if junk is None:
            (entry / name).unlink()
        else:
            (entry / name).write_bytes(junk)
        # WHEN the dump is loaded THEN it is parsed, right, and the entry written anew
        assert heapcache.load_heap(path).obj_size.tolist() == [16], name
        assert entries() == [entry] and (entry / "skeleton.json").exists()
        assert heapcache.load_heap(path).obj_size.tolist() == [16]


def test_a_cached_heap_is_read_only_and_mapped(cache_everything, write_dump):
    path = write_dump(dump_doc([{"addr": 0x1000, "size": 16}]))
    heapcache.load_heap(path)
    h = heapcache.load_heap(path)
    # THEN its arrays are plain read-only ndarrays over the entry's files
    assert type(h.obj_size) is np.ndarray and not h.obj_size.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        h.obj_size[0] = 1


def test_a_bad_dump_is_refused_as_ever_and_never_cached(cache_everything, write_dump):
    path = write_dump(dump_doc([{"addr": 0x1000, "size": 16}, {"addr": 0x1008, "size": 16}]))
    with pytest.raises(DumpError, match="overlaps"):
        heapcache.load_heap(path)
    assert entries() == []


def test_small_dumps_and_a_disabled_cache_write_nothing(monkeypatch, write_dump):
    path = write_dump(dump_doc([{"addr": 0x1000, "size": 16}]))
    heapcache.load_heap(path)  # 1 object < MIN_OBJECTS
    assert entries() == []
    monkeypatch.setattr(heapcache, "MIN_OBJECTS", 0)
    monkeypatch.setenv("GCTRACE_CACHE", "0")
    assert heapcache.cache_dir() is None
    heapcache.load_heap(path)
    monkeypatch.delenv("GCTRACE_CACHE")
    assert entries() == []


def test_only_the_newest_entries_are_kept(cache_everything, write_dump):
    # GIVEN more dumps than the cache keeps, loaded one after another
    paths = [write_dump(dump_doc([{"addr": 0x1000, "size": 16 * (k + 1)}]), f"d{k}.json")
             for k in range(heapcache.KEEP + 2)]
    for k, p in enumerate(paths):
        heapcache.load_heap(p)
        for e in entries():  # distinct times, oldest first, whatever the file system's clock resolution
            os.utime(e, ns=(e.stat().st_mtime_ns - 10**9,) * 2)
    # THEN KEEP entries remain, and the last dumps are the cached ones
    assert len(entries()) == heapcache.KEEP
    forbid_parsing(cache_everything)
    assert heapcache.load_heap(paths[-1]).obj_size.tolist() == [16 * len(paths)]
    with pytest.raises(AssertionError, match="parsed although cached"):
        heapcache.load_heap(paths[0])


def test_the_cli_answers_the_same_from_the_cache(cache_everything):
    # GIVEN a fixture analyzed once (parsed and cached)
    path = str(FIXTURES / "map_after_mapclear.json")
    first = CliRunner().invoke(main, ["analyze", path, "--json"])
    assert first.exit_code == 0 and len(entries()) == 1
    # WHEN analyzed again, parsing forbidden THEN the report is the same
    forbid_parsing(cache_everything)
    again = CliRunner().invoke(main, ["analyze", path, "--json"])
    assert again.exit_code == 0 and again.output == first.output


def test_arrays_come_back_with_their_dtypes(cache_everything):
    path = FIXTURES / "map_after_mapclear.json"
    fresh = heapcache.load_heap(path)
    cached = heapcache.load_heap(path)
    for name in ("obj_addr", "obj_kind", "ptr_start", "slot_count", "has_slots", "obj_type"):
        a, b = getattr(fresh, name), getattr(cached, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name


def test_the_cache_command_lists_and_clears_entries(cache_everything, write_dump):
    # GIVEN two dumps loaded through the cache
    a = write_dump(dump_doc([{"addr": 0x1000, "size": 16}]), "a.json")
    b = write_dump(dump_doc([{"addr": 0x1000, "size": 16}, {"addr": 0x2000, "size": 16}]), "b.json")
    heapcache.load_heap(a)
    heapcache.load_heap(b)
    # WHEN the cache is shown THEN both are listed with their source and object count
    shown = CliRunner().invoke(main, ["cache"])
    assert shown.exit_code == 0 and "2 of at most 4 entries" in shown.output
    assert "1 objects  used" in shown.output and str(os.path.realpath(a)) in shown.output
    assert "2 objects  used" in shown.output and str(os.path.realpath(b)) in shown.output
    # WHEN it is cleared THEN nothing is left, and the dumps parse again
    cleared = CliRunner().invoke(main, ["cache", "--clear"])
    assert cleared.exit_code == 0 and "deleted 2 entries" in cleared.output and entries() == []
    cache_everything.setenv("GCTRACE_CACHE", "0")
    assert CliRunner().invoke(main, ["cache"]).output == "heap cache: off (GCTRACE_CACHE=0)\n"


def test_another_caches_part_of_the_directory_is_left_alone(cache_everything, write_dump):
    # GIVEN the importer's DWARF index beside the heap cache's entries
    theirs = heapcache.cache_dir() / "dwarf-v1"
    theirs.mkdir(parents=True)
    (theirs / "x.json").write_text("{}")
    paths = [write_dump(dump_doc([{"addr": 0x1000, "size": 16 * (k + 1)}]), f"d{k}.json")
             for k in range(heapcache.KEEP + 2)]
    # WHEN more dumps than it keeps are cached, listed and cleared
    for p in paths:
        heapcache.load_heap(p)
    assert len(heapcache.list_entries()) == heapcache.KEEP
    assert heapcache.clear() == heapcache.KEEP
    # THEN the other cache's directory and file are still there, never evicted, listed or cleared
    assert (theirs / "x.json").read_text() == "{}"
