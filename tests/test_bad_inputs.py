"""Every invalid dump in fixtures/bad/ ends the run with its one expected line and exit 2.

The CLI runs as a real process (python -m gctrace) from the repository root,
so the check covers what a user sees: the exact stderr line, an empty stdout,
and no traceback.
"""

import subprocess
import sys

import pytest

from dumps import FIXTURES, ROOT

BAD = sorted(p for p in (FIXTURES / "bad").iterdir() if p.suffix not in (".stderr", ".md"))


def test_there_are_bad_fixtures():
    assert len(BAD) >= 20


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_dump_is_refused_with_one_line(path):
    # GIVEN an invalid dump and the line it must produce
    expected = path.with_name(path.name + ".stderr").read_text()
    rel = path.relative_to(ROOT)
    # WHEN it is analyzed
    r = subprocess.run([sys.executable, "-m", "gctrace", "analyze", str(rel)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    # THEN exit 2, exactly the expected line, nothing else
    assert r.returncode == 2
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    assert r.stderr == expected
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"gctrace: {rel}: ")
