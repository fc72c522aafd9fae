"""loadfactor measures the load-factor tables of both maps by counting probes in the tracer.

    python -m gctrace.tracer.native.loadfactor        # prints docs/load-factors.md's tables

(a) The classic map: the table at the top of Go 1.19's runtime/map.go
(loadFactor 4.0..8.0: %overflow, bytes/entry, hitprobe, missprobe), for
maximally loaded tables, i.e. just before the table grows. The tracer's
map is built with B fixed (make with a hint of loadFactor x 2^B, under
gm_set_load_factor) and filled to exactly loadFactor x 2^B entries, the
count after which the next insert would grow it. map.go's definitions:
%overflow = overflow buckets per 100 buckets, bytes/entry = overhead bytes a
key/elem pair (bucket bytes, overflow bucket bytes, minus the 16 of the pair
itself), hitprobe / missprobe = entries checked when looking up a present /
absent key.

(b) The Swiss map: a table of 1024 slots filled to 4/8 .. 7/8 (512 .. 896
entries; 896 is growthLeft 0, the next insert splits it): groups probed and
keys compared (H2 matches) per hit and per miss, bytes a entry (the live
heap of the map after a GC: Map, directory, table, groups array) and slots
used a group. And whole maps of 200,000 entries of both kinds.

(c) The classic map's bucket occupancy: primary buckets by the entries on
their chain (0..8, more than 8 = an overflow bucket) against a uniform
hash's prediction, Binomial(n, 2^-B).

The functions return rows (dicts); the format_* functions render them.
Nothing here asserts: tests/test_tracer_loadfactor.py does.
"""

from __future__ import annotations

import argparse
import math
from fractions import Fraction

import numpy as np

from gctrace.tracer.native.binding import Runtime

MAPGO_TABLE = {
    # loadFactor: (%overflow, bytes/entry, hitprobe, missprobe), from Go 1.19's runtime/map.go
    4.0: (2.13, 20.77, 3.00, 4.00),
    4.5: (4.05, 17.30, 3.25, 4.50),
    5.0: (6.85, 14.77, 3.50, 5.00),
    5.5: (10.55, 12.94, 3.75, 5.50),
    6.0: (15.27, 11.67, 4.00, 6.00),
    6.5: (20.90, 10.79, 4.25, 6.50),
    7.0: (27.14, 10.15, 4.50, 7.00),
    7.5: (34.03, 9.73, 4.75, 7.50),
    8.0: (41.10, 9.40, 5.00, 8.00),
}
"""MAPGO_TABLE is the measured table at the top of Go 1.19's runtime/map.go (64-bit, 8-byte keys and elems)."""

BUCKETSIZE = 144
PAIR = 16
SWISS_LOADS = (4, 5, 6, 7)
"""SWISS_LOADS are the Swiss table loads measured, in eighths of the slots."""


def _set_load_factor(rt, lf):
    f = Fraction(lf).limit_denominator(8)
    rt.set_load_factor(f.numerator, f.denominator)


def classic_rows(B=16, seeds=(1, 2)):
    """classic_rows measures map.go's table for loadFactor 4.0..8.0 on tables of 2^B buckets."""
    rows = []
    for lf in MAPGO_TABLE:
        n = int(lf * (1 << B))
        ovf = hit = miss = 0
        for seed in seeds:
            with Runtime(seed=seed, record=False, gogc=-1) as rt:
                _set_load_factor(rt, lf)
                m = rt.make_map("int64->int64", hint=n, root=None)
                m.assign_many(np.arange(n, dtype=np.int64))
                h = m.header()
                if h.B != B or h.count != n or h.oldbuckets:
                    raise RuntimeError(f"loadFactor {lf}: the map grew (B {h.B}, count {h.count})")
                ovf += m.occupancy()[1]
                hit += int(m.probes(np.arange(n, dtype=np.int64)).sum())
                miss += int(m.probes(np.arange(n, 2 * n, dtype=np.int64)).sum())
        k = len(seeds)
        nb = (1 << B) * k
        rows.append({
            "loadFactor": lf,
            "overflow_pct": 100 * ovf / nb,
            "bytes_per_entry": (nb + ovf) * BUCKETSIZE / (n * k) - PAIR,
            "hitprobe": hit / (n * k),
            "missprobe": miss / (n * k),
            "mapgo": MAPGO_TABLE[lf],
        })
    return rows


