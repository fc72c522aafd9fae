"""gotypes reads what a Go binary says about its types and globals: ELF symbols and DWARF.

A heap dump carries no types, only contents and pointer offsets. The binary
that wrote it does: its symbol table names every global (``main.cache`` at
its address) and its DWARF (Go 1.19 writes it zlib-compressed, which
pyelftools reads) describes every global's type, every struct's layout and,
through Go's own attributes, what each type is: ``DW_AT_go_kind`` (0x2900,
reflect.Kind), ``DW_AT_go_key``/``DW_AT_go_elem`` (0x2901/0x2902) for maps,
``DW_AT_go_runtime_type`` (0x2904, the address of the runtime._type). A map
type is a typedef ``map[K]V`` of ``*hash<K,V>`` (runtime.hmap's layout), and
its bucket type is the struct ``bucket<K,V>`` (tophash, keys, values,
overflow).

``Binary`` loads this once (one pass over the DWARF, ~3 s for a small Go
program, kept by build ID in the DWARF cache, tracer/goheap/dwarfcache.py, so the
next import of the same binary skips it) and answers: which symbol holds an address, the typed globals, and
``layout(type)``: where the pointers of a value of that type are, and what
each points to, so the importer can follow pointers from typed globals as
viewcore does.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass

from gctrace.errors import HeapDumpError
from gctrace.progress import bar

from . import dwarfcache

DW_AT_go_kind = 0x2900
DW_AT_go_key = 0x2901
DW_AT_go_elem = 0x2902
DW_AT_go_runtime_type = 0x2904

# reflect.Kind values used by DW_AT_go_kind
KIND_ARRAY, KIND_CHAN, KIND_FUNC, KIND_INTERFACE, KIND_MAP = 17, 18, 19, 20, 21
KIND_PTR, KIND_SLICE, KIND_STRING, KIND_STRUCT, KIND_UNSAFEPTR = 22, 23, 24, 25, 26

DW_OP_addr = 0x03


@dataclass(frozen=True)
class Global:
    """Global is a package-level variable: its name, address, size and DWARF type (a DIE offset)."""

    name: str
    addr: int
    size: int
    type: int | None


@dataclass(frozen=True)
class Ptr:
    """Ptr is a pointer field at ``off`` of a value; ``what`` says how to read its target.

    ``what`` is ``"ptr"`` (target typed ``elem``, None when unknown), ``"map"``
    (elem is the map typedef), ``"slice"`` (a slice's array: elem is the
    element type and ``cap_off`` the offset of the slice's cap), ``"iface"`` /
    ``"eface"`` (the data word of an interface whose tab/type word is at
    ``off - ptr_size``).
    """

    off: int
    what: str
    elem: int | None = None
    cap_off: int = 0


class Binary:
    """Binary is the symbol table and the DWARF of one Go executable."""

    def __init__(self, path):
        try:
            from elftools.common.exceptions import ELFError
            from elftools.elf.elffile import ELFFile
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise HeapDumpError(path, f"needs pyelftools ({e}); pip install pyelftools") from None
        self.path = str(path)
        try:
            self._f = open(path, "rb")
        except OSError as e:
            raise HeapDumpError(path, f"cannot read: {e.strerror or e}") from None
        try:
            self.elf = ELFFile(self._f)
            cached = self._cached_index()
            if not cached:
                before = set(vars(self))
                self._load_symbols()
            if not self.elf.has_dwarf_info():
                raise HeapDumpError(path, "no DWARF in the binary (built with -ldflags=-w or stripped?)")
            self.dwarf = self.elf.get_dwarf_info()
            if not cached:
                with bar(1, "reading DWARF", None, unit="step") as pb:
                    self._index_dwarf()
                    pb.update()
                dwarfcache.store(self.elf, os.fstat(self._f.fileno()).st_size,
                                 {k: getattr(self, k) for k in set(vars(self)) - before - {"dwarf"}})
        except (ELFError, ValueError, KeyError, IndexError, AssertionError) as e:
            raise HeapDumpError(path, f"not a readable ELF/DWARF file: {e}") from None
        self._dies = {}
        self._layouts = {}
        self._hasptr = {}

    def _cached_index(self) -> bool:
        """_cached_index sets what _load_symbols and _index_dwarf derive from the DWARF cache; False on a miss."""
        attrs = dwarfcache.load(self.path, self.elf, os.fstat(self._f.fileno()).st_size)
        if attrs is None:
            return False
        for k, v in attrs.items():
            setattr(self, k, v)
        return True

    def _load_symbols(self):
        symtab = self.elf.get_section_by_name(".symtab")
        if symtab is None:
            raise HeapDumpError(self.path, "no symbol table (stripped binary?)")
        syms = []
        for s in symtab.iter_symbols():
            if s["st_info"]["type"] == "STT_OBJECT" and s["st_value"]:
                syms.append((s["st_value"], s["st_size"], s.name))
        syms.sort()
        self._sym_addr = [a for a, _, _ in syms]
        self._syms = syms

    def symbol_at(self, addr: int):
        """symbol_at returns (name, offset) of the data symbol containing addr, or None."""
        i = bisect.bisect_right(self._sym_addr, addr) - 1
        if i < 0:
            return None
        a, size, name = self._syms[i]
        if addr < a + max(size, 1):
            return name, addr - a
        return None

    def _index_dwarf(self):
        """_index_dwarf walks the DWARF once: globals with addresses, structs and typedefs by name."""
        self.globals = []
        self.struct_by_name = {}
        self.type_by_runtime = {}
        for cu in self.dwarf.iter_CUs():
            for die in cu.iter_DIEs():
                tag = die.tag
                if tag == "DW_TAG_variable":
                    loc = die.attributes.get("DW_AT_location")
                    name = die.attributes.get("DW_AT_name")
                    if loc is None or name is None or not isinstance(loc.value, list) or not loc.value \
                            or loc.value[0] != DW_OP_addr:
                        continue
                    addr = int.from_bytes(bytes(loc.value[1:9]), "little")
                    self.globals.append((name.value.decode(), addr, self._ref(die)))
                elif tag in ("DW_TAG_structure_type", "DW_TAG_typedef", "DW_TAG_pointer_type",
                             "DW_TAG_base_type", "DW_TAG_array_type", "DW_TAG_subroutine_type"):
                    rt = die.attributes.get(DW_AT_go_runtime_type)
                    if rt is not None and rt.value:
                        self.type_by_runtime.setdefault(rt.value, die.offset)
                    if tag == "DW_TAG_structure_type":
                        name = die.attributes.get("DW_AT_name")
                        if name is not None:
                            self.struct_by_name.setdefault(name.value.decode(), die.offset)

    def die(self, off: int):
        """die returns the DIE at a section offset (cached)."""
        d = self._dies.get(off)
        if d is None:
            d = self.dwarf.get_DIE_from_refaddr(off)
            self._dies[off] = d
        return d

    def name(self, off: int | None) -> str:
        """name returns the Go name of a type DIE ("unsafe.Pointer" when untyped)."""
        if off is None:
            return "unsafe.Pointer"
        a = self.die(off).attributes.get("DW_AT_name")
        return a.value.decode() if a else "?"

    def size(self, off: int) -> int:
        """size returns the byte size of a type DIE."""
        d = self.resolve(off)
        a = d.attributes.get("DW_AT_byte_size")
        if a is not None:
            return a.value
        if d.tag in ("DW_TAG_pointer_type", "DW_TAG_subroutine_type", "DW_TAG_typedef"):
            return 8
        if d.tag == "DW_TAG_array_type":
            return self.size(self._ref(d)) * self._count(d)
        return 0

    def kind(self, off: int) -> int:
        """kind returns DW_AT_go_kind of a type DIE, 0 when absent."""
        a = self.die(off).attributes.get(DW_AT_go_kind)
        return a.value if a else 0

    @staticmethod
    def _ref(die, attr="DW_AT_type"):
        """_ref returns the section offset of the DIE an attribute refers to, or None."""
        a = die.attributes.get(attr)
        if a is None:
            return None
        local = a.form in ("DW_FORM_ref1", "DW_FORM_ref2", "DW_FORM_ref4", "DW_FORM_ref8", "DW_FORM_ref_udata")
        return a.value + (die.cu.cu_offset if local else 0)

    def _goref(self, die, attr):
        a = die.attributes.get(attr)
        return None if a is None else a.value  # Go writes these as section offsets

    def _count(self, die) -> int:
        for c in die.iter_children():
            if c.tag == "DW_TAG_subrange_type":
                a = c.attributes.get("DW_AT_count") or c.attributes.get("DW_AT_upper_bound")
                if a is None:
                    return 0
                return a.value + (1 if a.name == "DW_AT_upper_bound" else 0)
        return 0

    def resolve(self, off: int):
        """resolve returns the DIE behind typedefs, except a map's typedef (which says it is a map)."""
        d = self.die(off)
        while d.tag in ("DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type"):
            kind = d.attributes.get(DW_AT_go_kind)
            if d.tag == "DW_TAG_typedef" and kind is not None and kind.value == KIND_MAP:
                break
            nxt = self._ref(d)
            if nxt is None:
                break
            d = self.die(nxt)
        return d

    def map_types(self, off: int):
        """map_types returns (key DIE, elem DIE, bucket struct DIE or None) of a map typedef."""
        d = self.die(off)
        k, v = self._goref(d, DW_AT_go_key), self._goref(d, DW_AT_go_elem)
        bucket = self.struct_by_name.get(f"bucket<{self.name(k)},{self.name(v)}>")
        return k, v, bucket

    def map_layout(self, off: int) -> str:
        """map_layout says how the map typedef at off is stored: "hmap", "swiss" or "unknown".

        Go names the classic map's bucket struct ``bucket<K,V>`` (Go 1.19 to
        1.23, and 1.24/1.25 built with GOEXPERIMENT=noswissmap) and the Swiss
        map's header struct ``map<K,V>`` (Go 1.24 and later).
        """
        d = self.die(off)
        kv = f"<{self.name(self._goref(d, DW_AT_go_key))},{self.name(self._goref(d, DW_AT_go_elem))}>"
        if "map" + kv in self.struct_by_name:
            return "swiss"
        if "bucket" + kv in self.struct_by_name:
            return "hmap"
        return "unknown"

    def has_pointers(self, off: int | None) -> bool:
        """has_pointers reports whether a value of the type holds any pointer."""
        if off is None:
            return True
        if off in self._hasptr:
            return self._hasptr[off]
        self._hasptr[off] = False  # recursion guard (a struct cannot contain itself by value)
        d = self.resolve(off)
        if d.tag == "DW_TAG_typedef" or d.tag in ("DW_TAG_pointer_type", "DW_TAG_subroutine_type"):
            r = True
        elif d.tag == "DW_TAG_structure_type":
            r = any(self.has_pointers(self._ref(c)) for c in d.iter_children() if c.tag == "DW_TAG_member")
        elif d.tag == "DW_TAG_array_type":
            r = self._count(d) > 0 and self.has_pointers(self._ref(d))
        else:
            r = False
        self._hasptr[off] = r
        return r

    def layout(self, off: int | None) -> tuple:
        """layout returns the Ptr fields of a value of type ``off``, by offset."""
        if off is None:
            return ()
        got = self._layouts.get(off)
        if got is None:
            self._layouts[off] = ()  # recursion guard
            got = tuple(self._layout(off))
            self._layouts[off] = got
        return got

    def _layout(self, off: int):
        d = self.resolve(off)
        kind = d.attributes.get(DW_AT_go_kind)
        kind = kind.value if kind else 0
        if d.tag == "DW_TAG_typedef":  # a map
            return [Ptr(0, "map", d.offset)]
        if d.tag == "DW_TAG_pointer_type":
            return [Ptr(0, "ptr", self._ref(d))]
        if d.tag == "DW_TAG_subroutine_type":
            return [Ptr(0, "ptr", None)]
        if d.tag == "DW_TAG_array_type":
            elem = self._ref(d)
            if elem is None or not self.has_pointers(elem):
                return []
            es, inner = self.size(elem), self.layout(elem)
            return [Ptr(i * es + p.off, p.what, p.elem, p.cap_off + i * es if p.what == "slice" else 0)
                    for i in range(self._count(d)) for p in inner]
        if d.tag != "DW_TAG_structure_type":
            return []
        members = [(c.attributes["DW_AT_data_member_location"].value, self._ref(c),
                    c.attributes["DW_AT_name"].value.decode() if "DW_AT_name" in c.attributes else "")
                   for c in d.iter_children() if c.tag == "DW_TAG_member"
                   and isinstance(c.attributes.get("DW_AT_data_member_location", None) and
                                  c.attributes["DW_AT_data_member_location"].value, int)]
        if kind == KIND_SLICE:
            arr = next((t for o, t, n in members if n == "array"), None)
            capo = next((o for o, t, n in members if n == "cap"), 16)
            elem = self._ref(self.die(arr)) if arr is not None else None
            return [Ptr(0, "slice", elem, capo)]
        if kind == KIND_STRING:
            return [Ptr(0, "ptr", None)]
        if kind == KIND_INTERFACE:
            eface = any(n == "_type" for _, _, n in members)
            return [Ptr(8, "eface" if eface else "iface", None)]
        out = []
        for moff, mtype, _ in members:
            for p in self.layout(mtype):
                out.append(Ptr(moff + p.off, p.what, p.elem, moff + p.cap_off if p.what == "slice" else 0))
        return out

    def typed_globals(self):
        """typed_globals returns the DWARF-described globals with pointers, by address."""
        out = []
        for name, addr, t in self.globals:
            if t is not None and self.has_pointers(t):
                out.append(Global(name, addr, self.size(t), t))
        out.sort(key=lambda g: g.addr)
        return out

    def members(self, off: int) -> dict:
        """members returns {name: (offset, type DIE offset, byte size)} of a struct DIE's members."""
        out = {}
        for c in self.resolve(off).iter_children():
            if c.tag != "DW_TAG_member" or "DW_AT_name" not in c.attributes:
                continue
            loc = c.attributes.get("DW_AT_data_member_location")
            t = self._ref(c)
            out[c.attributes["DW_AT_name"].value.decode()] = (loc.value if loc else 0, t,
                                                             self.size(t) if t is not None else 0)
        return out

    def elem(self, off: int):
        """elem returns the element type DIE of an array or pointer type DIE (behind typedefs)."""
        return self._ref(self.resolve(off))

    def struct_layout(self, name: str):
        """struct_layout returns {member: offset} and the size of a named struct, or None."""
        off = self.struct_by_name.get(name)
        if off is None:
            return None
        d = self.die(off)
        return ({c.attributes["DW_AT_name"].value.decode(): c.attributes["DW_AT_data_member_location"].value
                 for c in d.iter_children() if c.tag == "DW_TAG_member"}, d.attributes["DW_AT_byte_size"].value)

    def build_version(self) -> str | None:
        """build_version returns runtime.buildVersion, the Go release the binary was built with, or None."""
        sym = next((s for s in self._syms if s[2] == "runtime.buildVersion"), None)
        if sym is None:
            return None
        hdr = self._read(sym[0], 16)
        if hdr is None:
            return None
        ptr, n = int.from_bytes(hdr[:8], "little"), int.from_bytes(hdr[8:], "little")
        text = self._read(ptr, n) if 0 < n < 256 else None
        return text.decode("utf-8", "replace") if text is not None else None

    def _read(self, addr: int, n: int):
        """_read returns n bytes at a virtual address from the section holding it, or None (bss, unmapped)."""
        for sec in self.elf.iter_sections():
            a, size = sec["sh_addr"], sec["sh_size"]
            if a and a <= addr and addr + n <= a + size and sec["sh_type"] != "SHT_NOBITS":
                return sec.data()[addr - a:addr - a + n]
        return None

    def close(self):
        self._f.close()
