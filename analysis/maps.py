"""maps audits the memory of each Go map in the dump.

Go 1.19's map (runtime/map.go) is an hmap header pointing at an array of 2^B
buckets; each bucket holds 8 slots and ends with an overflow pointer. While
the map grows, ``oldbuckets`` holds the previous array (2^(B-1) buckets, or
2^B for a same-size grow) until ``nevacuate`` reaches its length. Arrays with
B >= 4 carry preallocated overflow buckets at their tail, so an overflow
pointer may lead into a bucket array as well as to a separate ``overflow``
object. A map never shrinks: deleting every key leaves every bucket (and
every overflow bucket) allocated and reachable; ``mapclear`` keeps the array
but drops the overflow buckets, which become garbage.

Go 1.24's Swiss-table map (``internal/runtime/maps``, ``impl`` "swiss" in the
dump) is a ``Map`` header, a directory of table pointers, tables of up to
1024 slots, and one groups array per table (8 slots and a control word a
group). It never shrinks either: a delete leaves an empty slot or a
tombstone, ``clear`` empties every group and keeps every table. A table
grows at 7/8 full by doubling (or splitting in two past 1024 slots), so a
table that only ever grew is at least ~7/16 full: "half empty" is normal.

``audit`` returns the spec's per-map numbers plus what the diagnosis needs
(a MapAudit for a classic map, a SwissAudit for a Swiss one); ``orphans``
attributes unreachable bucket memory to the classic map it most likely came
from, by size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gctrace.errors import DumpError

from .model import SLOTS_PER_BUCKET, SWISS_MAX_LOAD, Heap, MapHeader, SwissMap


@dataclass(frozen=True)
class MapAudit:
    """MapAudit is the memory account of one map."""

    header: MapHeader
    reachable: bool
    buckets_bytes: int
    oldbuckets_bytes: int
    overflow_count: int
    overflow_bytes: int
    max_chain: int
    empty_bucket_bytes: int | None  # None: the dump has no slots for some bucket
    primary_buckets: int  # 2^B when buckets != nil
    occupied_buckets: int | None  # primary buckets of `buckets` with an occupied slot on their chain
    buckets_reachable: bool
    old_primary_buckets: int
    overflow_objects: np.ndarray  # indices of the distinct overflow objects on the chains
    structure: dict  # object index -> its role in the map ("hmap", "buckets", "oldbuckets", "overflow")


@dataclass(frozen=True)
class SwissAudit:
    """SwissAudit is the memory account of one Swiss-table map."""

    header: SwissMap
    reachable: bool
    directory_bytes: int  # size of the object the directory lies in (0 for a small map)
    tables_bytes: int  # sizes of the distinct objects the tables lie in
    groups_bytes: int  # sizes of the distinct objects the groups arrays (or the small group) lie in
    groups_arrays: int  # those objects, counted
    capacity: int  # slots
    tombstones: int  # deleted control bytes
    empty_slots: int  # empty control bytes (tombstones not included)
    empty_slot_bytes: int  # slot_size x (empty + tombstones): slots holding no entry
    growth_left: int  # inserts before some table must rehash, summed over the tables
    growth_room_lost: int  # capacity x 7/8 - used - growth_left, summed: what tombstones take
    structure: dict  # object index -> its role in the map ("swiss_map", "directory", "table", "groups")

    @property
    def bytes(self) -> int:
        """bytes is what the map's own structure occupies: directory, tables and groups."""
        return self.directory_bytes + self.tables_bytes + self.groups_bytes


@dataclass(frozen=True)
class Orphans:
    """Orphans are unreachable bucket arrays and overflow buckets, by the map they fit."""

    by_map: dict  # hmap -> (overflow indices, bucket-array indices)
    unattributed: np.ndarray  # indices that fit no single map


def _overflow_lookup(heap: Heap):
    """_overflow_lookup returns a function mapping bucket addresses to overflow targets (0 = none)."""
    field_addr = heap.ptr_field_addr()
    targets = heap.ptr_target

    def next_of(buckets: np.ndarray, bucketsize: int) -> np.ndarray:
        where = buckets + bucketsize - heap.ptr_size
        k = np.searchsorted(field_addr, where)
        ks = np.minimum(k, max(len(field_addr) - 1, 0))
        hit = (k < len(field_addr)) & (field_addr[ks] == where) if len(field_addr) else np.zeros(len(where), bool)
        return np.where(hit, targets[ks] if len(targets) else 0, 0)

    return next_of


