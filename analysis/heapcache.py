"""heapcache keeps loaded heaps of big dumps on disk, so the next command on the same dump skips the parse.

Parsing is most of the time a command spends on a big dump (5-8 s of 13-16 s
at 10M objects, bench/results-scale.md), and users run several commands on
one dump: analyze, then why, top, render. Eclipse MAT answers the same
complaint with index files written on the first parse; this is gctrace's
version of that. The first load of a dump of at least ``MIN_OBJECTS``
objects stores the model's arrays as ``.npy`` files in a directory of their
own; later loads memory-map them (read-only, like every loaded heap, see
model.freeze), so a cached load costs milliseconds and the pages come from
the page cache as the analysis touches them.

- Where: ``$GCTRACE_CACHE_DIR``, else ``$XDG_CACHE_HOME/gctrace``, else
  ``~/.cache/gctrace``. ``GCTRACE_CACHE=0`` turns the cache off.
- Keyed by the dump's real path, size and modification time, and by a hash
  of the loader's own source: a changed dump or a changed gctrace never
  reads a stale entry.
- Bounded: the ``KEEP`` most recently used entries stay, older ones go.
- Best effort: an entry that cannot be written is not written, and one that
  cannot be read (truncated, foreign, from another layout) is deleted and the
  dump parsed again. Only dumps that load without error are stored. An entry
  is renamed into place whole, so a reader never sees half of one.
- No pickle: arrays go into ``.npy`` files, everything else (strings, map
  headers, meta) into ``skeleton.json``, rebuilt into known classes only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np

from . import model
from .load import load_dump
from .model import Heap, freeze

MIN_OBJECTS = 1 << 18
KEEP = 4
LAYOUT = 2
_CLASSES = {c.__name__: c for c in (model.Heap, model.Roots, model.PageRuns, model.MapHeader, model.Events)}
# The files whose code decides what a dump loads into: a change to any of them changes every key.
_LOADER_SOURCES = ("load.py", "model.py", "fastparse.py", "_fastparse.c", "heapcache.py")


def cache_dir() -> Path | None:
    """cache_dir returns where entries live, or None when the cache is off (GCTRACE_CACHE=0)."""
    if os.environ.get("GCTRACE_CACHE", "1") == "0":
        return None
    if os.environ.get("GCTRACE_CACHE_DIR"):
        return Path(os.environ["GCTRACE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gctrace"


def load_heap(path, progress: bool = False) -> Heap:
    """load_heap returns the dump's heap from the cache, or loads it (load_dump) and stores it when it is big."""
    path = os.fspath(path)
    where = cache_dir()
    entry = None if where is None else _entry(where, path)
    if entry is not None and entry.exists():
        heap = _read(entry, path)
        if heap is not None:
            return heap
    heap = load_dump(path, progress)
    if entry is not None and heap.n_objects >= MIN_OBJECTS:
        _write(entry, heap)
    return heap


@dataclasses.dataclass(frozen=True)
class Entry:
    """Entry describes one cached heap: where it is, which dump it came from, how big, when last used."""

    path: Path
    source: str
    objects: int | None  # None: not recorded (an entry of an older gctrace, never read again, evicted in time)
    bytes: int
    used: float  # seconds since the epoch


def list_entries() -> list[Entry]:
    """list_entries returns the cache's entries, most recently used first (none when the cache is off)."""
    where = cache_dir()
    if where is None or not where.is_dir():
        return []
    out = []
    for p in where.iterdir():
        if p.name.startswith(".") or not p.is_dir():
            continue
        try:
            skeleton = json.loads((p / "skeleton.json").read_text())
            size = sum(f.stat().st_size for f in p.iterdir())
            objects = skeleton.get("objects")
            out.append(Entry(p, str(skeleton.get("source", "?")), objects if isinstance(objects, int) else None,
                             size, p.stat().st_mtime))
        except (OSError, ValueError):
            out.append(Entry(p, "? (broken entry: the next load of its dump replaces it)", None, 0, 0.0))
    return sorted(out, key=lambda e: -e.used)


