"""html renders the whole analysis as one self-contained HTML page.

Summary, each map's diagnosis, the reachability graph (inline SVG from
render), the page map (inline SVG from pagemap_svg) and the flagged runs, in
one file with its CSS and a few lines of script inline: no network, no
framework, nothing fetched. A Content-Security-Policy meta tag forbids every
outside resource, so a browser shows the page exactly as written, offline.
"""

from __future__ import annotations

import os
from html import escape

from .analyze import Analysis
from .pagemap_svg import CLASS_COLORS
from .pages import CLASSES, FLAGGED
from .report import (describe_heap_finding, describe_map_finding, describe_note, fmt_bytes, map_label, map_state,
                     run_kinds)

FLAGGED_ROWS = 500

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1em 2em; color: #212121; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: .2em .6em; border: 1px solid #ddd; }
th { background: #f5f5f5; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: .9em; height: .9em; vertical-align: middle; margin-right: .3em;
          border: 1px solid #777; }
.map { border: 1px solid #ccc; border-radius: 6px; padding: .4em 1em; margin: .6em 0; }
.map.unreachable { border-color: #e53935; }
.figure { overflow: auto; border: 1px solid #eee; max-height: 80vh; }
.note { color: #616161; }
code, .addr { font-family: ui-monospace, monospace; }
body.hide-reachable #heap-graph g.node.obj.reachable, body.hide-reachable #heap-graph g.node.group.reachable
  { opacity: .15; }
"""

SCRIPT = """
(function () {
  var box = document.getElementById('hide-reachable');
  if (box) {
    box.addEventListener('change', function () {
      document.body.classList.toggle('hide-reachable', box.checked);
    });
  }
  document.documentElement.setAttribute('data-ready', '1');
})();
"""


def _td(v, num=False) -> str:
    return f'<td class="num">{escape(str(v))}</td>' if num else f"<td>{escape(str(v))}</td>"


def reclaimable_bytes(findings) -> int:
    """reclaimable_bytes adds up the bytes a map's findings say could be given back."""
    return sum(int(f.facts.get("bytes", 0)) for f in findings)


def _map_state(m) -> str:
    """_map_state is the map's shape after its reachability: ``B=4, count 47, growing (same size)``."""
    h = m.header
    if h.impl == "swiss":
        return map_state(m)
    growing = (", growing" + (" (same size)" if h.same_size_grow else "")) if h.growing else ""
    return f"B={h.B}, count {h.count}{growing}"


def _map_columns(m) -> list[tuple[str, object]]:
    """_map_columns are the map's figures for its table: (heading, value) pairs."""
    if m.header.impl == "swiss":
        return [("directory", fmt_bytes(m.directory_bytes)), ("tables", fmt_bytes(m.tables_bytes)),
                ("groups", f"{m.groups_arrays} ({fmt_bytes(m.groups_bytes)})"), ("capacity", m.capacity),
                ("empty slots", m.empty_slots), ("tombstones", m.tombstones),
                ("slots holding no entry", fmt_bytes(m.empty_slot_bytes))]
    return [("buckets", fmt_bytes(m.buckets_bytes)), ("oldbuckets", fmt_bytes(m.oldbuckets_bytes)),
            ("overflow", f"{m.overflow_count} ({fmt_bytes(m.overflow_bytes)})"), ("longest chain", m.max_chain),
            ("empty buckets", fmt_bytes(m.empty_bucket_bytes))]


def html_report(a: Analysis, report: dict, graph_svg: str | None, graph_note: str | None, pagemap: str,
                title: str | None = None) -> str:
    """html_report returns the page: ``report`` is json_report's dict, the SVGs are inlined as given.

    ``graph_svg`` None leaves the graph out, with ``graph_note`` saying why
    (for instance that graphviz is not installed).
    """
    heap, pc = a.heap, a.pages
    ps = pc.page_size
    name = os.path.basename(heap.path)
    title = title or f"gctrace: {name}"
    o, p = report["objects"], report["pages"]
    out = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
           '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
           'style-src \'unsafe-inline\'; script-src \'unsafe-inline\'; img-src data:">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{escape(title)}</h1>",
           f'<p class="note">residency {escape(report["residency"])}, page size {ps} B, '
           f'source {escape(str(heap.meta.get("source", "unknown")))}, '
           f'madvise {escape(str(heap.meta.get("madvise") or "unknown"))}</p>',
           '<h2 id="summary">Summary</h2><table><tr><th></th><th>objects</th><th>bytes</th></tr>']
    for label, n, b in (("all", o["count"], o["bytes"]), ("reachable", o["reachable"], o["reachable_bytes"]),
                        ("unreachable", o["unreachable"], o["unreachable_bytes"])):
        out.append(f"<tr><th>{label}</th>{_td(n, True)}{_td(fmt_bytes(b), True)}</tr>")
    out.append(f"</table><p>{o['external_ptrs']} external pointer fields (counted, not followed).</p>")
    out += [f'<p class="note">{escape(describe_note(f))}</p>' for f in a.notes]
    out.append('<table><tr><th>page class</th><th>pages</th><th>bytes</th></tr>')
    for c in CLASSES:
        flag = " (flagged)" if c in FLAGGED else ""
        out.append(f'<tr class="pageclass {c}"><th><span class="swatch" style="background:{CLASS_COLORS[c]}">'
                   f'</span>{c}{flag}</th>{_td(p[c], True)}{_td(fmt_bytes(p[c] * ps), True)}</tr>')
    out.append(f'<tr><th>flagged: unreachable but resident</th>{_td(p["flagged"], True)}'
               f'{_td(fmt_bytes(p["flagged_bytes"]), True)}</tr></table>')

    out.append('<h2 id="maps">Maps</h2>')
    if not a.maps:
        out.append('<p class="note">The dump has no maps.</p>')
    by_hmap = {m["hmap"]: m for m in report["maps"]}
    # The maps with something to reclaim first, most reclaimable bytes first; the healthy ones collapsed below.
    loud = sorted((m for m in a.maps if a.map_findings.get(m.header.hmap)),
                  key=lambda m: (-reclaimable_bytes(a.map_findings[m.header.hmap]), m.header.hmap))
    quiet = [m for m in a.maps if not a.map_findings.get(m.header.hmap)]
    for m in loud:
        h = m.header
        r = by_hmap[h.hmap]
        state = "reachable" if m.reachable else "unreachable"
        label = (f'{escape(h.name)} <span class="addr">({h.hmap:#x})</span>' if h.name
                 else f'<span class="addr">{h.hmap:#x}</span>')
        out.append(f'<div class="map {state}" id="map-report-{h.hmap:#x}"><h3>map {label}'
                   f'{" (swiss)" if h.impl == "swiss" else ""}: '
                   f'{state.upper() if not m.reachable else state}, {escape(_map_state(m))}</h3>')
        cols = _map_columns(m) + [("dropping the map frees", fmt_bytes(r.get("retained_bytes", 0)))]
        out.append("<table><tr>" + "".join(f"<th>{escape(c)}</th>" for c, _ in cols) + "</tr><tr>"
                   + "".join(_td(v, True) for _, v in cols) + "</tr></table><ul>")
        out += [f"<li>{escape(describe_map_finding(f))}</li>" for f in a.map_findings[h.hmap]]
        out.append("</ul></div>")
    if quiet:
        out.append(f'<details class="quiet-maps"><summary>{len(quiet)} map{"s" if len(quiet) != 1 else ""} '
                   "with nothing to reclaim, live and in use</summary>"
                   "<table><tr><th>map</th><th>shape</th><th>memory</th></tr>")
        for m in quiet:
            h = m.header
            kept = m.bytes if h.impl == "swiss" else m.buckets_bytes
            out.append(f'<tr class="quiet-map" id="map-report-{h.hmap:#x}">{_td(map_label(h))}'
                       f"{_td(_map_state(m))}{_td(fmt_bytes(kept), True)}</tr>")
        out.append("</table></details>")
    out.append('<h2 id="heap">Heap</h2><ul>')
    if not a.heap_findings:
        out.append("<li>every resident page is live or needed</li>")
    out += [f"<li>{escape(describe_heap_finding(f))}</li>" for f in a.heap_findings]
    out.append("</ul>")

    out.append('<h2 id="graph">Reachability graph</h2>')
    if graph_note:
        out.append(f'<p class="note">{escape(graph_note)}</p>')
    if graph_svg is not None:
        out.append('<p><label><input type="checkbox" id="hide-reachable"> dim reachable objects</label></p>')
        out.append(f'<div class="figure">{graph_svg}</div>')
    out.append('<h2 id="pagemap">Page map</h2>')
    out.append(f'<div class="figure">{pagemap}</div>')

    runs = pc.flagged_runs()
    out.append(f'<h2 id="flagged">Flagged runs ({len(runs)})</h2>')
    if not runs:
        out.append('<p class="note">None: every resident page is live or needed.</p>')
    else:
        out.append("<table><tr><th>from</th><th>to</th><th>pages</th><th>bytes</th><th>class</th>"
                   "<th>objects</th></tr>")
        for first, n, cls in runs[:FLAGGED_ROWS]:
            out.append(f'<tr class="run {cls}"><td class="addr">{first * ps:#x}</td>'
                       f'<td class="addr">{(first + n) * ps:#x}</td>{_td(n, True)}{_td(fmt_bytes(n * ps), True)}'
                       f'<td><span class="swatch" style="background:{CLASS_COLORS[cls]}"></span>{cls}</td>'
                       f"{_td(run_kinds(a, first, n))}</tr>")
        out.append("</table>")
        if len(runs) > FLAGGED_ROWS:
            out.append(f'<p class="note">... and {len(runs) - FLAGGED_ROWS} more runs '
                       "(gctrace analyze --all lists every one).</p>")
    out.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(out) + "\n"
