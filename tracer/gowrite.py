"""gowrite writes a Go import's object lines (JSON Lines) from the heap dump's arrays: a PROTOTYPE.

Not called by the importer yet (issue 11, fast import; tracer/goimport.py is
being rewritten in another branch). Today goimport._build makes a dict per
object, reading each pointer word through _Heap.word (a bisect per field),
and write_dump orjson-dumps each dict: at 1M objects that is most of the
import, and the million small bytes objects orjson returns fragment the heap
to a peak of 4.7 GB. Here the plain objects (address, size, kind, pointer
words: nearly all of them) are written by C (``_gowrite.c``) straight from
``HeapDump.objects`` into one reused buffer, byte for byte what write_dump
writes for them; the importer gives the kind of each object and writes the
few others (typed objects, buckets with slots, ...) itself, with orjson.

Without the library (``libgowrite.so``, ``make native``), ``available()``
is False and the importer keeps writing with orjson.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import orjson

from gctrace import native

from .goheapdump import FIELD_PTR, HeapDump

HERE = Path(__file__).resolve().parent
BUFFER = 8 << 20

_lib = None
_tried = False


def _load():
    global _lib, _tried
    if not _tried:
        _tried = True
        path = native.library_path(HERE, "gowrite", "GCTRACE_GOWRITE_LIB")
        try:
            lib = ctypes.CDLL(str(path)) if path else None
        except OSError:
            lib = None
        if lib is not None and lib.gw_version() == 2:
            vp, i64 = ctypes.c_void_p, ctypes.c_int64
            lib.gw_objects.argtypes = [vp, vp, i64, ctypes.POINTER(i64)] + [vp] * 12 + [i64]
            lib.gw_objects.restype = i64
            _lib = lib
    return _lib


def available() -> bool:
    """available reports whether the C writer is built."""
    return _load() is not None


def write_objects(f, hd: HeapDump, kind: np.ndarray, type_: np.ndarray, owner: np.ndarray, names,
                  plain: np.ndarray, line_of) -> int:
    """write_objects writes the object lines of hd's objects, by address, to the binary file f; returns how many.

    For object i (file order): ``kind[i]`` indexes ``names``, ``type_[i]``
    too or is -1 (no type), ``owner[i]`` is its map's hmap or 0 (no
    ``map``); ``plain[i]`` says its line has only addr, size, kind, ptrs,
    map and type, in that order, and is written here; for the others
    ``line_of(i)`` gives the line (without its newline), or None to leave
    the object out.
    """
    lib = _load()
    o = hd.objects
    order = np.argsort(o.addr, kind="stable").astype(np.int64)
    data_off = (o.field_off + np.where(o.field_kind == FIELD_PTR, 0, hd.ptr_size)).astype(np.int64)
    encoded = [orjson.dumps(str(n)) for n in names]
    name_bytes = np.frombuffer(b"".join(encoded) or b"\0", np.uint8)
    name_start = np.zeros(len(encoded) + 1, np.int64)
    name_start[1:] = np.cumsum([len(n) for n in encoded])
    plain = np.ascontiguousarray(plain, np.uint8)
    field_start = np.ascontiguousarray(o.field_start, np.int64)
    keep = (order, np.ascontiguousarray(o.addr, np.uint64), np.ascontiguousarray(o.off, np.int64),
            np.ascontiguousarray(o.size, np.int64), field_start, data_off, np.ascontiguousarray(kind, np.int32),
            np.ascontiguousarray(type_, np.int32), np.ascontiguousarray(owner, np.uint64), name_bytes, name_start,
            plain)
    ptrs = [a.ctypes.data for a in keep]
    buf = np.empty(BUFFER, np.uint8)
    at = ctypes.c_int64(0)
    n = len(order)
    written = 0
    while at.value < n:
        before = at.value
        got = lib.gw_objects(hd.raw, ptrs[0], n, ctypes.byref(at), *ptrs[1:], buf.ctypes.data, len(buf))
        f.write(buf[:got].data)
        written += at.value - before
        if at.value >= n:
            break
        k = int(order[at.value])
        if plain[k] and at.value == before:  # one line bigger than the buffer
            buf = np.empty(2 * len(buf) + 44 * int(field_start[k + 1] - field_start[k]), np.uint8)
            continue
        if plain[k]:
            continue
        line = line_of(k)
        if line is not None:
            f.write(line + b"\n")
            written += 1
        at.value += 1
    return written
