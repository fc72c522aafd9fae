"""gosnapshot takes a snapshot of a running Go program by PID and turns it into a HeapDump.

No code change in the target: the snapshot stops every thread of the process
(PTRACE_SEIZE + PTRACE_INTERRUPT), reads the runtime's own structures
from its memory, reads the residency of the heap's pages from
/proc/PID/pagemap while the threads are still stopped (so residency and
contents are of the same instant), and lets the threads go (PTRACE_DETACH).
If the snapshot tool dies half-way, the kernel detaches it and the threads
run on: a seized thread stopped by PTRACE_INTERRUPT is in no group stop, so
nothing is left stopped (SIGSTOP would leave it stopped). Ctrl-C and
SIGTERM end the snapshot through the same ``finally``. Memory is read with
process_vm_readv(2) (the same permission as /proc/PID/mem, four times as
fast for a big heap). The heap is not held in the tool's memory: it streams
through a small ring of buffers to an unlinked spill file (``_Live.heap``)
and is compressed from there after the target resumes, so the tool's peak
memory is a small part of the target's heap.

Terminology:

- *image*: the memory ranges the snapshot read, by address. Everything the
  importer needs is in it; the snapshot file stores it (docs/snapshot-format.md).
- *walk*: ``_Walk`` reads the runtime's structures through a memory reader.
  The capture runs it on the live process (every read is recorded into the
  image) and the import runs the very same code on the image, so the import
  never asks for a byte the capture did not read.

What comes from where (Go 1.22 and later on linux/amd64; field offsets of
every runtime struct from the binary's DWARF, never hard-coded):

- spans: ``runtime.mheap_.allspans``; a span is the heap's when its state
  is mSpanInUse (1), a goroutine stack's when mSpanManual (2).
- objects: slot i of an in-use span is allocated when i < freeindex or its
  allocBits bit is set (runtime/mbitmap.go, mspan.isFree), for i < nelems.
  A slot's size is the span's elemsize, as in a heap dump.
- pointer fields (mspan.typePointersOf, runtime/mbitmap.go): a noscan span
  (spanclass & 1) has none; objects of up to 512 B take ``elemsize/8`` heap
  bits from the bitmap at the span's end (``npages*8192/64`` bytes, before
  Green Tea's 128 bytes of inline mark bits, Go 1.26+, for 16..512-byte
  objects: spanHeapBitsRange); larger objects of a size class start with a
  malloc header, the address of their ``abi.Type``, whose GCData mask is
  tiled from the word after the header; a large object's type is the span's
  ``largeType``. A type flagged TFlagGCMaskOnDemand keeps the address of its
  mask in the word GCData points to, built on first use: an unbuilt one gives
  no fields and a warning.
- roots: data and bss with ``firstmoduledata.gcdatamask``/``gcbssmask``;
  the spans' specials as markrootSpans (runtime/mgcmark.go) marks them,
  their kind numbers per release in SPECIAL_KINDS: a finalizer's fn and
  the fields of its object (not the object), a cleanup's fn (Go 1.24,
  1.25) or ``call``, ``fn`` and ``arg`` (1.26+) as ``cleanup of 0x...``,
  a weak handle as ``weak handle for 0x...`` (the handle, not the object:
  it holds the address as a number); the finalizers queued to run, the
  ``cnt`` entries of every block on ``runtime.allfin`` (fixedRootFinalizers),
  as the heap dump's queued finalizers; the cleanups queued to run (Go 1.25+,
  the blocks on ``gcCleanups.all``: fixedRootCleanups) as ``queued cleanup``;
  goroutine stacks from
  ``runtime.allgs``, scanned *conservatively* (every aligned word from the
  goroutine's stack pointer to ``stack.hi`` that points into an allocated
  object is a root: the stack maps are not read), and the general registers
  of every thread, conservatively too. So the reachable set is the heap
  dump's or a superset of it: heap dumps list no cleanups and no weak
  handles. meta.stacks says how stacks were read, meta.roots_missing lists
  what the walk could not read (empty when it read every kind).
- pages: /proc/PID/pagemap for every page of the heap arenas
  (``mheap_.heapArenas``): present (not the kernel zero page) or swapped.
  State: ``used`` in an in-use or stack span; else ``free`` or ``released``
  by the page allocator's scavenged bits (``mheap_.pages.chunks``).
"""

from __future__ import annotations

import bisect
import ctypes
import errno
import mmap
import os
import queue
import signal
import struct
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass

import numpy as np
import orjson

from gctrace.errors import GctraceError, SnapshotError  # noqa: F401 (SnapshotError: the tests and the CLI import it from here too)

from .goheapdump import FIELD_PTR, Frame, HeapDump, ObjectArrays, Segment

MAGIC = b"gctrace-snapshot\n"
VERSION = 1
PAGE = 8192  # runtime: pageSize
OS_PAGE = 4096
SPAN_IN_USE, SPAN_MANUAL = 1, 2  # runtime: mSpanInUse, mSpanManual
G_RUNNING, G_SYSCALL, G_DEAD, G_DEADEXTRA, G_SCAN = 2, 3, 6, 11, 0x1000

TFLAG_GCMASK_ON_DEMAND = 1 << 4  # internal/abi: TFlagGCMaskOnDemand (Go 1.24+)
MIN_SIZE_FOR_MALLOC_HEADER = 512
INLINE_MARK_BITS = 128  # unsafe.Sizeof(spanInlineMarkBits{}), Go 1.26's Green Tea (mgcmark_greenteagc.go)
HEAP_ARENA_BYTES = 64 << 20  # runtime: heapArenaBytes on linux/amd64
ARENA_BASE_OFFSET = 0xFFFF800000000000  # runtime: arenaBaseOffset on amd64
PALLOC_CHUNK_BYTES = 4 << 20  # runtime: pallocChunkBytes (512 pages)
PALLOC_L2_BITS = 13  # runtime: pallocChunksL2Bits on amd64 (48 - 22 - 13)
PALLOC_DATA = 128  # unsafe.Sizeof(pallocData{}): pallocBits and scavenged, 8 words each
OLDEST, NEWEST = (1, 22), (1, 27)

# ptrace(2)
PTRACE_DETACH, PTRACE_GETREGS = 17, 12
PTRACE_SEIZE, PTRACE_INTERRUPT = 0x4206, 0x4207
PTRACE_EVENT_STOP = 128
WALL = 0x40000000  # __WALL
USER_REGS = 27  # struct user_regs_struct on x86-64, 8-byte fields

# The runtime structs and members the walk reads; every offset comes from DWARF.
STRUCTS = {
    "runtime.mheap": ("allspans", "heapArenas", "pages"),
    "runtime.mspan": ("startAddr", "npages", "freeindex", "nelems", "allocBits", "spanclass", "state",
                      "elemsize", "specials", "largeType"),
    "runtime.moduledata": ("data", "edata", "bss", "ebss", "gcdatamask", "gcbssmask"),
    "runtime.g": ("stack", "sched", "syscallsp", "atomicstatus", "goid"),
    "runtime.gobuf": ("sp", "ctxt"),
    "internal/abi.Type": ("Size_", "PtrBytes", "TFlag", "GCData"),
    "runtime.itabTableType": ("size", "entries"),
    "internal/abi.ITab": ("Type",),
    "runtime.special": ("next", "offset", "kind"),
    "runtime.specialfinalizer": ("fn", "fint", "ot"),
    "runtime.pageAlloc": ("chunks",),
}
# Structs only some releases have, read where the binary has them (the walk warns where a release should
# have one and it is missing): the specials of weak handles (Go 1.23+) and cleanups (1.24+; its ``fn`` became
# ``cleanup``, a cleanupFn, in 1.26), and the finalizer queue's blocks and entries. Members a struct lacks are
# left out: the walk checks the ones it reads.
OPTIONAL_STRUCTS = {
    "runtime.specialWeakHandle": ("handle",),
    "runtime.specialCleanup": ("fn", "cleanup"),
    "runtime.cleanupFn": ("call", "fn", "arg"),
    "runtime.finBlock": ("alllink", "cnt", "fin"),
    "runtime.finalizer": ("fn", "arg", "fint", "ot"),
    "runtime.cleanupQueue": ("all",),  # Go 1.25+: cleanups queued to run, in blocks of their own
    "internal/runtime/atomic.UnsafePointer": ("value",),
    "runtime.cleanupBlock": ("cleanupBlockHeader", "cleanups"),
    "runtime.cleanupBlockHeader": ("alllink", "n"),
}
# Older names of the same things: struct -> its name before, member -> its name before.
STRUCT_ALIASES = {"internal/abi.ITab": "runtime.itab",  # Go 1.22
                  "runtime.finBlock": "runtime.finblock"}  # before Go 1.25
MEMBER_ALIASES = {"heapArenas": "allArenas",  # before Go 1.25 (user arenas got their own list then)
                  "Type": "_type"}  # runtime.itab, Go 1.22
SYMBOLS = ("runtime.mheap_", "runtime.firstmoduledata", "runtime.allgs", "runtime.itabTable",
           "runtime.buildVersion")
OPTIONAL_SYMBOLS = ("runtime.allfin",  # every finBlock, the finalizer queue's among them (runtime/mfinal.go)
                    "runtime.gcCleanups")  # the cleanup queue, Go 1.25+ (runtime/mcleanup.go)

# SPECIAL_KINDS is runtime._KindSpecial* (runtime/mheap.go) of the specials that are roots, from the release
# that set them until the next entry (tests/test_snapshot_roots.py holds it against each toolchain's mheap.go):
#   1.22  Finalizer 1, Profile 2, Reachable 3, PinCounter 4
#   1.23  WeakHandle 2 inserted (internal/weak, for package unique)
#   1.24  Cleanup 6 appended (runtime.AddCleanup; package weak)
#   1.25  TinyBlock 1 inserted: Finalizer 2, WeakHandle 3, Cleanup 7 (then CheckFinalizer, Bubble; Secret 1.26)
SPECIAL_KINDS = {
    (1, 22): {"finalizer": 1},
    (1, 23): {"finalizer": 1, "weak_handle": 2},
    (1, 24): {"finalizer": 1, "weak_handle": 2, "cleanup": 6},
    (1, 25): {"finalizer": 2, "weak_handle": 3, "cleanup": 7},
}


def special_kinds(version: tuple) -> dict:
    """special_kinds returns {finalizer, weak_handle, cleanup: runtime._KindSpecial*} of a release, those it has.

    >>> special_kinds((1, 23))
    {'finalizer': 1, 'weak_handle': 2}
    >>> special_kinds((1, 27))["cleanup"]
    7
    """
    return SPECIAL_KINDS[max((k for k in SPECIAL_KINDS if k <= version), default=min(SPECIAL_KINDS))]


