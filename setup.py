"""setup.py adds the tracer's native core to the package as an optional extension.

Everything else (metadata, dependencies, the package-dir mapping) is in
pyproject.toml. The extension is optional: where no C compiler exists the
build prints a warning and installs the rest, so ``gctrace analyze`` works
there; ``gctrace record`` then says the native tracer is missing
(gctrace.errors.MissingToolError). The library is plain C loaded with ctypes
(see tracer/binding.py), not a CPython module: it defines no PyInit.
"""

from setuptools import Extension, setup

SOURCES = ["heap.c", "map.c", "gc.c", "record.c", "residency.c"]

setup(
    ext_modules=[
        Extension(
            "gctrace.tracer._gcmap",
            sources=[f"tracer/{s}" for s in SOURCES],
            depends=["tracer/gcmap.h", "tracer/runtime.h"],
            extra_compile_args=["-std=c11", "-O2"],
            optional=True,
        )
    ],
)
