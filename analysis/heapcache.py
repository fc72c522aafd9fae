"""heapcache keeps loaded heaps of big dumps on disk, so the next command on the same dump skips the parse.

Parsing is most of the time a command spends on a big dump (5-8 s of 13-16 s
at 10M objects, bench/results-scale.md), and users run several commands on
one dump: analyze, then why, top, render. Eclipse MAT answers the same
complaint with index files written on the first parse; this is gctrace's
version of that. The first load of a dump of at least ``MIN_OBJECTS``
objects stores the model's arrays as ``.npy`` files in a directory of their
own; later loads memory-map them (read-only, like every loaded heap, see
model.freeze), so a cached load costs a checksum pass over the arrays
instead of a parse, and the pages come from the page cache.

Terminology
  cache dir   ``$GCTRACE_CACHE_DIR``, else ``$XDG_CACHE_HOME/gctrace``, else
              ``~/.cache/gctrace``. The user's: gctrace never deletes in it.
              ``GCTRACE_CACHE=0`` turns the cache off.
  store       ``<cache dir>/gctrace-heapcache-v1``, the one directory gctrace
              makes there (mode 0700). Everything gctrace ever deletes is
              inside it.
  entry       ``<store>/heap-<32 hex>``: one cached heap, holding the marker
              file, ``skeleton.json`` and one ``.npy`` file per array.
  marker      ``gctrace-heapcache-entry``, the first file written into an
              entry, holding the entry's key.

Ours and only ours
  An entry is gctrace's when it is a real directory (not a symlink) in the
  store, named ``heap-<32 hex>`` (or ``.tmp-heap-*`` while being written),
  owned by the user, writable by no one else, with a marker that says so.
  Eviction and ``gctrace cache --clear`` remove only such entries, and in
  them only the files an entry holds; anything else stays where it is. A
  store or entry owned by someone else, or writable by group or others, is
  not used at all: the dump is parsed as if there were no cache.

Trust
  The key is a hash of the dump's real path, size, mtime, ctime, inode and
  device, the entry layout and the loader's own source: a dump rewritten in
  place, or a changed gctrace, never reads a stale entry. A dump changed
  within ``RACY_NS`` of its parse is not stored (git's "racily clean"
  rule: a rewrite in the same file-system clock tick keeps every stat
  field). On read, every file is opened without following symlinks, must be
  the user's, and must match the size and SHA-256 written into the
  skeleton; each array's dtype and shape must match the skeleton, and the
  heap's indexes must lie in their ranges. Any failure drops the entry (if it
  is ours) and parses the dump again.

Bounded
  The ``KEEP`` most recently used entries stay, and no more than
  ``$GCTRACE_CACHE_BYTES`` (default ``DEFAULT_BUDGET``) in all; a heap
  bigger than the budget is not stored.

Best effort: an entry that cannot be written is not written. Only dumps that
load without error are stored. An entry is renamed into place whole, so a
reader never sees half of one. No pickle: arrays go into ``.npy`` files,
everything else (strings, map headers, meta) into ``skeleton.json``, rebuilt
into known classes only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import mmap
import os
import re
import stat
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from gctrace import cachedir
from gctrace.cachedir import cache_root
from gctrace.errors import UsageError

from . import model
from .load import load_dump
from .model import Heap, freeze

MIN_OBJECTS = 1 << 18
KEEP = 4
DEFAULT_BUDGET = 4 << 30
LAYOUT = 4
RACY_NS = 2 * 10**9  # a dump changed this close to its parse is not stored (coarse file-system clocks)
STORE = "gctrace-heapcache-v1"
MARKER = "gctrace-heapcache-entry"
_MARKER_TEXT = "gctrace heap cache entry {key}\n"
_ENTRY_NAME = re.compile(r"heap-[0-9a-f]{32}")
_TEMP_NAME = re.compile(r"\.tmp-heap-[A-Za-z0-9_]+")
_FILE_NAME = re.compile(r"[A-Za-z0-9_.]+\.npy|skeleton\.json|" + re.escape(MARKER))
_CLASSES = {c.__name__: c for c in (model.Heap, model.Roots, model.PageRuns, model.MapHeader, model.SwissMap,
                                              model.Events)}
# The files whose code decides what a dump loads into: a change to any of them changes every key.
# Every file whose change can change a loaded Heap: the loader package (all of it, whatever files it
# gains), the model, the C parser and its binding, and this module.
_LOADER_SOURCES = tuple(sorted(str(p.relative_to(Path(__file__).resolve().parent))
                               for p in (Path(__file__).resolve().parent / "load").glob("*.py"))) + (
    "model.py", "fastparse.py", "_fastparse.c", "heapcache.py")
_UNITS = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}


class _Untrusted(Exception):
    """_Untrusted says an entry, or a file in it, fails a check: the entry is dropped and the dump parsed."""


def cache_dir() -> Path | None:
    """cache_dir returns the user's cache directory, or None when the cache is off (GCTRACE_CACHE=0)."""
    return cache_root()


