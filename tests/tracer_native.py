"""tracer_native: makes the tracer's native library available to the tests that need it.

require_native() builds it with ``make -C tracer`` when a C compiler exists
(make does nothing when it is up to date) and skips the calling module,
loudly, only when there is no compiler at all.
"""

import shutil

import pytest

from gctrace.tracer.native import binding


def require_native():
    """require_native returns the loaded library, building it first if it can."""
    if not binding.os.environ.get("GCTRACE_NATIVE_LIB"):
        if shutil.which("make") and (shutil.which("cc") or shutil.which("gcc")):
            binding.build_native()
        elif binding.library_path() is None:
            pytest.skip("NO C COMPILER: the native tracer (tracer/*.c) cannot be built, "
                        "so the tracer tests do not run", allow_module_level=True)
    return binding.load()
