"""binding loads the tracer's native core (libgcmap) and wraps it in Python.

It uses ctypes: the core is a plain C library with a small, flat interface
(integers and addresses in, integers out), so ctypes needs no build step of
its own and no dependency beyond the standard library, and the same file
works whether the library was built by ``make -C tracer`` (``libgcmap.so``)
or by ``pip install .`` (the optional extension ``_gcmap*.so``). Batch calls
(``Map.assign_many``) keep the per-call cost of ctypes (about a microsecond)
out of loops over a million keys.

The library is looked up next to this file; ``GCTRACE_NATIVE_LIB`` names
another one. Without it, :func:`load` raises
:class:`gctrace.errors.MissingToolError` saying how to build it.

The core holds one heap per process (its arena sits at Go's fixed hint
address so that dumps are reproducible), so at most one :class:`Runtime` is
open at a time; close it (or use ``with``) before opening the next.
"""

from __future__ import annotations

import ctypes
import errno
import gzip
import json
import os
import shutil
import subprocess
from collections import namedtuple
from pathlib import Path

import numpy as np

from gctrace import atomicfile, native
from gctrace.errors import MissingToolError, OutputError, UsageError

HERE = Path(__file__).resolve().parent

SHAPES = {
    "int64->int64": 0,
    "map[int64]int64": 0,
    "int64->*value": 1,
    "map[int64]*main.T": 1,
}
"""SHAPES maps the accepted names of the two map shapes to the core's ids."""

PHASE_NAMES = {0: "off", 1: "mark", 2: "mark_done"}

DEFAULT_ARENA_BYTES = 8 << 30
"""DEFAULT_ARENA_BYTES is the address space the core reserves when arena_bytes is 0 (heap.c's gm_init)."""

MapHeader = namedtuple(
    "MapHeader",
    "count flags B noverflow hash0 buckets oldbuckets nevacuate extra",
)

SwissHeader = namedtuple(
    "SwissHeader",
    "count seed dir_ptr dir_len global_depth global_shift tombstone_possible clear_seq tables capacity",
)
"""SwissHeader is a Swiss map's Map header (count is Map.used), with its distinct tables and total slots."""

SwissTable = namedtuple(
    "SwissTable",
    "addr capacity used growth_left local_depth index groups groups_len full deleted",
)
"""SwissTable is one distinct table of a Swiss map, in directory order, with its full and deleted slots."""

IMPLS = ("classic", "swiss")
"""IMPLS are the map implementations: Go 1.19's hmap and Go 1.24+'s Swiss tables."""


class _Config(ctypes.Structure):
    _fields_ = [
        ("seed", ctypes.c_uint64),
        ("madvise", ctypes.c_int),
        ("gcmode", ctypes.c_int),
        ("barrier", ctypes.c_int),
        ("record", ctypes.c_int),
        ("gogc", ctypes.c_int),
        ("mark_rate", ctypes.c_int),
        ("check", ctypes.c_int),
        ("arena_bytes", ctypes.c_uint64),
    ]


class _Stats(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "arena arena_fixed heap_pages pages_used pages_free pages_released "
            "objects heap_live events gc_cycles released_bytes advice grows "
            "same_size_grows swiss_grows swiss_splits swiss_prunes"
        ).split()
    ]


_lib = None


def library_path():
    """library_path returns the native library to load, or None when there is none."""
    return native.library_path(HERE, "gcmap", "GCTRACE_NATIVE_LIB")


def build_native(quiet=True):
    """build_native runs ``make -C tracer`` and returns the library it built.

    It raises MissingToolError when make or a C compiler is missing.
    """
    if shutil.which("make") is None or not (shutil.which("cc") or shutil.which("gcc")):
        raise MissingToolError("cannot build the native tracer: make and a C compiler (cc) are needed")
    out = subprocess.run(
        ["make", "-C", str(HERE), "libgcmap.so"],
        capture_output=quiet,
        text=True,
    )
    if out.returncode != 0:
        raise MissingToolError(f"building the native tracer failed:\n{out.stderr or ''}")
    return HERE / "libgcmap.so"


