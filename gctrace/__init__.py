"""gctrace: GC reachability and heap-trace analyzer.

The analyzer lives in ``gctrace.analysis`` (folder ``analysis/``), the producers
of dumps in ``gctrace.tracer`` (folder ``tracer/``) and the command line in
``gctrace.cli``. The dump format (docs/dump-format.md) is all they share.
"""

__version__ = "0.1.0"
