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
