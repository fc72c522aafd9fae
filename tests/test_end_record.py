"""The end record (docs/dump-format.md, "end"): a cut dump is never analyzed silently.

A JSON Lines dump cut exactly at a line boundary is valid line by line; only
the producer's own count of what it wrote tells it from a whole one. Every
producer writes that count last, the loader compares it with what it read,
and a dump with no end record (older producers, hand-written fixtures) gets a
warning on stderr. A dump with no roots, what a dump cut before its roots
looks like, is called out in the report itself.
"""

import gzip
import json
import subprocess
import sys

import orjson
import pytest

from dumps import BASE, FIXTURES, dump_doc
from gctrace.analysis import fastparse
from gctrace.analysis.load import load_dump
from gctrace.errors import DumpError

GCTRACE = [sys.executable, "-m", "gctrace"]
OBJS = [{"addr": BASE, "size": 48, "ptrs": [[0, BASE + 64]]}, {"addr": BASE + 64, "size": 32}]
ROOTS = [{"name": "main.g", "kind": "global", "target": BASE}]
PAGES = [{"addr": BASE, "n": 1, "resident": True, "state": "used"}]
PARSERS = [pytest.param("1", id="C parser"), pytest.param("0", id="Python")]


def gctrace(*args, **kw):
    return subprocess.run(GCTRACE + [str(a) for a in args], capture_output=True, text=True, timeout=120, **kw)


def jsonl(doc, end=None) -> bytes:
    """jsonl writes a dump dict as JSON Lines, then ``end`` as its end record when given."""
    lines = [{"format": doc["format"], "version": doc["version"], "meta": doc["meta"]}]
    for section, one in (("objects", "object"), ("roots", "root"), ("pages", "page"), ("maps", "map"),
                         ("events", "event")):
        lines += [{one: r} for r in doc.get(section, ())]
    if end is not None:
        lines.append({"end": end})
    return b"".join(orjson.dumps(x) + b"\n" for x in lines)


def counts(doc) -> dict:
    return {s: len(doc.get(s, ())) for s in ("objects", "roots", "pages", "maps", "events")}


@pytest.fixture(params=PARSERS)
def parser(request, monkeypatch):
    if request.param == "1" and not fastparse.available():
        pytest.skip("the C parser is not built")
    monkeypatch.setenv("GCTRACE_FASTPARSE", request.param)


def test_a_whole_dump_with_its_end_record_loads_without_warning(tmp_path, parser):
    doc = dump_doc(OBJS, ROOTS, pages=PAGES)
    for name, data in (("d.jsonl", jsonl(doc, counts(doc))), ("d.json", orjson.dumps({**doc, "end": counts(doc)}))):
        path = tmp_path / name
        path.write_bytes(data)
        heap = load_dump(path)
        assert heap.n_objects == 2 and heap.warnings == ()


@pytest.mark.parametrize("section", ["objects", "roots", "pages", "maps", "events"])
def test_an_end_record_that_differs_from_the_dump_is_refused(tmp_path, parser, section):
    # GIVEN an end record that counts one record more than the dump holds, in one section
    doc = dump_doc(OBJS, ROOTS, pages=PAGES)
    end = counts(doc)
    end[section] += 1
    for name, data in (("d.jsonl", jsonl(doc, end)), ("d.json", orjson.dumps({**doc, "end": end}))):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DumpError) as e:
            load_dump(path)
        # THEN the loader names the section and both counts
        assert e.value.problem == (f"end record says {end[section]} {section}, the dump has {end[section] - 1}: "
                                   "cut or edited")


