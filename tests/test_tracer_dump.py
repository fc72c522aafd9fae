"""The tracer's dumps: reproducible, in every form the spec allows, loadable by the analyzer."""

import gzip
import json

import pytest

from tracer_native import require_native

require_native()

from gctrace.analysis.load import load_dump  # noqa: E402
from gctrace.errors import MissingToolError, UsageError  # noqa: E402
from gctrace.tracer.native import binding  # noqa: E402
from gctrace.tracer.native.binding import Runtime  # noqa: E402
from gctrace.tracer.native.scenarios import record_scenario  # noqa: E402

def records(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        lines = f.read().splitlines()
    head = json.loads(lines[0])
    for k in head["meta"]["measured"].split():  # rss and the like: measured, not recorded
        head["meta"].pop(k)
    return head, lines[1:]


@pytest.mark.parametrize("scenario", ["fill-delete", "midgrow", "churn"])
def test_same_seed_same_dump(tmp_path, scenario):
    # GIVEN two recordings of one scenario with one seed
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    record_scenario(scenario, a, n=2000, seed=7, at="swept", gc="concurrent")
    record_scenario(scenario, b, n=2000, seed=7, at="swept", gc="concurrent")
    # THEN they are identical but for the measured meta figures
    ha, ra = records(a)
    hb, rb = records(b)
    assert ha == hb
    assert ra == rb
    assert ha["meta"]["arena_fixed"] is True and ha["meta"]["arena"] == 0xC000000000


def test_another_seed_gives_another_hash0(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    record_scenario("fill", a, n=100, seed=1)
    record_scenario("fill", b, n=100, seed=2)
    ma, mb = json.loads(a.read_text())["maps"], json.loads(b.read_text())["maps"]
    assert ma[0]["hash0"] != mb[0]["hash0"]


@pytest.mark.parametrize("name", ["d.json", "d.jsonl", "d.json.gz", "d.jsonl.gz"])
def test_every_form_loads_with_the_same_objects(tmp_path, name):
    p = tmp_path / name
    record_scenario("midgrow", p, n=500, seed=3)
    heap = load_dump(p)
    ref = tmp_path / "ref.json"
    record_scenario("midgrow", ref, n=500, seed=3)
    assert list(heap.obj_addr) == list(load_dump(ref).obj_addr)
    if name.endswith(".gz"):
        assert p.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0: reproducible


def test_dump_records_map_headers_slots_and_events(tmp_path):
    p = tmp_path / "d.json"
    record_scenario("midgrow", p, n=1000, seed=1, at="growing")
    doc = json.loads(p.read_text())
    (m,) = doc["maps"]
    assert m["oldbuckets"] != 0 and m["bucketsize"] == 144 and m["keysize"] == m["elemsize"] == 8
    objs = {o["addr"]: o for o in doc["objects"]}
    buckets, old = objs[m["buckets"]], objs[m["oldbuckets"]]
    assert buckets["kind"] == old["kind"] == "buckets"
    assert len(buckets["slots"]) == buckets["size"] // 144
    assert sum(buckets["slots"]) + sum(old["slots"]) + sum(
        sum(o["slots"]) for o in doc["objects"] if o["kind"] == "overflow") >= m["count"]
    ops = {e["op"] for e in doc["events"]}
    assert {"alloc", "write", "grow_start", "evacuate", "grow_end"} <= ops
    assert [e["seq"] for e in doc["events"]] == list(range(1, len(doc["events"]) + 1))


def test_pointer_free_buckets_show_their_overflow_word_but_are_marked_noscan(tmp_path):
    # GIVEN a map[int64]int64 big enough to chain overflow buckets
    p = tmp_path / "d.json"
    record_scenario("fill", p, n=3000, shape="int64->int64", at="filled")
    doc = json.loads(p.read_text())
    (m,) = doc["maps"]
    objs = {o["addr"]: o for o in doc["objects"]}
    b = objs[m["buckets"]]
    # THEN elems are no pointers, the overflow word (bucketsize - 8) is, flagged noscan
    assert b["noscan"] is True
    assert b.get("ptrs") and all(off % 144 == 136 for off, _ in b["ptrs"])
    # and mapextra.overflow -> []*bmap -> the overflow buckets keeps them alive
    extra = objs[dict(objs[m["hmap"]]["ptrs"])[40]]
    assert extra["kind"] == "mapextra"


def test_unknown_scenario_and_phase_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown scenario"):
        record_scenario("nope", tmp_path / "d.json")
    with pytest.raises(UsageError, match="no phase"):
        record_scenario("fill", tmp_path / "d.json", at="deleted")
    with pytest.raises(UsageError):
        record_scenario("fill", tmp_path / "d.json", madvise="sometimes")
    with pytest.raises(UsageError, match="cannot write"):
        record_scenario("fill", tmp_path / "no" / "such" / "d.json", n=10)
    with pytest.raises(UsageError, match="named .json"):
        record_scenario("fill", tmp_path / "d.txt", n=10)


def test_a_missing_library_is_a_missing_tool_error(monkeypatch, tmp_path):
    monkeypatch.setenv("GCTRACE_NATIVE_LIB", str(tmp_path / "absent.so"))
    monkeypatch.setattr(binding, "_lib", None)
    with pytest.raises(MissingToolError, match="not built"):
        binding.load()


def test_one_runtime_at_a_time():
    with Runtime() as rt:
        with pytest.raises(RuntimeError, match="another"):
            Runtime()
        assert rt.phase == "off"


def test_godebug_madvdontneed_selects_the_advice(monkeypatch):
    monkeypatch.setenv("GODEBUG", "gctrace=1,madvdontneed=0")
    with Runtime() as rt:
        assert rt.stats()["advice"] == "free"
    monkeypatch.setenv("GODEBUG", "madvdontneed=1")
    with Runtime() as rt:
        assert rt.stats()["advice"] == "dontneed"
    monkeypatch.delenv("GODEBUG")
    with Runtime() as rt:  # Go 1.19's default on Linux
        assert rt.stats()["advice"] == "dontneed"
