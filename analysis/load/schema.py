"""schema declares the dump's names and bounds, and the loaded columns of objects and events, once.

Part of the loader (see the package docstring, gctrace.analysis.load)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import EVENT_OPS


FORMAT = "gctrace.dump"


VERSION = 1


TOP_KEYS = {"format", "version", "meta", "objects", "roots", "pages", "maps", "events", "end"}


REQUIRED_TOP = ("format", "version", "meta", "objects", "roots")


SECTIONS = {"object": "objects", "root": "roots", "page": "pages", "map": "maps", "event": "events"}


# The end record's counts, in its order (docs/dump-format.md, "end").
END_KEYS = ("objects", "roots", "pages", "maps", "events")


NO_END = ("no end record: a JSON Lines dump cut at a line boundary would look the same "
          "(producers since gctrace 1.1 write one)")


MAP_REQUIRED = ("hmap", "B", "count", "buckets", "oldbuckets", "nevacuate", "bucketsize")


MAP_OPTIONAL = ("noverflow", "flags", "hash0", "keysize", "elemsize")


MAP_IMPLS = ("hmap", "swiss")


SWISS_REQUIRED = ("count", "dir_ptr", "dir_len", "global_depth", "clear_seq", "slot_size")


SWISS_TABLE_KEYS = ("addr", "capacity", "used", "growth_left", "local_depth", "index", "groups", "groups_len")


EVENT_KEYS = {
    "alloc": ("addr", "size", "kind"),
    "free": ("addr",),
    "write": ("obj", "off", "old", "new"),
    "gc_start": (), "mark_done": (), "sweep_done": (),
    "madvise": ("addr", "len", "advice"),
    "grow_start": ("hmap",), "evacuate": ("hmap",), "grow_end": ("hmap",),
}


INT_LIMIT = 1 << 63


_INT_MAX = INT_LIMIT - 1


_NO_PTRS: list = []  # shared default for objects without ptrs; never mutated


_SCALARS = frozenset((int, str, bool, float, type(None)))


# Records parsed and validated together on the fast path. Small enough that a
# batch's dicts stay in cache (65536 made orjson 2.4x slower than 2048 here).
BATCH = 2048


# Bytes of JSON Lines handed to the C parser at a time.
CHUNK = 8 << 20


_OP_CODE = {op: i for i, op in enumerate(EVENT_OPS)}


# Column, key and check of each op's keys, for the vectorised event path (see add_event for the rules).
_EVENT_COLUMNS = {
    "alloc": (("a", "addr", "pos"), ("b", "size", "pos"), ("text", "kind", "str")),
    "free": (("a", "addr", "int"),),
    "write": (("a", "obj", "int"), ("b", "off", "int"), ("old", "old", "int"), ("new", "new", "int")),
    "gc_start": (), "mark_done": (), "sweep_done": (),
    "madvise": (("a", "addr", "int"), ("b", "len", "int"), ("text", "advice", "str")),
    **{op: (("a", "hmap", "int"), ("b", "bucket", "opt_int"), ("same", "same_size", "opt_bool"))
       for op in ("grow_start", "evacuate", "grow_end")},
}




GZIP_MAGIC = b"\x1f\x8b"


NUL = b"\0"


# Bounds on what is read, so that no input (/dev/zero, a sparse file, a gzip bomb) takes unbounded memory.
# A line of JSON Lines holds one record. From a pipe a line may have MAX_LINE bytes; from a regular file as many
# as the file (the file bounds it), and from gzip data as many as the document bound below: a real object can be
# big (a 128 MiB slice of 16M pointers is a ~480 MB line), while a line that never ends is refused at the cap.
MAX_LINE = 256 << 20


LINE_PIECE = 1 << 20


# A document is held whole: from a regular file any size is read; from a pipe, or out of gzip data, at most
# this much (gzip: GZIP_RATIO times the compressed size, at least the floor; JSON compresses 5-20x).
PIPE_DOCUMENT_LIMIT = 1 << 30


GZIP_DOCUMENT_FLOOR = 256 << 20


GZIP_RATIO = 64


DOCUMENT_PIECE = 16 << 20


# Whitespace allowed before the first '{'; and how far into the first line the form is looked for.
MAX_LEADING_SPACE = 1 << 20


HEADER_PEEK = 1 << 20


# -- the object columns -------------------------------------------------------
# Declared once. Every path that produces objects (the record-by-record rules,
# the vectorised batches, the C parser through fastparse) fills these columns,
# and assembly concatenates them in this order; fastparse builds its ctypes
# mirror of the C parser's struct from them, and tests/test_fastparse.py holds
# that struct (struct fp_out in _fastparse.c) to this list. Adding a column is
# one entry here plus the code that computes it in each path.


@dataclass(frozen=True)
class Column:
    """Column is one loaded column of the objects: its name, its numpy dtype, and what one entry stands for."""

    name: str
    dtype: type
    per: str  # "object": one per object; "ptr": one per pointer field; "slot": one per slot count
    what: str

    @property
    def typecode(self) -> str:
        """typecode is the array module's code of the record-by-record buffer that holds the column."""
        return {np.int64: "q", np.int32: "i", np.int16: "h", np.int8: "b", np.bool_: "b"}[self.dtype]

    def from_buffer(self, buf) -> np.ndarray:
        """from_buffer views a record-by-record buffer (array.array) as the column's dtype."""
        if self.dtype is np.bool_:
            return np.frombuffer(buf, np.int8).astype(bool)
        return np.frombuffer(buf, self.dtype)


OBJECT_COLUMNS = (
    Column("addr", np.int64, "object", "the object's address"),
    Column("size", np.int64, "object", "its size in bytes"),
    Column("kind", np.int16, "object", "code of its kind string (chunk-local in a C chunk, then recoded)"),
    Column("type", np.int32, "object", "code of its type string, 0 = none"),
    Column("nptr", np.int64, "object", "how many pointer fields it has"),
    Column("ptr_off", np.int64, "ptr", "a pointer field's offset, sorted within the object"),
    Column("ptr_target", np.int64, "ptr", "a pointer field's target address"),
    Column("nslot", np.int64, "object", "how many slot counts it has"),
    Column("slots", np.int8, "slot", "one bucket's occupied slots, 0..8"),
    Column("has_slots", np.bool_, "object", "whether the record had a slots key"),
    Column("owner", np.int64, "object", "the hmap that owns it (the map extension), 0 = unknown"),
    Column("site", np.int64, "object", "its allocation site, a code address (meta.binary symbolizes it), 0 = none"),
)
OBJECT_NAMES = tuple(c.name for c in OBJECT_COLUMNS)


def object_chunk(**cols) -> tuple:
    """object_chunk returns a chunk of object columns in OBJECT_COLUMNS' order, from one array per column name.

    >>> len(object_chunk(**{name: np.zeros(0) for name in OBJECT_NAMES})) == len(OBJECT_COLUMNS)
    True
    """
    if cols.keys() != set(OBJECT_NAMES):
        raise AssertionError(f"object columns {sorted(cols)} are not the schema's {sorted(OBJECT_NAMES)}")
    return tuple(cols[name] for name in OBJECT_NAMES)
