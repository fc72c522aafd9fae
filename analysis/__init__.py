"""gctrace.analysis: everything that reads dumps. Pure modules (model, mark, pages, maps,
analyze) do no I/O; load reads files, report formats. None of it imports the tracer."""
