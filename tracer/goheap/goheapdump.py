"""goheapdump parses the heap dumps of Go's runtime/debug.WriteHeapDump.

The format is the runtime's own (src/runtime/heapdump.go, unchanged since
Go 1.7): the header ``go1.7 heap dump\\n``, then records, each an unsigned
LEB128 varint tag followed by fields that are varints, strings (a varint
length and that many bytes) and field lists (pairs of varint kind and offset,
ended by kind 0), up to the eof record:

====  ===============  ======================================================
tag   record           fields
====  ===============  ======================================================
0     eof              (none; nothing may follow)
1     object           addr, contents (string), fields
2     otherroot        description (string), target
3     type             addr, size, name (string), indirect (bool)
4     goroutine        g, sp, goid, gopc, status, issystem, isbackground,
                       waitsince, waitreason (string), ctxt, m, defer, panic
5     stackframe       sp, depth, childsp, contents (string), entry, pc,
                       continpc, name (string), fields
6     dumpparams       bigendian, ptrsize, arenastart, arenaend, arch
                       (string), version (string), ncpu
7     finalizer        obj, fn, fn.fn, fint, ot
8     itab             addr, type
9     osthread         m, id, procid
10    memstats         the 25 scalar fields of runtime.MemStats in order,
                       256 PauseNs, NumGC
11    queuedfinalizer  obj, fn, fn.fn, fint, ot
12    data             addr, contents (string), fields
13    bss              addr, contents (string), fields
14    defer            d, g, sp, pc, fn, fn.fn, link
15    panic            p, g, type, data, (0), link
16    memprof          bucket, size, nstk, nstk x (func, file, line), allocs, frees
17    allocsample      addr, bucket
====  ===============  ======================================================

A field is ``1 offset`` (a pointer), ``2 offset`` (an iface: tab, data) or
``3 offset`` (an eface: type, data); Go 1.19 writes only pointers. Object
sizes are the span's element size, so the sizes add up to
MemStats.HeapAlloc and the count to MemStats.HeapObjects.

``parse`` reads everything into a ``HeapDump`` and refuses anything that is
not exactly this grammar (bad header, a varint longer than 10 bytes or over
64 bits, a string running past the end, an unknown tag, a field outside its
record, a missing eof, bytes after eof) with a ``HeapDumpError`` naming the
file, the byte offset and the record.

Object records are nearly all of a big dump (a million in a 100 MB dump), so
when the optional C scanner is built (``_goheapdump.c``, through goscan) it
reads runs of them into arrays, and stops at every other record, and at any
object record it does not take, for ``_record_reader`` to read: the Python
reader stays the one reference, and its messages the only ones (the tests
hold both paths to the same answer on random and damaged dumps). A 1M-object
dump parses in about 0.5 s that way, 10 s without.
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from gctrace.errors import HeapDumpError  # noqa: F401 (goimport, gotypes and the tests import it from here)
from gctrace.progress import bar

from . import goscan

HEADER = b"go1.7 heap dump\n"

TAG_NAMES = {
    0: "eof", 1: "object", 2: "otherroot", 3: "type", 4: "goroutine", 5: "stackframe",
    6: "dumpparams", 7: "finalizer", 8: "itab", 9: "osthread", 10: "memstats",
    11: "queuedfinalizer", 12: "data", 13: "bss", 14: "defer", 15: "panic",
    16: "memprof", 17: "allocsample",
}

MEMSTATS_FIELDS = (
    "Alloc", "TotalAlloc", "Sys", "Lookups", "Mallocs", "Frees", "HeapAlloc", "HeapSys",
    "HeapIdle", "HeapInuse", "HeapReleased", "HeapObjects", "StackInuse", "StackSys",
    "MSpanInuse", "MSpanSys", "MCacheInuse", "MCacheSys", "BuckHashSys", "GCSys",
    "OtherSys", "NextGC", "LastGC", "PauseTotalNs",
)

FIELD_PTR, FIELD_IFACE, FIELD_EFACE = 1, 2, 3


@dataclass
class Segment:
    """Segment is the data or bss section: its address, contents and pointer-field offsets."""

    addr: int
    contents: bytes
    ptr_offsets: list


@dataclass
class Frame:
    """Frame is one stack frame of a goroutine, its contents and pointer-field offsets."""

    sp: int
    depth: int
    child_sp: int
    contents: bytes
    entry: int
    pc: int
    continpc: int
    name: str
    ptr_offsets: list
    goroutine: int  # the g of the goroutine record before it


@dataclass
class ObjectArrays:
    """ObjectArrays is every object record as columns, in file order, for consumers that work on arrays.

    Object i starts at ``addr[i]`` (uint64) with ``size[i]`` bytes of contents
    at ``raw[off[i]:off[i] + size[i]]``; its fields are
    ``field_start[i]:field_start[i + 1]`` of ``field_kind`` (1 pointer, 2
    iface, 3 eface) and ``field_off`` (the field's offset as the dump gives
    it: for an iface or eface, the offset of its first word).
    """

    addr: np.ndarray
    off: np.ndarray
    size: np.ndarray
    field_start: np.ndarray
    field_kind: np.ndarray
    field_off: np.ndarray


@dataclass
class HeapDump:
    """HeapDump is everything one heap dump says, objects kept columnar.

    Object i starts at ``obj_addr[i]`` with ``obj_size[i]`` bytes whose contents
    are ``raw[obj_off[i] : obj_off[i] + obj_size[i]]``; its pointer fields are
    ``obj_fields[i]``, a tuple of offsets (iface/eface fields are given as the
    offset of their data word). ``objects`` holds the same as arrays.
    """

    path: str
    raw: bytes  # (a snapshot's is the bytearray its records were inflated into: gosnapshot.to_heapdump)
    params: dict = field(default_factory=dict)
    data: Segment | None = None
    bss: Segment | None = None
    frames: list = field(default_factory=list)
    goroutines: list = field(default_factory=list)
    finalizers: list = field(default_factory=list)  # (obj, fn, fnfn, fint, ot)
    queued_finalizers: list = field(default_factory=list)
    other_roots: list = field(default_factory=list)  # (description, target)
    types: dict = field(default_factory=dict)  # addr -> (size, name, indirect)
    itabs: dict = field(default_factory=dict)  # itab addr -> type addr
    osthreads: list = field(default_factory=list)
    defers: list = field(default_factory=list)
    panics: list = field(default_factory=list)
    memprof: list = field(default_factory=list)
    allocsamples: list = field(default_factory=list)
    memstats: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)  # record name -> how many
    objects: ObjectArrays | None = field(default=None, compare=False, repr=False)

    # The object columns as Python lists, made on first use (a second at 1M objects) for the code that
    # works object by object; array code reads ``objects``.
    @functools.cached_property
    def obj_addr(self) -> list:
        return self.objects.addr.tolist() if self.objects is not None else []

    @functools.cached_property
    def obj_size(self) -> list:
        return self.objects.size.tolist() if self.objects is not None else []

    @functools.cached_property
    def obj_off(self) -> list:
        return self.objects.off.tolist() if self.objects is not None else []

    @functools.cached_property
    def obj_fields(self) -> list:
        """obj_fields is each object's pointer fields, a tuple of offsets; an iface's is its data word's
        (its offset plus the params' pointer size: Go writes the params before any object)."""
        o = self.objects
        if o is None:
            return []
        data_off = (o.field_off + np.where(o.field_kind == FIELD_PTR, 0, self.ptr_size)).tolist()
        fields = [()] * len(o.addr)
        starts = o.field_start.tolist()
        for i in np.flatnonzero(np.diff(o.field_start)).tolist():
            fields[i] = tuple(data_off[starts[i]:starts[i + 1]])
        return fields

    @property
    def ptr_size(self) -> int:
        return self.params.get("ptrsize", 8)

    def word(self, buf: bytes, off: int) -> int:
        """word returns the pointer-sized word of buf at off in the dump's byte order."""
        n = self.ptr_size
        return int.from_bytes(buf[off:off + n], "big" if self.params.get("bigendian") else "little")


def read_heapdump(path, progress: bool | None = None) -> HeapDump:
    """read_heapdump reads and parses a heap dump file, gzip-compressed or not, refusing one too big to hold.

    The parse needs the whole dump in memory, and about as much again for its
    arrays, so a dump (after gzip) may take half of MemAvailable: a bigger
    file, a gzip bomb or an endless pipe is refused in one line when it gets
    there, not by the kernel's OOM killer later. What does not start as a
    heap dump does (/dev/zero, say) is refused after its first 16 bytes.
    """
    limit = memory_limit()
    try:
        with open(path, "rb") as f:
            if f.peek(2)[:2] == b"\x1f\x8b":  # peek: a pipe cannot seek back
                with gzip.GzipFile(fileobj=f) as z:
                    raw = _read_limited(z, limit, path, "its gzip data")
            else:
                raw = _read_limited(f, limit, path, "the file")
    except gzip.BadGzipFile as e:
        raise HeapDumpError(path, f"bad gzip data: {e}") from None
    except OSError as e:
        raise HeapDumpError(path, f"cannot read: {e.strerror or e}") from None
    except (EOFError, zlib.error) as e:
        raise HeapDumpError(path, f"bad gzip data: {e}") from None
    return parse(raw, path, progress)


PIECE = 16 << 20  # bytes read at a time while the limit is watched


def memory_limit() -> int:
    """memory_limit is the most bytes of heap dump read into memory: half of /proc/meminfo's MemAvailable."""
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return 1 << 62
    return kib * 1024 // 2


def _read_limited(stream, limit: int, path, what: str) -> bytes:
    """_read_limited reads a heap dump's stream to its end: refused at once unless it starts with the header, and
    once it passes ``limit`` bytes."""
    head = stream.read(len(HEADER))
    if head != HEADER:
        raise HeapDumpError(path, f"not a Go heap dump: it starts with {head[:16]!r}, not {HEADER!r} "
                                  "(runtime/debug.WriteHeapDump)")
    parts, n = [head], len(head)
    while True:
        part = stream.read(min(PIECE, limit + 1 - n))
        if not part:
            return b"".join(parts)
        parts.append(part)
        n += len(part)
        if n > limit:
            raise HeapDumpError(path, f"{what} runs past {limit >> 20} MiB, half of this machine's available "
                                      "memory: too big to parse here")


def parse(raw: bytes, path="<heapdump>", progress: bool | None = None) -> HeapDump:
    """parse reads every record of a heap dump held in memory.

    Object records go to the C scanner (goscan) when it is built, every other
    record to ``_record_reader``; without the scanner that reads them all.
    Both give the same HeapDump, or the same HeapDumpError. ``progress``
    shows a bar on a terminal (None: as gctrace.progress.showing says).

    >>> d = parse(HEADER + bytes([6, 0, 8, 0, 0, 5]) + b"amd64" + bytes([0, 1, 0]))
    >>> d.params["arch"], d.params["ptrsize"], d.counts
    ('amd64', 8, {'dumpparams': 1, 'eof': 1})
    """
    raw = bytes(raw)
    if not raw.startswith(HEADER):
        what = "empty file" if not raw else f"bad header {raw[:16]!r}"
        raise HeapDumpError(path, f"not a Go heap dump: {what}, expected {HEADER!r}")
    d = HeapDump(path=str(path), raw=raw)
    end = len(raw)
    pos = len(HEADER)
    record, objects_read = _record_reader(d, raw, path)
    seen_eof = False
    with bar(end, "reading the heap dump", progress, unit="B") as pb:
        if goscan.available():
            scanner = goscan.Scanner(raw, end // 64)
            step = max(end // 100, 1 << 20)
            while pos < end:
                status, at = scanner.scan(pos, pos + step, d.params.get("ptrsize", 8))
                pb.update(at - pos)
                pos = at
                if status == goscan.OTHER:
                    tag, pos = record(pos)
                    pb.update(pos - at)
                    if tag == 1:
                        raise AssertionError(f"BUG: the C scanner left a good object record at {at} to Python")
                    if tag == 0:
                        seen_eof = True
                        break
            cols = scanner.columns()
            if len(cols["addr"]):
                d.counts["object"] = d.counts.get("object", 0) + len(cols["addr"])
        else:
            done = pos
            while pos < end:
                tag, pos = record(pos)
                if pos - done >= 1 << 20:
                    pb.update(pos - done)
                    done = pos
                if tag == 0:
                    seen_eof = True
                    break
            cols = objects_read()
    if not seen_eof:
        raise HeapDumpError(path, f"offset {end}: eof record: truncated: the file ends before the eof record")
    if pos != end:
        raise HeapDumpError(path, f"offset {pos}: eof record: {end - pos} bytes after the eof record")
    if not d.params:
        raise HeapDumpError(path, "no dumpparams record")
    _set_objects(d, cols)
    return d


def _set_objects(d: HeapDump, cols: dict) -> None:
    """_set_objects gives d its object columns as ObjectArrays (``objects``)."""
    field_start = np.zeros(len(cols["addr"]) + 1, np.int64)
    field_start[1:] = cols["field_end"]
    d.objects = ObjectArrays(addr=cols["addr"], off=cols["off"], size=cols["size"], field_start=field_start,
                             field_kind=cols["field_kind"], field_off=cols["field_off"])


def _record_reader(d: HeapDump, raw: bytes, path):
    """_record_reader returns ``record(pos) -> (tag, next pos)``, which reads one record into d, and
    ``objects()``, the columns of the object records it has read.

    ``record`` refuses anything that is not exactly the grammar with a
    HeapDumpError naming the offset and the record.
    """
    end = len(raw)
    pos = 0
    rec_name = "header"
    rec_start = pos
    obj = {name: [] for name in ("addr", "off", "size", "field_end", "field_kind", "field_off")}
    field_kind, field_off = obj["field_kind"], obj["field_off"]

    def fail(problem, at=None):
        raise HeapDumpError(path, f"offset {rec_start if at is None else at}: {rec_name} record: {problem}")

    def uv():
        nonlocal pos
        x = 0
        shift = 0
        start = pos
        while True:
            if pos >= end:
                fail("truncated (the file ends inside a varint)", start)
            b = raw[pos]
            pos += 1
            if shift == 63 and b > 1:
                fail("bad uvarint (overflows 64 bits)", start)
            x |= (b & 0x7F) << shift
            if b < 0x80:
                return x
            shift += 7
            if shift > 63:
                fail("bad uvarint (longer than 10 bytes)", start)

    def memrange():
        nonlocal pos
        n = uv()
        if n > end - pos:
            fail(f"a {n}-byte string runs past the end of the file ({end - pos} bytes left)")
        start = pos
        pos += n
        return start, n

    def string():
        s, n = memrange()
        return raw[s:s + n].decode("utf-8", "replace")

    def fields(size, kinds=None):
        out = []
        while True:
            kind = uv()
            if kind == 0:
                return out
            off = uv()
            if kind == FIELD_PTR:
                width, data_off = 1, off
            elif kind in (FIELD_IFACE, FIELD_EFACE):
                width, data_off = 2, off + ptr
            else:
                fail(f"unknown field kind {kind}")
            if off % ptr or off + width * ptr > size:
                fail(f"field at offset {off} lies outside the {size}-byte contents")
            out.append(data_off)
            if kinds is not None:
                field_kind.append(kind)
                field_off.append(off)

    ptr = 8
    counts = d.counts

    def record(at):
        nonlocal pos, rec_start, rec_name, ptr
        pos = rec_start = at
        rec_name = "record tag"
        tag = uv()
        rec_name = TAG_NAMES.get(tag)
        if rec_name is None:
            rec_name = "record"
            fail(f"unknown tag {tag}")
        counts[rec_name] = counts.get(rec_name, 0) + 1
        if tag == 1:
            addr = uv()
            s, n = memrange()
            if addr == 0 or n == 0:
                fail(f"object at {addr:#x} with {n} bytes")
            fields(n, True)
            obj["addr"].append(addr)
            obj["off"].append(s)
            obj["size"].append(n)
            obj["field_end"].append(len(field_off))
        elif tag == 0:
            pass
        elif tag == 5:
            sp, depth, child = uv(), uv(), uv()
            s, n = memrange()
            entry, pc, cont = uv(), uv(), uv()
            name = string()
            g = d.goroutines[-1]["g"] if d.goroutines else 0
            d.frames.append(Frame(sp, depth, child, raw[s:s + n], entry, pc, cont, name, fields(n), g))
        elif tag in (12, 13):
            addr = uv()
            s, n = memrange()
            seg = Segment(addr, raw[s:s + n], fields(n))
            if tag == 12:
                d.data = seg
            else:
                d.bss = seg
        elif tag == 6:
            big, ptr = uv(), uv()
            if ptr not in (4, 8):
                fail(f"pointer size {ptr}")
            d.params = {"bigendian": bool(big), "ptrsize": ptr, "arena_start": uv(), "arena_end": uv(),
                        "arch": string(), "version": string(), "ncpu": uv()}
        elif tag == 2:
            d.other_roots.append((string(), uv()))
        elif tag == 3:
            addr, size = uv(), uv()
            d.types[addr] = (size, string(), bool(uv()))
        elif tag == 4:
            g = {k: uv() for k in ("g", "sp", "goid", "gopc", "status", "issystem", "isbackground", "waitsince")}
            g["waitreason"] = string()
            g.update({k: uv() for k in ("ctxt", "m", "defer", "panic")})
            d.goroutines.append(g)
        elif tag in (7, 11):
            (d.finalizers if tag == 7 else d.queued_finalizers).append(tuple(uv() for _ in range(5)))
        elif tag == 8:
            tab = uv()
            d.itabs[tab] = uv()
        elif tag == 9:
            d.osthreads.append((uv(), uv(), uv()))
        elif tag == 10:
            ms = {k: uv() for k in MEMSTATS_FIELDS}
            ms["PauseNs"] = [uv() for _ in range(256)]
            ms["NumGC"] = uv()
            d.memstats = ms
        elif tag == 14:
            d.defers.append(tuple(uv() for _ in range(7)))
        elif tag == 15:
            d.panics.append(tuple(uv() for _ in range(6)))
        elif tag == 16:
            bucket, size, nstk = uv(), uv(), uv()
            if nstk > end - pos:
                fail(f"{nstk} stack entries cannot fit in the {end - pos} bytes left")
            stk = [(string(), string(), uv()) for _ in range(nstk)]
            d.memprof.append((bucket, size, stk, uv(), uv()))
        elif tag == 17:
            d.allocsamples.append((uv(), uv()))
        return tag, pos

    def objects():
        return {name: np.array(obj[name], dtype) for name, dtype, _ in goscan.COLUMNS}

    return record, objects


def le_words(buf: bytes, n: int, ptr_size: int = 8):
    """le_words unpacks the first n little-endian pointer-sized words of buf.

    >>> le_words(bytes([1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]), 2)
    (1, 2)
    """
    return struct.unpack_from(f"<{n}{'Q' if ptr_size == 8 else 'I'}", buf)
