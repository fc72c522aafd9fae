"""snapshot_bench measures `gctrace snapshot` on a running Go program with a big heap: the pause and the tool's memory.

It runs fixtures/go/snapshot's snapdemo (the committed Go 1.26 build) with
``-grow MiB`` (that many MiB of 64-byte linked objects, plus the slice that
holds them), then snapshots it with the CLI in a child process, ``--runs``
times, and prints for each: the pause the target was stopped for, the bytes
read, the snapshot's size, the wall time of the whole command, the tool's
peak RSS (from wait4) and that peak over the target's RSS. The heap streams
to a spill file beside the snapshot, so the peak should not grow with the
heap. With ``--import`` it also imports the snapshot (`gctrace import
go-snapshot`) and prints that command's wall time and peak RSS.
Target: a pause under 2 s for a 1 GiB heap, the tool's memory well under the
heap. Not asserted.

    .venv/bin/python bench/snapshot_bench.py [--mib 1024] [--runs 1] [--import] [--dir out/bench]
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "fixtures", "go", "snapshot", "go1.26", "snapdemo.gz")


def run(argv: list) -> tuple[str, float, int]:
    """run runs a gctrace command; returns its stderr, wall time (s) and peak RSS (KiB), or exits if it failed."""
    t0 = time.perf_counter()
    tool = subprocess.Popen([sys.executable, "-m", "gctrace", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    err = tool.stderr.read()
    _, status, usage = os.wait4(tool.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"gctrace {argv[0]} failed: {err}")
    return err, wall, usage.ru_maxrss


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=1024, help="MiB of small objects the target allocates")
    ap.add_argument("--runs", type=int, default=1, help="snapshots of the same target, one after the other")
    ap.add_argument("--import", dest="then_import", action="store_true",
                    help="also import the last snapshot and print the import's time and peak RSS")
    ap.add_argument("--dir", default=None, help="where the snapshot is written (default: a temporary directory)")
    args = ap.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="gctrace-snapbench-")
    os.makedirs(work, exist_ok=True)
    exe = os.path.join(work, "snapdemo")
    with gzip.open(DEMO) as f, open(exe, "wb") as out:
        out.write(f.read())
    os.chmod(exe, 0o755)
    snap, dump = os.path.join(work, "bench.snap"), os.path.join(work, "bench.jsonl")
    target = subprocess.Popen([exe, "-grow", str(args.mib)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert target.stdout.readline() == b"ready\n"
        with open(f"/proc/{target.pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        for _ in range(args.runs):
            err, wall, peak = run(["snapshot", str(target.pid), "-o", snap])
            pause = float(re.search(r"pause: ([\d.]+) ms", err).group(1))
            read = int(re.search(r"read: (\d+) B", err).group(1))
            print(f"snapshot of a {args.mib} MiB heap (target RSS {rss / 1024:.0f} MiB): pause {pause:.0f} ms "
                  f"(target < 2000 ms), read {read / 2**20:.0f} MiB, file {os.path.getsize(snap) / 2**20:.1f} MiB, "
                  f"command {wall:.1f} s, tool peak RSS {peak / 1024:.0f} MiB = {peak / rss:.2f} of the target's",
                  flush=True)
        if args.then_import:
            _, wall, peak = run(["import", "go-snapshot", snap, "--binary", exe, "-o", dump, "-q"])
            print(f"import go-snapshot of it: {wall:.1f} s, peak RSS {peak / 1024:.0f} MiB = {peak / rss:.2f} of "
                  f"the target's, dump {os.path.getsize(dump) / 2**20:.0f} MiB")
    finally:
        target.kill()
        target.wait()
        for p in (snap, dump):
            if os.path.exists(p):
                os.unlink(p)
        if args.dir is None:
            shutil.rmtree(work)  # the temporary directory made above, with its copy of snapdemo


if __name__ == "__main__":
    main()
