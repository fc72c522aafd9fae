"""progress shows a bar on a terminal and nothing when stderr is piped.

Long steps (loading a big dump, recording a big scenario) take a ``progress``
flag; the CLI sets it from ``sys.stderr.isatty()`` and ``--quiet``.
"""

from __future__ import annotations

import sys


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


def bar(total, desc: str, enabled: bool, unit: str = "it"):
    """bar returns a tqdm bar when ``enabled`` and stderr is a terminal, else a silent one."""
    if not enabled or not sys.stderr.isatty():
        return _Silent()
    from tqdm import tqdm

    scale = unit == "B"
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=scale, leave=False, file=sys.stderr)
