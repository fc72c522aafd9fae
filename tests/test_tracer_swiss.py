"""The native Swiss-table map (tracer/native/swiss.c): held against real Go 1.26, a dict model and the dump contract."""

import json
import random
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from tracer_native import require_native

require_native()

from gctrace.tracer.native.binding import Runtime  # noqa: E402
from gctrace.tracer.native.scenarios import record_scenario  # noqa: E402

REFERENCE = Path(__file__).resolve().parent.parent / "fixtures" / "go" / "swiss_sequence.json"
CTRL_EMPTY_GROUP = [0, 0, 8]


def expand(transitions, n_max):
    """expand turns [count, dir_len, tables, capacity] transitions into one row per count 0..n_max."""
    out = np.zeros((n_max + 1, 3), dtype=np.int64)
    ends = [t[0] for t in transitions[1:]] + [n_max + 1]
    for (count, *shape), end in zip(transitions, ends):
        out[count:end] = shape
    return out


@pytest.fixture(scope="module")
def reference():
    """reference is (per-run shapes, n_max) of the real Go 1.26 runs."""
    d = json.loads(REFERENCE.read_text())
    assert d["go_version"].startswith("go1.26")
    return np.stack([expand(r, d["n_max"]) for r in d["runs"]]), d["n_max"]


def native_shapes(n, seed):
    """native_shapes fills a fresh Swiss map[int64]int64 with keys 1..n and returns its shape after each count."""
    with Runtime(seed=seed, record=False, gogc=-1) as rt:
        m = rt.make_map("int64->int64", impl="swiss", root=None)
        tr = m.assign_many(np.arange(1, n + 1, dtype=np.int64), trace=True)
    return np.vstack([[0, 0, 0], tr.astype(np.int64)])


def transitions(shapes):
    """transitions lists [count, dir_len, tables, capacity] where the shape changes."""
    changed = np.flatnonzero((shapes[1:] != shapes[:-1]).any(axis=1)) + 1
    return [[0, *shapes[0].tolist()]] + [[int(c), *shapes[c].tolist()] for c in changed]


def test_reference_holds_the_issues_deterministic_sequence(reference):
    # GIVEN the real runs: every one starts with the sequence issue 12 states
    runs, _ = reference
    want = [[0, 0, 0, 0], [1, 0, 0, 8], [9, 1, 1, 16], [15, 1, 1, 32], [29, 1, 1, 64], [57, 1, 1, 128],
            [113, 1, 1, 256], [225, 1, 1, 512], [449, 1, 1, 1024], [897, 2, 2, 2048]]
    for r in runs:
        assert transitions(r[:1000]) == want


def test_growth_equals_go_through_the_deterministic_part(reference):
    # GIVEN the counts up to which all real runs agree (small map, doublings, first split)
    runs, _ = reference
    agree = (runs.min(axis=0) == runs.max(axis=0)).all(axis=1)
    det = int(np.argmin(agree)) - 1
    assert det >= 897
    # WHEN the native map takes the same inserts, under three seeds
    for seed in (1, 2, 3):
        nat = native_shapes(det, seed)
        # THEN its directory length, tables and capacity equal Go's after every insert
        assert np.array_equal(nat, runs[0][:det + 1]), seed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_growth_lies_within_the_real_runs_beyond(reference, seed):
    runs, n_max = reference
    lo, hi = runs.min(axis=0), runs.max(axis=0)
    nat = native_shapes(n_max, seed)
    for n in (2000, 5000, 10_000, 20_000, 50_000, 100_000, 150_000, n_max):
        assert (lo[n] <= nat[n]).all() and (nat[n] <= hi[n]).all(), (n, nat[n], lo[n], hi[n])
    assert nat[10_000].tolist() == [16, 16, 16_384]
    assert nat[200_000].tolist() == [256, 256, 262_144]


