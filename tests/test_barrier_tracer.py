"""The tracer's concurrent collector and the barrier replay agree on what was marked.

The tracer marks with Go's hybrid barrier, a LIFO grey stack and an assist
rate per map operation; the replay (docs/dump-format.md) scans K grey
objects per event, oldest first. The schedules differ, so the sets they mark
could differ in general; with the hybrid barrier they cannot: it shades
every overwritten pointer, so everything reachable at gc_start is marked
whatever the order (a snapshot), every object allocated during the mark is
black, and nothing else is ever shaded (the mutator only stores pointers it
holds). So for a dump taken at mark_done, the tracer's ``marked`` verdict
must equal the replay's marked set = (reachable - lost) + floating, for any
mark rate, and neither may lose anything.
"""

import json

import numpy as np
import pytest

from tracer_native import require_native

require_native()

from gctrace.analysis.barrier import replay  # noqa: E402
from gctrace.analysis.load import load_dump  # noqa: E402
from gctrace.analysis.mark import mark  # noqa: E402
from gctrace.tracer.native.scenarios import PHASES, record_scenario  # noqa: E402


def tracer_marked(path):
    """tracer_marked returns the sorted addresses the tracer's collector marked (the objects' ``marked`` key)."""
    with open(path) as f:
        objs = json.load(f)["objects"]
    return np.array(sorted(o["addr"] for o in objs if o.get("marked")), np.int64)


@pytest.mark.parametrize("scenario", sorted(PHASES))
def test_hybrid_replay_marks_what_the_tracer_marked(tmp_path, scenario):
    # GIVEN a concurrent cycle interleaved with the scenario's last mutations, dumped at mark_done
    out = tmp_path / "d.json"
    record_scenario(scenario, out, n=600, gc="concurrent", at="mark_done", shape="int64->*value")
    heap = load_dump(out)
    reachable = heap.obj_addr[mark(heap).reachable]  # nothing happens after mark_done: the dump is that graph
    want = tracer_marked(out)
    for k in (1, 7):
        # WHEN the log's last mark is replayed with the hybrid barrier
        r = replay(heap, "hybrid", k)
        # THEN the log explains itself, nothing is lost, and the marked sets are equal
        assert r.mark_done is not None and r.unexplained_writes == 0
        assert r.lost.tolist() == []
        marked = np.union1d(np.setdiff1d(reachable, r.lost), r.floating)
        assert marked.tolist() == want.tolist()
