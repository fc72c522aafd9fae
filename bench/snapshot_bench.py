"""snapshot_bench measures `gctrace snapshot` on a running Go program with a big heap: the pause and the tool's memory.

It runs fixtures/go/snapshot's snapdemo (the committed Go 1.26 build) with
``-grow MiB`` (that many MiB of 64-byte linked objects, plus the slice that
holds them), then snapshots it with the CLI in a child process, ``--runs``
times, and prints for each: the pause the target was stopped for, the bytes
read, the snapshot's size, the wall time of the whole command, the tool's
peak RSS (from wait4) and that peak over the target's RSS. The heap streams
to a spill file beside the snapshot, so the peak should not grow with the
heap. With ``--import`` it also imports the snapshot (`gctrace import
go-snapshot`) and prints that command's wall time and peak RSS, and the
importer's alone (import_snapshot and write_dump in a child process, without
the CLI's read-back through the loader), its steps timed.
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


# The importer alone, steps timed (stderr: one "step: seconds" line each), as the CLI's import runs it.
IMPORTER = """
import sys, time
from gctrace.tracer.goheap import gosnapshot, goimport
from gctrace.tracer.goheap.gotypes import Binary
snap, exe, out = sys.argv[1:]
t = time.perf_counter()
def step(name):
    global t
    now = time.perf_counter()
    print(f"{name}: {now - t:.1f}", file=sys.stderr)
    t = now
to_heapdump = gosnapshot.to_heapdump
def timed(*a):
    step("read_snapshot")
    got = to_heapdump(*a)
    step("to_heapdump")
    return got
gosnapshot.to_heapdump = timed
b = Binary(exe)
doc = gosnapshot.import_snapshot(snap, b)
step("_build")
goimport.write_dump(doc, out)
step("write_dump")
b.close()
"""


def run(argv: list, must: bool = True) -> tuple[str, float, int, int]:
    """run runs a gctrace command (or, argv[0] being "-c", Python code); returns its stderr, wall time (s), peak
    RSS (KiB) and exit status, or exits if it failed and ``must``."""
    t0 = time.perf_counter()
    tool = subprocess.Popen([sys.executable, *(argv if argv[0] == "-c" else ["-m", "gctrace", *argv])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = tool.stderr.read()
    _, status, usage = os.wait4(tool.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and must:
        sys.exit(f"gctrace {argv[0]} failed: {err}")
    return err, wall, usage.ru_maxrss, code


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
            err, wall, peak, _ = run(["snapshot", str(target.pid), "-o", snap])
            pause = float(re.search(r"pause: ([\d.]+) ms", err).group(1))
            read = int(re.search(r"read: (\d+) B", err).group(1))
            print(f"snapshot of a {args.mib} MiB heap (target RSS {rss / 1024:.0f} MiB): pause {pause:.0f} ms "
                  f"(target < 2000 ms), read {read / 2**20:.0f} MiB, file {os.path.getsize(snap) / 2**20:.1f} MiB, "
                  f"command {wall:.1f} s, tool peak RSS {peak / 1024:.0f} MiB = {peak / rss:.2f} of the target's",
                  flush=True)
        if args.then_import:
            target.kill()  # (its memory is no use now, and the import's figures are the machine's alone)
            err, wall, peak, code = run(["-c", IMPORTER, snap, exe, dump])
            steps = ", ".join(line.replace(":", "") + " s" for line in err.splitlines() if re.match(r"\w+: [\d.]+$", line))
            print(f"importer alone (import_snapshot, write_dump): {wall:.1f} s ({steps}), peak RSS "
                  f"{peak / 1024:.0f} MiB = {peak / rss:.2f} of the target's, dump "
                  f"{os.path.getsize(dump) / 2**20:.0f} MiB" if code == 0 else f"importer failed: {err.strip()}",
                  flush=True)
            err, wall, peak, code = run(["import", "go-snapshot", snap, "--binary", exe, "-o", dump, "-q"], must=False)
            print(f"import go-snapshot of it: {wall:.1f} s, peak RSS {peak / 1024:.0f} MiB = {peak / rss:.2f} of "
                  f"the target's, dump {os.path.getsize(dump) / 2**20:.0f} MiB" if code == 0 else
                  f"import go-snapshot of it failed after {wall:.1f} s at a peak RSS of {peak / 1024:.0f} MiB: "
                  f"{err.strip()}")
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
