"""record_bench measures what recording costs: ns per insert with and without the event log,
for the classic and the Swiss map, and dump size per million entries. It prints; it asserts nothing.

    python bench/record_bench.py [--n 1000000]

The target is recording < 3x unrecorded. Inserts run in native batches
(Map.assign_many) so the figures are the core's, not ctypes'.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from gctrace.tracer.native.binding import Runtime


def time_inserts(n, shape, record, seed=1, impl="classic"):
    """time_inserts returns (ns per insert, events recorded) for n fresh inserts into a map of impl."""
    keys = np.arange(n, dtype=np.int64)
    with Runtime(seed=seed, record=record) as rt:
        m = rt.make_map(shape, impl=impl)
        t0 = time.perf_counter_ns()
        for i in range(0, n, 1 << 16):
            m.assign_many(keys[i:i + (1 << 16)])
        dt = time.perf_counter_ns() - t0
        return dt / n, rt.stats()["events"]


def dump_size(n, shape, suffix, record=True, impl="classic"):
    """dump_size returns (bytes, seconds) of a dump of a map of impl filled with n entries."""
    with tempfile.TemporaryDirectory() as d, Runtime(seed=1, record=record) as rt:
        m = rt.make_map(shape, impl=impl)
        m.assign_many(np.arange(n, dtype=np.int64))
        p = os.path.join(d, "d" + suffix)
        t0 = time.perf_counter()
        rt.dump(p)
        return os.path.getsize(p), time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each timing; the best is printed")
    ap.add_argument("--no-dumps", action="store_true", help="time the inserts only")
    args = ap.parse_args(argv)
    n = args.n
    print(f"inserts: {n:,} distinct int64 keys into a fresh map (GOGC=100, STW), best of {args.repeat}")
    for impl in ("classic", "swiss"):
        for shape in ("int64->int64", "int64->*value"):
            offs, ons = [], []
            for _ in range(args.repeat):  # alternated, so a burst of load on this shared machine hits both
                offs.append(time_inserts(n, shape, record=False, impl=impl)[0])
                ons.append(time_inserts(n, shape, record=True, impl=impl))
            off = min(offs)
            on, events = min(ons)
            print(f"  {impl:7s} {shape:14s} unrecorded {off:7.1f} ns/insert   recorded {on:7.1f} ns/insert"
                  f"   ratio {on / off:4.2f}x   ({events / n:.2f} events/insert)")
    if args.no_dumps:
        return
    print(f"dump size per million entries (scaled from {n:,}):")
    for impl in ("classic", "swiss"):
        for shape in ("int64->int64", "int64->*value"):
            for suffix, record in ((".jsonl", False), (".jsonl", True), (".jsonl.gz", True)):
                size, secs = dump_size(n, shape, suffix, record, impl=impl)
                label = f"{suffix}{' + events' if record else ' state only'}"
                print(f"  {impl:7s} {shape:14s} {label:24s} {size * 1e6 / n / 2**20:8.1f} MiB"
                      f"   written in {secs:5.2f} s")


if __name__ == "__main__":
    main()
