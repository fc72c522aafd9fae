"""Tests of `gctrace snapshot` (tracer/goheap/gosnapshot.py) against heap dumps the same program wrote at the same moment.

The program (fixtures/go/snapshot/main.go) writes a heap dump with
debug.WriteHeapDump on command and then blocks on stdin, allocating nothing:
the snapshot taken then must describe the heap the dump describes. The heap
dump is the independent answer: written by the Go runtime itself, under a
stopped world, with its own pointer bitmaps.
"""

import bisect
import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import pytest

from gctrace.atomicfile import scratch_dir
from gctrace.errors import OutputError
from gctrace.tracer.goheap import gosnapshot as gs
from gctrace.tracer.goheap.goheapdump import read_heapdump
from gctrace.tracer.goheap.goimport import import_heapdump
from gctrace.tracer.goheap.gotypes import Binary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "fixtures", "go", "snapshot")
VERSIONS = {"1.22": "1.22.10", "1.23": "1.23.9", "1.24": "1.24.11", "1.25": "1.25.5", "1.26": "1.26.6",
            "1.27": "1.27.3"}
GO_CACHE = os.environ.get("GCTRACE_GO_CACHE", "/root/.cache/gctrace-go")


@pytest.fixture(scope="module")
def binaries(tmp_path_factory):
    return tmp_path_factory.mktemp("snapdemo")


def demo(binaries, minor):
    """demo returns the snapdemo binary for Go 1.<minor>: the committed one, or built with that toolchain."""
    out = binaries / f"snapdemo{minor}"
    if out.exists():
        return str(out)
    gz = os.path.join(SRC, f"go{minor}", "snapdemo.gz")
    if os.path.exists(gz):
        with gzip.open(gz) as f:
            out.write_bytes(f.read())
        out.chmod(0o755)
        return str(out)
    go = os.path.join(GO_CACHE, VERSIONS[minor], "bin", "go")
    if not os.path.exists(go):
        pytest.skip(f"no committed snapdemo for Go {minor} and no toolchain at {go} to build one")
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod", CGO_ENABLED="0")
    subprocess.run([go, "build", "-trimpath", "-buildvcs=false", "-o", str(out), "."], cwd=SRC, env=env,
                   check=True, capture_output=True)
    return str(out)


