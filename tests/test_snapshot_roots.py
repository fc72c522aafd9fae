"""Tests of the snapshot's roots that are neither globals nor stacks: cleanups, weak handles, the finalizer queue.

snapdemo (fixtures/go/snapshot) holds, in every release, a finalizer queued
behind one that blocks the finalizer goroutine for good, and from Go 1.24 a
cleanup (runtime.AddCleanup) whose argument and closure each hold a node
nothing else holds, and a weak pointer (weak.Make) to a node nothing else
holds, and from Go 1.25 a cleanup queued behind one that blocks the only
cleanup goroutine for good. Its "roots" command prints those objects' addresses, read with unsafe
by the program itself: the answers the import must find. The heap dump the
program writes at the same moment is the other independent answer: it lists
the queued finalizers (iterate_finq) but no cleanups and no weak handles.
"""

import os
import re
import subprocess

import pytest

from gctrace.tracer.goheap import gosnapshot as gs
from gctrace.tracer.goheap.goheapdump import read_heapdump
from gctrace.tracer.goheap.goimport import import_heapdump
from gctrace.tracer.goheap.gotypes import Binary

from test_snapshot import GO_CACHE, VERSIONS, command, demo, reach, running, state


@pytest.fixture(scope="module")
def binaries(tmp_path_factory):
    return tmp_path_factory.mktemp("snapdemo")


def conservative(r):
    """conservative reports whether a root is a stack word or a register word (scanned without stack maps)."""
    return r["kind"] == "stack" or r["name"].endswith("registers (conservative)")


def from_specials(r):
    """from_specials reports whether a root is a cleanup's or a weak handle's, which heap dumps do not list."""
    return r["name"].startswith(("cleanup of ", "weak handle for ", "queued cleanup"))


def runtime_source(minor: str, name: str) -> str:
    path = os.path.join(GO_CACHE, VERSIONS[minor], "lib", "python3.11", "site-packages", "go", "src", "runtime", name)
    if not os.path.exists(path):
        pytest.skip(f"no Go {VERSIONS[minor]} runtime source at {path}")
    with open(path) as f:
        return f.read()


@pytest.mark.parametrize("minor", sorted(VERSIONS))
def test_special_kinds_are_the_releases_own(minor):
    # GIVEN the release's runtime source: its _KindSpecial* numbers and the kinds markrootSpans marks
    mheap, mgcmark = runtime_source(minor, "mheap.go"), runtime_source(minor, "mgcmark.go")
    numbers = {name: int(n) for name, n in re.findall(r"^\t_KindSpecial(\w+)\s*=\s*(\d+)", mheap, re.M)}
    body = re.search(r"^func markrootSpans\(.*?^}", mgcmark, re.M | re.S).group(0)
    marked = set(re.findall(r"case _KindSpecial(\w+):", body)) | set(re.findall(r"sp\.kind != _KindSpecial(\w+)", body))
    # WHEN gctrace's table is asked for that release
    kinds = gs.special_kinds(tuple(int(x) for x in minor.split(".")))
    # THEN it names exactly the kinds markrootSpans marks, with the release's numbers
    names = {"finalizer": "Finalizer", "weak_handle": "WeakHandle", "cleanup": "Cleanup"}
    assert {names[k] for k in kinds} == marked
    assert {names[k]: n for k, n in kinds.items()} == {k: numbers[k] for k in marked}
    assert gs.finalizer_kind(tuple(int(x) for x in minor.split("."))) == numbers["Finalizer"]


@pytest.mark.parametrize("minor", sorted(VERSIONS))
def test_layout_has_the_special_and_queue_structs_of_each_release(binaries, minor):
    # GIVEN snapdemo of the release WHEN its layout is read from DWARF
    b = Binary(demo(binaries, minor))
    try:
        lay = gs.Layout.from_binary(b, "snapdemo")
    finally:
        b.close()
    v = tuple(int(x) for x in minor.split("."))
    s = lay.structs
    # THEN the structs it reads are there from the release that has them, and not before
    assert ("runtime.specialWeakHandle" in s) == (v >= (1, 23))
    assert ("runtime.specialCleanup" in s) == (v >= (1, 24))
    assert ("runtime.cleanupFn" in s) == (v >= (1, 26))
    assert ("runtime.gcCleanups" in lay.symbols) == ("runtime.cleanupBlock" in s) == (v >= (1, 25))
    if v >= (1, 24):
        assert ("fn" in s["runtime.specialCleanup"]) == (v < (1, 26))
        assert ("cleanup" in s["runtime.specialCleanup"]) == (v >= (1, 26))
    # the finalizer queue in every release (runtime.finblock until 1.24, finBlock from 1.25)
    assert {"alllink", "cnt", "fin"} <= s["runtime.finBlock"].keys()
    assert s["runtime.finalizer"]["size"] == 40 and "runtime.allfin" in lay.symbols
    # the special's offset is a uint16 until 1.23, a uintptr from 1.24: the width the walk reads
    sp = s["runtime.special"]
    assert sp["kind"] - sp["offset"] == (8 if v >= (1, 24) else 2)


