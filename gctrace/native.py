"""native finds gctrace's optional C libraries (the tracer, the loader's parser, the heap index).

Each is plain C loaded with ctypes, built either by ``make native`` as
``lib<stem>.so`` or by ``pip install`` as an optional setuptools extension
``_<stem>*.so``, next to the module that loads it. Both may be there after a
rebuild, so the newest wins; an environment variable can name another build.
"""

from __future__ import annotations

import os
from pathlib import Path


def library_path(directory: Path, stem: str, env_var: str) -> Path | None:
    """library_path returns the build of library ``stem`` to load, or None when none is built.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> library_path(d, "x", "GCTRACE_TEST_NO_SUCH_VAR") is None
    True
    >>> _ = (d / "libx.so").write_bytes(b""); library_path(d, "x", "GCTRACE_TEST_NO_SUCH_VAR").name
    'libx.so'
    """
    env = os.environ.get(env_var)
    if env:
        return Path(env)
    found = [p for p in sorted(directory.glob(f"_{stem}*.so")) + [directory / f"lib{stem}.so"] if p.exists()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
