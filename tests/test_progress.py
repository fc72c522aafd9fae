"""Long work shows progress on a terminal and stays quiet when piped or with --quiet.

The CLI runs for real, its stderr on a pseudo-terminal, over a dump of 1M
objects: the size at which the analysis steps get bars of their own.
"""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

HEADER = '{"format": "gctrace.dump", "version": 1, "meta": {"page_size": 4096, "ptr_size": 8}}'
BASE = 0xC000000000
N = 1_000_000


@pytest.fixture(scope="module")
def big_dump(tmp_path_factory):
    """big_dump is 1M 16-byte objects in a row, each pointing at the next, one root at the first, and its end record."""
    path = tmp_path_factory.mktemp("progress") / "big.jsonl"
    lines = [HEADER] + [f'{{"object": {{"addr": {BASE + 16 * i}, "size": 16, "ptrs": [[0, {BASE + 16 * i + 16}]]}}}}'
                        for i in range(N - 1)]
    lines += [f'{{"object": {{"addr": {BASE + 16 * (N - 1)}, "size": 16}}}}',
              f'{{"root": {{"name": "main.head", "kind": "global", "target": {BASE}}}}}',
              f'{{"end": {{"objects": {N}, "roots": 1, "pages": 0, "maps": 0, "events": 0}}}}']
    path.write_text("\n".join(lines) + "\n")
    return path


def run_on_terminal(args) -> tuple[str, bytes]:
    """run_on_terminal runs ``gctrace args`` with stderr on a pseudo-terminal: (stdout, what the terminal got)."""
    master, slave = pty.openpty()
    # A terminal of 24 x 100: a new pty is 0 x 0, and tqdm draws nothing in no columns.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "gctrace", *args], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read().decode()
    assert proc.wait(timeout=120) == 0, seen.decode(errors="replace")
    os.close(master)
    return out, seen


def test_a_terminal_sees_every_long_step_of_a_big_heap(big_dump):
    out, seen = run_on_terminal(["top", str(big_dump), "-n", "1"])
    assert "0xc000000000" in out  # the head of the list retains it all
    for step in (b"load", b"mark", b"pages", b"dominator tree"):
        assert step in seen, (step, seen[-500:])


def test_quiet_keeps_the_terminal_clean(big_dump):
    out, seen = run_on_terminal(["analyze", str(big_dump), "--quiet"])
    assert "Summary" in out and seen == b""


def test_a_pipe_gets_no_progress(big_dump):
    r = subprocess.run([sys.executable, "-m", "gctrace", "analyze", str(big_dump), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "" and '"count": 1000000' in r.stdout


def test_recording_a_scenario_shows_its_phases_on_a_terminal(tmp_path):
    from tracer_native import require_native

    require_native()
    # GIVEN fill-delete, which inserts then deletes 50k keys
    args = ["record", "fill-delete", "--n", "50000", "-o", str(tmp_path / "d.jsonl")]
    # WHEN it is recorded on a terminal, and again with --quiet
    _, seen = run_on_terminal(args)
    _, quiet = run_on_terminal(args + ["--quiet"])
    # THEN both phases had a bar; quietly, only the summary (scenario: ..., count: 0) is written, no bar
    assert b"\rfill:" in seen and b"\rdelete:" in seen, seen[-300:]
    assert b"|" not in quiet and b"\r" not in quiet.replace(b"\r\n", b"") and b"count: 0" in quiet


def test_an_import_shows_its_steps_on_a_terminal(tmp_path):
    # GIVEN a real Go heap dump and its binary, the DWARF not cached yet (each test has a cache of its own)
    from test_goheapdump import BINARY, DUMPS

    args = ["import", "go-heapdump", str(DUMPS / "grow.heapdump.gz"), "--binary", str(BINARY),
            "-o", str(tmp_path / "d.jsonl")]
    # WHEN it is imported on a terminal THEN each long step is named there
    _, seen = run_on_terminal(args)
    for step in (b"importing", b"reading the heap dump", b"reading DWARF", b"writing d.jsonl"):
        assert step in seen, (step, seen[-500:])
    # AND with --quiet the terminal stays clean (the summary lines aside)
    _, seen = run_on_terminal(args + ["--quiet"])
    assert b"importing" not in seen and b"reading" not in seen and b"objects: " in seen