def store_dir() -> Path | None:
    """store_dir returns the directory gctrace's entries live in (inside cache_dir), or None when off."""
    where = cache_dir()
    return None if where is None else where / STORE


def budget() -> int:
    """budget returns the bytes all entries may take together: $GCTRACE_CACHE_BYTES (e.g. 2GiB), else DEFAULT_BUDGET."""
    spec = os.environ.get("GCTRACE_CACHE_BYTES")
    if not spec:
        return DEFAULT_BUDGET
    m = re.fullmatch(r"(\d+)\s*([a-zA-Z]*)", spec.strip())
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(f"GCTRACE_CACHE_BYTES={spec!r}: expected a size such as 4GiB, 500MiB or 1000000")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def load_heap(path, progress: bool = False) -> Heap:
    """load_heap returns the dump's heap from the cache, or loads it (load_dump) and stores it when it is big."""
    path = os.fspath(path)
    started = time.time_ns()
    if cache_dir() is not None:
        budget()  # a bad $GCTRACE_CACHE_BYTES is the user's to fix: one line, exit 2
    store = _usable_store(create=False)
    key = _key(path)
    entry = None if store is None or key is None else store / f"heap-{key}"
    if entry is not None and os.path.lexists(entry):
        heap = _read(entry, key, path)
        if heap is not None:
            return heap
    heap = load_dump(path, progress)
    if key is not None and heap.n_objects >= MIN_OBJECTS and not _racy(path, key, started):
        store = _usable_store(create=True)
        if store is not None:
            _write(store, key, heap)
    return heap


@dataclasses.dataclass(frozen=True)
class Entry:
    """Entry describes one cached heap: where it is, which dump it came from, how big, when last used."""

    path: Path
    source: str
    objects: int | None  # None: not recorded (a broken entry, evicted in time)
    bytes: int
    used: float  # seconds since the epoch


def list_entries() -> list[Entry]:
    """list_entries returns gctrace's entries, most recently used first (none when the cache is off or not ours)."""
    store = _usable_store(create=False)
    if store is None:
        return []
    out = []
    for p in _ours(store, temps=False):
        try:
            skeleton = _load_skeleton(p)
            objects = skeleton.get("objects")
            out.append(Entry(p, str(skeleton.get("source", "?")), objects if isinstance(objects, int) else None,
                             _entry_bytes(p), p.lstat().st_mtime))
        except (OSError, ValueError, _Untrusted):
            out.append(Entry(p, "? (broken entry: the next load of its dump replaces it)", None, _entry_bytes(p), 0.0))
    return sorted(out, key=lambda e: -e.used)


def clear() -> int:
    """clear deletes every entry gctrace made (and any half-written one) and returns how many entries went.

    Nothing else in the cache directory is touched, nor anything in the
    store that gctrace cannot prove it made.
    """
    store = _usable_store(create=False)
    if store is None:
        return 0
    return sum(_remove(p) and not p.name.startswith(".") for p in _ours(store, temps=True))


# --- ownership ---------------------------------------------------------------------------------------------------


def _private(st: os.stat_result) -> bool:
    """_private reports whether a file or directory is the user's and writable by no one else."""
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _usable_store(create: bool) -> Path | None:
    """_usable_store returns the store when it is a private directory of the user's (made when create), else None."""
    store = store_dir()
    if store is None:
        return None
    try:
        st = os.lstat(store)
    except FileNotFoundError:
        if not create:
            return None
        try:
            store.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(store, 0o700)
            st = os.lstat(store)
        except OSError:
            return None
    except OSError:
        return None
    return store if stat.S_ISDIR(st.st_mode) and _private(st) else None