def swiss_rows(maps=64, seed=1):
    """swiss_rows measures Swiss tables of 1024 slots at loads 4/8..7/8 over maps tables each."""
    rows = []
    for eighths in SWISS_LOADS:
        n = 1024 * eighths // 8
        with Runtime(seed=seed, record=False, gogc=-1) as rt:
            hit_g = hit_c = miss_g = miss_c = 0
            used = np.zeros(9, dtype=np.int64)
            ms = []
            for i in range(maps):
                m = rt.make_map("int64->int64", impl="swiss", root=f"main.m{i}")
                keys = np.arange(n, dtype=np.int64) + i * (1 << 32)
                m.assign_many(keys)
                h = m.header()
                if (h.tables, h.capacity) != (1, 1024):
                    raise RuntimeError(f"load {eighths}/8: {h.tables} tables of {h.capacity} slots")
                g, c = m.probes(keys)
                hit_g, hit_c = hit_g + int(g.sum()), hit_c + int(c.sum())
                g, c = m.probes(keys + (1 << 31))
                miss_g, miss_c = miss_g + int(g.sum()), miss_c + int(c.sum())
                ms.append(m)
            rt.gc()
            live = rt.stats()["heap_live"]
            for m in ms:
                for full in _group_fulls(m):
                    used[full] += 1
        total = maps * n
        groups = used.sum()
        rows.append({
            "load": f"{eighths}/8",
            "entries": n,
            "hit_groups": hit_g / total,
            "miss_groups": miss_g / total,
            "hit_cmps": hit_c / total,
            "miss_cmps": miss_c / total,
            "bytes_per_entry": live / total,
            "overhead_per_entry": live / total - PAIR,
            "slots_per_group": float((used * np.arange(9)).sum() / groups),
            "full_groups_pct": 100 * used[8] / groups,
        })
    return rows


def _group_fulls(m):
    """_group_fulls yields the full slots of each group of a Swiss map's tables."""
    for t in m.tables():
        yield from m.group_ctrls(t)[:, 0].tolist()


def whole_map_rows(n=200_000, seed=1):
    """whole_map_rows fills one map of each kind with n entries: bytes per entry (live heap after a GC) and probes."""
    rows = []
    for impl in ("classic", "swiss"):
        with Runtime(seed=seed, record=False, gogc=-1) as rt:
            m = rt.make_map("int64->int64", impl=impl)
            keys = np.arange(n, dtype=np.int64)
            m.assign_many(keys)
            rt.gc()
            live = rt.stats()["heap_live"]
            h = m.header()
            if impl == "swiss":
                hit = m.probes(keys)[0].mean()
                miss = m.probes(keys + n)[0].mean()
                shape = f"{h.tables} tables, {h.capacity} slots, load {n / h.capacity:.3f}"
                unit = "groups"
            else:
                hit = m.probes(keys).mean()
                miss = m.probes(keys + n).mean()
                shape = f"B={h.B}, {n / (1 << h.B):.2f} entries a bucket"
                unit = "entries"
            rows.append({"map": impl, "n": n, "shape": shape, "bytes_per_entry": live / n,
                         "hitprobe": float(hit), "missprobe": float(miss), "probe_unit": unit})
    return rows


