"""cli is gctrace's face: the one module that prints, picks exit codes and imports both sides.

Exit status: 0 success, 1 a ``--fail-on`` threshold was crossed, 2 bad input
or usage (one line on stderr: ``gctrace: <file>: <problem>``, no traceback),
130 interrupted (Ctrl-C: ``gctrace: interrupted``, nothing written half-way).
Every file a command writes goes through gctrace.atomicfile.
The tracer is imported lazily inside the commands that record, so analysis
works where no compiler ever ran.
"""

from __future__ import annotations

import os
import re
import sys
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


def parse_size(option: str, spec: str | None) -> int:
    """parse_size turns a size such as ``1GiB``, ``512m`` or ``4096`` into bytes (0 when not given).

    >>> parse_size("--arena", "1GiB"), parse_size("--arena", "512m"), parse_size("--arena", None)
    (1073741824, 536870912, 0)
    """
    if spec is None:
        return 0
    m = re.fullmatch(r"(\d+)\s*([a-zA-Z]*)", spec.strip())
    if not m or m.group(2).lower() not in _UNITS or int(m.group(1)) == 0:
        raise UsageError(f"{option} {spec!r}: expected a size such as 1GiB, 512MiB or 4096")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def _progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _emit(text: str, out: str | None, inputs=()):
    """_emit writes the whole text to ``out`` (by atomicfile's rules), or to stdout."""
    if out is None:
        click.echo(text, nl=False)
    else:
        _write_bytes(text.encode(), out, inputs)


def _write_bytes(data: bytes, out: str, inputs=()):
    """_write_bytes writes ``out`` whole or not at all, and never onto one of ``inputs`` (gctrace.atomicfile)."""
    from gctrace import atomicfile

    atomicfile.write_bytes(out, data, inputs)


def _refuse_inputs(outputs, inputs):
    """_refuse_inputs stops a command before its work when one of its outputs is one of its inputs."""
    from gctrace import atomicfile

    for out in outputs:
        if out is not None:
            atomicfile.refuse_inputs(out, inputs)


def _warn_loaded(heap):
    """_warn_loaded prints what the loader found doubtful in the dump, one line each, on stderr."""
    for w in heap.warnings:
        click.echo(f"gctrace: {heap.path}: warning: {w}", err=True)


def _analyze(path: str, quiet: bool):
    from gctrace.analysis.analyze import STEPS, analyze
    from gctrace.analysis.load import load
    from gctrace.progress import bar

    show = _progress(quiet)
    heap = load(path, progress=show)
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


@contextmanager
def _import_steps(quiet: bool, output: str):
    """_import_steps names an import's two steps on a terminal; the parse and the DWARF reading inside the
    first show bars of their own (gctrace.progress.showing). It yields the call that starts the second."""
    from gctrace.progress import bar, showing

    show = _progress(quiet)
    with showing(show), bar(2, "importing: parse, DWARF, types, maps", show, unit="step") as pb:
        def writing():
            pb.update(1)
            pb.set_description(f"writing {os.path.basename(output)}")

        yield writing
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
        except KeyboardInterrupt:
            # 130 as a shell reports SIGINT; 1 would mean a --fail-on threshold was crossed.
            click.echo("gctrace: interrupted", err=True)
            ctx.exit(130)
        except MemoryError:
            click.echo("gctrace: out of memory", err=True)
            ctx.exit(2)


# The options several commands take, declared once.
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
dump_output_option = click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
                                  help="Dump file (.json, .jsonl, optionally .gz).")


