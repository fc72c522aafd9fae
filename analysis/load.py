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
first byte sniffed, and what is held is bounded (MAX_LINE, the document
limits), so no input takes unbounded memory. The end record, when there is
one, must count what was read; a key given twice in any object is refused
(orjson would keep the last). See "Readings of the spec" in the format.
"""

from __future__ import annotations

import ctypes
import gc
import gzip
import io
import json
import os
import re
import stat
import sys
import zlib
from array import array
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import chain, repeat
from operator import add, itemgetter

import numpy as np
import orjson

from gctrace.errors import DumpError
from gctrace.progress import bar

from . import fastparse
from .model import (EVENT_OPS, PAGE_STATES, ROOT_KINDS, SWISS_GROUP_SLOTS, SWISS_MAX_LOAD, Events, Heap, MapHeader,
                    PageRuns, Roots, SwissMap, freeze)

FORMAT = "gctrace.dump"
VERSION = 1
TOP_KEYS = {"format", "version", "meta", "objects", "roots", "pages", "maps", "events", "end"}
REQUIRED_TOP = ("format", "version", "meta", "objects", "roots")
SECTIONS = {"object": "objects", "root": "roots", "page": "pages", "map": "maps", "event": "events"}
# The end record's counts, in its order (docs/dump-format.md, "end").
END_KEYS = ("objects", "roots", "pages", "maps", "events")
NO_END = ("no end record: a JSON Lines dump cut at a line boundary would look the same "
          "(producers since gctrace 1.1 write one)")
MAP_REQUIRED = ("hmap", "B", "count", "buckets", "oldbuckets", "nevacuate", "bucketsize")
MAP_OPTIONAL = ("noverflow", "flags", "hash0", "keysize", "elemsize")
MAP_IMPLS = ("hmap", "swiss")
SWISS_REQUIRED = ("count", "dir_ptr", "dir_len", "global_depth", "clear_seq", "slot_size")
SWISS_TABLE_KEYS = ("addr", "capacity", "used", "growth_left", "local_depth", "index", "groups", "groups_len")
EVENT_KEYS = {
    "alloc": ("addr", "size", "kind"),
    "free": ("addr",),
    "write": ("obj", "off", "old", "new"),
    "gc_start": (), "mark_done": (), "sweep_done": (),
    "madvise": ("addr", "len", "advice"),
    "grow_start": ("hmap",), "evacuate": ("hmap",), "grow_end": ("hmap",),
}
INT_LIMIT = 1 << 63
_INT_MAX = INT_LIMIT - 1
_NO_PTRS: list = []  # shared default for objects without ptrs; never mutated
_SCALARS = frozenset((int, str, bool, float, type(None)))
# Records parsed and validated together on the fast path. Small enough that a
# batch's dicts stay in cache (65536 made orjson 2.4x slower than 2048 here).
BATCH = 2048
# Bytes of JSON Lines handed to the C parser at a time.
CHUNK = 8 << 20
_OP_CODE = {op: i for i, op in enumerate(EVENT_OPS)}
# Column, key and check of each op's keys, for the vectorised event path (see add_event for the rules).
_EVENT_COLUMNS = {
    "alloc": (("a", "addr", "pos"), ("b", "size", "pos"), ("text", "kind", "str")),
    "free": (("a", "addr", "int"),),
    "write": (("a", "obj", "int"), ("b", "off", "int"), ("old", "old", "int"), ("new", "new", "int")),
    "gc_start": (), "mark_done": (), "sweep_done": (),
    "madvise": (("a", "addr", "int"), ("b", "len", "int"), ("text", "advice", "str")),
    **{op: (("a", "hmap", "int"), ("b", "bucket", "opt_int"), ("same", "same_size", "opt_bool"))
       for op in ("grow_start", "evacuate", "grow_end")},
}
SLOTS_PER_BUCKET = 8  # Go's bucketCnt
GZIP_MAGIC = b"\x1f\x8b"
NUL = b"\0"
# Bounds on what is read, so that no input (/dev/zero, a sparse file, a gzip bomb) takes unbounded memory.
# A line of JSON Lines holds one record; the biggest real one, a map of a million-entry Swiss table, is ~2 MB.
MAX_LINE = 256 << 20
LINE_PIECE = 1 << 20
# A document is held whole: from a regular file any size is read; from a pipe, or out of gzip data, at most
# this much (gzip: GZIP_RATIO times the compressed size, at least the floor; JSON compresses 5-20x).
PIPE_DOCUMENT_LIMIT = 1 << 30
GZIP_DOCUMENT_FLOOR = 256 << 20
GZIP_RATIO = 64
DOCUMENT_PIECE = 16 << 20
# Whitespace allowed before the first '{'; and how far into the first line the form is looked for.
MAX_LEADING_SPACE = 1 << 20
HEADER_PEEK = 1 << 20


def load_dump(path, progress: bool = False) -> Heap:
    """load_dump reads and validates the dump at ``path`` (``-``: standard input); raises DumpError.

    The input is opened once and read front to back, so pipes, FIFOs and
    /dev/stdin work; what is read is bounded (see _sniff, MAX_LINE and
    PIPE_DOCUMENT_LIMIT), so no input takes unbounded memory.
    """
    path = os.fspath(path)
    builder = _Builder(path)
    # The loader creates millions of short-lived dicts and no cycles: the cyclic
    # collector would rescan the growing heap again and again (2x the load time).
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        with _open(path) as (stream, limit, rewind):
            builder = _read(stream, builder, path, progress, limit, rewind)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DumpError(path, f"truncated or corrupt gzip stream ({e})") from None
    except OSError as e:
        raise DumpError(path, f"cannot read: {e.strerror or e}") from None
    except RecursionError:
        raise DumpError(path, "nesting too deep") from None
    except MemoryError:
        raise DumpError(path, "out of memory while loading it (a limit on address space, ulimit -v?)") from None
    finally:
        if gc_was_on:
            gc.enable()
    return builder.finish()


@contextmanager
def _open(path):
    """_open yields (stream, limit, rewind) for the dump at ``path``, opened once: decompressed when gzip, sniffed.

    ``limit`` bounds the bytes a document may have (None: a regular file, read
    whole); ``rewind`` says whether the stream may seek back to its start (a
    regular file: gzip's own seekable() says yes over a pipe too, then fails).
    """
    raw = open(sys.stdin.fileno(), "rb", closefd=False) if path == "-" else open(path, "rb")
    with raw:
        st = os.fstat(raw.fileno())
        regular = stat.S_ISREG(st.st_mode)
        if raw.peek(2)[:2] == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                _sniff(stream, path)
                # A gzip bomb is refused when it outgrows a generous ratio of its compressed size.
                limit = max(GZIP_DOCUMENT_FLOOR, GZIP_RATIO * st.st_size) if regular else PIPE_DOCUMENT_LIMIT
                yield stream, limit, regular
            return
        _sniff(raw, path)
        yield raw, (None if regular else PIPE_DOCUMENT_LIMIT), regular


def _sniff(stream, path):
    """_sniff refuses at once an input whose first byte after whitespace is not '{' (a dump is a JSON object).

    It consumes nothing but leading whitespace, at most MAX_LEADING_SPACE bytes of it.
    """
    skipped = 0
    while True:
        head = stream.peek(1 << 16)
        if not head:
            raise DumpError(path, "empty file: expected a gctrace dump")
        body = head.lstrip(b" \t\r\n")
        if body:
            break
        stream.read(len(head))  # whitespace only: drop it and look further
        skipped += len(head)
        if skipped > MAX_LEADING_SPACE:
            raise DumpError(path, f"not a gctrace dump: more than {MAX_LEADING_SPACE >> 10} KiB of whitespace "
                                  "and no '{'")
    if body[:1] == b"[":
        raise DumpError(path, "top level must be a JSON object, got a list")
    if body[:1] != b"{":
        c = body[0]
        shown = repr(chr(c)) if 0x21 <= c < 0x7F else f"byte {c:#04x}"
        raise DumpError(path, f"not a gctrace dump: it starts with {shown}, not '{{' (a JSON object) or gzip data")


def _read(stream, builder, path, progress, limit, rewind):
    """_read fills a builder from the stream and returns it (the one given, or a fresh one).

    The form is told from the name or the first line, read at most HEADER_PEEK
    bytes far: a longer first line is a document's (a JSON Lines header is small).
    """
    first = stream.readline(HEADER_PEEK)
    while first and not first.strip():
        first = stream.readline(HEADER_PEEK)
    if not first:
        raise DumpError(path, "empty file: expected a gctrace dump")
    whole = first.endswith(b"\n") or len(first) < HEADER_PEEK
    jsonl_name = path.endswith((".jsonl", ".jsonl.gz"))
    if jsonl_name and not whole:
        first += _line(stream, path, 1, MAX_LINE - len(first))
    header = _try_json(first) if whole else None
    if jsonl_name or (isinstance(header, dict) and "objects" not in header and "format" in header):
        _read_lines(stream, first, builder, path, progress)
        return builder
    if rewind:
        # Read the file again from its start rather than join two copies of it (2x the memory of a big document).
        stream.seek(0)
        data = _read_all(stream, path, limit)
    else:
        data = first + _read_all(stream, path, None if limit is None else limit - len(first), len(first))
    return _read_document(data, builder, path)


def _read_all(stream, path, limit, first=0):
    """_read_all reads the rest of the stream, ``first`` bytes in; more than ``limit`` bytes (None: no limit) is refused."""
    if limit is None:
        return stream.read()
    parts, n = [], 0
    while True:
        part = stream.read(min(DOCUMENT_PIECE, limit + 1 - n))
        if not part:
            break
        if NUL in part:  # never in JSON: refuse '{' and then /dev/zero now, not a gigabyte later
            raise DumpError(path, f"not valid JSON: a NUL byte at byte {first + n + part.index(NUL)}")
        parts.append(part)
        n += len(part)
        if n > limit:
            raise DumpError(path, f"a document of more than {limit >> 20} MiB from a pipe or gzip data: "
                                  "too big to hold (write it as JSON Lines, or as an uncompressed file)")
    return b"".join(parts)


def _line_batches(stream, path, lineno):
    """_line_batches yields the stream's lines in lists of at most BATCH, the first being line ``lineno``.

    It reads CHUNK bytes at a time; a line longer than MAX_LINE is refused.
    Each line keeps its newline, as the C parser hands lines over.
    """
    rest, pending, held = b"", [], 0  # pending: chunks of one line too long for a chunk
    while True:
        chunk = stream.read(CHUNK)
        if chunk and b"\n" not in chunk:
            pending.append(chunk)
            held += len(chunk)
            if len(rest) + held > MAX_LINE:
                raise DumpError(path, f"line {lineno}: longer than {MAX_LINE >> 20} MiB (no record is that big)")
            continue
        if pending:
            chunk, pending, held = b"".join(pending + [chunk]), [], 0
        if not chunk:
            if rest:
                yield [rest]
            return
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        lines = list(map(add, lines, repeat(b"\n")))
        lineno += len(lines)
        for i in range(0, len(lines), BATCH):
            yield lines[i:i + BATCH]


def _line(stream, path, lineno, cap=None):
    """_line reads one line of JSON Lines; one longer than ``cap`` (MAX_LINE) bytes is refused.

    A long line is read in pieces, so refusing one costs the cap, not twice it.
    """
    cap = MAX_LINE if cap is None else cap
    line = stream.readline(LINE_PIECE)
    if len(line) < LINE_PIECE or line.endswith(b"\n"):
        return line
    parts, n = [line], len(line)
    while not parts[-1].endswith(b"\n"):
        part = stream.readline(LINE_PIECE)
        if not part:
            break
        parts.append(part)
        n += len(part)
        if n > cap:
            raise DumpError(path, f"line {lineno}: longer than {MAX_LINE >> 20} MiB (no record is that big)")
    return b"".join(parts)


def _all_ints(values) -> bool:
    """_all_ints reports whether every value is a Python int (bool excluded).

    >>> _all_ints([1, 2]), _all_ints([1, True]), _all_ints([])
    (True, False, True)
    """
    return set(map(type, values)) <= {int}


def _uniform_columns(bodies):
    """_uniform_columns returns {key: column} when every record has the first one's keys, else None.

    The common case of a big dump: records of one shape. Then one C-level
    itemgetter pass replaces a Python-level .get per key per record.

    >>> _uniform_columns([{"addr": 1, "size": 2}, {"size": 4, "addr": 3}])
    {'addr': (1, 3), 'size': (2, 4)}
    >>> _uniform_columns([{"addr": 1, "size": 2}, {"addr": 3, "size": 4, "kind": "x"}]) is None
    True
    """
    first = bodies[0]
    if type(first) is not dict or "addr" not in first or "size" not in first:
        return None
    keys = tuple(first)
    try:
        rows = list(map(itemgetter(*keys), bodies))
        if set(map(len, bodies)) != {len(keys)}:
            return None
    except (KeyError, TypeError):
        return None
    return dict(zip(keys, zip(*rows)))


def _interner(table: dict, values) -> dict:
    """_interner adds the new strings among ``values`` to ``table`` (string -> code) and returns it.

    >>> _interner({"a": 0}, ["b", "a", "c", "b"])
    {'a': 0, 'b': 1, 'c': 2}
    """
    for v in sorted(set(values) - table.keys()):
        table[v] = len(table)
    return table


def _all_equal(values, value) -> bool:
    """_all_equal reports whether every value is ``value`` (same type too: 0 is not False).

    >>> _all_equal((0, 0), 0), _all_equal((0, False), 0), _all_equal((), 0)
    (True, False, True)
    """
    return values.count(value) == len(values) and _all_of(values, type(value))


def _all_of(values, typ) -> bool:
    return set(map(type, values)) <= {typ}


def _try_json(line):
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


class _Repeats(dict):
    """_Repeats is a parsed JSON object that gave the key ``repeated`` more than once."""

    repeated = ""


def _mark_repeats(pairs):
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    seen = set()
    marked = _Repeats(d)
    marked.repeated = next(k for k, _ in pairs if k in seen or seen.add(k))
    return marked


def _key_ends(data: bytes) -> int:
    """_key_ends counts the '"' followed by ':' (whitespace between allowed) in JSON text: one per key, and more.

    Whitespace is dropped first (inside strings too: that can only add to
    the count), a piece at a time, so a big document is not copied whole.

    >>> _key_ends(b'{"a": 1, "b" :{"c":"x"}}'), _key_ends(b'{"a": "\\":"}')
    (3, 2)
    """
    if len(data) <= DOCUMENT_PIECE:
        return data.translate(None, b" \t\r\n").count(b'":')
    n, quote_before = 0, False
    for i in range(0, len(data), DOCUMENT_PIECE):
        piece = data[i:i + DOCUMENT_PIECE].translate(None, b" \t\r\n")
        if piece:
            n += piece.count(b'":') + (quote_before and piece[:1] == b":")
            quote_before = piece[-1:] == b'"'
    return n


def _some_keys(value) -> int:
    """_some_keys counts the keys of the parsed objects reachable through objects and lists of objects.

    Lists of anything else (pointer pairs, slot counts) are not walked: see _refuse_repeated_keys.

    >>> _some_keys([{"a": 1, "b": [[1, 2]], "c": {"d": [{"e": 1}]}}])
    5
    """
    n, todo = 0, [value]
    while todo:
        x = todo.pop()
        if type(x) is list:
            todo.extend(x)
            continue
        if type(x) is not dict:
            continue
        n += len(x)
        for y in x.values():
            t = type(y)
            if t is dict or (t is list and y and type(y[0]) is dict):
                todo.append(y)
    return n


def _document_keys(doc: dict) -> int:
    """_document_keys counts keys as _some_keys does, but only one level into the objects and events records.

    The bulk of a big document, walked at C speed; a record with nested
    objects then leaves keys uncounted, and json.loads decides.

    >>> _document_keys({"meta": {"a": {"b": 1}}, "objects": [{"addr": 1, "x": {"y": 2}}]})  # all but "y"
    6
    """
    n = len(doc)
    for key, value in doc.items():
        if key in ("objects", "events") and type(value) is list and _all_of(value, dict):
            n += sum(map(len, value))
        else:
            n += _some_keys(value)
    return n


def _first_repeat(value):
    """_first_repeat returns the key the first _Repeats in a value (parsed with _mark_repeats) repeats, or None."""
    todo = [value]
    while todo:
        x = todo.pop()
        if isinstance(x, _Repeats):
            return x.repeated
        if isinstance(x, dict):
            todo.extend(reversed(x.values()))
        elif isinstance(x, list):
            todo.extend(reversed(x))
    return None


def _refuse_repeated_keys(path, data: bytes, value, where, keys=None):
    """_refuse_repeated_keys raises DumpError when some object in the JSON text ``data`` gives a key twice.

    orjson keeps the last of two equal keys; the spec's records have one of
    each, and a second ``objects`` array silently dropping the first would be
    a wrong report. ``value`` is orjson's reading of ``data``: every key
    written ends with '"' and ':', so the text has at least as many of those
    as there are keys, while the parsed objects hold fewer keys when one
    repeats (and _some_keys may count fewer still). Equal counts prove that no
    key repeats, at the cost of a count; only when they differ does json.loads
    read the text again and name the key, if it does repeat.

    ``where`` names ``value`` as the loader names records: "line 3", "meta";
    a list's elements become "roots[2]", and the top level's values their key.
    ``keys`` is the count of keys, when the caller has one cheaper than _some_keys.
    """
    if _key_ends(data) == (_some_keys(value) if keys is None else keys):
        return
    marked = json.loads(data, object_pairs_hook=_mark_repeats)
    key = _first_repeat(marked)
    if key is None:
        return  # a '"' and ':' inside a string made the counts differ
    if isinstance(marked, list) or (where == "top level" and not isinstance(marked, _Repeats)):
        name, part = next((n, p) for n, p in (marked.items() if isinstance(marked, dict) else enumerate(marked))
                          if _first_repeat(p) is not None)
        if isinstance(marked, list):
            where = f"{where}[{name}]"
        elif isinstance(part, list):  # a section: name its record
            where = f"{name}[{next(i for i, p in enumerate(part) if _first_repeat(p) is not None)}]"
        else:
            where = name
    raise DumpError(path, f"{where}: key {_show(key)} given twice")


def _parse_error(path, where, e):
    msg = str(e).split("\n")[0]
    if where.startswith("line"):
        msg = re.sub(r"line 1 column (\d+) \(char \d+\)", r"column \1", msg)
    hint = "truncated? " if "end of data" in msg or "EOF" in msg else ""
    return DumpError(path, f"{where}not valid JSON: {hint}{msg}")


def _read_document(data, builder, path):
    """_read_document fills a builder from a whole document and returns it.

    The C parser goes first when built; on anything it cannot take (or any
    error) the document is read again by orjson and the checks, which then
    name the first problem exactly as without the C parser.
    """
    if fastparse.available():
        fast = _Builder(path)
        try:
            if _read_document_fast(data, fast, path):
                return fast
        except (DumpError, fastparse.Unsupported):
            pass
        del fast
    if not data.strip():
        raise DumpError(path, "empty file: expected a gctrace dump")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise _parse_error(path, "", e) from None
    if not isinstance(doc, dict):
        raise DumpError(path, f"top level must be a JSON object, got {_type(doc)}")
    _refuse_repeated_keys(path, data, doc, "top level", _document_keys(doc))
    _add_document(builder, doc, path)
    return builder


def _read_document_fast(data, builder, path) -> bool:
    """_read_document_fast reads a document with the C parser; False: read it the slow way.

    The top level is only delimited in C; orjson reads the small sections and
    the C parser the objects and events arrays, element by element, leaving
    the elements it does not take to orjson and the checks.
    """
    ranges = fastparse.scan_document(data)
    if ranges is None:
        return False
    doc, arrays = {}, {}
    try:
        for key, start, end in ranges:
            if key in doc:
                raise DumpError(path, f"top level: key {_show(key)} given twice")
            if key in ("objects", "events") and data[start:start + 1] == b"[":
                doc[key] = arrays[key] = (start, end)
            else:
                doc[key] = _loads_nested(data[start:end], 1)
                _refuse_repeated_keys(path, data[start:end], doc[key], key)
    except orjson.JSONDecodeError:
        return False
    _add_document(builder, doc, path, data, arrays)
    return True


def _loads_nested(value: bytes, depth: int):
    """_loads_nested parses a value found ``depth`` levels deep in a document, as deep as it sits there.

    orjson limits nesting; a part parsed on its own must hit that limit where
    the whole document would.

    >>> _loads_nested(b'[1]', 2)
    [1]
    """
    parsed = orjson.loads(b"[" * depth + value + b"]" * depth)
    for _ in range(depth):
        parsed = parsed[0]
    return parsed


def _add_document(builder, doc, path, data=None, arrays=()):
    """_add_document checks a document's top level and adds its sections in order.

    ``arrays`` maps a section to the (start, end) of its array in ``data``,
    for the C parser; other sections are parsed values in ``doc``.
    """
    builder.header(doc, "top level")
    for key in REQUIRED_TOP:
        if key not in doc:
            raise DumpError(path, f"missing required top-level key '{key}'")
    for section in ("objects", "roots", "pages", "maps", "events"):
        if section not in doc:
            continue
        add = builder.adders[section]
        if section in arrays:
            start, end = arrays[section]
            parser = fastparse.Parser(builder.ptr_size)
            for item in parser.array(data, start, end, section):
                if type(item) is fastparse.Record:
                    try:
                        rec = _loads_nested(data[item.start:item.end], 2)
                    except orjson.JSONDecodeError:
                        raise fastparse.Unsupported("an element orjson refuses") from None
                    _refuse_repeated_keys(path, data[item.start:item.end], rec, f"{section}[{item.index}]")
                    add(rec, f"{section}[{item.index}]")
                else:
                    builder.add_chunk(item)
            if parser.pos != end:
                raise fastparse.Unsupported("the array does not end where it was delimited")
            continue
        items = doc[section]
        if not isinstance(items, list):
            raise DumpError(path, f"'{section}' must be a list, got {_type(items)}")
        for start in range(0, len(items), BATCH):
            part = items[start:start + BATCH]
            if section == "objects" and builder.add_object_batch(part):
                continue
            if section == "events" and builder.add_event_batch(part):
                continue
            for i, rec in enumerate(part, start):
                add(rec, f"{section}[{i}]")
    builder.has_pages = "pages" in doc
    if "end" in doc:
        builder.add_end(doc["end"], "end record")


def _read_lines(stream, first, builder, path, progress):
    header = _try_json(first)
    if header is None:
        try:
            orjson.loads(first)
        except orjson.JSONDecodeError as e:
            raise _parse_error(path, "line 1: ", e) from None
    if not isinstance(header, dict):
        raise DumpError(path, f"line 1: header must be a JSON object, got {_type(header)}")
    _refuse_repeated_keys(path, first, header, "line 1")
    builder.header(header, "line 1")
    builder.lines = True
    for key in ("format", "version", "meta"):
        if key not in header:
            raise DumpError(path, f"line 1: header misses required key '{key}'")
    for key in header:
        if key not in ("format", "version", "meta"):
            raise DumpError(path, f"line 1: header key '{key}' does not belong in a JSON Lines header")
    total = _size(stream)
    if fastparse.available():
        _read_lines_fast(stream, builder, path, total, progress)
        return
    with bar(total, "load", progress, unit="B") as pb:
        done, lineno = 0, 2
        for lines in _line_batches(stream, path, lineno):
            if not _add_line_batch(builder, lines, lineno):
                for k, line in enumerate(lines):
                    _add_line(builder, path, line, lineno + k)
            lineno += len(lines)
            pos = _position(stream)
            pb.update(pos - done)
            done = pos


def _read_lines_fast(stream, builder, path, total, progress):
    """_read_lines_fast reads the records after the header with the C parser, CHUNK bytes at a time.

    Lines it does not take (roots, pages, maps, anything unusual) are read
    one by one by _add_line, in file order, named by their line number.
    """
    parsers = (fastparse.Parser(builder.ptr_size), fastparse.Parser(builder.ptr_size))
    rest, lineno, done = b"", 2, 0
    pending, held = [], 0  # chunks of one line too long for a chunk, joined once it ends
    with bar(total, "load", progress, unit="B") as pb, ThreadPoolExecutor(1) as pool:
        while True:
            chunk = stream.read(CHUNK)
            if chunk and b"\n" not in chunk:
                pending.append(chunk)
                held += len(chunk)
                if len(rest) + held > MAX_LINE:
                    raise DumpError(path, f"line {lineno}: longer than {MAX_LINE >> 20} MiB (no record is that big)")
                continue
            if pending:
                chunk, pending, held = b"".join(pending + [chunk]), [], 0
            buf = rest + chunk if rest else chunk
            end = buf.rfind(b"\n") + 1 if chunk else len(buf)
            if end:
                # The C parser releases the GIL: the chunk's two halves are parsed on two cores,
                # then added in file order.
                mid = buf.rfind(b"\n", 0, end // 2) + 1
                second = pool.submit(_parse_lines, parsers[1], buf, mid, end)
                for items, lines in (_parse_lines(parsers[0], buf, 0, mid), second.result()):
                    for item in items:
                        if type(item) is fastparse.Record:
                            _add_line(builder, path, buf[item.start:item.end], lineno + item.index)
                        else:
                            builder.add_chunk(item)
                    lineno += lines
            rest = buf[end:]
            if not chunk:
                break
            pos = _position(stream)
            pb.update(pos - done)
            done = pos


def _parse_lines(parser, buf, start, end):
    """_parse_lines returns the C parser's items for the lines in buf[start:end], and how many lines that is."""
    items = list(parser.lines(buf, end, start))
    return items, parser.index


def _add_line_batch(builder, lines, lineno) -> bool:
    """_add_line_batch parses and adds a batch of JSON Lines records at once; False: none added."""
    try:
        data = b"[" + b",".join(lines) + b"]"
        recs = orjson.loads(data)
        if set(map(len, recs)) != {1}:
            return False
        bodies = [r["object"] for r in recs if "object" in r]
        events = [r["event"] for r in recs if "event" in r]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return False
    if not (_all_of(bodies, dict) and _all_of(events, dict)):
        return False
    # Keys given twice: the records' own keys counted at C speed (see _refuse_repeated_keys); on any doubt
    # the lines are read one by one, which names the line.
    keys = len(recs) + sum(map(len, bodies)) + sum(map(len, events))
    if len(bodies) + len(events) < len(recs):
        keys += _some_keys([r for r in recs if "object" not in r and "event" not in r]) - (
            len(recs) - len(bodies) - len(events))
    if _key_ends(data) != keys:
        return False
    if builder.end_where is not None or (len(bodies) + len(events) < len(recs) and any("end" in r for r in recs)):
        return False  # the end record's place is checked line by line
    if not builder.add_object_batch(bodies):
        return False
    if not builder.add_event_batch(events):
        # The objects are in; replay the rest one by one, naming any bad line.
        events = ()
    if len(bodies) + len(events) < len(recs):
        for k, r in enumerate(recs):
            if "object" not in r and ("event" not in r or not events):
                _add_record(builder, builder.path, r, lineno + k)
    return True


def _add_line(builder, path, line, lineno):
    """_add_line parses and adds one JSON Lines record, naming its line on any problem."""
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        if not line.strip():
            return
        raise _parse_error(path, f"line {lineno}: ", e) from None
    _refuse_repeated_keys(path, line, rec, f"line {lineno}", _flat_record_keys(rec))
    _add_record(builder, path, rec, lineno)


def _flat_record_keys(rec):
    """_flat_record_keys counts the keys of a record {name: {flat body}} quickly; None: not that shape.

    >>> _flat_record_keys({"page": {"addr": 4096, "n": 1}}), _flat_record_keys({"object": {"ptrs": []}})
    (3, None)
    """
    if type(rec) is not dict or len(rec) != 1:
        return None
    body = next(iter(rec.values()))
    if type(body) is not dict or not _SCALARS.issuperset(map(type, body.values())):
        return None
    return 1 + len(body)


def _add_record(builder, path, rec, lineno):
    if type(rec) is not dict or len(rec) != 1:
        raise DumpError(path, f"line {lineno}: a record must be an object with one key "
                              "(object, root, page, map or event)")
    name = next(iter(rec))
    body = rec[name]
    builder.check_open()
    if name == "end":
        builder.add_end(body, f"line {lineno}")
        return
    if name == "event":
        builder.add_event(body, lineno)
        return
    section = SECTIONS.get(name)
    if section is None:
        if name in ("format", "version", "meta"):
            raise DumpError(path, f"line {lineno}: a second header")
        raise DumpError(path, f"line {lineno}: unknown record type '{_clip(name)}'")
    if section == "pages":
        builder.has_pages = True
    builder.adders[section](body, f"line {lineno}")


def _size(stream):
    raw = getattr(stream, "fileobj", None) or stream
    try:
        st = os.fstat(raw.fileno())
    except (OSError, AttributeError, io.UnsupportedOperation):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _position(stream):
    raw = getattr(stream, "fileobj", None) or stream
    try:
        return raw.tell()
    except OSError:
        return 0


def _type(v):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def _clip(s, n=40):
    s = str(s)
    s = s.encode("ascii", "backslashreplace").decode("ascii").replace("\n", "\\n")
    return s if len(s) <= n else s[: n - 3] + "..."


def _show(v):
    try:
        return _clip(orjson.dumps(v).decode())
    except TypeError:
        return _clip(repr(v))


class _Builder:
    """_Builder accumulates validated records into compact arrays."""

    def __init__(self, path):
        self.path = path
        self.meta = None
        self.end, self.end_where = None, None  # the end record's counts, and where it was
        self.lines = False  # JSON Lines (only they can be cut without a trace)
        self.page_size = None
        self.ptr_size = 8
        self.has_pages = False
        self.owner_seen = False
        self.kinds = {}
        self.types = {"": 0}
        self.obj_chunks = []  # column tuples, in file order: see _OBJ_COLUMNS
        self._new_object_buffers()
        self.root_name, self.root_kind, self.root_target = [], array("b"), array("q")
        self.page_addr, self.page_n = array("q"), array("q")
        self.page_res, self.page_state = array("b"), array("b")
        self.maps = []
        self.ev_chunks = []  # (seq, op, a, b, old, new, text, same) column tuples
        self._new_event_buffers()
        self.ev_strings = {}
        self.adders = {"objects": self.add_object, "roots": self.add_root, "pages": self.add_page,
                       "maps": self.add_map, "events": self.add_event}

    def _new_object_buffers(self):
        self.addr, self.size = array("q"), array("q")
        self.kind, self.type = array("h"), array("i")
        self.nptr, self.ptr_off, self.ptr_target = array("q"), array("q"), array("q")
        self.nslot, self.slots = array("q"), array("b")
        self.has_slots = array("b")
        self.owner = array("q")

    def _flush_objects(self):
        """_flush_objects moves the record-by-record buffers into a chunk, keeping file order."""
        if not len(self.addr):
            return
        f = np.frombuffer
        self.obj_chunks.append((
            f(self.addr, np.int64), f(self.size, np.int64), f(self.kind, np.int16), f(self.type, np.int32),
            f(self.nptr, np.int64), f(self.ptr_off, np.int64), f(self.ptr_target, np.int64),
            f(self.nslot, np.int64), f(self.slots, np.int8), f(self.has_slots, np.int8).astype(bool),
            f(self.owner, np.int64)))
        self._new_object_buffers()

    def add_object_batch(self, bodies) -> bool:
        """add_object_batch adds many object records at once, vectorised; False: none added.

        It accepts only records that pass every check of add_object; on anything
        unusual it returns False and the caller replays the records one by one
        through add_object, which names the problem (or accepts them).
        """
        n = len(bodies)
        if n == 0:
            return True
        cols = _uniform_columns(bodies)
        if cols is not None:
            addr, size = cols["addr"], cols["size"]
            kinds = cols.get("kind") or ("other",) * n
            ptrs = cols.get("ptrs") or (_NO_PTRS,) * n
            sl = cols.get("slots") or (None,) * n
            types = cols.get("type") or ("",) * n
            sites = cols.get("site") or (0,) * n
            owners = cols.get("map") or (0,) * n
        else:
            try:
                # One pass over the dicts (each is visited once, while it is in cache).
                addr, size, kinds, ptrs, sl, types, sites, owners = zip(*[
                    (b["addr"], b["size"], b.get("kind", "other"), b.get("ptrs", _NO_PTRS), b.get("slots"),
                     b.get("type", ""), b.get("site", 0), b.get("map", 0)) for b in bodies])
            except (KeyError, TypeError, AttributeError):
                return False
        has = [x is not None for x in sl]
        extra = not (_all_equal(types, "") and _all_equal(sites, 0) and _all_equal(owners, 0))
        if not (_all_ints(addr) and _all_ints(size) and _all_of(kinds, str) and _all_of(ptrs, list)):
            return False
        try:
            a = np.array(addr, np.int64)
            sz = np.array(size, np.int64)
        except OverflowError:
            return False
        if a.min() < 1 or sz.min() < 1 or (a - 1 > _INT_MAX - sz).any():
            return False
        ps = self.ptr_size
        counts = np.fromiter(map(len, ptrs), np.int64, n)
        pairs = list(chain.from_iterable(ptrs))
        off = tgt = np.zeros(0, np.int64)
        if pairs:
            if not _all_of(pairs, list) or set(map(len, pairs)) != {2}:
                return False
            vals = list(chain.from_iterable(pairs))
            if not _all_ints(vals):
                return False
            try:
                pv = np.array(vals, np.int64).reshape(-1, 2)
            except OverflowError:
                return False
            src = np.repeat(np.arange(n, dtype=np.int64), counts)
            order = np.lexsort((pv[:, 0], src))
            off, tgt, src = pv[order, 0], pv[order, 1], src[order]
            if (off < 0).any() or (off + ps > sz[src]).any() or (tgt <= 0).any():
                return False
            if ((src[1:] == src[:-1]) & (np.diff(off) < ps)).any():
                return False
        has = np.array(has, bool)
        nslot = np.zeros(n, np.int64)
        slots = np.zeros(0, np.int8)
        if has.any():
            sl = [x for x in sl if x is not None]
            if not _all_of(sl, list):
                return False
            nslot[has] = np.fromiter(map(len, sl), np.int64, len(sl))
            flat = list(chain.from_iterable(sl))
            if flat:
                if not _all_ints(flat):
                    return False
                sv = np.array(flat, np.int64)
                if sv.min() < 0 or sv.max() > SLOTS_PER_BUCKET:
                    return False
                slots = sv.astype(np.int8)
        tcode = np.zeros(n, np.int32)
        owner = np.zeros(n, np.int64)
        if extra:
            if not (_all_of(types, str) and _all_ints(sites) and _all_ints(owners)):
                return False
            if min(sites) < 0 or max(sites) >= INT_LIMIT or min(owners) < 0 or max(owners) >= INT_LIMIT:
                return False
            owner = np.array(owners, np.int64)
            self.owner_seen = self.owner_seen or bool(owner.any())
            tcode = np.fromiter(map(_interner(self.types, types).__getitem__, types), np.int32, n)
        kcode = np.fromiter(map(_interner(self.kinds, kinds).__getitem__, kinds), np.int16, n)
        self._flush_objects()
        self.obj_chunks.append((a, sz, kcode, tcode, counts, off, tgt, nslot, slots, has, owner))
        return True

    def add_chunk(self, chunk):
        """add_chunk adds a run of objects or events parsed by the C parser (already checked there)."""
        self.check_open()
        if type(chunk) is fastparse.ObjectChunk:
            kind = _recode(chunk.kind, chunk.strings, self.kinds, "other", np.int16)
            typ = _recode(chunk.type, chunk.strings, self.types, "", np.int32)
            self.owner_seen = self.owner_seen or bool(chunk.owner.any())
            self._flush_objects()
            self.obj_chunks.append((chunk.addr, chunk.size, kind, typ, chunk.nptr, chunk.ptr_off,
                                    chunk.ptr_target, chunk.nslot, chunk.slots, chunk.has_slots, chunk.owner))
        else:
            text = _recode(chunk.text, chunk.strings, self.ev_strings, None, np.int32)
            self._flush_events()
            self.ev_chunks.append((chunk.seq, chunk.op, chunk.a, chunk.b, chunk.old, chunk.new, text, chunk.same))

    def _new_event_buffers(self):
        self.ev = {k: array("q") for k in ("seq", "a", "b", "old", "new")}
        self.ev_op, self.ev_text, self.ev_same = array("b"), array("i"), array("b")

    def _flush_events(self):
        if not len(self.ev_op):
            return
        f, ev = np.frombuffer, self.ev
        self.ev_chunks.append((f(ev["seq"], np.int64), f(self.ev_op, np.int8), f(ev["a"], np.int64),
                               f(ev["b"], np.int64), f(ev["old"], np.int64), f(ev["new"], np.int64),
                               f(self.ev_text, np.int32), f(self.ev_same, np.int8).astype(bool)))
        self._new_event_buffers()

    def add_event_batch(self, bodies) -> bool:
        """add_event_batch adds many event records at once, vectorised; False: none added.

        Like add_object_batch, it only accepts what add_event accepts; on
        anything unusual the caller replays the records through add_event.
        """
        n = len(bodies)
        if n == 0:
            return True
        try:
            ops = [b["op"] for b in bodies]
            seqs = [b["seq"] for b in bodies]
        except (KeyError, TypeError):
            return False
        if not (_all_of(ops, str) and _all_ints(seqs)):
            return False
        try:
            codes = np.array([_OP_CODE[o] for o in ops], np.int8)
            seq = np.array(seqs, np.int64)
        except (KeyError, OverflowError):
            return False
        if seq.min() < 0:
            return False
        cols = {k: np.zeros(n, np.int64) for k in ("a", "b", "old", "new")}
        text = np.full(n, -1, np.int32)
        same = np.zeros(n, bool)
        strings = self.ev_strings
        for code in np.unique(codes):
            op = EVENT_OPS[code]
            idx = np.flatnonzero(codes == code)
            sub = [bodies[i] for i in idx]
            for col, key, check in _EVENT_COLUMNS[op]:
                try:
                    vals = ([b[key] for b in sub] if not check.startswith("opt")
                            else [b.get(key, False if check == "opt_bool" else 0) for b in sub])
                except KeyError:
                    return False
                if check == "str":
                    if not _all_of(vals, str):
                        return False
                    text[idx] = [strings.setdefault(v, len(strings)) for v in vals]
                elif check == "opt_bool":
                    if not _all_of(vals, bool):
                        return False
                    same[idx] = vals
                else:
                    if not _all_ints(vals):
                        return False
                    try:
                        arr = np.array(vals, np.int64)
                    except OverflowError:
                        return False
                    if arr.min() < (1 if check == "pos" else 0):
                        return False
                    cols[col][idx] = arr
            if op == "write":
                into_root = idx[cols["a"][idx] == 0]
                roots = [bodies[i].get("root") for i in into_root]
                if not _all_of(roots, str):
                    return False
                text[into_root] = [strings.setdefault(r, len(strings)) for r in roots]
        self._flush_events()
        self.ev_chunks.append((seq, codes, cols["a"], cols["b"], cols["old"], cols["new"], text, same))
        return True

    # -- helpers ---------------------------------------------------------------

    def err(self, label, problem):
        return DumpError(self.path, f"{label}: {problem}")

    def int_(self, rec, key, label, lo=0, default=None):
        if key not in rec:
            if default is not None:
                return default
            raise self.err(label, f"missing required key '{key}'")
        v = rec[key]
        if type(v) is not int:
            if type(v) is float and v.is_integer() and abs(v) >= INT_LIMIT:
                raise self.err(label, f"'{key}' is too large ({v:.0f} >= 2^63)")
            raise self.err(label, f"'{key}' must be an integer, got {_show(v)}")
        if v < lo:
            raise self.err(label, f"'{key}' must be >= {lo}, got {v}")
        if v >= INT_LIMIT:
            raise self.err(label, f"'{key}' is too large ({v} >= 2^63)")
        return v

    def str_(self, rec, key, label, default=None):
        if key not in rec:
            if default is not None:
                return default
            raise self.err(label, f"missing required key '{key}'")
        v = rec[key]
        if not isinstance(v, str):
            raise self.err(label, f"'{key}' must be a string, got {_show(v)}")
        return v

    def record(self, rec, label, what):
        if not isinstance(rec, dict):
            raise self.err(label, f"{what} must be a JSON object, got {_type(rec)}")
        return rec

    # -- header ------------------------------------------------------------------

    def header(self, doc, label):
        for key in doc:
            if key not in TOP_KEYS:
                raise DumpError(self.path, f"unknown top-level key '{_clip(key)}'")
        if "format" in doc and doc["format"] != FORMAT:
            raise DumpError(self.path, f"not a gctrace dump: format is {_show(doc['format'])}, "
                                       f"expected \"{FORMAT}\"")
        if "version" in doc and (type(doc["version"]) is not int or doc["version"] != VERSION):
            raise DumpError(self.path, f"unsupported version {_show(doc['version'])} "
                                       f"(this gctrace reads version {VERSION})")
        if "meta" not in doc:
            return
        meta = self.record(doc["meta"], "meta", "meta")
        ps = self.int_(meta, "page_size", "meta", lo=1)
        if ps & (ps - 1):
            raise self.err("meta", f"page_size {ps} is not a power of two")
        self.ptr_size = self.int_(meta, "ptr_size", "meta", lo=1, default=8)
        if self.ptr_size not in (4, 8):
            raise self.err("meta", f"ptr_size must be 4 or 8, got {self.ptr_size}")
        if meta.get("madvise") not in ("free", "dontneed", None):
            raise self.err("meta", f"madvise must be \"free\", \"dontneed\" or null, "
                                   f"got {_show(meta['madvise'])}")
        self.page_size, self.meta = ps, meta

    # -- records -----------------------------------------------------------------

    def add_object(self, rec, where):
        rec = self.record(rec, where, "an object record")
        addr = self.int_(rec, "addr", where, lo=1)
        label = f"{where}: object {addr:#x}" if where.startswith("line") else f"object {addr:#x}"
        size = self.int_(rec, "size", label, lo=1)
        if addr + size > INT_LIMIT:
            raise self.err(label, f"ends past 2^63 (size {size})")
        kind = self.str_(rec, "kind", label, default="other")
        code = self.kinds.setdefault(kind, len(self.kinds))
        ptrs = rec.get("ptrs", [])
        if not isinstance(ptrs, list):
            raise self.err(label, f"'ptrs' must be a list of [offset, target] pairs, got {_type(ptrs)}")
        fields = []
        for p in ptrs:
            if not isinstance(p, list) or len(p) != 2:
                raise self.err(label, f"pointer {_show(p)} is not an [offset, target] pair")
            off, target = p
            if type(off) is not int or type(target) is not int:
                raise self.err(label, f"pointer {_show(p)}: offset and target must be integers")
            if off < 0 or off + self.ptr_size > size:
                raise self.err(label, f"pointer offset {off} is outside the object (size {size}, "
                                      f"pointers are {self.ptr_size} bytes)")
            if not 0 < target < INT_LIMIT:
                raise self.err(label, f"pointer at +{off}: target {target} must be a non-nil address "
                                      "below 2^63 (ptrs lists the non-nil fields)")
            fields.append((off, target))
        fields.sort()
        for (o1, _), (o2, _) in zip(fields, fields[1:]):
            if o2 - o1 < self.ptr_size:
                raise self.err(label, f"pointer fields at +{o1} and +{o2} overlap")
        if "slots" in rec:
            slots = rec["slots"]
            if not isinstance(slots, list):
                raise self.err(label, f"'slots' must be a list of integers 0..8, got {_type(slots)}")
            for s in slots:
                if type(s) is not int or not 0 <= s <= SLOTS_PER_BUCKET:
                    raise self.err(label, f"slot count {_show(s)} is not an integer 0..8")
            self.slots.extend(slots)
            self.nslot.append(len(slots))
            self.has_slots.append(1)
        else:
            self.nslot.append(0)
            self.has_slots.append(0)
        if "site" in rec:
            self.int_(rec, "site", label)
        typ = self.str_(rec, "type", label, default="")
        # "map" (the owner hmap) is a gctrace extension, not in the spec: used when sane, else ignored.
        owner = rec.get("map", 0)
        if type(owner) is not int or not 0 <= owner < INT_LIMIT:
            owner = 0
        if owner:
            self.owner_seen = True
        self.addr.append(addr)
        self.size.append(size)
        self.kind.append(code)
        self.type.append(self.types.setdefault(typ, len(self.types)))
        self.owner.append(owner)
        self.nptr.append(len(fields))
        for off, target in fields:
            self.ptr_off.append(off)
            self.ptr_target.append(target)

    def add_root(self, rec, where):
        rec = self.record(rec, where, "a root record")
        name = self.str_(rec, "name", f"{where}: root")
        label = f"root {_clip(name)!r}"
        kind = self.str_(rec, "kind", label)
        if kind not in ROOT_KINDS:
            raise self.err(label, f"kind {_show(kind)} is not one of {', '.join(ROOT_KINDS)}")
        target = self.int_(rec, "target", label)
        self.root_name.append(name)
        self.root_kind.append(ROOT_KINDS.index(kind))
        self.root_target.append(target)

    def add_page(self, rec, where):
        rec = self.record(rec, where, "a page record")
        addr = self.int_(rec, "addr", f"{where}: page")
        label = f"page run {addr:#x}"
        if self.page_size is None:
            raise self.err(label, "pages need meta.page_size")
        if addr % self.page_size:
            raise self.err(label, f"address is not aligned to page_size {self.page_size}")
        n = self.int_(rec, "n", label, lo=1, default=1)
        if addr + n * self.page_size > INT_LIMIT:
            raise self.err(label, f"{n} pages run past 2^63")
        resident = rec.get("resident")
        if "resident" not in rec:
            raise self.err(label, "missing required key 'resident'")
        if type(resident) is not bool:
            raise self.err(label, f"'resident' must be true or false, got {_show(resident)}")
        state = self.str_(rec, "state", label)
        if state not in PAGE_STATES:
            raise self.err(label, f"state {_show(state)} is not one of {', '.join(PAGE_STATES)}")
        self.page_addr.append(addr)
        self.page_n.append(n)
        self.page_res.append(resident)
        self.page_state.append(PAGE_STATES.index(state))

    def add_map(self, rec, where):
        rec = self.record(rec, where, "a map record")
        hmap = self.int_(rec, "hmap", f"{where}: map", lo=1)
        label = f"map {hmap:#x}"
        impl = rec.get("impl", "hmap")
        if impl == "swiss":
            self.maps.append(self._swiss_map(rec, hmap, label))
            return
        if impl != "hmap":
            raise self.err(label, f"impl {_show(impl)} is not one of {', '.join(MAP_IMPLS)}")
        fields = {k: self.int_(rec, k, label) for k in MAP_REQUIRED}
        fields.update({k: self.int_(rec, k, label, default=0) for k in MAP_OPTIONAL})
        name = rec.get("name", "")  # an extension, not in the spec: used when a string
        fields["name"] = name if isinstance(name, str) else ""
        if fields["B"] > 62:
            raise self.err(label, f"B {fields['B']} is impossible (2^B buckets)")
        self.maps.append(MapHeader(**fields))

    def _swiss_map(self, rec, hmap, label) -> SwissMap:
        """_swiss_map validates a Swiss-table map record on its own (the heap checks come in _check_maps)."""
        f = {k: self.int_(rec, k, label) for k in SWISS_REQUIRED}
        # 8 control bytes and 8 slots, which may be empty (map[struct{}]struct{} has 0-byte slots).
        f["group_size"] = self.int_(rec, "group_size", label, lo=SWISS_GROUP_SLOTS)
        if f["slot_size"] > f["group_size"]:
            raise self.err(label, f"slot_size {f['slot_size']} exceeds group_size {f['group_size']}")
        name = rec.get("name", "")
        gd, dir_len, count = f["global_depth"], f["dir_len"], f["count"]
        if gd > 62:
            raise self.err(label, f"global_depth {gd} is impossible (2^global_depth directory entries)")
        if dir_len and dir_len != 1 << gd:
            raise self.err(label, f"dir_len {dir_len} is not 2^global_depth ({1 << gd})")
        tables = rec.get("tables")
        if "tables" not in rec:
            raise self.err(label, "missing required key 'tables'")
        if not isinstance(tables, list):
            raise self.err(label, f"'tables' must be a list, got {_type(tables)}")
        small = None
        if dir_len == 0:
            if tables:
                raise self.err(label, f"a small map (dir_len 0) has no tables, got {len(tables)}")
            if f["dir_ptr"]:
                if "small" not in rec:
                    raise self.err(label, "a small map with a group needs 'small'")
                small = self._ctrl_triples([self.record(rec["small"], label, "'small'").get("ctrl")],
                                           f"{label}: small group", one=True)
                if small[0] != count:
                    raise self.err(label, f"count {count} is not the small group's {small[0]} full slots")
            elif count:
                raise self.err(label, f"count {count}, but the map has no group (dir_ptr 0)")
        cols = {k: array("q") for k in SWISS_TABLE_KEYS}
        ctrls, seen, covered = [], set(), 0
        for i, t in enumerate(tables):
            t = self.record(t, f"{label}: table {i}", "a table")
            addr = self.int_(t, "addr", f"{label}: table {i}", lo=1)
            tl = f"{label}: table {addr:#x}"
            if addr in seen:
                raise self.err(tl, "listed twice (each distinct table is listed once)")
            seen.add(addr)
            v = {k: self.int_(t, k, tl, lo=-1 if k == "index" else 0) for k in SWISS_TABLE_KEYS if k != "addr"}
            v["addr"] = addr
            n = v["groups_len"]
            if n < 1 or n & (n - 1):
                raise self.err(tl, f"groups_len {n} is not a power of two")
            if v["capacity"] != SWISS_GROUP_SLOTS * n:
                raise self.err(tl, f"capacity {v['capacity']} is not 8 x groups_len ({SWISS_GROUP_SLOTS * n})")
            if v["local_depth"] > gd:
                raise self.err(tl, f"local_depth {v['local_depth']} exceeds global_depth {gd}")
            room = v["capacity"] * SWISS_MAX_LOAD[0] // SWISS_MAX_LOAD[1] - v["used"]
            if v["growth_left"] > room:
                raise self.err(tl, f"growth_left {v['growth_left']} exceeds capacity x 7/8 - used ({room})")
            ctrl = t.get("ctrl")
            if "ctrl" not in t:
                raise self.err(tl, "missing required key 'ctrl'")
            if not isinstance(ctrl, list) or len(ctrl) != n:
                got = len(ctrl) if isinstance(ctrl, list) else _type(ctrl)
                raise self.err(tl, f"ctrl must list one [full, deleted, empty] per group ({n}), got {got}")
            ctrls.append((tl, self._ctrl_triples(ctrl, tl)))
            covered += 1 << (gd - v["local_depth"])
            for k in SWISS_TABLE_KEYS:
                cols[k].append(v[k])
        if dir_len and covered != dir_len:
            raise self.err(label, f"the tables cover {covered} directory entries (2^(global_depth - local_depth) "
                                  f"each), not dir_len {dir_len}")
        ctrl = np.concatenate([c for _, c in ctrls]) if ctrls else np.zeros((0, 3), np.int16)
        col = {k: np.frombuffer(cols[k], np.int64).copy() for k in SWISS_TABLE_KEYS}
        start = np.concatenate([[0], np.cumsum(col["groups_len"])]).astype(np.int64)
        bad = np.flatnonzero(ctrl.sum(axis=1) != SWISS_GROUP_SLOTS)
        if len(bad):
            k = int(np.searchsorted(start, bad[0], side="right") - 1)
            raise self.err(ctrls[k][0], f"ctrl of group {bad[0] - start[k]} sums to {int(ctrl[bad[0]].sum())}, "
                                        f"not {SWISS_GROUP_SLOTS}")
        full = np.add.reduceat(ctrl[:, 0].astype(np.int64), start[:-1]) if len(ctrl) else np.zeros(0, np.int64)
        bad = np.flatnonzero(full != col["used"])
        if len(bad):
            k = int(bad[0])
            raise self.err(ctrls[k][0], f"used {col['used'][k]} is not its {full[k]} full slots")
        if dir_len and int(col["used"].sum()) != count:
            raise self.err(label, f"count {count} is not the tables' used total ({int(col['used'].sum())})")
        return SwissMap(hmap=hmap, **f, **{f"tab_{k}": col[k] for k in SWISS_TABLE_KEYS},
                        ctrl_start=start, ctrl=ctrl, small_ctrl=small,
                        name=name if isinstance(name, str) else "")

    def _ctrl_triples(self, groups, label, one=False):
        """_ctrl_triples checks [full, deleted, empty] lists and returns them as an int16 (groups, 3) array.

        All groups are checked at once; only when that fails does a loop look
        for the first bad group to name it. ``one``: a small map's single
        group, returned as a tuple, whose counts must sum to 8 here.
        """
        if (_all_of(groups, list) and set(map(len, groups)) <= {3}
                and _all_ints(flat := list(chain.from_iterable(groups)))
                and (not flat or 0 <= min(flat) and max(flat) <= SWISS_GROUP_SLOTS)):
            out = np.array(flat, np.int16).reshape(-1, 3)
            if one and out.sum() != SWISS_GROUP_SLOTS:
                raise self.err(label, f"ctrl sums to {int(out.sum())}, not {SWISS_GROUP_SLOTS}")
            return tuple(int(x) for x in out[0]) if one else out
        for j, g in enumerate(groups):
            if not (isinstance(g, list) and len(g) == 3 and _all_ints(g) and all(0 <= x <= 8 for x in g)):
                which = "ctrl" if one else f"ctrl of group {j}"
                raise self.err(label, f"{which} {_show(g)} is not [full, deleted, empty] counts 0..8")
        raise AssertionError("unreachable")

    def check_open(self):
        """check_open refuses a record after the end record."""
        if self.end_where is not None:
            raise DumpError(self.path, f"{self.end_where}: the end record is not the last record")

    def add_end(self, rec, where):
        """add_end reads the end record: the producer's count of each section's records."""
        rec = self.record(rec, where, "the end record")
        self.end = {k: self.int_(rec, k, where) for k in END_KEYS}
        self.end_where = where

    def counts(self) -> dict:
        """counts returns how many records of each section were read."""
        self._flush_objects()
        self._flush_events()
        return {"objects": sum(len(c[0]) for c in self.obj_chunks), "roots": len(self.root_name),
                "pages": len(self.page_addr), "maps": len(self.maps), "events": sum(len(c[0]) for c in self.ev_chunks)}

    def _check_end(self):
        """_check_end compares the end record with what was read; returns the warnings for the heap."""
        if self.end is None:
            return (NO_END,) if self.lines else ()
        read = self.counts()
        for k in END_KEYS:
            if self.end[k] != read[k]:
                raise DumpError(self.path, f"end record says {self.end[k]} {k}, the dump has {read[k]}: "
                                           "cut or edited")
        return ()

    def add_event(self, rec, where):
        if type(where) is not str:
            where = f"line {where}"
        rec = self.record(rec, where, "an event record")
        seq = self.int_(rec, "seq", f"{where}: event")
        label = f"event {seq}"
        op = self.str_(rec, "op", label)
        if op not in EVENT_OPS:
            raise self.err(label, f"unknown op {_show(op)}")
        vals = [self.int_(rec, k, label) if k not in ("kind", "advice") else self.str_(rec, k, label)
                for k in EVENT_KEYS[op]]
        a = b = old = new = 0
        text = None
        same = False
        if op == "alloc":
            a, b, text = vals
            if a == 0 or b == 0:
                raise self.err(label, "alloc needs a non-zero addr and size")
        elif op == "free":
            (a,) = vals
        elif op == "write":
            a, b, old, new = vals
            if a == 0:
                text = self.str_(rec, "root", label)
        elif op == "madvise":
            a, b, text = vals
        elif op in ("grow_start", "evacuate", "grow_end"):
            (a,) = vals
            b = self.int_(rec, "bucket", label, default=0)
            same = rec.get("same_size", False)
            if type(same) is not bool:
                raise self.err(label, f"'same_size' must be true or false, got {_show(same)}")
        ev = self.ev
        for col, v in (("seq", seq), ("a", a), ("b", b), ("old", old), ("new", new)):
            ev[col].append(v)
        self.ev_op.append(EVENT_OPS.index(op))
        self.ev_text.append(-1 if text is None else self.ev_strings.setdefault(text, len(self.ev_strings)))
        self.ev_same.append(same)

    # -- whole-dump checks and assembly -----------------------------------------

    def finish(self) -> Heap:
        if self.meta is None:
            raise DumpError(self.path, "missing required top-level key 'meta'")
        warnings = self._check_end()
        self._flush_objects()
        chunks, self.obj_chunks = [list(c) for c in self.obj_chunks], []
        addr, size, kind, typ, nptr, poff, ptgt, nslot, slots, has_slots, owner = _concat_columns(
            chunks, (np.int64, np.int64, np.int16, np.int32, np.int64, np.int64, np.int64, np.int64, np.int8, bool,
                     np.int64))
        if len(addr) > 1 and (addr[1:] < addr[:-1]).any():
            order = np.argsort(addr, kind="stable")
            addr, size = addr[order], size[order]
        else:
            order = None  # already in address order (what producers write): the stable sort is the identity
        self._check_overlaps(addr, size)
        ptr_start, ptr_idx = _reorder_csr(nptr, order)
        slot_start, slot_idx = _reorder_csr(nslot, order)
        # Canonical codes: string tables sorted, whatever order records came in.
        kinds, kind = _canonical(self.kinds, kind)
        types, typ = _canonical(self.types, typ)
        take = (lambda a: a) if order is None else (lambda a: a[order])  # noqa: E731
        gather = lambda a, idx: a if idx is None else a[idx]  # noqa: E731
        heap = Heap(
            path=self.path, page_size=self.page_size, ptr_size=self.ptr_size, meta=self.meta,
            obj_addr=addr, obj_size=size,
            obj_kind=take(kind),
            kinds=kinds,
            ptr_start=ptr_start,
            ptr_off=gather(poff, ptr_idx),
            ptr_target=gather(ptgt, ptr_idx),
            slot_start=slot_start,
            slot_count=gather(slots, slot_idx).astype(np.int8, copy=False),
            has_slots=take(has_slots).astype(bool, copy=False),
            roots=Roots(tuple(self.root_name), np.frombuffer(self.root_kind, np.int8).copy(),
                        np.frombuffer(self.root_target, np.int64).copy()),
            pages=self._pages(addr, size),
            maps=self._maps(),
            events=self._events(),
            obj_type=take(typ).astype(np.int32, copy=False),
            obj_map=take(owner) if self.owner_seen else np.zeros(0, np.int64),
            types=types,
            warnings=warnings,
        )
        _check_maps(heap)
        return freeze(heap)

    def _check_overlaps(self, addr, size):
        if len(addr) < 2:
            return
        bad = np.flatnonzero(addr[:-1] + size[:-1] > addr[1:])
        if len(bad):
            i = bad[0]
            raise DumpError(self.path, f"object {addr[i + 1]:#x}: overlaps object {addr[i]:#x} "
                                       f"(size {size[i]})")

    def _pages(self, addr, size):
        if not self.has_pages:
            return None
        ps = self.page_size
        first = np.frombuffer(self.page_addr, np.int64) // ps
        order = np.argsort(first, kind="stable")
        first = first[order]
        n = np.frombuffer(self.page_n, np.int64)[order]
        runs = PageRuns(first, n, np.frombuffer(self.page_res, np.int8)[order].astype(bool),
                        np.frombuffer(self.page_state, np.int8)[order].copy())
        if len(first) > 1:
            bad = np.flatnonzero(first[:-1] + n[:-1] > first[1:])
            if len(bad):
                i = bad[0]
                raise DumpError(self.path, f"page run {first[i + 1] * ps:#x}: overlaps page run "
                                           f"{first[i] * ps:#x} ({n[i]} pages)")
        if len(addr):
            # Merge touching runs into covered stretches, then require each
            # object's first and last page to fall in the same stretch.
            brk = np.ones(len(first), bool)
            brk[1:] = first[1:] != first[:-1] + n[:-1]
            starts = first[brk]
            ends = np.maximum.reduceat(first + n, np.flatnonzero(brk)) if len(first) else first
            p0 = addr // ps
            p1 = (addr + size - 1) // ps
            k = np.searchsorted(starts, p0, side="right") - 1
            ok = k >= 0
            ks = np.where(ok, k, 0)
            ok &= (p0 < ends[ks]) & (p1 < ends[ks]) if len(starts) else False
            bad = np.flatnonzero(~ok)
            if len(bad):
                i = bad[0]
                missing = p0[i] if not (len(starts) and k[i] >= 0 and p0[i] < ends[ks[i]]) else ends[ks[i]]
                raise DumpError(self.path, f"object {addr[i]:#x}: touches page {missing * ps:#x}, "
                                           "which is in no page run")
        return runs

    def _maps(self):
        seen = set()
        for m in self.maps:
            if m.hmap in seen:
                raise DumpError(self.path, f"map {m.hmap:#x}: listed twice")
            seen.add(m.hmap)
        return tuple(sorted(self.maps, key=lambda m: m.hmap))

    def _events(self):
        self._flush_events()
        if self.ev_chunks:
            seq, op, a, b, old, new, text, same = (np.concatenate(c) for c in zip(*self.ev_chunks))
        else:
            z = np.zeros(0, np.int64)
            seq, op, a, b, old, new, text, same = (z, z.astype(np.int8), z, z, z, z, z.astype(np.int32),
                                                   z.astype(bool))
        self.ev_chunks = []
        order = np.argsort(seq, kind="stable")
        seq = seq[order]
        if len(seq) > 1:
            dup = np.flatnonzero(seq[1:] == seq[:-1])
            if len(dup):
                raise DumpError(self.path, f"event {seq[dup[0]]}: seq used twice")
        return Events(seq=seq, op=op[order], a=a[order], b=b[order], old=old[order], new=new[order],
                      text=text[order], same_size=same[order],
                      strings=tuple(sorted(self.ev_strings, key=self.ev_strings.get)))


def _recode(codes, strings, table: dict, absent, dtype):
    """_recode turns a C chunk's string codes (-1: absent) into codes of ``table``, interning the strings used.

    An absent string becomes ``absent`` (None: stays -1).

    >>> table = {"other": 0}
    >>> _recode(np.array([1, -1, 1]), ["x", "y"], table, "other", np.int16).tolist(), table
    ([1, 0, 1], {'other': 0, 'y': 1})
    """
    used = np.flatnonzero(np.bincount(codes.astype(np.int64) + 1, minlength=len(strings) + 1))
    lut = np.full(len(strings) + 1, -1, dtype)
    for j in used.tolist():
        name = strings[j - 1] if j else absent
        if name is not None:
            lut[j] = table.setdefault(name, len(table))
    return lut[codes.astype(np.int64) + 1]


def _canonical(table: dict, codes: np.ndarray):
    """_canonical returns (sorted strings, codes renumbered into them) for a string -> code table.

    >>> names, codes = _canonical({"b": 0, "a": 1}, np.array([0, 1, 0]))
    >>> names, codes.tolist()
    (('a', 'b'), [1, 0, 1])
    """
    names = tuple(sorted(table))
    remap = np.zeros(max(len(table), 1), codes.dtype)
    for new, name in enumerate(names):
        remap[table[name]] = new
    return names, remap[codes] if len(codes) else codes


def _concat_columns(chunks, dtypes):
    """_concat_columns joins the chunks (lists of columns) column by column, emptying them as it goes.

    Each chunk's column is dropped once copied, so the peak is the chunks plus
    one joined column, not twice the chunks.

    >>> [c.tolist() for c in _concat_columns([[np.array([1]), np.array([2])], [np.array([3]), np.array([4])]],
    ...                                      (np.int64, np.int64))]
    [[1, 3], [2, 4]]
    """
    cols = []
    for j, dtype in enumerate(dtypes):
        parts = [c[j] for c in chunks]
        for c in chunks:
            c[j] = None
        cols.append(np.concatenate(parts) if parts else np.zeros(0, dtype))
        del parts
        _trim()
    return cols


def _trim():
    """_trim hands the heap memory freed so far back to the OS.

    glibc keeps freed small blocks (a chunk's columns) for reuse, so without
    it the joined columns would come on top of the chunks they replaced.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)


def _find_malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; elsewhere the memory is only reused, not returned
    except (OSError, AttributeError):
        return None


def _reorder_csr(counts, order):
    """_reorder_csr returns (start, gather) for a CSR whose rows are permuted by ``order``.

    ``order`` None means rows in place: gather is then None too.

    >>> s, g = _reorder_csr(np.array([2, 0, 1]), np.array([2, 0, 1]))
    >>> s.tolist(), g.tolist()
    ([0, 1, 3, 3], [2, 0, 1])
    >>> _reorder_csr(np.array([2, 0, 1]), None)[0].tolist()
    [0, 2, 2, 3]
    """
    if order is None:
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), None
    old_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    new_counts = counts[order]
    new_start = np.concatenate([[0], np.cumsum(new_counts)]).astype(np.int64)
    total = int(new_start[-1])
    gather = np.repeat(old_start[:-1][order] - new_start[:-1], new_counts) + np.arange(total, dtype=np.int64)
    return new_start, gather


def _check_maps(heap: Heap):
    """_check_maps validates each map header against the objects it names."""
    for m in heap.maps:
        label = f"map {m.hmap:#x}"
        (h,) = heap.find([m.hmap])
        if h < 0 or heap.obj_addr[h] != m.hmap:
            raise DumpError(heap.path, f"{label}: hmap is not the address of an object")
        if m.impl == "swiss":
            _check_swiss(heap, m, label)
            continue
        if m.bucketsize <= heap.ptr_size:
            raise DumpError(heap.path, f"{label}: bucketsize {m.bucketsize} cannot hold an overflow pointer")
        for name, base, nb in (("buckets", m.buckets, 1 << m.B), ("oldbuckets", m.oldbuckets, m.old_bucket_count)):
            if base == 0:
                continue
            (i,) = heap.find([base])
            if i < 0:
                raise DumpError(heap.path, f"{label}: {name} {base:#x} is not inside any object")
            end = int(heap.obj_addr[i] + heap.obj_size[i])
            if base + nb * m.bucketsize > end:
                raise DumpError(heap.path, f"{label}: {nb} buckets of {m.bucketsize} B at {name} {base:#x} "
                                           f"run past the end of object {heap.obj_addr[i]:#x} ({end:#x})")
        if m.growing and m.nevacuate > m.old_bucket_count:
            raise DumpError(heap.path, f"{label}: nevacuate {m.nevacuate} exceeds the "
                                       f"{m.old_bucket_count} old buckets")


def _check_swiss(heap: Heap, m: SwissMap, label: str):
    """_check_swiss checks that a Swiss map's directory, small group, tables and groups arrays lie in objects."""
    def within(what, base, nbytes):
        (i,) = heap.find([base])
        if i < 0:
            raise DumpError(heap.path, f"{label}: {what} {base:#x} is not inside any object")
        end = int(heap.obj_addr[i] + heap.obj_size[i])
        if base + nbytes > end:
            raise DumpError(heap.path, f"{label}: {what} {base:#x}: {nbytes} B run past the end of object "
                                       f"{heap.obj_addr[i]:#x} ({end:#x})")

    if m.dir_len:
        within(f"directory of {m.dir_len} tables at dir_ptr", m.dir_ptr, m.dir_len * heap.ptr_size)
    elif m.dir_ptr:
        within("small group at dir_ptr", m.dir_ptr, m.group_size)
    if not m.n_tables:
        return
    tab = heap.find(m.tab_addr)
    if (tab < 0).any():
        k = int(np.flatnonzero(tab < 0)[0])
        raise DumpError(heap.path, f"{label}: table {m.tab_addr[k]:#x} is not inside any object")
    obj = heap.find(m.tab_groups)
    end = np.where(obj >= 0, heap.obj_addr[obj] + heap.obj_size[obj], 0)
    for k in range(m.n_tables):  # Python ints: groups_len x group_size may not fit in 64 bits
        g, n = int(m.tab_groups[k]), int(m.tab_groups_len[k])
        if obj[k] < 0 or g + n * m.group_size > end[k]:
            where = " is not inside any object" if obj[k] < 0 else (
                f": {n} groups of {m.group_size} B run past the end of object {heap.obj_addr[obj[k]]:#x} "
                f"({end[k]:#x})")
            raise DumpError(heap.path, f"{label}: table {m.tab_addr[k]:#x}: groups {g:#x}{where}")


_malloc_trim = _find_malloc_trim()
