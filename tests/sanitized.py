"""sanitized builds a C test driver with AddressSanitizer and UBSan and runs it."""

import shutil
import subprocess

import pytest

from dumps import ROOT


def run_sanitized(tmp_path, driver: str, what: str, args=(), timeout=300, include="analysis") -> subprocess.CompletedProcess:
    """run_sanitized compiles ``driver`` (which #includes a file of ``include``/) under ASan and UBSan and runs it.

    Without a C compiler the test is skipped, saying loudly what was not done.
    """
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip(f"NO C COMPILER: the {what}'s AddressSanitizer/UBSan run was NOT done")
    (tmp_path / "driver.c").write_text(driver)
    exe = tmp_path / "driver"
    build = subprocess.run([cc, "-std=c11", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                            "-fno-omit-frame-pointer", "-I", str(ROOT / include), "-o", str(exe),
                            str(tmp_path / "driver.c")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "PATH": "/usr/bin:/bin"})

