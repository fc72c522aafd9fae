"""load reads a version-1 gctrace dump into a columnar Heap, validating it.

The format is docs/dump-format.md. Both forms are read: one JSON document, or
JSON Lines (a header line, then one record a line), either optionally gzipped
(recognised by the gzip magic, not the file name). JSON Lines is streamed in
batches; the document form is parsed with one orjson call.

When the optional C parser is built (``fastparse``), it reads the object and
event records, the bulk of a big dump, straight into arrays: JSON Lines in
chunks of bytes, and in the document form the ``objects`` and ``events``
arrays of the whole file's bytes, while orjson reads the small sections. It
accepts only what the checks below accept and leaves every other record to
them, so both paths build the same Heap and raise the same errors.

Every rule the spec states is checked, and a violation raises DumpError
naming the file and the record, with addresses in hex:
``heap.json: object 0xc000010000: overlaps object 0xc00000ffe0``.
Nothing is dropped silently: a record the spec does not allow is an error;
unknown keys inside ``meta`` and inside records are ignored, as the spec says.

Beyond the spec, values are bounded so arrays stay exact: every integer must
fit in a signed 64-bit word (the spec promises addresses below 2^53).

The input is opened once and read front to back (pipes, FIFOs, ``-``), its
first byte sniffed, and what is held is bounded (a line by MAX_LINE from a
pipe, by the input's own size or the gzip bound otherwise; the document
limits), so no input takes unbounded memory. The end record, when there is
one, must count what was read; a key given twice in any object is refused
(orjson would keep the last). See "Readings of the spec" in the format.

The package, one file per job (docs/validation.md says which check runs where):

- schema: the format's names and bounds, and the object columns, declared once;
- framing: bytes to records (gzip, document or JSON Lines, C chunks in threads);
- records: the spec's rules, one record at a time: the reference;
- batches: the same rules vectorised over many records, or False to hand them back;
- checks: the rules that need the whole dump (map arrays inside objects);
- assemble: the validated columns into one Heap.

``load`` is the one entry point the commands use: it decides, through the heap
cache, whether to parse. ``load_dump`` always parses.
"""

from __future__ import annotations

from gctrace.errors import DumpError

from ..model import Heap
from .assemble import _Builder
from .framing import load_dump
from .schema import (BATCH, CHUNK, DOCUMENT_PIECE, FORMAT, GZIP_DOCUMENT_FLOOR, GZIP_RATIO, HEADER_PEEK,  # noqa: F401
                     LINE_PIECE, MAX_LEADING_SPACE, MAX_LINE, PIPE_DOCUMENT_LIMIT, VERSION)

__all__ = ["DumpError", "FORMAT", "VERSION", "load", "load_dump", "_Builder"]


def load(path, progress: bool = False, cache: bool = True) -> Heap:
    """load returns the dump's validated Heap: the one entry point every command uses.

    With ``cache`` (the default) a big dump's heap comes from the heap cache
    when it holds it, and is stored there after a parse (analysis/heapcache.py
    decides: size threshold, GCTRACE_CACHE=0); without, the dump is parsed.
    Either way the Heap passed every check of docs/validation.md.
    """
    if not cache:
        return load_dump(path, progress)
    from ..heapcache import load_heap  # heapcache parses through load_dump: imported here, not at the top

    return load_heap(path, progress)
