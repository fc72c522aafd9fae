"""assemble turns the validated records into one Heap: buffers, chunks, sorting, canonical codes.

Part of the loader (see the package docstring, gctrace.analysis.load)."""

from __future__ import annotations

import ctypes
from array import array

import numpy as np

from gctrace.errors import DumpError

from ..maps import check_chains
from ..model import Events, Heap, PageRuns, Roots, freeze
from .batches import BatchRules
from .checks import _check_maps
from .records import RecordRules
from .schema import END_KEYS, NO_END, OBJECT_COLUMNS, OBJECT_NAMES, object_chunk


class _Builder(RecordRules, BatchRules):
    """_Builder accumulates validated records into compact arrays.

    The per-record rules are RecordRules' (records.py), the vectorised ones BatchRules' (batches.py),
    the whole-dump checks checks.py's; this class holds the buffers and assembles the Heap."""

    def __init__(self, path):
        self.path = path
        self.meta = None
        self.end, self.end_where = None, None  # the end record's counts, and where it was
        self.lines = False  # JSON Lines (only they can be cut without a trace)
        self.page_size = None
        self.ptr_size = 8
        self.has_pages = False
        self.owner_seen = False
        self.site_seen = False
        self.kinds = {}
        self.types = {"": 0}
        self.obj_chunks = []  # column tuples, in file order: see _OBJ_COLUMNS
        self._new_object_buffers()
        self.root_name, self.root_kind, self.root_target = [], array("b"), array("q")
        self.page_addr, self.page_n = array("q"), array("q")
        self.page_res, self.page_state = array("b"), array("b")
        self.maps = []
        self.ev_chunks = []  # (seq, op, a, b, old, new, text, same) column tuples
        self._new_event_buffers()
        self.ev_strings = {}
        self.adders = {"objects": self.add_object, "roots": self.add_root, "pages": self.add_page,
                       "maps": self.add_map, "events": self.add_event}

    def _new_object_buffers(self):
        """_new_object_buffers gives the record-by-record path one array buffer per object column."""
        for c in OBJECT_COLUMNS:
            setattr(self, c.name, array(c.typecode))

    def _flush_objects(self):
        """_flush_objects moves the record-by-record buffers into a chunk, keeping file order."""
        if not len(self.addr):
            return
        self.obj_chunks.append(object_chunk(**{c.name: c.from_buffer(getattr(self, c.name)) for c in OBJECT_COLUMNS}))
        self._new_object_buffers()

    def _new_event_buffers(self):
        self.ev = {k: array("q") for k in ("seq", "a", "b", "old", "new")}
        self.ev_op, self.ev_text, self.ev_same = array("b"), array("i"), array("b")

    def _flush_events(self):
        if not len(self.ev_op):
            return
        f, ev = np.frombuffer, self.ev
        self.ev_chunks.append((f(ev["seq"], np.int64), f(self.ev_op, np.int8), f(ev["a"], np.int64),
                               f(ev["b"], np.int64), f(ev["old"], np.int64), f(ev["new"], np.int64),
                               f(self.ev_text, np.int32), f(self.ev_same, np.int8).astype(bool)))
        self._new_event_buffers()

    def counts(self) -> dict:
        """counts returns how many records of each section were read."""
        self._flush_objects()
        self._flush_events()
        return {"objects": sum(len(c[0]) for c in self.obj_chunks), "roots": len(self.root_name),
                "pages": len(self.page_addr), "maps": len(self.maps), "events": sum(len(c[0]) for c in self.ev_chunks)}

    def _check_end(self):
        """_check_end compares the end record with what was read; returns the warnings for the heap."""
        if self.end is None:
            return (NO_END,) if self.lines else ()
        read = self.counts()
        for k in END_KEYS:
            if self.end[k] != read[k]:
                raise DumpError(self.path, f"end record says {self.end[k]} {k}, the dump has {read[k]}: "
                                           "cut or edited")
        return ()

    def finish(self) -> Heap:
        if self.meta is None:
            raise DumpError(self.path, "missing required top-level key 'meta'")
        warnings = self._check_end()
        self._flush_objects()
        chunks, self.obj_chunks = [list(c) for c in self.obj_chunks], []
        if not self.site_seen:  # no record had a site: nothing to join (Heap.obj_site stays empty)
            for c in chunks:
                c[OBJECT_NAMES.index("site")] = c[OBJECT_NAMES.index("site")][:0]
        cols = dict(zip(OBJECT_NAMES, _concat_columns(chunks, tuple(c.dtype for c in OBJECT_COLUMNS))))
        addr, size, kind, typ, nptr, poff, ptgt, nslot, slots, has_slots, owner = (
            cols[n] for n in ("addr", "size", "kind", "type", "nptr", "ptr_off", "ptr_target", "nslot", "slots",
                              "has_slots", "owner"))
        if len(addr) > 1 and (addr[1:] < addr[:-1]).any():
            order = np.argsort(addr, kind="stable")
            addr, size = addr[order], size[order]
        else:
            order = None  # already in address order (what producers write): the stable sort is the identity
        self._check_overlaps(addr, size)
        ptr_start, ptr_idx = _reorder_csr(nptr, order)
        slot_start, slot_idx = _reorder_csr(nslot, order)
        # Canonical codes: string tables sorted, whatever order records came in.
        kinds, kind = _canonical(self.kinds, kind)
        types, typ = _canonical(self.types, typ)
        take = (lambda a: a) if order is None else (lambda a: a[order])  # noqa: E731
        gather = lambda a, idx: a if idx is None else a[idx]  # noqa: E731
        heap = Heap(
            path=self.path, page_size=self.page_size, ptr_size=self.ptr_size, meta=self.meta,
            obj_addr=addr, obj_size=size,
            obj_kind=take(kind),
            kinds=kinds,
            ptr_start=ptr_start,
            ptr_off=gather(poff, ptr_idx),
            ptr_target=gather(ptgt, ptr_idx),
            slot_start=slot_start,
            slot_count=gather(slots, slot_idx).astype(np.int8, copy=False),
            has_slots=take(has_slots).astype(bool, copy=False),
            roots=Roots(tuple(self.root_name), np.frombuffer(self.root_kind, np.int8).copy(),
                        np.frombuffer(self.root_target, np.int64).copy()),
            pages=self._pages(addr, size),
            maps=self._maps(),
            events=self._events(),
            obj_type=take(typ).astype(np.int32, copy=False),
            obj_map=take(owner) if self.owner_seen else np.zeros(0, np.int64),
            obj_site=take(cols["site"]) if self.site_seen else np.zeros(0, np.int64),
            types=types,
            warnings=warnings,
        )
        _check_maps(heap)
        check_chains(heap)  # the map audit meets only whole chains with slot counts
        return freeze(heap)

    def _check_overlaps(self, addr, size):
        if len(addr) < 2:
            return
        bad = np.flatnonzero(addr[:-1] + size[:-1] > addr[1:])
        if len(bad):
            i = bad[0]
            raise DumpError(self.path, f"object {addr[i + 1]:#x}: overlaps object {addr[i]:#x} "
                                       f"(size {size[i]})")

    def _pages(self, addr, size):
        if not self.has_pages:
            return None
        ps = self.page_size
        first = np.frombuffer(self.page_addr, np.int64) // ps
        order = np.argsort(first, kind="stable")
        first = first[order]
        n = np.frombuffer(self.page_n, np.int64)[order]
        runs = PageRuns(first, n, np.frombuffer(self.page_res, np.int8)[order].astype(bool),
                        np.frombuffer(self.page_state, np.int8)[order].copy())
        if len(first) > 1:
            bad = np.flatnonzero(first[:-1] + n[:-1] > first[1:])
            if len(bad):
                i = bad[0]
                raise DumpError(self.path, f"page run {first[i + 1] * ps:#x}: overlaps page run "
                                           f"{first[i] * ps:#x} ({n[i]} pages)")
        if len(addr):
            # Merge touching runs into covered stretches, then require each
            # object's first and last page to fall in the same stretch.
            brk = np.ones(len(first), bool)
            brk[1:] = first[1:] != first[:-1] + n[:-1]
            starts = first[brk]
            ends = np.maximum.reduceat(first + n, np.flatnonzero(brk)) if len(first) else first
            p0 = addr // ps
            p1 = (addr + size - 1) // ps
            k = np.searchsorted(starts, p0, side="right") - 1
            ok = k >= 0
            ks = np.where(ok, k, 0)
            ok &= (p0 < ends[ks]) & (p1 < ends[ks]) if len(starts) else False
            bad = np.flatnonzero(~ok)
            if len(bad):
                i = bad[0]
                missing = p0[i] if not (len(starts) and k[i] >= 0 and p0[i] < ends[ks[i]]) else ends[ks[i]]
                raise DumpError(self.path, f"object {addr[i]:#x}: touches page {missing * ps:#x}, "
                                           "which is in no page run")
        return runs

    def _maps(self):
        seen = set()
        for m in self.maps:
            if m.hmap in seen:
                raise DumpError(self.path, f"map {m.hmap:#x}: listed twice")
            seen.add(m.hmap)
        return tuple(sorted(self.maps, key=lambda m: m.hmap))

    def _events(self):
        self._flush_events()
        if self.ev_chunks:
            seq, op, a, b, old, new, text, same = (np.concatenate(c) for c in zip(*self.ev_chunks))
        else:
            z = np.zeros(0, np.int64)
            seq, op, a, b, old, new, text, same = (z, z.astype(np.int8), z, z, z, z, z.astype(np.int32),
                                                   z.astype(bool))
        self.ev_chunks = []
        order = np.argsort(seq, kind="stable")
        seq = seq[order]
        if len(seq) > 1:
            dup = np.flatnonzero(seq[1:] == seq[:-1])
            if len(dup):
                raise DumpError(self.path, f"event {seq[dup[0]]}: seq used twice")
        return Events(seq=seq, op=op[order], a=a[order], b=b[order], old=old[order], new=new[order],
                      text=text[order], same_size=same[order],
                      strings=tuple(sorted(self.ev_strings, key=self.ev_strings.get)))