def occupancy_rows(lf=6.5, B=16, seed=1):
    """occupancy_rows counts primary buckets by chain entries at loadFactor lf, against Binomial(n, 2^-B)."""
    n = int(lf * (1 << B))
    with Runtime(seed=seed, record=False, gogc=-1) as rt:
        _set_load_factor(rt, lf)
        m = rt.make_map("int64->int64", hint=n, root=None)
        m.assign_many(np.arange(n, dtype=np.int64))
        if m.header().B != B:
            raise RuntimeError("the map grew")
        hist, novf = m.occupancy()
    nb = 1 << B
    p = 1.0 / nb
    binom = [math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(9)]
    poisson = [math.exp(-lf) * lf ** k / math.factorial(k) for k in range(9)]
    rows = []
    for k in range(10):
        b = binom[k] if k < 9 else 1 - sum(binom)
        q = poisson[k] if k < 9 else 1 - sum(poisson)
        rows.append({"entries": str(k) if k < 9 else ">8 (overflow)", "buckets": hist[k],
                     "measured_pct": 100 * hist[k] / nb, "binomial_pct": 100 * b, "poisson_pct": 100 * q})
    return rows, {"loadFactor": lf, "B": B, "n": n, "overflow_buckets": novf}


def format_classic(rows):
    """format_classic renders classic_rows as a markdown table beside map.go's figures."""
    out = ["| loadFactor | %overflow | bytes/entry | hitprobe | missprobe | map.go: %overflow, bytes/entry, hitprobe, missprobe |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        g = r["mapgo"]
        out.append(f"| {r['loadFactor']:.2f} | {r['overflow_pct']:.2f} | {r['bytes_per_entry']:.2f} | "
                   f"{r['hitprobe']:.2f} | {r['missprobe']:.2f} | {g[0]:.2f}, {g[1]:.2f}, {g[2]:.2f}, {g[3]:.2f} |")
    return "\n".join(out)


def format_swiss(rows):
    """format_swiss renders swiss_rows as a markdown table."""
    out = ["| load | entries | groups/hit | groups/miss | keys compared/hit | keys compared/miss | "
           "bytes/entry (overhead) | slots used/group | full groups |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['load']} | {r['entries']} | {r['hit_groups']:.3f} | {r['miss_groups']:.3f} | "
                   f"{r['hit_cmps']:.3f} | {r['miss_cmps']:.3f} | {r['bytes_per_entry']:.2f} "
                   f"({r['overhead_per_entry']:.2f}) | {r['slots_per_group']:.2f} | {r['full_groups_pct']:.1f}% |")
    return "\n".join(out)


def format_whole(rows):
    """format_whole renders whole_map_rows as a markdown table."""
    out = ["| map | entries | shape | bytes/entry | probes/hit | probes/miss |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['map']} | {r['n']:,} | {r['shape']} | {r['bytes_per_entry']:.2f} | "
                   f"{r['hitprobe']:.2f} {r['probe_unit']} | {r['missprobe']:.2f} {r['probe_unit']} |")
    return "\n".join(out)


def format_occupancy(rows, info):
    """format_occupancy renders occupancy_rows as a markdown table."""
    out = [f"loadFactor {info['loadFactor']}, B={info['B']} ({1 << info['B']} buckets), {info['n']} entries, "
           f"{info['overflow_buckets']} overflow buckets", "",
           "| entries on the chain | buckets | measured | Binomial(n, 2^-B) | Poisson(loadFactor) |",
           "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['entries']} | {r['buckets']} | {r['measured_pct']:.2f}% | {r['binomial_pct']:.2f}% | "
                   f"{r['poisson_pct']:.2f}% |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--B", type=int, default=16, help="log2 of the classic tables' bucket count")
    args = ap.parse_args(argv)
    print("(a) classic map (Go 1.19), maximally loaded tables of 2^%d buckets, 2 seeds\n" % args.B)
    print(format_classic(classic_rows(B=args.B)))
    print("\n(b) Swiss map (Go 1.26), one table of 1024 slots, 64 tables a row\n")
    print(format_swiss(swiss_rows()))
    print("\n    whole maps of 200,000 int64 -> int64 entries\n")
    print(format_whole(whole_map_rows()))
    for lf in (6.5, 3.25):
        print(f"\n(c) classic map bucket occupancy at loadFactor {lf}\n")
        print(format_occupancy(*occupancy_rows(lf=lf, B=args.B)))


if __name__ == "__main__":
    main()
