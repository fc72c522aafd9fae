"""gctrace.tracer.goheap produces dumps from the memory of real Go programs, typed with their DWARF.

What it produces: a dump (docs/dump-format.md) of a real Go 1.19 or 1.21-1.27
program's heap, its classic or Swiss maps decoded, from one of three inputs,
all turned into the same :class:`.goheapdump.HeapDump` and written by the
same code (``gctrace import``):

- a heap dump written by ``runtime/debug.WriteHeapDump``
  (:mod:`.goheapdump`, with the optional C scanner of object records
  :mod:`.goscan` / _goheapdump.c), plus the residency file of the Go helper
  package in ``gctraceres/`` that a program may link;
- a snapshot of a running process by PID, or a core file (:mod:`.gosnapshot`,
  docs/snapshot-format.md): no change to the program;
- the program's binary: symbols, DWARF types and the runtime's layout for its
  Go release (:mod:`.gotypes`, cached by build ID in :mod:`.dwarfcache`).

:mod:`.goimport` joins them: version-aware typing, map decoding, pages,
roots, and the dump writer (:mod:`.gowrite`, with the optional C writer of
plain object lines _gowrite.c).
"""
