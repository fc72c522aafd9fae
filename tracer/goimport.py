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
- pages: from the residency file written by tracer/go/gctraceres (without
  it there are no pages and the analyzer says residency was assumed).

Pointer-free buckets. When neither key nor elem holds pointers the runtime
gives the bucket type no pointers, so the collector never scans bucket
arrays and the heap dump lists no pointer fields in them, although DWARF
declares the overflow word a pointer; those overflow buckets stay alive
only through hmap.extra.overflow/oldoverflow. The analyzer's map audit
follows chains through the pointer field at b + bucketsize - 8, so the
importer adds that word as a pointer field when it is non-nil and marks the
object ``"noscan": true``, exactly as the native tracer's dump writer does
(tracer/record.c). This cannot make anything reachable that Go would free:
a live noscan map holds the same overflow buckets through extra.overflow,
and mapclear zeroes the array (overflow words included) when it drops them.
"""

from __future__ import annotations

import bisect
import gzip
import os
import shutil
import subprocess
import tempfile
from collections import deque

import orjson

from .goheapdump import HeapDump, HeapDumpError, read_heapdump
from .gotypes import Binary, KIND_MAP

MIN_TOPHASH = 5  # runtime/map.go: minTopHash; 0..4 are emptyRest, emptyOne, evacuatedX/Y/Empty
BUCKET_CNT = 8
HMAP_LAYOUT = {"count": 0, "flags": 8, "B": 9, "noverflow": 10, "hash0": 12, "buckets": 16,
               "oldbuckets": 24, "nevacuate": 32, "extra": 40}
MAPEXTRA_LAYOUT = {"overflow": 0, "oldoverflow": 8, "nextOverflow": 16}


class _Heap:
    """_Heap answers address questions about the dump's objects and segments."""

    def __init__(self, hd: HeapDump):
        self.hd = hd
        order = sorted(range(len(hd.obj_addr)), key=hd.obj_addr.__getitem__)
        self.order = order
        self.addr = [hd.obj_addr[i] for i in order]
        self.size = [hd.obj_size[i] for i in order]
        self.off = [hd.obj_off[i] for i in order]
        self.fields = [hd.obj_fields[i] for i in order]
        for k in range(1, len(self.addr)):
            if self.addr[k] < self.addr[k - 1] + self.size[k - 1]:
                raise HeapDumpError(hd.path, f"object {self.addr[k]:#x} overlaps object {self.addr[k - 1]:#x}")
        self.segs = [s for s in (hd.data, hd.bss) if s is not None]

    def find(self, a: int) -> int:
        """find returns the index of the object containing address a, or -1."""
        k = bisect.bisect_right(self.addr, a) - 1
        if k >= 0 and a < self.addr[k] + self.size[k]:
            return k
        return -1

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

    def bytes_at(self, k: int, o: int, n: int) -> bytes:
        s = self.off[k] + o
        return self.hd.raw[s:s + n]


