"""gctrace never destroys what is not its own (issue 13, items 1-4, 6 and 11).

Each test builds the user's side of the story in a temp directory (their
directories and files, device nodes and FIFOs made with mknod and mkfifo,
symlinks and hard links, a full tmpfs) and checks that what was there is
still there, byte for byte, after gctrace ran.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from dumps import FIXTURES, dump_doc
from gctrace import cli as cli_module
from gctrace.analysis import heapcache
from gctrace.cli import main
from gctrace.errors import GctraceError
from gctrace.tracer.goheap.goimport import write_dump

CLEARED = FIXTURES / "map_after_mapclear.json"
BARRIER = FIXTURES / "barrier_textbook.json"  # has a concurrent mark to replay
GO = Path(__file__).resolve().parent.parent / "fixtures" / "go"
HEAPDUMP = GO / "heapdumps" / "range-delete.heapdump.gz"
BINARY = GO / "mapheap" / "mapheap"
ROOT = os.geteuid() == 0


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def gctrace(*args, **kw):
    """gctrace runs the CLI as a real process (signals, address-space limits, device writes)."""
    return subprocess.run([sys.executable, "-m", "gctrace", *map(str, args)], capture_output=True, text=True, **kw)


def snapshot(root: Path) -> dict:
    """snapshot maps every path under root to what it is: file bytes, a symlink's target, a node's type and rdev."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[p] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[p] = ("file", p.read_bytes())
            elif stat.S_ISDIR(st.st_mode):
                out[p] = ("dir",)
            else:
                out[p] = (stat.S_IFMT(st.st_mode), st.st_rdev)
    return out


def temps(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith(".gctrace-") or n.endswith(".tmp"))


# --- 1. the heap cache deletes only what it made -------------------------------------------------------------------


@pytest.fixture
def cache_everything(monkeypatch):
    """cache_everything caches dumps of any size, even ones written a moment ago (the test hook of item 1)."""
    monkeypatch.setattr(heapcache, "MIN_OBJECTS", 0)
    monkeypatch.setattr(heapcache, "RACY_NS", 0, raising=False)
    return monkeypatch


def cached_entries(where: Path) -> list[Path]:
    """cached_entries finds the cache entries anywhere under ``where`` (directories holding a skeleton.json)."""
    return sorted(Path(d) for d, _, files in os.walk(where) if "skeleton.json" in files)


def users_directories(d: Path) -> None:
    for sub, files in (("projects", {"main.go": b"package main\n"}), ("photos", {"cat.jpg": b"\xff\xd8\xff"}),
                       (".ssh", {"id_ed25519": b"-----BEGIN OPENSSH PRIVATE KEY-----\n"}),
                       ("0123456789abcdef0123456789abcdef", {"notes.txt": b"named like an old cache entry\n"})):
        (d / sub).mkdir(parents=True)
        for name, data in files.items():
            (d / sub / name).write_bytes(data)
    (d / "todo.txt").write_text("a file of the user's\n")


def test_cache_eviction_and_clear_leave_the_users_directories_alone(tmp_path, cache_everything, write_dump):
    # GIVEN the user's directories and files in the directory GCTRACE_CACHE_DIR names
    d = tmp_path / "d"
    users_directories(d)
    before = snapshot(d)
    cache_everything.setenv("GCTRACE_CACHE_DIR", str(d))
    # WHEN more dumps than the cache keeps are analyzed (so it evicts), then the cache is cleared
    for k in range(heapcache.KEEP + 2):
        p = write_dump(dump_doc([{"addr": 0x1000, "size": 16 * (k + 1)}]), f"dump{k}.json")
        assert run("analyze", p).exit_code == 0
    assert len(cached_entries(d)) == heapcache.KEEP  # the cache did work and did evict
    cleared = run("cache", "--clear")
    # THEN the cache's own entries are gone and every directory and file of the user's is as it was
    assert cleared.exit_code == 0 and f"deleted {heapcache.KEEP} entries" in cleared.output
    assert cached_entries(d) == []
    after = snapshot(d)
    assert {p: v for p, v in after.items() if p in before} == before


