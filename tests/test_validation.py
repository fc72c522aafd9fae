"""A Heap that loaded is valid for every analysis: the loader itself refuses what the map audit used to find late.

docs/validation.md lists which check runs where; these are the ones that moved from maps.audit into the loader.
"""

import pytest

from dumps import BASE
from gctrace.analysis.load import load_dump
from gctrace.errors import DumpError
from test_maps import BS, map_dump


def test_the_loader_refuses_a_looping_chain(write_dump):
    arr = BASE + 0x100
    with pytest.raises(DumpError, match="loops"):
        load_dump(write_dump(map_dump(0, 1, [[24, arr + BS], [BS + 24, arr + BS]])))


def test_the_loader_refuses_an_overflow_pointer_to_half_a_bucket(write_dump):
    with pytest.raises(DumpError, match="does not point at a whole bucket"):
        load_dump(write_dump(map_dump(0, 0, [[24, BASE + 0x100 + 16]])))


def test_the_loader_refuses_slots_shorter_than_the_buckets(write_dump):
    # B=2: four buckets in the array, but slots lists three
    with pytest.raises(DumpError, match="slots has 3 entries, but map .* has a bucket at index 3"):
        load_dump(write_dump(map_dump(2, 0, [], slots=[0, 0, 0])))
