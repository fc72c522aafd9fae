"""The native map follows Go 1.19: B after every insert, growth bookkeeping, dict semantics."""

import json
import random
from pathlib import Path

import numpy as np
import pytest

from tracer_native import require_native

require_native()

from gctrace.tracer.native.binding import Runtime  # noqa: E402

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "go" / "map_B_sequence.json"
SHAPES = ["int64->int64", "int64->*value"]


def expected_B(transitions, n_max):
    """expected_B expands [[count, B], ...] into B after each count 0..n_max."""
    out = np.zeros(n_max + 1, dtype=np.uint8)
    for count, b in transitions:
        out[count:] = b
    return out


@pytest.mark.parametrize("shape", SHAPES)
def test_B_after_each_of_200000_inserts_equals_go_1_19(shape):
    # GIVEN the B sequence recorded with the real Go 1.19 runtime
    ref = json.loads(FIXTURE.read_text())
    n_max = ref["n_max"]
    want = expected_B(ref["transitions"], n_max)
    # WHEN the same distinct keys (1..n_max, as the Go program) go into a fresh map
    with Runtime(seed=1, gogc=-1, record=False) as rt:
        m = rt.make_map(shape)
        got = m.assign_many(np.arange(1, n_max + 1, dtype=np.int64), trace_B=True)
        assert len(m) == n_max
    # THEN B agrees after every single insert
    bad = np.flatnonzero(got != want[1:])
    assert bad.size == 0, f"first mismatch after insert {bad[0] + 1}: B={got[bad[0]]}, Go: {want[bad[0] + 1]}"


def test_growth_is_in_progress_after_a_transition_exactly_when_go_says():
    # GIVEN Go's record of whether oldbuckets != nil right after each growing insert
    ref = json.loads(FIXTURE.read_text())
    counts = [c for c, _ in ref["transitions"][1:]]
    with Runtime(seed=5, gogc=-1, record=False) as rt:
        m = rt.make_map("int64->int64")
        growing, done = [], 0
        for c in counts:
            m.assign_many(np.arange(done + 1, c, dtype=np.int64))
            m.assign(c)
            done = c
            growing.append(m.header().oldbuckets != 0)
    # THEN the 1- and 2-bucket growths finish inside their insert, later ones do not
    assert growing == ref["growing_at_transition"]


def test_oldbuckets_set_exactly_while_growing_and_nevacuate_only_increases():
    with Runtime(seed=3, gogc=-1, record=False) as rt:
        m = rt.make_map("int64->*value")
        prev = m.header()
        rng = random.Random(3)
        grows = 0
        for k in range(6000):
            if k > 500 and rng.random() < 0.3:
                m.delete(rng.randrange(k))
            else:
                m.assign(k)
            h = m.header()
            st = rt.stats()
            if st["grows"] > grows:  # a growth started in this operation
                grows = st["grows"]
                nold = 1 << (h.B - 1)
                # THEN it is still in progress unless it had at most two old buckets
                assert (h.oldbuckets != 0) == (nold > 2)
            elif prev.oldbuckets != 0:
                assert h.B == prev.B
                if h.oldbuckets != 0:
                    assert h.nevacuate >= prev.nevacuate
                    assert h.nevacuate < 1 << (h.B - 1)
                else:  # growth ended: every old bucket was evacuated
                    assert h.nevacuate == 1 << (h.B - 1)
            else:
                assert h.oldbuckets == 0
            prev = h
        assert grows >= 8


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [1, 2])
def test_random_operations_agree_with_a_python_dict(shape, seed):
    # GIVEN a map checked after every operation (emptyRest order, tophash,
    # findability, count; a violation aborts) and a dict doing the same
    rng = random.Random(seed)
    with Runtime(seed=seed, check=True, record=False, gogc=100) as rt:
        m = rt.make_map(shape)
        ref = {}
        for i in range(4000):
            op = rng.random()
            k = rng.randrange(-300, 1500)
            if op < 0.55:
                v = rt.new_value() if m.has_pointers else rng.randrange(-(1 << 63), 1 << 63)
                m.assign(k, v)
                ref[k] = v
            elif op < 0.95:
                m.delete(k)
                ref.pop(k, None)
            elif op < 0.97:
                m.clear()
                ref.clear()
            else:
                rt.gc()
            assert len(m) == len(ref)
            if i % 500 == 0 or i == 3999:
                # THEN every key is found with its value and deleted keys are gone
                for key in range(-300, 1500):
                    assert m.get(key) == ref.get(key)


def test_mapclear_keeps_the_bucket_array_and_drops_overflow_and_oldbuckets():
    with Runtime(seed=1, gogc=-1) as rt:
        m = rt.make_map("int64->int64")
        m.assign_many(np.arange(3330, dtype=np.int64))  # 6.5*2^9 + 2: growing into B 10
        before = m.header()
        assert before.oldbuckets != 0
        m.clear()
        h = m.header()
        assert (h.count, h.oldbuckets, h.nevacuate, h.noverflow) == (0, 0, 0, 0)
        assert h.buckets == before.buckets and h.B == before.B
        assert h.hash0 != before.hash0  # reseeded, as Go does
        m.check()


def test_churn_triggers_a_same_size_growth_that_keeps_B():
    # GIVEN a steady number of live keys while new keys come and old ones go
    with Runtime(seed=4, gogc=-1, record=False) as rt:
        m = rt.make_map("int64->int64")
        live, step = 1500, 100
        m.assign_many(np.arange(live, dtype=np.int64))
        saw_flag, B_before = False, None
        for start in range(live, live + 2_000_000, step):
            B = m.header().B
            keys = np.arange(start, start + step, dtype=np.int64)
            m.assign_many(keys)
            m.delete_many(keys - live)
            h = m.header()
            saw_flag |= bool(h.flags & 8)  # sameSizeGrow
            if rt.stats()["same_size_grows"] and B_before is None:
                B_before = B
                assert h.B == B  # THEN the growth kept B ...
            if B_before is not None and h.oldbuckets == 0:
                break
        # ... and tooManyOverflowBuckets is what fired it
        assert rt.stats()["same_size_grows"] >= 1 and saw_flag
        assert h.noverflow < 1 << min(h.B, 15) and len(m) == live
        m.check()
