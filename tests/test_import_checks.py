"""`gctrace import go-heapdump` writes only dumps that `analyze` accepts, from a residency file that fits.

The command reads what it is about to write through the loader and refuses,
in one line, what the loader would refuse; and it refuses a residency file
of another moment or run, whose page runs call the pages holding objects
free or released (at one moment, a page holding an object is in a used span).
The importer's decoding is exercised with bit-flipped real heap dumps of
fixtures/go/mapheap (a Go 1.19 program).
"""

import bisect
import gzip
import json
import random

import pytest
from click.testing import CliRunner

from dumps import FIXTURES
from gctrace.analysis.load import load_dump
from gctrace.cli import main
from gctrace.tracer.goheap import goimport
from gctrace.tracer.goheap.gotypes import Binary

GO = FIXTURES / "go"
BINARY = GO / "mapheap" / "mapheap"
HEAPDUMPS = sorted((GO / "heapdumps").glob("*.heapdump.gz"))
CASES = 50


@pytest.fixture(scope="module")
def binary():
    b = Binary(BINARY)
    yield b
    b.close()


@pytest.fixture
def run_import(binary, monkeypatch):
    """run_import runs the CLI command in-process, the binary's DWARF read once for all runs."""
    real = goimport.import_heapdump
    monkeypatch.setattr(goimport, "import_heapdump", lambda dump, _binary, res=None: real(dump, binary, res))

    def run(heapdump, out, residency=None):
        args = ["import", "go-heapdump", str(heapdump), "--binary", str(BINARY), "-o", str(out)]
        return CliRunner().invoke(main, args + (["--residency", str(residency)] if residency else []))

    return run


def test_bit_flipped_heap_dumps_import_to_a_loadable_dump_or_are_refused_in_one_line(tmp_path, run_import):
    # GIVEN real heap dumps with 1 to 4 random bits flipped (seeded: the same cases every run)
    raws = [gzip.decompress(p.read_bytes()) for p in HEAPDUMPS]
    rng = random.Random(13)
    outcomes = {0: 0, 2: 0}
    for case in range(CASES):
        data = bytearray(raws[rng.randrange(len(raws))])
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        src, out = tmp_path / f"flip{case}.heapdump", tmp_path / f"flip{case}.json"
        src.write_bytes(bytes(data))
        r = run_import(src, out)
        # THEN each either imports to a dump that analyze's loader accepts...
        assert r.exit_code in (0, 2), (case, r.exception)
        outcomes[r.exit_code] += 1
        if r.exit_code == 0:
            assert load_dump(out).n_objects > 0
        # ...or is refused with one line, nothing written
        else:
            assert r.stderr.startswith("gctrace: ") and r.stderr.count("\n") == 1, (case, r.stderr)
            assert not out.exists()
    assert outcomes[0] > 0 and outcomes[2] > 0  # the sample holds both kinds


def object_pages(dump: dict, ps: int) -> set:
    pages = set()
    for o in dump["objects"]:
        p = o["addr"] - o["addr"] % ps
        while p < o["addr"] + o["size"]:
            pages.add(p)
            p += ps
    return pages


def off_used(pages: set, runs: list, ps: int) -> int:
    """off_used counts the pages that lie in no used run: the figure the command must name."""
    runs = sorted(runs, key=lambda r: r["addr"])
    starts = [r["addr"] for r in runs]
    off = 0
    for p in pages:
        k = bisect.bisect_right(starts, p) - 1
        off += k < 0 or p >= runs[k]["addr"] + runs[k]["n"] * ps or runs[k]["state"] != "used"
    return off


def test_a_residency_file_of_another_run_is_refused(tmp_path, run_import):
    heapdump = GO / "heapdumps" / "grow.heapdump.gz"
    other = GO / "heapdumps" / "free-dontneed.residency.json"
    out = tmp_path / "out.json"
    # GIVEN the pages the heap dump's objects touch (from an import without residency)
    assert run_import(heapdump, out).exit_code == 0
    pages = object_pages(json.loads(out.read_bytes()), 4096)
    out.unlink()
    res = json.loads(other.read_bytes())
    off = off_used(pages, res["pages"], res["page_size"])
    assert off > 0.1 * len(pages)
    # WHEN imported with another run's residency THEN it is refused, naming how many pages do not fit
    r = run_import(heapdump, out, other)
    assert r.exit_code == 2 and not out.exists()
    assert r.stderr == (f"gctrace: {other}: does not fit {heapdump}: {off} of the {len(pages)} pages holding objects "
                        "are free, released or missing in it (a residency file of another moment or run?)\n")


def test_the_matching_residency_file_is_accepted_silently(tmp_path, run_import):
    heapdump = GO / "heapdumps" / "grow.heapdump.gz"
    r = run_import(heapdump, tmp_path / "out.json", GO / "heapdumps" / "grow.residency.json")
    assert r.exit_code == 0 and "warning" not in r.stderr
    dump = json.loads((tmp_path / "out.json").read_bytes())
    assert dump["meta"]["pages_filled"] == 0 and dump["end"]["pages"] == len(dump["pages"])


def test_a_residency_file_that_differs_a_little_is_accepted_with_the_count_named(tmp_path, run_import):
    # GIVEN the matching residency file with one used run holding objects turned free
    heapdump = GO / "heapdumps" / "grow.heapdump.gz"
    res = json.loads((GO / "heapdumps" / "grow.residency.json").read_bytes())
    out = tmp_path / "out.json"
    assert run_import(heapdump, out).exit_code == 0
    pages = object_pages(json.loads(out.read_bytes()), res["page_size"])
    ps = res["page_size"]
    run = next(r for r in res["pages"] if r["state"] == "used"
               and 0 < sum(r["addr"] + k * ps in pages for k in range(r["n"])) <= 0.1 * len(pages))
    run["state"] = "free"
    off = off_used(pages, res["pages"], ps)
    edited = tmp_path / "edited.residency.json"
    edited.write_text(json.dumps(res))
    # WHEN imported THEN it is written, and a warning names the pages that do not fit
    r = run_import(heapdump, out, edited)
    assert r.exit_code == 0
    assert f"gctrace: {edited}: warning: {off} of the {len(pages)} pages holding objects are free, released " \
           "or missing in it (filled in as used and resident)\n" in r.stderr
