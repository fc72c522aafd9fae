"""model holds a loaded dump as columnar arrays.

A heap of ten million objects must not become ten million Python objects, so
the model is a handful of numpy arrays, one row per object, sorted by address,
with the pointer fields in CSR form (``ptr_start[i]:ptr_start[i+1]`` are the
fields of object ``i``, sorted by offset). Strings that repeat (kinds, types,
root kinds) are interned into small tables and stored as codes.

Everything here is plain data: the loader (``load``) builds it and validates
it, the pure analyses (``mark``, ``pages``, ``maps``) read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass

import numpy as np

from . import heapgraph

PAGE_STATES = ("used", "free", "released")
ROOT_KINDS = ("global", "stack", "register", "finalizer", "other")
EVENT_OPS = (
    "alloc", "free", "write", "gc_start", "mark_done", "sweep_done",
    "madvise", "grow_start", "evacuate", "grow_end",
)


@dataclass(frozen=True)
class Roots:
    """Roots are the named entry points of the mark, one row each."""

    name: tuple[str, ...]
    kind: np.ndarray  # int8 codes into ROOT_KINDS
    target: np.ndarray  # int64 addresses, 0 = nil

    def __len__(self) -> int:
        return len(self.name)


@dataclass(frozen=True)
class PageRuns:
    """PageRuns are the dump's page runs, sorted by address, never overlapping.

    ``first`` and ``n`` are in page numbers (address // page_size).
    """

    first: np.ndarray  # int64 page number of the run's first page
    n: np.ndarray  # int64 pages in the run
    resident: np.ndarray  # bool
    state: np.ndarray  # int8 codes into PAGE_STATES

    def __len__(self) -> int:
        return len(self.first)


@dataclass(frozen=True)
class MapHeader:
    """MapHeader is the decoded hmap of one Go map (the dump's ``maps`` entry)."""

    hmap: int
    B: int
    count: int
    buckets: int
    oldbuckets: int
    nevacuate: int
    bucketsize: int
    noverflow: int = 0
    flags: int = 0
    hash0: int = 0
    keysize: int = 0
    elemsize: int = 0
    name: str = ""  # optional, e.g. the global holding the map (a key producers may add)

    impl = "hmap"

    @property
    def growing(self) -> bool:
        """growing reports whether the map is mid-evacuation (oldbuckets != nil)."""
        return self.oldbuckets != 0

    @property
    def same_size_grow(self) -> bool:
        """same_size_grow reports Go's sameSizeGrow flag (flags & 8)."""
        return bool(self.flags & 8)

    @property
    def old_bucket_count(self) -> int:
        """old_bucket_count is the number of primary buckets in oldbuckets."""
        if not self.growing:
            return 0
        return 1 << self.B if self.same_size_grow else 1 << max(self.B - 1, 0)


@dataclass(frozen=True, eq=False)
class SwissMap:
    """SwissMap is the decoded ``Map`` of one Swiss-table Go map (a dump's map record with ``"impl": "swiss"``).

    Go 1.24's ``internal/runtime/maps``: a 48-byte ``Map`` header whose
    ``dirPtr`` points at a directory of ``dir_len`` table pointers (or, for a
    small map, at its one group). Each distinct table is one row of the
    ``tab_*`` columns, in directory order; its groups' control-byte counts are
    rows ``ctrl_start[k]:ctrl_start[k+1]`` of ``ctrl`` (columns full, deleted,
    empty), so a map of a million entries is a few arrays, not 130k lists.
    """

    hmap: int  # the Map header's address: every map has its address under one name
    count: int  # Map.used
    dir_ptr: int
    dir_len: int
    global_depth: int
    clear_seq: int
    slot_size: int
    group_size: int
    tab_addr: np.ndarray  # int64 per table
    tab_capacity: np.ndarray  # int64 slots
    tab_used: np.ndarray  # int64
    tab_growth_left: np.ndarray  # int64
    tab_local_depth: np.ndarray  # int64
    tab_index: np.ndarray  # int64, -1 once replaced
    tab_groups: np.ndarray  # int64 address of the first group
    tab_groups_len: np.ndarray  # int64 groups (lengthMask + 1)
    ctrl_start: np.ndarray  # int64, len = tables + 1
    ctrl: np.ndarray  # int16 (groups, 3): full, deleted, empty control bytes of each group
    small_ctrl: tuple | None = None  # (full, deleted, empty) of a small map's one group
    name: str = ""  # optional, e.g. the global holding the map

    impl = "swiss"

    def __eq__(self, other) -> bool:
        """__eq__ compares every field, arrays by value (a dataclass's own == would ask numpy for one bool)."""
        if type(other) is not SwissMap:
            return NotImplemented
        return all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
                   for a, b in ((getattr(self, f.name), getattr(other, f.name)) for f in fields(self)))

    __hash__ = None

    @property
    def n_tables(self) -> int:
        """n_tables is the number of distinct tables (0 for a small map)."""
        return len(self.tab_addr)

    @property
    def small(self) -> bool:
        """small reports whether the map is a small map: one group, no directory, no tables."""
        return self.dir_len == 0

    @property
    def capacity(self) -> int:
        """capacity is the map's slots: the tables' total, or 8 for a small map's group (0 before it exists)."""
        if self.small:
            return SWISS_GROUP_SLOTS if self.dir_ptr else 0
        return int(self.tab_capacity.sum())

    def slot_counts(self) -> tuple[int, int, int]:
        """slot_counts returns (full, deleted, empty) control bytes summed over every group of the map."""
        if self.small:
            return tuple(self.small_ctrl) if self.small_ctrl is not None else (0, 0, 0)
        full, deleted, empty = (int(x) for x in self.ctrl.sum(axis=0, dtype=np.int64))
        return full, deleted, empty


# Go's map constants, declared once for the analyzer (the loader, the audit and
# the findings import them from here).
SLOTS_PER_BUCKET = 8  # Go's bucketCnt (abi.OldMapBucketCount): entries in a classic bucket
SWISS_GROUP_SLOTS = 8  # Go's abi.MapGroupSlots: slots in a Swiss group
SWISS_MAX_LOAD = (7, 8)  # Go's maxAvgGroupLoad / MapGroupSlots: a table grows at 7/8 full


@dataclass(frozen=True)
class Events:
    """Events is the event log, columnar and sorted by ``seq``.

    Columns are shared between ops, as the spec's keys are:
    ``a`` holds addr (alloc, free, madvise), obj (write) or hmap (growth ops);
    ``b`` holds size (alloc), off (write), len (madvise) or bucket (evacuate);
    ``old``/``new`` the write's values; ``text`` a code into ``strings`` for
    kind (alloc), advice (madvise) or root name (write into a root), -1 when
    absent; ``same_size`` the growth flag.
    """

    seq: np.ndarray  # int64
    op: np.ndarray  # int8 codes into EVENT_OPS
    a: np.ndarray  # int64
    b: np.ndarray  # int64
    old: np.ndarray  # int64
    new: np.ndarray  # int64
    text: np.ndarray  # int32, -1 = none
    same_size: np.ndarray  # bool
    strings: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.seq)