def clear() -> int:
    """clear deletes every entry (and any half-written one) and returns how many entries there were."""
    where = cache_dir()
    if where is None or not where.is_dir():
        return 0
    n = 0
    for p in where.iterdir():
        if p.is_dir():
            n += not p.name.startswith(".")
            shutil.rmtree(p, ignore_errors=True)
    return n


def _entry(where: Path, path: str) -> Path | None:
    """_entry names the cache file of the dump at ``path`` as it is now; None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None  # load_dump names the problem
    if not stat.S_ISREG(st.st_mode):
        return None  # a pipe, FIFO or device: its stat says nothing about what it will hold next time
    key = hashlib.sha256()
    for part in (os.path.realpath(path), str(st.st_size), str(st.st_mtime_ns), str(LAYOUT), _loader_digest()):
        key.update(part.encode() + b"\0")
    return where / key.hexdigest()[:32]


_digest = None


def _loader_digest() -> str:
    global _digest
    if _digest is None:
        here = Path(__file__).resolve().parent
        h = hashlib.sha256()
        for name in _LOADER_SOURCES:
            p = here / name
            h.update(name.encode() + b"\0" + (p.read_bytes() if p.exists() else b"") + b"\0")
        _digest = h.hexdigest()
    return _digest


def _read(entry: Path, path: str) -> Heap | None:
    """_read maps a cache entry's arrays (read-only, paged in on use); a bad entry is deleted and None returned."""
    try:
        skeleton = json.loads((entry / "skeleton.json").read_text())
        if skeleton.get("layout") != LAYOUT:
            raise ValueError("another layout")
        heap = _decode(skeleton["heap"], entry)
        os.utime(entry)  # most recently used
        return freeze(dataclasses.replace(heap, path=path))
    except Exception:  # noqa: BLE001 - any unreadable entry is a miss, never the user's problem
        shutil.rmtree(entry, ignore_errors=True)
        return None


def _write(entry: Path, heap: Heap) -> None:
    """_write stores the heap as the directory ``entry``, atomically, and keeps the KEEP newest; failures are ignored."""
    tmp = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".tmp-"))
        arrays: dict[str, np.ndarray] = {}
        # A model field _encode does not know is a gctrace bug: the round-trip tests catch it; users lose a cache entry.
        skeleton = {"layout": LAYOUT, "source": os.path.realpath(heap.path), "objects": heap.n_objects,
                    "heap": _encode(heap, "h", arrays)}
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
        (tmp / "skeleton.json").write_text(json.dumps(skeleton))  # last: an entry without it is broken
        os.rename(tmp, entry)  # atomic; fails if another process stored the same entry first
        tmp = None
        old = sorted((p for p in entry.parent.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime_ns, reverse=True)[KEEP:]
        for p in old:
            shutil.rmtree(p, ignore_errors=True)
    except (OSError, TypeError, ValueError):
        pass
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


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


def _decode(value, entry: Path):
    """_decode rebuilds what _encode wrote, mapping the arrays from the entry's ``.npy`` files."""
    if isinstance(value, dict):
        if "@array" in value:
            name = value["@array"]
            if "/" in name or name.startswith("."):
                raise ValueError("bad array name")
            # A plain ndarray over the mapping: numpy.memmap's subclass would leak into every result.
            return np.asarray(np.load(entry / f"{name}.npy", mmap_mode="r", allow_pickle=False))
        if "@class" in value:
            cls = _CLASSES[value["@class"]]
            return cls(**{k: _decode(v, entry) for k, v in value["fields"].items()})
        if "@tuple" in value:
            return tuple(_decode(v, entry) for v in value["@tuple"])
        if "@dict" in value:
            return value["@dict"]
        raise ValueError("unknown node")
    return value