def test_every_cut_at_a_line_boundary_is_refused_or_warned_about(tmp_path):
    # GIVEN a recorded dump (the native tracer writes the end record) cut after each of its lines
    whole = tmp_path / "whole.jsonl"
    r = gctrace("record", "fill-delete", "--n", "300", "-o", whole, "--quiet")
    assert r.returncode == 0, r.stderr
    lines = whole.read_bytes().splitlines(keepends=True)
    assert orjson.loads(lines[-1])["end"]["objects"] > 0
    r = gctrace("analyze", whole)
    assert r.returncode == 0 and r.stderr == ""
    cut = tmp_path / "cut.jsonl"
    for k in sorted({1, 2, 3, len(lines) // 2, len(lines) - 2, len(lines) - 1}):
        cut.write_bytes(b"".join(lines[:k]))
        r = gctrace("analyze", cut)
        # THEN every one is refused or says, on stderr, that its end record is missing
        assert (r.returncode == 2 and r.stderr.count("\n") == 1) or (
            r.returncode == 0 and "warning: no end record" in r.stderr), (k, r.stderr)


def test_the_end_record_must_be_the_last_record(tmp_path, parser):
    doc = dump_doc(OBJS, ROOTS)
    data = jsonl(dump_doc(OBJS[:1], ROOTS), counts(dump_doc(OBJS[:1], ROOTS)))
    path = tmp_path / "d.jsonl"
    path.write_bytes(data + orjson.dumps({"object": doc["objects"][1]}) + b"\n")
    with pytest.raises(DumpError) as e:
        load_dump(path)
    assert e.value.problem == "line 4: the end record is not the last record"


def test_an_end_record_needs_every_count(tmp_path, parser):
    path = tmp_path / "d.jsonl"
    path.write_bytes(jsonl(dump_doc(OBJS, ROOTS), {"objects": 2, "roots": 1, "pages": 0, "maps": 0}))
    with pytest.raises(DumpError) as e:
        load_dump(path)
    assert e.value.problem == "line 5: missing required key 'events'"


def test_json_lines_without_an_end_record_load_with_one_warning(tmp_path, parser):
    path = tmp_path / "d.jsonl"
    path.write_bytes(jsonl(dump_doc(OBJS, ROOTS)))
    heap = load_dump(path)
    assert heap.n_objects == 2 and len(heap.warnings) == 1 and heap.warnings[0].startswith("no end record")
    # A document cannot be cut without breaking its JSON: no warning there.
    path = tmp_path / "d.json"
    path.write_text(json.dumps(dump_doc(OBJS, ROOTS)))
    assert load_dump(path).warnings == ()


@pytest.mark.parametrize("name", ["map_after_mapclear_lines.jsonl", "map_after_mapclear_lines_gz.jsonl.gz",
                                  "map_after_mapclear.json"])
def test_old_fixtures_keep_their_reports_and_warn_on_stderr_only(name):
    # GIVEN a fixture written before the end record WHEN analyzed THEN its golden report is unchanged
    r = gctrace("analyze", FIXTURES / name, "--json")
    base = name.split(".")[0]
    assert r.returncode == 0
    assert r.stdout == (FIXTURES / f"{base}.report.json").read_text()
    # AND only JSON Lines get the warning, as one line on stderr
    if ".jsonl" in name:
        assert r.stderr == f"gctrace: {FIXTURES / name}: warning: no end record: a JSON Lines dump cut at a line " \
                           "boundary would look the same (producers since gctrace 1.1 write one)\n"
    else:
        assert r.stderr == ""


def test_the_native_tracer_writes_the_end_record_in_both_forms(tmp_path):
    for name in ("d.json", "d.jsonl.gz"):
        path = tmp_path / name
        r = gctrace("record", "fill", "--n", "100", "-o", path, "--quiet")
        assert r.returncode == 0, r.stderr
        raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
        if name.endswith(".json"):
            doc = orjson.loads(raw)
            end = doc["end"]
            assert end == counts(doc)
        else:
            lines = [orjson.loads(x) for x in raw.splitlines()]
            end = lines[-1]["end"]
            seen = {s: sum(1 for x in lines if next(iter(x)) == s[:-1]) for s in end}
            assert end == seen
        assert end["objects"] > 100 and end["roots"] >= 1 and end["events"] > 0
        assert load_dump(path).warnings == ()


def test_the_go_importer_writer_ends_with_the_end_record(tmp_path):
    from gctrace.tracer.goheap.goimport import write_dump

    doc = dump_doc(OBJS, ROOTS, pages=PAGES, maps=[])
    for name in ("d.json", "d.jsonl", "d.jsonl.gz"):
        write_dump(doc, tmp_path / name)
        heap = load_dump(tmp_path / name)
        assert heap.n_objects == 2 and heap.warnings == ()
    assert orjson.loads((tmp_path / "d.jsonl").read_bytes().splitlines()[-1]) == {
        "end": {"objects": 2, "roots": 1, "pages": 1, "maps": 0, "events": 0}}


def test_a_dump_without_roots_is_called_out_in_both_reports(tmp_path):
    # GIVEN a dump cut before its roots: nothing reachable, every resident page flagged
    path = tmp_path / "noroots.json"
    path.write_text(json.dumps(dump_doc(OBJS, [], pages=PAGES)))
    text = gctrace("analyze", path)
    report = json.loads(gctrace("analyze", path, "--json").stdout)
    warning = ("the dump has no roots: nothing is reachable, so every object counts as garbage "
               "(a dump cut short, or a producer that wrote no roots?)")
    assert f"\nWARNING: {warning}\n" in text.stdout
    assert report["warnings"] == [warning]
    # AND roots that all miss the heap are called out too
    path.write_text(json.dumps(dump_doc(OBJS, [{"name": "nil", "kind": "stack", "target": 0}], pages=PAGES)))
    report = json.loads(gctrace("analyze", path, "--json").stdout)
    assert report["warnings"][0].startswith("none of the dump's 1 roots points at an object")
    # AND a sound dump's report has no warnings key (the goldens stay as they were)
    path.write_text(json.dumps(dump_doc(OBJS, ROOTS, pages=PAGES)))
    assert "warnings" not in json.loads(gctrace("analyze", path, "--json").stdout)
    assert "WARNING" not in gctrace("analyze", path).stdout
