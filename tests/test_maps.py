"""The map audit follows overflow chains, into array tails too, and refuses broken ones."""

import pytest

from dumps import BASE, dump_doc
from gctrace.analysis.analyze import analyze
from gctrace.analysis.load import load_dump
from gctrace.errors import DumpError

BS = 32  # a small bucket: overflow pointer at +24


def map_dump(B, extra_buckets, chain_ptrs, slots=None, count=0, extra_objects=()):
    """map_dump builds an hmap at BASE and a bucket array of 2^B + extra buckets at BASE+0x100."""
    arr = BASE + 0x100
    nb = (1 << B) + extra_buckets
    arr_obj = {"addr": arr, "size": nb * BS, "kind": "buckets", "ptrs": chain_ptrs}
    if slots is not None:
        arr_obj["slots"] = slots
    objs = [{"addr": BASE, "size": 48, "kind": "hmap", "ptrs": [[16, arr]]}, arr_obj, *extra_objects]
    return dump_doc(objs, [{"name": "m", "kind": "global", "target": BASE}],
                    maps=[{"hmap": BASE, "B": B, "count": count, "buckets": arr, "oldbuckets": 0,
                           "nevacuate": 0, "bucketsize": BS}])


def test_chain_through_the_preallocated_tail_then_an_overflow_object(write_dump):
    arr = BASE + 0x100
    ovf = BASE + 0x800
    # bucket 1 -> tail bucket 2 (index 2 of a B=1 array) -> overflow object
    d = map_dump(1, 1, [[1 * BS + 24, arr + 2 * BS], [2 * BS + 24, ovf]], slots=[0, 1, 0], count=1,
                 extra_objects=[{"addr": ovf, "size": BS, "kind": "overflow", "slots": [0]}])
    (m,) = analyze(load_dump(write_dump(d))).maps
    assert (m.max_chain, m.overflow_count, m.overflow_bytes) == (2, 1, BS)
    # empty: primary 0, tail bucket 2, the overflow object = 3 buckets
    assert m.empty_bucket_bytes == 3 * BS
    assert m.occupied_buckets == 1 and m.primary_buckets == 2


def test_a_looping_chain_is_refused(write_dump):
    arr = BASE + 0x100
    d = map_dump(0, 1, [[24, arr + BS], [BS + 24, arr + BS]])
    with pytest.raises(DumpError, match="loops"):
        analyze(load_dump(write_dump(d)))


def test_an_overflow_pointer_to_half_a_bucket_is_refused(write_dump):
    arr = BASE + 0x100
    d = map_dump(0, 0, [[24, arr + 16]])
    with pytest.raises(DumpError, match="does not point at a whole bucket"):
        analyze(load_dump(write_dump(d)))


def test_emptied_map_is_diagnosed_as_never_shrinking(write_dump):
    d = map_dump(4, 0, [], slots=[0] * 16)
    a = analyze(load_dump(write_dump(d)))
    codes = [f.code for f in a.map_findings[BASE]]
    assert codes == ["never_shrinks"]
    assert a.map_findings[BASE][0].facts == {"occupied": 0, "buckets": 16, "bytes": 16 * BS,
                                             "empty_bytes": 16 * BS, "count": 0}


def test_without_slots_empty_bytes_are_unknown(write_dump):
    (m,) = analyze(load_dump(write_dump(map_dump(1, 0, [])))).maps
    assert m.empty_bucket_bytes is None and m.occupied_buckets is None


# -- Swiss-table maps ----------------------------------------------------------

SLOT = 16  # map[int64]int64: group_size 8 + 8 * 16


def ctrl_of(capacity, used, deleted):
    """ctrl_of spreads used then deleted slots over a table's groups, 8 control bytes a group."""
    marks = ["f"] * used + ["d"] * deleted + ["e"] * (capacity - used - deleted)
    groups = [marks[i:i + 8] for i in range(0, capacity, 8)]
    return [[g.count("f"), g.count("d"), g.count("e")] for g in groups]


