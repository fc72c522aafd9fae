"""fastparse runs the optional C parser of object and event records (``_fastparse.c``).

The loader (``load``) uses it when it is there and reads everything itself
when it is not: it is an accelerator, never a requirement, so ``gctrace
analyze`` still works where no compiler ever ran. The C side fills numpy
column buffers directly; this module owns the buffers, calls the C functions
through ctypes (no CPython module, like the tracer's library), and hands the
loader whole chunks of records, or the one record the C parser left to
Python, in file order.

The library is looked up next to this file: ``libfastparse.so`` (``make
native``) or ``_fastparse*.so`` (``pip install``, an optional setuptools
extension); the newest wins. ``GCTRACE_FASTPARSE=0`` turns it off (tests
compare both paths); ``GCTRACE_FASTPARSE_LIB`` names another build.
"""

from __future__ import annotations

import ctypes
import os
from collections import namedtuple
from pathlib import Path

import numpy as np

from gctrace import native

from .load.schema import OBJECT_COLUMNS, OBJECT_NAMES

HERE = Path(__file__).resolve().parent
DONE, FULL, UNSUPPORTED, BAD = range(4)
LAYOUT_VERSION = 1
_MAX_TOP_KEYS = 64
# Objects (and events) per call; the buffers grow when one record does not fit.
OBJECTS = 1 << 16

ObjectChunk = namedtuple("ObjectChunk", OBJECT_NAMES + ("strings",))
ObjectChunk.__doc__ = """ObjectChunk is a run of parsed objects; kind and type are codes into strings, -1 = absent."""
EventChunk = namedtuple("EventChunk", "seq op a b old new text same strings")
EventChunk.__doc__ = """EventChunk is a run of parsed events; text is a code into strings, -1 = none."""
Record = namedtuple("Record", "start end index")
Record.__doc__ = """Record is one record left to Python: buf[start:end], the index-th line or element."""


class Unsupported(Exception):
    """Unsupported says the C parser cannot read this input at all; the caller reads it the slow way."""


_I64P, _I32P, _I16P, _I8P = (ctypes.POINTER(t) for t in (ctypes.c_int64, ctypes.c_int32, ctypes.c_int16,
                                                          ctypes.c_int8))
# The C side of each column dtype (a bool column is int8_t in C).
_PTR = {np.int64: _I64P, np.int32: _I32P, np.int16: _I16P, np.int8: _I8P, np.bool_: _I8P}
_C_DTYPE = {np.bool_: np.int8}


class _Out(ctypes.Structure):
    # Mirrors struct fp_out in _fastparse.c, field for field.
    _fields_ = [(n, ctypes.c_int64) for n in ("pos", "end", "index", "rec_start", "rec_end")] + [
        ("ptr_size", ctypes.c_int32), ("section", ctypes.c_int32)] + [
        (n, ctypes.c_int64) for n in ("obj_cap", "ptr_cap", "slot_cap", "n_obj", "n_ptr", "n_slot")] + [
        *((c.name, _PTR[c.dtype]) for c in OBJECT_COLUMNS),
        ("ev_cap", ctypes.c_int64), ("n_ev", ctypes.c_int64),
        ("seq", _I64P), ("op", _I8P), ("a", _I64P), ("b", _I64P), ("old", _I64P), ("new_", _I64P),
        ("text", _I32P), ("same", _I8P),
        ("str_cap", ctypes.c_int64), ("n_str", ctypes.c_int64), ("hash_cap", ctypes.c_int64),
        ("str_start", _I64P), ("str_len", _I64P), ("hash", _I32P),
    ]


# The object columns by what sizes their buffer: objects, pointer fields or slot counts.
_OBJ_COLS = {per: tuple((c.name, _C_DTYPE.get(c.dtype, c.dtype)) for c in OBJECT_COLUMNS if c.per == per)
             for per in ("object", "ptr", "slot")}
_EV_COLS = (("seq", np.int64), ("op", np.int8), ("a", np.int64), ("b", np.int64), ("old", np.int64),
            ("new_", np.int64), ("text", np.int32), ("same", np.int8))

def library_path():
    """library_path returns the parser library to load, or None when none is built."""
    return native.library_path(HERE, "fastparse", "GCTRACE_FASTPARSE_LIB")


def _load():
    vp, i64 = ctypes.c_void_p, ctypes.c_int64
    return native.load(HERE, "fastparse", "GCTRACE_FASTPARSE_LIB", {
        "fp_parse_lines": (ctypes.c_int, [vp, ctypes.POINTER(_Out)]),
        "fp_parse_array": (ctypes.c_int, [vp, ctypes.POINTER(_Out)]),
        "fp_skip_value": (i64, [vp, i64, i64]),
        "fp_scan_document": (i64, [vp, i64, ctypes.POINTER(i64), i64]),
    }, ("fp_version", LAYOUT_VERSION * 1000 + ctypes.sizeof(_Out)))