@click.group(cls=_Gctrace, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gctrace")
def cli():
    """gctrace: why doesn't RSS drop after I empty my Go map? Page by page, with evidence.

    \b
    Workflow (a dump, then questions about it):
      gctrace record fill-delete --n 100000 --madvise free -o d.jsonl
                                           # or record-go, or import go-heapdump
      gctrace analyze d.jsonl              # maps, page classes, flagged runs
      gctrace analyze d.jsonl --html r.html  # the same as one page, with the graph
      gctrace why d.jsonl main.m           # root paths to a root's object, or to an ADDR
      gctrace top d.jsonl                  # the objects that retain the most
      gctrace render d.jsonl -o g.svg      # the reachability graph
      gctrace diff before.jsonl after.jsonl

    \b
    Exit status:
      0    success
      1    a --fail-on threshold was crossed (analyze, diff)
      2    bad input or usage: one line on stderr, gctrace: FILE: problem
      130  interrupted (Ctrl-C)
      143  terminated (SIGTERM) while snapshot had a process stopped (it was resumed)
    """


@cli.command("analyze")
@click.argument("dump", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report of the spec.")
@click.option("--all", "show_all", is_flag=True, help="List every flagged run, not only the largest.")
@click.option("--runs", default=10, show_default=True, help="How many flagged runs the text shows.")
@click.option("--fail-on", "fail_on", metavar="flagged[:BYTES]",
              help="Exit 1 when flagged bytes exceed BYTES (default 0).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report here.")
@quiet_option
@click.option("--barrier", type=click.Choice(BARRIER_MODES), default=None,
              help="Replay the log's last concurrent mark with this write barrier: lost and floating objects.")
@click.option("--mark-rate", "mark_rate", type=click.IntRange(min=1), default=1, show_default=True,
              help="Grey objects the replayed marker scans after each event.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False),
              help="Also write one self-contained HTML page: summary, maps, graph, page map, flagged runs.")
def analyze_cmd(dump, as_json, show_all, runs, fail_on, output, quiet, barrier, mark_rate, html_out):
    """Mark DUMP from its roots, classify every page, explain each map's memory.

    \b
    Examples:
      gctrace analyze d.jsonl
      gctrace analyze d.jsonl --json -o report.json --html report.html
      gctrace analyze d.jsonl --fail-on flagged:1MiB   # exit 1 above 1 MiB flagged
    """
    from gctrace.analysis.report import json_report, text_report

    threshold = parse_fail_on(fail_on)
    _refuse_inputs((output, html_out), (dump,))
    if output and html_out and output != "-" and os.path.realpath(output) == os.path.realpath(html_out):
        raise UsageError(f"{html_out}: is also the -o output: the page would replace the report")
    a = _analyze(dump, quiet)
    r = None
    if barrier is not None:
        from gctrace.analysis.barrier import replay

        r = replay(a.heap, barrier, mark_rate)
    with _stage("report", quiet, a.heap):
        # Per-map retained sizes are re-marks: the Analysis computes each once, whichever reporter asks first.
        report = json_report(a, r) if as_json or html_out else None
        _emit(_json(report) if as_json else text_report(a, None if show_all else runs, r), output,
              (dump,))
    if html_out:
        with _stage("HTML page", quiet, a.heap):
            _emit(_html_page(a, report), html_out, (dump,))
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
@quiet_option
def diff_cmd(old, new, as_json, show_all, fail_on, quiet):
    """Compare two dumps: pages per class, bytes per map, reachable and changed objects.

    \b
    Example:
      gctrace diff before.jsonl after.jsonl --fail-on flagged:64KiB
    """
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
@dump_output_option
@click.option("--n", "n", default=10000, show_default=True, help="Number of keys.")
@click.option("--madvise", type=click.Choice(["free", "dontneed"]), default=None,
              help="How the scavenger returns pages (default as Go 1.19: dontneed; free under GODEBUG=madvdontneed=0).")
@click.option("--gc", "gc", type=click.Choice(["stw", "concurrent"]), default="stw", show_default=True)
@click.option("--barrier", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="The write barrier during a concurrent mark (off: for experiments).")
@click.option("--seed", default=1, show_default=True, help="Hash seed: same seed, same dump.")
@click.option("--at", "at", default=None, metavar="PHASE",
              help="Dump at this phase (default end): filled; then deleted (fill-delete), cleared (clear), "
                   "growing (midgrow) or churned (churn); then mark_done, swept, end. "
                   "`gctrace replay` needs a concurrent mark not yet swept: --gc concurrent --at mark_done.")
@click.option("--shape", type=click.Choice(["int64->*value", "int64->int64"]), default="int64->*value",
              show_default=True, help="The map: values behind pointers, or pointer-free buckets.")
@click.option("--map", "impl", type=click.Choice(["classic", "swiss"]), default="classic", show_default=True,
              help="Go 1.19's classic hmap, or Go 1.24+'s Swiss-table map.")
@click.option("--arena", metavar="SIZE", default=None,
              help="Address space the tracer's heap reserves (default 8GiB); less under ulimit -v, e.g. 1GiB.")
@click.option("--no-events", "no_events", is_flag=True,
              help="Leave out the event log (most of a big dump); analyze, why, top and render do not need it, "
                   "replay and --barrier do.")
@quiet_option
def record_cmd(scenario, output, n, madvise, gc, barrier, seed, at, shape, impl, arena, no_events, quiet):
    """Run SCENARIO (fill, fill-delete, clear, midgrow, churn) on the native Go map and write its dump.

    \b
    Examples:
      gctrace record fill-delete --n 100000 --madvise free -o d.jsonl
      gctrace record fill-delete --map swiss --n 100000 -o swiss.jsonl
      gctrace record fill-delete --gc concurrent --at mark_done -o mark.jsonl  # for replay
      gctrace record fill-delete --n 2000000 --no-events -o big.jsonl.gz
    """
    from gctrace.tracer.native.scenarios import record_scenario

    arena_bytes = parse_size("--arena", arena)
    summary = record_scenario(scenario, output, n=n, madvise=madvise, gc=gc, seed=seed, at=at,
                              barrier=barrier == "on", progress=_progress(quiet), shape=shape,
                              impl=impl, arena_bytes=arena_bytes, record=not no_events)
    for k, v in summary.items():
        click.echo(f"{k}: {v}", err=True)


@cli.command("replay")
@click.argument("dump", type=click.Path(dir_okay=False))
@click.option("--barrier", "modes", multiple=True, type=click.Choice(BARRIER_MODES),
              help="A barrier mode to replay (repeat to overlay several; default: all four).")
@click.option("--mark-rate", "mark_rate", type=click.IntRange(min=1), default=1, show_default=True,
              help="Grey objects the replayed marker scans after each event.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The timeline SVG.")
@quiet_option
def replay_cmd(dump, modes, mark_rate, output, quiet):
    """Replay DUMP's last concurrent mark and plot white/grey/black objects per event as an SVG.

    DUMP must be taken before the sweep freed anything: record it with
    ``--gc concurrent --at mark_done``.

    \b
    Example:
      gctrace record fill-delete --gc concurrent --at mark_done -o mark.jsonl
      gctrace replay mark.jsonl --barrier none --barrier hybrid -o timeline.svg
    """
    from gctrace.analysis.barrier import replay
    from gctrace.analysis.load import load
    from gctrace.analysis.replay_svg import timeline_svg

    _refuse_inputs((output,), (dump,))
    heap = load(dump, progress=_progress(quiet))
    _warn_loaded(heap)
    replays = [replay(heap, m, mark_rate) for m in dict.fromkeys(modes or BARRIER_MODES)]
    if not replays[0].replayed:
        why = (": it was recorded with --no-events" if heap.meta.get("events_recorded") is False
               else "; record with --gc concurrent --at mark_done")
        raise UsageError(f"{dump}: nothing to replay: the event log has no gc_start{why}")
    _emit(timeline_svg(replays, f"gctrace replay: {os.path.basename(dump)}"), output, (dump,))
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


def _why_target(heap, text: str) -> int:
    """_why_target reads why's ADDR: the name of a root (its target), else an address."""
    names = heap.roots.name
    if text in names:
        target = int(heap.roots.target[names.index(text)])
        if target == 0:
            raise UsageError(f"{heap.path}: root {text} is nil: nothing to explain")
        return target
    try:
        return parse_addr(text)
    except UsageError:
        known = ", ".join(sorted(set(names))[:5]) + (", ..." if len(set(names)) > 5 else "")
        raise UsageError(f"{heap.path}: {text!r} is not an address (hex like 0xc000010000, or decimal) "
                         f"and not a root ({known or 'the dump has no roots'})") from None


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
@quiet_option
def render_cmd(dump, output, cluster, max_nodes, focus, depth, unreachable_only, quiet):
    """Draw DUMP's reachability graph: roots, maps, buckets, overflow, values; garbage in red.

    \b
    Examples:
      gctrace render d.jsonl -o graph.svg
      gctrace render d.jsonl -o garbage.svg --unreachable-only --cluster page
      gctrace render d.jsonl -o near.svg --focus 0xc000010000 --depth 1
    """
    from gctrace.analysis import render

    fmt = render.output_format(output)
    opts = render.RenderOptions(max_nodes=max_nodes, cluster=cluster, depth=depth,
                                focus=None if focus is None else parse_addr(focus),
                                unreachable_only=unreachable_only)
    _refuse_inputs((output,), (dump,))
    a = _analyze(dump, quiet)
    if unreachable_only and a.reachable.all():
        click.echo(f"gctrace: note: {dump}: every object is reachable, so --unreachable-only draws "
                   "no object, only the roots", err=True)
    with _stage("graph", quiet, a.heap):
        g = render.build_graph(a, opts)
        _write_bytes(render.to_bytes(g, fmt), output, (dump,))
    click.echo(f"{output}: {g.node_count} nodes, {g.edge_count} edges; {g.shown_objects} objects drawn one by one, "
               f"{g.summarised_objects} summarised", err=True)


@cli.command("why")
@click.argument("dump", type=click.Path(dir_okay=False))
@click.argument("addr", metavar="ADDR|ROOT")
@click.option("-k", "k", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many shortest root paths to show.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Also draw the paths (.svg, .png, .pdf or .dot).")
@quiet_option
def why_cmd(dump, addr, k, output, quiet):
    """Why is ADDR alive? The shortest pointer chains from the roots to the object containing it.

    DUMP comes first, as in every other command. ADDR is hex (0x prefix
    optional) or decimal and may point into the middle of an object, or the
    name of a root (main.cache: the object it points at). For an unreachable
    object it says so and lists what still points at it. For an address in no
    object (a page of the report's Flagged pages table) it gives the page's
    class and run.

    \b
    Examples:
      gctrace why d.jsonl 0xc000123450
      gctrace why d.jsonl main.cache -k 3 -o paths.svg
    """
    from gctrace.analysis import render
    from gctrace.analysis.paths import why
    from gctrace.analysis.report import why_page_text, why_text

    fmt = render.output_format(output) if output else None
    _refuse_inputs((output,), (dump,))
    a = _analyze(dump, quiet)
    where = _why_target(a.heap, addr)
    if a.heap.find([where])[0] < 0:
        run = a.pages.run_at(where // a.pages.page_size)
        if run < 0 or output:
            raise UsageError(f"{dump}: {where:#x} is inside no object of the dump"
                             + (" and on no page of it" if run < 0 else ": no paths to draw"))
        _emit(why_page_text(a, where, run), None)
        return
    with _stage("paths", quiet, a.heap):
        w = why(a.heap, a.marking, where, k)
    _emit(why_text(a, w), None)
    if output:
        _write_bytes(render.to_bytes(render.why_graph(a, w), fmt), output, (dump,))


@cli.command("cache")
@click.option("--clear", "clear_all", is_flag=True,
              help="Delete every entry gctrace made (nothing else in the cache directory is touched).")
def cache_cmd(clear_all):
    """Show the heap cache (parsed big dumps, kept so the next command skips the parse), or clear it.

    \b
    Examples:
      gctrace cache
      gctrace cache --clear
    """
    import time

    from gctrace.analysis import heapcache
    from gctrace.analysis.report import fmt_bytes

    where = heapcache.store_dir()
    if where is None:
        click.echo("heap cache: off (GCTRACE_CACHE=0)")
        return
    if clear_all:
        click.echo(f"heap cache: {where}: deleted {heapcache.clear()} entries")
        return
    entries = heapcache.list_entries()
    click.echo(f"heap cache: {where}: {len(entries)} of at most {heapcache.KEEP} entries, "
               f"{fmt_bytes(sum(e.bytes for e in entries))} of at most {fmt_bytes(heapcache.budget())} "
               f"($GCTRACE_CACHE_BYTES); dumps of {heapcache.MIN_OBJECTS} objects or more are kept")
    for e in entries:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.used)) if e.used else "?"
        objects = "?" if e.objects is None else e.objects
        click.echo(f"  {fmt_bytes(e.bytes):>10}  {objects:>10} objects  used {used}  {e.source}")


@cli.command("top")
@click.argument("dump", type=click.Path(dir_okay=False))
@click.option("-n", "n", type=click.IntRange(min=1), default=20, show_default=True, help="How many objects.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@quiet_option
def top_cmd(dump, n, as_json, quiet):
    """List the objects of DUMP that retain the most bytes (dominator tree from the roots).

    \b
    Example:
      gctrace top d.jsonl -n 10
    """
    from gctrace.analysis.dominators import heap_dominators
    from gctrace.analysis.report import top_entries, top_text

    a = _analyze(dump, quiet)
    with _stage("dominator tree", quiet, a.heap):
        entries = top_entries(a, heap_dominators(a.heap, a.marking), n)
    _emit(_json(entries) if as_json else top_text(a, entries), None)


@cli.group("import")
def import_group():
    """Turn dumps written by other tools into gctrace dumps.

    \b
    Example:
      gctrace import go-heapdump heap.dump --binary ./prog -o d.jsonl
    """


@import_group.command("go-heapdump")
@click.argument("heapdump", type=click.Path(dir_okay=False))
@click.option("--binary", required=True, type=click.Path(dir_okay=False),
              help="The Go executable that wrote HEAPDUMP (its symbols and DWARF type the heap).")
@click.option("--residency", type=click.Path(dir_okay=False), default=None,
              help="The residency file gctraceres wrote with the dump (else residency is assumed).")
@dump_output_option
@quiet_option
def import_go_heapdump_cmd(heapdump, binary, residency, output, quiet):
    """Import a Go heap dump (runtime/debug.WriteHeapDump, gzip accepted) typed with DWARF.

    \b
    Example:
      gctrace import go-heapdump heap.dump --binary ./prog --residency heap.res -o d.jsonl
    """
    from gctrace.tracer.goheap.goimport import import_heapdump, summary

    _import(lambda: import_heapdump(heapdump, binary, residency), summary, output, quiet,
            source=heapdump, inputs=(heapdump, binary, residency), residency=residency)


def _import(read, summarize, output: str, quiet: bool, *, source, inputs, residency=None):
    """_import runs one import (``read`` returns the dump), writes it checked to ``output`` and prints its summary.

    Every importer goes through here: no output is ever one of ``inputs``, and
    nothing reaches ``output`` that analyze would refuse (_write_checked_import).
    """
    _refuse_inputs((output,), inputs)
    with _import_steps(quiet, output) as next_step:
        held = [read()]  # the only reference, so the write can let the dump go before reading it back
        facts = summarize(held[0])
        next_step()
        warnings = _write_checked_import(held, output, inputs, source, residency)
    for k, v in facts.items():
        click.echo(f"{k}: {v}", err=True)
    for w in warnings:
        click.echo(f"gctrace: {residency}: warning: {w}", err=True)


# A residency file fits a heap dump when (nearly) every page holding an object is in one of its used runs; a
# few may differ when the collector ran between the two snapshots, a tenth means another moment or process.
RESIDENCY_MISFIT = 0.10


def _dump_suffix(output: str) -> str:
    """_dump_suffix is the part of ``output``'s name that picks the dump's form: .jsonl, .json, with .gz or not."""
    name = os.path.basename(output)
    for suffix in (".jsonl.gz", ".json.gz", ".jsonl", ".json"):
        if name.endswith(suffix):
            return suffix
    return ".gz" if name.endswith(".gz") else ""


def _write_checked_import(held: list, output: str, inputs, heapdump, residency) -> list[str]:
    """_write_checked_import writes the import to a scratch file, reads it back through the loader, then to ``output``.

    ``held`` is a list holding the dump, which it empties once the dump is
    written: the importer's arrays (gigabytes for a big heap) are let go
    before the loader reads the file back. Nothing reaches ``output`` unless
    analyze would accept it (_check_import); the scratch file lies beside a
    regular output (or in the temp directory for stdout, devices and FIFOs)
    and is removed on every path.
    """
    import gc
    import shutil

    from gctrace import atomicfile
    from gctrace.tracer.goheap.goimport import write_dump

    with atomicfile.scratch_path(atomicfile.scratch_dir(output), suffix=_dump_suffix(output)) as staged:
        write_dump(held[0], staged)
        meta = held.pop()["meta"]
        gc.collect()  # what cycles the import left go now too
        warnings = _check_import(staged, meta, heapdump, residency)
        with open(staged, "rb") as src, atomicfile.open_output(output, inputs) as out:
            shutil.copyfileobj(src, out, 1 << 20)
    return warnings


def _check_import(staged: str, meta: dict, heapdump, residency) -> list[str]:
    """_check_import reads the imported dump (written to ``staged``) through the loader; returns warnings.

    A dump that analyze would refuse is refused here, naming what the loader
    names; so is a residency file that does not fit the heap dump: runs
    outside its arena, or many pages holding objects that the file calls
    free, released or does not list (the importer fills those in as used).
    """
    from gctrace.analysis.load import load_dump
    from gctrace.analysis.pages import pages_off_used_runs
    from gctrace.errors import DumpError

    try:
        heap = load_dump(staged)
    except DumpError as e:
        raise DumpError(heapdump, f"the import gives a dump that analyze refuses: {e.problem}") from None
    if residency is None or heap.pages is None:
        return []
    lo, hi = (meta.get("arena") or [None, None])[:2]
    ps = heap.page_size
    if isinstance(lo, int) and isinstance(hi, int) and len(heap.pages) and (
            heap.pages.first[0] * ps < lo or (heap.pages.first[-1] + heap.pages.n[-1]) * ps > hi):
        raise DumpError(residency, f"does not fit {heapdump}: its page runs reach outside the heap dump's arena "
                                   f"{lo:#x}-{hi:#x}")
    off, total = pages_off_used_runs(heap)
    off += meta.get("pages_filled") or 0
    if off > RESIDENCY_MISFIT * total:
        raise DumpError(residency, f"does not fit {heapdump}: {off} of the {total} pages holding objects are "
                                   "free, released or missing in it (a residency file of another moment or run?)")
    if off:
        return [f"{off} of the {total} pages holding objects are free, released or missing in it "
                "(filled in as used and resident)"]
    return []


@import_group.command("go-snapshot")
@click.argument("snapshot", type=click.Path(dir_okay=False))
@click.option("--binary", required=True, type=click.Path(dir_okay=False),
              help="The Go executable the snapshot was taken of (its symbols and DWARF type the heap).")
@dump_output_option
@quiet_option
def import_go_snapshot_cmd(snapshot, binary, output, quiet):
    """Import a snapshot of `gctrace snapshot` typed with DWARF (stacks scanned conservatively).

    \b
    Example:
      gctrace import go-snapshot app.snap --binary ./app -o d.jsonl
    """
    from gctrace.tracer.goheap.gosnapshot import import_snapshot, import_summary

    _import(lambda: import_snapshot(snapshot, binary), import_summary, output, quiet,
            source=snapshot, inputs=(snapshot, binary))


@import_group.command("go-core")
@click.argument("core", type=click.Path(dir_okay=False))
@click.option("--binary", required=True, type=click.Path(dir_okay=False),
              help="The Go executable the core file is of (non-PIE linux/amd64, Go 1.22-1.27, with DWARF).")
@dump_output_option
@quiet_option
def import_go_core_cmd(core, binary, output, quiet):
    """Import a core file of a Go program (gcore, GOTRACEBACK=crash) typed with DWARF; residency is assumed.

    \b
    Example:
      gcore -o app.core 4242
      gctrace import go-core app.core.4242 --binary ./app -o d.jsonl
    """
    from gctrace.tracer.goheap.gosnapshot import import_core, import_summary

    _import(lambda: import_core(core, binary), import_summary, output, quiet,
            source=core, inputs=(core, binary))


@cli.command("snapshot")
@click.argument("pid", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Snapshot file (docs/snapshot-format.md); needed unless --analyze.")
@click.option("--analyze", "then_analyze", is_flag=True,
              help="Also import the snapshot with the process's executable and print the analysis.")
@click.option("--dump", type=click.Path(dir_okay=False), default=None,
              help="With --analyze: keep the imported dump here (.json, .jsonl, optionally .gz).")
@click.option("--low-memory", "low_memory", is_flag=True,
              help="Does nothing (kept so command lines that give it still run): the heap always streams to an "
                   "unlinked file beside SNAP while the target is stopped, so the tool's memory stays small.")
@quiet_option
def snapshot_cmd(pid, output, then_analyze, dump, low_memory, quiet):
    """Snapshot the heap of a running Go program (1.22+, linux/amd64) by PID, with no code change.

    The process is stopped (ptrace) while its runtime's structures, heap and
    page residency are read, then resumed, on every path. The heap streams to
    an unlinked file beside SNAP (the disk needs room for it, about the heap's
    size, until SNAP is written) and is compressed into SNAP after the resume.

    \b
    Examples:
      gctrace snapshot 4242 -o app.snap
      gctrace snapshot 4242 --analyze
    """
    import tempfile

    from gctrace.atomicfile import scratch_dir
    from gctrace.tracer.goheap.gosnapshot import capture, close_snapshot, import_snapshot, summary, write_snapshot

    if output is None and not then_analyze:
        raise UsageError("snapshot: give -o SNAP, or --analyze")
    _refuse_inputs((output, dump), ())
    with tempfile.TemporaryDirectory(prefix="gctrace-snap-") as tmp:
        path = output or os.path.join(tmp, "heap.snap")
        snap = capture(pid, scratch_dir(path))
        try:
            size = write_snapshot(snap, path)
        finally:
            close_snapshot(snap)
        for k, v in summary(snap, size).items():
            click.echo(f"{k}: {v}", err=True)
        if not then_analyze:
            return
        import shutil

        from gctrace import atomicfile
        from gctrace.analysis.report import text_report
        from gctrace.errors import DumpError
        from gctrace.tracer.goheap.goimport import write_dump

        exe = f"/proc/{pid}/exe"
        doc = import_snapshot(path, exe if os.path.exists(exe) else snap["header"]["exe"])
        staged = os.path.join(tmp, "heap" + (_dump_suffix(dump) if dump else ".jsonl"))
        write_dump(doc, staged, (path,))
        try:
            a = _analyze(staged, quiet)  # the dump is analyzed before --dump is written: nothing half-way
        except DumpError as e:
            raise DumpError(output or f"pid {pid}", f"the import gives a dump that analyze refuses: {e.problem}") \
                from None
        if dump:
            with open(staged, "rb") as src, atomicfile.open_output(dump, (path,)) as out:
                shutil.copyfileobj(src, out, 1 << 20)
        _emit(text_report(a, 10), None)


@cli.command("record-go", context_settings={"ignore_unknown_options": True})
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
@dump_output_option
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Keep the raw heap dump and residency file in this directory (refused if it already holds them).")
@quiet_option
def record_go_cmd(argv, output, keep, quiet):
    """Run a Go program built with tracer/goheap/gctraceres and import its dump.

    \b
    Example:
      gctrace record-go -o d.jsonl -- ./prog args
    """
    import shutil

    from gctrace.tracer.goheap.goimport import record_go, record_summary

    prog = argv[0]
    _import(lambda: record_go(list(argv), keep), record_summary, output, quiet, source=f"{prog}'s heap dump",
            inputs=(shutil.which(prog) or prog,), residency=f"{prog}'s residency file")


main = cli  # the console script and CliRunner both call the group itself