def test_random_operations_match_a_dict():
    # GIVEN a Swiss map whose invariants are checked after every operation, and a dict
    rng = random.Random(12)
    with Runtime(seed=5, check=True, gogc=-1) as rt:
        m = rt.make_map("int64->int64", impl="swiss")
        model = {}
        # WHEN a random mix runs over a small key space (tombstones, prunes, reuse)
        for i in range(30_000):
            k = rng.randrange(3000)
            op = rng.random()
            if op < 0.45:
                v = rng.randrange(-(1 << 40), 1 << 40)
                m.assign(k, v)
                model[k] = v
            elif op < 0.85:
                m.delete(k)
                model.pop(k, None)
            else:
                assert m.get(k) == model.get(k)
            if i % 7000 == 6999:
                m.clear()
                model.clear()
        # AND a second map churns ~600 random keys in one table: tombstones pile up until pruned
        m2, model2, live = rt.make_map("int64->int64", impl="swiss", root="main.m2"), {}, []
        for i in range(20_000):
            k = rng.randrange(1 << 40)
            if k in model2:
                continue
            m2.assign(k, i)
            model2[k] = i
            live.append(k)
            j = rng.randrange(len(live))
            live[j], live[-1] = live[-1], live[j]
            if len(live) > 600:
                gone = live.pop()
                m2.delete(gone)
                del model2[gone]
        # THEN it holds exactly the dict's entries
        assert len(m) == len(model)
        for k in range(3000):
            assert m.get(k) == model.get(k)
        assert len(m2) == len(model2) == 600
        for k in live + [rng.randrange(1 << 40) for _ in range(1000)]:
            assert m2.get(k) == model2.get(k)
        st = rt.stats()
        assert st["swiss_prunes"] > 0 and st["swiss_splits"] > 0
        assert m.header().clear_seq == 4


def test_small_map_reuses_slots_without_tombstones():
    with Runtime(seed=2, check=True, gogc=-1) as rt:
        m = rt.make_map("int64->int64", impl="swiss")
        for k in range(8):
            m.assign(k, k)
        for k in range(8):
            m.delete(k)
        h = m.header()
        assert (h.count, h.dir_len, h.tables, h.capacity, h.tombstone_possible) == (0, 0, 0, 8, False)
        for k in range(100, 108):
            m.assign(k, k)
        assert m.header().dir_len == 0  # still one group: deletes emptied its slots


def load_records(path):
    """load_records returns (objects by addr, roots, the one map record, meta) of a JSON Lines dump."""
    objects, roots, maps, meta = {}, [], [], None
    for line in Path(path).read_text().splitlines():
        rec = json.loads(line)
        if "format" in rec:
            meta = rec["meta"]
        elif "object" in rec:
            objects[rec["object"]["addr"]] = rec["object"]
        elif "root" in rec:
            roots.append(rec["root"])
        elif "map" in rec:
            maps.append(rec["map"])
    assert len(maps) == 1
    return objects, roots, maps[0], meta


def containing(objects, addr):
    """containing returns the object that holds addr, or None."""
    for o in objects.values():
        if o["addr"] <= addr < o["addr"] + o["size"]:
            return o
    return None


def reachable(objects, roots):
    """reachable marks from the roots through every pointer field (a plain BFS, independent of the analyzer)."""
    starts = sorted(objects)
    import bisect

    def obj(p):
        i = bisect.bisect_right(starts, p) - 1
        if i >= 0 and p < starts[i] + objects[starts[i]]["size"]:
            return starts[i]
        return None

    seen, todo = set(), deque(obj(r["target"]) for r in roots if r["target"])
    while todo:
        a = todo.popleft()
        if a is None or a in seen:
            continue
        seen.add(a)
        for _, t in objects[a].get("ptrs", []):
            todo.append(obj(t))
    return seen


