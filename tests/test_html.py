"""analyze --html: one self-contained page that a browser opens offline without console errors."""

import os
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from dumps import FIXTURES
from gctrace.cli import main

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
CASES = ["map_growing_prealloc.json", "page_states.json", "unreachable_cycle.json", "map_after_mapclear_lines.jsonl"]


def write_html(tmp_path, name):
    out = tmp_path / "report.html"
    r = CliRunner().invoke(main, ["analyze", str(FIXTURES / name), "--html", str(out)])
    assert r.exit_code == 0, r.output
    return out, r


@pytest.mark.parametrize("name", CASES)
def test_html_is_self_contained(tmp_path, name):
    out, r = write_html(tmp_path, name)
    assert "gctrace analyze:" in r.stdout  # the text report still goes to stdout
    html = out.read_text()
    for section in ('id="summary"', 'id="maps"', 'id="graph"', 'id="pagemap"', 'id="flagged"'):
        assert section in html
    assert html.count("<svg") >= 2  # the graph and the page map, inline
    assert re.search(r'id="heap(-|&#45;)graph"', html) and 'class="pagemap"' in html  # dot writes - as &#45;
    # nothing outside the file: no src/href to another resource, no URL but XML namespaces
    assert not re.search(r"<(script|img|link|iframe)[^>]*\s(src|href)=", html)
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert "Content-Security-Policy" in html


def test_html_without_dot_keeps_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    out, r = write_html(tmp_path, "map_unreachable.json")
    html = out.read_text()
    assert "graph left out" in html and "apt-get install graphviz" in html
    assert 'class="pagemap"' in html and "warning" in r.stderr


def chromium(args, tmp_path, timeout=90):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_html_opens_in_headless_chromium_without_console_errors(tmp_path):
    # GIVEN the report of a heap with garbage, flagged pages and maps
    out, _ = write_html(tmp_path, "map_after_mapclear.json")
    shot = tmp_path / "shot.png"
    # WHEN chromium loads it and takes a screenshot
    p = chromium([f"--screenshot={shot}", "--window-size=1200,2000", out.as_uri()], tmp_path)
    # THEN the screenshot exists and the page logged nothing: no script error, no CSP violation
    assert shot.exists() and shot.read_bytes().startswith(b"\x89PNG"), p.stderr[-2000:]
    console = [line for line in p.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    # and its script ran to the end
    dom = chromium(["--dump-dom", out.as_uri()], tmp_path)
    assert 'data-ready="1"' in dom.stdout, dom.stderr[-2000:]
    assert "<svg" in dom.stdout