def load():
    """load returns the native library, loaded once, with its prototypes set."""
    global _lib
    if _lib is not None:
        return _lib
    path = library_path()
    if path is None or not path.exists():
        raise MissingToolError(
            "the native tracer library is not built: run `make -C tracer` (needs a C "
            "compiler), or `pip install .` where a compiler exists, or point "
            "GCTRACE_NATIVE_LIB at a libgcmap.so"
        )
    u64, i64, up, i, sz = ctypes.c_uint64, ctypes.c_int64, ctypes.c_uint64, ctypes.c_int, ctypes.c_size_t
    vp = ctypes.c_void_p
    protos = {
        "gm_default_config": (None, [ctypes.POINTER(_Config)]),
        "gm_init": (i, [ctypes.POINTER(_Config)]),
        "gm_fini": (None, []),
        "gm_root_add": (i, [ctypes.c_char_p, i]),
        "gm_root_set": (None, [i, up]),
        "gm_root_get": (up, [i]),
        "gm_new_value": (up, [up]),
        "gm_object_base": (up, [up]),
        "gm_makemap": (up, [i, i64]),
        "gm_mapassign": (None, [i, up, i64, u64]),
        "gm_mapaccess2": (i, [i, up, i64, ctypes.POINTER(u64)]),
        "gm_mapdelete": (None, [i, up, i64]),
        "gm_mapclear": (None, [i, up]),
        "gm_assign_batch": (None, [i, up, vp, vp, sz, up, vp]),
        "gm_delete_batch": (None, [i, up, vp, sz]),
        "gm_map_header": (None, [up, ctypes.POINTER(u64 * 9)]),
        "gm_map_check": (None, [i, up]),
        "gm_set_load_factor": (None, [ctypes.c_uint32, ctypes.c_uint32]),
        "gm_map_probes": (None, [i, up, vp, sz, vp]),
        "gm_map_occupancy": (None, [i, up, ctypes.POINTER(u64 * 11)]),
        "gm_swiss_makemap": (up, [i, i64]),
        "gm_swiss_assign": (None, [i, up, i64, u64]),
        "gm_swiss_access2": (i, [i, up, i64, ctypes.POINTER(u64)]),
        "gm_swiss_delete": (None, [i, up, i64]),
        "gm_swiss_clear": (None, [i, up]),
        "gm_swiss_assign_batch": (None, [i, up, vp, vp, sz, up, vp]),
        "gm_swiss_delete_batch": (None, [i, up, vp, sz]),
        "gm_swiss_header": (None, [up, ctypes.POINTER(u64 * 10)]),
        "gm_swiss_tables": (sz, [up, vp, sz]),
        "gm_swiss_ctrl_counts": (None, [up, vp]),
        "gm_swiss_probes": (None, [i, up, vp, sz, vp, vp]),
        "gm_swiss_check": (None, [i, up]),
        "gm_gc": (None, []),
        "gm_gc_start": (None, []),
        "gm_gc_step": (sz, [sz]),
        "gm_gc_mark_finish": (None, []),
        "gm_gc_sweep": (None, []),
        "gm_gcphase": (i, []),
        "gm_set_barrier": (None, [i]),
        "gm_set_mark_rate": (None, [i]),
        "gm_marked": (sz, [vp, sz]),
        "gm_scavenge": (up, []),
        "gm_get_stats": (None, [ctypes.POINTER(_Stats)]),
        "gm_resident": (i, [up, up, ctypes.POINTER(u64), ctypes.POINTER(u64)]),
        "gm_smaps_arena": (i, [ctypes.POINTER(u64), ctypes.POINTER(u64)]),
        "gm_dump": (i, [ctypes.c_char_p, i, ctypes.c_char_p]),
    }
    try:
        _lib = native.open_library(path, protos)
    except OSError as e:
        raise MissingToolError(f"cannot load the native tracer library {path}: {e}") from e
    return _lib


def _shape_id(shape):
    if isinstance(shape, int) and shape in (0, 1):
        return shape
    try:
        return SHAPES[shape]
    except KeyError:
        raise UsageError(f"unknown map shape {shape!r}: use one of {sorted(SHAPES)}") from None


def _advice_id(madvise):
    if madvise in (None, "", "default"):
        return 0
    if madvise == "free":
        return 1
    if madvise == "dontneed":
        return 2
    raise UsageError(f"unknown --madvise {madvise!r}: use free or dontneed")


