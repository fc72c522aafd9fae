"""framing reads the bytes of a dump: gzip or not, one document or JSON Lines, in batches or C chunks.

Part of the loader (see the package docstring, gctrace.analysis.load)."""

from __future__ import annotations

import gc
import gzip
import io
import json
import os
import re
import stat
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import repeat
from operator import add

import orjson

from gctrace.errors import DumpError
from gctrace.progress import bar

from .. import load as _pkg  # the knobs (schema.py), read at call time: tests tune them there
from .. import fastparse
from ..model import Heap
from .assemble import _Builder
from .records import _all_of, _clip, _show, _type
from .schema import GZIP_MAGIC, NUL, REQUIRED_TOP, SECTIONS, _SCALARS


def load_dump(path, progress: bool = False) -> Heap:
    """load_dump reads and validates the dump at ``path`` (``-``: standard input); raises DumpError.

    The input is opened once and read front to back, so pipes, FIFOs and
    /dev/stdin work; what is read is bounded (see _sniff, _line_cap and
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
                limit = max(_pkg.GZIP_DOCUMENT_FLOOR, _pkg.GZIP_RATIO * st.st_size) if regular else _pkg.PIPE_DOCUMENT_LIMIT
                yield stream, limit, regular
            return
        _sniff(raw, path)
        yield raw, (None if regular else _pkg.PIPE_DOCUMENT_LIMIT), regular


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
        if skipped > _pkg.MAX_LEADING_SPACE:
            raise DumpError(path, f"not a gctrace dump: more than {_pkg.MAX_LEADING_SPACE >> 10} KiB of whitespace "
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
    first = stream.readline(_pkg.HEADER_PEEK)
    while first and not first.strip():
        first = stream.readline(_pkg.HEADER_PEEK)
    if not first:
        raise DumpError(path, "empty file: expected a gctrace dump")
    whole = first.endswith(b"\n") or len(first) < _pkg.HEADER_PEEK
    jsonl_name = path.endswith((".jsonl", ".jsonl.gz"))
    cap = _line_cap(stream, limit)
    if jsonl_name and not whole:
        first += _line(stream, path, 1, cap - len(first), cap)
    header = _try_json(first) if whole else None
    if jsonl_name or (isinstance(header, dict) and "objects" not in header and "format" in header):
        _read_lines(stream, first, builder, path, progress, cap)
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
        part = stream.read(min(_pkg.DOCUMENT_PIECE, limit + 1 - n))
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


def _line_cap(stream, limit) -> int:
    """_line_cap is the most bytes a line may have: MAX_LINE from a pipe; from a regular file or gzip data, as many
    as that input may have at all (the file's size; ``limit``, the document bound), if that is more."""
    size = _size(stream)  # None from a pipe; a regular file's size (compressed, when gzip)
    if size is None:
        return _pkg.MAX_LINE
    return max(_pkg.MAX_LINE, size if limit is None else limit)


def _too_long(path, lineno, cap):
    return DumpError(path, f"line {lineno}: longer than {cap >> 20} MiB, the most a line may have from this input "
                           "(a pipe's cap; a file's lines may be as long as the file)")


def _next_chunk(stream, path, rest: bytes, lineno: int, cap: int) -> bytes:
    """_next_chunk reads CHUNK bytes, and on until a newline or the end, so the chunk ends a line.

    ``rest`` is the unfinished line before it (line ``lineno``): a line longer
    than ``cap`` (_line_cap) is refused, whatever the chunk size.
    """
    pending, held = [], 0  # chunks of one line too long for a chunk, joined once it ends
    while True:
        chunk = stream.read(_pkg.CHUNK)
        if chunk and b"\n" not in chunk:
            pending.append(chunk)
            held += len(chunk)
            if len(rest) + held > cap:
                raise _too_long(path, lineno, cap)
            continue
        return b"".join(pending + [chunk]) if pending else chunk


def _line_batches(stream, path, lineno, cap):
    """_line_batches yields the stream's lines in lists of at most BATCH, the first being line ``lineno``.

    It reads CHUNK bytes at a time; a line longer than ``cap`` is refused.
    Each line keeps its newline, as the C parser hands lines over.
    """
    rest = b""
    while True:
        chunk = _next_chunk(stream, path, rest, lineno, cap)
        if not chunk:
            if rest:
                yield [rest]
            return
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        lines = list(map(add, lines, repeat(b"\n")))
        lineno += len(lines)
        for i in range(0, len(lines), _pkg.BATCH):
            yield lines[i:i + _pkg.BATCH]


def _line(stream, path, lineno, cap, shown):
    """_line reads one line of JSON Lines; one longer than ``cap`` bytes is refused, saying ``shown`` (the line cap).

    A long line is read in pieces, so refusing one costs the cap, not twice it.
    """
    line = stream.readline(_pkg.LINE_PIECE)
    if len(line) < _pkg.LINE_PIECE or line.endswith(b"\n"):
        return line
    parts, n = [line], len(line)
    while not parts[-1].endswith(b"\n"):
        part = stream.readline(_pkg.LINE_PIECE)
        if not part:
            break
        parts.append(part)
        n += len(part)
        if n > cap:
            raise _too_long(path, lineno, shown)
    return b"".join(parts)


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
    if len(data) <= _pkg.DOCUMENT_PIECE:
        return data.translate(None, b" \t\r\n").count(b'":')
    n, quote_before = 0, False
    for i in range(0, len(data), _pkg.DOCUMENT_PIECE):
        piece = data[i:i + _pkg.DOCUMENT_PIECE].translate(None, b" \t\r\n")
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
        for start in range(0, len(items), _pkg.BATCH):
            part = items[start:start + _pkg.BATCH]
            if section == "objects" and builder.add_object_batch(part):
                continue
            if section == "events" and builder.add_event_batch(part):
                continue
            for i, rec in enumerate(part, start):
                add(rec, f"{section}[{i}]")
    builder.has_pages = "pages" in doc
    if "end" in doc:
        builder.add_end(doc["end"], "end record")


def _read_lines(stream, first, builder, path, progress, cap):
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
        _read_lines_fast(stream, builder, path, total, progress, cap)
        return
    with bar(total, "load", progress, unit="B") as pb:
        done, lineno = 0, 2
        for lines in _line_batches(stream, path, lineno, cap):
            if not _add_line_batch(builder, lines, lineno):
                for k, line in enumerate(lines):
                    _add_line(builder, path, line, lineno + k)
            lineno += len(lines)
            pos = _position(stream)
            pb.update(pos - done)
            done = pos


def _read_lines_fast(stream, builder, path, total, progress, cap):
    """_read_lines_fast reads the records after the header with the C parser, CHUNK bytes at a time.

    Lines it does not take (roots, pages, maps, anything unusual) are read
    one by one by _add_line, in file order, named by their line number.
    """
    parsers = (fastparse.Parser(builder.ptr_size), fastparse.Parser(builder.ptr_size))
    rest, lineno, done = b"", 2, 0
    with bar(total, "load", progress, unit="B") as pb, ThreadPoolExecutor(1) as pool:
        while True:
            chunk = _next_chunk(stream, path, rest, lineno, cap)
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