def test_clear_skips_what_it_cannot_prove_it_made(tmp_path, cache_everything, write_dump):
    # GIVEN a cached dump, and beside its entry things named like entries that gctrace did not make
    p = write_dump(dump_doc([{"addr": 0x1000, "size": 16}]))
    heapcache.load_heap(p)
    store = heapcache.store_dir()
    (real,) = cached_entries(store)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "skeleton.json").write_text("{}")
    (outside / "precious.npy").write_bytes(b"the user's")
    (store / ("heap-" + "a" * 32)).symlink_to(outside)  # a symlink named like an entry
    unmarked = store / ("heap-" + "b" * 32)  # an entry-named directory without gctrace's marker
    unmarked.mkdir()
    (unmarked / "skeleton.json").write_text("{}")
    (real / "mine.txt").write_text("a file the user put into a real entry")
    before = snapshot(tmp_path)
    # WHEN the cache is cleared
    assert run("cache", "--clear").exit_code == 0
    # THEN none of them lost a byte: the real entry lost only its own files
    after = snapshot(tmp_path)
    assert {q: v for q, v in before.items() if real not in q.parents} == \
           {q: v for q, v in after.items() if real not in q.parents}
    assert sorted(os.listdir(real)) == ["mine.txt"]


# --- 2. devices, FIFOs and symlinks are written through, never replaced ----------------------------------------


needs_root = pytest.mark.skipif(not ROOT, reason="mknod and mount need root")


def _writers(d: Path, out: Path):
    """_writers lists, for one output path, every command that writes a file (the command, then its args)."""
    dot = out.parent / (out.name + ".dot")
    return [
        ("analyze -o", ["analyze", CLEARED, "-o", out]),
        ("analyze --html", ["analyze", CLEARED, "--html", out]),
        ("replay -o", ["replay", BARRIER, "-o", out]),
        ("render -o", ["render", CLEARED, "-o", dot]),
        ("why -o", ["why", CLEARED, "0xc000000000", "-o", dot]),
        ("record -o", ["record", "fill", "--n", "100", "-o", out.parent / (out.name + ".json")]),
        ("import -o", ["import", "go-heapdump", HEAPDUMP, "--binary", BINARY, "-o", out.parent / (out.name + ".json")]),
    ]