def finalizer_kind(version: tuple) -> int:
    """finalizer_kind is runtime._KindSpecialFinalizer: 1, or 2 from Go 1.25 (_KindSpecialTinyBlock took 1)."""
    return special_kinds(version)["finalizer"]


# --- memory readers ---------------------------------------------------------------------------------

class _Image:
    """_Image is memory as ranges of bytes by address: what a snapshot read."""

    def __init__(self, ranges=()):
        self.starts, self.chunks = [], []
        self.store, self.store_at = None, {}  # of_store's buffer, and where each record starts in it
        for a, b in sorted(ranges, key=lambda r: r[0]):
            self.add(a, b)

    @classmethod
    def of_store(cls, store: bytearray, records) -> "_Image":
        """of_store is the image of the records (addr, offset, n) of one buffer, store, each a view of it."""
        view = memoryview(store)
        img = cls([(a, view[o:o + n]) for a, o, n in records])
        img.store, img.store_at = store, {a: (o, n) for a, o, n in records}
        return img

    def store_offset(self, addr: int, n: int):
        """store_offset returns where [addr, addr + n) lies in store, or None if it is not inside one record of it."""
        k = bisect.bisect_right(self.starts, addr) - 1
        if self.store is None or k < 0 or addr + n > self.starts[k] + len(self.chunks[k]):
            return None
        at = self.store_at.get(self.starts[k])
        if at is None or at[1] != len(self.chunks[k]) or not isinstance(self.chunks[k], memoryview):
            return None  # (merged with another range by add: a copy)
        return at[0] + addr - self.starts[k]

    def add(self, addr: int, data: bytes):
        """add keeps data at addr; ranges that touch or overlap an earlier one are merged into it."""
        k = bisect.bisect_right(self.starts, addr) - 1
        if k >= 0 and addr < self.starts[k] + len(self.chunks[k]):
            s, old = self.starts[k], self.chunks[k]
            if addr + len(data) <= s + len(old):
                return
            self.chunks[k] = bytes(old[:addr - s]) + bytes(data)  # (a _Spilled slice is bytes already)
        else:
            k += 1
            self.starts.insert(k, addr)
            self.chunks.insert(k, data)
        end = self.starts[k] + len(self.chunks[k])
        while k + 1 < len(self.starts) and self.starts[k + 1] < end:  # swallow what it now overlaps
            s, nxt = self.starts.pop(k + 1), self.chunks.pop(k + 1)
            if s + len(nxt) > end:
                self.chunks[k] = bytes(self.chunks[k][0:len(self.chunks[k])]) + bytes(nxt[end - s:len(nxt)])
                end = self.starts[k] + len(self.chunks[k])

    def covers(self, addr: int, n: int) -> bool:
        """covers reports whether [addr, addr + n) was read, in one range or in ranges that touch."""
        k = bisect.bisect_right(self.starts, addr) - 1
        if k < 0:
            return False
        end = self.starts[k] + len(self.chunks[k])
        while end < addr + n and k + 1 < len(self.starts) and self.starts[k + 1] == end:
            k += 1
            end += len(self.chunks[k])
        return addr + n <= end

    def touch(self, addr: int, n: int) -> None:
        """touch checks that [addr, addr + n) was read, without copying it out."""
        if not self.covers(addr, n):
            raise SnapshotError("snapshot", f"{n} bytes at {addr:#x} were not read by the snapshot")

    def read(self, addr: int, n: int) -> bytes:
        k = bisect.bisect_right(self.starts, addr) - 1
        if k >= 0 and addr + n <= self.starts[k] + len(self.chunks[k]):
            o = addr - self.starts[k]
            return self.chunks[k][o:o + n]
        if self.covers(addr, n):  # across ranges that touch (a core file's segments)
            out, at = [], addr
            while at < addr + n:
                k = bisect.bisect_right(self.starts, at) - 1
                o = at - self.starts[k]
                take = min(len(self.chunks[k]) - o, addr + n - at)
                out.append(bytes(self.chunks[k][o:o + take]))
                at += take
            return b"".join(out)
        raise SnapshotError("snapshot", f"{n} bytes at {addr:#x} were not read by the snapshot")

    def heap(self, runs: list, words: np.ndarray) -> np.ndarray:
        """heap checks that the runs [start, end) were read and returns the 8-byte words at ``words`` (_Live.heap)."""
        for a, e in runs:
            self.touch(a, e - a)
        return _read_rows(self, words, 8).view("<u8").ravel()

    def ranges(self):
        return list(zip(self.starts, self.chunks))


class _Spilled:
    """_Spilled is a range of memory the capture wrote to a spill file instead of keeping it: bytes on demand."""

    def __init__(self, f, off: int, n: int):
        self.f, self.off, self.n = f, off, n

    def __len__(self):
        return self.n

    def __bytes__(self):
        return self[0:self.n]

    def __getitem__(self, sl: slice) -> bytes:
        start, stop, _ = sl.indices(self.n)
        want = max(stop - start, 0)
        got = os.pread(self.f.fileno(), want, self.off + start)
        if len(got) != want:
            raise SnapshotError("snapshot", f"its spill file ended {want - len(got)} bytes short")
        return got

    def pieces(self, size: int = 16 << 20):
        """pieces yields the range's bytes in pieces of size bytes."""
        for o in range(0, self.n, size):
            yield self[o:min(o + size, self.n)]