def _slots_of(heap: Heap, m: MapHeader, buckets: np.ndarray):
    """_slots_of returns the occupied-slot count of each bucket address, or None without slots."""
    obj = heap.find(buckets)
    if (obj < 0).any():
        raise DumpError(heap.path, f"map {m.hmap:#x}: bucket {buckets[obj < 0][0]:#x} is inside no object")
    if not heap.has_slots[obj].all():
        return None
    j = (buckets - heap.obj_addr[obj]) // m.bucketsize
    have = heap.slot_start[obj + 1] - heap.slot_start[obj]
    short = np.flatnonzero(j >= have)
    if len(short):
        i = short[0]
        raise DumpError(heap.path, f"object {heap.obj_addr[obj[i]]:#x}: slots has {have[i]} entries, "
                                   f"but map {m.hmap:#x} has a bucket at index {j[i]}")
    return heap.slot_count[heap.slot_start[obj] + j].astype(np.int64)


def _chains(heap: Heap, m: MapHeader, next_of):
    """_chains walks a classic map's overflow chains from its primary buckets, new and old.

    It returns (new primary, old primary, every bucket, the primary index owning
    each bucket, each primary's chain length) and raises DumpError for a
    pointer that is not a whole bucket inside an object, or a chain that loops.
    """
    bs = m.bucketsize
    new_primary = m.buckets + bs * np.arange(1 << m.B if m.buckets else 0, dtype=np.int64)
    old_n = m.old_bucket_count
    old_primary = m.oldbuckets + bs * np.arange(old_n if m.oldbuckets else 0, dtype=np.int64)
    primary = np.concatenate([new_primary, old_primary])
    chain_len = np.zeros(len(primary), dtype=np.int64)
    visited = [primary]
    owner = [np.arange(len(primary))]
    cur, active = primary, np.arange(len(primary))
    limit = len(primary) + int(heap.obj_size.sum() // bs) + 1
    while len(cur):
        nxt = next_of(cur, bs)
        has = nxt != 0
        cur, active = nxt[has], active[has]
        if not len(cur):
            break
        chain_len[active] += 1
        obj = heap.find(cur)
        bad = np.flatnonzero((obj < 0) | (cur + bs > heap.obj_addr[obj] + heap.obj_size[obj]))
        if len(bad):
            raise DumpError(heap.path, f"map {m.hmap:#x}: overflow pointer {cur[bad[0]]:#x} does not "
                                       f"point at a whole bucket of {bs} B inside an object")
        if chain_len.max(initial=0) > limit:
            raise DumpError(heap.path, f"map {m.hmap:#x}: the overflow chain through {cur[0]:#x} loops")
        visited.append(cur)
        owner.append(active)
    return new_primary, old_primary, np.concatenate(visited), np.concatenate(owner), chain_len


def check_chains(heap: Heap) -> None:
    """check_chains raises DumpError unless every classic map's overflow chains end in whole buckets with slot counts.

    The loader runs it (docs/validation.md), so that a loaded Heap is valid
    for the audit too; the audit walks the same chains again to account them.
    """
    next_of = _overflow_lookup(heap)
    for m in heap.maps:
        if m.impl != "swiss":
            _slots_of(heap, m, _chains(heap, m, next_of)[2])


def audit(heap: Heap, reachable: np.ndarray) -> list:
    """audit accounts every map in the dump: buckets and overflow chains, or directory, tables and groups."""
    next_of = _overflow_lookup(heap)
    overflow_kind = heap.kind_code("overflow")
    out = []
    for m in heap.maps:
        if m.impl == "swiss":
            out.append(audit_swiss(heap, m, reachable))
            continue
        (h,) = heap.find([m.hmap])
        bs = m.bucketsize
        new_primary, old_primary, all_buckets, all_owner, chain_len = _chains(heap, m, next_of)
        primary = np.concatenate([new_primary, old_primary])
        chained = all_buckets[len(primary):]
        chained_obj = heap.find(chained)
        ovf = np.unique(chained_obj[heap.obj_kind[chained_obj] == overflow_kind]) if len(chained) else chained_obj
        slots = _slots_of(heap, m, all_buckets)
        if slots is None:
            empty, occupied = None, None
        else:
            empty = int((slots == 0).sum()) * bs
            per_primary = np.bincount(all_owner, weights=slots, minlength=len(primary))
            occupied = int((per_primary[: len(new_primary)] > 0).sum())
        b_obj = heap.find([m.buckets])[0] if m.buckets else -1
        o_obj = heap.find([m.oldbuckets])[0] if m.oldbuckets else -1
        out.append(MapAudit(
            header=m,
            reachable=bool(reachable[h]),
            buckets_bytes=int(heap.obj_size[b_obj]) if b_obj >= 0 else 0,
            oldbuckets_bytes=int(heap.obj_size[o_obj]) if o_obj >= 0 else 0,
            overflow_count=len(ovf),
            overflow_bytes=int(heap.obj_size[ovf].sum()),
            max_chain=int(chain_len.max(initial=0)),
            empty_bucket_bytes=empty,
            primary_buckets=len(new_primary),
            occupied_buckets=occupied,
            buckets_reachable=bool(b_obj >= 0 and reachable[b_obj]),
            old_primary_buckets=len(old_primary),
            overflow_objects=ovf,
            structure={**{int(i): "overflow" for i in ovf},
                       **{int(i): role for i, role in ((o_obj, "oldbuckets"), (b_obj, "buckets"), (h, "hmap"))
                          if i >= 0}},
        ))
    return out


def audit_swiss(heap: Heap, m: SwissMap, reachable: np.ndarray) -> SwissAudit:
    """audit_swiss accounts one Swiss map: the bytes of its directory, tables and groups, and its slots.

    >>> h = tiny_heap([(0x1000, 48, "swiss_map"), (0x1040, 8, "swiss_directory"), (0x1080, 32, "swiss_table"),
    ...                (0x1100, 272, "swiss_groups")])
    >>> ctrl = np.array([[5, 2, 1], [0, 0, 8]], np.int16)
    >>> z = np.zeros(1, np.int64)
    >>> m = SwissMap(0x1000, 5, 0x1040, 1, 0, 0, 16, 136, np.array([0x1080]), np.array([16]), np.array([5]),
    ...              np.array([7]), z, z, np.array([0x1100]), np.array([2]), np.array([0, 2]), ctrl)
    >>> a = audit_swiss(h, m, np.ones(4, bool))
    >>> a.bytes, a.capacity, a.tombstones, a.empty_slots, a.empty_slot_bytes, a.growth_room_lost
    (312, 16, 2, 9, 176, 2)
    """
    (h,) = heap.find([m.hmap])
    structure = {}
    tabs = np.unique(heap.find(m.tab_addr)) if m.n_tables else np.zeros(0, np.int64)
    group_objs = heap.find(m.tab_groups) if m.n_tables else np.zeros(0, np.int64)
    directory = -1
    if m.dir_ptr:
        (d,) = heap.find([m.dir_ptr])
        if m.small:
            group_objs = np.array([d], np.int64)
        else:
            directory = d
    group_objs = np.unique(group_objs)
    for idx, role in ((group_objs, "groups"), (tabs, "table"), ([directory], "directory"), ([h], "swiss_map")):
        structure.update({int(i): role for i in idx if i >= 0})
    full, deleted, empty = m.slot_counts()
    num, den = SWISS_MAX_LOAD
    room = m.tab_capacity * num // den - m.tab_used - m.tab_growth_left
    return SwissAudit(
        header=m,
        reachable=bool(reachable[h]),
        directory_bytes=int(heap.obj_size[directory]) if directory >= 0 else 0,
        tables_bytes=int(heap.obj_size[tabs].sum()),
        groups_bytes=int(heap.obj_size[group_objs].sum()),
        groups_arrays=len(group_objs),
        capacity=m.capacity,
        tombstones=deleted,
        empty_slots=empty,
        empty_slot_bytes=m.slot_size * (empty + deleted),
        growth_left=int(m.tab_growth_left.sum()),
        growth_room_lost=int(room.sum()),
        structure=structure,
    )


def orphans(heap: Heap, reachable: np.ndarray) -> Orphans:
    """orphans attributes unreachable ``overflow`` and ``buckets`` objects to maps.

    When the producer says which map an object belonged to (the ``map`` key of
    its record, a gctrace extension), that is used. Otherwise by size: an overflow bucket is one bucket, so its size (rounded up
    to a size class, at most 12.5% waste in Go's table) lies in
    [bucketsize, 2*bucketsize); a bucket array holds at least one bucket. Where
    exactly one map fits, the object is attributed to it; otherwise it stays
    unattributed.
    """
    classic = [m for m in heap.maps if m.impl == "hmap"]
    by_map = {m.hmap: [np.zeros(0, np.int64), np.zeros(0, np.int64)] for m in classic}
    loose = []
    hmaps = np.array([m.hmap for m in classic], np.int64)
    for kind, slot in (("overflow", 0), ("buckets", 1)):
        code = heap.kind_code(kind)
        if code < 0:
            continue
        idx = np.flatnonzero((heap.obj_kind == code) & ~reachable)
        size = heap.obj_size[idx]
        fits = np.zeros(len(idx), np.int64)
        owner = np.full(len(idx), -1, np.int64)
        for k, m in enumerate(classic):
            ok = (size >= m.bucketsize) & ((size < 2 * m.bucketsize) if kind == "overflow" else True)
            fits += ok
            owner[ok] = k
        if len(heap.obj_map) and len(hmaps):
            # The producer named the owner: that beats any guess by size.
            named = heap.obj_map[idx]
            k = np.searchsorted(hmaps, named)
            known = (named != 0) & (k < len(hmaps)) & (hmaps[np.minimum(k, len(hmaps) - 1)] == named)
            owner[known] = k[known]
            fits[known] = 1
        one = fits == 1
        for k, m in enumerate(classic):
            by_map[m.hmap][slot] = idx[one & (owner == k)]
        loose.append(idx[~one])
    return Orphans({h: (o, b) for h, (o, b) in by_map.items()},
                   np.sort(np.concatenate(loose)) if loose else np.zeros(0, np.int64))