def _smaller_arena():
    """_smaller_arena suggests an arena that fits a quarter of the address-space limit (ulimit -v), else 1GiB."""
    import resource

    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit == resource.RLIM_INFINITY:
        return "1GiB"
    granule = 64 << 20  # heapArenaBytes: the core rounds the arena up to it
    return f"{max(granule, limit // 4 // granule * granule) >> 20}MiB"


class Root:
    """Root is one registered root slot: a global or a shadow-stack slot."""

    def __init__(self, rt, index, name, kind):
        self._rt, self.index, self.name, self.kind = rt, index, name, kind

    def set(self, addr):
        """set stores addr (0 for nil) into the root; globals are barriered while marking."""
        self._rt._lib.gm_root_set(self.index, int(addr))

    def get(self):
        """get returns the address the root holds."""
        return self._rt._lib.gm_root_get(self.index)


class Map:
    """Map is a Go 1.19 map living in the tracer's heap, addressed by its hmap."""

    impl = "classic"

    def __init__(self, rt, shape, addr, root=None):
        self._rt, self.shape, self.addr, self.root = rt, shape, addr, root

    @property
    def has_pointers(self):
        """has_pointers reports whether the elems are pointers to value objects."""
        return self.shape == 1

    def assign(self, key, value=None):
        """assign stores m[key] = value; for pointer maps a None value allocates a new value object."""
        lib = self._rt._lib
        if value is None:
            value = lib.gm_new_value(self._rt.value_size) if self.has_pointers else key
        lib.gm_mapassign(self.shape, self.addr, int(key), int(value) & 0xFFFFFFFFFFFFFFFF)

    __setitem__ = assign

    def get(self, key, default=None):
        """get returns m[key] (the value object's address for pointer maps), or default."""
        out = ctypes.c_uint64()
        if self._rt._lib.gm_mapaccess2(self.shape, self.addr, int(key), ctypes.byref(out)):
            v = out.value
            return v if self.has_pointers or v < 1 << 63 else v - (1 << 64)
        return default

    def __contains__(self, key):
        return self.get(key, _MISSING) is not _MISSING

    def delete(self, key):
        """delete removes key, like Go's delete(m, key)."""
        self._rt._lib.gm_mapdelete(self.shape, self.addr, int(key))

    __delitem__ = delete

    def clear(self):
        """clear empties the map with Go's mapclear (the bucket array is kept)."""
        self._rt._lib.gm_mapclear(self.shape, self.addr)

    def assign_many(self, keys, values=None, trace_B=False):
        """assign_many assigns every key (values default as in assign) in one native call.

        With trace_B it returns a uint8 array: the map's B after each insert.
        """
        k = np.ascontiguousarray(keys, dtype=np.int64)
        v = None if values is None else np.ascontiguousarray(values, dtype=np.uint64)
        bs = np.empty(len(k), dtype=np.uint8) if trace_B else None
        self._rt._lib.gm_assign_batch(
            self.shape,
            self.addr,
            k.ctypes.data,
            None if v is None else v.ctypes.data,
            len(k),
            self._rt.value_size,
            None if bs is None else bs.ctypes.data,
        )
        return bs

    def delete_many(self, keys):
        """delete_many deletes every key in one native call."""
        k = np.ascontiguousarray(keys, dtype=np.int64)
        self._rt._lib.gm_delete_batch(self.shape, self.addr, k.ctypes.data, len(k))

    def probes(self, keys):
        """probes returns, for each key's lookup, the full cells it checks (map.go's hitprobe/missprobe)."""
        k = np.ascontiguousarray(keys, dtype=np.int64)
        out = np.zeros(len(k), dtype=np.uint32)
        self._rt._lib.gm_map_probes(self.shape, self.addr, k.ctypes.data, len(k), out.ctypes.data)
        return out

    def occupancy(self):
        """occupancy returns (primary buckets by entries on their chain 0..8 and >8, overflow buckets)."""
        out = (ctypes.c_uint64 * 11)()
        self._rt._lib.gm_map_occupancy(self.shape, self.addr, ctypes.byref(out))
        return list(out[:10]), out[10]

    def header(self):
        """header returns the hmap's fields as a MapHeader."""
        out = (ctypes.c_uint64 * 9)()
        self._rt._lib.gm_map_header(self.addr, ctypes.byref(out))
        return MapHeader(*out)

    def __len__(self):
        return self.header().count

    def check(self):
        """check verifies the map's invariants; a violation aborts the process (a bug, like Go's throw)."""
        self._rt._lib.gm_map_check(self.shape, self.addr)


