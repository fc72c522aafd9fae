"""records holds the spec's rules for one record at a time (the reference every faster path must agree with).

Part of the loader (see the package docstring, gctrace.analysis.load)."""

from __future__ import annotations

from array import array
from itertools import chain

import numpy as np
import orjson

from gctrace.errors import DumpError

from ..model import SLOTS_PER_BUCKET, EVENT_OPS, PAGE_STATES, ROOT_KINDS, SWISS_GROUP_SLOTS, SWISS_MAX_LOAD, MapHeader, SwissMap
from .schema import END_KEYS, EVENT_KEYS, FORMAT, INT_LIMIT, MAP_IMPLS, MAP_OPTIONAL, MAP_REQUIRED, SWISS_REQUIRED, SWISS_TABLE_KEYS, TOP_KEYS, VERSION


def _all_ints(values) -> bool:
    """_all_ints reports whether every value is a Python int (bool excluded).

    >>> _all_ints([1, 2]), _all_ints([1, True]), _all_ints([])
    (True, False, True)
    """
    return set(map(type, values)) <= {int}


def _all_equal(values, value) -> bool:
    """_all_equal reports whether every value is ``value`` (same type too: 0 is not False).

    >>> _all_equal((0, 0), 0), _all_equal((0, False), 0), _all_equal((), 0)
    (True, False, True)
    """
    return values.count(value) == len(values) and _all_of(values, type(value))


def _all_of(values, typ) -> bool:
    return set(map(type, values)) <= {typ}


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


class RecordRules:
    """RecordRules checks one record at a time, as the spec words its rules, and adds it to the builder."""

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
        site = self.int_(rec, "site", label) if "site" in rec else 0
        if site:
            self.site_seen = True
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
        self.site.append(site)
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
