"""The C unit tests of the tracer's core pass, also under ASan + UBSan."""

import shutil
import subprocess
from pathlib import Path

import pytest

TRACER = Path(__file__).resolve().parent.parent / "tracer"

pytestmark = pytest.mark.skipif(
    not (shutil.which("make") and (shutil.which("cc") or shutil.which("gcc"))),
    reason="NO C COMPILER: the tracer's C unit tests cannot be built")


@pytest.mark.parametrize("target", ["test", "sanitize"])
def test_c_unit_tests(target):
    out = subprocess.run(["make", "-C", str(TRACER), target], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "test_gcmap: ok" in out.stdout
