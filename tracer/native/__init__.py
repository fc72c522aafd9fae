"""gctrace.tracer.native produces dumps from a native model of Go's maps, heap and collector.

What it produces: a dump (docs/dump-format.md) of a heap where every
allocation, free, pointer store and madvise is known, with residency read
from the kernel for the model's own arena. ``gctrace record`` runs it.

- The C runtime, built as libgcmap (``make -C tracer``, or the optional
  extension ``_gcmap`` of ``pip install``): Go 1.19's hmap (map.c) and Go
  1.26's Swiss-table map (swiss.c) on a page-based heap with Go's size
  classes and a scavenger whose madvise policy is a switch (heap.c), a
  precise collector, stop-the-world or concurrent with the hybrid write
  barrier (gc.c), the event log and dump writer (record.c), and the
  residency probes (residency.c). gcmap.h is its interface; test_gcmap.c
  its C unit tests.
- :mod:`.binding` loads it with ctypes (``Runtime``, ``Map``, ``Root``).
- :mod:`.scenarios` are the workloads behind ``gctrace record``.
- :mod:`.loadfactor` counts both maps' load factors (docs/load-factors.md).

Importing this package needs no compiler; the library is loaded on first use.
"""
