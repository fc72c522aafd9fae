"""heapgraph runs the heap graph's optional C loops (``_heapgraph.c``): resolve, mark, dominators.

``Heap.find`` uses ``find`` for big batches of addresses (the mark's pointer
targets) and numpy's searchsorted otherwise; ``mark.mark`` uses ``reach`` and
scipy's csgraph without it; ``dominators.heap_dominators`` uses
``dominators`` and its own Cooper-Harvey-Kennedy without it. Each pair gives
the same answers on a loaded heap (sorted, disjoint objects), which the tests
check. The library is
looked up next to this file: ``libheapgraph.so`` (``make native``) or
``_heapgraph*.so`` (``pip install``), the newest winning;
``GCTRACE_HEAPGRAPH=0`` turns it off, ``GCTRACE_HEAPGRAPH_LIB`` names
another build.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from gctrace import native

HERE = Path(__file__).resolve().parent
VERSION = 3
BAD_OFFSETS = -2  # HG_BAD_OFFSETS


def _load():
    i64, arr = ctypes.c_int64, np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS")
    return native.load(HERE, "heapgraph", "GCTRACE_HEAPGRAPH_LIB", {
        "hg_find": (ctypes.c_int, [i64, arr, arr, i64, arr, arr]),
        "hg_mark": (i64, [i64, arr, arr, i64, arr, np.ctypeslib.ndpointer(np.bool_, flags="C_CONTIGUOUS")]),
        "hg_dominators": (i64, [i64, arr, arr, i64, arr, arr, arr, arr]),
    }, ("hg_version", VERSION))


def available() -> bool:
    """available reports whether the C library is built and not turned off (GCTRACE_HEAPGRAPH=0)."""
    return os.environ.get("GCTRACE_HEAPGRAPH", "1") != "0" and _load() is not None


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
    if _load().hg_find(len(addr), addr, size, len(q), q, out) != 0:
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
    ptr_start, dest, roots = _graph("reach", n, ptr_start, dest, roots)
    seen = np.empty(n, np.bool_)
    if _check("reach", n, dest, _load().hg_mark(n, ptr_start, dest, len(roots), roots, seen)) < 0:
        return None
    return seen


def dominators(n: int, ptr_start: np.ndarray, dest: np.ndarray, roots: np.ndarray,
               size: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """dominators returns (idom, retained) per object over ``reach``'s graph, or None without the library.

    ``idom[v]`` is v's immediate dominator, n for the virtual super-root over
    the roots, -1 for an unreachable object; ``retained[v]`` sums ``size``
    over v's dominator subtree (0 when unreachable).
    """
    if not available():
        return None
    ptr_start, dest, roots = _graph("dominators", n, ptr_start, dest, roots)
    size = np.ascontiguousarray(size, np.int64)
    if len(size) != n:
        raise ValueError(f"dominators: {n} objects need {n} sizes, got {len(size)}")
    idom = np.empty(n, np.int64)
    retained = np.empty(n, np.int64)
    if _check("dominators", n, dest, _load().hg_dominators(n, ptr_start, dest, len(roots), roots, size, idom,
                                                        retained)) < 0:
        return None
    return idom, retained


def _graph(what, n, ptr_start, dest, roots):
    """_graph checks the ends of the CSR arrays (the C code checks that the offsets ascend) and makes them int64."""
    ptr_start = np.ascontiguousarray(ptr_start, np.int64)
    dest = np.ascontiguousarray(dest, np.int64)
    roots = np.ascontiguousarray(roots, np.int64)
    if len(ptr_start) != n + 1 or ptr_start[0] < 0 or ptr_start[-1] > len(dest):
        raise _bad_offsets(what, n, dest)
    return ptr_start, dest, roots


def _check(what, n, dest, rc: int) -> int:
    """_check turns the C loops' HG_BAD_OFFSETS into the ValueError _graph raises for bad ends; else returns rc."""
    if rc == BAD_OFFSETS:
        raise _bad_offsets(what, n, dest)
    return rc


def _bad_offsets(what, n, dest) -> ValueError:
    return ValueError(f"{what}: {n} objects need {n + 1} ascending field offsets within {len(dest)} fields")