@contextmanager
def running(exe, *args, env=None):
    """running starts snapdemo, waits until its heap is built, and always ends it."""
    p = subprocess.Popen([exe, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         env=None if env is None else {**os.environ, **env})
    try:
        assert p.stdout.readline() == b"ready\n"
        yield p
    finally:
        p.kill()
        p.wait()


def command(p, line: bytes):
    p.stdin.write(line)
    p.stdin.flush()
    assert p.stdout.readline() == b"ready\n"


def state(pid) -> str:
    """state is the process's state letter in /proc/PID/stat (R, S, T for stopped, t for traced)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def reach(doc, keep=lambda r: True):
    """reach returns the addresses of the objects reachable from the roots keep accepts (pointers may be interior)."""
    objs = sorted(doc["objects"], key=lambda o: o["addr"])
    addr = [o["addr"] for o in objs]

    def find(w):
        k = bisect.bisect_right(addr, w) - 1
        return k if k >= 0 and w < addr[k] + objs[k]["size"] else -1

    seen = set()
    work = [find(r["target"]) for r in doc["roots"] if keep(r)]
    while work:
        k = work.pop()
        if k < 0 or k in seen:
            continue
        seen.add(k)
        work.extend(find(w) for _, w in objs[k]["ptrs"])
    return {addr[k] for k in seen}


@pytest.mark.parametrize("minor", sorted(VERSIONS))
def test_snapshot_agrees_with_the_heap_dump_written_at_the_same_moment(binaries, minor, tmp_path):
    # GIVEN snapdemo built with Go 1.<minor>, which wrote a heap dump and now waits on stdin
    exe = demo(binaries, minor)
    hdpath, snappath = tmp_path / "heap.dump", tmp_path / "heap.snap"
    with running(exe) as p:
        command(p, f"dump {hdpath}\n".encode())
        # WHEN it is snapshotted by PID and the snapshot goes through its file
        snap = gs.capture(p.pid)
        assert state(p.pid) not in "tT", "the target was left stopped"
        gs.write_snapshot(snap, snappath)
    b = Binary(exe)
    try:
        hd = read_heapdump(hdpath)
        want = import_heapdump(str(hdpath), b)
        got = gs.import_snapshot(str(snappath), b)
        snap_hd, _, _ = gs.to_heapdump(gs.read_snapshot(snappath))
    finally:
        b.close()

    # THEN the same objects and bytes, equal to the MemStats the runtime wrote
    ms = want["meta"]["memstats"]
    assert (len(got["objects"]), sum(o["size"] for o in got["objects"])) == (ms["HeapObjects"], ms["HeapAlloc"])
    assert [(o["addr"], o["size"]) for o in got["objects"]] == [(o["addr"], o["size"]) for o in want["objects"]]
    # the same pointer fields, object by object, as the runtime's own bitmaps in the dump (the dump's tail
    # slots past nelems are not objects: only the snapshot's addresses are compared)
    fields = dict(zip(hd.obj_addr, hd.obj_fields))
    assert {a: f for a, f in zip(snap_hd.obj_addr, snap_hd.obj_fields)} == {a: fields[a] for a in snap_hd.obj_addr}
    # the same contents, but for the runtime's own g, m and p, which resuming the world changed
    wo = {o["addr"]: o for o in want["objects"]}
    changed = sorted({o.get("type", "?") for o in got["objects"] if o["ptrs"] != wo[o["addr"]]["ptrs"]})
    assert set(changed) <= {"runtime.g", "runtime.m", "runtime.p"}, changed
    # the same maps, with the same header fields
    assert got["maps"] == want["maps"]
    assert len(got["maps"]) >= 4
    # the same data and bss roots, but for the runtime's own variables (m0, sched, ...), which resuming changed
    def globals_(doc):
        return sorted((r["name"], r["target"]) for r in doc["roots"]
                      if r["kind"] == "global" and not r["name"].startswith("runtime."))
    assert globals_(got) == globals_(want)
    assert len(globals_(got)) >= 8
    # the same finalizers (object, funcval, fint, ot), snapdemo's own among them
    assert [(o, fn, fint, ot) for o, fn, _, fint, ot in sorted(snap_hd.finalizers)] == \
        [(o, fn, fint, ot) for o, fn, _, fint, ot in sorted(hd.finalizers)]
    final = next(r["target"] for r in want["roots"] if r["name"] == "main.final")
    assert final in {f[0] for f in snap_hd.finalizers}
    # a reachable superset (stacks and registers are scanned conservatively, and heap dumps list no cleanups
    # or weak handles), each extra object reached from a conservative root or one of those
    r_want, r_got = reach(want), reach(got)
    assert r_want <= r_got
    extra = r_got - r_want
    assert extra <= reach(got, lambda r: r["kind"] not in ("global", "finalizer")), \
        "an extra object not from a stack or register"
    specials = reach(got, lambda r: r["name"].startswith(("cleanup of ", "weak handle for ", "queued cleanup")))
    assert len(extra - specials) <= 10, sorted(hex(a) for a in extra - specials)
    assert got["meta"]["stacks"].startswith("conservatively")
    assert got["meta"]["source"] == "go-snapshot"
    # and the pages of every object are in the residency runs, resident where an object was just written
    assert got["pages"] and {p["state"] for p in got["pages"]} <= {"used", "free", "released"}
    assert got["meta"]["pages_filled"] == 0
    # the pagemap's resident pages (the zero page left out) add up to the kernel's own smaps Rss of the heap
    assert sum(p["n"] for p in got["pages"] if p["resident"]) * 4 == got["meta"]["arena_rss_kb"]
    # and every page an object touches is a used one
    used = [(p["addr"], p["addr"] + p["n"] * 4096) for p in got["pages"] if p["state"] == "used"]
    starts = [u[0] for u in used]
    for o in got["objects"]:
        k = bisect.bisect_right(starts, o["addr"]) - 1
        assert k >= 0 and o["addr"] + o["size"] <= used[k][1] or \
            all(any(a <= q < e for a, e in used) for q in range(o["addr"] & ~4095, o["addr"] + o["size"], 4096))


def test_snapshot_round_trips_through_its_file(binaries, tmp_path):
    exe = demo(binaries, "1.26")
    with running(exe) as p:
        snap = gs.capture(p.pid)
    gs.write_snapshot(snap, tmp_path / "s.snap")
    back = gs.read_snapshot(tmp_path / "s.snap")
    assert back["header"] == snap["header"]
    assert [(a, bytes(b)) for a, b in back["image"].ranges()] == [(a, bytes(b)) for a, b in snap["image"].ranges()]
    # every byte of the image was read, or is on a page the pagemap showed holds only zeros
    h = snap["header"]
    assert h["bytes_read"] + h["bytes_unread"] >= sum(len(b) for _, b in snap["image"].ranges()) > 1 << 20


def test_the_streamed_heap_is_byte_for_byte_what_plain_reads_see(binaries, tmp_path, monkeypatch):
    # GIVEN snapdemo stopped, and a ring of two 64 KiB buffers (the reads wait on the writer, runs are cut into
    # many pieces), its heap's spans about to stream to a spill file, the pagemap's zero pages left unread
    monkeypatch.setattr(gs._Live, "PIECE", 1 << 16)
    monkeypatch.setattr(gs._Live, "RING", 2)
    exe = demo(binaries, "1.26")
    b = Binary(exe)
    try:
        lay = gs.Layout.from_binary(b, exe)
        rt = gs.check_release(b.build_version(), exe)
    finally:
        b.close()
    with running(exe) as p, gs._Stopped(p.pid), tempfile.TemporaryFile(dir=tmp_path) as spill:
        live = gs._Live(p.pid, spill, str(tmp_path))
        walk = gs._Walk(live, lay, rt.green_tea, gs.finalizer_kind(rt.version))
        spans = walk.spans()
        live.residency(gs._pagemap(p.pid, walk.arenas()), gs._own_zero_pfn())
        runs = walk.heap_runs(spans)
        bits = walk.alloc_bits(spans)
        at = walk.header_addrs(spans, bits)
        # (the header objects, found for all spans at once, are each header span's allocated slots)
        assert at.tolist() == sorted(int(spans.addr[i]) + k * int(spans.elemsize[i])
                                     for i in walk.header_spans(spans).tolist()
                                     for k in walk.allocated(spans, bits, i).tolist())
        # WHEN the heap streams through the ring
        words = live.heap(runs, at)
        # THEN every run reads back as one plain process_vm_readv of it gives, at the same instant
        plain = gs._Live(p.pid)
        for a, e in runs:
            assert bytes(live.image.read(a, e - a)) == bytes(plain.read(a, e - a)), hex(a)
        # and each malloc header word taken on the way is the word an 8-byte read of it gives
        assert words.tolist() == [gs.u64(plain.read(a, 8)) for a in at.tolist()]
    # and the test saw what it is about: header words, pages not read (snapdemo's never-written []byte blobs),
    # runs longer than a piece; the spill file never had a name
    assert len(at) >= 20 and words.all()  # (45 in the 1.26 snapdemo built with the roots of issue 15)
    assert live.bytes_unread > 0 and live.bytes_read > 0
    assert max(e - a for a, e in runs) > 4 * gs._Live.PIECE
    assert os.listdir(tmp_path) == []


def test_reader_refuses_unknown_versions_and_other_files(tmp_path):
    (tmp_path / "v9.snap").write_bytes(gs.MAGIC + (9).to_bytes(4, "little") + b"x")
    with pytest.raises(gs.SnapshotError, match="snapshot version 9 unknown"):
        gs.read_snapshot(tmp_path / "v9.snap")
    (tmp_path / "other.snap").write_bytes(b"go1.7 heap dump\n")
    with pytest.raises(gs.SnapshotError, match="not a gctrace snapshot"):
        gs.read_snapshot(tmp_path / "other.snap")
    (tmp_path / "cut.snap").write_bytes(gs.MAGIC + (1).to_bytes(4, "little") + b"\x78\x01garbage")
    with pytest.raises(gs.SnapshotError, match="bad compressed data"):
        gs.read_snapshot(tmp_path / "cut.snap")


def test_reader_inflates_records_as_it_reads_and_refuses_broken_bodies(tmp_path):
    # GIVEN a hand-made body: a header, two records, the end record
    import struct
    import zlib

    def snap(body: bytes, cut: int = 0) -> str:
        data = gs.MAGIC + (1).to_bytes(4, "little") + zlib.compress(body, 1)
        path = tmp_path / f"s{len(list(tmp_path.iterdir()))}.snap"
        path.write_bytes(data[:len(data) - cut])
        return str(path)

    hdr = b'{"format":"gctrace.snapshot","version":1}'
    big = bytes(range(256)) * 40000  # 10 MB: inflated in several pieces
    recs = struct.pack("<QQ", 0x1000, 3) + b"abc" + struct.pack("<QQ", 0x2000, len(big)) + big
    end = struct.pack("<QQ", 0, 0)
    body = struct.pack("<Q", len(hdr)) + hdr + recs + end
    # WHEN it is read THEN the header and the records, byte for byte
    got = gs.read_snapshot(snap(body))
    assert got["header"] == {"format": "gctrace.snapshot", "version": 1}
    assert [(a, bytes(b)) for a, b in got["image"].ranges()] == [(0x1000, b"abc"), (0x2000, big)]
    # and a body cut short, one with bytes after the end record, a record longer than any file could
    # inflate to, and a stream without its end are each one error
    with pytest.raises(gs.SnapshotError, match="truncated at byte"):
        gs.read_snapshot(snap(body[:len(body) - 100]))
    with pytest.raises(gs.SnapshotError, match="5 bytes after the end record"):
        gs.read_snapshot(snap(body + b"extra"))
    with pytest.raises(gs.SnapshotError, match=f"truncated at byte {8 + len(hdr) + 16} of the body"):
        gs.read_snapshot(snap(struct.pack("<Q", len(hdr)) + hdr + struct.pack("<QQ", 0x1000, 1 << 60)))
    with pytest.raises(gs.SnapshotError, match="bad compressed data|truncated"):
        gs.read_snapshot(snap(body, cut=2))


def gctrace(*args, **kw):
    return subprocess.run([sys.executable, "-m", "gctrace", *args], capture_output=True, text=True, **kw)


def test_cli_snapshot_then_import_and_analyze(binaries, tmp_path):
    exe = demo(binaries, "1.26")
    with running(exe) as p:
        r = gctrace("snapshot", str(p.pid), "-o", str(tmp_path / "s.snap"))
        assert r.returncode == 0, r.stderr
        assert "pause:" in r.stderr and state(p.pid) not in "tT"
        a = gctrace("snapshot", str(p.pid), "--analyze", "--dump", str(tmp_path / "kept.jsonl.gz"))
        assert a.returncode == 0, a.stderr
        assert "stacks scanned conservatively" in a.stdout and "main.byID" in a.stdout
    # --dump keeps the dump that was analyzed, in the form its name asks for
    assert (tmp_path / "kept.jsonl.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert gctrace("analyze", str(tmp_path / "kept.jsonl.gz")).returncode == 0
    r = gctrace("import", "go-snapshot", str(tmp_path / "s.snap"), "--binary", exe, "-o", str(tmp_path / "d.jsonl"))
    assert r.returncode == 0, r.stderr
    assert gctrace("analyze", str(tmp_path / "d.jsonl")).returncode == 0


def test_the_target_is_never_left_stopped_when_the_tool_is_killed(binaries):
    # GIVEN a target with a heap big enough that its stop lasts a while
    exe = demo(binaries, "1.26")
    rng = random.Random(15)
    with running(exe, "-grow", "64") as p:
        hits = 0
        for i in range(8):
            # WHEN the snapshot tool is killed at a random moment while the target is stopped
            tool = subprocess.Popen([sys.executable, "-m", "gctrace", "snapshot", str(p.pid), "-o", os.devnull],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while tool.poll() is None and state(p.pid) not in "tT" and time.monotonic() < deadline:
                time.sleep(0.0005)
            if state(p.pid) in "tT":
                hits += 1
            time.sleep(rng.random() * 0.05)
            sig = signal.SIGKILL if i % 2 == 0 else signal.SIGTERM
            tool.send_signal(sig)
            rc = tool.wait()
            # THEN the target runs on: not stopped, and it still answers
            time.sleep(0.01)
            assert state(p.pid) not in "tT", f"left stopped after {sig.name} (exit {rc})"
            command(p, b"dump /dev/null\n")
        assert hits >= 4, "the tool was seldom caught with the target stopped: the test proved little"


def test_refusals_are_one_line_and_exit_2(binaries, tmp_path):
    exe = demo(binaries, "1.26")
    # a non-Go program with symbols
    c = tmp_path / "loop.c"
    c.write_text("#include <unistd.h>\nint main(void){ pause(); return 0; }\n")
    cexe = tmp_path / "loop"
    subprocess.run(["gcc", "-O1", "-o", str(cexe), str(c)], check=True)
    stripped = tmp_path / "snapdemo-stripped"
    subprocess.run(["strip", "-o", str(stripped), exe], check=True)
    procs = [subprocess.Popen([str(cexe)]), subprocess.Popen(["sleep", "100"])]
    try:
        with running(str(stripped)) as sp:
            cases = [(procs[0].pid, "not a Go program"), (procs[1].pid, "stripped"), (sp.pid, "stripped"),
                     (2 ** 22 + 12345, "no such process")]
            for pid, why in cases:
                r = gctrace("snapshot", str(pid), "-o", str(tmp_path / "x.snap"))
                assert r.returncode == 2 and why in r.stderr, (pid, r.stderr)
                assert r.stderr.count("\n") == 1 and r.stderr.startswith("gctrace: ")
                assert not (tmp_path / "x.snap").exists()
                if pid < 2 ** 22:
                    assert state(pid) not in "tT"
    finally:
        for q in procs:
            q.kill()
            q.wait()


def test_a_process_we_may_not_trace_is_refused(binaries, tmp_path):
    # GIVEN a Go program of root's, and gctrace run as nobody
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run gctrace as another user")
    exe = demo(binaries, "1.26")
    with running(exe) as p:
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                            "gctrace", "snapshot", str(p.pid), "-o", "/tmp/never.snap"],
                           capture_output=True, text=True, env=dict(os.environ, HOME="/tmp"))
        assert r.returncode == 2 and r.stderr.startswith("gctrace: ") and r.stderr.count("\n") == 1, r.stderr
        assert "permission denied" in r.stderr.lower() or "not permitted" in r.stderr.lower()
        assert state(p.pid) not in "tT"


def test_a_process_traced_by_another_is_refused_and_left_as_it_was(binaries):
    # GIVEN a target this test already holds stopped with ptrace
    exe = demo(binaries, "1.26")
    with running(exe) as p:
        with gs._Stopped(p.pid):
            # WHEN gctrace tries to snapshot it THEN it says it cannot attach, exit 2
            r = gctrace("snapshot", str(p.pid), "-o", os.devnull)
            assert r.returncode == 2 and "cannot attach" in r.stderr, r.stderr
        assert state(p.pid) not in "tT"
        command(p, b"dump /dev/null\n")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_stop_resumes_the_target_and_says_so(binaries, tmp_path, sig):
    # GIVEN a target whose stop lasts a few hundred milliseconds
    exe = demo(binaries, "1.26")
    with running(exe, "-grow", "256") as p:
        tool = subprocess.Popen([sys.executable, "-m", "gctrace", "snapshot", str(p.pid), "-o",
                                 str(tmp_path / "s.snap")], stderr=subprocess.PIPE, text=True)
        while tool.poll() is None and state(p.pid) not in "tT":
            time.sleep(0.0005)
        # WHEN the tool gets the signal while the target is stopped
        assert state(p.pid) in "tT", "the stop was missed"
        tool.send_signal(sig)
        err = tool.communicate()[1]
        # THEN one line, exit 128 + the signal (130 for Ctrl-C), nothing written, and the target runs on
        assert tool.returncode == 128 + sig and err.count("\n") == 1 and f"interrupted by {sig.name}" in err, err
        assert not (tmp_path / "s.snap").exists()
        assert state(p.pid) not in "tT"
        command(p, b"dump /dev/null\n")


@pytest.mark.parametrize("minor", ["1.22", "1.26"])
def test_a_core_file_imports_to_the_heap_the_dump_describes(binaries, minor, tmp_path):
    # GIVEN a core file (gcore) of snapdemo taken right after it wrote a heap dump
    if shutil.which("gcore") is None:
        pytest.skip("gcore (Debian's gdb package) is not installed")
    exe = demo(binaries, minor)
    with running(exe) as p:
        command(p, f"dump {tmp_path / 'heap.dump'}\n".encode())
        subprocess.run(["gcore", "-o", str(tmp_path / "core"), str(p.pid)], check=True, capture_output=True)
        core = tmp_path / f"core.{p.pid}"
    # WHEN both are imported
    r = gctrace("import", "go-core", str(core), "--binary", exe, "-o", str(tmp_path / "d.json"))
    assert r.returncode == 0, r.stderr
    import orjson
    got = orjson.loads((tmp_path / "d.json").read_bytes())
    b = Binary(exe)
    try:
        want = import_heapdump(str(tmp_path / "heap.dump"), b)
    finally:
        b.close()
    # THEN the same objects (== MemStats) and maps, a reachable superset, residency assumed
    ms = want["meta"]["memstats"]
    assert (len(got["objects"]), sum(o["size"] for o in got["objects"])) == (ms["HeapObjects"], ms["HeapAlloc"])
    assert got["maps"] == want["maps"]
    assert reach(want) <= reach(got)
    assert got["meta"]["source"] == "go-core" and "pages" not in got
    # and a file that is no core is one line, exit 2
    r = gctrace("import", "go-core", exe, "--binary", exe, "-o", str(tmp_path / "x.json"))
    assert r.returncode == 2 and "not an x86-64 core file" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize("what, committed, version, flags, why", [
    ("Go 1.21", "go1.21", "1.21.13", [], "snapshots know Go 1.22 to 1.27"),
    ("a PIE", "pie-go1.26", "1.26.6", ["-buildmode=pie"], "position-independent"),
])
def test_programs_snapshots_do_not_read_are_refused_before_stopping(tmp_path, what, committed, version, flags, why):
    # GIVEN snapdemo built as something the snapshot does not read (committed, or built with that toolchain)
    exe = str(tmp_path / "snapdemo")
    gz = os.path.join(SRC, committed, "snapdemo.gz")
    if os.path.exists(gz):
        with gzip.open(gz) as f, open(exe, "wb") as out:
            out.write(f.read())
        os.chmod(exe, 0o755)
    else:
        go = os.path.join(GO_CACHE, version, "bin", "go")
        if not os.path.exists(go):
            pytest.skip(f"no toolchain at {go} to build {what}")
        env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod", CGO_ENABLED="0")
        subprocess.run([go, "build", "-trimpath", "-buildvcs=false", *flags, "-o", exe, "."], cwd=SRC, env=env,
                       check=True, capture_output=True)
    with running(exe) as p:
        # WHEN it is snapshotted THEN one line, exit 2, and it was never stopped
        r = gctrace("snapshot", str(p.pid), "-o", str(tmp_path / "x.snap"))
        assert r.returncode == 2 and why in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert state(p.pid) not in "tT"
        command(p, b"dump /dev/null\n")


@pytest.mark.parametrize("minor", [pytest.param("1.22", marks=pytest.mark.slow), "1.26"])  # ~30 s each
def test_snapshots_of_a_busy_program_succeed_and_it_runs_on(binaries, minor, tmp_path):
    # GIVEN snapdemo with 4 goroutines allocating and dropping map entries and blobs without end
    exe = demo(binaries, minor)
    b = Binary(exe)
    try:
        with running(exe, "-churn", "4", env={"GOGC": "10"}) as p:  # GOGC=10: less garbage to import
            for i in range(2):
                time.sleep(0.2)
                # WHEN it is snapshotted mid-allocation
                snap = gs.capture(p.pid)
                assert state(p.pid) not in "tT"
                gs.write_snapshot(snap, tmp_path / "s.snap")
                doc = gs.import_snapshot(str(tmp_path / "s.snap"), b)
                # THEN every churning map is found among the program's maps, each with at most its 20,000
                # entries, and the import's own checks (objects do not overlap, fields inside objects) held
                names = {m.get("name"): m for m in doc["maps"]}
                churned = [m for n, m in names.items() if n and n.startswith("main.churned")]
                assert len(churned) == 4, sorted(n for n in names if n)
                assert all(0 <= m["count"] <= 20001 for m in churned)
            command(p, b"dump /dev/null\n")
    finally:
        b.close()


# --- the spill file: the heap streams to an unlinked file beside SNAP while the target is stopped ----------

@contextmanager
def tmpfs(tmp_path, size: str):
    """tmpfs mounts a tmpfs of size in tmp_path: what is written there, and what is freed, is exact (statvfs)."""
    mnt = tmp_path / f"tmpfs-{size}"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def used(mnt) -> int:
    """used is the bytes a filesystem has in use, open but unlinked files included."""
    st = os.statvfs(mnt)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_the_spill_file_is_gone_after_a_snapshot_and_after_a_signal(binaries, tmp_path):
    exe = demo(binaries, "1.26")
    with tmpfs(tmp_path, "600m") as mnt, running(exe, "-grow", "256") as p:
        # GIVEN a 256 MiB heap and SNAP on a tmpfs, empty
        assert used(mnt) == 0
        # WHEN a snapshot is written there THEN SNAP is all that is left: the spill file had no name and is freed
        r = gctrace("snapshot", str(p.pid), "-o", str(mnt / "s.snap"))
        assert r.returncode == 0, r.stderr
        assert os.listdir(mnt) == ["s.snap"]
        assert used(mnt) == os.stat(mnt / "s.snap").st_blocks * 512
        os.unlink(mnt / "s.snap")
        # WHEN a snapshot gets SIGINT while the target is stopped (the heap half-spilled)
        tool = subprocess.Popen([sys.executable, "-m", "gctrace", "snapshot", str(p.pid), "-o", str(mnt / "s.snap")],
                                stderr=subprocess.PIPE, text=True)
        while tool.poll() is None and state(p.pid) not in "tT":
            time.sleep(0.0005)
        assert state(p.pid) in "tT", "the stop was missed"
        assert used(mnt) > 100 << 20  # the spill file is there, unnamed, while the target is stopped
        tool.send_signal(signal.SIGINT)
        err = tool.communicate()[1]
        # THEN nothing is left, and the target runs on
        assert tool.returncode == 130 and "interrupted by SIGINT" in err, err
        assert os.listdir(mnt) == [] and used(mnt) == 0
        assert state(p.pid) not in "tT"
        command(p, b"dump /dev/null\n")


def test_a_disk_too_small_for_the_heap_is_one_line_before_the_target_is_stopped(binaries, tmp_path):
    # GIVEN a 64 MiB heap and SNAP on a 16 MiB tmpfs
    exe = demo(binaries, "1.26")
    with tmpfs(tmp_path, "16m") as mnt, running(exe, "-grow", "64") as p:
        stops = []
        tool = subprocess.Popen([sys.executable, "-m", "gctrace", "snapshot", str(p.pid), "-o", str(mnt / "s.snap")],
                                stderr=subprocess.PIPE, text=True)
        while tool.poll() is None:
            stops.append(state(p.pid) in "tT")
        err = tool.stderr.read()
        # WHEN it is snapshotted THEN one line naming the directory, exit 2, nothing left on the disk
        assert tool.returncode == 2 and err.count("\n") == 1 and err.startswith(f"gctrace: {mnt}: "), err
        assert "spill file" in err and "No space left on device" in err
        assert os.listdir(mnt) == [] and used(mnt) == 0
        # and the target was never stopped (the spill file is filled to the heap's size first), and runs on
        assert len(stops) > 10 and not any(stops)
        command(p, b"dump /dev/null\n")


def test_a_disk_that_fills_while_the_target_is_stopped_ends_the_snapshot_and_resumes_it(binaries, tmp_path,
                                                                                         monkeypatch):
    # GIVEN a 64 MiB heap, a 16 MiB disk for the spill, and the heap's size guessed as 0: nothing is written
    # before the stop, so the disk fills while the target is stopped
    monkeypatch.setattr(gs, "_heap_estimate", lambda pid, lay: 0)
    exe = demo(binaries, "1.26")
    with tmpfs(tmp_path, "16m") as mnt, running(exe, "-grow", "64") as p:
        # WHEN it is snapshotted THEN the error names the spill file's directory
        with pytest.raises(gs.SnapshotError, match="spill file: No space left on device") as e:
            gs.capture(p.pid, str(mnt))
        assert e.value.path == str(mnt)
        # and the target runs on, and nothing is left on the disk
        assert state(p.pid) not in "tT"
        command(p, b"dump /dev/null\n")
        assert os.listdir(mnt) == [] and used(mnt) == 0


def test_a_snapshot_file_that_does_not_fit_leaves_nothing_behind(binaries, tmp_path):
    # GIVEN a capture (spilled to tmp_path) and a 1 MiB disk for SNAP, too small for it
    exe = demo(binaries, "1.26")
    with running(exe, "-grow", "64") as p:
        snap = gs.capture(p.pid, str(tmp_path))
    try:
        with tmpfs(tmp_path, "1m") as mnt:
            # WHEN it is written there THEN an OutputError, and neither SNAP nor a temp file is left
            with pytest.raises(OutputError, match="No space left on device"):
                gs.write_snapshot(snap, mnt / "s.snap")
            assert os.listdir(mnt) == [] and used(mnt) == 0
    finally:
        gs.close_snapshot(snap)
    assert "spill" not in snap and os.listdir(tmp_path) == ["tmpfs-1m"]


def test_a_big_scratch_file_goes_beside_a_file_output_and_never_into_dev(tmp_path):
    assert scratch_dir(tmp_path / "s.snap") == str(tmp_path)
    assert scratch_dir(os.devnull) is None and scratch_dir("-") is None
    os.mkfifo(tmp_path / "fifo")
    assert scratch_dir(tmp_path / "fifo") is None
