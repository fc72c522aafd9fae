"""batches holds the vectorised rules: many records at once, the same verdicts as records' rules.

Part of the loader (see the package docstring, gctrace.analysis.load)."""

from __future__ import annotations

from itertools import chain
from operator import itemgetter

import numpy as np

from .. import fastparse
from ..model import SLOTS_PER_BUCKET, EVENT_OPS
from .records import _all_equal, _all_ints, _all_of
from .schema import INT_LIMIT, OBJECT_NAMES, _EVENT_COLUMNS, _INT_MAX, _NO_PTRS, _OP_CODE, object_chunk


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


class BatchRules:
    """BatchRules adds many records at once, vectorised: the same rules as RecordRules, or False to hand them back."""

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
        site = np.broadcast_to(np.int64(0), (n,))  # no site: a view of one zero, no memory per object
        if extra:
            if not (_all_of(types, str) and _all_ints(sites) and _all_ints(owners)):
                return False
            if min(sites) < 0 or max(sites) >= INT_LIMIT or min(owners) < 0 or max(owners) >= INT_LIMIT:
                return False
            owner = np.array(owners, np.int64)
            self.owner_seen = self.owner_seen or bool(owner.any())
            site = np.array(sites, np.int64)
            self.site_seen = self.site_seen or bool(site.any())
            tcode = np.fromiter(map(_interner(self.types, types).__getitem__, types), np.int32, n)
        kcode = np.fromiter(map(_interner(self.kinds, kinds).__getitem__, kinds), np.int16, n)
        self._flush_objects()
        self.obj_chunks.append(object_chunk(addr=a, size=sz, kind=kcode, type=tcode, nptr=counts, ptr_off=off,
                                            ptr_target=tgt, nslot=nslot, slots=slots, has_slots=has, owner=owner,
                                            site=site))
        return True

    def add_chunk(self, chunk):
        """add_chunk adds a run of objects or events parsed by the C parser (already checked there)."""
        self.check_open()
        if type(chunk) is fastparse.ObjectChunk:
            kind = _recode(chunk.kind, chunk.strings, self.kinds, "other", np.int16)
            typ = _recode(chunk.type, chunk.strings, self.types, "", np.int32)
            self.owner_seen = self.owner_seen or bool(chunk.owner.any())
            has_site = bool(chunk.site.any())
            self.site_seen = self.site_seen or has_site
            site = chunk.site if has_site else np.broadcast_to(np.int64(0), (len(chunk.site),))
            self._flush_objects()
            self.obj_chunks.append(object_chunk(**{**{n: getattr(chunk, n) for n in OBJECT_NAMES},
                                                   "kind": kind, "type": typ, "site": site}))
        else:
            text = _recode(chunk.text, chunk.strings, self.ev_strings, None, np.int32)
            self._flush_events()
            self.ev_chunks.append((chunk.seq, chunk.op, chunk.a, chunk.b, chunk.old, chunk.new, text, chunk.same))

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
