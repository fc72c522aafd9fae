"""Any input is refused in seconds and in bounded memory; pipes, FIFOs and stdin are read once.

The loader sniffs the first byte (a dump is a JSON object, or gzip data),
caps a JSON Lines line at MAX_LINE, and holds a document from a pipe or out
of gzip data only up to a bound; it opens its input once, so a pipe is not
drained by a first look. The CLI runs for real where memory and time are
the point: each run happens in a fresh process whose peak RSS is read with
getrusage, under an address-space limit that keeps a regression from taking
the machine's memory.
"""

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time

import orjson
import pytest

from dumps import BASE, FIXTURES, dump_doc
from gctrace.analysis import heapcache, load
from gctrace.analysis.load import load_dump
from gctrace.errors import DumpError

LIMIT_MB = 400
# Runs a command under a 2 GiB address-space limit; prints its exit status and peak RSS in MB.
MEASURE = """
import resource, subprocess, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(r.stderr)
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""
DOC = FIXTURES / "map_after_mapclear.json"
LINES_GZ = FIXTURES / "map_after_mapclear_lines_gz.jsonl.gz"


def measured(*args, timeout=60):
    """measured runs ``gctrace args``: (exit status, peak RSS in MB, stderr, seconds)."""
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "gctrace", *map(str, args)],
                       capture_output=True, text=True, timeout=timeout)
    status, peak = map(int, r.stdout.split())
    return status, peak, r.stderr, time.monotonic() - t


def gctrace(*args, **kw):
    return subprocess.run([sys.executable, "-m", "gctrace", *map(str, args)], capture_output=True, timeout=60, **kw)


def test_dev_zero_is_refused_at_once_in_little_memory():
    status, peak, err, secs = measured("analyze", "/dev/zero")
    assert status == 2 and peak < LIMIT_MB and secs < 30
    assert err == "gctrace: /dev/zero: not a gctrace dump: it starts with byte 0x00, not '{' (a JSON object) " \
                  "or gzip data\n"


@pytest.mark.parametrize("name", ["sparse.json", "sparse.jsonl"])
def test_a_2gb_sparse_file_is_refused_at_once_in_little_memory(tmp_path, name):
    # GIVEN 2 GB of zero bytes that take no disk (truncate -s 2G)
    path = tmp_path / name
    with open(path, "wb") as f:
        f.truncate(2 << 30)
    status, peak, err, secs = measured("analyze", path)
    assert status == 2 and peak < LIMIT_MB and secs < 30 and err.count("\n") == 1
    assert "not a gctrace dump" in err


def test_import_of_dev_zero_is_refused_at_once_in_little_memory():
    status, peak, err, secs = measured("import", "go-heapdump", "/dev/zero", "--binary",
                                       FIXTURES / "go" / "mapheap" / "mapheap", "-o", os.devnull)
    assert status == 2 and peak < LIMIT_MB and secs < 30
    assert err.startswith("gctrace: /dev/zero: not a Go heap dump: it starts with b'\\x00") and err.count("\n") == 1


@pytest.mark.parametrize("fast", ["1", "0"])
def test_a_line_from_a_pipe_longer_than_the_cap_is_refused(tmp_path, monkeypatch, fast):
    # GIVEN a cap of 1 MiB (256 MiB in use) and a JSON Lines dump whose second line never ends, through a FIFO
    monkeypatch.setattr(load, "MAX_LINE", 1 << 20)
    monkeypatch.setenv("GCTRACE_FASTPARSE", fast)
    path = tmp_path / "d.jsonl"
    os.mkfifo(path)

    def feed():
        try:
            with open(path, "wb") as w:
                w.write(b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096}}\n'
                        b'{"object": {"addr": 4096, "size": 16, "x": "' + b"a" * (3 << 20))
        except BrokenPipeError:
            pass

    threading.Thread(target=feed, daemon=True).start()
    with pytest.raises(DumpError) as e:
        load_dump(path)
    assert e.value.problem == ("line 2: longer than 1 MiB, the most a line may have from this input "
                               "(a pipe's cap; a file's lines may be as long as the file)")


@pytest.mark.parametrize("fast", ["1", "0"])
def test_a_file_may_have_a_line_longer_than_the_pipe_cap(tmp_path, monkeypatch, fast):
    # GIVEN a cap of 1 MiB for pipes and a JSON Lines file with a 3 MiB object record (one object of 96k
    # pointers, as a real slice of pointers gives), plain and gzipped
    monkeypatch.setattr(load, "MAX_LINE", 1 << 20)
    monkeypatch.setenv("GCTRACE_FASTPARSE", fast)
    n = 96 * 1024
    base = 0xC000000000
    obj = {"addr": base, "size": 8 * n, "ptrs": [[8 * k, base] for k in range(n)]}
    text = (b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096}}\n'
            + orjson.dumps({"object": obj}) + b"\n"
            + orjson.dumps({"root": {"name": "g", "kind": "global", "target": base}}) + b"\n"
            + b'{"end": {"objects": 1, "roots": 1, "maps": 0, "pages": 0, "events": 0}}\n')
    assert len(text.splitlines()[1]) > 1 << 20
    for name, data in (("d.jsonl", text), ("d.jsonl.gz", gzip.compress(text))):
        path = tmp_path / name
        path.write_bytes(data)
        # WHEN it is loaded
        heap = load_dump(path)
        # THEN the object and every pointer field are there (a file's size bounds its lines)
        assert len(heap.obj_addr) == 1 and len(heap.ptr_off) == n and (heap.ptr_target == base).all()


def test_a_gzip_bomb_document_is_refused_once_it_outgrows_its_bound(tmp_path, monkeypatch):
    # GIVEN a gzipped document that inflates 1000-fold, and a floor of 1 MiB (256 MiB in use)
    monkeypatch.setattr(load, "GZIP_DOCUMENT_FLOOR", 1 << 20)
    path = tmp_path / "bomb.json.gz"
    path.write_bytes(gzip.compress(b'{"format": "gctrace.dump"' + b" " * (8 << 20) + b"}"))
    assert 64 * path.stat().st_size < (1 << 20)
    with pytest.raises(DumpError) as e:
        load_dump(path)
    assert e.value.problem.startswith("a document of more than 1 MiB from a pipe or gzip data: too big to hold")


def test_whitespace_alone_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "blank.json"
    path.write_bytes(b" " * (3 << 20))
    with pytest.raises(DumpError) as e:
        load_dump(path)
    assert e.value.problem == "not a gctrace dump: more than 1024 KiB of whitespace and no '{'"


def test_an_interrupt_during_a_load_is_not_swallowed(tmp_path):
    # GIVEN a load blocked on a pipe that sends a header and then nothing
    proc = subprocess.Popen([sys.executable, "-m", "gctrace", "analyze", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(b'{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096}}\n')
    proc.stdin.flush()
    time.sleep(3)
    assert proc.poll() is None
    # WHEN it gets SIGINT THEN it stops (130 once the CLI maps Ctrl-C; 1 with a bare KeyboardInterrupt)
    proc.send_signal(signal.SIGINT)
    try:
        status = proc.wait(timeout=20)
    finally:
        proc.kill()
        proc.stdin.close()
    assert status in (1, 130, -signal.SIGINT)


# -- pipes, FIFOs, stdin ------------------------------------------------------

@pytest.mark.parametrize("src", [DOC, LINES_GZ], ids=["document", "jsonl.gz"])
def test_stdin_as_dash_and_dev_stdin_give_the_files_report(src):
    want = gctrace("analyze", src, "--json").stdout
    for arg in ("-", "/dev/stdin"):
        r = gctrace("analyze", arg, "--json", input=src.read_bytes())
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == json.loads(want)


@pytest.mark.parametrize("src", [DOC, LINES_GZ], ids=["document", "jsonl.gz"])
def test_a_named_fifo_is_read_once(tmp_path, src):
    # GIVEN a FIFO that a writer fills once (a second open would hang)
    fifo = tmp_path / "dump.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(src.read_bytes()), daemon=True)
    writer.start()
    r = gctrace("analyze", fifo, "--json")
    writer.join(5)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == json.loads(gctrace("analyze", src, "--json").stdout)


def test_a_fifo_bypasses_the_heap_cache(tmp_path, monkeypatch):
    # GIVEN a cache that would store any dump, and a dump read through a FIFO
    cache = tmp_path / "cache"
    monkeypatch.setenv("GCTRACE_CACHE_DIR", str(cache))
    monkeypatch.setattr(heapcache, "MIN_OBJECTS", 0)
    monkeypatch.setattr(heapcache, "RACY_NS", 0)  # a dump written just now is cached (the heap cache's clock rule)
    fifo = tmp_path / "dump.fifo"
    os.mkfifo(fifo)
    data = json.dumps(dump_doc([{"addr": BASE, "size": 16}], [{"name": "g", "kind": "global", "target": BASE}]))
    for _ in range(2):
        writer = threading.Thread(target=lambda: fifo.write_text(data), daemon=True)
        writer.start()
        heap = heapcache.load_heap(fifo)
        writer.join(5)
        assert heap.n_objects == 1
    # THEN nothing was stored: the FIFO's stat says nothing about what it holds next time
    assert not cache.exists() or not any(cache.iterdir())
    # (a regular file of the same content is stored: the cache is on)
    path = tmp_path / "d.json"
    path.write_text(data)
    heapcache.load_heap(path)
    assert any(p.is_dir() for p in heapcache.store_dir().iterdir())
