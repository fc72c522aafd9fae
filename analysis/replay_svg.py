"""replay_svg draws the timeline of replayed concurrent marks as a hand-written SVG.

Three panels share the event axis, one per colour of the tricolour
abstraction (white: not reached yet, grey: shaded and waiting to be scanned,
black: scanned or allocated black), and each barrier mode is one line in
every panel, so the modes overlay where they agree and part where a barrier
shades something the others do not. The legend gives each mode's lost and
floating counts. No plotting library: the output is a few hundred lines of
SVG text, deterministic (no timestamps, fixed number formatting), so it can
be diffed and checked into a report.

A million-event mark does not become a million SVG points: each line is
reduced to the minimum and maximum of every pixel column, which keeps the
envelope a reader sees at that width.
"""

from __future__ import annotations

from html import escape

import numpy as np

from .barrier import Replay

WIDTH, PANEL_H, GAP = 900, 170, 28
LEFT, RIGHT, TOP, BOTTOM = 70, 190, 40, 40
MODE_STYLE = {  # colour-blind safe (Okabe-Ito), plus dashes so print in grey still separates them
    "none": ("#d55e00", ""),
    "dijkstra": ("#0072b2", "6 3"),
    "yuasa": ("#009e73", "2 2"),
    "hybrid": ("#cc79a7", "10 3 2 3"),
}
PANELS = (("white", "white: not reached"), ("grey", "grey: waiting to be scanned"), ("black", "black: marked"))


def envelope(y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """envelope reduces a series to (x, y) points keeping each column's min and max, in order.

    >>> x, y = envelope(np.array([0, 5, 1, 1, 9, 2]), 2)
    >>> x.tolist(), y.tolist()
    ([0.0, 1.5, 3.0, 4.5], [0, 5, 1, 9])
    >>> envelope(np.array([3, 4]), 10)[1].tolist()
    [3, 4]
    """
    n = len(y)
    if n <= 2 * columns:
        return np.arange(n, dtype=float), y
    edges = np.linspace(0, n, columns + 1).astype(np.int64)
    lo = np.minimum.reduceat(y, edges[:-1])
    hi = np.maximum.reduceat(y, edges[:-1])
    amin = np.array([edges[i] + np.argmin(y[edges[i]:edges[i + 1]]) for i in range(columns)])
    amax = np.array([edges[i] + np.argmax(y[edges[i]:edges[i + 1]]) for i in range(columns)])
    first_is_min = amin <= amax
    ys = np.where(first_is_min[:, None], np.stack([lo, hi], 1), np.stack([hi, lo], 1)).ravel()
    xs = edges[:-1].repeat(2) + np.tile([0.0, 0.5], columns) * np.diff(edges).repeat(2)
    return xs.astype(float), ys


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """_ticks picks about ``n`` round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** np.floor(np.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = np.ceil(lo / step) * step
    return [float(v) for v in np.arange(first, hi + step / 2, step)]


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def timeline_svg(replays: list[Replay], title: str) -> str:
    """timeline_svg returns an SVG document plotting white/grey/black counts per event for each replay.

    Every replay must cover the same mark (same dump): their steps line up.

    >>> r = Replay("hybrid", 1, gc_start=1, mark_done=3, step_seq=np.array([1, 2, 3]),
    ...            grey=np.array([1, 1, 0]), black=np.array([1, 2, 3]), white=np.array([1, 0, 0]))
    >>> svg = timeline_svg([r], "t")
    >>> svg.startswith("<svg") and svg.count("<polyline") == 3 and "0 lost, 0 floating" in svg
    True
    """
    if not replays or not replays[0].replayed:
        raise ValueError("timeline_svg needs at least one replay of a mark")
    plot_w = WIDTH - LEFT - RIGHT
    height = TOP + len(PANELS) * PANEL_H + (len(PANELS) - 1) * GAP + BOTTOM
    seq = replays[0].step_seq
    n = len(seq)
    xmax = max(n - 1, 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
           f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>']
    for p, (key, label) in enumerate(PANELS):
        top = TOP + p * (PANEL_H + GAP)
        ymax = max(int(getattr(r, key).max()) if len(getattr(r, key)) else 0 for r in replays) or 1
        sx = lambda x: LEFT + plot_w * x / xmax  # noqa: E731
        sy = lambda y, top=top, ymax=ymax: top + PANEL_H - PANEL_H * y / ymax  # noqa: E731
        out.append(f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL_H}" fill="#f7f7f7" '
                   'stroke="#999999"/>')
        out.append(f'<text x="{LEFT + 6}" y="{top + 14}" fill="#333333">{escape(label)}</text>')
        for t in _ticks(0, ymax, 4):
            y = sy(t)
            out.append(f'<line x1="{LEFT - 4}" y1="{_num(y)}" x2="{LEFT + plot_w}" y2="{_num(y)}" '
                       'stroke="#dddddd"/>')
            out.append(f'<text x="{LEFT - 7}" y="{_num(y + 4)}" text-anchor="end">{int(t)}</text>')
        for r in replays:
            colour, dash = MODE_STYLE.get(r.mode, ("#000000", ""))
            xs, ys = envelope(getattr(r, key), plot_w)
            pts = " ".join(f"{_num(sx(x))},{_num(sy(y))}" for x, y in zip(xs, ys))
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6"{dash_attr} points="{pts}">'
                       f'<title>{escape(r.mode)} {key}</title></polyline>')
    bottom = TOP + len(PANELS) * PANEL_H + (len(PANELS) - 1) * GAP
    for t in _ticks(0, xmax, 6):
        x = LEFT + plot_w * t / xmax
        i = min(int(t), n - 1)
        out.append(f'<line x1="{_num(x)}" y1="{bottom}" x2="{_num(x)}" y2="{bottom + 4}" stroke="#666666"/>')
        out.append(f'<text x="{_num(x)}" y="{bottom + 16}" text-anchor="middle">{int(seq[i])}</text>')
    end = "mark_done" if replays[0].mark_done is not None else "end of log"
    out.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{bottom + 32}" text-anchor="middle">event seq '
               f'(gc_start {replays[0].gc_start} to {end}; mark rate {replays[0].mark_rate})</text>')
    lx = WIDTH - RIGHT + 14
    for k, r in enumerate(replays):
        colour, dash = MODE_STYLE.get(r.mode, ("#000000", ""))
        y = TOP + 10 + 34 * k
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{lx}" y1="{y}" x2="{lx + 24}" y2="{y}" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        out.append(f'<text x="{lx + 30}" y="{y + 4}" font-weight="bold">{escape(r.mode)}</text>')
        out.append(f'<text x="{lx + 30}" y="{y + 18}">{len(r.lost)} lost, {len(r.floating)} floating</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
