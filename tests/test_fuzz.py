"""Fuzz: mutated valid dumps always end with exit 0 or 2, never a traceback or a hang.

hypothesis mutates real fixtures: truncation, flipped bytes, values of the
wrong type, huge numbers, deep nesting, records deleted or duplicated. The
in-process run catches any exception that is not the CLI's own exit; the
slow-marked test does the same through a real process.
"""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dumps import FIXTURES
from gctrace.cli import main

SOURCES = [FIXTURES / n for n in ("map_growing_prealloc.json", "page_states.json", "interior_pointers.json",
                                  "map_same_size_growth.json", "swiss_cleared.json", "swiss_malloc_header.json",
                                  "swiss_small.json")]
WEIRD = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                  st.floats(allow_nan=False), st.text(max_size=5), st.just([]), st.just({}),
                  st.just([[[[[[1]]]]]]))


def paths(doc, prefix=()):
    """paths lists every (path, value) inside a JSON value."""
    out = [(prefix, doc)]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, prefix + (i,))
    return out


def set_at(doc, path, value):
    if not path:
        return value
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


@st.composite
def mutated(draw):
    src = draw(st.sampled_from(SOURCES)).read_text()
    how = draw(st.sampled_from(["truncate", "flip", "value", "nest", "drop", "dup"]))
    if how == "truncate":
        return src[: draw(st.integers(0, len(src)))].encode()
    if how == "flip":
        data = bytearray(src.encode())
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    doc = json.loads(src)
    where = paths(doc)
    path, _ = draw(st.sampled_from(where))
    if how == "value":
        doc = set_at(doc, path, draw(WEIRD))
    elif how == "nest":
        depth = draw(st.integers(1, 3000))
        marker = "@@nest@@"
        text = json.dumps(set_at(doc, path, marker))
        return text.replace(json.dumps(marker), "[" * depth + "]" * depth).encode()
    else:
        lists = [(p, v) for p, v in where if isinstance(v, list) and v]
        if lists:
            p, v = draw(st.sampled_from(lists))
            i = draw(st.integers(0, len(v) - 1))
            if how == "drop":
                del v[i]
            else:
                v.insert(i, json.loads(json.dumps(v[i])))
    return json.dumps(doc).encode()


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated(), as_json=st.booleans())
def test_mutated_dump_exits_0_or_2(tmp_path_factory, data, as_json):
    path = tmp_path_factory.mktemp("fuzz") / "dump.json"
    path.write_bytes(data)
    r = CliRunner().invoke(main, ["analyze", str(path)] + (["--json"] if as_json else []))
    assert isinstance(r.exception, (SystemExit, type(None))), repr(r.exception)
    assert r.exit_code in (0, 2), r.output
    if r.exit_code == 2:
        assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"gctrace: {path}: ")


@pytest.mark.slow
@settings(max_examples=60, deadline=20000)
@given(data=mutated())
def test_mutated_dump_in_a_real_process(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzzp") / "dump.json"
    path.write_bytes(data)
    r = subprocess.run([sys.executable, "-m", "gctrace", "analyze", str(path)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode in (0, 2) and "Traceback" not in r.stderr
