"""goscan runs the optional C scanner of a Go heap dump's object records (``_goheapdump.c``).

goheapdump.parse uses it when it is built and reads every record itself when
it is not: an accelerator, never a requirement. The scanner appends object
records to numpy columns that this module owns and grows; it stops at any
other record, and at any object record it does not take, for Python to read
(see the contract at the top of ``_goheapdump.c``).

The library is looked up next to this file by gctrace.native:
``libgoheapdump.so`` (``make native``) or ``_goheapdump*.so`` (``pip
install``); ``GCTRACE_GOHEAPDUMP_LIB`` names another build and
``GCTRACE_GOHEAPDUMP_C=0`` turns it off (the tests compare both paths).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from gctrace import native

HERE = Path(__file__).resolve().parent
END, OTHER, FULL, LIMIT = range(4)
LAYOUT_VERSION = 1

# The object columns: name, dtype, whether it is per field (else per object). ghd_scan_t has a pointer
# for each, in this order, after its scalars.
COLUMNS = (("addr", np.uint64, False), ("off", np.int64, False), ("size", np.int64, False),
           ("field_end", np.int64, False), ("field_kind", np.uint8, True), ("field_off", np.int64, True))
_SCALARS = ("pos", "end", "limit", "ptr_size", "obj_cap", "field_cap", "n_obj", "n_field")
_CTYPES = {np.uint64: ctypes.c_uint64, np.int64: ctypes.c_int64, np.uint8: ctypes.c_uint8}


class _Scan(ctypes.Structure):
    # Mirrors ghd_scan_t in _goheapdump.c, field for field.
    _fields_ = [(n, ctypes.c_int64) for n in _SCALARS] + [
        (n, ctypes.POINTER(_CTYPES[t])) for n, t, _ in COLUMNS]


def _load():
    return native.load(HERE, "goheapdump", "GCTRACE_GOHEAPDUMP_LIB",
                       {"ghd_scan": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(_Scan)])},
                       ("ghd_version", LAYOUT_VERSION * 1000 + ctypes.sizeof(_Scan)))


def available() -> bool:
    """available reports whether the C scanner is built and not turned off (GCTRACE_GOHEAPDUMP_C=0)."""
    return os.environ.get("GCTRACE_GOHEAPDUMP_C", "1") != "0" and _load() is not None


class Scanner:
    """Scanner holds the object columns the C scanner fills, over one dump held in ``raw``."""

    def __init__(self, raw: bytes, objects: int):
        self._lib = _load()
        self.raw = raw
        self.s = _Scan()
        self.s.end = len(raw)
        self.s.ptr_size = 8
        self.cols = {}
        self._alloc(max(objects, 16), max(objects, 16))

    def _alloc(self, n_obj: int, n_field: int):
        """_alloc (re)allocates the columns with these capacities, keeping what is filled."""
        s = self.s
        for name, dtype, per_field in COLUMNS:
            col = np.empty(n_field if per_field else n_obj, dtype)
            old = self.cols.get(name)
            if old is not None:
                k = s.n_field if per_field else s.n_obj
                col[:k] = old[:k]
            self.cols[name] = col
            setattr(s, name, col.ctypes.data_as(ctypes.POINTER(_CTYPES[dtype])))
        s.obj_cap, s.field_cap = n_obj, n_field

    def scan(self, pos: int, limit: int, ptr_size: int) -> tuple[int, int]:
        """scan reads object records from pos on, growing the columns as needed; returns (status, pos).

        The status is END (the buffer's end), OTHER (Python reads the record
        at pos) or LIMIT (pos is at or past limit, at a record boundary).
        """
        s = self.s
        s.pos, s.limit, s.ptr_size = pos, limit, ptr_size
        while True:
            status = self._lib.ghd_scan(self.raw, ctypes.byref(s))
            if status != FULL:
                return status, s.pos
            full_obj = s.n_obj >= s.obj_cap
            self._alloc(2 * s.obj_cap if full_obj else s.obj_cap, s.field_cap if full_obj else 2 * s.field_cap)

    def columns(self) -> dict:
        """columns returns the filled part of each column (views, no copy)."""
        s = self.s
        return {name: self.cols[name][:s.n_field if per_field else s.n_obj] for name, _, per_field in COLUMNS}
