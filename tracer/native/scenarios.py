"""scenarios are the named workloads behind ``gctrace record``.

Each one drives a Go 1.19 map on the tracer's heap, passes named points
("phases"), and writes the dump at the point ``at`` names (default: ``end``,
after the last collection and the scavenger). Every scenario ends the same
way, so every one has the points ``mark_done`` (marking of its last cycle
finished, nothing swept yet: the dump's objects carry the collector's
``marked`` verdict), ``swept`` and ``end``.

- ``fill``: insert keys 0..n-1 (concurrent: the last cycle starts one
  insert before the map's last growth).
- ``fill-delete``: fill, then delete every key: the values die, the buckets
  stay (Go maps never shrink); GC, scavenge.
- ``clear``: fill, then clear the map (Go's mapclear keeps the bucket array).
- ``midgrow``: fill, then insert until the map is growing and stop there,
  with ``oldbuckets`` pinned.
- ``churn``: keep n/2 keys live while inserting new keys and deleting old
  ones, until deleted cells and fresh overflow buckets trigger Go's
  same-size growth.

With ``gc="concurrent"`` the last cycle starts before the scenario's last
mutation and runs interleaved with it (assists scan grey objects after each
map operation); the write barrier then keeps some dead objects marked
(floating garbage) and, when switched off, loses live ones.

With ``impl="swiss"`` (``gctrace record --map swiss``) every scenario runs
on Go 1.26's Swiss-table map (tracer/native/swiss.c) instead: ``clear`` is
``Map.Clear`` (every table kept, ``clear_seq`` incremented), ``midgrow``
stops right after the insert that split a table (a Swiss map grows one
table at a time, within one insert, so it is never caught half-way; the old
table and groups array are garbage from then on), and ``churn`` runs until
tombstones have made a table rehash.

The shape defaults to ``int64->*value`` (each elem points to a separately
allocated 64-byte value, so deletes free memory the scavenger can return);
``shape="int64->int64"`` gives pointer-free buckets.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from gctrace.errors import UsageError
from gctrace.progress import bar
from gctrace.tracer.native.binding import Runtime

COMMON_TAIL = ("mark_done", "swept", "end")

PHASES = {
    "fill": ("filled",) + COMMON_TAIL,
    "fill-delete": ("filled", "deleted") + COMMON_TAIL,
    "clear": ("filled", "cleared") + COMMON_TAIL,
    "midgrow": ("filled", "growing") + COMMON_TAIL,
    "churn": ("filled", "churned") + COMMON_TAIL,
}
"""PHASES lists each scenario's named points, in the order they are passed."""

BATCH = 8192


class _Stop(Exception):
    """_Stop ends a scenario once its dump is written."""


class _Run:
    """_Run carries one recording: the runtime, the map and the stopping point."""

    def __init__(self, name, rt, m, at, out, meta, progress, n):
        self.name, self.rt, self.m, self.at, self.out, self.meta = name, rt, m, at, out, meta
        self.progress = progress
        self.bar = None
        self.concurrent = rt.gc_mode == "concurrent"
        self.n = n
        self.ops = 0

    def point(self, phase):
        """point writes the dump and stops the scenario when phase is the requested one."""
        if phase == self.at:
            self.rt.dump(self.out, scenario=self.name, at=phase, **self.meta)
            raise _Stop

    def bar_open(self, total, desc):
        self.bar = bar(total, desc, self.progress, unit="op")

    def bar_update(self, k):
        self.ops += k
        self.bar.update(k)

    def bar_close(self):
        self.bar.close()

    def assign(self, keys, desc="insert"):
        """assign inserts keys in native batches, with a progress bar on a terminal."""
        self._batched(self.m.assign_many, keys, desc)

    def delete(self, keys, desc="delete"):
        """delete deletes keys in native batches, with a progress bar on a terminal."""
        self._batched(self.m.delete_many, keys, desc)

    def _batched(self, op, keys, desc):
        self.bar_open(len(keys), desc)
        for i in range(0, len(keys), BATCH):
            chunk = keys[i:i + BATCH]
            op(chunk)
            self.bar_update(len(chunk))
        self.bar_close()

    def begin_last_cycle(self, ops):
        """begin_last_cycle starts the concurrent cycle that overlaps the next ops map operations.

        The assist rate spreads the marking of the live objects over those
        operations, so the marker and the mutator really interleave.
        """
        if not self.concurrent:
            return
        self.rt.gc_start()
        live = self.rt.stats()["objects"]
        self.rt.set_mark_rate(max(1, math.ceil(live / max(1, ops))))

    def finish(self):
        """finish ends the scenario: the last cycle's mark, its sweep, the scavenger."""
        if self.rt.phase == "off":
            self.rt.gc_start()
        self.rt.gc_mark_finish()
        self.point("mark_done")
        self.rt.gc_sweep()
        if self.concurrent:
            # The floating garbage of the overlapped cycle goes in the next one.
            self.rt.gc()
        self.point("swept")
        self.rt.scavenge()
        self.point("end")


