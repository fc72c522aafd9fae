"""gctrace.tracer produces dumps, from two producers that share nothing but the format.

1. The native runtime: an instrumented Go 1.19 map (map.c) and Go 1.26 Swiss
   map (swiss.c) on a native heap (heap.c), collector (gc.c), event log and
   dump writer (record.c) and residency probes (residency.c), built as
   libgcmap and loaded lazily by :mod:`gctrace.tracer.binding`;
   :mod:`gctrace.tracer.scenarios` are the workloads behind ``gctrace record``
   and :mod:`gctrace.tracer.loadfactor` measures both maps' load factors.
2. The Go heap-dump importer behind ``gctrace import``: a real Go program's
   runtime/debug.WriteHeapDump (:mod:`gctrace.tracer.goheapdump`, with the
   optional C scanner :mod:`gctrace.tracer.goscan`), its binary's symbols and
   DWARF (:mod:`gctrace.tracer.gotypes`, cached by :mod:`gctrace.tracer.dwarfcache`)
   and the residency file of the Go helper package in ``go/gctraceres``, joined by
   :mod:`gctrace.tracer.goimport` (:mod:`gctrace.tracer.gowrite`: a C writer, prototype);
   :mod:`gctrace.tracer.gosnapshot` reads a live Go process or a core file into the same HeapDump.

Importing this package needs no compiler, so ``gctrace analyze`` works where
none exists. Nothing here imports the analyzer.
"""