@needs_root
def test_devices_fifos_and_symlinks_are_written_through_never_replaced(tmp_path):
    # GIVEN device nodes, symlinks to them, and a symlink to a regular file, all made in a temp directory
    d = tmp_path
    os.mknod(d / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    for name in ("null.dot", "null.json"):  # render and why pick the format, record the dump kind, by suffix
        os.symlink("null", d / name)
    os.symlink("null", d / "lnull")
    os.symlink("null", d / "lnull.dot")
    os.symlink("null", d / "lnull.json")
    (d / "report.txt").write_text("old")
    for name in ("report", "report.dot", "report.json"):
        os.symlink("report.txt", d / f"l{name}")
    before = snapshot(d)
    for out in (d / "null", d / "lnull"):
        for what, args in _writers(d, out):
            # WHEN each writer writes to the device, directly or through a symlink
            r = run(*args)
            assert r.exit_code == 0, (what, r.output)
            # THEN the node is still a character device (1, 3) and the link still a link, with no temp file left
            assert snapshot(d) == before, what
    for what, args in _writers(d, d / "lreport"):
        # WHEN it writes through a symlink to a regular file
        r = run(*args)
        assert r.exit_code == 0, (what, r.output)
        # THEN the links are still links to report.txt: the target is what was replaced
        for name in ("lreport", "lreport.dot", "lreport.json"):
            assert os.readlink(d / name) == "report.txt", what
        assert temps(d) == [], what
    assert (d / "report.txt").read_bytes() != b"old"


@needs_root
def test_a_full_device_is_an_error_and_stays_a_device(tmp_path):
    # GIVEN a full device (like /dev/full: every write fails with ENOSPC), made in a temp directory
    os.mknod(tmp_path / "full", stat.S_IFCHR | 0o666, os.makedev(1, 7))
    os.symlink("full", tmp_path / "full.json")
    os.symlink("full", tmp_path / "full.dot")
    before = snapshot(tmp_path)
    for what, args in _writers(tmp_path, tmp_path / "full"):
        # WHEN a writer writes to it THEN one line says the disk is full, exit 2, and the node is as it was
        r = run(*args)
        assert r.exit_code == 2, (what, r.output)
        assert r.stderr.endswith(": No space left on device\n") and r.stderr.count("\n") == 1, (what, r.stderr)
        assert snapshot(tmp_path) == before, what


def test_a_fifo_is_written_through(tmp_path):
    # GIVEN a named pipe with a reader
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    # WHEN the report is written to it
    r = gctrace("analyze", CLEARED, "-o", fifo, timeout=60)
    got = reader.communicate(timeout=60)[0]
    # THEN the reader got the report, and the pipe is still a pipe
    assert r.returncode == 0, r.stderr
    assert got.decode() == gctrace("analyze", CLEARED).stdout and got.startswith(b"gctrace analyze")
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and temps(tmp_path) == []


def test_dash_is_stdout_and_a_socket_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("analyze", CLEARED, "--json", "-o", "-")
    assert r.exit_code == 0 and orjson.loads(r.stdout)["pages"]["garbage"] == 1
    assert not (tmp_path / "-").exists()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
        r = run("analyze", CLEARED, "-o", tmp_path / "sock")
        assert r.exit_code == 2 and "not a regular file, character device or FIFO" in r.stderr
        assert stat.S_ISSOCK((tmp_path / "sock").lstat().st_mode)
    finally:
        sock.close()


# --- 3. an output is never the input -----------------------------------------------------------------------------


def test_an_output_onto_its_input_is_refused(tmp_path):
    # GIVEN a dump, a symlink to it and a hard link to it (named so every writer accepts the name)
    dump = tmp_path / "d.json"
    shutil.copy(CLEARED, dump)
    original = dump.read_bytes()
    os.symlink("d.json", tmp_path / "sym.json")
    os.link(dump, tmp_path / "hard.dot")
    os.link(dump, tmp_path / "hard.svg")
    cases = [["analyze", dump, "-o", dump], ["analyze", dump, "--json", "-o", tmp_path / "sym.json"],
             ["analyze", tmp_path / "sym.json", "--html", dump], ["render", dump, "-o", tmp_path / "hard.dot"],
             ["why", dump, "0xc000000000", "-o", tmp_path / "hard.dot"],
             ["replay", dump, "-o", tmp_path / "hard.svg"]]
    for args in cases:
        # WHEN a command is told to write onto its input
        r = run(*args)
        # THEN it refuses in one line, exit 2, and the input is as it was
        assert r.exit_code == 2, (args, r.output)
        assert "refusing to overwrite it" in r.stderr and r.stderr.count("\n") == 1, (args, r.stderr)
        assert dump.read_bytes() == original, args
    assert temps(tmp_path) == []


def test_import_onto_its_heap_dump_is_refused(tmp_path):
    # GIVEN a copy of a real Go heap dump
    heapdump = tmp_path / "prod.heapdump.json.gz"  # named as a gctrace dump, as a careless -o would
    shutil.copy(HEAPDUMP, heapdump)
    original = heapdump.read_bytes()
    # WHEN it is imported onto itself THEN exit 2, one line, and the heap dump is untouched
    r = run("import", "go-heapdump", heapdump, "--binary", BINARY, "-o", heapdump)
    assert r.exit_code == 2 and "refusing to overwrite it" in r.stderr, r.output
    assert heapdump.read_bytes() == original
    # and the same import to another file works
    assert run("import", "go-heapdump", heapdump, "--binary", BINARY, "-o", tmp_path / "out.json").exit_code == 0


# --- 4. partial and stale files ----------------------------------------------------------------------------------


def test_write_bytes_removes_its_temp_file_on_errors(tmp_path, monkeypatch):
    # GIVEN a report file, and a rename that fails as on a full disk
    out = tmp_path / "r.txt"
    out.write_text("previous")

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    # WHEN gctrace writes it THEN one error names the file and the problem, and nothing is left but the old file
    with pytest.raises(GctraceError, match="r.txt: cannot write: No space left on device"):
        cli_module._write_bytes(b"new", str(out))
    assert out.read_text() == "previous" and os.listdir(tmp_path) == ["r.txt"]


def test_import_writes_a_unique_temp_and_leaves_none(tmp_path, monkeypatch):
    # GIVEN a file of the user's named like the importer's old fixed temp file
    out = tmp_path / "out.json"
    (tmp_path / "out.json.tmp").write_text("the user's")
    doc = {"format": "gctrace.dump", "version": 1, "meta": {}, "objects": [], "roots": []}
    # WHEN a dump is written there THEN that file is untouched, and no temp file remains
    write_dump(doc, out)
    assert orjson.loads(out.read_bytes())["objects"] == []
    assert (tmp_path / "out.json.tmp").read_text() == "the user's"
    assert sorted(os.listdir(tmp_path)) == ["out.json", "out.json.tmp"]
    # WHEN the write fails at the rename THEN the old dump and the user's file remain, nothing else

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(GctraceError, match="No space left on device"):
        write_dump(dict(doc, objects=[{"addr": 4096, "size": 8}]), out)
    assert orjson.loads(out.read_bytes())["objects"] == []
    assert sorted(os.listdir(tmp_path)) == ["out.json", "out.json.tmp"]


@pytest.fixture
def full_disk(tmp_path):
    """full_disk mounts a 64 KiB tmpfs and fills it: every write there fails with ENOSPC."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if not ROOT or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=64", "tmpfs", str(mnt)],
                                  capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC
        finally:
            os.close(fd)
        (mnt / "old.json").write_bytes(b"")  # an existing output: a new inode still fits, its data does not
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_a_full_disk_leaves_nothing_behind_and_says_so(full_disk):
    before = snapshot(full_disk)
    cases = [["analyze", CLEARED, "--json", "-o", full_disk / "r.json"],
             ["analyze", CLEARED, "-o", full_disk / "old.json"],
             ["record", "fill", "--n", "1000", "-o", full_disk / "d.json"],
             ["record", "fill", "--n", "1000", "-o", full_disk / "d.jsonl.gz"],
             ["record", "fill", "--n", "1000", "-o", full_disk / "old.json"],
             ["import", "go-heapdump", HEAPDUMP, "--binary", BINARY, "-o", full_disk / "go.json"]]
    for args in cases:
        # WHEN a writer writes onto a full disk
        r = gctrace(*args, timeout=120)
        # THEN one line says the disk is full (not "Input/output error"), exit 2, and the disk is as it was
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.endswith(": No space left on device\n") and r.stderr.count("\n") == 1, (args, r.stderr)
        assert snapshot(full_disk) == before, args


def _interrupt_mid_write(tmp_path, args):
    """_interrupt_mid_write starts gctrace, sends SIGINT once its temp file has data, and returns the result."""
    p = subprocess.Popen([sys.executable, "-m", "gctrace", *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.poll() is None:
        written = [n for n in os.listdir(tmp_path) if (tmp_path / n).is_file() and (tmp_path / n).stat().st_size]
        if written:
            break
        time.sleep(0.005)
    assert p.poll() is None, "the writer finished before it could be interrupted"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    return p.returncode, err, written


@pytest.mark.parametrize("name", ["d.jsonl", "d.json.gz"])
def test_ctrl_c_mid_write_exits_130_and_leaves_nothing(tmp_path, name):
    # GIVEN a big recording under way WHEN Ctrl-C arrives while its dump is being written
    rc, err, written = _interrupt_mid_write(tmp_path, ["record", "fill", "--n", "400000", "-q", "-o",
                                                       tmp_path / name])
    assert written  # the signal did arrive mid-write
    # THEN exit 130 with exactly one line, and no dump, whole, partial or temp, is left
    assert (rc, err) == (130, "gctrace: interrupted\n")
    assert os.listdir(tmp_path) == []


def test_ctrl_c_is_130_not_the_fail_on_status(monkeypatch):
    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "_analyze", interrupted)
    r = run("analyze", CLEARED, "--fail-on", "flagged")
    assert (r.exit_code, r.stderr) == (130, "gctrace: interrupted\n")


# --- 6. the heap cache trusts nothing it reads --------------------------------------------------------------------


def test_a_dump_rewritten_in_place_with_the_same_size_and_mtime_is_parsed_again(cache_everything, write_dump):
    # GIVEN a dump loaded through the cache
    path = write_dump(dump_doc([{"addr": 0x1000, "size": 16}]))
    assert heapcache.load_heap(path).obj_size.tolist() == [16]
    st = path.stat()
    # WHEN its content changes in place, keeping its size, inode and modification time
    time.sleep(0.05)  # past the file system's clock tick: the rewrite gets a new ctime
    path.write_text(path.read_text().replace('"size": 16', '"size": 32'))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns, path.stat().st_ino) == \
           (st.st_size, st.st_mtime_ns, st.st_ino)
    # THEN the new content is what comes back
    assert heapcache.load_heap(path).obj_size.tolist() == [32]


def test_a_dump_changed_during_the_last_clock_tick_is_not_cached(monkeypatch, write_dump):
    # GIVEN a big-enough dump written a moment ago (within RACY_NS: a same-tick rewrite would keep its ctime)
    monkeypatch.setattr(heapcache, "MIN_OBJECTS", 0)
    monkeypatch.setattr(heapcache, "RACY_NS", 10**9, raising=False)
    path = write_dump(dump_doc([{"addr": 0x1000, "size": 16}]))
    # WHEN it is loaded THEN nothing is cached; once it is older than RACY_NS, it is
    heapcache.load_heap(path)
    assert cached_entries(heapcache.cache_dir()) == []
    time.sleep(1.1)
    heapcache.load_heap(path)
    assert len(cached_entries(heapcache.cache_dir())) == 1


def _spy_parses(monkeypatch):
    calls = []
    real = heapcache.load_dump

    def parse(*a, **kw):
        calls.append(a[0])
        return real(*a, **kw)

    monkeypatch.setattr(heapcache, "load_dump", parse)
    return calls


def test_an_edited_array_is_caught_by_its_checksum(cache_everything, write_dump):
    # GIVEN a cached dump whose sizes array is edited on disk (its .npy header intact, its length the same)
    path = write_dump(dump_doc([{"addr": 0x1000, "size": 16}, {"addr": 0x2000, "size": 32}]))
    heapcache.load_heap(path)
    (entry,) = cached_entries(heapcache.cache_dir())
    (npy,) = entry.glob("*obj_size.npy")
    data = bytearray(npy.read_bytes())
    data[-8:] = (4096).to_bytes(8, "little")
    npy.write_bytes(bytes(data))
    parses = _spy_parses(cache_everything)
    # WHEN it is loaded THEN it is parsed again and right, and the entry is written anew and used after
    assert heapcache.load_heap(path).obj_size.tolist() == [16, 32] and len(parses) == 1
    assert heapcache.load_heap(path).obj_size.tolist() == [16, 32] and len(parses) == 1


@pytest.mark.skipif(not ROOT, reason="giving files to another user needs root")
def test_an_entry_owned_by_someone_else_is_neither_used_nor_deleted(cache_everything, write_dump):
    # GIVEN a cached dump whose entry now belongs to another user (nobody)
    path = write_dump(dump_doc([{"addr": 0x1000, "size": 16}]))
    heapcache.load_heap(path)
    (entry,) = cached_entries(heapcache.cache_dir())
    for p in [entry, *entry.iterdir()]:
        os.chown(p, 65534, 65534)
    before = snapshot(entry)
    parses = _spy_parses(cache_everything)
    # WHEN the dump is loaded, twice THEN it is parsed each time, and the foreign entry is left as it was
    assert heapcache.load_heap(path).obj_size.tolist() == [16]
    assert heapcache.load_heap(path).obj_size.tolist() == [16]
    assert len(parses) == 2 and snapshot(entry) == before
    assert run("cache", "--clear").exit_code == 0 and snapshot(entry) == before


def test_a_group_or_world_writable_cache_is_not_used(cache_everything, write_dump):
    # GIVEN a cached dump, then its store made writable by everyone (anyone could have planted an entry)
    path = write_dump(dump_doc([{"addr": 0x1000, "size": 16}]))
    heapcache.load_heap(path)
    (entry,) = cached_entries(heapcache.cache_dir())
    os.chmod(entry.parent, 0o777)
    parses = _spy_parses(cache_everything)
    # WHEN the dump is loaded THEN it is parsed, and the entry is neither read nor deleted
    assert heapcache.load_heap(path).obj_size.tolist() == [16] and len(parses) == 1
    assert entry.exists()


def test_a_symlink_planted_as_the_entry_is_not_followed(cache_everything, write_dump, tmp_path):
    # GIVEN two cached dumps, and the first one's entry replaced by a symlink to the second one's
    a = write_dump(dump_doc([{"addr": 0x1000, "size": 16}]), "a.json")
    b = write_dump(dump_doc([{"addr": 0x1000, "size": 48}, {"addr": 0x2000, "size": 48}]), "b.json")
    heapcache.load_heap(a)
    (ea,) = cached_entries(heapcache.cache_dir())
    heapcache.load_heap(b)
    (eb,) = [e for e in cached_entries(heapcache.cache_dir()) if e != ea]
    for f in ea.iterdir():
        f.unlink()
    ea.rmdir()
    ea.symlink_to(eb)
    # WHEN the first dump is loaded THEN its own objects come back, and the symlink and its target stay
    assert heapcache.load_heap(a).obj_size.tolist() == [16]
    assert ea.is_symlink() and (eb / "skeleton.json").exists()


def test_the_cache_keeps_to_its_byte_budget(cache_everything, write_dump):
    # GIVEN a byte budget that holds one entry of these dumps but not two
    paths = [write_dump(dump_doc([{"addr": 0x1000 * (k + 1), "size": 16}]), f"d{k}.json") for k in range(3)]
    heapcache.load_heap(paths[0])
    (first,) = cached_entries(heapcache.cache_dir())
    one = sum(f.stat().st_size for f in first.iterdir())
    cache_everything.setenv("GCTRACE_CACHE_BYTES", str(one + one // 2))
    # WHEN the others are loaded
    for p in paths[1:]:
        heapcache.load_heap(p)
    # THEN only the last is kept, within the budget
    (kept,) = cached_entries(heapcache.cache_dir())
    assert sum(f.stat().st_size for f in kept.iterdir()) <= one + one // 2
    assert heapcache.list_entries()[0].source == os.path.realpath(paths[-1])
    # AND a heap bigger than the whole budget is not stored at all, and evicts nothing
    big = write_dump(dump_doc([{"addr": 0x1000 * (k + 1), "size": 16} for k in range(500)]), "big.json")
    assert heapcache.load_heap(big).n_objects == 500
    assert cached_entries(heapcache.cache_dir()) == [kept]


# --- 11. record under a limited address space --------------------------------------------------------------------


def test_record_under_a_limited_address_space_says_how_to_ask_for_less(tmp_path):
    # GIVEN an address space of 400 MB (ulimit -v), too small for the default 8 GiB arena
    out = tmp_path / "d.json"
    limited = f"ulimit -v 400000; exec {sys.executable} -m gctrace record fill --n 100 -o {out}"
    # WHEN record runs THEN one line says what failed and which option to use, exit 2, nothing written
    r = subprocess.run(["bash", "-c", limited], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "--arena" in r.stderr and "Traceback" not in r.stderr
    assert os.listdir(tmp_path) == []
    # WHEN it asks for the arena the message suggests THEN it records a dump that analyzes
    arena = r.stderr.split("--arena ")[1].split()[0]
    r = subprocess.run(["bash", "-c", limited + f" --arena {arena}"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert run("analyze", out).exit_code == 0
