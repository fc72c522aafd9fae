"""snapshot_bench measures `gctrace snapshot` on a running Go program with a big heap: the pause and the tool's memory.

It runs fixtures/go/snapshot's snapdemo (the committed Go 1.26 build) with
``-grow MiB`` (that many MiB of 64-byte linked objects, plus the slice that
holds them), then snapshots it with the CLI in a child process and prints
the pause the target was stopped for, the bytes read, the snapshot's size,
the wall time of the whole command and the tool's peak RSS (from wait4),
once by default (the heap is held in the tool's memory) and once with
--low-memory (the heap spills to a file while the target is stopped).
Target: a pause under 2 s for a 1 GiB heap. Not asserted.

    .venv/bin/python bench/snapshot_bench.py [--mib 1024] [--dir out/bench]
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "fixtures", "go", "snapshot", "go1.26", "snapdemo.gz")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=1024, help="MiB of small objects the target allocates")
    ap.add_argument("--dir", default=None, help="where the snapshot is written (default: a temporary directory)")
    args = ap.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="gctrace-snapbench-")
    os.makedirs(work, exist_ok=True)
    exe = os.path.join(work, "snapdemo")
    with gzip.open(DEMO) as f, open(exe, "wb") as out:
        out.write(f.read())
    os.chmod(exe, 0o755)
    snap = os.path.join(work, "bench.snap")
    target = subprocess.Popen([exe, "-grow", str(args.mib)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert target.stdout.readline() == b"ready\n"
        with open(f"/proc/{target.pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        for flags in ([], ["--low-memory"]):
            t0 = time.perf_counter()
            tool = subprocess.Popen([sys.executable, "-m", "gctrace", "snapshot", str(target.pid), "-o", snap,
                                     *flags], stderr=subprocess.PIPE, text=True)
            err = tool.stderr.read()
            _, status, usage = os.wait4(tool.pid, 0)
            wall = time.perf_counter() - t0
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"snapshot failed: {err}")
            pause = re.search(r"pause: ([\d.]+) ms", err).group(1)
            read = re.search(r"read: (\d+) B", err).group(1)
            print(f"snapshot {' '.join(flags) or '(default)'} of a {args.mib} MiB heap (target RSS {rss / 1024:.0f} "
                  f"MiB): pause {float(pause):.0f} ms (target < 2000 ms), read {int(read) / 2**20:.0f} MiB, "
                  f"file {os.path.getsize(snap) / 2**20:.1f} MiB, command {wall:.1f} s, "
                  f"tool peak RSS {usage.ru_maxrss / 1024:.0f} MiB")
    finally:
        target.kill()
        target.wait()
        if os.path.exists(snap):
            os.unlink(snap)


if __name__ == "__main__":
    main()
