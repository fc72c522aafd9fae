"""Every example in a docstring of the gctrace package runs and prints what it says.

pytest's --doctest-modules only sees tests/ (the package's directories map to
gctrace.* through package-dir, which pytest's collector does not follow), so
the modules are imported by their package names here and run with doctest.
The test builders (tests/builders.py: tiny_heap, with_events) are handed to
every example as globals: the examples build their heaps with them, and the
builders ship with the tests, not the package.
"""

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import gctrace
import gctrace.analysis
import gctrace.analysis.load
import gctrace.tracer
import gctrace.tracer.goheap
import gctrace.tracer.native
from builders import tiny_heap, with_events

ALL_MODULES = sorted(m.name for pkg in (gctrace, gctrace.analysis, gctrace.analysis.load, gctrace.tracer,
                                                 gctrace.tracer.native, gctrace.tracer.goheap)
                     for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + ".")
                     # not the C libraries, nor __main__ (importing it runs the CLI)
                     if importlib.util.find_spec(m.name).origin.endswith(".py") and m.name != "gctrace.__main__")


def examples(name: str) -> int:
    """examples counts the docstring examples of module ``name`` (what doctest.testmod would run)."""
    return sum(len(t.examples) for t in doctest.DocTestFinder().find(importlib.import_module(name)))


# Only the modules that have examples: a parametrisation over one without any would pass having run nothing.
MODULES = [name for name in ALL_MODULES if examples(name) > 0]


def test_the_package_has_modules_with_examples():
    assert {"gctrace.analysis.model", "gctrace.analysis.mark", "gctrace.native", "gctrace.cli"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS,
                             extraglobs={"tiny_heap": tiny_heap, "with_events": with_events})
    assert result.attempted > 0, f"{name}: no example ran"
    assert result.failed == 0
