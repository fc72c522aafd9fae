"""native finds gctrace's optional C libraries (the tracer, the loader's parser, the heap index).

Each is plain C loaded with ctypes, built either by ``make native`` as
``lib<stem>.so`` or by ``pip install`` as an optional setuptools extension
``_<stem>*.so``, next to the module that loads it. Both may be there after a
rebuild, so the newest wins; an environment variable can name another build.
"""

from __future__ import annotations

import ctypes
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


def open_library(path: Path, protos: dict, version: tuple[str, int] | None = None) -> ctypes.CDLL | None:
    """open_library loads the library at ``path`` and sets its prototypes; None when its version is not ``version``.

    ``protos`` maps a function name to (restype, argtypes). ``version`` is
    (the name of a no-argument function returning int64, the value this
    Python side was written against): a stale build answers another value and
    is not used. A file that will not load raises OSError.
    """
    lib = ctypes.CDLL(str(path))
    if version is not None:
        name, want = version
        getattr(lib, name).restype = ctypes.c_int64
        if getattr(lib, name)() != want:
            return None
    for name, (res, args) in protos.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib


_loaded: dict = {}


def load(directory: Path, stem: str, env_var: str, protos: dict, version: tuple[str, int]) -> ctypes.CDLL | None:
    """load returns optional library ``stem`` loaded once, or None when it is not built, will not load or is stale.

    Every optional C core (the loader's parser, the heap index, the Go
    heap-dump scanner and writer) is loaded here, so each answers the same
    way: without its library the caller takes its pure-Python path.
    """
    key = (str(directory), stem)
    if key not in _loaded:
        path = library_path(directory, stem, env_var)
        try:
            _loaded[key] = open_library(path, protos, version) if path else None
        except OSError:
            _loaded[key] = None
    return _loaded[key]
