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
        return
    directory = os.path.dirname(os.path.abspath(out))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".gctrace-")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, out)
    except OSError as e:
        raise UsageError(f"{out}: cannot write: {e.strerror or e}") from None


def _analyze(path: str, quiet: bool):
    from gctrace.analysis.analyze import analyze
    from gctrace.analysis.load import load_dump

    return analyze(load_dump(path, progress=_progress(quiet)))


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
def analyze_cmd(dump, as_json, show_all, runs, fail_on, output, quiet, barrier, mark_rate):
    """Mark DUMP from its roots, classify every page, explain each map's memory."""
    from gctrace.analysis.report import json_report, text_report

    threshold = parse_fail_on(fail_on)
    a = _analyze(dump, quiet)
    r = None
    if barrier is not None:
        from gctrace.analysis.barrier import replay

        r = replay(a.heap, barrier, mark_rate)
    _emit(_json(json_report(a, r)) if as_json else text_report(a, None if show_all else runs, r), output)
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
              help="How the scavenger returns pages (default: GODEBUG=madvdontneed=1 -> dontneed, else free).")
@click.option("--gc", "gc", type=click.Choice(["stw", "concurrent"]), default="stw", show_default=True)
@click.option("--barrier", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="The write barrier during a concurrent mark (off: for experiments).")
@click.option("--seed", default=1, show_default=True, help="Hash seed: same seed, same dump.")
@click.option("--at", "at", default=None, help="Dump at this named phase of the scenario.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def record_cmd(scenario, output, n, madvise, gc, barrier, seed, at, quiet):
    """Run SCENARIO on the native Go-style map and write its dump."""
    from gctrace.tracer.scenarios import record_scenario

    summary = record_scenario(scenario, output, n=n, madvise=madvise, gc=gc, seed=seed, at=at,
                              barrier=barrier == "on", progress=_progress(quiet))
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
    from gctrace.analysis.load import load_dump
    from gctrace.analysis.replay_svg import timeline_svg

    heap = load_dump(dump, progress=_progress(quiet))
    replays = [replay(heap, m, mark_rate) for m in dict.fromkeys(modes or BARRIER_MODES)]
    if not replays[0].replayed:
        raise UsageError(f"{dump}: nothing to replay: the event log has no gc_start")
    _emit(timeline_svg(replays, f"gctrace replay: {os.path.basename(dump)}"), output)
    for r in replays:
        click.echo(f"{r.mode}: {len(r.lost)} lost ({r.lost_bytes} B), "
                   f"{len(r.floating)} floating ({r.floating_bytes} B)", err=True)


main = cli  # the console script and CliRunner both call the group itself