@pytest.mark.parametrize("minor", sorted(VERSIONS))
def test_snapshot_roots_cleanups_weak_handles_and_the_finalizer_queue(binaries, minor, tmp_path):
    # GIVEN snapdemo of the release, which printed the addresses of what only those roots hold, and wrote
    # a heap dump, and now waits on stdin
    exe = demo(binaries, minor)
    v = tuple(int(x) for x in minor.split("."))
    hdpath, snappath = tmp_path / "heap.dump", tmp_path / "heap.snap"
    with running(exe) as p:
        p.stdin.write(b"roots\n")
        p.stdin.flush()
        at = {k: int(a, 16) for k, a in (kv.split("=") for kv in p.stdout.readline().decode().split())}
        command(p, f"dump {hdpath}\n".encode())
        # WHEN it is snapshotted, and the snapshot imported through its file
        snap = gs.capture(p.pid)
        assert state(p.pid) not in "tT"
        gs.write_snapshot(snap, snappath)
    b = Binary(exe)
    try:
        got = gs.import_snapshot(str(snappath), b)
        want = import_heapdump(str(hdpath), b)
        snap_hd, _, _ = gs.to_heapdump(gs.read_snapshot(snappath))
    finally:
        b.close()
    hd = read_heapdump(hdpath)
    roots = {}
    for r in got["roots"]:
        roots.setdefault(r["name"], set()).add((r["kind"], r["target"]))
    r_got, r_want = reach(got), reach(want)

    # THEN the finalizer queue is the heap dump's, entry for entry (obj, fn, fint, ot), the queued object
    # among them, a root named for it, and what it points to reachable, in both
    assert [(o, fn, fint, ot) for o, fn, _, fint, ot in snap_hd.queued_finalizers] == \
        [(o, fn, fint, ot) for o, fn, _, fint, ot in hd.queued_finalizers]
    assert at["queued"] in {f[0] for f in snap_hd.queued_finalizers}
    assert roots[f"queued finalizer of {at['queued']:#x}"] == {("finalizer", at["queued"])}
    assert {at["queued"], at["queuedkid"]} <= r_got & r_want
    assert got["meta"]["roots_missing"] == []
    # and the analysis, told that every kind of root was read, adds no "roots may be missing" note
    from gctrace.analysis.analyze import roots_missing

    assert roots_missing(got["meta"]) is None and (roots_missing(want["meta"]) is not None) == (v >= (1, 24))

    cleanups = {n for n in roots if n.startswith("cleanup of ")}
    weak = {n for n in roots if n.startswith("weak handle for ")}
    queued_cleanups = reach(got, lambda r: r["name"] == "queued cleanup")
    if v < (1, 25):  # Go 1.24 queues cleanups on the finalizer queue; snapdemo queues none there
        assert "queued cleanup" not in roots and "queuedcleanuparg" not in at
    else:
        # a cleanup queued to run: its argument reachable through it alone (not in the heap dump)
        assert at["queuedcleanuparg"] in queued_cleanups - r_want
    if v < (1, 24):
        assert not cleanups and not weak  # snapdemo makes none before Go 1.24 (roots_old.go)
        assert r_want <= r_got
        return
    # a cleanup: named for the object it is attached to; its argument and the node its closure holds are
    # reachable through it alone (the heap dump, which has no cleanups, leaves them unreachable) ...
    assert cleanups == {f"cleanup of {at['cleanupanchor']:#x}"}
    via_cleanup = reach(got, lambda r: r["name"] in cleanups)
    assert {at["cleanuparg"], at["cleanupclosure"]} <= via_cleanup
    assert not {at["cleanuparg"], at["cleanupclosure"]} & r_want
    # ... and the object it is attached to is not kept by it (it is kept by the global cleanupAnchor)
    assert at["cleanupanchor"] not in via_cleanup
    assert at["cleanupanchor"] in r_got & r_want
    # a weak handle: named for the weakly held node, its target the handle weak.Make made
    assert roots[f"weak handle for {at['weak']:#x}"] == {("other", at["weakhandle"])}
    assert weak == {f"weak handle for {at['weak']:#x}"}
    # the node is allocated (no GC ran since) but the handle does not keep it: only a stale word on a stack
    # or in a register, read conservatively, could
    assert at["weak"] in {o["addr"] for o in got["objects"]}
    assert at["weak"] not in reach(got, lambda r: not conservative(r))
    assert at["weak"] not in r_want and at["weakhandle"] in r_want  # the handle: through the global weakPtr
    # the snapshot reaches a superset of the heap dump, and every extra object is reached from a root the
    # heap dump lacks: a cleanup, a weak handle, or a conservatively scanned stack or register
    assert r_want <= r_got
    extra = r_got - r_want
    assert extra <= reach(got, lambda r: conservative(r) or from_specials(r))
    assert {at["cleanuparg"], at["cleanupclosure"]} <= extra - reach(got, conservative)
    if v >= (1, 25):
        assert at["queuedcleanuparg"] in extra - reach(got, conservative)


def test_a_snapshot_without_the_queue_and_special_structs_says_which_roots_it_lacks(binaries):
    # GIVEN a Go 1.26 snapshot whose layout lacks what the walk reads for cleanups, weak handles and the two
    # queues (as a snapshot written before gctrace read them does)
    exe = demo(binaries, "1.26")
    with running(exe) as p:
        snap = gs.capture(p.pid)
    full, _, _ = gs.to_heapdump(snap)
    lay = snap["header"]["layout"]
    for name in gs.OPTIONAL_STRUCTS:
        lay["structs"].pop(name, None)
    for name in gs.OPTIONAL_SYMBOLS:
        lay["symbols"].pop(name)
    # WHEN it is turned into a heap dump
    hd, _, facts = gs.to_heapdump(snap)
    # THEN the roots it could not read are left out, each named in roots_missing and warned about, and the rest
    # (the finalizer specials) are read as before
    assert full.other_roots != hd.other_roots
    assert not [n for n, _ in hd.other_roots if from_specials({"name": n})] and not hd.queued_finalizers
    assert facts["roots_missing"] == ["runtime.AddCleanup cleanups (their closures and arguments are roots)",
                                      "weak pointer handles (weak.Make)", "the finalizer queue (runtime.allfin)",
                                      "cleanups queued to run (runtime.gcCleanups)"]
    assert len(facts["warnings"]) == 4
    assert hd.finalizers == full.finalizers and full.queued_finalizers