def _fill(run, n):
    run.assign(np.arange(n, dtype=np.int64), "fill")
    run.point("filled")


def _last_growth_start(n, impl="classic"):
    """_last_growth_start returns the count after which the last insert before n grows the map.

    For a Swiss map the counts are known up to the first split (896 full
    slots of a 1024-slot table); beyond it they depend on the hash, and the
    first split is taken.
    """
    if impl == "swiss":
        starts = [t for t in (8, 14, 28, 56, 112, 224, 448, 896) if t < n]
        return starts[-1] if starts else 0
    t, b = 8, 1
    while 13 << (b - 1) < n:
        t, b = 13 << (b - 1), b + 1
    return t if t < n else 0


def _scenario_fill(run, n):
    if run.concurrent:
        # The cycle starts one insert before the map's last growth, so the
        # new bucket array is born black while old buckets wait to be scanned.
        t = _last_growth_start(n, run.m.impl)
        run.assign(np.arange(t, dtype=np.int64), "fill")
        run.begin_last_cycle(n - t)
        run.assign(np.arange(t, n, dtype=np.int64), "fill (marking)")
        run.point("filled")
    else:
        _fill(run, n)


def _scenario_fill_delete(run, n):
    _fill(run, n)
    run.begin_last_cycle(n)
    run.delete(np.arange(n, dtype=np.int64))
    run.point("deleted")


def _scenario_clear(run, n):
    _fill(run, n)
    run.begin_last_cycle(1)
    run.m.clear()
    run.point("cleared")


def _scenario_midgrow(run, n):
    _fill(run, n)
    run.begin_last_cycle(64)
    k = n
    if run.m.impl == "swiss":
        # Insert until a table splits; the dump shows the map right after it.
        splits = run.rt.stats()["swiss_splits"]
        while run.rt.stats()["swiss_splits"] == splits:
            run.m.assign_many(np.arange(k, k + 1, dtype=np.int64))
            k += 1
        run.point("growing")
        return
    while run.m.header().oldbuckets == 0 or run.m.header().B < 2:
        run.m.assign_many(np.arange(k, k + 1, dtype=np.int64))
        k += 1
    run.point("growing")