def check_swiss_record(objects, m):
    """check_swiss_record holds a Swiss map record against docs/dump-format.md's invariants."""
    assert m["impl"] == "swiss"
    assert objects[m["hmap"]]["kind"] == "swiss_map" and objects[m["hmap"]]["size"] == 48
    assert m["group_size"] == 8 + 8 * m["slot_size"] == 136
    if m["dir_len"] == 0:
        assert m["tables"] == []
        if m["dir_ptr"]:
            assert containing(objects, m["dir_ptr"])["kind"] == "swiss_groups"
            assert sum(m["small"]["ctrl"]) == 8 and m["small"]["ctrl"][0] == m["count"]
        return
    assert m["dir_len"] == 2 ** m["global_depth"]
    d = objects[m["dir_ptr"]]
    assert d["kind"] == "swiss_directory" and d["size"] >= 8 * m["dir_len"]
    directory = dict(d.get("ptrs", []))
    dir_entries = [directory.get(8 * i, 0) for i in range(m["dir_len"])]
    total, i = 0, 0
    for t in m["tables"]:
        # each distinct table once, in directory order, filling 2^(gd - ld) entries
        assert t["index"] == i and t["local_depth"] <= m["global_depth"]
        span = 2 ** (m["global_depth"] - t["local_depth"])
        assert dir_entries[i:i + span] == [t["addr"]] * span
        i += span
        assert objects[t["addr"]]["kind"] == "swiss_table" and objects[t["addr"]]["size"] == 32
        g = containing(objects, t["groups"])
        assert g["kind"] == "swiss_groups"
        assert t["groups"] + t["groups_len"] * m["group_size"] <= g["addr"] + g["size"]
        assert t["groups_len"] & (t["groups_len"] - 1) == 0 and t["capacity"] == 8 * t["groups_len"]
        assert len(t["ctrl"]) == t["groups_len"] and all(sum(c) == 8 for c in t["ctrl"])
        full = sum(c[0] for c in t["ctrl"])
        deleted = sum(c[1] for c in t["ctrl"])
        assert t["used"] == full
        assert t["growth_left"] == t["capacity"] * 7 // 8 - full - deleted
        total += full
    assert i == m["dir_len"]
    assert total == m["count"]


@pytest.mark.parametrize("shape", ["int64->*value", "int64->int64"])
def test_fill_delete_keeps_tables_and_groups_live_with_tombstones(tmp_path, shape):
    # GIVEN a Swiss map filled with 20,000 keys, every key deleted, GC and scavenger run
    p = tmp_path / "fd.jsonl"
    s = record_scenario("fill-delete", p, n=20_000, shape=shape, impl="swiss", check=True)
    objects, roots, m, meta = load_records(p)
    check_swiss_record(objects, m)
    assert meta["map"] == "swiss" and s["count"] == 0
    # THEN every table and groups array stays, reachable, and nothing is full
    assert m["count"] == 0 and len(m["tables"]) == s["tables"] >= 16
    live = reachable(objects, roots)
    for t in m["tables"]:
        assert t["addr"] in live and containing(objects, t["groups"])["addr"] in live
    ctrl = np.array([c for t in m["tables"] for c in t["ctrl"]])
    assert ctrl[:, 0].sum() == 0
    assert ctrl[:, 1].sum() > 0 and m["tombstone_possible"] is True  # full groups kept their tombstones
    # and the values (pointer shape) are gone: deleting frees them, not the groups
    assert not [o for o in objects.values() if o["kind"] == "value"]
    kinds = {o["kind"] for o in objects.values()}
    assert kinds == {"swiss_map", "swiss_directory", "swiss_table", "swiss_groups"}
    assert live == set(objects)


def test_clear_keeps_every_table_with_all_slots_empty(tmp_path):
    # GIVEN the same fill dumped before and after clear (same seed, same addresses)
    a, b = tmp_path / "filled.jsonl", tmp_path / "end.jsonl"
    record_scenario("clear", a, n=20_000, impl="swiss", at="filled")
    record_scenario("clear", b, n=20_000, impl="swiss", check=True)
    _, _, before, _ = load_records(a)
    objects, roots, m, _ = load_records(b)
    check_swiss_record(objects, m)
    # THEN every table is still there, at the same address, empty, and clear_seq is 1
    assert [t["addr"] for t in m["tables"]] == [t["addr"] for t in before["tables"]]
    assert m["clear_seq"] == 1 and before["clear_seq"] == 0 and m["count"] == 0
    assert all(c == CTRL_EMPTY_GROUP for t in m["tables"] for c in t["ctrl"])
    assert all(t["growth_left"] == 896 for t in m["tables"])
    assert m["tombstone_possible"] is False


