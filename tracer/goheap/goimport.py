"""goimport turns a Go heap dump, its binary and a residency file into a gctrace dump (version 1).

What comes from where:

- objects, their sizes and pointer fields: the heap dump (sizes are the
  span's element size, so they add up to MemStats.HeapAlloc).
- roots: the pointer fields of the data and bss segments, named by the ELF
  symbol that holds them (``main.cache``, ``main.pair+8``); the pointer slots
  of every stack frame, named by its function; for each finalizer, its
  function value and the objects the finalized object points to (Go's
  collector marks those but not the object itself, or it could never be
  collected); the objects on the finalizer queue; ``otherroot`` records.
  Only roots that hit a heap object are written; the others are counted in
  meta.
- dropped buckets: the unreachable overflow buckets and bucket arrays that
  mapclear or a finished growth left behind are recognised by their pointer
  bitmap or through the old extra.overflow slice (``_garbage_buckets``).
- types: from DWARF, following pointers from the typed globals the way
  viewcore does: a pointer of type ``*T`` gives the object it points to the
  type ``T``, slices type their backing arrays, interfaces are resolved
  through the runtime type address (DW_AT_go_runtime_type) or the itab
  records of the dump. Stack frames are not typed (their locals' DWARF is
  not read), so objects reachable only from stacks stay untyped.
- maps: every map reached that way. Its hmap is decoded; ``buckets`` and
  ``oldbuckets`` objects get kind ``buckets``, separately allocated overflow
  buckets (found on the chains, in ``extra.overflow`` and
  ``extra.oldoverflow``) kind ``overflow``, the mapextra kind ``mapextra``
  and the objects map slots point to kind ``key``/``value``. ``slots``
  counts, per bucket, the tophash bytes >= minTopHash (5): emptyRest (0),
  emptyOne (1) and the evacuated markers evacuatedX (2), evacuatedY (3),
  evacuatedEmpty (4) are not occupied slots.
- pages: from the residency file written by tracer/goheap/gctraceres (without
  it there are no pages and the analyzer says residency was assumed).

Go releases. The heap dump's format has not changed since Go 1.7, but what
it holds has; the importer reads the release and its GOEXPERIMENTs from the
dump's params record (``go1.24.11 X:noswissmap``; meta also keeps the
binary's runtime.buildVersion and warns when they differ) and the map layout
from DWARF, for Go 1.19 and 1.21 to 1.27:

- Malloc headers (1.22+): a scan object of 513 B..32 KiB starts with an
  8-byte pointer to its type, and its value (a bucket array, a groups array)
  starts after it (``_Heap.hdr``). Untyped objects get the type the header
  names, through DW_AT_go_runtime_type (``_type_by_header``).
- Tail slots (1.22+): dumpobjs dumps npages*8192/size slots per span, but a
  span holds only nelems objects; the slots past nelems are the heap bitmap
  of small scan spans (1.22+) and the inline mark bits of Green Tea (1.26+),
  and from 1.24 the 8-byte ones even carry all-ones "pointers". They are
  dropped (``_phantoms``, counted in meta.phantom_slots), so the objects
  add up to MemStats exactly. No pointer >= 2^63 is ever written
  (meta.pointers_refused).
- Maps: the classic hmap (1.19 to 1.23, and GOEXPERIMENT=noswissmap; its
  field offsets from DWARF, 1.24 adds clearSeq) or the Swiss table (1.24+):
  ``map<K,V>``, its directory of ``*table<K,V>``, each table's groups array
  of ``noalg.map.group[K]V``: a control word, then 8 slots of {key, elem},
  or 8 keys and 8 elems with Go 1.27's GOEXPERIMENT=mapsplitgroup. Every
  offset is read from DWARF; a layout that DWARF does not show as one of
  these is a warning (meta.warnings, one line after the import), never a
  silent "maps: 0". Map records follow docs/dump-format.md ("Swiss-table
  maps"); the objects get kinds ``swiss_map``, ``swiss_directory``,
  ``swiss_table`` and ``swiss_groups``, and the keys and elems of full slots
  are walked like the classic buckets' (maps nested in maps included).
- Roots: from Go 1.24, runtime.AddCleanup closures and weak-pointer handles
  are roots the heap dump does not list (meta.roots_missing).

Pointer-free buckets. When neither key nor elem holds pointers the runtime
gives the bucket type no pointers, so the collector never scans bucket
arrays and the heap dump lists no pointer fields in them, although DWARF
declares the overflow word a pointer; those overflow buckets stay alive
only through hmap.extra.overflow/oldoverflow. The analyzer's map audit
follows chains through the pointer field at b + bucketsize - 8, so the
importer adds that word as a pointer field when it is non-nil and marks the
object ``"noscan": true``, exactly as the native tracer's dump writer does
(tracer/native/record.c). This cannot make anything reachable that Go would free:
a live noscan map holds the same overflow buckets through extra.overflow,
and mapclear zeroes the array (overflow words included) when it drops them.

Speed (issue 11: a million objects in < 5 s and < 1 GB). The dump's objects
stay arrays (HeapDump.objects): _Heap sorts them and checks overlaps with
numpy; a map's control bytes and slot words are read per groups or bucket
array, and a side of pointer slots (``map[K]*V``, the big maps) is typed as
one batch (``_Typer.pointers``: a sorted search against the objects'
addresses, types and kinds as arrays of codes, ``_Names``); nested and
other slots keep the walk slot by slot. The walk's queue holds runs of
values too (``_Batch``: a slice's elements, a batch's targets), walked with
numpy when their fields are all pointers (``walk_many``, in the order and
with the first-type-wins of a walk one by one), and the values pushed are
kept per type in sorted arrays (``_Seen``): a snapshot of 16M linked
objects in one slice is typed in seconds, not minutes. No dict is made per object unless
asked: ``GoObjects`` writes the plain objects' lines by C from the arrays
(gowrite, ``_gowrite.c``), the others with orjson, the same bytes as
orjson's of each record (tests/test_goimport_fast.py holds the fast and the
reference paths to the same bytes on every committed dump).
"""

from __future__ import annotations

import bisect
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from collections import deque
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from gctrace import atomicfile

from . import gowrite
from .goheapdump import FIELD_PTR, HeapDump, HeapDumpError, ObjectArrays, read_heapdump
from .gotypes import Binary, KIND_MAP

MIN_TOPHASH = 5  # runtime/map.go: minTopHash; 0..4 are emptyRest, emptyOne, evacuatedX/Y/Empty
BUCKET_CNT = 8
HMAP_LAYOUT = {"count": 0, "flags": 8, "B": 9, "noverflow": 10, "hash0": 12, "buckets": 16,
               "oldbuckets": 24, "nevacuate": 32, "extra": 40}  # Go 1.19's; read from DWARF (1.24 adds clearSeq)
MAPEXTRA_LAYOUT = {"overflow": 0, "oldoverflow": 8, "nextOverflow": 16}

NEWEST_KNOWN = (1, 27)  # the newest Go release whose runtime this importer was checked against
PAGE = 8192  # runtime: pageSize; every size class up to 512 B has one-page spans (sizeclasses.go)
MIN_SIZE_FOR_MALLOC_HEADER = 512  # runtime: minSizeForMallocHeader (goarch.PtrSize * ptrBits)
MAX_SMALL_SIZE = 32768  # runtime: maxSmallSize; larger objects keep their type in the span
MALLOC_HEADER = 8
INLINE_MARK_BITS = 128  # unsafe.Sizeof(spanInlineMarkBits{}), Go 1.26's Green Tea collector
PTR_LIMIT = 1 << 63  # the dump format's integers lie in [0, 2^63)
VECTOR_FIELDS = 16  # an object's record reads more pointer fields than this with numpy (tests vary it)
BATCH = True  # walk a map's pointer slots as one batch (the tests turn it off to compare with slot by slot)
BATCH_MIN = 64  # fewer values than this to walk (or push) at once go one by one (the tests vary it)
WALK_CHUNK = 1 << 20  # values a batch walks at a time

# internal/runtime/maps (Go 1.24+): the fields the importer reads, checked against DWARF
SWISS_MAP_FIELDS = ("used", "seed", "dirPtr", "dirLen", "globalDepth", "globalShift", "clearSeq")
SWISS_TABLE_FIELDS = ("used", "capacity", "growthLeft", "localDepth", "index", "groups")
SWISS_GROUPREF_FIELDS = ("data", "lengthMask")
SWISS_SLOTS = 8  # abi.MapGroupSlots
CTRL_EMPTY, CTRL_DELETED = 0x80, 0xFE  # ctrlEmpty, ctrlDeleted; a full slot's byte is 0b0xxxxxxx


@dataclass(frozen=True)
class GoRuntime:
    """GoRuntime is what the importer needs to know about the Go release that wrote a dump.

    ``version`` is (major, minor), None when the version string is not a
    release; ``experiments`` the GOEXPERIMENT names the version string lists
    (``go1.24.11 X:noswissmap``, ``go1.27.3-X:mapsplitgroup``).
    """

    text: str
    version: tuple | None
    experiments: frozenset

    @classmethod
    def parse(cls, text):
        """parse reads a runtime.Version() string.

        >>> r = GoRuntime.parse("go1.24.11 X:noswissmap,nogreenteagc")
        >>> r.version, sorted(r.experiments), r.malloc_headers, r.green_tea
        ((1, 24), ['nogreenteagc', 'noswissmap'], True, False)
        >>> GoRuntime.parse("go1.27.3-X:mapsplitgroup").green_tea
        True
        >>> GoRuntime.parse("go1.21.13").malloc_headers
        False
        """
        text = text or ""
        m = re.match(r"go(\d+)\.(\d+)", text)
        exps = set()
        for group in re.findall(r"X:([\w,]+)", text):
            exps.update(e for e in group.split(",") if e)
        return cls(text, (int(m.group(1)), int(m.group(2))) if m else None, frozenset(exps))

    @property
    def malloc_headers(self) -> bool:
        """malloc_headers reports whether scan objects of 513 B..32 KiB start with a type header (Go 1.22+)."""
        v = self.version
        return v is not None and v >= (1, 22) and not (v == (1, 22) and "noallocheaders" in self.experiments)

    @property
    def green_tea(self) -> bool:
        """green_tea reports whether small-object spans keep inline mark bits (Go 1.26+, 1.25 by experiment)."""
        v = self.version
        if v is None:
            return False
        if v >= (1, 26):
            return "nogreenteagc" not in self.experiments
        return v == (1, 25) and "greenteagc" in self.experiments

    def nelems(self, size: int, scan: bool) -> int:
        """nelems is the object count of a one-page span of size-class size, as mheap.initSpan computes it.

        >>> GoRuntime.parse("go1.22.10").nelems(48, True), GoRuntime.parse("go1.22.10").nelems(48, False)
        (168, 170)
        >>> GoRuntime.parse("go1.26.6").nelems(48, True), GoRuntime.parse("go1.26.6").nelems(48, False)
        (165, 168)
        >>> GoRuntime.parse("go1.26.6").nelems(8, False), GoRuntime.parse("go1.21.13").nelems(512, True)
        (1024, 16)
        """
        reserve = 0
        if self.green_tea and 16 <= size <= MIN_SIZE_FOR_MALLOC_HEADER:  # gcUsesSpanInlineMarkBits
            reserve += INLINE_MARK_BITS
        if self.malloc_headers and scan and size <= MIN_SIZE_FOR_MALLOC_HEADER:  # heapBitsInSpan
            reserve += PAGE // 8 // 8
        return (PAGE - reserve) // size

    @property
    def roots_missing(self) -> list:
        """roots_missing lists the collector's roots that a heap dump of this release does not carry."""
        if self.version is None or self.version < (1, 24):
            return []
        return ["runtime.AddCleanup cleanups (their closures and arguments are roots)",
                "weak pointer handles (weak.Make)"]


