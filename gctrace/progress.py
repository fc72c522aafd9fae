"""progress shows a bar on a terminal and nothing when stderr is piped.

Long steps (loading a big dump, recording a big scenario) take a ``progress``
flag; the CLI sets it from ``sys.stderr.isatty()`` and ``--quiet``. Steps
called through code that has no such flag (an import's parse and DWARF
reading, inside the importer) pass None, which follows ``showing``: the CLI
wraps the whole command in ``with showing(True):``.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys

_showing = contextvars.ContextVar("gctrace_progress", default=False)


@contextlib.contextmanager
def showing(enabled: bool):
    """showing makes bars asked for with ``enabled=None`` appear (on a terminal) inside the with block."""
    token = _showing.set(bool(enabled))
    try:
        yield
    finally:
        _showing.reset(token)


class _Silent:
    """_Silent is the bar used when progress is off: every call does nothing."""

    def update(self, n=1):
        pass

    def set_description(self, desc):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def bar(total, desc: str, enabled: bool | None, unit: str = "it"):
    """bar returns a tqdm bar when ``enabled`` (None: as ``showing`` says) and stderr is a terminal, else a silent one."""
    if enabled is None:
        enabled = _showing.get()
    if not enabled or not sys.stderr.isatty():
        return _Silent()
    from tqdm import tqdm

    scale = unit == "B"
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=scale, leave=False, file=sys.stderr)