def _ours(store: Path, temps: bool) -> list[Path]:
    """_ours lists the store's entries gctrace provably made (and, with temps, its half-written ones)."""
    out = []
    try:
        names = os.listdir(store)
    except OSError:
        return out
    for name in names:
        temp = _TEMP_NAME.fullmatch(name) is not None
        if not (_ENTRY_NAME.fullmatch(name) or (temps and temp)):
            continue
        p = store / name
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if not (stat.S_ISDIR(st.st_mode) and _private(st)):
            continue
        if temp and not os.listdir(p):
            out.append(p)  # made by mkdtemp and left before its marker: empty, so rmdir is all it takes
        elif _marker_ok(p, None if temp else name[len("heap-"):]):
            out.append(p)
    return out


def _marker_ok(entry: Path, key: str | None) -> bool:
    """_marker_ok reports whether the entry holds gctrace's marker (naming ``key``, unless key is None)."""
    try:
        text = _read_private(entry / MARKER, limit=4096).decode()
    except (OSError, UnicodeDecodeError, _Untrusted):
        return False
    if key is None:
        return re.fullmatch(_MARKER_TEXT.format(key="[0-9a-f]{32}"), text) is not None
    return text == _MARKER_TEXT.format(key=key)


def _read_private(path: Path, limit: int) -> bytes:
    """_read_private reads a small regular file of the user's, never through a symlink."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) and _private(st)) or st.st_size > limit:
            raise _Untrusted(f"{path.name}: not a private regular file")
        return os.read(fd, limit + 1)
    finally:
        os.close(fd)


def _remove(entry: Path) -> bool:
    """_remove deletes an entry of ours: only the files an entry holds, then the directory if that emptied it."""
    try:
        with os.scandir(entry) as it:
            for f in it:
                if _FILE_NAME.fullmatch(f.name) and f.is_file(follow_symlinks=False):
                    os.unlink(f.path)
        os.rmdir(entry)
        return True
    except OSError:
        return False  # something not ours is in it, or it went: left as it is


def _entry_bytes(entry: Path) -> int:
    try:
        with os.scandir(entry) as it:
            return sum(f.stat(follow_symlinks=False).st_size for f in it)
    except OSError:
        return 0


# --- keys --------------------------------------------------------------------------------------------------------


def _key(path: str) -> str | None:
    """_key names the cache entry of the dump at ``path`` as it is now; None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None  # load_dump names the problem
    if not stat.S_ISREG(st.st_mode):
        return None  # a pipe, FIFO or device: its stat says nothing about what it will hold next time
    key = hashlib.sha256()
    for part in (os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev,
                 LAYOUT, _loader_digest()):
        key.update(str(part).encode() + b"\0")
    return key.hexdigest()[:32]


def _racy(path: str, key: str, started: int) -> bool:
    """_racy reports whether the dump changed too close to its parse (or during it) for its stat to tell a rewrite.

    ctime, not mtime: nothing but the kernel sets it, and every write moves it.
    """
    try:
        st = os.stat(path)
    except OSError:
        return True
    return _key(path) != key or st.st_ctime_ns > started - RACY_NS


def _loader_digest() -> str:
    return cachedir.sources_digest(Path(__file__).resolve().parent, _LOADER_SOURCES)


# --- reading -----------------------------------------------------------------------------------------------------


def _load_skeleton(entry: Path) -> dict:
    skeleton = json.loads(_read_private(entry / "skeleton.json", limit=256 << 20))
    if not isinstance(skeleton, dict) or skeleton.get("layout") != LAYOUT:
        raise _Untrusted("another layout")
    return skeleton


