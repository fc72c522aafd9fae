"""gctrace.native loads every optional C core one way: once, prototypes set, a stale build refused."""

import ctypes
from pathlib import Path

import pytest

from gctrace import native
from gctrace.analysis import heapgraph

HERE = Path(heapgraph.__file__).resolve().parent


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(native, "_loaded", {})


@pytest.mark.skipif(native.library_path(HERE, "heapgraph", "GCTRACE_HEAPGRAPH_LIB") is None,
                    reason="libheapgraph is not built (make native)")
def test_load_once_with_prototypes_and_refuses_a_stale_build():
    protos = {"hg_find": (ctypes.c_int, [ctypes.c_int64] * 6)}
    lib = native.load(HERE, "heapgraph", "GCTRACE_HEAPGRAPH_LIB", protos, ("hg_version", heapgraph.VERSION))
    assert lib is not None and lib.hg_find.restype is ctypes.c_int
    assert native.load(HERE, "heapgraph", "GCTRACE_HEAPGRAPH_LIB", protos, ("hg_version", 0)) is lib  # cached
    native._loaded.clear()
    assert native.load(HERE, "heapgraph", "GCTRACE_HEAPGRAPH_LIB", protos, ("hg_version", heapgraph.VERSION + 1)) is None


def test_missing_or_unloadable_library_is_none(tmp_path, monkeypatch):
    assert native.load(tmp_path, "nothing", "GCTRACE_TEST_NO_SUCH_VAR", {}, ("v", 1)) is None
    (tmp_path / "libbroken.so").write_bytes(b"not an ELF file")
    assert native.load(tmp_path, "broken", "GCTRACE_TEST_NO_SUCH_VAR", {}, ("v", 1)) is None


def test_every_ctypes_cdll_goes_through_native():
    root = Path(native.__file__).resolve().parent.parent
    users = sorted(str(p.relative_to(root)) for d in ("analysis", "tracer", "gctrace")
                   for p in (root / d).rglob("*.py") if "ctypes.CDLL(" in p.read_text())
    # load/assemble.py asks glibc for malloc_trim (CDLL(None), no library of ours); gosnapshot.py asks libc for
    # process_vm_readv (CDLL(None) too).
    assert set(users) <= {"gctrace/native.py", "analysis/load/assemble.py", "tracer/goheap/gosnapshot.py"}, users
