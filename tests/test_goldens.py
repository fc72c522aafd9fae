"""Golden pairs: every fixture's text and JSON reports equal the committed ones.

Regenerate only on purpose: ``make goldens`` (GCTRACE_REGEN_GOLDENS=1), then
review the diff and say why in the commit.
"""

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumps import FIXTURES, ROOT
from gctrace.cli import main

CASES = sorted(p for p in FIXTURES.iterdir()
               if p.name.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")) and ".report." not in p.name)
REGEN = os.environ.get("GCTRACE_REGEN_GOLDENS") == "1"


def stem(p: Path) -> str:
    name = p.name
    for ext in (".jsonl.gz", ".json.gz", ".jsonl", ".json"):
        if name.endswith(ext):
            return name[: -len(ext)]
    raise AssertionError(name)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
@pytest.mark.parametrize("form", ["txt", "json"])
def test_report_matches_golden(path, form, monkeypatch):
    # Run from the repository root so the report names the fixture the same way everywhere.
    monkeypatch.chdir(ROOT)
    args = ["analyze", "--all", str(path.relative_to(ROOT))] + (["--json"] if form == "json" else [])
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    golden = path.with_name(f"{stem(path)}.report.{form}")
    if REGEN:
        golden.write_text(r.stdout)
    assert golden.exists(), f"no golden {golden.name}: run make goldens and review it"
    assert r.stdout == golden.read_text()


def test_every_golden_has_its_fixture():
    stems = {stem(p) for p in CASES}
    for g in FIXTURES.glob("*.report.*"):
        assert g.name.split(".report.")[0] in stems, f"stale golden {g.name}"
