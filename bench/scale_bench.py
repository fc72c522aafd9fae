"""scale_bench: how gctrace analyze scales to 1M and 10M objects (issue: Scale).

Generates synthetic dumps (about 2 pointers an object, maps among them) in
both forms, runs ``gctrace analyze --json`` on each in a fresh process (twice: the
second run reads the heap cache the first one wrote), and
prints wall time, peak RSS and objects per second per step. At 1M it also
runs the naive networkx pipeline and, on the same arrays, a plain C BFS (the
speed limit of the mark). Figures go to bench/results-scale.md, which the
README quotes. Targets are printed beside the figures, never asserted.

    python bench/scale_bench.py            # 1M and 10M
    python bench/scale_bench.py --sizes 1  # 1M only (quick)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

from gctrace.analysis.heapcache import RACY_NS

HERE = Path(__file__).resolve().parent
BASE = 0xC000000000
PAGE = 4096
BUCKETSIZE = 144
MAPS = 16
MAP_B = 8


def generate(n: int, seed: int = 7):
    """generate yields the records of a synthetic n-object dump: (section, record) pairs."""
    rng = np.random.default_rng(seed)
    sizes = rng.choice(np.array([16, 32, 48, 64, 96, 128]), size=n)
    map_objs = 2 * MAPS  # an hmap and its bucket array per map
    bucket_bytes = (1 << MAP_B) * BUCKETSIZE
    sizes[:map_objs:2] = 48
    sizes[1:map_objs:2] = bucket_bytes
    addr = BASE + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    targets = rng.integers(0, n, size=(n, 2))
    interior = rng.integers(0, 8, size=(n, 2))
    external = rng.random((n, 2)) < 0.01
    tgt = addr[targets] + interior
    tgt[external] = 0x7F0000000000 + 8
    kinds = np.array(["other", "value", "key"])[rng.integers(0, 3, size=n)]
    for i in range(n):
        a = int(addr[i])
        if i < map_objs and i % 2 == 0:
            rec = {"addr": a, "size": 48, "kind": "hmap", "ptrs": [[16, int(addr[i + 1])]]}
        elif i < map_objs:
            rec = {"addr": a, "size": bucket_bytes, "kind": "buckets",
                   "slots": rng.integers(0, 9, size=1 << MAP_B).tolist()}
        else:
            size = int(sizes[i])
            rec = {"addr": a, "size": size, "kind": str(kinds[i]),
                   "ptrs": [[0, int(tgt[i, 0])], [8, int(tgt[i, 1])]] if size >= 16 else []}
        yield "objects", rec
    for k, r in enumerate(rng.integers(0, n, size=1000)):
        yield "roots", {"name": f"main.g{k}", "kind": "global", "target": int(addr[r])}
    end = int(addr[-1] + sizes[-1])
    first, last = BASE // PAGE, (end + PAGE - 1) // PAGE
    p = first
    while p < last:
        run = int(rng.integers(1, 64))
        yield "pages", {"addr": p * PAGE, "n": min(run, last - p), "resident": bool(rng.random() < 0.95),
                        "state": "used"}
        p += run
    yield "pages", {"addr": last * PAGE, "n": 4096, "resident": True, "state": "released"}
    for k in range(MAPS):
        yield "maps", {"hmap": int(addr[2 * k]), "B": MAP_B, "count": 1000, "buckets": int(addr[2 * k + 1]),
                       "oldbuckets": 0, "nevacuate": 0, "bucketsize": BUCKETSIZE}


META = {"page_size": PAGE, "ptr_size": 8, "source": "synthetic", "madvise": "free"}
SINGULAR = {"objects": "object", "roots": "root", "pages": "page", "maps": "map"}
END_KEYS = ("objects", "roots", "pages", "maps", "events")  # the end record's counts (docs/dump-format.md)


def write_jsonl(path: Path, n: int):
    with open(path, "wb") as f:
        f.write(orjson.dumps({"format": "gctrace.dump", "version": 1, "meta": META}) + b"\n")
        counts = dict.fromkeys(END_KEYS, 0)
        for section, rec in generate(n):
            f.write(orjson.dumps({SINGULAR[section]: rec}) + b"\n")
            counts[section] += 1
        f.write(orjson.dumps({"end": counts}) + b"\n")


def write_document(path: Path, n: int):
    with open(path, "wb") as f:
        f.write(b'{"format":"gctrace.dump","version":1,"meta":' + orjson.dumps(META))
        current, counts = None, dict.fromkeys(END_KEYS, 0)
        for section, rec in generate(n):
            if section != current:
                f.write(b"]" if current else b"")
                f.write(b',"' + section.encode() + b'":[')
                current, sep = section, b""
            f.write(sep + orjson.dumps(rec))
            sep = b",\n"
            counts[section] += 1
        f.write(b'],"end":' + orjson.dumps(counts) + b"}\n")


def child_peak(cmd) -> tuple[float, float, str]:
    """child_peak runs cmd, returning (wall seconds, the child's peak RSS in MB, its stdout)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed: {err.decode()[-800:]}")
    return wall, usage.ru_maxrss / 1024, out.decode()


STEPS = r"""
import json, sys, time
t0 = time.perf_counter()
from gctrace.analysis.load import load_dump
from gctrace.analysis.mark import mark
from gctrace.analysis.pages import classify
from gctrace.analysis.maps import audit, orphans
from gctrace.analysis.report import json_report
from gctrace.analysis.analyze import analyze
t = {}
s = time.perf_counter(); h = load_dump(sys.argv[1]); t["load"] = time.perf_counter() - s
from gctrace.analysis import heapgraph
from gctrace.analysis.mark import reach_objects, resolve
REPS = 7 if h.n_objects <= 2_000_000 else 3
def best(step):
    runs = []
    for _ in range(REPS):
        s = time.perf_counter(); out = step(); runs.append(time.perf_counter() - s)
    return min(runs), out
# The mark's steps, each the best of REPS runs, as the C BFS: single runs on this VM vary by up to 2x
# (other tenants), and the least disturbed run is the one that repeats.
t["resolve"], (dest, root_dest) = best(lambda: resolve(h))
t["bfs"], _ = best(lambda: reach_objects(h, dest, root_dest))
t["mark"], m = best(lambda: mark(h))
s = time.perf_counter(); pc = classify(h, m.reachable); t["pages"] = time.perf_counter() - s
s = time.perf_counter(); au = audit(h, m.reachable); orphans(h, m.reachable); t["maps"] = time.perf_counter() - s
a = analyze(h)
s = time.perf_counter(); json_report(a); t["report"] = time.perf_counter() - s
from gctrace.analysis.dominators import heap_dominators
s = time.perf_counter(); heap_dominators(h, m); t["retained_all"] = time.perf_counter() - s
print(json.dumps({"steps": t, "objects": h.n_objects, "pointers": int(len(h.ptr_off)),
                  "bfs": "gctrace's C BFS" if heapgraph.available() else "scipy csgraph BFS",
                  "reachable": int(m.reachable.sum())}))
"""

NAIVE = r"""
import sys, time, networkx as nx
from gctrace.analysis.load import load_dump
from gctrace.analysis.mark import followed_edges, resolve
h = load_dump(sys.argv[1])
dest, roots = resolve(h)
src, dst = followed_edges(h, dest)
s = time.perf_counter()
g = nx.DiGraph()
g.add_nodes_from(range(h.n_objects))
g.add_edges_from(zip(src.tolist(), dst.tolist()))
g.add_edges_from(("super", r) for r in roots[roots >= 0].tolist())
seen = nx.descendants(g, "super")
print(time.perf_counter() - s, len(seen))
"""

C_BFS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
/* cbfs: BFS over CSR arrays (int64 indptr, int32 indices, int64 roots) read from files. */
static void *slurp(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb"); fseek(f, 0, SEEK_END); *n = ftell(f); rewind(f);
    void *b = malloc(*n ? *n : 1); if (fread(b, 1, *n, f) != *n) exit(1); fclose(f); return b;
}
int main(int argc, char **argv) {
    size_t ni, nx, nr;
    int64_t *indptr = slurp(argv[1], &ni); int32_t *idx = slurp(argv[2], &nx); int64_t *roots = slurp(argv[3], &nr);
    int64_t n = ni / 8 - 1; nr /= 8;
    double runs[7]; int64_t t = 0;
    for (int run = 0; run < 7; run++) {  /* the best of 7, like the Python steps */
        struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
        uint8_t *seen = calloc(n, 1); int64_t *q = malloc(n * 8); int64_t h = 0; t = 0;
        for (size_t i = 0; i < nr; i++) if (roots[i] >= 0 && !seen[roots[i]]) { seen[roots[i]] = 1; q[t++] = roots[i]; }
        while (h < t) { int64_t v = q[h++]; for (int64_t e = indptr[v]; e < indptr[v + 1]; e++) { int32_t w = idx[e]; if (!seen[w]) { seen[w] = 1; q[t++] = w; } } }
        clock_gettime(CLOCK_MONOTONIC, &b);
        runs[run] = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
        free(seen); free(q);
    }
    double min = runs[0];
    for (int run = 1; run < 7; run++) min = runs[run] < min ? runs[run] : min;
    printf("%f %lld\n", min, (long long)t);
    return 0;
}
"""

EXPORT = r"""
import sys, numpy as np
from gctrace.analysis.load import load_dump
from gctrace.analysis.mark import followed_edges, resolve
h = load_dump(sys.argv[1])
dest, roots = resolve(h)
src, dst = followed_edges(h, dest)  # in CSR form below
indptr = np.zeros(h.n_objects + 1, np.int64)
np.cumsum(np.bincount(src, minlength=h.n_objects), out=indptr[1:])
d = sys.argv[2]
indptr.tofile(d + "/indptr"); dst.astype(np.int32).tofile(d + "/indices")
roots.astype(np.int64).tofile(d + "/roots")
"""


def fmt(x: float) -> str:
    return f"{x:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,10", help="object counts in millions, comma-separated")
    ap.add_argument("--dir", default=None, help="where to write the dumps (default: a temp dir)")
    args = ap.parse_args()
    py = sys.executable
    gctrace = [py, "-m", "gctrace"]
    work = Path(args.dir or tempfile.mkdtemp(prefix="gctrace-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    lines = ["# Scale benchmark", "", f"Machine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}; "
             f"`python bench/scale_bench.py --sizes {args.sizes}`", "",
             "| dump | form | size | end to end | peak RSS | target | again, from the heap cache | load | "
             "mark (resolve + BFS) | pages | maps | JSON report (incl. per-map retained) | "
             "retained sizes, every object | objects/s (load) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    extra = []
    for millions in [int(x) for x in args.sizes.split(",")]:
        n = millions * 1_000_000
        for form, writer, ext in (("JSON Lines", write_jsonl, "jsonl"), ("document", write_document, "json")):
            path = work / f"synthetic-{millions}M.{ext}"
            if not path.exists():
                t = time.perf_counter()
                writer(path, n)
                print(f"generated {path.name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            out = work / "report.json"
            # The first run parses and fills an empty heap cache (analysis/heapcache.py); the second reads it. A
            # dump changed within RACY_NS of its parse is never cached (a same-tick rewrite keeps every stat field),
            # so a dump written just now waits until it is that old, as any dump a user analyzes already is.
            age = time.time_ns() - path.stat().st_ctime_ns
            if age < RACY_NS:
                time.sleep((RACY_NS - age) / 1e9 + 0.1)
            cache = work / "heapcache"
            shutil.rmtree(cache, ignore_errors=True)
            os.environ["GCTRACE_CACHE_DIR"] = str(cache)
            wall, peak, _ = child_peak(gctrace + ["analyze", "--json", "-q", str(path), "-o", str(out)])
            again, again_peak, _ = child_peak(gctrace + ["analyze", "--json", "-q", str(path), "-o", str(out)])
            shutil.rmtree(cache, ignore_errors=True)
            _, _, steps_out = child_peak([py, "-c", STEPS, str(path)])
            st = json.loads(steps_out)
            s = st["steps"]
            target = {(1, "JSON Lines"): "< 4 s", (1, "document"): "< 4 s",
                      (10, "JSON Lines"): "< 30 s, < 2 GB", (10, "document"): "< 60 s, < 4 GB"}.get((millions, form), "")
            row = (f"| {millions}M objects, {st['pointers'] / 1e6:.1f}M pointers | {form} | "
                   f"{path.stat().st_size / 2**20:.0f} MiB | {fmt(wall)} s | {peak:.0f} MB | {target} | "
                   f"{fmt(again)} s, {again_peak:.0f} MB | "
                   f"{fmt(s['load'])} s | {fmt(s['mark'])} s ({fmt(s['resolve'])} + {fmt(s['bfs'])}) | "
                   f"{fmt(s['pages'])} s | {fmt(s['maps'])} s | {fmt(s['report'])} s | {fmt(s['retained_all'])} s | "
                   f"{st['objects'] / s['load'] / 1e6:.2f}M |")
            print(row)
            lines.append(row)
            if form == "JSON Lines" and millions == 1:
                mark_s, bfs_s = s["mark"], s["bfs"]
                nwall, npeak, nout = child_peak([py, "-c", NAIVE, str(path)])
                naive_s = float(nout.split()[0])
                cdir = work / "cbfs"
                cdir.mkdir(exist_ok=True)
                (cdir / "cbfs.c").write_text(C_BFS)
                subprocess.run(["cc", "-O2", "-o", str(cdir / "cbfs"), str(cdir / "cbfs.c")], check=True)
                child_peak([py, "-c", EXPORT, str(path), str(cdir)])
                cout = subprocess.run([str(cdir / "cbfs"), str(cdir / "indptr"), str(cdir / "indices"),
                                       str(cdir / "roots")], capture_output=True, text=True, check=True).stdout
                c_s, c_count = float(cout.split()[0]), int(cout.split()[1])
                if c_count != st["reachable"]:
                    raise SystemExit(f"the C BFS reached {c_count} objects, gctrace {st['reachable']}")
                extra += [f"- 1M mark (best of 7 runs each): gctrace {fmt(mark_s)} s (resolving interior pointers to "
                          f"objects {fmt(s['resolve'])} s, {st['bfs']} {fmt(bfs_s)} s); naive networkx DiGraph + "
                          f"descendants {fmt(naive_s)} s (process peak {npeak:.0f} MB) = "
                          f"{naive_s / mark_s:.0f}x slower than gctrace's whole mark; plain C BFS over the same CSR "
                          f"{c_s:.3f} s: gctrace's BFS is {bfs_s / c_s:.1f}x it, the whole mark "
                          f"{mark_s / c_s:.1f}x (target: within 3x)."]
                print(extra[-1])
    text = "\n".join(lines + [""] + extra) + "\n"
    (HERE / "results-scale.md").write_text(text)
    print(f"wrote {HERE / 'results-scale.md'}")


if __name__ == "__main__":
    main()
