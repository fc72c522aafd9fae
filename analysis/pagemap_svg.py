"""pagemap_svg draws every page of the heap as a cell coloured by its class, in address order.

Hand-written SVG, no graphviz: the picture is a grid (64 cells a row), read
left to right and top to bottom like a hex dump. A thick dark bar marks
where a run of pages of one class begins; a red tick marks an address gap
(pages that are not part of the heap). Each run is one ``<g class="run
CLASS">`` with ``data-addr`` and ``data-pages``, so a program can read the
picture back. A heap of more than ``max_cells`` pages is drawn at k pages a
cell, each cell coloured by the class holding most of its pages (the title
says so); runs are then cut at cell boundaries.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import numpy as np

from .pages import CLASSES, FLAGGED, PageClasses

CLASS_COLORS = {
    "live": "#43a047",
    "garbage": "#e53935",
    "idle": "#fb8c00",
    "lazyfree": "#8e24aa",
    "untracked": "#90a4ae",
    "nonresident": "#e0e0e0",
}
CLASS_MEANING = {
    "live": "a reachable object touches it",
    "garbage": "resident, only unreachable objects (flagged)",
    "idle": "resident, free in the allocator (flagged)",
    "lazyfree": "resident, released with MADV_FREE (flagged)",
    "untracked": "resident, used, no object of the dump",
    "nonresident": "not resident",
}
COLUMNS = 64
CELL = 10
MAX_CELLS = 16384
LABEL_W = 110


def _fmt(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n} B"


def _segments(pc: PageClasses, k: int):
    """_segments returns (cell start, cell end, class code, first page, pages) of each drawn segment."""
    pos = np.concatenate([[0], np.cumsum(pc.n)])[:-1]
    if k == 1:
        return pos, pos + pc.n, pc.cls.astype(np.int64), pc.first, pc.n
    # k pages a cell: per class, pages of that class in each cell, from prefix sums over its runs.
    total = int(pc.n.sum())
    cells = -(-total // k)
    bounds = np.minimum(np.arange(cells + 1, dtype=np.int64) * k, total)
    cover = np.zeros((len(CLASSES), cells), np.int64)
    for c in range(len(CLASSES)):
        sel = pc.cls == c
        if not sel.any():
            continue
        s, n = pos[sel], pc.n[sel]
        before = np.concatenate([[0], np.cumsum(n)])
        i = np.searchsorted(s, bounds, side="right") - 1
        f = np.where(i >= 0, before[np.maximum(i, 0)] + np.minimum(bounds - s[np.maximum(i, 0)], n[np.maximum(i, 0)]), 0)
        cover[c] = np.diff(f)
    major = cover.argmax(axis=0)
    brk = np.flatnonzero(np.concatenate([[True], major[1:] != major[:-1]]))
    ends = np.concatenate([brk[1:], [cells]])
    page_at = lambda x: pc.first[np.searchsorted(pos, x, side="right") - 1] + x - pos[np.searchsorted(pos, x, side="right") - 1]  # noqa: E731
    first_pages = page_at(np.minimum(bounds[brk], total - 1))
    return brk, ends, major[brk], first_pages, bounds[ends] - bounds[brk]


def _rects(start: int, end: int, cols: int, x0: int, y0: int, cell: int):
    """_rects covers cells [start, end) of a row-major grid with at most three rectangles."""
    out = []
    r0, c0 = divmod(start, cols)
    r1, c1 = divmod(end, cols)
    if r0 == r1:
        out.append((c0, r0, c1 - c0, 1))
    else:
        out.append((c0, r0, cols - c0, 1))
        if r1 - r0 > 1:
            out.append((0, r0 + 1, cols, r1 - r0 - 1))
        if c1:
            out.append((0, r1, c1, 1))
    return [(x0 + c * cell, y0 + r * cell, w * cell, h * cell) for c, r, w, h in out if w and h]


def pagemap_svg(pc: PageClasses, title: str = "Page map", columns: int = COLUMNS, cell: int = CELL,
                max_cells: int = MAX_CELLS) -> str:
    """pagemap_svg returns a standalone SVG document picturing every page of the heap by class.

    >>> from gctrace.analysis.pages import PageClasses
    >>> pc = PageClasses(4096, np.array([16, 18]), np.array([2, 1]), np.array([0, 1], np.int8),
    ...                  np.array([True, True]), False)
    >>> svg = pagemap_svg(pc)
    >>> svg.count('<g class="run '), 'data-pages="2"' in svg
    (2, True)
    """
    ps = pc.page_size
    total = pc.total
    k = max(1, -(-total // max_cells))
    cells = -(-total // k) if total else 0
    rows = -(-cells // columns) if cells else 0
    x0, y0 = LABEL_W, 44
    grid_h = rows * cell
    legend_y = y0 + grid_h + 24
    height = legend_y + 20 * len(CLASSES) + 16
    width = x0 + columns * cell + 20
    scale = "1 cell = 1 page" if k == 1 else f"1 cell = {k} pages, coloured by the class holding most of them"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="pagemap" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<title>{escape(title)}</title>',
           '<defs><pattern id="pm-grid" width="{0}" height="{0}" patternUnits="userSpaceOnUse">'
           '<path d="M {0} 0 L 0 0 0 {0}" fill="none" stroke="#ffffff" stroke-width="1"/></pattern></defs>'
           .format(cell),
           f'<text x="4" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
           f'<text x="4" y="32">{total} pages of {ps} B ({_fmt(total * ps)}), address order; {scale}</text>']
    if not total:
        out.append(f'<text x="4" y="{y0 + 14}">the heap has no pages</text>')
    starts, ends, cls, first, npages = _segments(pc, k)
    pos = np.concatenate([[0], np.cumsum(pc.n)])[:-1]
    for s, e, c, f, n in zip(starts.tolist(), ends.tolist(), cls.tolist(), first.tolist(), npages.tolist()):
        name = CLASSES[c]
        flagged = " flagged" if name in FLAGGED else ""
        out.append(f'<g class="run {name}{flagged}" data-addr="{f * ps:#x}" data-pages="{n}">'
                   f'<title>{f * ps:#x}: {n} {name} page{"s" if n != 1 else ""} ({_fmt(n * ps)})</title>')
        for x, y, w, h in _rects(s, e, columns, x0, y0, cell):
            out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{CLASS_COLORS[name]}"/>')
        out.append('</g>')
    if cells:
        # The cell grid over the drawn area, then run starts and address gaps.
        for x, y, w, h in _rects(0, cells, columns, x0, y0, cell):
            out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="url(#pm-grid)"/>')
        gap = np.concatenate([[False], pc.first[1:] != pc.first[:-1] + pc.n[:-1]])
        marks = [(int(s), False) for s in starts[1:].tolist()]
        if k == 1:
            marks += [(int(p), True) for p in pos[gap].tolist()]
        for s, is_gap in marks:
            r, c = divmod(s, columns)
            x, y = x0 + c * cell, y0 + r * cell
            color, wide = ("#d50000", 3) if is_gap else ("#212121", 2)
            cls_attr = "gap" if is_gap else "boundary"
            out.append(f'<line class="{cls_attr}" x1="{x}" y1="{y - 1}" x2="{x}" y2="{y + cell + 1}" '
                       f'stroke="{color}" stroke-width="{wide}"/>')
        every = max(1, rows // 48)
        for r in range(0, rows, every):
            compact = r * columns * k
            i = int(np.searchsorted(pos, compact, side="right") - 1)
            page = int(pc.first[i] + compact - pos[i])
            out.append(f'<text x="{x0 - 6}" y="{y0 + r * cell + cell - 1}" text-anchor="end" '
                       f'font-family="monospace" font-size="9">{page * ps:#x}</text>')
    for j, name in enumerate(CLASSES):
        y = legend_y + 20 * j
        count = pc.count(name)
        out.append(f'<g class="legend {name}"><rect x="4" y="{y}" width="14" height="14" '
                   f'fill="{CLASS_COLORS[name]}" stroke="#616161"/>'
                   f'<text x="24" y="{y + 11}"><tspan font-weight="bold">{name}</tspan> {count} pages '
                   f'({_fmt(count * ps)}): {escape(CLASS_MEANING[name])}</text></g>')
    y = legend_y + 20 * len(CLASSES)
    out.append(f'<text x="4" y="{y + 8}" fill="#424242">dark bar: a run of one class begins; '
               'red bar: an address gap (pages outside the heap)</text>')
    out.append('</svg>')
    return "\n".join(out) + "\n"