def _phantoms(addr, size, has_fields, rt: GoRuntime):
    """_phantoms marks the objects of the dump that are not objects: the tail slots of small spans.

    heapdump.go's dumpobjs dumps every slot of npages*8192/size, but only the
    first nelems exist: since Go 1.22 a scan span of objects up to 512 B keeps
    its heap bitmap in its last 128 bytes, and since Go 1.26 every span of
    16..512-byte objects keeps 128 bytes of inline mark bits. Slots past nelems
    are always dumped (the free marks stop at nelems), so they look allocated.
    The arrays are sorted by address. A span is the page an object lies in
    (one page for sizes up to 512 B); it is a scan span when one of its real
    slots has pointer fields (the heap bits of a pointerful type set at least
    one). A span with no real slot dumped at all is a scan span only when
    every tail slot is there, as dumpobjs writes them for a scan span.
    Returns a boolean array.
    """
    out = np.zeros(len(addr), dtype=bool)
    if not (rt.malloc_headers or rt.green_tea) or not len(addr):
        return out
    sizes = np.unique(size[size <= MIN_SIZE_FOR_MALLOC_HEADER])
    small = size <= MIN_SIZE_FOR_MALLOC_HEADER
    page = addr & ~np.uint64(PAGE - 1)
    idx = np.zeros(len(addr), dtype=np.int64)
    idx[small] = ((addr[small] - page[small]) // size[small]).astype(np.int64)
    ns_scan = np.zeros(len(addr), dtype=np.int64)
    ns_noscan = np.zeros(len(addr), dtype=np.int64)
    for z in sizes.tolist():
        sel = size == z
        ns_scan[sel], ns_noscan[sel] = rt.nelems(z, True), rt.nelems(z, False)
    tail = small & (idx >= ns_scan)
    if not tail.any():
        return out
    real = small & ~tail
    scan_pages = np.unique(page[real & has_fields])
    real_pages = np.unique(page[real])
    scan = np.isin(page, scan_pages)
    unknown = tail & ~np.isin(page, real_pages)
    for p in np.unique(page[unknown]).tolist():
        sel = unknown & (page == p)
        z = int(size[sel][0])
        if int(sel.sum()) == PAGE // z - rt.nelems(z, True):
            scan |= sel
    out = tail & np.where(scan, idx >= ns_scan, idx >= ns_noscan)
    return out


def _distinct(a: np.ndarray) -> np.ndarray:
    """_distinct is np.unique(a), at once when every item is the same (a batch of one type, most often).

    >>> _distinct(np.array([7, 7, 7])).tolist(), _distinct(np.array([7, 3, 7])).tolist()
    ([7], [3, 7])
    """
    if len(a) and (a == a[0]).all():
        return a[:1]
    return np.unique(a)


def _first(a: np.ndarray) -> tuple:
    """_first is np.unique(a, return_index=True): the distinct items, sorted, and where each first occurs.

    A stable sort, which runs through what is already in order (numpy 2's
    unique hashes first, several times slower on millions of addresses);
    items already strictly increasing (a slice's elements) are their own answer.

    >>> [x.tolist() for x in _first(np.array([5, 2, 5, 9, 2]))]
    [[2, 5, 9], [1, 0, 3]]
    >>> [x.tolist() for x in _first(np.array([2, 5, 9]))]
    [[2, 5, 9], [0, 1, 2]]
    """
    if (a[1:] > a[:-1]).all():
        return a, np.arange(len(a))
    by = np.argsort(a, kind="stable")
    s = a[by]
    head = np.ones(len(s), bool)
    np.not_equal(s[1:], s[:-1], out=head[1:])
    return s[head], by[head]


def _data_off(o: ObjectArrays, ptr_size: int) -> np.ndarray:
    """_data_off is each field's data word's offset: its own for a pointer, the second word of an iface or eface."""
    if (o.field_kind == FIELD_PTR).all():  # (a snapshot's are all pointers)
        return o.field_off
    return o.field_off + np.where(o.field_kind == FIELD_PTR, 0, ptr_size)


def _same(t: int, n: int) -> np.ndarray:
    """_same is n times the type t (int64), as a read-only view of one item: a batch of one type costs nothing."""
    return np.broadcast_to(np.int64(t), (n,))


def _pyarray(code: str, a: np.ndarray) -> memoryview:
    """_pyarray is a numpy array as a sequence of Python ints (a memoryview of type code: no copy if a has it).

    Indexing it gives an int at C speed, and bisect searches it as fast as
    a list, without a list's 40 bytes an item.

    >>> m = _pyarray("q", np.array([3, 5, 9])); m[1], bisect.bisect_right(m, 6), tuple(m[1:])
    (5, 2, (5, 9))
    """
    return memoryview(np.ascontiguousarray(a, np.dtype(code)))


class _Fields(Sequence):
    """_Fields is each object's pointer fields by address index k: HeapDump.obj_fields's tuple, made when asked.

    A tuple per object, kept, took ~100 bytes an object; here the offsets
    stay one array (an iface's given as its data word's, as obj_fields does).
    """

    def __init__(self, o: ObjectArrays, ptr_size: int, order: np.ndarray | None):
        self.n = len(o.addr) if order is None else len(order)
        self.order = None if order is None else _pyarray("q", order)  # None: k is the record's index
        self.start = _pyarray("q", o.field_start)
        self.off = _pyarray("q", _data_off(o, ptr_size))

    def __len__(self):
        return self.n

    def __getitem__(self, k):
        i = k if self.order is None else self.order[k]
        return tuple(self.off[self.start[i]:self.start[i + 1]])


class _Heap:
    """_Heap answers address questions about the dump's objects and segments."""

    def __init__(self, hd: HeapDump, rt: GoRuntime):
        self.hd = hd
        self.rt = rt
        self.headers = rt.malloc_headers
        o = hd.objects
        if o is None or not len(o.addr):
            o = ObjectArrays(*(np.zeros(0, t) for t in (np.uint64, np.int64, np.int64)),
                             np.zeros(1, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.int64))
        by_addr = bool((o.addr[1:] > o.addr[:-1]).all())  # (a snapshot's are): the columns need no copy
        order = np.arange(len(o.addr)) if by_addr else np.argsort(o.addr, kind="stable")
        addr = o.addr if by_addr else o.addr[order]
        size = o.size if by_addr else o.size[order]
        size = size.view(np.uint64) if size.dtype == np.int64 else size.astype(np.uint64, copy=False)  # (< 2^63)
        has_fields = np.diff(o.field_start) > 0
        if not by_addr:
            has_fields = has_fields[order]
        drop = _phantoms(addr, size, has_fields, rt)
        self.phantoms = int(drop.sum())
        self.phantom_bytes = int(size[drop].sum())
        self.phantom_pointers = int((drop & has_fields).sum())
        if self.phantoms:
            keep = ~drop
            order, addr, size, has_fields = order[keep], addr[keep], size[keep], has_fields[keep]
            by_addr = False
        over = np.flatnonzero(addr[1:] < addr[:-1] + size[:-1])
        if len(over):
            k = int(over[0]) + 1
            raise HeapDumpError(hd.path, f"object {int(addr[k]):#x} overlaps object {int(addr[k - 1]):#x}")
        # object k (by address) is record order[k] of the dump; the numpy arrays for batches, and views of
        # them as sequences of Python ints (not lists: 40 bytes an object) for the code that goes object by
        # object
        self.order = order
        self.addr_np, self.size_np, self.has_fields = addr, size.view(np.int64), has_fields
        self.off_np = o.off if by_addr else o.off[order]
        self.addr = _pyarray("Q", addr)
        self.size = _pyarray("q", self.size_np)
        self.off = _pyarray("q", self.off_np)
        self.fields = _Fields(o, hd.ptr_size, None if by_addr else order)
        self.segs = [s for s in (hd.data, hd.bss) if s is not None]

    def find(self, a: int) -> int:
        """find returns the index of the object containing address a, or -1."""
        k = bisect.bisect_right(self.addr, a) - 1
        if k >= 0 and a < self.addr[k] + self.size[k]:
            return k
        return -1

    def find_many(self, a: np.ndarray) -> np.ndarray:
        """find_many is find for an array of addresses (uint64): the objects' indices, -1 where none.

        >>> class H(_Heap):
        ...     def __init__(self): self.addr_np, self.size_np = np.array([16, 64], np.uint64), np.array([16, 8])
        >>> H().find_many(np.array([8, 16, 31, 32, 64, 71, 72], np.uint64)).tolist()
        [-1, 0, 0, -1, 1, 1, -1]
        """
        if len(a) > 4096 and not (a[1:] >= a[:-1]).all():  # a binary search per word is faster over sorted words
            by = np.argsort(a)
            k = np.empty(len(a), np.int64)
            k[by] = np.searchsorted(self.addr_np, a[by], side="right")
            k -= 1
        else:
            k = np.searchsorted(self.addr_np, a, side="right").astype(np.int64) - 1
        ok = k >= 0
        kk = np.where(ok, k, 0)
        ok &= (a - self.addr_np[kk]) < self.size_np[kk].astype(np.uint64) if len(self.addr_np) else False
        return np.where(ok, k, -1)

    def word(self, a: int):
        """word returns the 8-byte word at address a (heap objects, data, bss), or None."""
        k = self.find(a)
        if k >= 0:
            o = a - self.addr[k]
            if o + 8 > self.size[k]:
                return None
            s = self.off[k] + o
            return int.from_bytes(self.hd.raw[s:s + 8], "little")
        for seg in self.segs:
            o = a - seg.addr
            if 0 <= o <= len(seg.contents) - 8:
                return int.from_bytes(seg.contents[o:o + 8], "little")
        return None

    def words_many(self, a: np.ndarray) -> np.ndarray:
        """words_many is word for an array of addresses (uint64): the words, 0 where word gives None."""
        out = np.zeros(len(a), np.uint64)
        k = self.find_many(a)
        hit = np.flatnonzero(k >= 0)
        kk = k[hit]
        o = (a[hit] - self.addr_np[kk]).astype(np.int64)
        fits = o + 8 <= self.size_np[kk]
        out[hit[fits]] = _le64(self.hd.raw, self.off_np[kk[fits]] + o[fits])
        miss = np.flatnonzero(k < 0)
        for seg in self.segs:  # as word: data, then bss, only where no heap object holds the address
            if not len(miss) or len(seg.contents) < 8:
                continue
            am = a[miss]
            inside = (am >= np.uint64(seg.addr)) & (am <= np.uint64(seg.addr + len(seg.contents) - 8))
            out[miss[inside]] = _le64(seg.contents, (am[inside] - np.uint64(seg.addr)).astype(np.int64))
            miss = miss[~inside]
        return out

    def bytes_at(self, k: int, o: int, n: int) -> bytes:
        s = self.off[k] + o
        return self.hd.raw[s:s + n]

    def uint(self, a: int, n: int) -> int:
        """uint returns the n-byte little-endian integer at address a of a heap object (0 outside)."""
        k = self.find(a)
        if k < 0 or a + n > self.addr[k] + self.size[k]:
            return 0
        return int.from_bytes(self.bytes_at(k, a - self.addr[k], n), "little")

    def hdr(self, k: int) -> int:
        """hdr returns the bytes of the malloc header object k starts with (8 or 0).

        Since Go 1.22 a scan object of 513 B..32 KiB starts with a pointer to
        its type; the value begins after it. The header word is not one of the
        object's pointer fields, which begin after it.
        """
        if (self.headers and MIN_SIZE_FOR_MALLOC_HEADER < self.size[k] <= MAX_SMALL_SIZE
                and self.fields[k] and self.fields[k][0] >= MALLOC_HEADER):
            return MALLOC_HEADER
        return 0

    def base(self, k: int) -> int:
        """base returns the address of object k's value: its start, after the malloc header if any."""
        return self.addr[k] + self.hdr(k)

    def is_base(self, k: int, a: int) -> bool:
        """is_base reports whether a is the address of object k's value (base, without computing it for small objects)."""
        o = a - self.addr[k]
        if self.size[k] <= MIN_SIZE_FOR_MALLOC_HEADER:
            return o == 0
        return o == self.hdr(k)


class _Names(MutableMapping):
    """_Names maps object indices to names (a type, a kind), kept as an array of codes for batches.

    A dict of a million entries took most of a big import to fill; here
    ``fill`` names a whole batch at once.

    >>> n = _Names(4); n[2] = "T"; n.fill(np.array([0, 2]), "U"); dict(n), 1 in n, n.get(1, "-")
    ({0: 'U', 2: 'T'}, False, '-')
    """

    def __init__(self, n: int):
        self.code = np.full(n, -1, np.int32)
        self.names = []
        self._index = {}

    def _code(self, name: str) -> int:
        c = self._index.get(name)
        if c is None:
            c = self._index[name] = len(self.names)
            self.names.append(name)
        return c

    def __getitem__(self, k):
        c = self.code[k]
        if c < 0:
            raise KeyError(k)
        return self.names[c]

    def __setitem__(self, k, name):
        self.code[k] = self._code(name)

    def __delitem__(self, k):
        if self.code[k] < 0:
            raise KeyError(k)
        self.code[k] = -1

    def __contains__(self, k):
        return 0 <= k < len(self.code) and self.code[k] >= 0

    def __iter__(self):
        return iter(np.flatnonzero(self.code >= 0).tolist())

    def __len__(self):
        return int(np.count_nonzero(self.code >= 0))

    def get(self, k, default=None):
        c = self.code[k]
        return default if c < 0 else self.names[c]

    def setdefault(self, k, name):
        c = self.code[k]
        if c < 0:
            self.code[k] = c = self._code(name)
        return self.names[c]

    def fill_first(self, ks: np.ndarray, codes: np.ndarray) -> None:
        """fill_first names each object of ks that has no name yet with the code beside its first occurrence.

        >>> n = _Names(3); n[0] = "T"; c = n._code("U"), n._code("V")
        >>> n.fill_first(np.array([1, 0, 1, 2]), np.array([c[0], c[1], c[1], c[1]])); dict(n)
        {0: 'T', 1: 'U', 2: 'V'}
        """
        new = self.code[ks] < 0
        ks, codes = ks[new], codes[new]
        u, first = _first(ks)
        self.code[u] = codes[first]

    def fill(self, ks: np.ndarray, name: str) -> None:
        """fill names the objects ks (an index array) that have no name yet."""
        ks = ks[self.code[ks] < 0]
        if len(ks):
            self.code[ks] = self._code(name)


@dataclass
class _Batch:
    """_Batch is a run of values to walk in the typer's queue, in order: value i is a ``types[i]`` at ``addrs[i]``."""

    addrs: np.ndarray  # uint64
    types: np.ndarray  # int64: type DIE offsets


class _Seen:
    """_Seen is the set of (address, type) values the typer has pushed for a walk.

    Values pushed one by one go into a set; a batch's, per type, into sorted
    arrays (a few, merged as they grow), 16 bytes a value where a set of tuples
    took over 100: the walk of a 16M-object heap pushes twice that many.

    >>> s = _Seen(); s.add((8, 1)); s.new(np.array([8, 16, 16, 24], np.uint64), np.array([1, 1, 1, 2])).tolist()
    [False, True, False, True]
    >>> (16, 1) in s, (24, 1) in s, (24, 2) in s, (8, 1) in s
    (True, False, True, True)
    """

    def __init__(self):
        self.one = {}  # type -> set of addresses, pushed one by one
        self.many = {}  # type -> list of sorted arrays of addresses (uint64), pushed in batches

    def __contains__(self, at) -> bool:
        a, t = at
        if a in self.one.get(t, ()):
            return True
        chunks = self.many.get(t)
        if chunks:
            a = np.uint64(a)  # (a Python int would make numpy search a float64 copy of the chunk)
            for c in chunks:
                i = c.searchsorted(a)
                if i < len(c) and c[i] == a:
                    return True
        return False

    def add(self, at) -> None:
        self.one.setdefault(at[1], set()).add(at[0])

    def new(self, addrs: np.ndarray, types: np.ndarray) -> np.ndarray:
        """new adds the values (addrs[i], types[i]) and says which were new: not seen, nor earlier in the batch."""
        keep = np.zeros(len(addrs), bool)
        ts = _distinct(types).tolist()
        for t in ts:
            at = np.flatnonzero(types == t) if len(ts) > 1 else None  # None: all of them
            u, first = _first(addrs if at is None else addrs[at])
            fresh = np.ones(len(u), bool)
            for c in self.many.get(t, ()):
                i = np.minimum(c.searchsorted(u), len(c) - 1)
                fresh &= c[i] != u
            one = self.one.get(t)
            if one:
                fresh &= np.array([x not in one for x in u.tolist()], bool)
            keep[first[fresh] if at is None else at[first[fresh]]] = True
            if not fresh.any():
                continue
            chunks = self.many.setdefault(t, [])
            chunks.append(u if fresh.all() else u[fresh])
            while len(chunks) > 1 and len(chunks[-2]) <= 2 * len(chunks[-1]):
                last = chunks.pop()
                chunks[-1] = np.sort(np.concatenate((chunks[-1], last)), kind="stable")  # two sorted runs
        return keep


class _Typer:
    """_Typer follows pointers from typed globals, typing objects and decoding maps."""

    def __init__(self, heap: _Heap, binary: Binary):
        self.h = heap
        self.b = binary
        self.type = _Names(len(heap.addr))  # object index -> type name
        self.kind = _Names(len(heap.addr))  # object index -> kind
        self.maps = {}  # hmap address -> header dict
        self.bucketsize = {}  # object index -> bucket size (arrays and overflow objects)
        self.noscan = set()  # object indices holding pointer-free buckets
        self.bucket_types = {}  # bucket struct DIE -> hmaps using it
        self.owner = {}  # object index -> hmap, for buckets recognised among the garbage
        self.seen = _Seen()
        self.work = deque()  # (address, type) values to walk, and _Batch runs of them
        self.warnings = {}  # message -> None, in the order first met
        self._swiss = {}  # (key name, elem name) -> _SwissLayout or None
        self._hmap, self._hmap_read = None, False  # runtime.hmap's layout, read from DWARF on first use
        self._batches = None  # while a Swiss map is decoded: its slots' pointer words, (words, target, kind)

    def run(self, globals_):
        for g in globals_:
            self.push(g.addr, g.type)
        while self.work:
            item = self.work.popleft()
            if isinstance(item, _Batch):
                self.walk_many(item.addrs, item.types)
            else:
                self.walk(*item)
        self.seen = _Seen()  # (hundreds of MB for a big heap, of no use once the walk is done)

    def push(self, a, t):
        if t is None or (a, t) in self.seen:
            return
        self.seen.add((a, t))
        self.work.append((a, t))

    def push_many(self, addrs: np.ndarray, types: np.ndarray):
        """push_many is push for each (addrs[i], types[i]) in order (uint64, DIE offsets), as one _Batch.

        A batch in the queue stands for its values pushed one after the other,
        and walk_many walks them in that order, so the walk, and the first type
        each object gets, are those of pushing them one by one. Values of a
        type without pointer fields are not pushed: their walk would do nothing.
        """
        if not BATCH or len(addrs) < BATCH_MIN:
            for a, t in zip(addrs.tolist(), types.tolist()):
                self.push(a, t)
            return
        walked = {t: bool(self.b.layout(t)) for t in _distinct(types).tolist()}
        if not all(walked.values()):
            keep = np.isin(types, [t for t, w in walked.items() if w])
            addrs, types = addrs[keep], types[keep]
        keep = self.seen.new(addrs, types)
        if keep.all():
            self.work.append(_Batch(addrs, types))
        elif keep.any():
            n = int(keep.sum())
            self.work.append(_Batch(addrs[keep], _same(types[0], n) if len(walked) == 1 else types[keep]))

    def walk_many(self, addrs: np.ndarray, types: np.ndarray):
        """walk_many is walk for each (addrs[i], types[i]) in order, with numpy when every field is a pointer.

        The values' pointer fields, value by value and field by field as walk
        visits them, make one sequence of (word, target type); its objects
        are typed as pointer types them (the first type an object gets stays)
        and pushed in that order, WALK_CHUNK values at a time (their arrays
        stay small; a run of batches in the queue is one batch). Values with
        a map, slice or interface field are walked one by one.
        """
        b, h = self.b, self.h
        ts = _distinct(types)
        lays = [b.layout(t) for t in ts.tolist()]
        if len(addrs) < BATCH_MIN or any(p.what != "ptr" for lay in lays for p in lay):
            for a, t in zip(addrs.tolist(), types.tolist()):
                self.walk(a, t)
            return
        # field j of value i: the (value, field) pairs in walk's order, each field's offset and target type
        width = max(len(lay) for lay in lays)
        off_of = np.zeros((len(ts), width), np.uint64)
        elem_of = np.full((len(ts), width), -1, np.int64)  # -1: a pointer of unknown target (walk ignores it)
        for i, lay in enumerate(lays):
            off_of[i, :len(lay)] = [p.off for p in lay]
            elem_of[i, :len(lay)] = [-1 if p.elem is None else p.elem for p in lay]
        nf_of = np.array([len(lay) for lay in lays], np.int64)
        for lo in range(0, len(addrs), WALK_CHUNK):
            self._walk_pointers(addrs[lo:lo + WALK_CHUNK], types[lo:lo + WALK_CHUNK], ts, off_of, elem_of, nf_of)

    def _walk_pointers(self, addrs, types, ts, off_of, elem_of, nf_of):
        """_walk_pointers is walk_many for values whose every field is a pointer (given per type by the tables)."""
        b, h = self.b, self.h
        if len(ts) == 1:  # one type: field j of value i is entry i * width + j
            elem = np.tile(elem_of[0], len(addrs))
            wa = (addrs[:, None] + off_of[0][None, :]).ravel()
        else:
            ti = np.searchsorted(ts, types)
            nf = nf_of[ti]
            value = np.repeat(np.arange(len(addrs)), nf)
            field = np.arange(len(value)) - np.repeat(np.cumsum(nf) - nf, nf)
            row = ti[value]
            elem = elem_of[row, field]
            wa = addrs[value] + off_of[row, field]
            del value, field, row
        known = elem >= 0
        if not known.all():
            wa, elem = wa[known], elem[known]
        ws = h.words_many(wa)
        del wa
        keep = ws != 0
        ws, elem = ws[keep], elem[keep]
        ks = h.find_many(ws)
        hit = ks >= 0
        ws, elem, ks = ws[hit], elem[hit], ks[hit]
        small = h.size_np[ks] <= MIN_SIZE_FOR_MALLOC_HEADER
        base = small & (ws == h.addr_np[ks])
        big = np.flatnonzero(~small)
        if len(big):
            base[big] = [h.is_base(k, w) for k, w in zip(ks[big].tolist(), ws[big].tolist())]
        targets = _distinct(elem)
        codes = np.array([self.type._code(b.name(e)) for e in targets.tolist()], np.int32)
        self.type.fill_first(ks[base], codes[np.searchsorted(targets, elem[base])])
        self.push_many(ws, elem)

    def settype(self, k, name, kind=None):
        self.type.setdefault(k, name)
        if kind is not None and k not in self.kind:
            self.kind[k] = kind

    def walk(self, a, t):
        """walk visits the pointer fields of the value of type t at address a."""
        h, b = self.h, self.b
        for p in b.layout(t):
            w = h.word(a + p.off)
            if not w:
                continue
            if p.what == "map":
                self.map(w, p.elem)
            elif p.what == "ptr":
                self.pointer(w, p.elem)
            elif p.what == "slice":
                cap = h.word(a + p.cap_off) or 0
                self.array(w, p.elem, cap)
            elif p.what in ("eface", "iface"):
                tw = h.word(a + p.off - 8)
                if not tw:
                    continue
                rtype = tw if p.what == "eface" else h.hd.itabs.get(tw)
                dyn = b.type_by_runtime.get(rtype) if rtype else None
                if dyn is None:
                    continue
                d = b.resolve(dyn)
                if d.tag == "DW_TAG_pointer_type":
                    self.pointer(w, b._ref(d))
                elif d.tag == "DW_TAG_typedef" and b.kind(d.offset) == KIND_MAP:
                    self.map(w, d.offset)
                else:
                    self.pointer(w, dyn)

    def pointer(self, w, elem, kind=None):
        k = self.h.find(w)
        if k < 0 or elem is None:
            return
        if self.h.is_base(k, w):
            self.settype(k, self.b.name(elem), kind)
        self.push(w, elem)

    def array(self, w, elem, n):
        k = self.h.find(w)
        if k < 0 or elem is None:
            return
        es = self.b.size(elem)
        if self.h.is_base(k, w):
            self.settype(k, f"[{n}]{self.b.name(elem)}")
        if es <= 0 or not self.b.has_pointers(elem):
            return
        end = self.h.addr[k] + self.h.size[k]
        m = min(n, (end - w) // es)
        if BATCH and m >= BATCH_MIN:
            self.push_many(np.uint64(w) + np.arange(m, dtype=np.uint64) * np.uint64(es), _same(elem, m))
            return
        for i in range(m):
            self.push(w + i * es, elem)

    def hmap_layout(self):
        """hmap_layout returns ({field: (offset, bytes)}, size) of runtime.hmap from DWARF, or None (warned)."""
        if not self._hmap_read:
            self._hmap_read = True
            off = self.b.struct_by_name.get("runtime.hmap")
            m = self.b.members(off) if off is not None else {}
            lack = [f for f in HMAP_LAYOUT if f not in m]
            if lack:
                self.warn(f"classic maps: runtime.hmap in DWARF lacks {', '.join(lack)}; they are not decoded")
            else:
                fields = {f: (m[f][0], m[f][2]) for f in (*HMAP_LAYOUT, "clearSeq") if f in m}
                self._hmap = (fields, self.b.size(off))
        return self._hmap

    def warn(self, message):
        self.warnings.setdefault(message, None)

    def map(self, w, mtype):
        """map decodes the map header at w (a map of typedef mtype) in the layout DWARF declares."""
        if w in self.maps:
            return
        layout = self.b.map_layout(mtype)
        if layout == "swiss":
            self.swiss_map(w, mtype)
        elif layout == "hmap":
            self.hmap(w, mtype)
        else:
            self.warn(f"map type {self.b.name(mtype)}: its layout is unknown to gctrace (DWARF has neither "
                      f"bucket<K,V> nor map<K,V>); its maps are not decoded")

    def hmap(self, w, mtype):
        """hmap decodes the classic hmap at w (a map of typedef mtype) and types its buckets."""
        h, b = self.h, self.b
        k = h.find(w)
        lay = self.hmap_layout()
        if lay is None or k < 0 or w != h.addr[k] or h.size[k] < lay[1]:
            return
        hdr = {"hmap": w, "impl": "hmap"}
        hdr.update({f: h.uint(w + off, n) for f, (off, n) in lay[0].items()})
        key, elem, bucket = b.map_types(mtype)
        self.settype(k, f"hash<{b.name(key)},{b.name(elem)}>", "hmap")
        self.kind[k] = "hmap"
        hdr["type"] = b.name(mtype)
        if bucket is None:
            hdr["bucketsize"] = 0
            self.maps[w] = hdr
            return
        members = {c.attributes["DW_AT_name"].value.decode(): (c.attributes["DW_AT_data_member_location"].value,
                                                                b._ref(c))
                   for c in b.die(bucket).iter_children() if c.tag == "DW_TAG_member"}
        bs = b.size(bucket)
        koff, ktype = members["keys"]
        voff, vtype = members["values"]
        kslot = b._ref(b.resolve(ktype))  # [8]K -> K (or *K when stored indirectly)
        vslot = b._ref(b.resolve(vtype))
        ksz, vsz = b.size(kslot), b.size(vslot)
        noscan = not (b.has_pointers(ktype) or b.has_pointers(vtype))
        hdr.update(bucketsize=bs, keysize=ksz, elemsize=vsz, noscan=noscan)
        self.maps[w] = hdr
        self.bucket_types.setdefault(bucket, []).append(w)
        bname = b.name(bucket)
        pending = deque()
        kpk = "key" if b.resolve(kslot).tag == "DW_TAG_pointer_type" else None
        vpk = "value" if b.resolve(vslot).tag == "DW_TAG_pointer_type" else None

        def claim(a, kind):
            j = h.find(a)
            if j < 0 or j in self.bucketsize:
                return
            hd = h.hdr(j)
            if (a - h.addr[j] - hd) % bs:
                return
            self.bucketsize[j] = bs
            self.kind[j] = kind
            self.type[j] = bname
            if noscan:
                self.noscan.add(j)
            pending.append(j)

        for f in ("buckets", "oldbuckets"):
            if hdr[f]:
                claim(hdr[f], "buckets")
        if hdr["extra"]:
            j = h.find(hdr["extra"])
            if j >= 0:
                self.settype(j, "runtime.mapextra", "mapextra")
                for f in ("overflow", "oldoverflow"):
                    sp = h.word(hdr["extra"] + MAPEXTRA_LAYOUT[f])  # *[]*bmap
                    if not sp:
                        continue
                    s = h.find(sp)
                    if s < 0:
                        continue
                    self.settype(s, "[]*" + bname)
                    arr, n = h.word(sp) or 0, h.word(sp + 8) or 0
                    ai = h.find(arr)
                    if ai < 0:
                        continue
                    self.settype(ai, f"[{n}]*{bname}")
                    for i in range(n):
                        ov = h.word(arr + 8 * i)
                        if ov:
                            claim(ov, "overflow")
        kwalk = ktype is not None and b.has_pointers(kslot)
        vwalk = vtype is not None and b.has_pointers(vslot)
        ktarget = b._ref(b.resolve(kslot)) if kpk else None
        vtarget = b._ref(b.resolve(vslot)) if vpk else None
        while pending:  # each claimed object's buckets: first the overflow buckets they chain to, then slots
            j = pending.popleft()
            hd = h.hdr(j)
            buf = np.frombuffer(h.hd.raw, np.uint8, count=h.size[j], offset=h.off[j])
            starts = hd + np.arange((h.size[j] - hd) // bs) * bs
            for ov in _le64(buf, starts + bs - 8).tolist():
                if ov:
                    claim(ov, "overflow")
            bi, si = np.nonzero(buf[starts[:, None] + np.arange(BUCKET_CNT)] >= MIN_TOPHASH)
            sides = []
            if kwalk:
                sides.append((starts[bi] + koff + si * ksz, kslot, ktarget, kpk))
            if vwalk:
                sides.append((starts[bi] + voff + si * vsz, vslot, vtarget, vpk))
            self.slots(buf, h.addr[j], sides)

    def swiss_layout(self, key, elem):
        """swiss_layout reads from DWARF where a Swiss map of key and elem types keeps its fields (cached)."""
        kn, vn = self.b.name(key), self.b.name(elem)
        if (kn, vn) not in self._swiss:
            lay, problem = _SwissLayout.read(self.b, kn, vn)
            if problem:
                self.warn(f"Swiss map map[{kn}]{vn}: {problem}; its maps are not decoded")
            self._swiss[kn, vn] = lay
        return self._swiss[kn, vn]

    def settag(self, k, name, kind):
        """settag gives object k a map-structure kind and type, over any type met earlier."""
        self.kind[k] = kind
        self.type[k] = name

    def swiss_map(self, w, mtype):
        """swiss_map decodes the Swiss-table map at w: its Map, directory, tables and groups (Go 1.24+)."""
        h, b = self.h, self.b
        key, elem, _ = b.map_types(mtype)
        lay = self.swiss_layout(key, elem)
        k = h.find(w)
        if lay is None or k < 0 or w != h.addr[k] or h.size[k] < lay.map_size:
            return
        f = {name: h.uint(w + off, n) for name, (off, n) in lay.map.items()}
        self.settag(k, lay.names["map"], "swiss_map")
        rec = {"hmap": w, "impl": "swiss", "count": f["used"], "dir_ptr": f["dirPtr"], "dir_len": f["dirLen"],
               "global_depth": f["globalDepth"], "clear_seq": f["clearSeq"], "slot_size": lay.slot_size,
               "group_size": lay.group_size, "seed": f["seed"], "global_shift": f["globalShift"],
               "key_size": lay.key_size, "elem_size": lay.elem_size, "type": b.name(mtype)}
        if "tombstonePossible" in f:
            rec["tombstone_possible"] = bool(f["tombstonePossible"])
        rec["tables"] = []
        self.maps[w] = rec
        # The tables' pointer slots are typed as one batch after the last table: the same result, since
        # pointers only fills in untyped objects and settag overwrites, and a walk queue in the same order.
        self._batches = []
        self._swiss_tables(rec, f, lay)
        batches, self._batches = self._batches, None
        for (target, kind), same in itertools.groupby(batches, key=lambda x: x[1:]):
            self.pointers(np.concatenate([x[0] for x in same]), target, kind)

    def _swiss_tables(self, rec, f, lay):
        """_swiss_tables decodes the directory, tables and groups of the Swiss map rec (its Map's fields f)."""
        h = self.h
        if f["dirLen"] == 0:
            if f["dirPtr"]:
                ctrl = self.groups(f["dirPtr"], 1, lay, f"{lay.names['group']}")
                if ctrl is not None:
                    rec["small"] = {"ctrl": ctrl[0]}
            return
        d = h.find(f["dirPtr"])
        if d < 0:
            return
        self.settag(d, f"[{f['dirLen']}]*{lay.names['table']}", "swiss_directory")
        seen = set()
        for i in range(f["dirLen"]):
            t = h.word(f["dirPtr"] + 8 * i)
            if not t or t in seen:
                continue
            seen.add(t)
            j = h.find(t)
            if j < 0:
                continue
            self.settag(j, lay.names["table"], "swiss_table")
            tf = {name: h.uint(t + off, n) for name, (off, n) in lay.table.items()}
            data, mask = tf["data"], tf["lengthMask"]
            index = tf["index"] - (1 << 64) if tf["index"] >= 1 << 63 else tf["index"]
            ctrl = self.groups(data, mask + 1, lay, f"[{mask + 1}]{lay.names['group']}") if data else None
            rec["tables"].append({"addr": t, "capacity": tf["capacity"], "used": tf["used"],
                                  "growth_left": tf["growthLeft"], "local_depth": tf["localDepth"],
                                  "index": index, "groups": data, "groups_len": mask + 1,
                                  "ctrl": ctrl if ctrl is not None else []})

    def groups(self, a, n, lay, name):
        """groups types the n groups at a, walks the keys and elems of their full slots, returns their ctrl counts."""
        h, b = self.h, self.b
        j = h.find(a)
        if j < 0 or a + n * lay.group_size > h.addr[j] + h.size[j]:
            return None
        self.settag(j, name, "swiss_groups")
        gs, co = lay.group_size, lay.ctrl_off
        o = h.off[j] + a - h.addr[j]
        buf = np.frombuffer(h.hd.raw, np.uint8, count=n * gs, offset=o)  # the groups, not copied
        ctrl = buf[(np.arange(n) * gs + co)[:, None] + np.arange(SWISS_SLOTS)]
        deleted = (ctrl == CTRL_DELETED).sum(axis=1)
        empty = (ctrl == CTRL_EMPTY).sum(axis=1)
        out = np.stack([SWISS_SLOTS - deleted - empty, deleted, empty], axis=1).tolist()
        g, i = np.nonzero(ctrl < 0x80)  # the full slots, group by group
        sides = []
        # a slot holding a pointer (a pointer key or elem, or one stored indirectly) types its target directly
        if b.has_pointers(lay.key_type):
            kpoint = b._ref(b.resolve(lay.key_type)) if lay.key_kind else None
            sides.append((g * gs + lay.key_at(i), lay.key_type, kpoint, lay.key_kind))
        if b.has_pointers(lay.elem_type):
            vpoint = b._ref(b.resolve(lay.elem_type)) if lay.elem_kind else None
            sides.append((g * gs + lay.elem_at(i), lay.elem_type, vpoint, lay.elem_kind))
        self.slots(buf, a, sides)
        return out

    def slots(self, buf, a, sides):
        """slots walks the keys or elems of a map's full slots, in slot order, each slot's key before its elem.

        buf holds the bytes from address a on; each of ``sides`` is (offsets in
        buf, type, target, kind): a slot holding a pointer (target not None)
        types the object it points to as target (``pointer``), another is
        walked as a value of its type. One side of pointers (``map[K]*V``,
        the big maps) goes as one batch (``pointers``); with BATCH off, or
        any other shape, slot by slot.
        """
        if not sides or not len(sides[0][0]):
            return
        if BATCH and len(sides) == 1 and sides[0][2] is not None:
            offs, _, target, kind = sides[0]
            if self._batches is not None:  # swiss_map types them after its last table
                self._batches.append((_le64(buf, offs), target, kind))
            else:
                self.pointers(_le64(buf, offs), target, kind)
            return
        cols = []
        for offs, t, target, kind in sides:
            if target is None:
                cols.append((t, None, None, (offs + a).tolist()))
            else:
                cols.append((t, target, kind, _le64(buf, offs).tolist()))
        for i in range(len(sides[0][0])):
            for t, target, kind, vals in cols:
                if target is None:
                    self.push(vals[i], t)
                elif vals[i]:
                    self.pointer(vals[i], target, kind)

    def pointers(self, ws, elem, kind=None):
        """pointers is ``pointer`` for every word of ws (uint64, nil words ignored), as one batch.

        Each object a word points into is pushed for a walk as elem, and typed
        elem (and given kind, unless it has one) when the word points at its
        value; as ``pointer`` does, the first type an object gets stays. A
        value of a type without pointer fields is not pushed: its walk would
        do nothing.
        """
        if elem is None:
            return
        h = self.h
        ws = ws[ws != 0]
        ks = h.find_many(ws)
        hit = ks >= 0
        ws, ks = ws[hit], ks[hit]
        small = h.size_np[ks] <= MIN_SIZE_FOR_MALLOC_HEADER
        base = small & (ws == h.addr_np[ks])
        big = np.flatnonzero(~small)
        if len(big):
            base[big] = [h.is_base(k, w) for k, w in zip(ks[big].tolist(), ws[big].tolist())]
        self.type.fill(ks[base], self.b.name(elem))
        if kind is not None:
            self.kind.fill(ks[base], kind)
        if self.b.layout(elem):
            self.push_many(ws, _same(elem, len(ws)))


@dataclass
class _SwissLayout:
    """_SwissLayout is where one Swiss map type keeps its fields, all read from DWARF.

    ``map``/``table`` give {field: (offset, bytes)} (a table's ``groups``
    is split into ``data`` and ``lengthMask``). A group is a control word and
    either 8 slots of {key, elem} (``slots``, Go 1.24+) or 8 keys then 8
    elems (``keys``/``elems``, Go 1.27's GOEXPERIMENT=mapsplitgroup).
    """

    names: dict
    map: dict
    map_size: int
    table: dict
    group_size: int
    ctrl_off: int
    key_type: int | None
    elem_type: int | None
    key_size: int
    elem_size: int
    slot_size: int
    key_kind: str | None  # "key" when the slot holds a pointer to the key (stored indirectly)
    elem_kind: str | None
    _key: tuple = (0, 0)  # (offset of slot 0's key in the group, stride)
    _elem: tuple = (0, 0)

    def key_at(self, i):
        return self._key[0] + i * self._key[1]

    def elem_at(self, i):
        return self._elem[0] + i * self._elem[1]

    @classmethod
    def read(cls, b, kn, vn):
        """read returns (layout, None), or (None, what DWARF lacks)."""
        names = {"map": f"map<{kn},{vn}>", "table": f"table<{kn},{vn}>", "ref": f"groupReference<{kn},{vn}>",
                 "group": f"noalg.map.group[{kn}]{vn}"}
        dies = {k: b.struct_by_name.get(n) for k, n in names.items()}
        missing = [names[k] for k, d in dies.items() if d is None]
        if missing:
            return None, f"DWARF has no {', '.join(missing)}"
        m, t, r, g = (b.members(dies[k]) for k in ("map", "table", "ref", "group"))
        lack = ([f"map.{x}" for x in SWISS_MAP_FIELDS if x not in m]
                + [f"table.{x}" for x in SWISS_TABLE_FIELDS if x not in t]
                + [f"groupReference.{x}" for x in SWISS_GROUPREF_FIELDS if x not in r])
        if "ctrl" not in g or g["ctrl"][2] != 8:
            lack.append("group.ctrl (8 bytes)")
        if lack:
            return None, f"layout unknown to gctrace (no {', '.join(lack)})"
        fields = {x: (m[x][0], m[x][2]) for x in (*SWISS_MAP_FIELDS, "tombstonePossible") if x in m}
        tfields = {x: (t[x][0], t[x][2]) for x in SWISS_TABLE_FIELDS if x != "groups"}
        go = t["groups"][0]
        tfields.update({x: (go + r[x][0], r[x][2]) for x in SWISS_GROUPREF_FIELDS})
        gsize = b.size(dies["group"])
        if "slots" in g:  # [8]struct{key K; elem V}
            slot = b.elem(g["slots"][1])
            sm = b.members(slot) if slot is not None else {}
            if "key" not in sm or "elem" not in sm:
                return None, "layout unknown to gctrace (group slots without key and elem)"
            ss = b.size(slot)
            ktype, vtype = sm["key"][1], sm["elem"][1]
            kat, vat = (g["slots"][0] + sm["key"][0], ss), (g["slots"][0] + sm["elem"][0], ss)
        elif "keys" in g and "elems" in g:  # mapsplitgroup: [8]K then [8]V
            ktype, vtype = b.elem(g["keys"][1]), b.elem(g["elems"][1])
            ss = (gsize - 8) // SWISS_SLOTS
            kat, vat = (g["keys"][0], b.size(ktype)), (g["elems"][0], b.size(vtype))
        else:
            return None, f"layout unknown to gctrace (group fields {sorted(g)})"

        def kind(t, what):
            return what if t is not None and b.resolve(t).tag == "DW_TAG_pointer_type" else None

        return cls(names, fields, b.size(dies["map"]), tfields, gsize, g["ctrl"][0], ktype, vtype,
                   b.size(ktype), b.size(vtype), ss, kind(ktype, "key"), kind(vtype, "value"), kat, vat), None


def _garbage_buckets(heap: _Heap, typer: _Typer):
    """_garbage_buckets recognises the buckets a map has dropped, which no pointer from a typed global reaches.

    ``mapclear`` (what ``for k := range m { delete(m, k) }`` compiles to)
    zeroes the bucket array and forgets the overflow buckets; a finished
    growth drops the old array. Until the next sweep these are unreachable
    objects with no type. The evidence used, per bucket type of a decoded map:

    - pointer-holding buckets: the heap bitmap's pointer offsets (the dump's
      fields, which come from the type, not the values) equal the bucket
      struct's pointer offsets, once per bucket, and the size is one bucket
      rounded to a size class (kind ``overflow``) or a whole number of buckets
      (kind ``buckets``);
    - pointer-free buckets: they have no fields, so only the old
      ``extra.overflow`` slice identifies them: an unclaimed array of pointers
      whose every non-nil element points either at the start of an
      unclaimed, field-less object of one bucket, or at a bucket in the tail
      of a known bucket array (newoverflow records the preallocated
      overflow buckets there too).

    Each recognised object gets its bucket type, its slots and, when one map
    alone has that bucket type, ``map`` (the hmap): the analyzer's orphan
    attribution goes by size alone and cannot tell two maps with the same
    bucket size apart.
    """
    b = typer.b
    claimed = typer.type.code >= 0  # object index -> typed or a bucket already
    claimed[list(typer.bucketsize)] = True
    sig = {}
    free_sizes = {}
    for bucket, hmaps in typer.bucket_types.items():
        bs = b.size(bucket)
        owner = hmaps[0] if len(hmaps) == 1 else None
        if typer.maps[hmaps[0]].get("noscan"):
            free_sizes.setdefault(bs, []).append((bucket, owner))
        else:
            offs = tuple(sorted(p.off for p in b.layout(bucket)))
            sig.setdefault((bs, offs), []).append((bucket, owner))

    def claim(k, bucket, owner, bs, kind, noscan):
        typer.bucketsize[k] = bs
        typer.kind[k] = kind
        typer.type[k] = b.name(bucket)
        claimed[k] = True
        if noscan:
            typer.noscan.add(k)
        if owner is not None:
            typer.owner[k] = owner

    for k in np.flatnonzero(heap.has_fields & ~claimed).tolist() if sig else ():  # claim marks only k
        size, fields = heap.size[k], heap.fields[k]
        hd = heap.hdr(k)
        for (bs, offs), cands in sig.items():
            n = (size - hd) // bs
            if n == 0 or len(fields) != n * len(offs) or len(cands) != 1 and n > 1:
                continue
            if fields == tuple(hd + i * bs + o for i in range(n) for o in offs):
                kind = "overflow" if size < 2 * bs else "buckets"
                claim(k, cands[0][0], cands[0][1], bs, kind, False)
                break
    if not free_sizes:
        return
    for k in np.flatnonzero(heap.has_fields & ~claimed).tolist():
        size, fields = heap.size[k], heap.fields[k]
        if claimed[k] or fields != tuple(range(0, len(fields) * 8, 8)):  # claim(j) below marks others
            continue
        targets = [w for w in (heap.word(heap.addr[k] + o) for o in fields) if w]
        if not targets:
            continue
        js = [heap.find(w) for w in targets]
        if any(j < 0 for j in js):
            continue
        # elements that point at a preallocated bucket in the tail of a known array are fine
        inarray = [j in typer.bucketsize and typer.kind.get(j) == "buckets"
                   and (w - heap.base(j)) % typer.bucketsize[j] == 0 for j, w in zip(js, targets)]
        js = [j for j, ok in zip(js, inarray) if not ok]
        targets = [w for w, ok in zip(targets, inarray) if not ok]
        if not js or any(heap.addr[j] != w or claimed[j] or heap.fields[j] for j, w in zip(js, targets)):
            continue
        sizes = {heap.size[j] for j in js}
        fit = [(bs, c) for bs, c in free_sizes.items() if all(bs <= z < 2 * bs for z in sizes)]
        if len(fit) != 1 or len(fit[0][1]) != 1:
            continue
        bs, ((bucket, owner),) = fit[0]
        typer.type.setdefault(k, f"[{len(fields)}]*{b.name(bucket)}")
        claimed[k] = True
        for j in js:
            claim(j, bucket, owner, bs, "overflow", True)


def _slots(buf: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """_slots counts the occupied slots (tophash >= minTopHash) of the buckets at offsets starts of buf.

    >>> _slots(np.array([5, 0, 1, 9, 4, 3, 2, 255, 0, 0, 0, 0, 0, 0, 0, 0], np.uint8), np.array([0, 8])).tolist()
    [3, 0]
    """
    return (buf[starts[:, None] + np.arange(BUCKET_CNT)] >= MIN_TOPHASH).sum(axis=1, dtype=np.int64)


class GoObjects(Sequence):
    """GoObjects is an import's objects by address, a sequence of object records made when asked.

    ``[k]`` and iteration give each object's record as a dict (``record``,
    the one reference for what a line holds); ``write`` writes all their
    lines, the plain ones (no bucket slots, no ``noscan``: nearly all) by C
    straight from the heap dump's arrays when tracer/goheap/_gowrite.c is built
    (gowrite), byte for byte what orjson writes for the records. At a million
    objects the dicts would take gigabytes and most of the import's time;
    nothing makes them unless asked. ``nbytes`` is the objects' total size,
    ``refused`` the pointer fields whose word is no address (>= 2^63), which
    are never written.
    """

    def __init__(self, heap: _Heap, typer: _Typer):
        self.h, self.t = heap, typer
        self.nbytes = int(heap.size_np.sum())
        self.refused = _refused(heap)

    def __len__(self):
        return len(self.h.addr)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self.record(i) for i in range(*k.indices(len(self)))]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        return self.record(k)

    def __iter__(self):
        return map(self.record, range(len(self)))

    def __eq__(self, other):
        """Two imports' objects are equal when their records are, as two lists of them would be."""
        if not isinstance(other, (GoObjects, list)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None

    def record(self, k: int, arrays: bool = False) -> dict:
        """record returns object k's record: addr, size, kind, [noscan, slots], ptrs, [map], [type].

        ptrs are the pointer fields whose word is an address (not nil, below
        2^63); an object of pointer-free buckets adds each bucket's overflow
        word (see the module's doc). A bucket array and an object of many
        fields are read with numpy, the others word by word; with ``arrays``
        their ptrs and slots stay numpy arrays (for ``line``).
        """
        heap, typer = self.h, self.t
        a, size, fields = heap.addr[k], heap.size[k], heap.fields[k]
        o = {"addr": a, "size": size, "kind": typer.kind.get(k, "other")}
        bs = typer.bucketsize.get(k)
        if not bs and len(fields) <= VECTOR_FIELDS:
            raw, base = heap.hd.raw, heap.off[k]
            ptrs = []
            for off in fields:  # the parser checked that every field lies inside its object
                w = int.from_bytes(raw[base + off:base + off + 8], "little")
                if w and w < PTR_LIMIT:
                    ptrs.append([off, w])
        else:
            buf = np.frombuffer(heap.hd.raw, np.uint8, count=size, offset=heap.off[k])
            offs = np.array(fields, np.int64)
            ws = _le64(buf, offs)
            if bs:
                starts = heap.hdr(k) + np.arange((size - heap.hdr(k)) // bs) * bs
                if k in typer.noscan:
                    extra = starts + bs - 8
                    extra = extra[~np.isin(extra, offs)]
                    offs, ws = np.concatenate([offs, extra]), np.concatenate([ws, _le64(buf, extra)])
                    by_off = np.argsort(offs, kind="stable")
                    offs, ws = offs[by_off], ws[by_off]
                    o["noscan"] = True
                o["slots"] = _slots(buf, starts) if arrays else _slots(buf, starts).tolist()
            keep = (ws != 0) & (ws < PTR_LIMIT)
            ptrs = np.stack([offs[keep], ws[keep].astype(np.int64)], axis=1)
            if not arrays:
                ptrs = ptrs.tolist()
        o["ptrs"] = ptrs
        if k in typer.owner:
            o["map"] = typer.owner[k]
        if k in typer.type:
            o["type"] = typer.type[k]
        return o

    def line(self, k: int) -> bytes:
        """line returns object k's JSON line (without its newline): orjson's bytes for its record."""
        return orjson.dumps({"object": self.record(k, arrays=True)}, option=orjson.OPT_SERIALIZE_NUMPY)

    def write(self, f, native: bool | None = None) -> None:
        """write writes every object's line to the binary file f, by C when built (native=None: if available)."""
        if native is None:
            native = gowrite.available()
        if not native:
            buf = bytearray()
            for o in self:
                buf += orjson.dumps({"object": o})
                buf += b"\n"
                if len(buf) >= gowrite.BUFFER:
                    f.write(buf)
                    buf = bytearray()
            f.write(buf)
            return
        t, n = self.t, len(self)
        names = [*t.kind.names, *t.type.names, "other"]
        kind = np.where(t.kind.code >= 0, t.kind.code, len(names) - 1).astype(np.int32, copy=False)
        type_ = np.where(t.type.code >= 0, t.type.code + len(t.kind.names), -1).astype(np.int32, copy=False)
        owner = np.zeros(n, np.uint64)
        if t.owner:
            owner[np.fromiter(t.owner.keys(), np.int64, len(t.owner))] = np.fromiter(t.owner.values(), np.uint64,
                                                                                    len(t.owner))
        plain = np.ones(n, bool)
        if t.bucketsize:
            plain[np.fromiter(t.bucketsize.keys(), np.int64, len(t.bucketsize))] = False
        gowrite.write_objects(f, self.h.hd, self.h.order, kind, type_, owner, names, plain, self.line)


def _le64(raw, pos: np.ndarray) -> np.ndarray:
    """_le64 reads the little-endian 8-byte words of raw (bytes or a uint8 array) at the byte offsets pos (uint64).

    >>> _le64(bytes(range(16)), np.array([0, 8])).tolist() == [0x0706050403020100, 0x0f0e0d0c0b0a0908]
    True
    """
    buf = raw if isinstance(raw, np.ndarray) else np.frombuffer(raw, np.uint8)
    if len(pos) > 64 and buf.ctypes.data % 8 == 0 and not (pos & 7).any():  # aligned: one gather
        return np.frombuffer(buf, "<u8", count=len(buf) // 8)[pos >> 3]
    w = np.zeros(len(pos), np.uint64)
    for j in range(8):
        w |= buf[pos + j].astype(np.uint64) << np.uint64(8 * j)
    return w


def _refused(heap: _Heap) -> int:
    """_refused counts the pointer fields of the heap's objects (phantoms left out) whose word is >= 2^63."""
    o = heap.hd.objects
    if o is None or not len(o.field_off):
        return 0
    kept = np.zeros(len(o.addr), bool)
    kept[heap.order] = True
    raw, fs, n = np.frombuffer(heap.hd.raw, np.uint8), o.field_start, 0
    for lo in range(0, len(o.addr), WALK_CHUNK):  # a chunk of objects at a time: the arrays stay small
        hi = min(lo + WALK_CHUNK, len(o.addr))
        f = slice(fs[lo], fs[hi])
        obj = np.repeat(np.arange(lo, hi), np.diff(fs[lo:hi + 1]))
        data_off = o.field_off[f] + np.where(o.field_kind[f] == FIELD_PTR, 0, heap.hd.ptr_size)
        top = raw[o.off[obj] + data_off + 7]  # the word's most significant byte
        n += int(np.count_nonzero((top >= 0x80) & kept[obj]))
    return n


def read_residency(path) -> dict:
    """read_residency loads a residency file of tracer/goheap/gctraceres and checks its shape."""
    try:
        with open(path, "rb") as f:
            doc = orjson.loads(f.read())
    except OSError as e:
        raise HeapDumpError(path, f"cannot read: {e.strerror or e}") from None
    except orjson.JSONDecodeError as e:
        raise HeapDumpError(path, f"not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != "gctrace.residency":
        raise HeapDumpError(path, 'not a residency file (expected "format": "gctrace.residency")')
    if doc.get("version") != 1:
        raise HeapDumpError(path, f"residency version {doc.get('version')!r} unknown (expected 1)")
    ps = doc.get("page_size")
    if not isinstance(ps, int) or ps <= 0 or ps & (ps - 1):
        raise HeapDumpError(path, f"page_size {ps!r} is not a power of two")
    pages = doc.get("pages")
    if not isinstance(pages, list):
        raise HeapDumpError(path, "pages is missing")
    for i, p in enumerate(pages):
        if not (isinstance(p, dict) and isinstance(p.get("addr"), int) and isinstance(p.get("n"), int)
                and p["n"] > 0 and p["addr"] % ps == 0 and isinstance(p.get("resident"), bool)
                and p.get("state") in ("used", "free", "released")):
            raise HeapDumpError(path, f"pages[{i}]: expected addr (page-aligned), n > 0, resident, state")
    return doc


def _cover(heap: _Heap, runs: list, ps: int):
    """_cover adds a used, resident run for every object page the residency runs miss; returns how many."""
    runs = sorted(runs, key=lambda r: r["addr"])
    starts = np.array([r["addr"] for r in runs], np.uint64)
    ends = np.array([r["addr"] + r["n"] * ps for r in runs], np.uint64)
    missing = []
    step = WALK_CHUNK  # objects at a time: their pages are a few arrays of that length
    for at in range(0, len(heap.addr_np), step):
        a = heap.addr_np[at:at + step]
        first = a // np.uint64(ps)
        n = ((a + heap.size_np[at:at + step].astype(np.uint64) - np.uint64(1)) // np.uint64(ps) - first + np.uint64(1)
             ).astype(np.int64)
        pages = np.repeat(first, n) + (np.arange(int(n.sum()), dtype=np.int64)
                                       - np.repeat(np.cumsum(n) - n, n)).astype(np.uint64)
        pages = pages[np.concatenate(([True], pages[1:] != pages[:-1]))] * np.uint64(ps)  # by address: sorted
        k = np.searchsorted(starts, pages, side="right").astype(np.int64) - 1
        out = (k < 0) | (pages >= ends[np.maximum(k, 0)]) if len(starts) else np.ones(len(pages), bool)
        missing.append(pages[out])
    missing = np.unique(np.concatenate(missing)).tolist() if missing else []
    for p in missing:
        runs.append({"addr": p, "n": 1, "resident": True, "state": "used", "filled": True})
    runs.sort(key=lambda r: r["addr"])
    return runs, len(missing)


def import_heapdump(dump_path, binary_path, residency_path=None) -> dict:
    """import_heapdump reads a Go heap dump with its binary (and residency) and returns a gctrace dump."""
    hd = read_heapdump(dump_path)
    if hd.params.get("ptrsize") != 8 or hd.params.get("bigendian"):
        raise HeapDumpError(dump_path, f"only 64-bit little-endian dumps are typed "
                                       f"(this one: {hd.params.get('arch')}, ptrsize {hd.params.get('ptrsize')})")
    res = read_residency(residency_path) if residency_path else None
    if isinstance(binary_path, Binary):  # tests reuse one loaded binary for several dumps
        return _build(hd, binary_path, res, dump_path, binary_path.path, residency_path)
    binary = Binary(binary_path)
    try:
        return _build(hd, binary, res, dump_path, binary_path, residency_path)
    finally:
        binary.close()


def _type_by_header(heap: _Heap, typer: _Typer):
    """_type_by_header types the untyped objects whose malloc header names their type (Go 1.22+).

    The header is the address of the runtime type, which DWARF maps back to
    a type through DW_AT_go_runtime_type. An object holds one value of it, or
    an array of them.
    """
    if not heap.rt.malloc_headers:
        return
    b = typer.b
    sizes = heap.size_np
    untyped = (sizes > MIN_SIZE_FOR_MALLOC_HEADER) & (sizes <= MAX_SMALL_SIZE) & (typer.type.code < 0)
    for k in np.flatnonzero(untyped).tolist():
        z = heap.size[k]
        if not heap.hdr(k):
            continue
        t = b.type_by_runtime.get(int.from_bytes(heap.bytes_at(k, 0, 8), "little"))
        if t is None:
            continue
        ts = b.size(t)
        n = (z - MALLOC_HEADER) // ts if ts > 0 else 1
        typer.type[k] = b.name(t) if n <= 1 else f"[{n}]{b.name(t)}"


def _check_binary(hd: HeapDump, binary: Binary, binary_path):
    data = binary.elf.get_section_by_name(".data")
    if hd.data is not None and data is not None and hd.data.addr != data["sh_addr"]:
        raise HeapDumpError(binary_path, f"does not match the heap dump: its .data is at {data['sh_addr']:#x}, "
                                         f"the dump's data segment at {hd.data.addr:#x}")


def _build(hd, binary, res, dump_path, binary_path, residency_path) -> dict:
    _check_binary(hd, binary, binary_path)
    rt = GoRuntime.parse(hd.params.get("version"))
    heap = _Heap(hd, rt)
    typer = _Typer(heap, binary)
    built = binary.build_version()
    if built is not None and rt.text and built != rt.text:
        typer.warn(f"the binary says {built}, the heap dump {rt.text}: is it the program that wrote the dump?")
    if rt.version is not None and rt.version > NEWEST_KNOWN:
        typer.warn(f"{rt.text} is newer than the Go releases gctrace knows (up to 1.{NEWEST_KNOWN[1]}): "
                   f"spans and malloc headers are taken to be as in 1.{NEWEST_KNOWN[1]}")
    if rt.version is None:
        typer.warn(f"Go version {rt.text!r} is not a release gctrace knows: tail slots of small spans "
                   f"(Go 1.22+) and malloc headers are not accounted for")
    globals_ = binary.typed_globals()
    typer.run(globals_)
    _garbage_buckets(heap, typer)
    _type_by_header(heap, typer)
    names = {}  # hmap -> the global that holds it
    for g in globals_:
        for p in binary.layout(g.type):
            if p.what == "map":
                w = heap.word(g.addr + p.off)
                if w:
                    names.setdefault(w, g.name if p.off == 0 else f"{g.name}+{p.off}")

    roots = []
    outside = 0

    def root(name, kind, target, **extra):
        nonlocal outside
        if not target:
            return
        if heap.find(target) < 0:
            outside += 1
            return
        roots.append({"name": name, "kind": kind, "target": target, **extra})

    for seg in heap.segs:
        for off in seg.ptr_offsets:
            t = int.from_bytes(seg.contents[off:off + 8], "little")
            sym = binary.symbol_at(seg.addr + off)
            name = (sym[0] if sym[1] == 0 else f"{sym[0]}+{sym[1]}") if sym else f"{seg.addr + off:#x}"
            root(name, "global", t)
    goid = {g["g"]: g["goid"] for g in hd.goroutines}
    for f in hd.frames:
        for off in f.ptr_offsets:
            t = int.from_bytes(f.contents[off:off + 8], "little")
            root(f.name, "stack", t, goroutine=goid.get(f.goroutine, 0), depth=f.depth)
    for g in hd.goroutines:
        root(f"goroutine {g['goid']} ctxt", "register", g["ctxt"])
    for obj, fn, _fnfn, _fint, _ot in hd.finalizers:
        root(f"finalizer fn of {obj:#x}", "finalizer", fn)
        k = heap.find(obj)
        if k >= 0:
            for off in heap.fields[k]:
                root(f"finalizer of {obj:#x}", "finalizer", heap.word(heap.addr[k] + off))
    for obj, fn, _fnfn, _fint, _ot in hd.queued_finalizers:
        root(f"queued finalizer of {obj:#x}", "finalizer", obj)
        root(f"queued finalizer fn of {obj:#x}", "finalizer", fn)
    for desc, t in hd.other_roots:
        root(desc, "other", t)

    objects = GoObjects(heap, typer)
    maps = []
    for w in sorted(typer.maps):
        m = dict(typer.maps[w])
        if m.get("impl") != "swiss" and not m.get("bucketsize"):
            continue
        m.pop("extra", None)
        if "clearSeq" in m:
            m["clear_seq"] = m.pop("clearSeq")
        if w in names:
            m["name"] = names[w]
        maps.append(m)

    ms = {k: v for k, v in hd.memstats.items() if k != "PauseNs"}
    nbytes = objects.nbytes
    if ms and (len(objects), nbytes) != (ms.get("HeapObjects"), ms.get("HeapAlloc")):
        typer.warn(f"{len(objects)} objects of {nbytes} B, but the dump's MemStats say {ms.get('HeapObjects')} "
                   f"objects of {ms.get('HeapAlloc')} B: spans of this Go release are not read right")
    meta = {
        "page_size": res["page_size"] if res else 4096,
        "ptr_size": 8,
        "source": "go-heapdump",
        "madvise": res.get("madvise") if res else None,
        "binary": os.path.abspath(str(binary_path)),
        "heapdump": os.path.abspath(str(dump_path)),
        "go_version": hd.params.get("version"),
        "go_experiments": sorted(rt.experiments),
        "binary_go_version": built,
        "map_impl": sorted({m.get("impl", "hmap") for m in maps}),
        "arch": hd.params.get("arch"),
        "arena": [hd.params.get("arena_start"), hd.params.get("arena_end")],
        "memstats": ms,
        "records": dict(sorted(hd.counts.items())),
        "typed_objects": len(typer.type),
        "roots_outside_heap": outside,
        "pointer_free_overflow": "overflow word added as a ptr field of noscan bucket objects "
                                 "(see tracer/goheap/goimport.py)",
        "phantom_slots": {"objects": heap.phantoms, "bytes": heap.phantom_bytes,
                          "with_pointer_fields": heap.phantom_pointers,
                          "why": "tail slots of small spans past nelems (heap bits, inline mark bits): "
                                 "dumped by heapdump.go, not objects; dropped"},
        "pointers_refused": objects.refused,
        "warnings": list(typer.warnings),
    }
    if rt.roots_missing:
        meta["roots_missing"] = rt.roots_missing
    doc = {"format": "gctrace.dump", "version": 1, "meta": meta, "objects": objects, "roots": roots,
           "maps": maps}
    if res:
        runs = [{"addr": p["addr"], "n": p["n"], "resident": p["resident"], "state": p["state"]}
                for p in res["pages"]]
        runs, filled = _cover(heap, runs, res["page_size"])
        doc["pages"] = runs
        meta.update({
            "residency": os.path.abspath(str(residency_path)),
            "page_state": res.get("page_state"),
            "zero_page": res.get("zero_page"),
            "residency_attempts": res.get("attempts"),
            "residency_agreed": res.get("agreed"),
            "rss_kb": res.get("rss_kb"),
            "arena_rss_kb": res.get("arena_rss_kb"),
            "arena_lazyfree_kb": res.get("arena_lazyfree_kb"),
            "pages_filled": filled,
        })
    else:
        meta["page_state"] = "none: no residency file (residency assumed)"
    return doc


def write_dump(doc: dict, path, inputs=()) -> None:
    """write_dump writes a gctrace dump as JSON (.json) or JSON Lines (.jsonl), gzipped with .gz.

    The file is written whole or not at all, never onto one of ``inputs``
    (the heap dump it came from), and a device or FIFO is written through
    (gctrace.atomicfile). JSON Lines are streamed: the objects' lines by
    GoObjects.write (by C from the heap dump's arrays when it is built), the
    rest a line at a time, so a million objects never sit in memory as
    JSON. The gzip stream is the one gzip.compress(data, 6, mtime=0) gives (``_Gzip``).
    """
    path = str(path)
    gz = path.endswith(".gz")
    base = path[:-3] if gz else path
    # The end record counts what was written, so a reader tells a cut dump from a whole one.
    end = {s: len(doc.get(s, ())) for s in ("objects", "roots", "pages", "maps", "events")}
    with atomicfile.open_output(path, inputs) as out:
        f = _Gzip(out) if gz else out
        if base.endswith(".jsonl"):
            f.write(orjson.dumps({"format": doc["format"], "version": doc["version"], "meta": doc["meta"]}) + b"\n")
            objects = doc.get("objects", ())
            if isinstance(objects, GoObjects):
                objects.write(f)
            else:
                f.write(b"".join(orjson.dumps({"object": r}) + b"\n" for r in objects))
            for section, one in (("roots", "root"), ("pages", "page"), ("maps", "map"), ("events", "event")):
                f.write(b"".join(orjson.dumps({one: r}) + b"\n" for r in doc.get(section, ())))
            f.write(orjson.dumps({"end": end}) + b"\n")
        else:
            if isinstance(doc.get("objects"), GoObjects):
                doc = {**doc, "objects": list(doc["objects"])}
            f.write(orjson.dumps({**doc, "end": end}) + b"\n")
        if gz:
            f.close()  # writes the gzip trailer; out stays open for open_output to commit


class _Gzip:
    """_Gzip is a binary file that gzips what is written to it into out, as gzip.compress(data, 6, mtime=0) does."""

    def __init__(self, out):
        self.out = out
        self.z = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: a gzip header and trailer, mtime 0

    def write(self, data) -> None:
        self.out.write(self.z.compress(data))

    def close(self) -> None:
        self.out.write(self.z.flush())


def summary(doc: dict) -> dict:
    """summary returns the figures worth a line each after an import."""
    ms = doc["meta"]["memstats"]
    objs = doc["objects"]
    nbytes = objs.nbytes if isinstance(objs, GoObjects) else sum(o["size"] for o in objs)
    return {
        "objects": f"{len(objs)} ({nbytes} B; "
                   f"MemStats: {ms.get('HeapObjects')} objects, HeapAlloc {ms.get('HeapAlloc')} B)",
        "roots": len(doc["roots"]),
        "maps": len(doc["maps"]),
        "typed objects": doc["meta"]["typed_objects"],
        "pages": doc["meta"]["page_state"],
        **({"warning": "; ".join(doc["meta"]["warnings"])} if doc["meta"].get("warnings") else {}),
    }


def record_go(argv, keep=None) -> dict:
    """record_go runs a program built with tracer/goheap/gctraceres, then imports the dump it wrote; returns the dump.

    The program's stdin, stdout and stderr are its own; $GCTRACE_HEAPDUMP and
    $GCTRACE_RESIDENCY tell gctraceres.Dump where to write (in ``keep``, or a
    temporary directory removed afterwards). The last snapshot taken wins.
    ``meta`` gets the command and its exit status. A ``keep`` directory that
    already holds either file is refused: those files are not gctrace's to
    replace. The caller writes the dump (the CLI checks it first).
    """
    prog = argv[0]
    exe = prog if os.sep in prog else shutil.which(prog)
    if exe is None or not os.path.isfile(exe):
        raise HeapDumpError(prog, "no such program")
    workdir = keep or tempfile.mkdtemp(prefix="gctrace-go-")
    os.makedirs(workdir, exist_ok=True)
    dump = os.path.join(workdir, "heap.dump")
    res = os.path.join(workdir, "heap.residency.json")
    for p in (dump, res):
        if keep is not None and os.path.lexists(p):
            raise HeapDumpError(keep, f"already holds {os.path.basename(p)}: gctrace will not replace it "
                                      "(move it away, or --keep another directory)")
    env = dict(os.environ, GCTRACE_HEAPDUMP=dump, GCTRACE_RESIDENCY=res)
    try:
        try:
            rc = subprocess.run([exe, *argv[1:]], env=env).returncode
        except OSError as e:
            raise HeapDumpError(prog, f"cannot run: {e.strerror or e}") from None
        if not os.path.exists(dump):
            raise HeapDumpError(prog, f"exited with status {rc} without writing a heap dump "
                                      "(call gctraceres.Dump() or gctraceres.OnSignal in the program)")
        doc = import_heapdump(dump, exe, res if os.path.exists(res) else None)
        doc["meta"]["command"] = list(argv)
        doc["meta"]["exit_status"] = rc
        return doc
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def record_summary(doc: dict) -> dict:
    """record_summary is the import's summary led by the program's exit status."""
    return {"exit status": doc["meta"]["exit_status"], **summary(doc)}