class _Typer:
    """_Typer follows pointers from typed globals, typing objects and decoding maps."""

    def __init__(self, heap: _Heap, binary: Binary):
        self.h = heap
        self.b = binary
        self.type = {}  # object index -> type name
        self.kind = {}  # object index -> kind
        self.maps = {}  # hmap address -> header dict
        self.bucketsize = {}  # object index -> bucket size (arrays and overflow objects)
        self.noscan = set()  # object indices holding pointer-free buckets
        self.bucket_types = {}  # bucket struct DIE -> hmaps using it
        self.owner = {}  # object index -> hmap, for buckets recognised among the garbage
        self.seen = set()
        self.work = deque()

    def run(self, globals_):
        for g in globals_:
            self.push(g.addr, g.type)
        while self.work:
            a, t = self.work.popleft()
            self.walk(a, t)

    def push(self, a, t):
        if t is None or (a, t) in self.seen:
            return
        self.seen.add((a, t))
        self.work.append((a, t))

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
        if w == self.h.addr[k]:
            self.settype(k, self.b.name(elem), kind)
        self.push(w, elem)

    def array(self, w, elem, n):
        k = self.h.find(w)
        if k < 0 or elem is None:
            return
        es = self.b.size(elem)
        if w == self.h.addr[k]:
            self.settype(k, f"[{n}]{self.b.name(elem)}")
        if es <= 0 or not self.b.has_pointers(elem):
            return
        end = self.h.addr[k] + self.h.size[k]
        for i in range(min(n, (end - w) // es)):
            self.push(w + i * es, elem)

    def map(self, w, mtype):
        """map decodes the hmap at w (a map of typedef mtype) and types its buckets."""
        h, b = self.h, self.b
        if w in self.maps:
            return
        k = h.find(w)
        if k < 0 or w != h.addr[k] or h.size[k] < 48:
            return
        raw = h.bytes_at(k, 0, 48)
        hdr = {"hmap": w, "count": int.from_bytes(raw[0:8], "little"), "flags": raw[8], "B": raw[9],
               "noverflow": int.from_bytes(raw[10:12], "little"),
               "hash0": int.from_bytes(raw[12:16], "little")}
        for f in ("buckets", "oldbuckets", "nevacuate", "extra"):
            o = HMAP_LAYOUT[f]
            hdr[f] = int.from_bytes(raw[o:o + 8], "little")
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
            if (a - h.addr[j]) % bs:
                return
            self.bucketsize[j] = bs
            self.kind[j] = kind
            self.type[j] = bname
            if noscan:
                self.noscan.add(j)
            for i in range(h.size[j] // bs):
                pending.append(h.addr[j] + i * bs)

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
        while pending:
            bk = pending.popleft()
            ov = h.word(bk + bs - 8)
            if ov:
                claim(ov, "overflow")
            j = h.find(bk)
            top = h.bytes_at(j, bk - h.addr[j], BUCKET_CNT)
            for i, th in enumerate(top):
                if th < MIN_TOPHASH:
                    continue
                if ktype is not None and b.has_pointers(kslot):
                    self.slot(bk + koff + i * ksz, kslot, kpk)
                if vtype is not None and b.has_pointers(vslot):
                    self.slot(bk + voff + i * vsz, vslot, vpk)

    def slot(self, a, t, kind):
        if kind is not None:  # the slot holds a pointer: type (and name) what it points to
            w = self.h.word(a)
            if w:
                self.pointer(w, self.b._ref(self.b.resolve(t)), kind)
        else:
            self.push(a, t)


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
    claimed = set(typer.bucketsize) | set(typer.type)
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
        claimed.add(k)
        if noscan:
            typer.noscan.add(k)
        if owner is not None:
            typer.owner[k] = owner

    for k in range(len(heap.addr)):
        if k in claimed or not heap.fields[k]:
            continue
        size, fields = heap.size[k], heap.fields[k]
        for (bs, offs), cands in sig.items():
            n = size // bs
            if n == 0 or len(fields) != n * len(offs) or len(cands) != 1 and n > 1:
                continue
            if fields == tuple(i * bs + o for i in range(n) for o in offs):
                kind = "overflow" if size < 2 * bs else "buckets"
                claim(k, cands[0][0], cands[0][1], bs, kind, False)
                break
    if not free_sizes:
        return
    for k in range(len(heap.addr)):
        size, fields = heap.size[k], heap.fields[k]
        if k in claimed or not fields or fields != tuple(range(0, len(fields) * 8, 8)):
            continue
        targets = [w for w in (heap.word(heap.addr[k] + o) for o in fields) if w]
        if not targets:
            continue
        js = [heap.find(w) for w in targets]
        if any(j < 0 for j in js):
            continue
        # elements that point at a preallocated bucket in the tail of a known array are fine
        inarray = [j in typer.bucketsize and typer.kind.get(j) == "buckets"
                   and (w - heap.addr[j]) % typer.bucketsize[j] == 0 for j, w in zip(js, targets)]
        js = [j for j, ok in zip(js, inarray) if not ok]
        targets = [w for w, ok in zip(targets, inarray) if not ok]
        if not js or any(heap.addr[j] != w or j in claimed or heap.fields[j] for j, w in zip(js, targets)):
            continue
        sizes = {heap.size[j] for j in js}
        fit = [(bs, c) for bs, c in free_sizes.items() if all(bs <= z < 2 * bs for z in sizes)]
        if len(fit) != 1 or len(fit[0][1]) != 1:
            continue
        bs, ((bucket, owner),) = fit[0]
        typer.type.setdefault(k, f"[{len(fields)}]*{b.name(bucket)}")
        claimed.add(k)
        for j in js:
            claim(j, bucket, owner, bs, "overflow", True)


def _slots(heap: _Heap, k: int, bs: int):
    """_slots counts the occupied slots (tophash >= minTopHash) of each bucket in object k."""
    out = []
    for i in range(heap.size[k] // bs):
        top = heap.bytes_at(k, i * bs, BUCKET_CNT)
        out.append(sum(1 for t in top if t >= MIN_TOPHASH))
    return out


def read_residency(path) -> dict:
    """read_residency loads a residency file of tracer/go/gctraceres and checks its shape."""
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
    starts = [r["addr"] for r in runs]
    missing = set()
    for a, s in zip(heap.addr, heap.size):
        p = a - a % ps
        while p < a + s:
            k = bisect.bisect_right(starts, p) - 1
            if k < 0 or p >= runs[k]["addr"] + runs[k]["n"] * ps:
                missing.add(p)
            p += ps
    for p in sorted(missing):
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


def _check_binary(hd: HeapDump, binary: Binary, binary_path):
    data = binary.elf.get_section_by_name(".data")
    if hd.data is not None and data is not None and hd.data.addr != data["sh_addr"]:
        raise HeapDumpError(binary_path, f"does not match the heap dump: its .data is at {data['sh_addr']:#x}, "
                                         f"the dump's data segment at {hd.data.addr:#x}")
    hm = binary.struct_layout("runtime.hmap")
    if hm is not None and hm[0] != HMAP_LAYOUT:
        raise HeapDumpError(binary_path, f"runtime.hmap layout {hm[0]} is not Go 1.19's")


def _build(hd, binary, res, dump_path, binary_path, residency_path) -> dict:
    _check_binary(hd, binary, binary_path)
    heap = _Heap(hd)
    typer = _Typer(heap, binary)
    globals_ = binary.typed_globals()
    typer.run(globals_)
    _garbage_buckets(heap, typer)
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

    objects = []
    for k in range(len(heap.addr)):
        a = heap.addr[k]
        ptrs = []
        for off in heap.fields[k]:
            w = heap.word(a + off)
            if w:
                ptrs.append([off, w])
        o = {"addr": a, "size": heap.size[k], "kind": typer.kind.get(k, "other")}
        bs = typer.bucketsize.get(k)
        if bs:
            if k in typer.noscan:
                have = {p[0] for p in ptrs}
                for i in range(heap.size[k] // bs):
                    off = i * bs + bs - 8
                    w = heap.word(a + off)
                    if w and off not in have:
                        ptrs.append([off, w])
                ptrs.sort()
                o["noscan"] = True
            o["slots"] = _slots(heap, k, bs)
        o["ptrs"] = ptrs
        if k in typer.owner:
            o["map"] = typer.owner[k]
        if k in typer.type:
            o["type"] = typer.type[k]
        objects.append(o)

    maps = []
    for w in sorted(typer.maps):
        m = dict(typer.maps[w])
        if not m.get("bucketsize"):
            continue
        m.pop("extra", None)
        if w in names:
            m["name"] = names[w]
        maps.append(m)

    ms = {k: v for k, v in hd.memstats.items() if k != "PauseNs"}
    meta = {
        "page_size": res["page_size"] if res else 4096,
        "ptr_size": 8,
        "source": "go-heapdump",
        "madvise": res.get("madvise") if res else None,
        "binary": os.path.abspath(str(binary_path)),
        "heapdump": os.path.abspath(str(dump_path)),
        "go_version": hd.params.get("version"),
        "arch": hd.params.get("arch"),
        "arena": [hd.params.get("arena_start"), hd.params.get("arena_end")],
        "memstats": ms,
        "records": dict(sorted(hd.counts.items())),
        "typed_objects": len(typer.type),
        "roots_outside_heap": outside,
        "pointer_free_overflow": "overflow word added as a ptr field of noscan bucket objects "
                                 "(see tracer/goimport.py)",
    }
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


def write_dump(doc: dict, path) -> None:
    """write_dump writes a gctrace dump as JSON (.json) or JSON Lines (.jsonl), gzipped with .gz."""
    path = str(path)
    gz = path.endswith(".gz")
    base = path[:-3] if gz else path
    # The end record counts what was written, so a reader tells a cut dump from a whole one.
    end = {s: len(doc.get(s, ())) for s in ("objects", "roots", "pages", "maps", "events")}
    if base.endswith(".jsonl"):
        lines = [orjson.dumps({"format": doc["format"], "version": doc["version"], "meta": doc["meta"]})]
        for section, one in (("objects", "object"), ("roots", "root"), ("pages", "page"), ("maps", "map"),
                             ("events", "event")):
            lines.extend(orjson.dumps({one: r}) for r in doc.get(section, ()))
        lines.append(orjson.dumps({"end": end}))
        data = b"\n".join(lines) + b"\n"
    else:
        data = orjson.dumps({**doc, "end": end}) + b"\n"
    if gz:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        raise HeapDumpError(path, f"cannot write: {e.strerror or e}") from None


def summary(doc: dict) -> dict:
    """summary returns the figures worth a line each after an import."""
    ms = doc["meta"]["memstats"]
    return {
        "objects": f"{len(doc['objects'])} ({sum(o['size'] for o in doc['objects'])} B; "
                   f"MemStats: {ms.get('HeapObjects')} objects, HeapAlloc {ms.get('HeapAlloc')} B)",
        "roots": len(doc["roots"]),
        "maps": len(doc["maps"]),
        "typed objects": doc["meta"]["typed_objects"],
        "pages": doc["meta"]["page_state"],
    }


def record_go(argv, output, keep=None) -> dict:
    """record_go runs a program built with tracer/go/gctraceres, then imports the dump it wrote.

    The program's stdin, stdout and stderr are its own; $GCTRACE_HEAPDUMP and
    $GCTRACE_RESIDENCY tell gctraceres.Dump where to write (in ``keep``, or a
    temporary directory removed afterwards). The last snapshot taken wins.
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
        if os.path.exists(p):
            os.unlink(p)
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
        write_dump(doc, output)
        return {"exit status": rc, **summary(doc)}
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
