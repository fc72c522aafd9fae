"""setup.py adds the tracer's native core and the loader's C parser to the package as optional extensions.

Everything else (metadata, dependencies, the package-dir mapping) is in
pyproject.toml. The extension is optional: where no C compiler exists the
build prints a warning and installs the rest, so ``gctrace analyze`` works
there; ``gctrace record`` then says the native tracer is missing
(gctrace.errors.MissingToolError). The library is plain C loaded with ctypes
(see tracer/native/binding.py), not a CPython module: it defines no PyInit. The same holds for the loader's
record parser (analysis/_fastparse.c, loaded by analysis/fastparse.py): without
it the loader reads every record in Python, only slower; and for the heap
graph's loops (analysis/_heapgraph.c, loaded by analysis/heapgraph.py):
without it numpy, scipy and Python resolve, mark and dominate, only slower; and
for the Go heap-dump importer's scanner of object records (tracer/goheap/_goheapdump.c,
loaded by tracer/goheap/goscan.py): without it the importer reads them in Python.
"""

from setuptools import Extension, setup

SOURCES = ["heap.c", "map.c", "swiss.c", "gc.c", "record.c", "residency.c"]

setup(
    ext_modules=[
        Extension(
            "gctrace.tracer.native._gcmap",
            sources=[f"tracer/native/{s}" for s in SOURCES],
            depends=["tracer/native/gcmap.h", "tracer/native/runtime.h"],
            extra_compile_args=["-std=c11", "-O2"],
            optional=True,
        ),
        Extension(
            "gctrace.analysis._fastparse",
            sources=["analysis/_fastparse.c"],
            extra_compile_args=["-std=c11", "-O2"],
            optional=True,
        ),
        Extension(
            "gctrace.tracer.goheap._goheapdump",
            sources=["tracer/goheap/_goheapdump.c"],
            extra_compile_args=["-std=c11", "-O2"],
            optional=True,
        ),
        Extension(
            "gctrace.tracer.goheap._gowrite",
            sources=["tracer/goheap/_gowrite.c"],
            extra_compile_args=["-std=c11", "-O2"],
            optional=True,
        ),
        Extension(
            "gctrace.analysis._heapgraph",
            sources=["analysis/_heapgraph.c"],
            extra_compile_args=["-std=c11", "-O2"],
            optional=True,
        ),
    ],
)