def _canonical(table: dict, codes: np.ndarray):
    """_canonical returns (sorted strings, codes renumbered into them) for a string -> code table.

    >>> names, codes = _canonical({"b": 0, "a": 1}, np.array([0, 1, 0]))
    >>> names, codes.tolist()
    (('a', 'b'), [1, 0, 1])
    """
    names = tuple(sorted(table))
    remap = np.zeros(max(len(table), 1), codes.dtype)
    for new, name in enumerate(names):
        remap[table[name]] = new
    return names, remap[codes] if len(codes) else codes


def _concat_columns(chunks, dtypes):
    """_concat_columns joins the chunks (lists of columns) column by column, emptying them as it goes.

    Each chunk's column is dropped once copied, so the peak is the chunks plus
    one joined column, not twice the chunks.

    >>> [c.tolist() for c in _concat_columns([[np.array([1]), np.array([2])], [np.array([3]), np.array([4])]],
    ...                                      (np.int64, np.int64))]
    [[1, 3], [2, 4]]
    """
    cols = []
    for j, dtype in enumerate(dtypes):
        parts = [c[j] for c in chunks]
        for c in chunks:
            c[j] = None
        cols.append(np.concatenate(parts) if parts else np.zeros(0, dtype))
        del parts
        _trim()
    return cols


def _trim():
    """_trim hands the heap memory freed so far back to the OS.

    glibc keeps freed small blocks (a chunk's columns) for reuse, so without
    it the joined columns would come on top of the chunks they replaced.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)


def _find_malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; elsewhere the memory is only reused, not returned
    except (OSError, AttributeError):
        return None


def _reorder_csr(counts, order):
    """_reorder_csr returns (start, gather) for a CSR whose rows are permuted by ``order``.

    ``order`` None means rows in place: gather is then None too.

    >>> s, g = _reorder_csr(np.array([2, 0, 1]), np.array([2, 0, 1]))
    >>> s.tolist(), g.tolist()
    ([0, 1, 3, 3], [2, 0, 1])
    >>> _reorder_csr(np.array([2, 0, 1]), None)[0].tolist()
    [0, 2, 2, 3]
    """
    if order is None:
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), None
    old_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    new_counts = counts[order]
    new_start = np.concatenate([[0], np.cumsum(new_counts)]).astype(np.int64)
    total = int(new_start[-1])
    gather = np.repeat(old_start[:-1][order] - new_start[:-1], new_counts) + np.arange(total, dtype=np.int64)
    return new_start, gather


_malloc_trim = _find_malloc_trim()
