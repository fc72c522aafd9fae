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

``audit`` returns the spec's per-map numbers plus what the diagnosis needs;
``orphans`` attributes unreachable bucket memory to the map it most likely
came from, by size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gctrace.errors import DumpError

from .model import Heap, MapHeader

SLOTS_PER_BUCKET = 8  # Go's bucketCnt


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


def audit(heap: Heap, reachable: np.ndarray) -> list[MapAudit]:
    """audit accounts the buckets, oldbuckets and overflow chains of every map in the dump."""
    next_of = _overflow_lookup(heap)
    overflow_kind = heap.kind_code("overflow")
    out = []
    for m in heap.maps:
        (h,) = heap.find([m.hmap])
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
        all_buckets = np.concatenate(visited)
        all_owner = np.concatenate(owner)
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
        ))
    return out


def orphans(heap: Heap, reachable: np.ndarray) -> Orphans:
    """orphans attributes unreachable ``overflow`` and ``buckets`` objects to maps.

    When the producer says which map an object belonged to (the ``map`` key of
    its record, a gctrace extension), that is used. Otherwise by size: an overflow bucket is one bucket, so its size (rounded up
    to a size class, at most 12.5% waste in Go's table) lies in
    [bucketsize, 2*bucketsize); a bucket array holds at least one bucket. Where
    exactly one map fits, the object is attributed to it; otherwise it stays
    unattributed.
    """
    by_map = {m.hmap: [np.zeros(0, np.int64), np.zeros(0, np.int64)] for m in heap.maps}
    loose = []
    hmaps = np.array([m.hmap for m in heap.maps], np.int64)
    for kind, slot in (("overflow", 0), ("buckets", 1)):
        code = heap.kind_code(kind)
        if code < 0:
            continue
        idx = np.flatnonzero((heap.obj_kind == code) & ~reachable)
        size = heap.obj_size[idx]
        fits = np.zeros(len(idx), np.int64)
        owner = np.full(len(idx), -1, np.int64)
        for k, m in enumerate(heap.maps):
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
        for k, m in enumerate(heap.maps):
            by_map[m.hmap][slot] = idx[one & (owner == k)]
        loose.append(idx[~one])
    return Orphans({h: (o, b) for h, (o, b) in by_map.items()},
                   np.sort(np.concatenate(loose)) if loose else np.zeros(0, np.int64))