def test_midgrow_stops_right_after_a_split(tmp_path):
    p = tmp_path / "mg.jsonl"
    s = record_scenario("midgrow", p, n=3000, impl="swiss", at="growing")
    objects, roots, m, _ = load_records(p)
    check_swiss_record(objects, m)
    # the map has the tables of the split, and the replaced table is garbage not yet collected
    assert s["table_splits"] >= 1
    live = reachable(objects, roots)
    dead = [o for o in objects.values() if o["addr"] not in live]
    assert {o["kind"] for o in dead} >= {"swiss_table", "swiss_groups"}
    stale = [o for o in dead if o["kind"] == "swiss_groups"]
    assert any(o["size"] == 18_432 for o in stale)  # the 1024-slot groups array the split replaced


@pytest.mark.parametrize("scenario", ["fill", "fill-delete", "clear", "midgrow", "churn"])
def test_collector_marks_exactly_what_is_reachable(tmp_path, scenario):
    # GIVEN a concurrent last cycle interleaved with the Swiss map's operations, barrier on
    p = tmp_path / "d.jsonl"
    record_scenario(scenario, p, n=3000, impl="swiss", gc="concurrent", at="mark_done", check=True)
    objects, roots, m, _ = load_records(p)
    check_swiss_record(objects, m)
    # THEN every reachable object is marked (nothing lost); marked-but-dead ones are floating garbage
    live = reachable(objects, roots)
    assert all(objects[a]["marked"] for a in live)


def test_events_use_only_the_classic_ops_and_swiss_kinds(tmp_path):
    p = tmp_path / "d.jsonl"
    record_scenario("fill-delete", p, n=2000, impl="swiss")
    ops, kinds = set(), set()
    for line in p.read_text().splitlines():
        rec = json.loads(line)
        if "event" in rec:
            ops.add(rec["event"]["op"])
            if rec["event"]["op"] == "alloc":
                kinds.add(rec["event"]["kind"])
    assert ops <= {"alloc", "free", "write", "gc_start", "mark_done", "sweep_done", "madvise"}
    assert {"alloc", "free", "write", "madvise"} <= ops
    assert kinds == {"swiss_map", "swiss_directory", "swiss_table", "swiss_groups", "value"}


def test_swiss_dump_loads_through_the_loader(tmp_path):
    from gctrace.analysis.load import load_dump

    p = tmp_path / "d.jsonl"
    record_scenario("fill-delete", p, n=2000, impl="swiss")
    heap = load_dump(p)
    assert len(heap.maps) == 1


@pytest.mark.parametrize("scenario", ["fill", "fill-delete", "clear", "midgrow", "churn"])
def test_cli_records_every_scenario_with_the_swiss_map(tmp_path, scenario):
    from click.testing import CliRunner

    from gctrace.cli import main

    p = tmp_path / "d.jsonl"
    r = CliRunner().invoke(main, ["record", scenario, "--map", "swiss", "--n", "2000", "-q", "-o", str(p)])
    assert r.exit_code == 0, r.output
    assert "map: swiss" in r.output and "tables:" in r.output
    objects, roots, m, meta = load_records(p)
    check_swiss_record(objects, m)
    assert meta["map"] == "swiss" and meta["scenario"] == scenario


def test_cli_refuses_an_unknown_map(tmp_path):
    from click.testing import CliRunner

    from gctrace.cli import main

    p = tmp_path / "d.jsonl"
    r = CliRunner().invoke(main, ["record", "fill", "--map", "btree", "-o", str(p)])
    assert r.exit_code == 2 and not p.exists()


