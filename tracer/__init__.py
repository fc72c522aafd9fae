"""gctrace.tracer produces dumps, from two producers that share nothing but the format.

- :mod:`gctrace.tracer.native`: a native model of Go's classic and Swiss maps
  on an instrumented heap, collector and scavenger (``gctrace record``).
- :mod:`gctrace.tracer.goheap`: importers of real Go programs' memory, heap
  dumps, snapshots by PID and core files, typed with DWARF (``gctrace import``,
  ``gctrace snapshot``, ``gctrace record-go``).

Each subpackage's docstring says what it produces and from which files.
Importing this package needs no compiler, so ``gctrace analyze`` works where
none exists. Nothing here imports the analyzer, and neither producer imports
the other.
"""
