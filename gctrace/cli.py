"""cli is gctrace's face: the one module that prints, picks exit codes and imports both sides.

Exit status: 0 success, 1 a ``--fail-on`` threshold was crossed, 2 bad input
or usage (one line on stderr: ``gctrace: <file>: <problem>``, no traceback).
The tracer is imported lazily inside the commands that record, so analysis
works where no compiler ever ran.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager

import click
import orjson

from gctrace import __version__
from gctrace.errors import GctraceError, UsageError

BARRIER_MODES = ("none", "dijkstra", "yuasa", "hybrid")  # analysis.barrier.MODES, without importing numpy
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20, "mb": 1000**2,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1000**3, "gib": 1 << 30}


def parse_fail_on(spec: str | None) -> int | None:
    """parse_fail_on turns ``flagged[:BYTES]`` into a byte threshold (None: no check).

    >>> parse_fail_on("flagged"), parse_fail_on("flagged:64KiB"), parse_fail_on("flagged:4096")
    (0, 65536, 4096)
    """
    if spec is None:
        return None
    m = re.fullmatch(r"flagged(?::(\d+)\s*([a-zA-Z]*))?", spec.strip())
    if not m or (m.group(2) or "").lower() not in _UNITS:
        raise UsageError(f"--fail-on {spec!r}: expected flagged or flagged:BYTES (e.g. flagged:1MiB)")
    if m.group(1) is None:
        return 0
    return int(m.group(1)) * _UNITS[(m.group(2) or "").lower()]


def _progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _emit(text: str, out: str | None):
    """_emit writes the whole text to ``out`` atomically, or to stdout."""
    if out is None:
        click.echo(text, nl=False)
    else:
        _write_bytes(text.encode(), out)


def _write_bytes(data: bytes, out: str):
    """_write_bytes writes ``out`` whole or not at all (a temp file renamed into place)."""
    directory = os.path.dirname(os.path.abspath(out))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".gctrace-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a report is an ordinary file
        os.replace(tmp, out)
    except OSError as e:
        raise UsageError(f"{out}: cannot write: {e.strerror or e}") from None


def _warn_loaded(heap):
    """_warn_loaded prints what the loader found doubtful in the dump, one line each, on stderr."""
    for w in heap.warnings:
        click.echo(f"gctrace: {heap.path}: warning: {w}", err=True)


def _analyze(path: str, quiet: bool):
    from gctrace.analysis.analyze import STEPS, analyze
    from gctrace.analysis.heapcache import load_heap
    from gctrace.progress import bar

    show = _progress(quiet)
    heap = load_heap(path, progress=show)
    _warn_loaded(heap)
    with bar(len(STEPS), "analyze", show and heap.n_objects >= 1_000_000, unit="step") as pb:
        def on_step(name):
            pb.set_description(name)
            if name != STEPS[0]:
                pb.update(1)

        a = analyze(heap, on_step)
        pb.update(1)
    return a


@contextmanager
def _stage(desc: str, quiet: bool, heap):
    """_stage names a long step after the analysis (seconds on a 10M-object heap) on a terminal while it runs."""
    from gctrace.progress import bar

    with bar(1, desc, _progress(quiet) and heap.n_objects >= 1_000_000, unit="step") as pb:
        yield
        pb.update(1)


def _json(obj) -> str:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n"


class _Gctrace(click.Group):
    """_Gctrace is the command group that turns GctraceError into one line and exit 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GctraceError as e:
            click.echo(f"gctrace: {e}", err=True)
            ctx.exit(e.exit_code)
        except MemoryError:
            click.echo("gctrace: out of memory", err=True)
            ctx.exit(2)