def test_delete_leaves_an_empty_slot_or_a_tombstone_as_go_does():
    # GIVEN one table of 1024 slots at 7/8 (many full groups, some with an empty slot)
    with Runtime(seed=9, check=True, gogc=-1) as rt:
        m = rt.make_map("int64->int64", impl="swiss")
        m.assign_many(np.arange(896, dtype=np.int64))
        (t,) = m.tables()
        before = m.group_ctrls(t)
        assert (before[:, 2] == 0).any() and (before[:, 2] > 0).any()
        empties = tombstones = 0
        for k in range(0, 896, 3):
            # WHEN a key is deleted
            m.delete(k)
            after = m.group_ctrls(t)
            (g,) = np.flatnonzero(after[:, 0] != before[:, 0])  # the key's group lost one full slot
            # THEN its slot is empty if the group had an empty slot, else a tombstone (Go's table.Delete)
            if before[g, 2] > 0:
                assert after[g].tolist() == [before[g, 0] - 1, before[g, 1], before[g, 2] + 1]
                empties += 1
            else:
                assert after[g].tolist() == [before[g, 0] - 1, before[g, 1] + 1, 0]
                tombstones += 1
            before = after
        assert empties > 0 and tombstones > 0
        # and growthLeft counts the empty slots freed, never the tombstones
        (t2,) = m.tables()
        assert t2.growth_left == empties and t2.deleted == tombstones


DELETE_REFERENCE = REFERENCE.parent / "swiss_delete.json"


def native_history(seed, n):
    """native_history runs swissdelete's history on the native map: fill, delete all, refill, clear."""

    def state(m):
        h, ts = m.header(), m.tables()
        full, deleted = sum(t.full for t in ts), sum(t.deleted for t in ts)
        return {"used": h.count, "tables": h.tables, "capacity": h.capacity, "full": full, "deleted": deleted,
                "empty": h.capacity - full - deleted, "growth_left": sum(t.growth_left for t in ts),
                "clear_seq": h.clear_seq, "tombstone_possible": h.tombstone_possible}, [(t.addr, t.groups) for t in ts]

    with Runtime(seed=seed, record=False, gogc=-1, check=False) as rt:
        m = rt.make_map("int64->int64", impl="swiss")
        keys = np.arange(1, n + 1, dtype=np.int64)
        m.assign_many(keys)
        filled, a = state(m)
        m.delete_many(keys)
        deleted, b = state(m)
        m.assign_many(keys)
        refilled, c = state(m)
        m.clear()
        cleared, d = state(m)
    return {"filled": filled, "deleted": deleted, "refilled": refilled, "cleared": cleared,
            "delete_kept_every_table": a == b, "clear_kept_every_table": c == d}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_delete_and_clear_keep_what_real_go_keeps(seed):
    # GIVEN real Go 1.26's map[int64]int64 through fill 100,000, delete all, refill, clear (10 runs)
    ref = json.loads(DELETE_REFERENCE.read_text())
    runs = ref["runs"]
    got = native_history(seed, ref["n"])
    # THEN what every real run agrees on, the native map equals exactly ...
    for phase in ("filled", "deleted", "refilled", "cleared"):
        for field in got[phase]:
            vals = {r[phase][field] for r in runs}
            if len(vals) == 1:
                assert got[phase][field] == vals.pop(), (phase, field)
    assert got["deleted"]["full"] == 0 and got["deleted"]["used"] == 0
    assert got["cleared"]["empty"] == got["cleared"]["capacity"] and got["cleared"]["clear_seq"] == 1
    assert all(r["delete_kept_every_table"] and r["clear_kept_every_table"] for r in runs)
    assert got["delete_kept_every_table"] and got["clear_kept_every_table"]
    # ... and what depends on the hash seed lies within 4 standard deviations of the real runs
    for phase, field in (("deleted", "deleted"), ("refilled", "deleted"), ("refilled", "tables")):
        vals = np.array([r[phase][field] for r in runs], dtype=float)
        assert abs(got[phase][field] - vals.mean()) <= 4 * vals.std(ddof=1) + 1, (phase, field, got[phase][field])