def available() -> bool:
    """available reports whether the C parser is built and not turned off (GCTRACE_FASTPARSE=0)."""
    return os.environ.get("GCTRACE_FASTPARSE", "1") != "0" and _load() is not None


def scan_document(data: bytes):
    """scan_document returns [(key, value_start, value_end)] of a document's top level, or None.

    None means the top level is not a plain object with escape-free keys; the
    values are only delimited here, not checked.
    """
    out = (ctypes.c_int64 * (4 * _MAX_TOP_KEYS))()
    k = _load().fp_scan_document(data, len(data), out, _MAX_TOP_KEYS)
    if k < 0:
        return None
    return [(data[out[4 * i]:out[4 * i] + out[4 * i + 1]].decode(), out[4 * i + 2], out[4 * i + 3])
            for i in range(k)]


class Parser:
    """Parser owns the column buffers the C parser writes into, and runs it over a buffer.

    ``lines`` and ``array`` yield ObjectChunk, EventChunk and Record items in
    file order; the caller adds the chunks and reads each Record itself.
    """

    def __init__(self, ptr_size: int, objects: int | None = None):
        self._lib = _load()
        self.out = _Out()
        self.out.ptr_size = ptr_size
        objects = objects or OBJECTS
        self._alloc(objects, 4 * objects, objects, objects, 4096)

    def _alloc(self, n_obj, n_ptr, n_slot, n_ev, n_str):
        o, self.cols = self.out, {}

        def col(name, n, dtype, ptr):
            arr = self.cols[name] = np.zeros(max(n, 1), dtype)
            setattr(o, name, arr.ctypes.data_as(ptr))

        for per, n in (("object", n_obj), ("ptr", n_ptr), ("slot", n_slot)):
            for name, dtype in _OBJ_COLS[per]:
                col(name, n, dtype, _PTR[dtype])
        for name, dtype in _EV_COLS:
            col(name, n_ev, dtype, _PTR[dtype])
        col("str_start", n_str, np.int64, _I64P)
        col("str_len", n_str, np.int64, _I64P)
        col("hash", 2 * n_str, np.int32, _I32P)
        o.obj_cap, o.ptr_cap, o.slot_cap, o.ev_cap = n_obj, n_ptr, n_slot, n_ev
        o.str_cap, o.hash_cap = n_str, 2 * n_str

    def _grow(self) -> bool:
        """_grow doubles the buffers (False: they are as big as they get)."""
        o = self.out
        if o.ptr_cap >= 1 << 26:
            return False
        self._alloc(2 * o.obj_cap, 2 * o.ptr_cap, 2 * o.slot_cap, 2 * o.ev_cap, min(2 * o.str_cap, 16384))
        return True

    def lines(self, buf: bytes, end: int, start: int = 0):
        """lines parses the JSON Lines records in buf[start:end]; ``index`` then counts the lines passed.

        A Record's index counts from ``start``.
        """
        return self._run(self._lib.fp_parse_lines, buf, start, end, 0)

    def array(self, buf: bytes, start: int, end: int, section: str):
        """array parses the elements of the objects or events array in buf[start:end] (from its '[').

        It raises Unsupported when the array is damaged in a way only the slow
        path can name.
        """
        return self._run(self._lib.fp_parse_array, buf, start + 1, end, 0 if section == "objects" else 1)

    def _run(self, fn, buf, pos, end, section):
        o = self.out
        o.pos, o.end, o.index, o.section = pos, end, 0, section
        while True:
            o.n_obj = o.n_ptr = o.n_slot = o.n_ev = o.n_str = 0
            self.cols["hash"].fill(-1)
            before = o.pos
            status = fn(buf, ctypes.byref(o))
            yield from self._take(buf)
            if status == DONE:
                self.index, self.pos = o.index, o.pos
                return
            if status == BAD:
                raise Unsupported(f"the C parser stopped at byte {o.pos}")
            if status == FULL and (o.pos != before or self._grow()):
                continue
            yield Record(o.rec_start, o.rec_end, o.index)
            o.pos = o.rec_end
            o.index += 1

    def _take(self, buf):
        o, c = self.out, self.cols
        if not (o.n_obj or o.n_ev):
            return
        strings = [buf[s:s + n].decode() for s, n in zip(c["str_start"][:o.n_str].tolist(),
                                                           c["str_len"][:o.n_str].tolist())]
        if o.n_obj:
            n = {"object": o.n_obj, "ptr": o.n_ptr, "slot": o.n_slot}
            yield ObjectChunk(*(c[col.name][:n[col.per]].astype(col.dtype, copy=True) for col in OBJECT_COLUMNS),
                              strings)
        if o.n_ev:
            n = o.n_ev
            yield EventChunk(c["seq"][:n].copy(), c["op"][:n].copy(), c["a"][:n].copy(), c["b"][:n].copy(),
                             c["old"][:n].copy(), c["new_"][:n].copy(), c["text"][:n].copy(),
                             c["same"][:n].astype(bool), strings)
