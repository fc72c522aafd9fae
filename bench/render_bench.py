"""render_bench times ``gctrace render`` on a synthetic 1M-object dump (target: < 10 s).

The dump is generated here, as JSON Lines written with orjson: NMAPS Go-style
maps (hmap, a bucket array of 2^B buckets of 144 B, overflow buckets chained
off one bucket in 64, one 48-byte value object per occupied slot), the old
bucket array and values of a map that was replaced (unreachable: garbage), and
page runs covering the heap with some free and released runs between spans.

    python bench/render_bench.py [--objects 1000000] [--keep DIR]

It prints the size of the dump and the seconds spent generating, loading,
analyzing, selecting the subgraph and running dot; the target is on what
``render`` adds once the heap is loaded (analyze + select + dot), and the
end-to-end time with the load is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import orjson

PAGE = 4096
BASE = 0xC000000000
BUCKETSIZE = 144  # Go's bmap for map[int64]*T: 8 tophash + 64 keys + 64 elems + overflow ptr
VALUE = 48


def synth_dump(path: str, n_objects: int = 1_000_000, nmaps: int = 4, seed: int = 1) -> dict:
    """synth_dump writes a JSON Lines dump of about ``n_objects`` objects and returns its shape."""
    rng = np.random.default_rng(seed)
    per_map = n_objects // (nmaps + 1)  # the last share goes to the replaced, unreachable map
    addr = BASE
    lines = [orjson.dumps({"format": "gctrace.dump", "version": 1,
                           "meta": {"page_size": PAGE, "ptr_size": 8, "source": "synthetic",
                                    "madvise": "free", "note": "bench/render_bench.py"}})]
    runs = []  # (first page, n, resident, state)
    count = 0

    def span(nbytes):
        """span reserves page-aligned room for nbytes and records a used run; returns its address."""
        nonlocal addr
        start = addr
        pages = -(-nbytes // PAGE)
        runs.append((start // PAGE, pages, True, "used"))
        addr += pages * PAGE
        # A free and a released run after every span, as a scavenged heap has.
        runs.append((addr // PAGE, 2, True, "free"))
        runs.append((addr // PAGE + 2, 3, bool(rng.integers(2)), "released"))
        addr += 5 * PAGE
        return start

    for m in range(nmaps + 1):
        reachable = m < nmaps
        nvals = per_map - 1
        B = max(int(np.ceil(np.log2(max(nvals / 6.5, 1)))), 0)
        nb = 1 << B
        novf = nb // 64
        hm = span(48)
        arr = span(nb * BUCKETSIZE)
        ovf = span(novf * BUCKETSIZE)
        nvals -= 1 + 1 + novf
        vals = span(nvals * VALUE)
        # Slots: spread the values over buckets then overflow buckets, 8 a bucket at most.
        holders = np.concatenate([arr + BUCKETSIZE * np.arange(nb), ovf + BUCKETSIZE * np.arange(novf)])
        fill = np.minimum(np.full(len(holders), nvals // len(holders)), 8)
        fill[: nvals - int(fill.sum())] += 1
        fill = np.minimum(fill, 8)
        nvals = int(fill.sum())
        val_addr = vals + VALUE * np.arange(nvals)
        owner = np.repeat(np.arange(len(holders)), fill)
        slot_in = np.arange(nvals) - np.repeat(np.cumsum(fill) - fill, fill)
        field = np.where(owner < nb, holders[owner] - arr, 0) + 8 + 64 + 8 * slot_in
        # Overflow chains: buckets 0, 64, 128, ... each get one overflow bucket.
        chain_from = np.arange(novf) * 64
        ptrs_arr = [[] for _ in range(nb)]
        ptrs_ovf = [[] for _ in range(novf)]
        for o, f, v in zip(owner.tolist(), field.tolist(), val_addr.tolist()):
            (ptrs_arr[o] if o < nb else ptrs_ovf[o - nb]).append([f, v])
        arr_ptrs = [p for b in range(nb) for p in ptrs_arr[b]]
        for k, b in enumerate(chain_from.tolist()):
            arr_ptrs.append([b * BUCKETSIZE + BUCKETSIZE - 8, ovf + k * BUCKETSIZE])
        arr_ptrs.sort()
        lines.append(orjson.dumps({"object": {"addr": hm, "size": 48, "kind": "hmap", "ptrs": [[16, arr]]}}))
        lines.append(orjson.dumps({"object": {"addr": arr, "size": nb * BUCKETSIZE, "kind": "buckets",
                                              "ptrs": arr_ptrs, "slots": fill[:nb].tolist()}}))
        for k in range(novf):
            lines.append(orjson.dumps({"object": {
                "addr": ovf + k * BUCKETSIZE, "size": BUCKETSIZE, "kind": "overflow",
                "ptrs": ptrs_ovf[k],
                "slots": [int(fill[nb + k])]}}))
        va = val_addr.tolist()
        for v in va:
            lines.append(b'{"object":{"addr":%d,"size":%d,"kind":"value"}}' % (v, VALUE))
        count += 2 + novf + nvals
        lines.append(orjson.dumps({"map": {"hmap": hm, "B": B, "count": nvals, "buckets": arr, "oldbuckets": 0,
                                           "nevacuate": 0, "bucketsize": BUCKETSIZE, "noverflow": novf}}))
        if reachable:
            lines.append(orjson.dumps({"root": {"name": f"main.cache{m}", "kind": "global", "target": hm}}))
    for first, n, res, state in runs:
        lines.append(orjson.dumps({"page": {"addr": first * PAGE, "n": n, "resident": res, "state": state}}))
    with open(path, "wb") as f:
        # The end record: how many records of each section the lines above hold.
        counts = {s: sum(line.startswith(b'{"%s"' % s[:-1].encode()) for line in lines)
                  for s in ("objects", "roots", "pages", "maps", "events")}
        lines.append(orjson.dumps({"end": counts}))
        f.write(b"\n".join(lines) + b"\n")
    return {"objects": count, "maps": nmaps + 1, "bytes": os.path.getsize(path)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--objects", type=int, default=1_000_000)
    p.add_argument("--max-nodes", type=int, default=None, help="default: render's own default")
    p.add_argument("--keep", help="write the dump and the SVG into this directory and keep them")
    args = p.parse_args(argv)

    from gctrace.analysis.analyze import analyze
    from gctrace.analysis.load import load_dump
    from gctrace.analysis import render

    max_nodes = args.max_nodes or render.DEFAULT_MAX_NODES
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or tmp
        os.makedirs(where, exist_ok=True)
        dump = os.path.join(where, "synth_1m.jsonl")
        t = time.perf_counter()
        shape = synth_dump(dump, args.objects)
        print(f"generate   {time.perf_counter() - t:6.2f} s  {shape['objects']} objects, "
              f"{shape['maps']} maps, {shape['bytes'] / 2**20:.0f} MiB JSON Lines")
        t0 = time.perf_counter()
        heap = load_dump(dump)
        t1 = time.perf_counter()
        a = analyze(heap)
        t2 = time.perf_counter()
        graph = render.build_graph(a, render.RenderOptions(max_nodes=max_nodes))
        t3 = time.perf_counter()
        svg = render.to_bytes(graph, "svg")
        t4 = time.perf_counter()
        with open(os.path.join(where, "synth_1m.svg"), "wb") as f:
            f.write(svg)
        print(f"load       {t1 - t0:6.2f} s")
        print(f"analyze    {t2 - t1:6.2f} s")
        print(f"select     {t3 - t2:6.2f} s  {graph.node_count} nodes (max {max_nodes}), {graph.edge_count} edges")
        print(f"dot        {t4 - t3:6.2f} s  {len(svg) / 1024:.0f} KiB SVG")
        render_s = t4 - t1
        print(f"render     {render_s:6.2f} s  analyze + select + dot on the loaded heap (target < 10 s): "
              f"{'ok' if render_s < 10 else 'SLOW'}")
        print(f"end to end {t4 - t0:6.2f} s  with the load (the loader's JSON Lines parse dominates)")
    return 0 if render_s < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