@dataclass(frozen=True)
class Heap:
    """Heap is one dump: objects, pointers, roots, pages, maps and events."""

    path: str
    page_size: int
    ptr_size: int
    meta: dict
    obj_addr: np.ndarray  # int64, sorted ascending
    obj_size: np.ndarray  # int64
    obj_kind: np.ndarray  # int16 codes into kinds
    kinds: tuple[str, ...]
    ptr_start: np.ndarray  # int64, len = objects + 1
    ptr_off: np.ndarray  # int64
    ptr_target: np.ndarray  # int64
    slot_start: np.ndarray  # int64, len = objects + 1 (empty range: no slots)
    slot_count: np.ndarray  # int8, occupied slots per bucket
    has_slots: np.ndarray  # bool, per object
    roots: Roots
    pages: PageRuns | None  # None: the dump has no pages, residency assumed
    maps: tuple[MapHeader | SwissMap, ...]
    events: Events
    obj_type: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    types: tuple[str, ...] = ()
    # Optional owner map (its hmap address, 0 = not said) of bucket and overflow
    # objects, from a record's "map" key; empty when no record has one.
    obj_map: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # Optional allocation site (a code address, 0 = not said) per object, from a
    # record's "site" key; empty when no record has one.
    obj_site: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # What the loader found doubtful but not wrong (one line each, e.g. no end record); the CLI prints them.
    warnings: tuple[str, ...] = ()

    @property
    def n_objects(self) -> int:
        """n_objects is the number of objects in the dump."""
        return len(self.obj_addr)

    @property
    def ptr_src(self) -> np.ndarray:
        """ptr_src is the owning object's index for every pointer field."""
        return np.repeat(np.arange(self.n_objects, dtype=np.int64), np.diff(self.ptr_start))

    def kind_code(self, kind: str) -> int:
        """kind_code returns the code of ``kind``, or -1 when no object has it."""
        try:
            return self.kinds.index(kind)
        except ValueError:
            return -1

    def find(self, addrs) -> np.ndarray:
        """find returns the index of the object containing each address, -1 if none.

        >>> h = tiny_heap([(0x1000, 16), (0x1010, 8)])
        >>> h.find([0x1000, 0x100f, 0x1017, 0x1018, 0]).tolist()
        [0, 0, 1, -1, -1]
        """
        addrs = np.asarray(addrs, dtype=np.int64)
        if len(addrs) > 65536:
            # The C index costs O(objects) to build and ~2 cache misses a lookup: worth it for big batches.
            found = heapgraph.find(self.obj_addr, self.obj_size, addrs)
            if found is not None:
                return found
            # Sorted queries walk the address array in order: 2x faster on big heaps.
            order = np.argsort(addrs)
            out = np.empty(len(addrs), np.int64)
            out[order] = self._find(addrs[order])
            return out
        return self._find(addrs)

    def _find(self, addrs: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.obj_addr, addrs, side="right") - 1
        ok = idx >= 0
        safe = np.where(ok, idx, 0)
        if self.n_objects:
            # addr <= a holds, and a - addr cannot overflow where addr + size can (an object may end at 2^63).
            ok &= addrs - self.obj_addr[safe] < self.obj_size[safe]
        else:
            ok[:] = False
        return np.where(ok, idx, -1)

    def ptr_field_addr(self) -> np.ndarray:
        """ptr_field_addr is the absolute address of every pointer field, ascending."""
        return self.obj_addr[self.ptr_src] + self.ptr_off

    def object_label(self, i: int) -> str:
        """object_label names object ``i`` for a person: ``0xc000010000 (overflow, 144 B)``."""
        return f"{self.obj_addr[i]:#x} ({self.kinds[self.obj_kind[i]]}, {int(self.obj_size[i])} B)"


def freeze(value):
    """freeze makes every array in a model value read-only, in place, and returns the value.

    A loaded heap is shared by every analysis step and may be memory-mapped
    from the heap cache: no step may write into it, and numpy now says so
    loudly ("assignment destination is read-only") if one tries.

    >>> h = freeze(tiny_heap([(0x1000, 16)]))
    >>> h.obj_addr.flags.writeable, h.roots.target.flags.writeable
    (False, False)
    """
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif is_dataclass(value):
        for f in fields(value):
            freeze(getattr(value, f.name))
    elif isinstance(value, tuple):
        for v in value:
            freeze(v)
    return value


def empty_events() -> Events:
    """empty_events returns an event log with no events."""
    z = np.zeros(0, np.int64)
    return Events(z, np.zeros(0, np.int8), z, z, z, z, np.zeros(0, np.int32), np.zeros(0, bool), ())