class SwissMap(Map):
    """SwissMap is a Go 1.26 Swiss-table map living in the tracer's heap, addressed by its Map header.

    It answers the same calls as Map; header() returns a SwissHeader, and
    tables() each distinct table.
    """

    impl = "swiss"

    def assign(self, key, value=None):
        lib = self._rt._lib
        if value is None:
            value = lib.gm_new_value(self._rt.value_size) if self.has_pointers else key
        lib.gm_swiss_assign(self.shape, self.addr, int(key), int(value) & 0xFFFFFFFFFFFFFFFF)

    __setitem__ = assign

    def get(self, key, default=None):
        out = ctypes.c_uint64()
        if self._rt._lib.gm_swiss_access2(self.shape, self.addr, int(key), ctypes.byref(out)):
            v = out.value
            return v if self.has_pointers or v < 1 << 63 else v - (1 << 64)
        return default

    def delete(self, key):
        self._rt._lib.gm_swiss_delete(self.shape, self.addr, int(key))

    __delitem__ = delete

    def clear(self):
        """clear empties the map with Go's Map.Clear (every table kept, clear_seq incremented)."""
        self._rt._lib.gm_swiss_clear(self.shape, self.addr)

    def assign_many(self, keys, values=None, trace=False):
        """assign_many assigns every key in one native call.

        With trace it returns a uint32 array of shape (n, 3): the directory
        length, the distinct tables and the total slots after each insert.
        """
        k = np.ascontiguousarray(keys, dtype=np.int64)
        v = None if values is None else np.ascontiguousarray(values, dtype=np.uint64)
        tr = np.empty((len(k), 3), dtype=np.uint32) if trace else None
        self._rt._lib.gm_swiss_assign_batch(
            self.shape, self.addr, k.ctypes.data, None if v is None else v.ctypes.data, len(k),
            self._rt.value_size, None if tr is None else tr.ctypes.data)
        return tr

    def delete_many(self, keys):
        k = np.ascontiguousarray(keys, dtype=np.int64)
        self._rt._lib.gm_swiss_delete_batch(self.shape, self.addr, k.ctypes.data, len(k))

    def header(self):
        """header returns the Map's fields as a SwissHeader."""
        out = (ctypes.c_uint64 * 10)()
        self._rt._lib.gm_swiss_header(self.addr, ctypes.byref(out))
        h = list(out)
        h[6] = bool(h[6])
        return SwissHeader(*h)

    def tables(self):
        """tables returns each distinct table in directory order, as SwissTables."""
        lib = self._rt._lib
        n = lib.gm_swiss_tables(self.addr, None, 0)
        out = np.zeros((max(n, 1), 10), dtype=np.uint64)
        lib.gm_swiss_tables(self.addr, out.ctypes.data, n)
        rows = []
        for r in out[:n].tolist():
            r[5] = r[5] - (1 << 64) if r[5] >= 1 << 63 else r[5]
            rows.append(SwissTable(*r))
        return rows

    def group_ctrls(self, table):
        """group_ctrls returns a (groups_len, 3) array: full, deleted and empty slots of each group of table."""
        out = np.zeros((table.groups_len, 3), dtype=np.uint32)
        for g in range(table.groups_len):
            self._rt._lib.gm_swiss_ctrl_counts(table.groups + g * 136, out[g].ctypes.data)
        return out

    def probes(self, keys):
        """probes returns, for each key's lookup, the groups probed and the keys compared (uint32 arrays)."""
        k = np.ascontiguousarray(keys, dtype=np.int64)
        groups = np.zeros(len(k), dtype=np.uint32)
        cmps = np.zeros(len(k), dtype=np.uint32)
        self._rt._lib.gm_swiss_probes(self.shape, self.addr, k.ctypes.data, len(k),
                                      groups.ctypes.data, cmps.ctypes.data)
        return groups, cmps

    def check(self):
        """check verifies the map's invariants; a violation aborts the process."""
        self._rt._lib.gm_swiss_check(self.shape, self.addr)


_MISSING = object()


