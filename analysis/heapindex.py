"""heapindex runs the mark's optional C loops (``_heapindex.c``): which object holds an address, and the BFS.

``Heap.find`` uses ``find`` for big batches of addresses (the mark's pointer
targets) and numpy's searchsorted otherwise; ``mark.mark`` uses ``reach`` and
scipy's csgraph without it. Both pairs give the same answers on a loaded heap
(sorted, disjoint objects), which the tests check. The library is
looked up next to this file: ``libheapindex.so`` (``make native``) or
``_heapindex*.so`` (``pip install``), the newest winning;
``GCTRACE_HEAPINDEX=0`` turns it off, ``GCTRACE_HEAPINDEX_LIB`` names
another build.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from gctrace import native

HERE = Path(__file__).resolve().parent
VERSION = 1

_lib = None
_tried = False


def _load():
    global _lib, _tried
    if not _tried:
        _tried = True
        path = native.library_path(HERE, "heapindex", "GCTRACE_HEAPINDEX_LIB")
        try:
            lib = ctypes.CDLL(str(path)) if path else None
        except OSError:
            lib = None
        if lib is not None and lib.hi_version() == VERSION:
            i64, arr = ctypes.c_int64, np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS")
            lib.hi_find.argtypes = [i64, arr, arr, i64, arr, arr]
            lib.hi_find.restype = ctypes.c_int
            lib.hi_mark.argtypes = [i64, arr, arr, i64, arr, np.ctypeslib.ndpointer(np.bool_, flags="C_CONTIGUOUS")]
            lib.hi_mark.restype = i64
            _lib = lib
    return _lib


def available() -> bool:
    """available reports whether the C heap index is built and not turned off (GCTRACE_HEAPINDEX=0)."""
    return os.environ.get("GCTRACE_HEAPINDEX", "1") != "0" and _load() is not None


def find(obj_addr: np.ndarray, obj_size: np.ndarray, addrs: np.ndarray) -> np.ndarray | None:
    """find returns the index of the object containing each address (-1 if none), or None without the library.

    ``obj_addr`` must be sorted and the objects disjoint, as a loaded heap's are.
    """
    if not available():
        return None
    addr = np.ascontiguousarray(obj_addr, np.int64)
    size = np.ascontiguousarray(obj_size, np.int64)
    q = np.ascontiguousarray(addrs, np.int64)
    out = np.empty(len(q), np.int64)
    if _lib.hi_find(len(addr), addr, size, len(q), q, out) != 0:
        return None
    return out


def reach(n: int, ptr_start: np.ndarray, dest: np.ndarray, roots: np.ndarray) -> np.ndarray | None:
    """reach returns a bool array of the objects reachable from ``roots``, or None without the library.

    ``ptr_start`` (n + 1 entries) delimits each object's pointer fields,
    ``dest`` is each field's target object (-1: none), ``roots`` are object
    indices (-1: none).
    """
    if not available():
        return None
    seen = np.empty(n, np.bool_)
    ptr_start = np.ascontiguousarray(ptr_start, np.int64)
    dest = np.ascontiguousarray(dest, np.int64)
    roots = np.ascontiguousarray(roots, np.int64)
    if len(ptr_start) != n + 1 or (n and ptr_start[-1] > len(dest)):
        raise ValueError(f"reach: {n} objects need {n + 1} field offsets ending within {len(dest)} fields")
    if _lib.hi_mark(n, ptr_start, dest, len(roots), roots, seen) < 0:
        return None
    return seen