@click.group(cls=_Gctrace, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gctrace")
def cli():
    """gctrace: why doesn't RSS drop after I empty my Go map? Page by page, with evidence."""


@cli.command("analyze")
@click.argument("dump", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report of the spec.")
@click.option("--all", "show_all", is_flag=True, help="List every flagged run, not only the largest.")
@click.option("--runs", default=10, show_default=True, help="How many flagged runs the text shows.")
@click.option("--fail-on", "fail_on", metavar="flagged[:BYTES]",
              help="Exit 1 when flagged bytes exceed BYTES (default 0).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report here.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--barrier", type=click.Choice(BARRIER_MODES), default=None,
              help="Replay the log's last concurrent mark with this write barrier: lost and floating objects.")
@click.option("--mark-rate", "mark_rate", type=click.IntRange(min=1), default=1, show_default=True,
              help="Grey objects the replayed marker scans after each event.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False),
              help="Also write one self-contained HTML page: summary, maps, graph, page map, flagged runs.")
def analyze_cmd(dump, as_json, show_all, runs, fail_on, output, quiet, barrier, mark_rate, html_out):
    """Mark DUMP from its roots, classify every page, explain each map's memory."""
    from gctrace.analysis.report import json_report, map_retained_bytes, text_report

    threshold = parse_fail_on(fail_on)
    a = _analyze(dump, quiet)
    r = None
    if barrier is not None:
        from gctrace.analysis.barrier import replay

        r = replay(a.heap, barrier, mark_rate)
    with _stage("report", quiet, a.heap):
        # Per-map retained sizes are re-marks: computed once when the HTML page and the text both show them.
        retained = map_retained_bytes(a) if html_out and not as_json else None
        report = json_report(a, r, retained) if as_json or html_out else None
        _emit(_json(report) if as_json else text_report(a, None if show_all else runs, r, retained), output)
    if html_out:
        with _stage("HTML page", quiet, a.heap):
            _emit(_html_page(a, report), html_out)
    flagged = a.pages.flagged * a.pages.page_size
    if threshold is not None and flagged > threshold:
        click.echo(f"gctrace: {dump}: flagged {flagged} B exceeds --fail-on {threshold} B", err=True)
        sys.exit(1)


@cli.command("diff")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
@click.option("--all", "show_all", is_flag=True, help="List every object that appeared or disappeared.")
@click.option("--fail-on", "fail_on", metavar="flagged[:BYTES]",
              help="Exit 1 when NEW's flagged bytes exceed OLD's by more than BYTES.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def diff_cmd(old, new, as_json, show_all, fail_on, quiet):
    """Compare two dumps: pages per class, bytes per map, reachable and changed objects."""
    from gctrace.analysis.diff import diff
    from gctrace.analysis.report import diff_text

    threshold = parse_fail_on(fail_on)
    d = diff(_analyze(old, quiet), _analyze(new, quiet))
    _emit(_json(d) if as_json else diff_text(d, os.path.basename(old), os.path.basename(new),
                                             None if show_all else 20), None)
    grew = d["flagged_bytes"]["delta"]
    if threshold is not None and grew > threshold:
        click.echo(f"gctrace: {new}: flagged bytes grew by {grew} B, over --fail-on {threshold} B", err=True)
        sys.exit(1)


@cli.command("record")
@click.argument("scenario")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Dump file (.json, .jsonl, optionally .gz).")
@click.option("--n", "n", default=10000, show_default=True, help="Number of keys.")
@click.option("--madvise", type=click.Choice(["free", "dontneed"]), default=None,
              help="How the scavenger returns pages (default as Go 1.19: dontneed; free under GODEBUG=madvdontneed=0).")
@click.option("--gc", "gc", type=click.Choice(["stw", "concurrent"]), default="stw", show_default=True)
@click.option("--barrier", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="The write barrier during a concurrent mark (off: for experiments).")
@click.option("--seed", default=1, show_default=True, help="Hash seed: same seed, same dump.")
@click.option("--at", "at", default=None, help="Dump at this named phase of the scenario.")
@click.option("--shape", type=click.Choice(["int64->*value", "int64->int64"]), default="int64->*value",
              show_default=True, help="The map: values behind pointers, or pointer-free buckets.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def record_cmd(scenario, output, n, madvise, gc, barrier, seed, at, shape, quiet):
    """Run SCENARIO (fill, fill-delete, clear, midgrow, churn) on the native Go-1.19 map and write its dump."""
    from gctrace.tracer.scenarios import record_scenario

    summary = record_scenario(scenario, output, n=n, madvise=madvise, gc=gc, seed=seed, at=at,
                              barrier=barrier == "on", progress=_progress(quiet), shape=shape)
    for k, v in summary.items():
        click.echo(f"{k}: {v}", err=True)


@cli.command("replay")
@click.argument("dump", type=click.Path(dir_okay=False))
@click.option("--barrier", "modes", multiple=True, type=click.Choice(BARRIER_MODES),
              help="A barrier mode to replay (repeat to overlay several; default: all four).")
@click.option("--mark-rate", "mark_rate", type=click.IntRange(min=1), default=1, show_default=True,
              help="Grey objects the replayed marker scans after each event.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The timeline SVG.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def replay_cmd(dump, modes, mark_rate, output, quiet):
    """Replay DUMP's last concurrent mark and plot white/grey/black objects per event as an SVG."""
    from gctrace.analysis.barrier import replay
    from gctrace.analysis.heapcache import load_heap
    from gctrace.analysis.replay_svg import timeline_svg

    heap = load_heap(dump, progress=_progress(quiet))
    _warn_loaded(heap)
    replays = [replay(heap, m, mark_rate) for m in dict.fromkeys(modes or BARRIER_MODES)]
    if not replays[0].replayed:
        raise UsageError(f"{dump}: nothing to replay: the event log has no gc_start")
    _emit(timeline_svg(replays, f"gctrace replay: {os.path.basename(dump)}"), output)
    for r in replays:
        click.echo(f"{r.mode}: {len(r.lost)} lost ({r.lost_bytes} B), "
                   f"{len(r.floating)} floating ({r.floating_bytes} B)", err=True)


def parse_addr(text: str) -> int:
    """parse_addr reads an address: 0x-prefixed or bare hex digits, or decimal.

    >>> parse_addr("0xc000000010"), parse_addr("4096"), parse_addr("c000000010")
    (824633720848, 4096, 824633720848)
    """
    t = text.strip().lower().replace("_", "")
    try:
        if t.startswith("0x"):
            return int(t, 16)
        if t.isdigit():
            return int(t)
        return int(t, 16)
    except ValueError:
        raise UsageError(f"{text!r} is not an address (hex like 0xc000010000, or decimal)") from None


def _html_page(a, report: dict) -> str:
    """_html_page renders the HTML report; without dot it keeps everything but the graph and says so."""
    from gctrace.analysis import render
    from gctrace.analysis.html import html_report
    from gctrace.analysis.pagemap_svg import pagemap_svg
    from gctrace.errors import MissingToolError

    svg, note = None, None
    try:
        svg = render.svg_fragment(render.to_bytes(render.build_graph(a), "svg"))
    except MissingToolError as e:
        note = f"graph left out: {e}"
        click.echo(f"gctrace: warning: {note}", err=True)
    return html_report(a, report, svg, note, pagemap_svg(a.pages, f"Page map: {os.path.basename(a.heap.path)}"))


@cli.command("render")
@click.argument("dump", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The picture: .svg, .png, .pdf (need graphviz's dot) or .dot (does not).")
@click.option("--cluster", type=click.Choice(["map", "page"]), default="map", show_default=True,
              help="Group objects by the map that holds them, or by page run (coloured by class).")
@click.option("--max-nodes", "max_nodes", type=click.IntRange(min=1), default=300, show_default=True,
              help="Hard bound on the nodes drawn; bigger heaps are summarised into counted groups.")
@click.option("--focus", metavar="ADDR", help="Draw only the neighbourhood of the object containing ADDR.")
@click.option("--depth", type=click.IntRange(min=0), default=2, show_default=True,
              help="With --focus: pointer hops, either direction.")
@click.option("--unreachable-only", "unreachable_only", is_flag=True, help="Draw unreachable objects only.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def render_cmd(dump, output, cluster, max_nodes, focus, depth, unreachable_only, quiet):
    """Draw DUMP's reachability graph: roots, maps, buckets, overflow, values; garbage in red."""
    from gctrace.analysis import render

    fmt = render.output_format(output)
    opts = render.RenderOptions(max_nodes=max_nodes, cluster=cluster, depth=depth,
                                focus=None if focus is None else parse_addr(focus),
                                unreachable_only=unreachable_only)
    a = _analyze(dump, quiet)
    with _stage("graph", quiet, a.heap):
        g = render.build_graph(a, opts)
        _write_bytes(render.to_bytes(g, fmt), output)
    click.echo(f"{output}: {g.node_count} nodes, {g.edge_count} edges; {g.shown_objects} objects drawn one by one, "
               f"{g.summarised_objects} summarised", err=True)


@cli.command("why")
@click.argument("dump", type=click.Path(dir_okay=False))
@click.argument("addr")
@click.option("-k", "k", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many shortest root paths to show.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Also draw the paths (.svg, .png, .pdf or .dot).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def why_cmd(dump, addr, k, output, quiet):
    """Why is ADDR alive? The shortest pointer chains from the roots to the object containing it.

    DUMP comes first, as in every other command: ``gctrace why heap.json
    0xc000123450``. ADDR is hex (0x prefix optional) or decimal and may point
    into the middle of an object. For an unreachable object it says so and
    lists what still points at it.
    """
    from gctrace.analysis import render
    from gctrace.analysis.paths import why
    from gctrace.analysis.report import why_text

    fmt = render.output_format(output) if output else None
    where = parse_addr(addr)
    a = _analyze(dump, quiet)
    with _stage("paths", quiet, a.heap):
        w = why(a.heap, a.marking, where, k)
    _emit(why_text(a, w), None)
    if output:
        _write_bytes(render.to_bytes(render.why_graph(a, w), fmt), output)


@cli.command("cache")
@click.option("--clear", "clear_all", is_flag=True, help="Delete every entry.")
def cache_cmd(clear_all):
    """Show the heap cache (parsed big dumps, kept so the next command skips the parse), or clear it."""
    import time

    from gctrace.analysis import heapcache
    from gctrace.analysis.report import fmt_bytes

    where = heapcache.cache_dir()
    if where is None:
        click.echo("heap cache: off (GCTRACE_CACHE=0)")
        return
    if clear_all:
        click.echo(f"heap cache: {where}: deleted {heapcache.clear()} entries")
        return
    entries = heapcache.list_entries()
    click.echo(f"heap cache: {where}: {len(entries)} of at most {heapcache.KEEP} entries, "
               f"{fmt_bytes(sum(e.bytes for e in entries))}; dumps of {heapcache.MIN_OBJECTS} objects or more "
               f"are kept")
    for e in entries:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.used)) if e.used else "?"
        objects = "?" if e.objects is None else e.objects
        click.echo(f"  {fmt_bytes(e.bytes):>10}  {objects:>10} objects  used {used}  {e.source}")


@cli.command("top")
@click.argument("dump", type=click.Path(dir_okay=False))
@click.option("-n", "n", type=click.IntRange(min=1), default=20, show_default=True, help="How many objects.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def top_cmd(dump, n, as_json, quiet):
    """List the objects of DUMP that retain the most bytes (dominator tree from the roots)."""
    from gctrace.analysis.dominators import heap_dominators
    from gctrace.analysis.report import top_entries, top_text

    a = _analyze(dump, quiet)
    with _stage("dominator tree", quiet, a.heap):
        entries = top_entries(a, heap_dominators(a.heap, a.marking), n)
    _emit(_json(entries) if as_json else top_text(a, entries), None)


@cli.group("import")
def import_group():
    """Turn dumps written by other tools into gctrace dumps."""


@import_group.command("go-heapdump")
@click.argument("heapdump", type=click.Path(dir_okay=False))
@click.option("--binary", required=True, type=click.Path(dir_okay=False),
              help="The Go executable that wrote HEAPDUMP (its symbols and DWARF type the heap).")
@click.option("--residency", type=click.Path(dir_okay=False), default=None,
              help="The residency file gctraceres wrote with the dump (else residency is assumed).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Dump file (.json, .jsonl, optionally .gz).")
def import_go_heapdump_cmd(heapdump, binary, residency, output):
    """Import a Go heap dump (runtime/debug.WriteHeapDump, gzip accepted) typed with DWARF."""
    from gctrace.tracer.goimport import import_heapdump, summary, write_dump

    _sniff_go_heapdump(heapdump)
    doc = import_heapdump(heapdump, binary, residency)
    warnings = _check_import(doc, heapdump, residency)
    write_dump(doc, output)
    for k, v in summary(doc).items():
        click.echo(f"{k}: {v}", err=True)
    for w in warnings:
        click.echo(f"gctrace: {residency}: warning: {w}", err=True)


GO_HEAPDUMP_MAGIC = b"go1.7 heap dump\n"  # runtime/heapdump.go: dumphdr
# A residency file fits a heap dump when (nearly) every page holding an object is in one of its used runs; a
# few may differ when the collector ran between the two snapshots, a tenth means another moment or process.
RESIDENCY_MISFIT = 0.10


def _sniff_go_heapdump(path):
    """_sniff_go_heapdump refuses at once a file that does not start as a Go heap dump does (/dev/zero, say)."""
    import gzip
    import zlib

    from gctrace.errors import DumpError

    try:
        with open(path, "rb") as f:
            head = f.read(len(GO_HEAPDUMP_MAGIC))
            if head[:2] == b"\x1f\x8b":
                f.seek(0)
                with gzip.GzipFile(fileobj=f) as z:
                    head = z.read(len(GO_HEAPDUMP_MAGIC))
    except (OSError, EOFError, zlib.error) as e:
        raise DumpError(path, f"cannot read: {getattr(e, 'strerror', None) or e}") from None
    if head != GO_HEAPDUMP_MAGIC:
        raise DumpError(path, f"not a Go heap dump: it starts with {head[:16]!r}, not {GO_HEAPDUMP_MAGIC!r} "
                              "(runtime/debug.WriteHeapDump)")


def _check_import(doc: dict, heapdump, residency) -> list[str]:
    """_check_import reads the imported dump through the loader before it is written; returns warnings.

    A dump that analyze would refuse is refused here, naming what the loader
    names; so is a residency file that does not fit the heap dump: runs
    outside its arena, or many pages holding objects that the file calls
    free, released or does not list (the importer fills those in as used).
    """
    from gctrace.analysis.load import load_document
    from gctrace.analysis.pages import pages_off_used_runs
    from gctrace.errors import DumpError

    try:
        heap = load_document(orjson.dumps(doc), str(heapdump))
    except DumpError as e:
        raise DumpError(heapdump, f"the import gives a dump that analyze refuses: {e.problem}") from None
    if residency is None or heap.pages is None:
        return []
    lo, hi = (doc["meta"].get("arena") or [None, None])[:2]
    ps = heap.page_size
    if isinstance(lo, int) and isinstance(hi, int) and len(heap.pages) and (
            heap.pages.first[0] * ps < lo or (heap.pages.first[-1] + heap.pages.n[-1]) * ps > hi):
        raise DumpError(residency, f"does not fit {heapdump}: its page runs reach outside the heap dump's arena "
                                   f"{lo:#x}-{hi:#x}")
    off, total = pages_off_used_runs(heap)
    off += doc["meta"].get("pages_filled") or 0
    if off > RESIDENCY_MISFIT * total:
        raise DumpError(residency, f"does not fit {heapdump}: {off} of the {total} pages holding objects are "
                                   "free, released or missing in it (a residency file of another moment or run?)")
    if off:
        return [f"{off} of the {total} pages holding objects are free, released or missing in it "
                "(filled in as used and resident)"]
    return []


@cli.command("record-go", context_settings={"ignore_unknown_options": True})
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Dump file (.json, .jsonl, optionally .gz).")
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Keep the raw heap dump and residency file in this directory.")
def record_go_cmd(argv, output, keep):
    """Run a Go program built with tracer/go/gctraceres (gctrace record-go -o d.json -- ./prog args) and import its dump."""
    from gctrace.tracer.goimport import record_go

    for k, v in record_go(list(argv), output, keep).items():
        click.echo(f"{k}: {v}", err=True)


main = cli  # the console script and CliRunner both call the group itself
