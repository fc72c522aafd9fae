"""checks holds the whole-dump rules: the ones that need every record first (overlaps, map arrays).

Part of the loader (see the package docstring, gctrace.analysis.load)."""

from __future__ import annotations

import numpy as np

from gctrace.errors import DumpError

from ..model import Heap, SwissMap


def _check_maps(heap: Heap):
    """_check_maps validates each map header against the objects it names."""
    for m in heap.maps:
        label = f"map {m.hmap:#x}"
        (h,) = heap.find([m.hmap])
        if h < 0 or heap.obj_addr[h] != m.hmap:
            raise DumpError(heap.path, f"{label}: hmap is not the address of an object")
        if m.impl == "swiss":
            _check_swiss(heap, m, label)
            continue
        if m.bucketsize <= heap.ptr_size:
            raise DumpError(heap.path, f"{label}: bucketsize {m.bucketsize} cannot hold an overflow pointer")
        for name, base, nb in (("buckets", m.buckets, 1 << m.B), ("oldbuckets", m.oldbuckets, m.old_bucket_count)):
            if base == 0:
                continue
            (i,) = heap.find([base])
            if i < 0:
                raise DumpError(heap.path, f"{label}: {name} {base:#x} is not inside any object")
            end = int(heap.obj_addr[i] + heap.obj_size[i])
            if base + nb * m.bucketsize > end:
                raise DumpError(heap.path, f"{label}: {nb} buckets of {m.bucketsize} B at {name} {base:#x} "
                                           f"run past the end of object {heap.obj_addr[i]:#x} ({end:#x})")
        if m.growing and m.nevacuate > m.old_bucket_count:
            raise DumpError(heap.path, f"{label}: nevacuate {m.nevacuate} exceeds the "
                                       f"{m.old_bucket_count} old buckets")


def _check_swiss(heap: Heap, m: SwissMap, label: str):
    """_check_swiss checks that a Swiss map's directory, small group, tables and groups arrays lie in objects."""
    def within(what, base, nbytes):
        (i,) = heap.find([base])
        if i < 0:
            raise DumpError(heap.path, f"{label}: {what} {base:#x} is not inside any object")
        end = int(heap.obj_addr[i] + heap.obj_size[i])
        if base + nbytes > end:
            raise DumpError(heap.path, f"{label}: {what} {base:#x}: {nbytes} B run past the end of object "
                                       f"{heap.obj_addr[i]:#x} ({end:#x})")

    if m.dir_len:
        within(f"directory of {m.dir_len} tables at dir_ptr", m.dir_ptr, m.dir_len * heap.ptr_size)
    elif m.dir_ptr:
        within("small group at dir_ptr", m.dir_ptr, m.group_size)
    if not m.n_tables:
        return
    tab = heap.find(m.tab_addr)
    if (tab < 0).any():
        k = int(np.flatnonzero(tab < 0)[0])
        raise DumpError(heap.path, f"{label}: table {m.tab_addr[k]:#x} is not inside any object")
    obj = heap.find(m.tab_groups)
    end = np.where(obj >= 0, heap.obj_addr[obj] + heap.obj_size[obj], 0)
    for k in range(m.n_tables):  # Python ints: groups_len x group_size may not fit in 64 bits
        g, n = int(m.tab_groups[k]), int(m.tab_groups_len[k])
        if obj[k] < 0 or g + n * m.group_size > end[k]:
            where = " is not inside any object" if obj[k] < 0 else (
                f": {n} groups of {m.group_size} B run past the end of object {heap.obj_addr[obj[k]]:#x} "
                f"({end[k]:#x})")
            raise DumpError(heap.path, f"{label}: table {m.tab_addr[k]:#x}: groups {g:#x}{where}")