def _read(entry: Path, key: str, path: str) -> Heap | None:
    """_read maps a cache entry's arrays after checking them; an entry that fails a check is dropped, None returned."""
    try:
        st = os.lstat(entry)
        if not (stat.S_ISDIR(st.st_mode) and _private(st)) or not _marker_ok(entry, key):
            return None  # not provably ours: never read, never deleted
    except OSError:
        return None
    try:
        skeleton = _load_skeleton(entry)
        if skeleton.get("key") != key or not isinstance(skeleton.get("files"), dict):
            raise _Untrusted("another key")
        files = skeleton["files"]
        opened = _open_checked(entry, files)
        try:
            heap = _decode(skeleton["heap"], opened, files)
        finally:
            for f in opened.values():
                f.close()  # the mappings stay
        _check_ranges(heap)
        os.utime(entry)  # most recently used
        return freeze(dataclasses.replace(heap, path=path))
    except Exception:  # noqa: BLE001 - any unreadable entry is a miss, never the user's problem
        _remove(entry)
        return None


def _open_checked(entry: Path, files: dict) -> dict:
    """_open_checked opens an entry's array files and checks their owner, size and SHA-256 (hashed in parallel).

    The open files are returned so that the very files checked are the ones
    mapped; the caller closes them.
    """
    opened = {}
    try:
        for name, want in files.items():
            if not isinstance(want, dict) or not _FILE_NAME.fullmatch(f"{name}.npy") or name.startswith("."):
                raise _Untrusted(f"{name}: bad array name")
            f = opened[name] = os.fdopen(os.open(entry / f"{name}.npy", os.O_RDONLY | os.O_NOFOLLOW), "rb")
            st = os.fstat(f.fileno())
            if not (stat.S_ISREG(st.st_mode) and _private(st)) or st.st_size != want.get("bytes"):
                raise _Untrusted(f"{name}: not the file written")

        def digest(f):
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as whole:
                return hashlib.sha256(whole).hexdigest()  # hashlib lets go of the GIL: the threads hash at once

        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            sums = dict(zip(opened, pool.map(digest, opened.values())))
        if any(sums[name] != files[name].get("sha256") for name in opened):
            raise _Untrusted("checksum")
        return opened
    except BaseException:
        for f in opened.values():
            f.close()
        raise


def _map_array(f, name: str, want: dict) -> np.ndarray:
    """_map_array maps one checked ``.npy`` file read-only after checking its dtype and shape against the skeleton."""
    f.seek(0)
    version = np.lib.format.read_magic(f)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise _Untrusted(f"{name}: .npy version {version}")
    shape, fortran, dtype = readers[version](f)
    if fortran or dtype.hasobject or dtype.str != want.get("dtype") or list(shape) != want.get("shape"):
        raise _Untrusted(f"{name}: dtype or shape")
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype)
    # A plain ndarray over the mapping of the very file checked: numpy.memmap's subclass would leak into results.
    return np.asarray(np.memmap(f, dtype=dtype, mode="r", offset=f.tell(), shape=shape))


def _check_ranges(h: Heap) -> None:
    """_check_ranges raises _Untrusted unless the heap's lengths agree and its codes and indexes lie in range."""
    n = h.n_objects

    def within(a, lo, hi):
        return len(a) == 0 or (int(a.min()) >= lo and int(a.max()) < hi)

    ok = (len(h.obj_size) == len(h.obj_kind) == len(h.has_slots) == n
          and len(h.ptr_start) == n + 1 and len(h.slot_start) == n + 1
          and int(h.ptr_start[0]) == 0 and int(h.ptr_start[-1]) == len(h.ptr_off) == len(h.ptr_target)
          and int(h.slot_start[0]) == 0 and int(h.slot_start[-1]) == len(h.slot_count)
          and within(h.obj_kind, 0, len(h.kinds)) and within(h.obj_size, 1, 1 << 63)
          and len(h.obj_type) in (0, n) and within(h.obj_type, -1, len(h.types))
          and len(h.obj_map) in (0, n) and len(h.obj_site) in (0, n)
          and len(h.roots.kind) == len(h.roots.target) == len(h.roots)
          and within(h.roots.kind, 0, len(model.ROOT_KINDS))
          and within(h.events.op, 0, len(model.EVENT_OPS)) and within(h.events.text, -1, len(h.events.strings))
          and all(len(getattr(h.events, c)) == len(h.events.seq) for c in ("op", "a", "b", "old", "new", "text",
                                                                           "same_size")))
    if ok and h.pages is not None:
        p = h.pages
        ok = len(p.first) == len(p.n) == len(p.resident) == len(p.state) and within(p.state, 0, len(model.PAGE_STATES))
    if not ok:
        raise _Untrusted("out of range")


