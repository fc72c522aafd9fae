"""gowrite writes a Go import's object lines (JSON Lines) from the heap dump's arrays.

goimport.GoObjects.write calls it: at a million objects a dict per object
and orjson's bytes per line take most of an import's time and, kept, gigabytes.
Here the plain objects (address, size, kind, pointer words, maybe the map that
owns them and a type: nearly all of them) are written by C (``_gowrite.c``)
straight from ``HeapDump.objects`` into one reused buffer, byte for byte what
orjson writes for goimport's record of them; the importer gives each object's
kind, type and owner as small arrays and writes the few others (buckets with
slots) itself, with orjson.

Without the library (``libgowrite.so`` from ``make native``, or the
extension pip builds), ``available()`` is False and goimport writes every
line with orjson: slower, the same bytes.
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
VERSION = 3

def _load():
    vp, i64 = ctypes.c_void_p, ctypes.c_int64
    return native.load(HERE, "gowrite", "GCTRACE_GOWRITE_LIB",
                       {"gw_objects": (i64, [vp, vp, i64, ctypes.POINTER(i64)] + [vp] * 12 + [i64])},
                       ("gw_version", VERSION))


def available() -> bool:
    """available reports whether the C writer is built."""
    return _load() is not None


def write_objects(f, hd: HeapDump, order: np.ndarray, kind: np.ndarray, type_: np.ndarray, owner: np.ndarray,
                  names, plain: np.ndarray, line_of) -> int:
    """write_objects writes the lines of the objects ``order`` lists (record indices of hd, by address) to f.

    Returns how many lines it wrote. For the k-th of them: ``kind[k]``
    indexes ``names``, ``type_[k]`` too or is -1 (no type), ``owner[k]`` is
    its map's hmap or 0 (no ``map``); ``plain[k]`` says its line has only
    addr, size, kind, ptrs, map and type, in that order, and is written here,
    with the pointer fields whose word is neither 0 nor >= 2^63; for the
    others ``line_of(k)`` gives the line (without its newline), or None to
    leave the object out.
    """
    lib = _load()
    o = hd.objects
    order = np.ascontiguousarray(order, np.int64)
    data_off = o.field_off if (o.field_kind == FIELD_PTR).all() else o.field_off + np.where(
        o.field_kind == FIELD_PTR, 0, hd.ptr_size)
    data_off = np.ascontiguousarray(data_off, np.int64)
    encoded = [orjson.dumps(str(n)) for n in names]
    name_bytes = np.frombuffer(b"".join(encoded) or b"\0", np.uint8)
    name_start = np.zeros(len(encoded) + 1, np.int64)
    name_start[1:] = np.cumsum([len(n) for n in encoded])
    plain = np.ascontiguousarray(plain, np.uint8)
    field_start = np.ascontiguousarray(o.field_start, np.int64)
    keep = (order, np.ascontiguousarray(o.addr, np.uint64), np.ascontiguousarray(o.off, np.int64),
            np.ascontiguousarray(o.size.view(np.int64) if o.size.dtype == np.uint64 else o.size, np.int64),
            field_start, data_off, np.ascontiguousarray(kind, np.int32),
            np.ascontiguousarray(type_, np.int32), np.ascontiguousarray(owner, np.uint64), name_bytes, name_start,
            plain)
    raw = np.frombuffer(hd.raw, np.uint8)  # bytes, or a snapshot's bytearray (which ctypes will not take as is)
    ptrs = [a.ctypes.data for a in keep]
    longest = max(len(e) for e in encoded) if encoded else 0
    buf = np.empty(BUFFER, np.uint8)
    at = ctypes.c_int64(0)
    n = len(order)
    written = 0
    while at.value < n:
        before = at.value
        got = lib.gw_objects(raw.ctypes.data, ptrs[0], n, ctypes.byref(at), *ptrs[1:], buf.ctypes.data, len(buf))
        f.write(buf[:got].data)
        written += at.value - before
        if at.value >= n:
            break
        k = at.value
        if plain[k] and at.value == before:  # one line bigger than the buffer: make room for it
            i = int(order[k])
            buf = np.empty(128 + 2 * longest + 44 * int(field_start[i + 1] - field_start[i]), np.uint8)
            continue
        if plain[k]:
            continue
        line = line_of(k)
        if line is not None:
            f.write(line + b"\n")
            written += 1
        at.value += 1
    return written