def swiss_dump(tables, clear_seq=0, rooted=True):
    """swiss_dump builds a Swiss map at BASE with one table per (capacity, used, deleted), all consistent."""
    n = len(tables)
    gd = (n - 1).bit_length()
    assert 1 << gd == n, "one table per directory entry"
    d, t0, g0 = BASE + 0x40, BASE + 0x1000, BASE + 0x10000
    objs = [{"addr": BASE, "size": 48, "kind": "swiss_map", "ptrs": [[16, d]]},
            {"addr": d, "size": 8 * n, "kind": "swiss_directory", "ptrs": [[8 * k, t0 + 32 * k] for k in range(n)]}]
    recs = []
    for k, (cap, used, deleted) in enumerate(tables):
        t, g = t0 + 32 * k, g0 + 0x10000 * k
        objs += [{"addr": t, "size": 32, "kind": "swiss_table", "ptrs": [[16, g]]},
                 {"addr": g, "size": cap // 8 * (8 + 8 * SLOT), "kind": "swiss_groups"}]
        recs.append({"addr": t, "capacity": cap, "used": used, "growth_left": cap * 7 // 8 - used - deleted,
                     "local_depth": gd, "index": k, "groups": g, "groups_len": cap // 8,
                     "ctrl": ctrl_of(cap, used, deleted)})
    objs.sort(key=lambda o: o["addr"])
    return dump_doc(objs, [{"name": "m", "kind": "global", "target": BASE}] if rooted else [],
                    maps=[{"hmap": BASE, "impl": "swiss", "count": sum(t[1] for t in tables), "dir_ptr": d,
                           "dir_len": n, "global_depth": gd, "clear_seq": clear_seq, "slot_size": SLOT,
                           "group_size": 8 + 8 * SLOT, "tables": recs}])


def swiss_codes(write_dump, tables, **kw):
    a = analyze(load_dump(write_dump(swiss_dump(tables, **kw))))
    return [f.code for f in a.map_findings[BASE]]


@pytest.mark.parametrize("tables", [
    [(1024, 896 // 2, 0), (1024, 896 // 2, 0)],      # right after a split: 7/16 of each table
    [(1024, 500, 0), (1024, 449, 0)],                # 49% and 44%, a split's luck
    [(1024, 449, 0)],                                # right after doubling 512 -> 1024 slots at 449 entries
    [(1024, 896, 0)],                                # full to 7/8
    [(64, 8, 0)],                                    # exactly 1/8: the line, not past it
    [(32, 3, 0)],                                    # a tiny table holding a few: not worth saying
    [(64, 50, 6)],                                   # 6 tombstones < 10% of 64
])
def test_swiss_maps_filled_normally_have_no_finding(write_dump, tables):
    assert swiss_codes(write_dump, tables) == []


def test_swiss_capacity_far_above_the_entries_is_kept_capacity(write_dump):
    assert swiss_codes(write_dump, [(64, 7, 0)]) == ["tables_kept"]          # 7 * 8 < 64
    assert swiss_codes(write_dump, [(32, 0, 0)]) == ["tables_kept"]          # tiny, but empty
    assert swiss_codes(write_dump, [(64, 7, 0)], clear_seq=2) == ["cleared_tables_kept"]


def test_swiss_tombstones_from_a_tenth_of_the_capacity(write_dump):
    assert swiss_codes(write_dump, [(64, 49, 7)]) == ["tombstones"]         # 70 >= 64
    a = analyze(load_dump(write_dump(swiss_dump([(64, 0, 40), (64, 0, 0)]))))
    kept, tomb = a.map_findings[BASE]
    assert kept.code == "tables_kept" and kept.facts["tables"] == 2 and kept.facts["capacity"] == 128
    assert tomb.facts == {"count": 40, "bytes": 40 * SLOT, "capacity": 128,
                          "growth_left": (56 - 40) + 56,                  # 7/8 of 64 = 56 each
                          "growth_room_lost": 40}


def test_a_cleared_then_refilled_swiss_map_is_not_flagged(write_dump):
    # clear_seq says clear ran once; the map has filled up again since: nothing is held for nothing
    assert swiss_codes(write_dump, [(1024, 600, 0)], clear_seq=1) == []


def test_an_unreachable_swiss_map_has_only_that_finding(write_dump):
    a = analyze(load_dump(write_dump(swiss_dump([(64, 0, 40)], rooted=False))))
    (f,) = a.map_findings[BASE]
    assert f.code == "unreachable_map" and f.facts == {"bytes": 8 + 32 + 8 * 136, "impl": "swiss"}


def test_a_swiss_map_loads_the_same_from_json_lines(tmp_path):
    import json

    doc = swiss_dump([(64, 7, 3), (64, 0, 0)])
    p1, p2 = tmp_path / "a.json", tmp_path / "a.jsonl"
    p1.write_text(json.dumps(doc))
    lines = [json.dumps({k: doc[k] for k in ("format", "version", "meta")})]
    for section, one in (("maps", "map"), ("objects", "object"), ("roots", "root")):
        lines += [json.dumps({one: r}) for r in doc[section]]
    p2.write_text("\n".join(lines) + "\n")
    (m1,), (m2,) = load_dump(p1).maps, load_dump(p2).maps
    assert m1 == m2 and m1.ctrl.shape == (16, 3) and m1.slot_counts() == (7, 3, 118)


def test_a_swiss_map_of_empty_slots_loads(write_dump):
    # map[struct{}]struct{}: slot_size 0, a group is its 8 control bytes
    d = swiss_dump([(16, 1, 0)])
    m = d["maps"][0]
    m["slot_size"], m["group_size"] = 0, 8
    (a,) = analyze(load_dump(write_dump(d))).maps
    assert (a.capacity, a.empty_slots, a.empty_slot_bytes) == (16, 15, 0)