# --- writing -----------------------------------------------------------------------------------------------------


class _HashingWriter:
    """_HashingWriter passes writes to a file and hashes them on the way (np.save writes through it)."""

    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, b) -> int:
        self.h.update(b)
        self.n += len(memoryview(b).cast("B"))
        return self.f.write(b)


def _write(store: Path, key: str, heap: Heap) -> None:
    """_write stores the heap as the entry ``key``, atomically, then evicts beyond KEEP and the budget.

    Failures are ignored: the cache is best effort.
    """
    tmp = None
    try:
        arrays: dict[str, np.ndarray] = {}
        # A model field _encode does not know is a gctrace bug: the round-trip tests catch it; users lose a cache entry.
        skeleton = {"layout": LAYOUT, "key": key, "source": os.path.realpath(heap.path), "objects": heap.n_objects,
                    "heap": _encode(heap, "h", arrays), "files": {}}
        limit = budget()
        if sum(a.nbytes for a in arrays.values()) > limit:
            return
        tmp = Path(tempfile.mkdtemp(dir=store, prefix=".tmp-heap-"))  # 0700
        _create(tmp / MARKER, lambda f: f.write(_MARKER_TEXT.format(key=key).encode()))  # first: it makes tmp ours
        for name, arr in arrays.items():
            def save(f, arr=arr, name=name):
                w = _HashingWriter(f)
                np.save(w, np.ascontiguousarray(arr), allow_pickle=False)
                skeleton["files"][name] = {"bytes": w.n, "sha256": w.h.hexdigest(), "dtype": arr.dtype.str,
                                           "shape": list(arr.shape)}
            _create(tmp / f"{name}.npy", save)
        _create(tmp / "skeleton.json", lambda f: f.write(json.dumps(skeleton).encode()))  # last
        os.rename(tmp, store / f"heap-{key}")  # atomic; fails if another process stored the same entry first
        tmp = None
        _evict(store, limit)
    except (OSError, TypeError, ValueError):
        pass
    finally:
        if tmp is not None:
            _remove(tmp)


def _create(path: Path, fill) -> None:
    """_create makes a new private file (never through a symlink, never an existing one) and fills it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        fill(f)


def _evict(store: Path, limit: int) -> None:
    """_evict keeps the most recently used entries, at most KEEP and ``limit`` bytes together, and removes the rest."""
    entries = sorted(((p.lstat().st_mtime_ns, _entry_bytes(p), p) for p in _ours(store, temps=False)), reverse=True)
    kept, total = 0, 0
    for _, size, p in entries:
        if kept < KEEP and total + size <= limit:
            kept, total = kept + 1, total + size
        else:
            _remove(p)


def _encode(value, name: str, arrays: dict):
    """_encode turns a model value into JSON, moving its arrays into ``arrays`` under names built from ``name``."""
    if isinstance(value, np.ndarray):
        arrays[name] = value
        return {"@array": name}
    if dataclasses.is_dataclass(value):
        return {"@class": type(value).__name__,
                "fields": {f.name: _encode(getattr(value, f.name), f"{name}.{f.name}", arrays)
                           for f in dataclasses.fields(value)}}
    if isinstance(value, tuple):
        return {"@tuple": [_encode(v, f"{name}.{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, dict):
        return {"@dict": value}  # meta: JSON from the dump itself
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise TypeError(f"cannot cache a {type(value).__name__}")


def _decode(value, opened: dict, files: dict):
    """_decode rebuilds what _encode wrote, mapping the arrays from the entry's checked, open ``.npy`` files."""
    if isinstance(value, dict):
        if "@array" in value:
            name = value["@array"]
            if not isinstance(name, str) or name not in opened:
                raise _Untrusted("bad array name")
            return _map_array(opened[name], name, files[name])
        if "@class" in value:
            cls = _CLASSES[value["@class"]]
            return cls(**{k: _decode(v, opened, files) for k, v in value["fields"].items()})
        if "@tuple" in value:
            return tuple(_decode(v, opened, files) for v in value["@tuple"])
        if "@dict" in value:
            return value["@dict"]
        raise _Untrusted("unknown node")
    return value