class _Live:
    """_Live reads a stopped process's memory, recording every read in an image.

    Reads go through process_vm_readv(2), about four times as fast as
    /proc/PID/mem for a big heap (both need the right to ptrace the target).
    Small reads (runtime structures, stacks) are kept in bytearrays. The heap
    (``heap``) streams to ``spill``, an unlinked file, through a ring of
    RING buffers of PIECE bytes: this thread reads a piece while a writer
    thread writes the one before (both calls release the GIL), so the pause
    is about the longer of the two, not their sum, and the tool's memory is
    the ring, whatever the heap's size. The file's pages are the kernel's
    page cache, not this process's memory.
    """

    PIECE = 8 << 20
    RING = 4
    IOV_MAX = 1024  # iovecs one process_vm_readv takes (UIO_MAXIOV)

    def __init__(self, pid: int, spill=None, where="spill file"):
        self.pid = pid
        self.where = where  # the spill file's directory, for errors
        self.image = _Image()
        self.bytes_read = 0
        self.bytes_unread = 0  # heap bytes not read: pages neither present nor swapped, or the zero page
        self.spill = spill  # an open, unlinked file the heap's memory streams to
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.process_vm_readv.restype = ctypes.c_ssize_t
        self.ring = []
        self.prefilled = 0
        self.wanted = {}  # arena -> per 4 KiB page: may hold more than zeros (residency); no entry: read it all

    def _readv(self, addr: int, buf, n: int):
        local = _IOVec(ctypes.addressof((ctypes.c_char * n).from_buffer(buf)), n)  # buf: writable, n bytes
        remote = _IOVec(addr, n)
        got = self.libc.process_vm_readv(self.pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        if got != n:
            self._failed(addr, n, got)
        self.bytes_read += n

    def _failed(self, addr, n, got):
        err = ctypes.get_errno()
        why = os.strerror(err) if got < 0 else f"read {got} of them"
        raise SnapshotError(f"pid {self.pid}", f"cannot read {n} bytes at {addr:#x}: {why}")

    def read(self, addr: int, n: int):
        if n <= 0:
            return b""
        buf = bytearray(n)
        self._readv(addr, buf, n)
        self.image.add(addr, buf)
        return buf

    def prepare(self, nbytes: int) -> None:
        """prepare, before the target is stopped, faults in the ring and writes nbytes of zeros to the spill file.

        Both take fresh pages from the kernel, which costs about as much as
        the copy (more where a VM's host lends memory back on first touch):
        this way that cost is paid while the target runs, and inside the
        pause the heap overwrites pages the page cache already holds.
        ``nbytes`` is a guess (the heap grows meanwhile): beyond it the file
        just grows.
        """
        self._make_ring()
        fd, zero = self.spill.fileno(), self.ring[0]
        try:
            for o in range(0, nbytes, self.PIECE):
                _pwrite_all(fd, memoryview(zero)[:min(self.PIECE, nbytes - o)], o)
        except OSError as e:
            raise self._spill_error(e, f" ({nbytes >> 20} MiB, the size of the heap)") from None
        self.prefilled = nbytes

    def _make_ring(self):
        """_make_ring allocates the ring's buffers and faults their pages in."""
        self.ring = [np.zeros(self.PIECE, np.uint8) for _ in range(self.RING)]
        for b in self.ring:
            b.fill(0)  # np.zeros maps untouched pages: write them so they are the process's now

    def residency(self, pagemap: dict, zero_pfn) -> None:
        """residency takes the pagemap read while stopped ({arena: entries}): ``heap`` does not read the pages it
        shows neither present nor swapped (never touched, or given back: they read as zeros) nor mapping the
        kernel's zero page, and gives the image zeros for them."""
        self.wanted = {}
        for base, e in pagemap.items():
            resident, swapped = _pagemap_bits(e, zero_pfn)
            self.wanted[base] = resident | swapped

    def _wanted(self, addr: int, n: int):
        """_wanted returns the [start, end) offsets in [addr, addr + n) worth reading: all of it, or its pages that
        may hold more than zeros by the pagemap (one arena's pages at most)."""
        base = addr - addr % HEAP_ARENA_BYTES
        w = self.wanted.get(base)
        if w is None or addr % OS_PAGE or n % OS_PAGE or addr + n > base + HEAP_ARENA_BYTES:
            return [(0, n)]
        w = w[(addr - base) // OS_PAGE:(addr - base + n) // OS_PAGE]
        if w.all():
            return [(0, n)]
        edge = np.diff(w.astype(np.int8), prepend=0, append=0)
        starts, ends = np.flatnonzero(edge == 1) * OS_PAGE, np.flatnonzero(edge == -1) * OS_PAGE
        return list(zip(starts.tolist(), ends.tolist()))

    def _read_piece(self, addr: int, buf: np.ndarray, n: int) -> bool:
        """_read_piece fills buf[:n] with [addr, addr + n): the pages worth reading read, the rest zeroed.

        Returns False when no page was worth reading (buf is left as it was).
        """
        parts = self._wanted(addr, n)
        if not parts:
            self.bytes_unread += n
            return False
        at, base = 0, buf.ctypes.data
        for s, e in parts:
            if s > at:
                ctypes.memset(base + at, 0, s - at)
            at = e
        if at < n:
            ctypes.memset(base + at, 0, n - at)
        for k in range(0, len(parts), self.IOV_MAX):
            batch = parts[k:k + self.IOV_MAX]
            local = (_IOVec * len(batch))(*[_IOVec(base + s, e - s) for s, e in batch])
            remote = (_IOVec * len(batch))(*[_IOVec(addr + s, e - s) for s, e in batch])
            want = sum(e - s for s, e in batch)
            got = self.libc.process_vm_readv(self.pid, local, len(batch), remote, len(batch), 0)
            if got != want:
                self._failed(addr + batch[0][0], want, got)
            self.bytes_read += want
        self.bytes_unread += n - sum(e - s for s, e in parts)
        return True

    def heap(self, runs: list, words: np.ndarray) -> np.ndarray:
        """heap reads the runs [start, end) whole into the spill file and returns the 8-byte words at ``words``.

        ``words`` are sorted, 8-byte aligned addresses inside the runs (the
        malloc headers): they are taken from the pieces on their way to the
        file, so they cost no read of their own. Runs are cut into pieces at
        PIECE bytes and at arena boundaries (the pagemap is per arena).
        """
        out = np.zeros(len(words), np.uint64)
        if not self.ring:
            self._make_ring()
        fd = self.spill.fileno()
        free, full = queue.SimpleQueue(), queue.SimpleQueue()
        for b in self.ring:
            free.put(b)
        failed, cancel = [], threading.Event()

        def writer():
            while (item := full.get()) is not None:
                buf, off, n = item
                try:
                    if not failed and not cancel.is_set():
                        _pwrite_all(fd, memoryview(buf)[:n], off)
                except OSError as e:
                    failed.append(e)
                finally:
                    free.put(buf)

        t = threading.Thread(target=writer, name="gctrace-spill", daemon=True)
        t.start()
        at = 0
        try:
            for a, e in runs:
                start = at
                p = a
                while p < e:
                    n = min(self.PIECE, e - p, HEAP_ARENA_BYTES - p % HEAP_ARENA_BYTES)
                    buf = free.get()
                    if failed:
                        break
                    if self._read_piece(p, buf, n):
                        lo, hi = np.searchsorted(words, np.array([p, p + n], np.uint64))
                        if hi > lo:
                            word = ((words[lo:hi] - np.uint64(p)) // np.uint64(8)).astype(np.int64)
                            out[lo:hi] = buf.view("<u8")[word]
                        full.put((buf, at, n))
                    else:
                        free.put(buf)
                    p += n
                    at += n
                if failed:
                    break
                self.image.add(a, _Spilled(self.spill, start, e - a))
        except BaseException:
            cancel.set()
            raise
        finally:
            full.put(None)
            t.join()
        try:
            if failed:
                raise failed[0]
            if at > self.prefilled:
                os.ftruncate(fd, at)  # pieces never written (all zeros) past the prefilled part read as zeros
        except OSError as e:
            raise self._spill_error(e) from None
        return out

    def _spill_error(self, e: OSError, what: str = "") -> SnapshotError:
        return SnapshotError(self.where, f"cannot write the snapshot's spill file{what}: {e.strerror or e}")

    def close(self):
        self.ring = []


def _pwrite_all(fd: int, data, off: int) -> None:
    """_pwrite_all writes all of data at off (pwrite may write less than asked)."""
    while len(data):
        n = os.pwrite(fd, data, off)
        data, off = data[n:], off + n


class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _read_rows(mem, addrs: np.ndarray, size: int, gap: int = 4096) -> np.ndarray:
    """_read_rows reads size bytes at each address into the rows of an (n, size) array, in the given order.

    Addresses closer than gap are read in one go; a run that cannot be read
    whole (it spans unmapped memory) is read row by row.
    """
    addrs = np.asarray(addrs, np.uint64)
    out = np.zeros((len(addrs), size), np.uint8)
    if not len(addrs):
        return out
    by_addr = np.argsort(addrs, kind="stable")
    ordered = addrs[by_addr]
    order = np.unique(ordered)
    cut = np.flatnonzero(order[1:] - order[:-1] > np.uint64(size + gap)) + 1
    for run in np.split(order, cut):
        start, end = int(run[0]), int(run[-1]) + size
        try:
            blob = np.frombuffer(mem.read(start, end - start), np.uint8)
        except SnapshotError:
            if len(run) == 1:
                raise
            blob = None
        rows = by_addr[np.searchsorted(ordered, run[0]):np.searchsorted(ordered, run[-1], side="right")]
        for i in rows.tolist() if blob is None else ():
            out[i] = np.frombuffer(mem.read(int(addrs[i]), size), np.uint8)
        if blob is not None:
            offs = (addrs[rows] - np.uint64(start)).astype(np.int64)
            out[rows] = np.lib.stride_tricks.sliding_window_view(blob, size)[offs]  # no (rows, size) index array
    return out


def _col(rows: np.ndarray, off: int, n: int) -> np.ndarray:
    """_col returns the n-byte little-endian field at off of every row, as uint64."""
    b = np.zeros((len(rows), 8), np.uint8)
    b[:, :n] = rows[:, off:off + n]
    return b.view("<u8").ravel()


def _read_many(mem, addrs, size: int, gap: int = 4096) -> dict:
    """_read_many reads size bytes at each address: {address: bytes}."""
    order = sorted(set(addrs))
    rows = _read_rows(mem, np.array(order, np.uint64), size, gap)
    return {a: rows[i].tobytes() for i, a in enumerate(order)}


def u64(b: bytes, off: int = 0) -> int:
    return int.from_bytes(b[off:off + 8], "little")


# --- the walk ---------------------------------------------------------------------------------------

@dataclass
class Layout:
    """Layout is the runtime's struct offsets and symbol addresses: what the walk reads where."""

    structs: dict  # struct -> {member: offset}, "size" -> its size
    symbols: dict  # name -> address

    @classmethod
    def from_binary(cls, binary, what):
        structs = {}
        for name, members in STRUCTS.items():
            got = binary.struct_layout(name)
            if got is None and name in STRUCT_ALIASES:
                got = binary.struct_layout(STRUCT_ALIASES[name])
            if got is None:
                raise SnapshotError(what, f"its DWARF has no {name}: not a Go {OLDEST[0]}.{OLDEST[1]}+ binary?")
            offs, size = got
            offs = {**{m: offs[MEMBER_ALIASES[m]] for m in members if m not in offs and MEMBER_ALIASES.get(m) in offs},
                    **offs}
            lack = [m for m in members if m not in offs]
            if lack:
                raise SnapshotError(what, f"{name} in its DWARF lacks {', '.join(lack)}: a Go release gctrace "
                                          f"does not know")
            structs[name] = {**{m: offs[m] for m in members}, "size": size}
        for name, members in OPTIONAL_STRUCTS.items():
            got = binary.struct_layout(name) or binary.struct_layout(STRUCT_ALIASES.get(name, name))
            if got is not None:
                structs[name] = {**{m: got[0][m] for m in members if m in got[0]}, "size": got[1]}
        symbols = {}
        for s in SYMBOLS:
            a = next((x[0] for x in binary._syms if x[2] == s), None)
            if a is None:
                raise SnapshotError(what, f"no symbol {s}: not a Go program")
            symbols[s] = a
        for s in OPTIONAL_SYMBOLS:
            a = next((x[0] for x in binary._syms if x[2] == s), None)
            if a is not None:
                symbols[s] = a
        return cls(structs, symbols)

    def off(self, struct: str, member: str) -> int:
        return self.structs[struct][member]


class Spans:
    """Spans is the in-use and manual spans of mheap_.allspans as columns (numpy arrays), sorted by address."""

    COLUMNS = (("addr", "startAddr", 8), ("npages", "npages", 8), ("elemsize", "elemsize", 8),
               ("nelems", "nelems", 2), ("freeindex", "freeindex", 2), ("spanclass", "spanclass", 1),
               ("state", "state", 1), ("alloc_bits", "allocBits", 8), ("specials", "specials", 8),
               ("large_type", "largeType", 8))

    def __init__(self, rows: np.ndarray, m: dict):
        cols = {name: _col(rows, m[member], n) for name, member, n in self.COLUMNS}
        keep = (cols["state"] == SPAN_IN_USE) | (cols["state"] == SPAN_MANUAL)
        order = np.argsort(cols["addr"][keep], kind="stable")
        for name, col in cols.items():
            setattr(self, name, col[keep][order])
        self.in_use = self.state == SPAN_IN_USE
        self.scan = self.in_use & ((self.spanclass & np.uint64(1)) == 0)
        self.sizeclass = self.spanclass >> np.uint64(1)

    def __len__(self):
        return len(self.addr)


class AllocBits:
    """AllocBits is the allocBits of the in-use spans as rows of 2-D arrays, one per row length (not a dict of
    131,072 small arrays for a 1 GiB heap: 20 MB of Python objects)."""

    def __init__(self, n: int):
        self.group = np.full(n, -1, np.int64)  # span -> which rows array holds its bits
        self.row = np.zeros(n, np.int64)  # span -> its row there
        self.rows = []

    def add(self, spans: np.ndarray, rows: np.ndarray) -> None:
        """add keeps rows[k] as the bits of span spans[k]."""
        self.group[spans] = len(self.rows)
        self.row[spans] = np.arange(len(spans))
        self.rows.append(rows)

    def get(self, i: int):
        """get returns span i's allocBits bytes, or None when it has none (not in use, or no slots)."""
        g = self.group[i]
        return None if g < 0 else self.rows[g][self.row[i]]


class HeaderWords:
    """HeaderWords is the malloc header word (a type's address, or 0) of each allocated 513 B..32 KiB scan object.

    Arrays while the target is stopped; ``get(addr, default)`` builds the
    {addr: word} dict the import asks on first use (0.2 s at 1M objects:
    not inside the pause).
    """

    def __init__(self, addrs: np.ndarray, words: np.ndarray):
        self.addrs, self.words = addrs, words
        self._by_addr = None

    def values(self) -> list:
        """values returns the distinct words."""
        return np.unique(self.words).tolist()

    def get(self, addr: int, default=None):
        if self._by_addr is None:
            self._by_addr = dict(zip(self.addrs.tolist(), self.words.tolist()))
        return self._by_addr.get(addr, default)


class _Walk:
    """_Walk reads the runtime's structures through ``mem`` (live or an image) with ``lay``'s offsets."""

    def __init__(self, mem, lay: Layout, green_tea: bool, finalizer: int):
        self.mem, self.lay, self.green_tea, self.finalizer = mem, lay, green_tea, finalizer
        self.warnings = []
        self.roots_missing = []  # the collector's roots this walk could not read, in words for meta.roots_missing
        self.release = None  # (major, minor) read from runtime.buildVersion by kinds()

    def field(self, addr, struct, member, n=8):
        return int.from_bytes(self.mem.read(addr + self.lay.off(struct, member), n), "little")

    def slice(self, addr):
        b = self.mem.read(addr, 16)
        return u64(b), u64(b, 8)

    def build_version(self) -> str:
        p, n = self.slice(self.lay.symbols["runtime.buildVersion"])
        return bytes(self.mem.read(p, n)).decode("utf-8", "replace") if 0 < n < 256 else ""

    def spans(self) -> Spans:
        """spans returns every in-use (heap) and manual (stack) span of mheap_.allspans."""
        lay, mh = self.lay, self.lay.symbols["runtime.mheap_"]
        p, n = self.slice(mh + lay.off("runtime.mheap", "allspans"))
        ptrs = np.frombuffer(self.mem.read(p, 8 * n), "<u8") if n else np.zeros(0, np.uint64)
        m = lay.structs["runtime.mspan"]
        return Spans(_read_rows(self.mem, ptrs[ptrs != 0], m["size"]), m)

    def heap_runs(self, spans: Spans) -> list:
        """heap_runs returns [start, end) runs of the in-use spans' memory, adjacent spans merged."""
        a = spans.addr[spans.in_use]
        e = a + spans.npages[spans.in_use] * np.uint64(PAGE)
        if not len(a):
            return []
        cut = np.flatnonzero(a[1:] != e[:-1]) + 1
        starts = np.concatenate(([0], cut))
        ends = np.concatenate((cut, [len(a)])) - 1
        return [[s, t] for s, t in zip(a[starts].tolist(), e[ends].tolist())]

    def alloc_bits(self, spans: Spans) -> "AllocBits":
        """alloc_bits reads the allocBits of every in-use span: span i's (nelems+7)/8 bytes are ``.get(i)``."""
        use = np.flatnonzero(spans.in_use & (spans.nelems > 0))
        nbytes = (spans.nelems[use] + np.uint64(7)) // np.uint64(8)
        out = AllocBits(len(spans))
        for n in np.unique(nbytes).tolist():
            sel = use[nbytes == n]
            out.add(sel, _read_rows(self.mem, spans.alloc_bits[sel], n, gap=256))
        return out

    @staticmethod
    def allocated(spans: Spans, bits: "AllocBits", i: int) -> np.ndarray:
        """allocated returns the allocated slot indices of span i (mspan.isFree, negated)."""
        row = bits.get(i)
        if row is None:
            return np.zeros(0, np.int64)
        n = int(spans.nelems[i])
        b = np.unpackbits(row, bitorder="little")[:n]
        b[:min(int(spans.freeindex[i]), n)] = 1
        return np.flatnonzero(b)

    def type_mask(self, t: int):
        """type_mask returns (Size_, pointer word offsets in one value) of the abi.Type at t, or None (unbuilt)."""
        st = self.lay.structs["internal/abi.Type"]
        b = self.mem.read(t, st["size"])
        size, ptrbytes = u64(b, st["Size_"]), u64(b, st["PtrBytes"])
        tflag, gcdata = b[st["TFlag"]], u64(b, st["GCData"])
        if ptrbytes == 0:
            return size, np.zeros(0, np.int64)
        if tflag & TFLAG_GCMASK_ON_DEMAND:
            gcdata = u64(self.mem.read(gcdata, 8))
            if gcdata == 0:
                return None
        words = ptrbytes // 8
        mask = np.frombuffer(self.mem.read(gcdata, (words + 63) // 64 * 8), np.uint8)
        bits = np.unpackbits(mask, bitorder="little")[:words]
        return size, np.flatnonzero(bits).astype(np.int64) * 8

    def header_spans(self, spans: Spans) -> np.ndarray:
        """header_spans returns the indices of the in-use spans whose objects start with a malloc header."""
        return np.flatnonzero(spans.scan & (spans.sizeclass != 0)
                              & (spans.elemsize > np.uint64(MIN_SIZE_FOR_MALLOC_HEADER)))

    def header_addrs(self, spans: Spans, bits: "AllocBits") -> np.ndarray:
        """header_addrs returns the addresses of every allocated 513 B..32 KiB scan object, sorted: their first
        word is a malloc header (the address of the object's type). ``allocated`` for all those spans at once
        (a 1 GiB heap of 1 KiB objects has 150,000 of them)."""
        idx = self.header_spans(spans)
        out = []
        for g, rows in enumerate(bits.rows):
            sel = idx[bits.group[idx] == g]
            if not len(sel):
                continue
            b = np.unpackbits(rows[bits.row[sel]], axis=1, bitorder="little").astype(bool)
            slot = np.arange(b.shape[1], dtype=np.uint64)[None, :]
            b |= slot < spans.freeindex[sel][:, None]  # mspan.isFree: below freeindex, allocated
            b &= slot < spans.nelems[sel][:, None]
            r, c = np.nonzero(b)
            out.append(spans.addr[sel][r] + c.astype(np.uint64) * spans.elemsize[sel][r])
        return np.sort(np.concatenate(out)) if out else np.zeros(0, np.uint64)

    def types(self, spans: Spans, headers) -> dict:
        """types reads every type the heap's objects name (headers, large spans): {type: mask or None}.

        A header the program was writing when it was stopped may name no
        type: such an address gives None, and a warning.
        """
        large = spans.scan & (spans.sizeclass == 0)
        ts = {t for t in headers.values() if t} | {t for t in spans.large_type[large].tolist() if t}
        out, bad = {}, 0
        for t in sorted(ts):
            try:
                out[t] = self.type_mask(t)
            except SnapshotError:
                out[t], bad = None, bad + 1
        if bad:
            self.warnings.append(f"{bad} malloc headers or span types name no readable type (objects being "
                                 f"allocated when the program stopped?): those objects get no pointer fields")
        return out

    def heap_bits_base(self, addr: int, npages: int, elemsize: int) -> int:
        """heap_bits_base is where a small scan span's heap bits begin (runtime: spanHeapBitsRange)."""
        size = npages * PAGE
        base = addr + size - size // 64
        if self.green_tea and 16 <= elemsize <= MIN_SIZE_FOR_MALLOC_HEADER:
            base -= INLINE_MARK_BITS
        return base

    def segments(self):
        """segments returns the data and bss Segments with the pointer offsets of their GC masks."""
        md = self.lay.symbols["runtime.firstmoduledata"]
        out = []
        for lo, hi, mask in (("data", "edata", "gcdatamask"), ("bss", "ebss", "gcbssmask")):
            a, e = self.field(md, "runtime.moduledata", lo), self.field(md, "runtime.moduledata", hi)
            bv = md + self.lay.off("runtime.moduledata", mask)
            n, p = int.from_bytes(self.mem.read(bv, 4), "little"), u64(self.mem.read(bv + 8, 8))
            bits = np.unpackbits(np.frombuffer(self.mem.read(p, (n + 7) // 8), np.uint8), bitorder="little")[:n]
            contents = self.mem.read(a, e - a)
            offs = (np.flatnonzero(bits) * 8)
            out.append(Segment(a, contents, offs[offs + 8 <= len(contents)].tolist()))
        return out

    def goroutines(self, thread_sps=()) -> list:
        """goroutines returns each live g: its fields and the stack words from its stack pointer to stack.hi.

        A running goroutine's saved sp is stale: the stack pointer of the
        thread whose rsp lies in its stack is used, else the whole stack.
        """
        lay = self.lay
        p, n = self.slice(lay.symbols["runtime.allgs"])
        gs = np.frombuffer(self.mem.read(p, 8 * n), "<u8").tolist() if n else []
        gl = lay.structs["runtime.g"]
        raw = _read_many(self.mem, gs, gl["size"])
        sched = gl["sched"]
        out = []
        for g in gs:
            b = raw[g]
            status = int.from_bytes(b[gl["atomicstatus"]:gl["atomicstatus"] + 4], "little") & ~G_SCAN
            if status in (G_DEAD, G_DEADEXTRA):
                continue
            lo, hi = u64(b, gl["stack"]), u64(b, gl["stack"] + 8)
            sp = u64(b, sched + lay.off("runtime.gobuf", "sp"))
            if status == G_SYSCALL and u64(b, gl["syscallsp"]):
                sp = u64(b, gl["syscallsp"])
            if status == G_RUNNING:
                sp = next((r for r in thread_sps if lo <= r < hi), lo)
            if not lo <= sp <= hi:
                sp = lo
            if hi - lo > 1 << 30:  # runtime: maxstacksize is 1 GB on 64-bit; anything else is a g being set up
                continue
            sp &= ~7
            out.append({"g": g, "goid": u64(b, gl["goid"]), "status": status, "sp": sp, "lo": lo, "hi": hi,
                        "ctxt": u64(b, sched + lay.off("runtime.gobuf", "ctxt")),
                        "stack": self.mem.read(sp, hi - sp) if hi > sp else b""})
        return out

    def kinds(self, version: str) -> dict:
        """kinds returns the special kinds of the release the target runs (read from runtime.buildVersion).

        The finalizer kind given to the walk (the snapshot header's) wins; a
        release whose table disagrees with it, or none, gets a warning and its
        finalizers only.
        """
        from .goimport import GoRuntime

        v = self.release = GoRuntime.parse(version).version
        kinds = special_kinds(v) if v is not None else {}
        if kinds.get("finalizer") != self.finalizer:
            self._lacking("runtime.AddCleanup cleanups and weak pointer handles (release unknown)",
                          f"runtime.buildVersion {version!r} does not say which specials are cleanups and "
                          f"weak handles: only finalizers (kind {self.finalizer}) were read")
            return {"finalizer": self.finalizer}
        return kinds

    def _lacking(self, roots: str, warning: str) -> None:
        """_lacking records a kind of root this snapshot could not read: in meta.roots_missing, and a warning."""
        self.warnings.append(warning)
        self.roots_missing.append(roots)

    def specials(self, spans, kinds: dict) -> dict:
        """specials returns the specials of the in-use spans that markrootSpans (runtime/mgcmark.go) marks.

        - ``finalizers``: (obj, fn, 0, fint, ot), as a heap dump's finalizer
          records; the root is fn, and the object's own fields (not the object).
        - ``cleanups``: (obj, words): the special's ``fn`` (Go 1.24, 1.25: a
          closure over the cleanup and its argument) or its ``cleanup``'s
          ``call``, ``fn`` and ``arg`` (1.26+: cleanupFnPtrMask marks all
          three); never the object, or the cleanup could never run.
        - ``weak_handles``: (obj, handle): the handle (an atomic.Uintptr the
          weak.Pointer points to, holding obj's address as a number) is the
          root; obj is not kept.

        obj is the span's base plus the special's offset (a tiny block's
        object may be inside the 16-byte block), as the heap dump gives it.
        """
        lay = self.lay.structs
        sl, fl, wl = lay["runtime.special"], lay["runtime.specialfinalizer"], lay.get("runtime.specialWeakHandle")
        cl, fnl = lay.get("runtime.specialCleanup"), lay.get("runtime.cleanupFn")
        cleanup_words = None
        if "cleanup" in kinds:
            if cl and "fn" in cl:
                cleanup_words = [cl["fn"]]
            elif cl and "cleanup" in cl and fnl and {"call", "fn", "arg"} <= fnl.keys():
                cleanup_words = [cl["cleanup"] + fnl[m] for m in ("call", "fn", "arg")]
            else:
                self._lacking("runtime.AddCleanup cleanups (their closures and arguments are roots)",
                              "this release has cleanups, but runtime.specialCleanup (or cleanupFn) is not "
                              "in the snapshot's layout: cleanups are not roots")
        weak = kinds.get("weak_handle") if wl and "handle" in wl else None
        if "weak_handle" in kinds and weak is None:
            self._lacking("weak pointer handles (weak.Make)",
                          "this release has weak handles, but runtime.specialWeakHandle is not in the "
                          "snapshot's layout: weak handles are not roots")
        # The largest special read whole: what the capture recorded for every kind, so the import reads the same.
        size = max(s["size"] for s in (sl, fl, wl, cl) if s)
        width = sl["kind"] - sl["offset"]  # offset: uint16 in Go 1.22, 1.23, uintptr from 1.24
        out = {"finalizers": [], "cleanups": [], "weak_handles": []}
        for i in np.flatnonzero(spans.in_use & (spans.specials != 0)).tolist():
            base, sp = int(spans.addr[i]), int(spans.specials[i])
            while sp:
                b = self.mem.read(sp, size)
                kind, obj = b[sl["kind"]], base + int.from_bytes(b[sl["offset"]:sl["offset"] + width], "little")
                if kind == kinds["finalizer"]:
                    out["finalizers"].append((obj, u64(b, fl["fn"]), 0, u64(b, fl["fint"]), u64(b, fl["ot"])))
                elif kind == kinds.get("cleanup") and cleanup_words:
                    out["cleanups"].append((obj, [u64(b, o) for o in cleanup_words]))
                elif kind == weak:
                    out["weak_handles"].append((obj, u64(b, wl["handle"])))
                sp = u64(b, sl["next"])
        return out

    def finalizer_queue(self) -> list:
        """finalizer_queue returns (obj, fn, 0, fint, ot) of every finalizer queued to run and not yet done.

        These are the ``cnt`` first entries of every block on ``runtime.allfin``,
        as markroot's fixedRootFinalizers scans them (fn and obj, the entry's
        arg, are roots) and the heap dump lists them (iterate_finq): finq
        holds the blocks waiting to run, but the block runfinq is working
        through (its entries counted down as each returns) is off finq and
        still on allfin. In Go 1.24 a queued cleanup is an entry too, with
        only fn set.
        """
        bl, el = self.lay.structs.get("runtime.finBlock"), self.lay.structs.get("runtime.finalizer")
        head = self.lay.symbols.get("runtime.allfin")
        if head is None or not bl or not el or not {"alllink", "cnt", "fin"} <= bl.keys() \
                or not {"fn", "arg", "fint", "ot"} <= el.keys():
            self._lacking("the finalizer queue (runtime.allfin)",
                          "the snapshot's layout has no runtime.allfin, finBlock or finalizer: finalizers "
                          "queued to run are not roots")
            return []
        out, seen = [], set()
        try:
            fb = u64(self.mem.read(head, 8))
            while fb and fb not in seen:
                seen.add(fb)
                b = self.mem.read(fb, bl["fin"])
                cnt = int.from_bytes(b[bl["cnt"]:bl["cnt"] + 4], "little")
                n = min(cnt, (bl["size"] - bl["fin"]) // el["size"])
                fins = self.mem.read(fb + bl["fin"], n * el["size"]) if n else b""
                for k in range(n):
                    e = k * el["size"]
                    out.append((u64(fins, e + el["arg"]), u64(fins, e + el["fn"]), 0, u64(fins, e + el["fint"]),
                                u64(fins, e + el["ot"])))
                fb = u64(b, bl["alllink"])
        except SnapshotError:
            self._lacking("the finalizer queue (runtime.allfin)",
                          "the finalizer blocks (runtime.allfin) were not read by this snapshot: finalizers "
                          "queued to run are not roots")
            return []
        return out

    def cleanup_queue(self) -> list:
        """cleanup_queue returns the pointer words of each cleanup queued to run and not yet started (Go 1.25+).

        These are the ``n`` first entries of every block on ``gcCleanups.all``,
        as markroot's fixedRootCleanups scans them, every word a pointer: a
        ``*funcval`` each in Go 1.25 (a closure over the cleanup and its
        argument), a cleanupFn (call, fn, arg) from 1.26, zeroed as it starts.
        Before Go 1.25 a queued cleanup is an entry of the finalizer queue.
        """
        st, sym = self.lay.structs, self.lay.symbols
        q, up = st.get("runtime.cleanupQueue"), st.get("internal/runtime/atomic.UnsafePointer")
        blk, hdr = st.get("runtime.cleanupBlock"), st.get("runtime.cleanupBlockHeader")
        if "runtime.gcCleanups" not in sym:
            if self.release is not None and self.release >= (1, 25):
                self._lacking("cleanups queued to run (runtime.gcCleanups)",
                              "the snapshot's layout has no runtime.gcCleanups: cleanups queued to run are "
                              "not roots")
            return []
        if not (q and "all" in q and up and "value" in up and blk and {"cleanupBlockHeader", "cleanups"} <= blk.keys()
                and hdr and {"alllink", "n"} <= hdr.keys()):
            self._lacking("cleanups queued to run (runtime.gcCleanups)",
                          "the snapshot's layout lacks runtime.cleanupQueue or cleanupBlock: cleanups queued "
                          "to run are not roots")
            return []
        entry = st["runtime.cleanupFn"]["size"] if "runtime.cleanupFn" in st else 8  # a cleanupFn, or a *funcval
        h = blk["cleanupBlockHeader"]
        out, seen = [], set()
        try:
            cb = u64(self.mem.read(sym["runtime.gcCleanups"] + q["all"] + up["value"], 8))
            while cb and cb not in seen:
                seen.add(cb)
                b = self.mem.read(cb + h, hdr["size"])
                n = min(int.from_bytes(b[hdr["n"]:hdr["n"] + 4], "little"), (blk["size"] - blk["cleanups"]) // entry)
                if n:
                    words = np.frombuffer(self.mem.read(cb + blk["cleanups"], n * entry), "<u8")
                    out.extend(w for w in words.reshape(n, entry // 8).tolist() if any(w))
                cb = u64(b, hdr["alllink"])
        except SnapshotError:
            self._lacking("cleanups queued to run (runtime.gcCleanups)",
                          "the cleanup blocks (runtime.gcCleanups) were not read by this snapshot: cleanups "
                          "queued to run are not roots")
            return []
        return out

    def itabs(self) -> dict:
        """itabs returns {itab: its type} of runtime.itabTable (static itabs are added to it at start-up)."""
        tl = self.lay.structs["runtime.itabTableType"]
        t = u64(self.mem.read(self.lay.symbols["runtime.itabTable"], 8))
        if not t:
            return {}
        size = u64(self.mem.read(t + tl["size"], 8))
        tabs = [x for x in np.frombuffer(self.mem.read(t + tl["entries"], 8 * size), "<u8").tolist() if x]
        off = self.lay.off("internal/abi.ITab", "Type")
        got = _read_many(self.mem, [x + off for x in tabs], 8)
        return {x: u64(got[x + off]) for x in tabs}

    def arenas(self) -> list:
        """arenas returns the base addresses of the heap arenas (mheap_.heapArenas), sorted."""
        p, n = self.slice(self.lay.symbols["runtime.mheap_"] + self.lay.off("runtime.mheap", "heapArenas"))
        idx = np.frombuffer(self.mem.read(p, 8 * n), "<u8").tolist() if n else []
        return sorted((i * HEAP_ARENA_BYTES + ARENA_BASE_OFFSET) & (2 ** 64 - 1) for i in idx)

    def scavenged(self, arenas) -> dict:
        """scavenged returns {chunk base: 512 booleans} of the page allocator's scavenged bits per 4 MiB chunk."""
        pages = self.lay.symbols["runtime.mheap_"] + self.lay.off("runtime.mheap", "pages")
        chunks = pages + self.lay.off("runtime.pageAlloc", "chunks")
        out = {}
        for a in arenas:
            for c in range(a, a + HEAP_ARENA_BYTES, PALLOC_CHUNK_BYTES):
                ci = ((c - ARENA_BASE_OFFSET) & (2 ** 64 - 1)) // PALLOC_CHUNK_BYTES
                l1 = u64(self.mem.read(chunks + 8 * (ci >> PALLOC_L2_BITS), 8))
                if not l1:
                    continue
                d = self.mem.read(l1 + PALLOC_DATA * (ci & ((1 << PALLOC_L2_BITS) - 1)), PALLOC_DATA)
                out[c] = np.unpackbits(np.frombuffer(d[64:], np.uint8), bitorder="little").astype(bool)
        return out

    def walk(self, thread_sps=(), before_heap=None):
        """walk reads everything the import needs; the capture calls it on the live process.

        ``before_heap(arenas)`` runs before the heap is read: the capture reads
        the pagemap there, as reading memory maps the zero page into holes.
        """
        spans = self.spans()
        arenas = self.arenas()
        if before_heap is not None:
            before_heap(arenas)
        runs = self.heap_runs(spans)
        bits = self.alloc_bits(spans)
        at = self.header_addrs(spans, bits)
        headers = HeaderWords(at, self.mem.heap(runs, at))  # reads the heap's spans whole
        types = self.types(spans, headers)
        version = self.build_version()
        return {"spans": spans, "runs": runs, "bits": bits, "headers": headers, "types": types,
                "segments": self.segments(), "goroutines": self.goroutines(thread_sps),
                **self.specials(spans, self.kinds(version)), "queued_finalizers": self.finalizer_queue(),
                "queued_cleanups": self.cleanup_queue(),
                "itabs": self.itabs(), "arenas": arenas, "scavenged": self.scavenged(arenas), "version": version}


# --- stopping the target ----------------------------------------------------------------------------

class _Stopped:
    """_Stopped stops every thread of a process with ptrace while in the with block, and always resumes them."""

    def __init__(self, pid: int):
        self.pid = pid
        self.threads = {}  # tid -> signal to deliver on detach
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        self.libc.ptrace.restype = ctypes.c_long
        self.stopped_at = self.resumed_at = 0.0

    def _ptrace(self, req, tid, addr=0, data=0):
        r = self.libc.ptrace(req, tid, ctypes.c_void_p(addr), ctypes.c_void_p(data))
        if r == -1:
            return ctypes.get_errno()
        return 0

    def __enter__(self):
        self._old = {s: signal.signal(s, _interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.stopped_at = time.perf_counter()
            while True:
                try:
                    tids = {int(t) for t in os.listdir(f"/proc/{self.pid}/task")}
                except OSError:
                    raise SnapshotError(f"pid {self.pid}", "no such process") from None
                new = sorted(tids - self.threads.keys())
                if not new:
                    break
                for tid in new:
                    err = self._ptrace(PTRACE_SEIZE, tid)
                    if err == errno.ESRCH:
                        continue  # the thread exited meanwhile
                    if err:
                        raise SnapshotError(f"pid {self.pid}", f"cannot attach: {os.strerror(err)} "
                                                               f"(ptrace; root or CAP_SYS_PTRACE needed?)")
                    self.threads[tid] = 0
                    self._ptrace(PTRACE_INTERRUPT, tid)
                for tid in new:
                    if tid in self.threads:
                        self._wait(tid)
            if not self.threads:
                raise SnapshotError(f"pid {self.pid}", "no such process")
        except BaseException:
            self._resume()
            raise
        return self

    def _wait(self, tid):
        """_wait waits for tid's ptrace stop; a signal-delivery stop keeps its signal for the detach."""
        while True:
            try:
                _, status = os.waitpid(tid, WALL)
            except ChildProcessError:
                self.threads.pop(tid, None)
                return
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                self.threads.pop(tid, None)
                return
            if os.WIFSTOPPED(status):
                if status >> 16 != PTRACE_EVENT_STOP and os.WSTOPSIG(status) != signal.SIGTRAP:
                    self.threads[tid] = os.WSTOPSIG(status)
                return

    def registers(self) -> dict:
        """registers returns {tid: the 27 general registers} of every stopped thread."""
        out = {}
        for tid in self.threads:
            buf = (ctypes.c_ulonglong * USER_REGS)()
            if self._ptrace(PTRACE_GETREGS, tid, 0, ctypes.addressof(buf)) == 0:
                out[tid] = list(buf)
        return out

    def _resume(self):
        for s in getattr(self, "_old", {}):
            signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C must not cut the detach loop short
        for tid, sig in list(self.threads.items()):
            self._ptrace(PTRACE_DETACH, tid, 0, sig)
        self.threads.clear()
        self.resumed_at = time.perf_counter()
        for s, h in getattr(self, "_old", {}).items():
            signal.signal(s, h)

    def __exit__(self, *exc):
        self._resume()
        return False


class Interrupted(SnapshotError):
    """Interrupted is a snapshot ended by SIGINT or SIGTERM; the exit status is 128 + the signal, as a shell's."""

    def __init__(self, signum):
        super().__init__("snapshot", f"interrupted by {signal.Signals(signum).name}; the target was resumed")
        self.exit_code = 128 + signum


def _interrupted(signum, frame):
    """_interrupted ends a snapshot on SIGINT or SIGTERM; the ``finally`` of _Stopped resumes the target."""
    raise Interrupted(signum)


# --- capture ----------------------------------------------------------------------------------------

def _check_go(pid: int, exe: str):
    """_check_go refuses a target that is not an ELF Go program with symbols."""
    from .gotypes import Binary
    try:
        with open(exe, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise SnapshotError(f"pid {pid}", f"cannot read its executable: {e.strerror}") from None
    if head != b"\x7fELF":
        raise SnapshotError(f"pid {pid}", "its executable is not an ELF file")
    try:
        b = Binary(exe)
    except GctraceError as e:
        raise SnapshotError(f"pid {pid}", f"{exe}: {getattr(e, 'problem', e)}") from None
    if not any(s[2] == "runtime.mheap_" for s in b._syms):
        b.close()
        raise SnapshotError(f"pid {pid}", f"{exe}: not a Go program (no runtime.mheap_)")
    if b.elf["e_type"] != "ET_EXEC" or b.elf["e_machine"] != "EM_X86_64":
        kind = "a position-independent executable" if b.elf["e_type"] == "ET_DYN" else b.elf["e_machine"]
        b.close()
        raise SnapshotError(f"pid {pid}", f"{exe}: {kind}: snapshots read non-PIE linux/amd64 Go programs only "
                                          f"(Go's default with CGO_ENABLED=0)")
    return b


def _pagemap(pid: int, arenas: list) -> dict:
    """_pagemap reads the pagemap entries of every 4 KiB page of the arenas: {arena: uint64 array}."""
    out = {}
    fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    try:
        for a in arenas:
            n = HEAP_ARENA_BYTES // OS_PAGE
            b = os.pread(fd, 8 * n, (a // OS_PAGE) * 8)
            out[a] = np.frombuffer(b, "<u8")
    finally:
        os.close(fd)
    return out


def _smaps(pid: int, arenas: list) -> dict:
    """_smaps sums Rss and LazyFree (KiB) of the process and of its mappings that overlap the arenas."""
    total = arena_rss = arena_lazy = 0
    inside = False
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split(None, 1)[0]
                if "-" in head and not head.endswith(":"):
                    lo, hi = (int(x, 16) for x in head.split("-"))
                    inside = any(lo < a + HEAP_ARENA_BYTES and a < hi for a in arenas)
                elif head == "Rss:":
                    kb = int(line.split()[1])
                    total += kb
                    arena_rss += kb if inside else 0
                elif head == "LazyFree:" and inside:
                    arena_lazy += int(line.split()[1])
    except OSError:
        return {}
    return {"rss_kb": total, "arena_rss_kb": arena_rss, "arena_lazyfree_kb": arena_lazy}


def _madvise(pid: int) -> str:
    """_madvise says how the runtime returns pages: MADV_DONTNEED unless GODEBUG=madvdontneed=0 (Go 1.16+)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return "dontneed"
    for e in env:
        if e.startswith(b"GODEBUG=") and b"madvdontneed=0" in e:
            return "free"
    return "dontneed"


def check_release(built: str | None, what: str):
    """check_release returns the GoRuntime of a binary's runtime.buildVersion, refusing releases snapshots do not know.

    >>> check_release("go1.26.6", "pid 1").version
    (1, 26)
    >>> check_release("go1.21.13", "pid 1")
    Traceback (most recent call last):
    ...
    gctrace.errors.SnapshotError: pid 1: go1.21.13: snapshots know Go 1.22 to 1.27
    """
    from .goimport import GoRuntime

    rt = GoRuntime.parse(built)
    if rt.version is None or not OLDEST <= rt.version <= NEWEST:
        raise SnapshotError(what, f"{built or 'an unknown Go release'}: snapshots know Go "
                                  f"{OLDEST[0]}.{OLDEST[1]} to {NEWEST[0]}.{NEWEST[1]}")
    return rt


def capture(pid: int, spill_dir=None) -> dict:
    """capture stops the process, reads its runtime's structures and page residency, and resumes it.

    Returns the snapshot: ``header`` (a dict, docs/snapshot-format.md),
    ``image`` (an _Image of what was read) and ``spill``: the heap's spans
    stream to that unlinked file in ``spill_dir`` (default: the system's
    temp directory) rather than into this process, and the image reads them
    from it on demand. close_snapshot closes it (the kernel frees it then).
    """
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except FileNotFoundError:
        raise SnapshotError(f"pid {pid}", "no such process") from None
    except PermissionError:
        raise SnapshotError(f"pid {pid}", "permission denied (cannot read /proc/PID/exe: not yours to trace)") from None
    except OSError as e:
        raise SnapshotError(f"pid {pid}", f"cannot inspect: {e.strerror}") from None
    if os.uname().machine != "x86_64":
        raise SnapshotError(f"pid {pid}", f"snapshots are read on linux/amd64 only (this is {os.uname().machine})")
    binary = _check_go(pid, f"/proc/{pid}/exe")
    try:
        built = binary.build_version()
        rt = check_release(built, f"pid {pid}")
        lay = Layout.from_binary(binary, f"pid {pid}")
        build_id = _build_id(binary)
    finally:
        binary.close()
    zero_pfn = _own_zero_pfn()
    where = spill_dir or tempfile.gettempdir()
    try:
        spill = tempfile.TemporaryFile(dir=where, prefix=".gctrace-snapshot-")  # O_TMPFILE: never has a name
    except OSError as e:
        raise SnapshotError(where, f"cannot write the snapshot's spill file: {e.strerror or e}") from None
    live = _Live(pid, spill, where)
    try:
        live.prepare(_heap_estimate(pid, lay))  # before the stop: a disk too small for the heap is refused here
        with _Stopped(pid) as stopped:
            regs = stopped.registers()
            walk = _Walk(live, lay, rt.green_tea, finalizer_kind(rt.version))
            pagemap, smaps = {}, {}

            def residency(arenas):
                pagemap.update(_pagemap(pid, arenas))
                smaps.update(_smaps(pid, arenas))
                live.residency(pagemap, zero_pfn)

            got = walk.walk([r[19] for r in regs.values()], residency)  # user_regs_struct: rsp is the 20th
        pause = stopped.resumed_at - stopped.stopped_at
    except BaseException:
        spill.close()
        raise
    finally:
        live.close()
    header = {
        "format": "gctrace.snapshot", "version": VERSION, "pid": pid, "exe": exe, "build_id": build_id,
        "go_version": got["version"] or built, "arch": "amd64", "layout": {"structs": lay.structs,
                                                                            "symbols": lay.symbols},
        "green_tea": rt.green_tea, "special_finalizer_kind": finalizer_kind(rt.version),
        "pause_ms": round(pause * 1000, 3), "bytes_read": live.bytes_read,
        "bytes_unread": live.bytes_unread,
        "registers": {str(t): r for t, r in sorted(regs.items())},
        "madvise": _madvise(pid), **smaps, "taken_at": time.time(),
        "zero_page_pfn": zero_pfn,
    }
    pages = _page_runs(got, pagemap, zero_pfn)
    header["pages"] = pages
    return {"header": header, "image": live.image, "spill": spill}


def close_snapshot(snap: dict) -> None:
    """close_snapshot closes the spill file a capture's image reads the heap from: the image is no use after."""
    f = snap.pop("spill", None)
    if f is not None:
        f.close()


def _heap_estimate(pid: int, lay: Layout) -> int:
    """_heap_estimate is the bytes of the in-use spans now, read without stopping (racy: only a size hint), +1/8."""
    try:
        walk = _Walk(_Live(pid), lay, False, 0)
        runs = walk.heap_runs(walk.spans())
    except SnapshotError:
        return 0
    n = sum(e - a for a, e in runs)
    return n + n // 8


def _build_id(binary) -> str | None:
    sec = binary.elf.get_section_by_name(".note.go.buildid")
    if sec is None:
        return None
    return sec.data()[16:].rstrip(b"\0").decode("ascii", "replace")


def _own_zero_pfn():
    """_own_zero_pfn maps a page, reads it (which maps the kernel's zero page) and returns the PFN, or None."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    p = libc.mmap(None, OS_PAGE, mmap.PROT_READ, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    if not p or p == ctypes.c_void_p(-1).value:
        return None
    try:
        ctypes.string_at(p, 1)
        with open("/proc/self/pagemap", "rb") as f:
            f.seek(p // OS_PAGE * 8)
            e = int.from_bytes(f.read(8), "little")
        pfn = e & ((1 << 55) - 1)
        return pfn if e >> 63 and pfn else None
    except OSError:
        return None
    finally:
        libc.munmap(p, OS_PAGE)


def _pagemap_bits(e: np.ndarray, zero_pfn) -> tuple:
    """_pagemap_bits returns (resident, swapped) per page of pagemap entries e: present and not mapping the kernel's
    zero page (whose PFN is zero_pfn, or None when unknown), and in swap (Documentation/admin-guide/mm/pagemap.rst)."""
    resident = (e >> np.uint64(63)).astype(bool)
    if zero_pfn:
        resident &= (e & np.uint64((1 << 55) - 1)) != np.uint64(zero_pfn)
    return resident, ((e >> np.uint64(62)) & np.uint64(1)).astype(bool)


def _page_runs(got, pagemap, zero_pfn) -> list:
    """_page_runs gives each 4 KiB page of the arenas its residency and allocator state, as runs."""
    pages = []
    spans = got["spans"]
    for a in got["arenas"]:
        e = pagemap[a]
        resident, swapped = _pagemap_bits(e, zero_pfn)
        n = len(e)
        state = np.full(n, 1, np.int8)  # 0 used, 1 free, 2 released
        for c, bits in got["scavenged"].items():
            if a <= c < a + HEAP_ARENA_BYTES:
                i = (c - a) // OS_PAGE
                state[i:i + 2 * len(bits)] = np.where(np.repeat(bits, PAGE // OS_PAGE), 2, 1)
        inside = (spans.addr >= np.uint64(a)) & (spans.addr < np.uint64(a + HEAP_ARENA_BYTES))
        for sa, npg in zip(spans.addr[inside].tolist(), spans.npages[inside].tolist()):
            i = (sa - a) // OS_PAGE
            state[i:i + npg * (PAGE // OS_PAGE)] = 0
        key = state.astype(np.int16) * 2 + resident
        cut = np.flatnonzero(np.diff(key)) + 1
        starts = np.concatenate(([0], cut)).tolist()
        ends = np.concatenate((cut, [n])).tolist()
        names = ("used", "free", "released")
        for s0, e0 in zip(starts, ends):
            pages.append({"addr": a + s0 * OS_PAGE, "n": e0 - s0, "resident": bool(resident[s0]),
                          "state": names[int(state[s0])], "swapped": int(swapped[s0:e0].sum())})
    return pages


# --- the file ---------------------------------------------------------------------------------------

def write_snapshot(snap: dict, path) -> int:
    """write_snapshot writes a snapshot file (docs/snapshot-format.md), whole or not at all; returns its size.

    It is compressed and written as it goes (the heap's spans read from the
    spill file a piece at a time), so the file is never whole in memory.
    """
    from gctrace import atomicfile

    comp = zlib.compressobj(1)
    size = 0
    with atomicfile.open_output(str(path)) as f:
        def put(data: bytes):
            nonlocal size
            f.write(data)
            size += len(data)

        put(MAGIC + struct.pack("<I", VERSION))
        hdr = orjson.dumps(snap["header"])
        put(comp.compress(struct.pack("<Q", len(hdr)) + hdr))
        for a, b in snap["image"].ranges():
            put(comp.compress(struct.pack("<QQ", a, len(b))))
            for piece in (b.pieces() if isinstance(b, _Spilled) else (b,)):
                put(comp.compress(piece))
        put(comp.compress(struct.pack("<QQ", 0, 0)))
        put(comp.flush())
    return size


def read_snapshot(path) -> dict:
    """read_snapshot reads a snapshot file, refusing anything but this format's version.

    The body is inflated as it is read, the memory records one after the
    other straight into one buffer (the image's ``store``; each range is a
    view of it): the memory it takes is the records', not also the file's
    and the whole inflated body's, and the import types the heap in that
    buffer without copying it (to_heapdump).
    """
    try:
        f = open(path, "rb")
    except OSError as e:
        raise SnapshotError(path, f"cannot read: {e.strerror or e}") from None
    with f:
        try:
            head = f.read(len(MAGIC) + 4)
            if not head.startswith(MAGIC):
                raise SnapshotError(path, f"not a gctrace snapshot (expected the magic {MAGIC!r})")
            if len(head) < len(MAGIC) + 4:
                raise SnapshotError(path, "truncated header")  # (the magic, and less than the version)
            (version,) = struct.unpack_from("<I", head, len(MAGIC))
            if version != VERSION:
                raise SnapshotError(path, f"snapshot version {version} unknown (this gctrace reads version {VERSION})")
            body = _Inflated(f, path, os.fstat(f.fileno()).st_size)
            (hn,) = struct.unpack("<Q", body.take(8))
            try:
                header = orjson.loads(body.take(hn))
            except orjson.JSONDecodeError as e:
                raise SnapshotError(path, f"bad header: {e}") from None
            store, records = bytearray(), []
            while True:
                a, n = struct.unpack("<QQ", body.take(16))
                if a == 0 and n == 0:
                    break
                records.append((a, len(store), n))
                body.take_into(store, n)
            body.end()
        except OSError as e:
            raise SnapshotError(path, f"cannot read: {e.strerror or e}") from None
        except zlib.error as e:
            raise SnapshotError(path, f"bad compressed data: {e}") from None
    if not isinstance(header, dict) or header.get("format") != "gctrace.snapshot":
        raise SnapshotError(path, "the header is not a gctrace.snapshot header")
    return {"header": header, "image": _Image.of_store(store, records)}


class _Inflated:
    """_Inflated is a snapshot's body: its zlib stream inflated as it is read, ``take(n)`` bytes at a time."""

    STEP = 1 << 20  # compressed bytes read at a time

    def __init__(self, f, path, file_size: int):
        self.f, self.path = f, path
        self.z = zlib.decompressobj()
        self.pos = 0  # inflated bytes taken
        self.most = 1032 * file_size + (1 << 20)  # zlib inflates at most ~1032:1: a longer record is corrupt

    def _some(self, most: int) -> bytes:
        """_some inflates up to ``most`` more bytes: b"" at the end of the stream or of the file."""
        while not self.z.eof:
            data = self.z.unconsumed_tail or self.f.read(self.STEP)
            if not data:
                return b""
            out = self.z.decompress(data, most)
            if out:
                return out
        return b""

    def take(self, n: int) -> bytearray:
        """take returns the next n bytes of the body."""
        out = bytearray()
        self.take_into(out, n)
        return out

    def take_into(self, out: bytearray, n: int) -> None:
        """take_into appends the next n bytes of the body to out (a big buffer grows in place: realloc)."""
        if self.pos + n > self.most:
            raise SnapshotError(self.path, f"truncated at byte {self.pos} of the body (a record of {n} bytes)")
        have = 0
        while have < n:
            got = self._some(min(n - have, 16 << 20))
            if not got:
                raise SnapshotError(self.path, f"truncated at byte {self.pos + have} of the body")
            out += got
            have += len(got)
        self.pos += n

    def end(self) -> None:
        """end checks that nothing follows the end record and that the stream is whole."""
        extra = 0
        while got := self._some(16 << 20):
            extra += len(got)
        if extra:
            raise SnapshotError(self.path, f"{extra} bytes after the end record")
        if not self.z.eof:
            raise zlib.error("incomplete or truncated stream")


# --- import -----------------------------------------------------------------------------------------

def to_heapdump(snap: dict, path="snapshot") -> tuple:
    """to_heapdump turns a snapshot into the HeapDump the heap-dump importer reads, and its residency.

    Returns (HeapDump, residency dict in tracer/goheap/gctraceres's shape, facts).
    """
    h = snap["header"]
    lay = Layout(h["layout"]["structs"], h["layout"]["symbols"])
    walk = _Walk(snap["image"], lay, h["green_tea"], h["special_finalizer_kind"])
    regs = h.get("registers", {})
    got = walk.walk([r[19] for r in regs.values()])
    img = snap["image"]

    # objects: per span, arrays of addresses, field counts and field offsets, joined at the end (each list
    # emptied as it is joined: a list and its join are not all in memory at once)
    A, Z, C, F = [], [], [], []  # addresses, (objects, size) per span, fields per object, field offsets
    unbuilt = 0
    spans = got["spans"]
    for i in np.flatnonzero(spans.in_use).tolist():
        idx = walk.allocated(spans, got["bits"], i)
        if not len(idx):
            continue
        sa, z, npages = int(spans.addr[i]), int(spans.elemsize[i]), int(spans.npages[i])
        base = np.uint64(sa) + idx.astype(np.uint64) * np.uint64(z)
        A.append(base)
        Z.append((len(idx), z))
        if not spans.scan[i]:
            C.append(np.zeros(len(idx), np.int64))
        elif z <= MIN_SIZE_FOR_MALLOC_HEADER:  # heap bits at the span's end, elemsize/8 bits an object
            hb = walk.heap_bits_base(sa, npages, z)
            bits = np.unpackbits(np.frombuffer(img.read(hb, npages * PAGE // 64), np.uint8), bitorder="little")
            w = z // 8
            row, col = np.nonzero(bits[idx[:, None] * w + np.arange(w)[None, :]])
            C.append(np.bincount(row, minlength=len(idx)))
            F.append(col.astype(np.int64) * 8)
        else:  # a malloc header's type, or the span's largeType, tiled over the object
            counts = []
            for a in base.tolist():
                if spans.sizeclass[i]:
                    t, start = got["headers"].get(a, 0), 8
                else:
                    t, start = int(spans.large_type[i]), 0
                m = got["types"].get(t) if t else None
                if t and m is None:
                    unbuilt += 1
                if not m or not len(m[1]) or m[0] == 0:
                    counts.append(0)
                    continue
                tsize, offs = m
                n = (z - start + tsize - 1) // tsize
                allo = (start + np.arange(n, dtype=np.int64)[:, None] * tsize + offs[None, :]).ravel()
                allo = allo[allo + 8 <= z]
                counts.append(len(allo))
                F.append(allo)
            C.append(np.array(counts, np.int64))
    if unbuilt:
        walk.warnings.append(f"{unbuilt} objects have a type whose GC mask is unknown (not built yet by the "
                             f"runtime, or unreadable): their pointer fields are not known")
    addr_arr = np.concatenate(A) if A else np.zeros(0, np.uint64)
    A.clear()
    size_arr = np.repeat(np.array([z for _, z in Z], np.uint64), [n for n, _ in Z]) if Z else np.zeros(0, np.uint64)
    fstart = np.zeros(len(addr_arr) + 1, np.int64)
    if C:
        np.cumsum(np.concatenate(C), out=fstart[1:])
    C.clear()
    foffs = np.concatenate(F) if F else np.zeros(0, np.int64)
    F.clear()
    runs = got["runs"]
    run_starts = [r[0] for r in runs]
    run_off = [img.store_offset(a, e - a) for a, e in runs]
    if runs and None not in run_off:  # the heap as read_snapshot inflated it: no copy
        raw = img.store
    else:  # (a capture's or a core file's image: the runs copied into one buffer)
        chunks, run_off, total = [], [], 0
        for a, e in runs:
            chunks.append(img.read(a, e - a))
            run_off.append(total)
            total += e - a
        raw = b"".join(chunks)
    off = addr_arr.astype(np.int64)  # each run's objects (sorted by address) are one slice: shifted in place
    at = np.searchsorted(addr_arr, np.array(run_starts + [e for _, e in runs[-1:]], np.uint64)).tolist()
    for r, (a, o) in enumerate(zip(run_starts, run_off)):
        off[at[r]:at[r + 1]] += o - a
    objects = ObjectArrays(addr=addr_arr, off=off, size=size_arr, field_start=fstart,
                           field_kind=np.full(len(foffs), FIELD_PTR, np.uint8), field_off=foffs)

    # roots: stacks and registers, conservatively
    sorted_addr = addr_arr  # spans are walked by address, slots in order: already sorted

    def hits(words: np.ndarray) -> np.ndarray:
        if not len(sorted_addr):
            return np.zeros(len(words), bool)
        j = np.searchsorted(sorted_addr, words, side="right") - 1
        ok = j >= 0
        jj = np.where(ok, j, 0)
        return ok & (words < sorted_addr[jj] + size_arr[jj])

    frames, goroutines = [], []
    for g in got["goroutines"]:
        goroutines.append({"g": g["g"], "sp": g["sp"], "goid": g["goid"], "gopc": 0, "status": g["status"],
                           "issystem": 0, "isbackground": 0, "waitsince": 0, "waitreason": "",
                           "ctxt": g["ctxt"], "m": 0, "defer": 0, "panic": 0})
        st = g["stack"]
        words = np.frombuffer(st[:len(st) // 8 * 8], "<u8")
        offs = (np.flatnonzero(hits(words)) * 8).tolist()
        frames.append(Frame(g["sp"], 0, 0, st, 0, 0, 0, f"goroutine {g['goid']} stack (conservative)", offs, g["g"]))
    other = []
    for tid, r in sorted(regs.items()):
        words = np.array(r, np.uint64)
        for w in words[hits(words)].tolist():
            other.append((f"thread {tid} registers (conservative)", w))
    # the specials a heap dump does not list, marked as markrootSpans marks them: not the object they are for
    for obj, words in got["cleanups"]:
        other.extend((f"cleanup of {obj:#x}", w) for w in words)
    for obj, handle in got["weak_handles"]:
        other.append((f"weak handle for {obj:#x}", handle))
    for words in got["queued_cleanups"]:  # its object is gone: that is why it is queued
        other.extend(("queued cleanup", w) for w in words)

    segs = got["segments"]
    arenas = got["arenas"]
    hd = HeapDump(path=str(path), raw=raw, objects=objects,
                  params={"bigendian": False, "ptrsize": 8, "arch": h.get("arch", "amd64"),
                          "version": h.get("go_version"), "ncpu": 0,
                          "arena_start": arenas[0] if arenas else 0,
                          "arena_end": arenas[-1] + HEAP_ARENA_BYTES if arenas else 0},
                  data=segs[0], bss=segs[1], frames=frames, goroutines=goroutines,
                  finalizers=got["finalizers"], queued_finalizers=got["queued_finalizers"], other_roots=other,
                  itabs=got["itabs"],
                  counts={"object": len(addr_arr), "goroutine": len(goroutines), "finalizer": len(got["finalizers"]),
                          "queuedfinalizer": len(got["queued_finalizers"]), "span": int(spans.in_use.sum())})
    res = None if h.get("pages") is None else {
        "format": "gctrace.residency", "version": 1, "page_size": OS_PAGE, "madvise": h.get("madvise"),
        "page_state": "snapshot: spans of mheap_.allspans (in use and stacks: used), the page allocator's "
                      "scavenged bits (released), else free",
        "zero_page": ("pagemap PFN equal to the kernel zero page's (read by mapping one in gctrace)"
                      if h.get("zero_page_pfn") else "not recognised"),
        "attempts": 1, "agreed": True, "rss_kb": h.get("rss_kb"), "arena_rss_kb": h.get("arena_rss_kb"),
        "arena_lazyfree_kb": h.get("arena_lazyfree_kb"),
        "pages": [{k: p[k] for k in ("addr", "n", "resident", "state")} for p in h["pages"]],
    }
    facts = {"warnings": walk.warnings, "swapped_pages": sum(p.get("swapped", 0) for p in h.get("pages") or ()),
             "roots_missing": walk.roots_missing}
    return hd, res, facts


def import_snapshot(snap_path, binary_path) -> dict:
    """import_snapshot reads a snapshot with its binary and returns a gctrace dump (goimport's build)."""
    from .gotypes import Binary

    snap = read_snapshot(snap_path)
    if isinstance(binary_path, Binary):
        binary, close = binary_path, False
    else:
        binary, close = Binary(binary_path), True
    try:
        bid = _build_id(binary)
        want = snap["header"].get("build_id")
        if want and bid and bid != want:
            raise SnapshotError(binary.path, f"is not the program of the snapshot (Go build ID {bid}, "
                                             f"the snapshot's {want})")
        return _doc(snap, snap_path, binary)
    finally:
        if close:
            binary.close()


def _doc(snap, snap_path, binary, source="go-snapshot") -> dict:
    from .goimport import _build

    hd, res, facts = to_heapdump(snap, snap_path)
    doc = _build(hd, binary, res, snap_path, binary.path, snap_path)
    h = snap["header"]
    meta = doc["meta"]
    meta["source"] = source
    meta["snapshot" if source == "go-snapshot" else "core"] = meta.pop("heapdump")
    meta.pop("residency", None)
    meta["stacks"] = ("conservatively: every aligned word from a goroutine's stack pointer to stack.hi, and every "
                      "general register of every thread, that points into an allocated object is a root "
                      "(the stack maps are not read)")
    if source == "go-snapshot":
        meta["pid"] = h.get("pid")
        meta["pause_ms"] = h.get("pause_ms")
        meta["bytes_read"] = h.get("bytes_read")
    meta["swapped_pages"] = facts["swapped_pages"]
    meta["warnings"] = list(meta.get("warnings", [])) + facts["warnings"]
    meta["roots_missing"] = facts["roots_missing"]
    return doc


def import_summary(doc: dict) -> dict:
    """import_summary returns the figures worth a line each after a snapshot's import."""
    from .goimport import summary as heapdump_summary

    out = heapdump_summary(doc)
    objects = doc["objects"]  # GoObjects: its nbytes, not a dict made per object to add their sizes
    nbytes = objects.nbytes if hasattr(objects, "nbytes") else sum(o["size"] for o in objects)
    out["objects"] = f"{len(objects)} ({nbytes} B)"
    out["stacks"] = doc["meta"]["stacks"].split(":")[0]
    return out


def summary(snap: dict, size: int) -> dict:
    """summary returns the figures worth a line each after a snapshot."""
    h = snap["header"]
    return {"pid": h["pid"], "go": h["go_version"], "pause": f"{h['pause_ms']:.1f} ms",
            "read": f"{h['bytes_read']} B",
            "not read": f"{h.get('bytes_unread', 0)} B (heap pages that hold only zeros)",
            "snapshot": f"{size} B compressed"}


# --- core files -------------------------------------------------------------------------------------

PRSTATUS_PID, PRSTATUS_REGS = 32, 112  # struct elf_prstatus on x86-64: pr_pid, pr_reg


def read_core(path, binary) -> dict:
    """read_core makes a snapshot of a core file (gcore, or a crash with GOTRACEBACK=crash) and its binary.

    The memory is the PT_LOAD segments (read from the file on demand) and,
    where the core has none, the binary's (read-only text and data, which
    gcore leaves out), the registers each thread's NT_PRSTATUS; the layout comes from the binary's
    DWARF, as at capture time. A core file says nothing of residency: the
    snapshot has no ``pages`` and the import assumes residency.
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        f = open(path, "rb")
    except OSError as e:
        raise SnapshotError(path, f"cannot read: {e.strerror or e}") from None
    try:
        elf = ELFFile(f)
        if elf["e_type"] != "ET_CORE" or elf["e_machine"] != "EM_X86_64":
            raise SnapshotError(path, f"not an x86-64 core file ({elf['e_type']}, {elf['e_machine']})")
        ranges, regs = [], {}
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]:
                ranges.append((seg["p_vaddr"], _Spilled(f, seg["p_offset"], seg["p_filesz"])))
            elif seg["p_type"] == "PT_NOTE":
                for note in seg.iter_notes():
                    if note["n_type"] == "NT_PRSTATUS" and isinstance(note["n_desc"], bytes):
                        d = note["n_desc"]
                        tid = int.from_bytes(d[PRSTATUS_PID:PRSTATUS_PID + 4], "little")
                        regs[str(tid)] = list(struct.unpack_from(f"<{USER_REGS}Q", d, PRSTATUS_REGS))
    except ELFError as e:
        raise SnapshotError(path, f"not a readable core file: {e}") from None
    # A core leaves out the read-only mappings of files (text, rodata: types, GC masks, the build version):
    # they come from the binary's own segments, wherever the core has nothing.
    for seg in binary.elf.iter_segments():
        if seg["p_type"] != "PT_LOAD" or not seg["p_filesz"]:
            continue
        a, n = seg["p_vaddr"], seg["p_filesz"]
        if not any(r < a + n and a < r + len(c) for r, c in ranges):
            ranges.append((a, _Spilled(binary._f, seg["p_offset"], n)))
    built = binary.build_version()
    rt = check_release(built, binary.path)
    lay = Layout.from_binary(binary, binary.path)
    img = _Image(ranges)
    walk = _Walk(img, lay, rt.green_tea, finalizer_kind(rt.version))
    version = walk.build_version()
    if version and built and version != built:
        raise SnapshotError(path, f"is a core of {version}, but {binary.path} was built with {built}")
    header = {"format": "gctrace.snapshot", "version": VERSION, "build_id": _build_id(binary),
              "go_version": version or built, "arch": "amd64",
              "layout": {"structs": lay.structs, "symbols": lay.symbols}, "green_tea": rt.green_tea,
              "special_finalizer_kind": finalizer_kind(rt.version), "registers": regs, "pages": None}
    return {"header": header, "image": img, "file": f}


def import_core(core_path, binary_path) -> dict:
    """import_core reads a core file with its binary and returns a gctrace dump (residency assumed)."""
    from .gotypes import Binary

    binary = binary_path if isinstance(binary_path, Binary) else Binary(binary_path)
    try:
        snap = read_core(core_path, binary)
        try:
            return _doc(snap, core_path, binary, "go-core")
        finally:
            snap["file"].close()
    finally:
        if binary is not binary_path:
            binary.close()
