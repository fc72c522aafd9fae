"""GctraceError is the one exception family users see.

The CLI catches it once, prints ``gctrace: <message>`` on one line and exits
with ``exit_code`` (2 for bad input). Internal invariant failures are plain
exceptions (AssertionError, RuntimeError): they are bugs and keep their
traceback.
"""


class GctraceError(Exception):
    """GctraceError is a user-facing failure with an exit status."""

    exit_code = 2


class DumpError(GctraceError):
    """DumpError reports a dump that violates the format (docs/dump-format.md).

    The message names the file and, where there is one, the offending record:
    ``heap.json: object 0xc000010000: overlaps object 0xc00000ffe0``.
    """

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class HeapDumpError(DumpError):
    """HeapDumpError reports a Go heap dump, or a companion of one (the binary, a residency file), that cannot be read.

    Its message names the file and, inside a dump, the offset and record:
    ``heap.dump: offset 1234: object record: truncated``. The Go importer
    raises it; gctrace.tracer.goheap.goheapdump re-exports the name.
    """


class SnapshotError(GctraceError):
    """SnapshotError reports a target or a snapshot file that cannot be used: ``<what>: <problem>``."""

    def __init__(self, what, problem):
        self.path = str(what)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UsageError(GctraceError):
    """UsageError reports a bad option value or an impossible request."""


class MissingToolError(GctraceError):
    """MissingToolError reports an external program or native library that is absent."""


class OutputError(GctraceError):
    """OutputError reports an output that cannot or must not be written: ``r.txt: cannot write: ...``."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

