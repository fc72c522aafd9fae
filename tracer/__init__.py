"""gctrace.tracer produces dumps: an instrumented Go 1.19 map on a native heap.

The native core (tracer/*.c, built as libgcmap) is loaded lazily by
:mod:`gctrace.tracer.binding`; importing this package needs no compiler, so
``gctrace analyze`` works where none exists. :mod:`gctrace.tracer.scenarios`
records the named workloads behind ``gctrace record``.
"""