def _scenario_churn(run, n):
    live = max(16, n // 2)
    run.assign(np.arange(live, dtype=np.int64), "fill")
    run.point("filled")
    rt = run.rt
    swiss = run.m.impl == "swiss"

    def rehashes():
        st = rt.stats()
        return st["swiss_grows"] + st["swiss_splits"] if swiss else st["same_size_grows"]

    start = rehashes()
    nxt, limit = live, live + 64 * max(n, 1024)
    run.bar_open(None, "churn")
    # Insert one new key and delete the oldest until a same-size growth has
    # started and finished (a Swiss table: tombstones made it rehash), or a
    # generous limit is reached.
    while nxt < limit:
        keys = np.arange(nxt, nxt + 1024, dtype=np.int64)
        run.m.assign_many(keys)
        run.m.delete_many(keys - live)
        nxt += 1024
        run.bar_update(2048)
        if rehashes() > start and (swiss or run.m.header().oldbuckets == 0):
            break
    run.bar_close()
    run.begin_last_cycle(2048)
    keys = np.arange(nxt, nxt + 1024, dtype=np.int64)
    run.m.assign_many(keys)
    run.m.delete_many(keys - live)
    run.point("churned")


_SCENARIOS = {
    "fill": _scenario_fill,
    "fill-delete": _scenario_fill_delete,
    "clear": _scenario_clear,
    "midgrow": _scenario_midgrow,
    "churn": _scenario_churn,
}


def record_scenario(name, out_path, n=10000, madvise=None, gc="stw", seed=1, at=None, barrier=True,
                    progress=False, shape="int64->*value", record=True, gogc=100, check=False,
                    impl="classic", arena_bytes=0):
    """record_scenario runs scenario name on a map of impl ("classic" or "swiss") and writes its dump to out_path.

    It returns a short summary (a dict) for the CLI to print, and raises
    UsageError for an unknown scenario or phase.
    """
    if name not in _SCENARIOS:
        raise UsageError(f"unknown scenario {name!r}: use one of {', '.join(_SCENARIOS)}")
    phases = PHASES[name]
    at = at or "end"
    if at not in phases:
        raise UsageError(f"scenario {name} has no phase {at!r}: use one of {', '.join(phases)}")
    if isinstance(barrier, str):
        if barrier not in ("on", "off"):
            raise UsageError(f"unknown --barrier {barrier!r}: use on or off")
        barrier = barrier == "on"
    n = int(n)
    if n < 0:
        raise UsageError(f"--n must be >= 0, not {n}")
    out_path = Path(out_path)
    base = out_path.name[:-3] if out_path.name.endswith(".gz") else out_path.name
    if not base.endswith((".json", ".jsonl")):
        raise UsageError(f"{out_path}: a dump is named .json, .jsonl, .json.gz or .jsonl.gz")
    if not out_path.parent.is_dir():
        raise UsageError(f"{out_path}: cannot write the dump: no directory {out_path.parent}")
    t0 = time.perf_counter()
    with Runtime(seed=seed, madvise=madvise, gc=gc, barrier=barrier, record=record, gogc=gogc,
                 check=check, arena_bytes=arena_bytes) as rt:
        m = rt.make_map(shape, root="main.m", impl=impl)
        meta = {"scenario_n": n, "shape": shape, "map": impl}
        run = _Run(name, rt, m, at, out_path, meta, progress, n)
        try:
            _SCENARIOS[name](run, n)
            run.finish()
        except _Stop:
            pass
        finally:
            run.bar_close()
        h = m.header()
        st = rt.stats()
    if impl == "swiss":
        layout = {"map": impl, "count": h.count, "dir_len": h.dir_len, "tables": h.tables,
                  "capacity": h.capacity, "clear_seq": h.clear_seq,
                  "table_grows": st["swiss_grows"], "table_splits": st["swiss_splits"]}
    else:
        layout = {"map": impl, "count": h.count, "B": h.B, "growing": h.oldbuckets != 0,
                  "same_size_grows": st["same_size_grows"]}
    return {
        "scenario": name,
        "at": at,
        "dump": str(out_path),
        "bytes": out_path.stat().st_size if out_path.is_file() else "(not a regular file)",
        "n": n,
        "shape": shape,
        "gc": gc,
        "barrier": "on" if barrier else "off",
        "madvise": st["advice"],
        "seed": seed,
        **layout,
        "objects": st["objects"],
        "heap_pages": st["heap_pages"],
        "released_bytes": st["released_bytes"],
        "gc_cycles": st["gc_cycles"],
        "events": st["events"],
        "seconds": round(time.perf_counter() - t0, 3),
    }
