"""barrier replays the last concurrent mark; the textbook case is derived by hand below.

fixtures/barrier_textbook.json, page 0 = 0xc000000000, every object 16 B:

    A = p0+0x000   B = p0+0x100   P = p0+0x200   C = p0+0x300   F = p0+0x400   D = p0+0x500
    roots: main.g (global) -> A, frame.s (stack) -> nil in the dump

    events: 1 gc_start
            2 write root frame.s  old 0  new C      (a stack takes C: never barriered)
            3 write P+0           old C  new 0      (the heap drops its last pointer to C)
            4 write A+8           old F  new 0      (F becomes garbage after being shaded)
            5 mark_done
            6 write root frame.s  old C  new 0      (after mark_done: not part of the mark)
            7 alloc D                               (after mark_done: not in the graph)
            8 write B+8           old 0  new D

Graph at gc_start (undo 8, 6, 4, 3, 2; drop D): A+0 -> B, A+8 -> F, B+0 -> P,
P+0 -> C, frame.s = nil.  Graph at mark_done (apply 2, 3, 4): A+0 -> B,
B+0 -> P, frame.s -> C; reachable = {A, B, P, C}; F unreachable; D absent.

Marker, K = 1, FIFO grey queue, scan after each event's effect:
  1 gc_start   shade A (main.g); scan A -> grey [B, F]        grey 2 black 1 white 2
  2 s = C      unbarriered;      scan B -> grey [F, P]        grey 2 black 2 white 1 (C)
  3 P+0 = nil  none/dijkstra: nothing shaded (new is nil)
               yuasa/hybrid: shade old C -> grey [F, P, C]
               scan F                     none/dijkstra: grey [P]     g1 b3 w1
                                          yuasa/hybrid:  grey [P, C]  g2 b3 w0
  4 A+8 = nil  F already black; scan P (P+0 is nil now)
                                          none/dijkstra: grey []      g0 b4 w1
                                          yuasa/hybrid:  grey [C]     g1 b4 w0
  5 mark_done  drain: yuasa/hybrid scan C g0 b5 w0;  none/dijkstra  g0 b4 w1
Marked: none/dijkstra {A, B, F, P}; yuasa/hybrid {A, B, F, P, C}.
  lost     = reachable & unmarked: none/dijkstra {C}; yuasa/hybrid {}
  floating = marked & unreachable: {F} in all four modes
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from dumps import BASE, FIXTURES, dump_doc
from gctrace.analysis.barrier import MODES, replay
from gctrace.analysis.load import load_dump
from builders import tiny_heap
from builders import with_events
from gctrace.cli import BARRIER_MODES, main
from gctrace.errors import DumpError

A, B, P, C, F, D = (BASE + k * 0x100 for k in range(6))
TEXTBOOK = FIXTURES / "barrier_textbook.json"


@pytest.fixture(scope="module")
def textbook():
    return load_dump(TEXTBOOK)


@pytest.mark.parametrize("mode,lost", [("none", [C]), ("dijkstra", [C]), ("yuasa", []), ("hybrid", [])])
def test_textbook_lost_and_floating(textbook, mode, lost):
    r = replay(textbook, mode)
    assert r.lost.tolist() == lost
    assert r.floating.tolist() == [F]
    assert (r.gc_start, r.mark_done, r.unexplained_writes) == (1, 5, 0)


@pytest.mark.parametrize("mode,grey,black,white", [
    ("none", [2, 2, 1, 0, 0], [1, 2, 3, 4, 4], [2, 1, 1, 1, 1]),
    ("dijkstra", [2, 2, 1, 0, 0], [1, 2, 3, 4, 4], [2, 1, 1, 1, 1]),
    ("yuasa", [2, 2, 2, 1, 0], [1, 2, 3, 4, 5], [2, 1, 0, 0, 0]),
    ("hybrid", [2, 2, 2, 1, 0], [1, 2, 3, 4, 5], [2, 1, 0, 0, 0]),
])
def test_textbook_timeline_counts(textbook, mode, grey, black, white):
    r = replay(textbook, mode)
    assert r.step_seq.tolist() == [1, 2, 3, 4, 5]
    assert (r.grey.tolist(), r.black.tolist(), r.white.tolist()) == (grey, black, white)


def test_textbook_story_names_the_stack_store_and_the_overwrite(textbook):
    (story,) = replay(textbook, "dijkstra").hides.values()
    assert [(h.seq, h.action, h.root, h.obj, h.off, h.scanned) for h in story] == [
        (2, "stored", "frame.s", 0, 0, False), (3, "overwritten", None, P, 0, False)]


def test_a_faster_marker_wins_the_race(textbook):
    # K = 2: after gc_start A and then B are scanned (grey [F, P]); after event 2
    # F and P are scanned, so P+0 -> C shades C before event 3 overwrites it.
    assert replay(textbook, "none", mark_rate=2).lost.tolist() == []


def test_cli_json_has_barrier_only_with_the_option():
    r = CliRunner().invoke(main, ["analyze", "--json", "--barrier", "dijkstra", str(TEXTBOOK)])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert {k: rep["barrier"][k] for k in ("mode", "lost", "floating")} == {
        "mode": "dijkstra", "lost": [C], "floating": [F]}
    plain = json.loads(CliRunner().invoke(main, ["analyze", "--json", str(TEXTBOOK)]).stdout)
    assert "barrier" not in plain
    assert {k: v for k, v in rep.items() if k != "barrier"} == plain


def test_cli_text_tells_the_story():
    r = CliRunner().invoke(main, ["analyze", "--barrier", "none", str(TEXTBOOK)])
    assert r.exit_code == 0, r.output
    assert "Write barrier (none, mark rate 1)" in r.stdout
    assert f"{C:#x} (C, 16 B): stored into stack root frame.s at event 2" in r.stdout
    assert f"its heap pointer {P:#x}+0 was overwritten at event 3 before the marker scanned it" in r.stdout
    assert "1 floating object (16 B)" in r.stdout


def test_cli_replay_writes_an_svg_with_every_mode(tmp_path):
    out = tmp_path / "t.svg"
    r = CliRunner().invoke(main, ["replay", str(TEXTBOOK), "-o", str(out)])
    assert r.exit_code == 0, r.output
    svg = out.read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert svg.count("<polyline") == 3 * len(MODES)
    assert "dijkstra: 1 lost (16 B)" in r.output


def test_cli_modes_match_the_module():
    assert BARRIER_MODES == MODES


def test_no_gc_start_means_nothing_to_replay(write_dump):
    p = write_dump(dump_doc([{"addr": A, "size": 16}], events=[{"seq": 1, "op": "alloc", "addr": A,
                                                                 "size": 16, "kind": "other"}]))
    r = replay(load_dump(p), "yuasa")
    assert not r.replayed and r.lost.tolist() == [] and r.floating.tolist() == []
    out = CliRunner().invoke(main, ["analyze", "--barrier", "yuasa", str(p)])
    assert "nothing to replay, the event log has no gc_start" in out.stdout
    out = CliRunner().invoke(main, ["replay", str(p), "-o", str(p.with_suffix(".svg"))])
    assert out.exit_code == 2 and "no gc_start" in out.stderr


def test_free_after_gc_start_is_refused_naming_the_event(write_dump):
    p = write_dump(dump_doc([{"addr": A, "size": 16}], events=[
        {"seq": 1, "op": "gc_start"}, {"seq": 2, "op": "mark_done"}, {"seq": 7, "op": "free", "addr": B}]))
    with pytest.raises(DumpError, match=r"event 7: free of 0xc000000100 after the last gc_start \(event 1\)"):
        replay(load_dump(p), "hybrid")
    out = CliRunner().invoke(main, ["analyze", "--barrier", "hybrid", str(p)])
    assert out.exit_code == 2 and out.stderr.count("\n") == 1 and "event 7: free" in out.stderr


def test_a_free_before_the_last_gc_start_is_fine():
    h = with_events(tiny_heap([(0x1000, 16)], roots=[0x1000]),
                    ["gc_start", "mark_done", ("free", 0x2000), "gc_start", "mark_done"])
    r = replay(h, "none")
    assert r.gc_start == 4 and r.lost.tolist() == []


def test_write_into_a_non_object_is_refused():
    h = with_events(tiny_heap([(0x1000, 16)], roots=[0x1000]),
                    ["gc_start", ("write", 0x1008, 0, 0, 0), "mark_done"])
    with pytest.raises(DumpError, match="event 2: write into 0x1008, which is not the start of an object"):
        replay(h, "none")


def test_write_into_an_object_before_its_alloc_is_refused():
    h = with_events(tiny_heap([(0x1000, 16), (0x2000, 16)], roots=[0x1000]),
                    ["gc_start", ("write", 0x2000, 0, 0, 0x1000), ("alloc", 0x2000, 16), "mark_done"])
    with pytest.raises(DumpError, match="event 2: write into 0x2000: the object is allocated only at event 3"):
        replay(h, "none")


def test_write_into_an_unknown_root_is_refused():
    h = with_events(tiny_heap([(0x1000, 16)], roots=[0x1000]),
                    ["gc_start", ("write", 0, 0, 0, 0x1000, "nope"), "mark_done"])
    with pytest.raises(DumpError, match="event 2: write into root 'nope': no root of the dump has that name"):
        replay(h, "none")


def test_objects_allocated_during_the_mark_are_black_and_never_lost():
    # GIVEN g -> A; during the mark N is allocated and stored in A+0 (so N is reachable)
    h = with_events(tiny_heap([(0x1000, 16), (0x2000, 16)], ptrs=[(0, 0, 0x2000)], roots=[0x1000]),
                    ["gc_start", ("alloc", 0x2000, 16), ("write", 0x1000, 0, 0, 0x2000), "mark_done"])
    r = replay(h, "none")
    # THEN nothing is lost; N counts from its alloc on, born black
    assert r.lost.tolist() == [] and r.floating.tolist() == []
    assert r.black.tolist() == [1, 2, 2, 2] and r.white.tolist() == [0, 0, 0, 0]


def test_root_values_at_gc_start_are_restored_from_later_root_writes():
    # GIVEN the dump's root r0 -> B, but at gc_start it held A (event 2 stored B, old A)
    h = with_events(tiny_heap([(0x1000, 16), (0x2000, 16)], roots=[0x2000]),
                    ["gc_start", ("write", 0, 0, 0x1000, 0x2000, "r0"), "mark_done"],
                    root_kinds=["stack"])
    # THEN gc_start shaded A, not B: B is lost (stack store), A floats
    r = replay(h, "hybrid")
    assert r.lost.tolist() == [0x2000] and r.floating.tolist() == [0x1000]


def test_a_global_root_store_is_barriered():
    # Same as above with a global root: Dijkstra shades the stored B, Yuasa the overwritten A.
    h = with_events(tiny_heap([(0x1000, 16), (0x2000, 16)], roots=[0x2000]),
                    ["gc_start", ("write", 0, 0, 0x1000, 0x2000, "r0"), "mark_done"])
    assert replay(h, "dijkstra").lost.tolist() == [] and replay(h, "yuasa").lost.tolist() == [0x2000]


def test_no_mark_done_runs_to_the_end_of_the_log():
    h = with_events(tiny_heap([(0x1000, 16), (0x2000, 16)], ptrs=[(0, 0, 0x2000)], roots=[0x1000]),
                    ["gc_start", ("write", 0x1000, 8, 0, 0)])
    r = replay(h, "none")
    assert r.mark_done is None and r.lost.tolist() == []
    assert r.step_seq.tolist() == [1, 2] and r.black.tolist() == [1, 2]


def test_interior_root_resolves_to_its_object():
    h = with_events(tiny_heap([(0x1000, 16)], roots=[0x1008]), ["gc_start", "mark_done"])
    r = replay(h, "none")
    assert r.black.tolist() == [1, 1] and r.lost.tolist() == []


def test_writes_the_log_cannot_explain_are_counted():
    # The dump says A+0 -> B, but the only write says it stored nil there.
    h = with_events(tiny_heap([(0x1000, 16), (0x2000, 16)], ptrs=[(0, 0, 0x2000)], roots=[0x1000]),
                    ["gc_start", ("write", 0x1000, 0, 0x2000, 0), "mark_done"])
    assert replay(h, "none").unexplained_writes == 1


def test_lost_behind_a_lost_object_says_via():
    # GIVEN P -> C -> E at gc_start; the stack takes C, P drops it: E is lost through C.
    h = with_events(tiny_heap([(0x1000, 16), (0x2000, 16), (0x3000, 16), (0x4000, 16), (0x5000, 16)],
                              ptrs=[(0, 0, 0x2000), (1, 0, 0x3000), (3, 0, 0x5000)],
                              roots=[0x1000, 0x4000]),
                    ["gc_start", ("write", 0, 0, 0, 0x4000, "r1"), ("write", 0x3000, 0, 0x4000, 0), "mark_done"],
                    root_kinds=["global", "stack"])
    r = replay(h, "dijkstra")
    assert r.lost.tolist() == [0x4000, 0x5000]
    (via,) = r.hides[0x5000]
    assert (via.action, via.obj, via.off) == ("via", 0x4000, 0)


def test_unknown_mode_is_a_programming_error():
    with pytest.raises(ValueError):
        replay(tiny_heap([]), "steele")
    assert np.all(replay(tiny_heap([]), "none").lost == [])
