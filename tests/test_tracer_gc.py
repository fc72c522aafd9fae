"""The tracer's collector agrees with the analyzer: exactly after a stop-the-world
mark, as a superset (floating garbage) after a concurrent one."""

import json

import numpy as np
import pytest

from tracer_native import require_native

require_native()

from gctrace.analysis.load import load_dump  # noqa: E402
from gctrace.analysis.mark import mark  # noqa: E402
from gctrace.tracer.native.binding import Runtime  # noqa: E402
from gctrace.tracer.native.scenarios import PHASES, record_scenario  # noqa: E402

SCENARIOS = sorted(PHASES)
SHAPES = ["int64->int64", "int64->*value"]


def marked_and_reachable(path):
    """marked_and_reachable returns the collector's and the analyzer's verdicts, aligned with heap.obj_addr."""
    heap = load_dump(path)
    verdict = {}
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if "object" in rec:
                verdict[rec["object"]["addr"]] = rec["object"]["marked"]
    marked = np.array([verdict[int(a)] for a in heap.obj_addr], dtype=bool)
    return heap, marked, np.asarray(mark(heap).reachable, dtype=bool)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_stw_marked_set_equals_the_analyzers_reachable_set(tmp_path, scenario, shape):
    # GIVEN a dump taken when the last stop-the-world mark is done, before the sweep
    out = tmp_path / "d.jsonl"
    record_scenario(scenario, out, n=3000, gc="stw", at="mark_done", shape=shape,
                    record=scenario != "churn")  # churn's event log is big and not needed here
    heap, marked, reachable = marked_and_reachable(out)
    # THEN the collector marked exactly what the analyzer finds reachable
    assert marked.sum() > 0
    assert np.array_equal(marked, reachable), (
        f"marked-not-reachable {heap.obj_addr[marked & ~reachable][:5]}, "
        f"reachable-not-marked {heap.obj_addr[reachable & ~marked][:5]}")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_concurrent_marked_set_is_a_superset_and_the_rest_is_floating_garbage(tmp_path, scenario):
    # GIVEN a concurrent cycle interleaved with the scenario's last mutations, barrier on
    out = tmp_path / "d.jsonl"
    record_scenario(scenario, out, n=3000, gc="concurrent", at="mark_done", shape="int64->*value",
                    record=scenario != "churn")
    heap, marked, reachable = marked_and_reachable(out)
    # THEN nothing reachable was left unmarked
    assert not (reachable & ~marked).any()
    floating = marked & ~reachable
    if scenario in ("fill-delete", "clear"):
        # the deletion half of the barrier shaded every value removed during the mark
        assert floating.sum() >= 1000


def test_floating_garbage_is_gone_after_the_next_cycle(tmp_path):
    out = tmp_path / "d.jsonl"
    record_scenario("fill-delete", out, n=3000, gc="concurrent", at="swept")
    heap = load_dump(out)
    assert np.asarray(mark(heap).reachable, dtype=bool).all()


def test_without_the_barrier_a_concurrent_mark_loses_reachable_objects(tmp_path):
    # GIVEN the cycle overlaps inserts that grow the map, barrier off
    out = tmp_path / "d.jsonl"
    record_scenario("fill", out, n=3000, gc="concurrent", at="mark_done", barrier=False)
    heap, marked, reachable = marked_and_reachable(out)
    # THEN values moved by evacuation into the (black) new bucket array were never marked
    assert (reachable & ~marked).sum() > 0


def test_old_bucket_array_is_freed_by_the_first_gc_after_growth_ends():
    with Runtime(seed=2, gogc=-1) as rt:
        m = rt.make_map("int64->*value")
        k = 0
        while m.header().oldbuckets == 0 or m.header().B < 8:
            m.assign(k)
            k += 1
        old = m.header().oldbuckets
        # WHEN a collection runs while the map is growing, THEN the old array survives
        rt.gc()
        assert rt.object_base(old) == old
        while m.header().oldbuckets != 0:
            m.assign(k)
            k += 1
        # growth ended: the array is garbage but still allocated until a GC
        assert rt.object_base(old) == old
        rt.gc_start()
        rt.gc_mark_finish()
        assert int(old) not in set(rt.marked().tolist())
        rt.gc_sweep()
        assert rt.object_base(old) != old


def test_pacer_driven_concurrent_cycles_never_free_a_live_value():
    # GIVEN GOGC=100 starting concurrent cycles by itself while the map grows and shrinks
    with Runtime(seed=9, gc="concurrent", gogc=100, mark_rate=2, record=False) as rt:
        m = rt.make_map("int64->*value")
        m.assign_many(np.arange(120000))
        m.delete_many(np.arange(0, 120000, 3))
        m.assign_many(np.arange(120000, 160000))
        assert rt.stats()["gc_cycles"] >= 2
        rt.gc()
        # THEN every live key still owns its own allocated value object
        vals = [m.get(k) for k in range(160000) if k % 3 or k >= 120000]
        assert len(set(vals)) == len(vals)
        assert all(rt.object_base(v) == v for v in vals)