class Runtime:
    """Runtime is the tracer's heap: maps, roots, collector, scavenger and dumps.

    seed fixes every hash seed and so every address; madvise is "free",
    "dontneed" or None (follow GODEBUG=madvdontneed, Go 1.19's default being
    dontneed); gc is the mode the pacer uses ("stw" or "concurrent");
    gogc < 0 turns the pacer off; check verifies each map after every
    operation (slow: for tests).
    """

    _open = None

    def __init__(self, seed=1, madvise=None, gc="stw", barrier=True, record=True, gogc=100,
                 mark_rate=16, check=False, value_size=64, arena_bytes=0):
        if gc not in ("stw", "concurrent"):
            raise UsageError(f"unknown --gc {gc!r}: use stw or concurrent")
        self._lib = load()
        if Runtime._open is not None:
            raise RuntimeError("another tracer Runtime is open in this process; close it first")
        cfg = _Config()
        self._lib.gm_default_config(ctypes.byref(cfg))
        cfg.seed = int(seed)
        cfg.madvise = _advice_id(madvise)
        cfg.gcmode = 1 if gc == "concurrent" else 0
        cfg.barrier = int(bool(barrier))
        cfg.record = int(bool(record))
        cfg.gogc = int(gogc)
        cfg.mark_rate = int(mark_rate)
        cfg.check = int(bool(check))
        cfg.arena_bytes = int(arena_bytes)
        err = self._lib.gm_init(ctypes.byref(cfg))
        if err == -errno.ENOMEM:
            gib = (cfg.arena_bytes or DEFAULT_ARENA_BYTES) / (1 << 30)
            raise UsageError(f"cannot reserve the tracer's heap arena ({gib:g} GiB of address space): "
                             f"{os.strerror(-err)}; under a limited address space (ulimit -v, "
                             f"vm.overcommit_memory=2) ask for a smaller arena, e.g. --arena {_smaller_arena()}")
        if err != 0:
            raise RuntimeError(f"gm_init failed: {os.strerror(-err)}")
        Runtime._open = self
        self.seed, self.gc_mode, self.value_size = int(seed), gc, int(value_size)
        self.roots = {}
        self.closed = False

    # lifetime
    def close(self):
        """close returns the heap to the OS; the Runtime is unusable afterwards."""
        if not self.closed:
            self._lib.gm_fini()
            self.closed = True
            Runtime._open = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # objects and roots
    def add_root(self, name, kind="global"):
        """add_root registers a root slot (kind "global" or "stack") and returns it."""
        if kind not in ("global", "stack"):
            raise UsageError(f"unknown root kind {kind!r}: use global or stack")
        i = self._lib.gm_root_add(name.encode(), 0 if kind == "global" else 1)
        if i < 0:
            raise RuntimeError("too many roots")
        r = Root(self, i, name, kind)
        self.roots[name] = r
        return r

    def new_value(self, size=None):
        """new_value allocates a pointer-free value object (a main.T) and returns its address."""
        return self._lib.gm_new_value(self.value_size if size is None else int(size))

    def object_base(self, addr):
        """object_base returns the start of the allocated object containing addr, or 0."""
        return self._lib.gm_object_base(int(addr))

    def make_map(self, shape="int64->int64", hint=0, root="main.m", root_kind="global", impl="classic"):
        """make_map makes a map and stores it in a new root unless root is None.

        impl "classic" is Go 1.19's makemap (a Map); "swiss" is Go 1.26's
        NewMap (a SwissMap).
        """
        sid = _shape_id(shape)
        if impl not in IMPLS:
            raise UsageError(f"unknown map implementation {impl!r}: use classic or swiss")
        make = self._lib.gm_swiss_makemap if impl == "swiss" else self._lib.gm_makemap
        addr = make(sid, int(hint))
        r = None
        if root is not None:
            r = self.add_root(root, root_kind)
            r.set(addr)
        return (SwissMap if impl == "swiss" else Map)(self, sid, addr, r)

    # collector
    def gc(self):
        """gc runs runtime.GC: finishes any cycle in progress, then a whole stop-the-world cycle."""
        self._lib.gm_gc()

    def gc_start(self):
        """gc_start begins a concurrent cycle (finishing one in progress first); roots are shaded."""
        if self.phase != "off":
            self._lib.gm_gc_mark_finish()
            self._lib.gm_gc_sweep()
        self._lib.gm_gc_start()

    def gc_step(self, n=1):
        """gc_step scans up to n grey objects and returns how many stay grey."""
        return self._lib.gm_gc_step(int(n))

    def gc_mark_finish(self):
        """gc_mark_finish drains the grey queue and ends marking (mark_done)."""
        self._lib.gm_gc_mark_finish()

    def gc_sweep(self):
        """gc_sweep frees every unmarked object (sweep_done)."""
        self._lib.gm_gc_sweep()

    @property
    def phase(self):
        """phase is the collector's phase: "off", "mark" or "mark_done"."""
        return PHASE_NAMES[self._lib.gm_gcphase()]

    def set_barrier(self, on):
        """set_barrier switches the hybrid write barrier on or off."""
        self._lib.gm_set_barrier(int(bool(on)))

    def set_load_factor(self, num, den=2):
        """set_load_factor sets the classic map's loadFactor to num/den (Go's 13/2 by default): for measurements."""
        self._lib.gm_set_load_factor(int(num), int(den))

    def set_mark_rate(self, n):
        """set_mark_rate sets how many grey objects each map operation scans while marking."""
        self._lib.gm_set_mark_rate(int(n))

    def marked(self):
        """marked returns the sorted addresses of marked objects (meaningful at mark_done)."""
        n = self._lib.gm_marked(None, 0)
        out = np.zeros(n, dtype=np.uint64)
        self._lib.gm_marked(out.ctypes.data, n)
        return out

    # scavenger and kernel
    def scavenge(self):
        """scavenge returns every free page to the OS (debug.FreeOSMemory) and the bytes released."""
        return self._lib.gm_scavenge()

    def stats(self):
        """stats returns the heap's counters as a dict."""
        s = _Stats()
        self._lib.gm_get_stats(ctypes.byref(s))
        d = {name: getattr(s, name) for name, _ in _Stats._fields_}
        d["advice"] = {1: "free", 2: "dontneed"}.get(d["advice"], "dontneed")
        return d

    def resident(self, addr, length):
        """resident returns (resident, total) OS pages of [addr, addr+length), from mincore."""
        r, t = ctypes.c_uint64(), ctypes.c_uint64()
        err = self._lib.gm_resident(int(addr), int(length), ctypes.byref(r), ctypes.byref(t))
        if err:
            raise OSError(-err, os.strerror(-err))
        return r.value, t.value

    def smaps(self):
        """smaps returns the arena's Rss and LazyFree in kB, from /proc/self/smaps."""
        r, lz = ctypes.c_uint64(), ctypes.c_uint64()
        self._lib.gm_smaps_arena(ctypes.byref(r), ctypes.byref(lz))
        return {"rss_kb": r.value, "lazyfree_kb": lz.value}

    # dumps
    def dump(self, path, **meta):
        """dump writes the heap as a gctrace dump; the format follows the suffix.

        ``.jsonl`` writes JSON Lines, ``.json`` one document, either optionally
        ``.gz`` (compressed afterwards with a zero mtime, so equal heaps give
        equal files). Keyword arguments are added to meta.
        """
        path = Path(path)
        name = path.name
        gz = name.endswith(".gz")
        base = name[:-3] if gz else name
        if not (base.endswith(".json") or base.endswith(".jsonl")):
            raise UsageError(f"{path}: a dump is named .json, .jsonl, .json.gz or .jsonl.gz")
        jsonl = base.endswith(".jsonl")
        extra = json.dumps(meta, sort_keys=True)[1:-1] if meta else ""
        # Written whole or not at all: a temp file renamed at the end, or a device or FIFO written through;
        # a full disk or Ctrl-C leaves nothing behind (gctrace.atomicfile).
        if not gz:
            with atomicfile.output_path(path) as target:
                self._dump(target, path, jsonl, extra)
            return path
        with atomicfile.open_output(path) as raw, atomicfile.scratch_path(_scratch_dir(path)) as plain:
            self._dump(plain, path, jsonl, extra)
            with open(plain, "rb") as src:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        return path

    def _dump(self, target, path, jsonl, extra):
        err = self._lib.gm_dump(str(target).encode(), int(jsonl), extra.encode())
        if err:
            raise OutputError(path, f"cannot write the dump: {os.strerror(-err)}")


def _scratch_dir(path):
    """_scratch_dir is where the uncompressed dump goes before gzip: beside a file, in $TMPDIR for a device or FIFO."""
    real = os.path.realpath(path)
    return os.path.dirname(real) if not os.path.exists(real) or os.path.isfile(real) else None
