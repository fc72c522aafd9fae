"""report turns an Analysis into the JSON report of the spec and a text report for people.

Both are deterministic: sorted by address, no timestamps, no paths beyond the
dump's file name, so golden files compare byte for byte.
"""

from __future__ import annotations

import json
import os

import numpy as np

from .analyze import Analysis, Finding
from .barrier import Hide, Replay
from .pages import CLASSES

REPORT_FORMAT = "gctrace.report"
REPORT_VERSION = 2  # 2: flagged lists runs of pages ({addr, n, class}), not every page
DEFAULT_RUNS = 10
SWISS_FIX = "replace the map (m = make(map[K]V)) or drop it (m = nil) to release them"


def json_report(a: Analysis, barrier: Replay | None = None) -> dict:
    """json_report returns the spec's report (version 2); ``barrier`` adds its ``barrier`` key."""
    heap, reach, pc = a.heap, a.reachable, a.pages
    size = heap.obj_size
    retained = a.map_retained()
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "residency": "assumed" if pc.assumed else "measured",
        "objects": {
            "count": heap.n_objects,
            "bytes": int(size.sum()),
            "reachable": int(reach.sum()),
            "reachable_bytes": int(size[reach].sum()),
            "unreachable": int((~reach).sum()),
            "unreachable_bytes": int(size[~reach].sum()),
            "external_ptrs": a.marking.external_ptrs,
        },
        "pages": {
            "total": pc.total,
            **{c: pc.count(c) for c in CLASSES},
            "flagged": pc.flagged,
            "flagged_bytes": pc.flagged * pc.page_size,
        },
        # Runs, not pages: one 5M-page lazyfree run is one entry, not 327 MB of them.
        "flagged": [{"addr": first * pc.page_size, "n": n, "class": cls} for first, n, cls in pc.flagged_runs()],
        "maps": [map_json(m, retained[m.header.hmap], a.map_findings.get(m.header.hmap, [])) for m in a.maps],
        **({"notes": [finding_json(f) for f in a.notes]} if a.notes else {}),
        **({} if barrier is None else {"barrier": barrier_json(barrier)}),
        **({"warnings": warnings} if (warnings := report_warnings(a)) else {}),
    }


def finding_json(f: Finding) -> dict:
    """finding_json is one finding as the report's data: its code, then its facts."""
    return {"code": f.code, **f.facts}


def map_json(m, retained: int, findings: list[Finding]) -> dict:
    """map_json is one map's entry of the JSON report, for a classic (MapAudit) or a Swiss (SwissAudit) map."""
    h = m.header
    if h.impl == "swiss":
        return {
            "hmap": h.hmap,
            "impl": h.impl,
            **({"name": h.name} if h.name else {}),
            "reachable": m.reachable,
            "count": h.count,
            "capacity": m.capacity,
            "dir_len": h.dir_len,
            "tables": h.n_tables,
            "directory_bytes": m.directory_bytes,
            "tables_bytes": m.tables_bytes,
            "groups_bytes": m.groups_bytes,
            "tombstones": m.tombstones,
            "empty_slots": m.empty_slots,
            "empty_slot_bytes": m.empty_slot_bytes,
            "retained_bytes": retained,
            "findings": [finding_json(f) for f in findings],
        }
    return {
        "hmap": h.hmap,
        "impl": h.impl,
        "reachable": m.reachable,
        "B": h.B,
        "count": h.count,
        "growing": h.growing,
        "buckets_bytes": m.buckets_bytes,
        "oldbuckets_bytes": m.oldbuckets_bytes,
        "overflow_count": m.overflow_count,
        "overflow_bytes": m.overflow_bytes,
        "max_chain": m.max_chain,
        "empty_bucket_bytes": m.empty_bucket_bytes,
        "retained_bytes": retained,
        "findings": [finding_json(f) for f in findings],
    }


def report_warnings(a: Analysis) -> list[str]:
    """report_warnings returns what makes the whole report doubtful, one sentence each (none: a sound dump).

    A dump with no root that points into the heap has nothing reachable, so
    every object counts as garbage and every resident page is flagged: real
    programs always have roots, and a dump cut short (roots are written after
    the objects) looks exactly like this.
    """
    m, n = a.marking, len(a.heap.roots)
    if n - m.nil_roots - m.external_roots > 0:
        return []
    what = "the dump has no roots" if n == 0 else f"none of the dump's {n} roots points at an object"
    return [f"{what}: nothing is reachable, so every object counts as garbage "
            "(a dump cut short, or a producer that wrote no roots?)"]


def fmt_bytes(n: int | None) -> str:
    """fmt_bytes renders a byte count for people.

    >>> fmt_bytes(512), fmt_bytes(147456), fmt_bytes(3 << 30)
    ('512 B', '144 KiB', '3.0 GiB')
    """
    if n is None:
        return "unknown"
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return f"{v:.0f} {unit}" if v == int(v) and unit != "GiB" else f"{v:.1f} {unit}"
    return f"{n} B"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def describe_map_finding(f: Finding) -> str:
    """describe_map_finding says one map finding in plain words, with what to do."""
    x = f.facts
    if f.code == "unreachable_map":
        what = "directory, tables and groups" if x.get("impl") == "swiss" else "buckets"
        return (f"the map itself is unreachable: its {fmt_bytes(x['bytes'])} of {what} are garbage "
                "and the next GC cycle frees them")
    if f.code in ("tables_kept", "cleared_tables_kept"):
        held = (f"{_plural(x['tables'], 'table')} and {_plural(x['groups_arrays'], 'groups array')} "
                f"({fmt_bytes(x['bytes'])} with the directory) keep room for {x['capacity']} entries but hold "
                f"{x['count']}")
        why = (f"clear(m) ran (clear_seq {x['clear_seq']}) and keeps every table, only emptying its slots"
               if f.code == "cleared_tables_kept"
               else "Swiss tables never shrink, whether the room was made for entries since deleted "
                    "or asked for by a size hint (make(map[K]V, n))")
        return f"{held}: {why}; {SWISS_FIX}"
    if f.code == "tombstones":
        return (f"{_plural(x['count'], 'tombstone')} (deleted slots, {fmt_bytes(x['bytes'])}) take "
                f"{x['growth_room_lost']} inserts' worth of growth room: {x['growth_left']} inserts are left "
                "before a table must rehash, and a table reclaims tombstones only when it runs out of room "
                f"(pruning them or rehashing); {SWISS_FIX}")
    if f.code == "never_shrinks":
        return (f"the bucket array ({fmt_bytes(x['bytes'])}) is still live with {x['occupied']} of "
                f"{x['buckets']} buckets occupied, because Go maps never shrink; "
                "replace the map (m = make(map[K]V)) to release it")
    if f.code == "oldbuckets_pinned":
        kind = "same-size grow" if x["same_size"] else "doubling"
        return (f"oldbuckets ({fmt_bytes(x['bytes'])}) are pinned until evacuation completes "
                f"({x['evacuated']} of {x['old_buckets']} evacuated, {kind}); each write to the map "
                "evacuates up to two more buckets, and the first GC after that frees them")
    if f.code == "overflow_kept":
        stay = "stays" if x["count"] == 1 else "stay"
        entries = f"{x['entries']} entry" if x["entries"] == 1 else f"{x['entries']} entries"
        return (f"{_plural(x['count'], 'overflow bucket')} ({fmt_bytes(x['bytes'])}) {stay} on the chains for "
                f"{entries}: deleting keys never frees overflow buckets; only a same-size grow, "
                "a clear or a new map does")
    if f.code in ("overflow_garbage", "old_arrays_garbage"):
        what = "overflow bucket" if f.code == "overflow_garbage" else "old bucket array"
        return (f"{_plural(x['count'], what)} ({fmt_bytes(x['bytes'])}) {_are(x['count'])} unreachable garbage "
                f"until the next sweep (attributed to this map by {x['by']})")
    raise ValueError(f"unknown map finding {f.code}")


def map_state(m) -> str:
    """map_state is a map's shape in a few words: ``B=4, count 47, growing`` or ``16 tables, capacity ...``."""
    h = m.header
    if h.impl == "swiss":
        if h.small:
            return f"small map (one group, no table), capacity {m.capacity}, count {h.count}"
        return (f"{_plural(h.n_tables, 'table')}, capacity {m.capacity}, count {h.count}, "
                f"{_plural(m.tombstones, 'tombstone')}")
    state = ("growing, same-size" if h.same_size_grow else "growing") if h.growing else "not growing"
    return f"B={h.B}, count {h.count}, {state}"


def map_brief(m) -> str:
    """map_brief is a map's size for a list of maps: ``B=4, count 47`` or ``swiss, capacity 16, count 9``."""
    h = m.header
    if h.impl == "swiss":
        return f"swiss, capacity {m.capacity}, count {h.count}"
    return f"B={h.B}, count {h.count}"


def map_detail(m) -> str:
    """map_detail is the line of a map's bytes: its buckets and overflow, or its directory, tables and groups."""
    h = m.header
    if h.impl == "swiss":
        entries = "1 entry" if h.dir_len == 1 else f"{h.dir_len} entries"
        return (f"directory {fmt_bytes(m.directory_bytes)} ({entries}), "
                f"tables {fmt_bytes(m.tables_bytes)}, groups {fmt_bytes(m.groups_bytes)} "
                f"({_plural(m.groups_arrays, 'array')}), empty slots {m.empty_slots}, tombstones {m.tombstones} "
                f"({fmt_bytes(m.empty_slot_bytes)} of slots hold no entry), growth left {m.growth_left}")
    occ = "" if m.occupied_buckets is None else f" ({m.occupied_buckets} of {m.primary_buckets} occupied)"
    return (f"buckets {fmt_bytes(m.buckets_bytes)}{occ}, oldbuckets {fmt_bytes(m.oldbuckets_bytes)}, "
            f"overflow {m.overflow_count} ({fmt_bytes(m.overflow_bytes)}), longest chain {m.max_chain}, "
            f"empty buckets {fmt_bytes(m.empty_bucket_bytes)}")


def describe_note(f: Finding) -> str:
    """describe_note says one caveat about the dump itself in plain words."""
    x = f.facts
    if f.code == "roots_missing":
        who = x["go_version"] or "the Go runtime that wrote this dump"
        extra = f" (the producer says: {_clip_json(x['roots_missing'])})" if "roots_missing" in x else ""
        return (f"roots may be missing: {who} also keeps objects alive through runtime.AddCleanup closures and "
                f"weak-pointer handles, which heap dumps do not list{extra}; an object reachable only through "
                "them shows here as unreachable garbage")
    raise ValueError(f"unknown note {f.code}")


def _clip_json(v, n: int = 80) -> str:
    text = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return text if len(text) <= n else text[: n - 3] + "..."


def describe_heap_finding(f: Finding) -> str:
    """describe_heap_finding says one page-level finding in plain words."""
    x = f.facts
    if f.code == "lazyfree":
        how = {"free": "MADV_FREE", "dontneed": "MADV_DONTNEED"}.get(x["madvise"], "madvise")
        fix = ("GODEBUG=madvdontneed=1 (Go's default since 1.16) returns them eagerly" if x["madvise"] != "dontneed"
               else "the kernel reclaims them under memory pressure")
        return (f"{_plural(x['pages'], 'released page')} ({fmt_bytes(x['bytes'])}) {_are(x['pages'])} still resident under "
                f"{how}: RSS counts them until the kernel reclaims them; {fix}")
    if f.code == "idle":
        return (f"{_plural(x['pages'], 'free page')} ({fmt_bytes(x['bytes'])}) {_are(x['pages'])} idle in the allocator: "
                "never returned to the OS; the background scavenger returns them over time, "
                "debug.FreeOSMemory() at once")
    if f.code == "garbage":
        return (f"{_plural(x['pages'], 'page')} ({fmt_bytes(x['bytes'])}) {'holds' if x['pages'] == 1 else 'hold'} only unreachable objects: "
                "the next GC cycle's sweep frees them")
    if f.code == "orphan_buckets":
        return (f"{_plural(x['count'], 'unreachable bucket object')} ({fmt_bytes(x['bytes'])}) fit no single "
                f"map by size; {'it is' if x['count'] == 1 else 'they are'} garbage until the next sweep")
    if f.code == "untracked":
        return (f"{_plural(x['pages'], 'used page')} ({fmt_bytes(x['bytes'])}) {'holds' if x['pages'] == 1 else 'hold'} no object of the dump "
                "(stacks, runtime metadata): needed, not flagged")
    if f.code == "residency_assumed":
        return ("the dump has no pages: every page an object touches is assumed resident and used, "
                "so idle, lazyfree and nonresident memory cannot show")
    raise ValueError(f"unknown heap finding {f.code}")


def run_kinds(a: Analysis, first: int, n: int) -> str:
    """run_kinds lists the kinds of the objects touching pages [first, first+n), with counts.

    Objects are in address order, so their page spans (Analysis.object_pages,
    computed once) are sorted and two binary searches find the run's objects.
    """
    p0, p1 = a.object_pages
    lo = np.searchsorted(p1, first, side="right")
    hi = np.searchsorted(p0, first + n, side="left")
    if hi <= lo:
        return "no objects"
    codes, counts = np.unique(a.heap.obj_kind[lo:hi], return_counts=True)
    parts = sorted(((a.heap.kinds[c], int(k)) for c, k in zip(codes, counts)), key=lambda t: (-t[1], t[0]))
    return ", ".join(f"{kind} x{k}" for kind, k in parts)


def map_label(h) -> str:
    """map_label names a map for a person as the text report does: ``main.ints (0xc000072000)``, else its hmap.

    >>> from gctrace.analysis.model import MapHeader
    >>> map_label(MapHeader(0xc000072000, 0, 0, 0, 0, 0, 0, name="main.ints")), map_label(MapHeader(0x1000, 0, 0, 0, 0, 0, 0))
    ('main.ints (0xc000072000)', '0x1000')
    """
    return f"{h.name} ({h.hmap:#x})" if h.name else f"{h.hmap:#x}"


def text_report(a: Analysis, runs: int | None = DEFAULT_RUNS, barrier: Replay | None = None) -> str:
    """text_report renders the analysis for a person; ``runs=None`` lists every flagged run.

    Retained sizes (Analysis.map_retained) are asked for the maps the report
    describes only: the quiet ones never cost a re-mark.

    With ``barrier`` (a replay of the last mark) the Heap section counts its
    floating objects and a "Write barrier" section tells each lost object's story.
    """
    heap, reach, pc = a.heap, a.reachable, a.pages
    size = heap.obj_size
    ps = pc.page_size
    resident = pc.resident_pages
    warnings = report_warnings(a)
    lines = [f"gctrace analyze: {os.path.basename(heap.path)}",
             f"residency {'assumed (the dump has no pages)' if pc.assumed else 'measured'}, "
             f"page size {ps} B, source {heap.meta.get('source', 'unknown')}, "
             f"madvise {heap.meta.get('madvise') or 'unknown'}"
             + (f", stacks scanned {heap.meta['stacks'].split(':')[0]}" if heap.meta.get("stacks") else ""), "",
             *(f"WARNING: {w}" for w in warnings), *([""] if warnings else []),
             "Summary",
             f"  objects      {heap.n_objects} ({fmt_bytes(int(size.sum()))})",
             f"  reachable    {int(reach.sum())} ({fmt_bytes(int(size[reach].sum()))})",
             f"  unreachable  {int((~reach).sum())} ({fmt_bytes(int(size[~reach].sum()))})",
             f"  pointers     {_plural(len(heap.ptr_off), 'field')}, {a.marking.external_ptrs} external; "
             f"roots {len(heap.roots)} ({a.marking.nil_roots} nil, {a.marking.external_roots} external)",
             f"  pages        {pc.total} ({fmt_bytes(pc.total * ps)}): "
             + ", ".join(f"{c} {pc.count(c)}" for c in CLASSES),
             f"  flagged      {_plural(pc.flagged, 'page')} ({fmt_bytes(pc.flagged * ps)}) unreachable but resident, "
             f"{_pct(pc.flagged, resident)} of {fmt_bytes(resident * ps)} resident"]
    lines += [f"  note         {describe_note(f)}" for f in a.notes]
    lines += ["", "Maps"]
    if not a.maps:
        lines.append("  (the dump has no maps)")
    quiet = []
    loud = [m for m in a.maps if a.map_findings.get(m.header.hmap)]
    retained = a.map_retained(loud)
    for m in a.maps:
        h = m.header
        name = map_label(h)
        findings = a.map_findings.get(h.hmap, [])
        if not findings:
            quiet.append(m)
            continue
        # What dropping the map would free: its retained size (0 for a map that is garbage already).
        frees = f", retains {fmt_bytes(retained[h.hmap])}" if m.reachable else ""
        lines.append(f"  map {name}{' (swiss)' if h.impl == 'swiss' else ''}: "
                     f"{'reachable' if m.reachable else 'UNREACHABLE'}, {map_state(m)}{frees}")
        lines.append(f"    {map_detail(m)}")
        lines += [f"    - {describe_map_finding(f)}" for f in findings]
    if quiet:
        names = ", ".join(f"{m.header.name or hex(m.header.hmap)} ({map_brief(m)})" for m in quiet)
        lines.append(f"  {_plural(len(quiet), 'map')} with nothing to reclaim, live and in use: {names}")
    lines += ["", "Heap"]
    if not a.heap_findings and (barrier is None or not len(barrier.floating)):
        lines.append("  - every resident page is live or needed")
    lines += [f"  - {describe_heap_finding(f)}" for f in a.heap_findings]
    if barrier is not None and len(barrier.floating):
        lines.append(f"  - {describe_floating(barrier)}")
    flagged = pc.flagged_runs()
    order = sorted(flagged, key=lambda r: (-r[1], r[0]))
    shown = order if runs is None else order[:runs]
    head = ("every run" if runs is None or len(flagged) <= runs
            else f"the largest {len(shown)} shown; --all lists every run")
    if not flagged:
        lines += ["", "Flagged pages: none, every resident page is live or needed"]
    else:
        lines += ["", f"Flagged pages ({_plural(len(flagged), 'run')}, {head})"]
    for first, n, cls in sorted(shown):
        lines.append(f"  {first * ps:#x}-{(first + n) * ps:#x}  {_plural(n, 'page'):>10}  "
                     f"{fmt_bytes(n * ps):>9}  {cls:<8}  {run_kinds(a, first, n)}")
    if barrier is not None:
        lines += [""] + barrier_lines(barrier, heap, runs)
    return "\n".join(lines) + "\n"


def diff_text(d: dict, old_name: str, new_name: str, limit: int | None = 20) -> str:
    """diff_text renders a ``diff`` result for a person; ``limit=None`` lists every changed object."""
    lines = [f"gctrace diff: {old_name} -> {new_name}", "", "Pages (old -> new)"]
    for c, v in d["pages"].items():
        if v["old"] or v["new"]:
            lines.append(f"  {c:<12} {v['old']:>8} -> {v['new']:<8} ({v['delta']:+d})")
    fb = d["flagged_bytes"]
    lines.append(f"  flagged bytes {fmt_bytes(fb['old'])} -> {fmt_bytes(fb['new'])} ({fb['delta']:+d} B)")
    r = d["reachable"]
    lines += ["", f"Reachable objects {r['old']} -> {r['new']} ({r['delta']:+d})", "", "Maps"]
    if not d["maps"]:
        lines.append("  (no maps in either dump)")
    for m in d["maps"]:
        if m["old"] is None or m["new"] is None:
            side = m["old"] or m["new"]
            what = "only in the new dump" if m["old"] is None else "only in the old dump"
            first = next(k for k in side if k.endswith("_bytes"))
            lines.append(f"  map {m['hmap']:#x}: {what} ({first.replace('_bytes', '')} {fmt_bytes(side[first])})")
            continue
        parts = [f"{k.replace('_bytes', '')} {fmt_bytes(m['old'].get(k, 0))} -> {fmt_bytes(m['new'].get(k, 0))}"
                 for k in dict.fromkeys(list(m["old"]) + list(m["new"])) if k.endswith("_bytes")]
        lines.append(f"  map {m['hmap']:#x}: count {m['old']['count']} -> {m['new']['count']}; " + ", ".join(parts))
    objs = d["objects"]
    for key in ("appeared", "disappeared", "resized"):
        addrs = objs[key]
        shown = addrs if limit is None else addrs[:limit]
        more = "" if len(shown) == len(addrs) else f" (first {len(shown)}; --all lists every one)"
        lines += ["", f"Objects {key}: {len(addrs)}{more}"]
        lines += [f"  {x:#x}" for x in shown]
    return "\n".join(lines) + "\n"


# -- write-barrier replay ------------------------------------------------------

_BARRIER_NAMES = {"none": "no barrier", "dijkstra": "Dijkstra's barrier", "yuasa": "Yuasa's barrier",
                  "hybrid": "the hybrid barrier"}


def barrier_json(r: Replay) -> dict:
    """barrier_json is the report's ``barrier`` key: the spec's mode, lost and floating, and the mark's bounds."""
    return {"mode": r.mode, "mark_rate": r.mark_rate, "gc_start": r.gc_start, "mark_done": r.mark_done,
            "lost": [int(x) for x in r.lost], "floating": [int(x) for x in r.floating],
            "lost_bytes": r.lost_bytes, "floating_bytes": r.floating_bytes}


def describe_floating(r: Replay) -> str:
    """describe_floating says what the replay's floating objects cost, as a page-level finding."""
    n = len(r.floating)
    return (f"{_plural(n, 'floating object')} ({fmt_bytes(r.floating_bytes)}) {'was' if n == 1 else 'were'} "
            f"marked by the concurrent mark ({r.mode}) though unreachable at mark_done: the sweep keeps "
            f"{'it' if n == 1 else 'them'}, resident, until the next cycle frees {'it' if n == 1 else 'them'}")


def describe_hide(h: Hide, mode: str) -> str:
    """describe_hide says in words how one event hid a lost object from the marker under ``mode``."""
    if h.action == "via":
        return f"reachable only through the lost object {h.obj:#x} (field +{h.off}), so the marker never reached it"
    if h.root is not None:
        place = f"{h.root_kind} root {h.root}"
        if h.root_kind in ("stack", "register"):
            why = f"stores into {h.root_kind}s are not barriered and {h.root_kind}s are not rescanned"
        else:
            why = _unshaded(h.action, mode)
        verb = "stored into" if h.action == "stored" else "dropped from"
        return f"{verb} {place} at event {h.seq} ({why})"
    if h.allocated_black:
        state = "which was allocated black during the mark"
    elif h.scanned:
        state = "after the marker had scanned it"
    else:
        state = "before the marker scanned it"
    if h.action == "stored":
        return f"stored into {h.obj:#x}+{h.off} at event {h.seq}, {state} ({_unshaded(h.action, mode)})"
    return f"its heap pointer {h.obj:#x}+{h.off} was overwritten at event {h.seq} {state} ({_unshaded(h.action, mode)})"


def _unshaded(action: str, mode: str) -> str:
    if mode == "none":
        return "no barrier"
    which = "overwritten" if action == "stored" else "stored"
    return f"{_BARRIER_NAMES[mode]} shades only the {which} pointer"


def _listed(objs, limit: int | None, line) -> list[str]:
    """_listed renders up to ``limit`` objects, one indented line each, and says how many more there are."""
    shown = objs if limit is None else objs[:limit]
    more = [f"    ... and {len(objs) - len(shown)} more; --all lists every one"] if len(shown) < len(objs) else []
    return [f"    {line(x)}" for x in shown] + more


def barrier_lines(r: Replay, heap, limit: int | None = DEFAULT_RUNS) -> list[str]:
    """barrier_lines is the text report's "Write barrier" section: lost objects with their story, floating ones."""
    if not r.replayed:
        return [f"Write barrier ({r.mode}): nothing to replay, the event log has no gc_start"]
    end = f"event {r.mark_done}" if r.mark_done is not None else "the end of the log (no mark_done)"
    out = [f"Write barrier ({r.mode}, mark rate {r.mark_rate}): the mark from event {r.gc_start} to {end}, "
           f"{_plural(r.events_in_mark, 'event')} in between"]
    if r.mark_done is None:
        out.append("  - the log ends mid-mark: the mark is taken to terminate after its last event")
    if r.unexplained_writes:
        out.append(f"  - {_plural(r.unexplained_writes, 'write')} after gc_start overwrite a value other than "
                   "the one the field held: the log misses stores, so the replay may be off")
    idx = heap.find(np.concatenate([r.lost, r.floating]))
    label = {int(heap.obj_addr[i]): heap.object_label(int(i)) for i in idx}
    if not len(r.lost):
        out.append("  - nothing lost: every object reachable at mark_done was marked")
    else:
        out.append(f"  - LOST {_plural(len(r.lost), 'object')} ({fmt_bytes(r.lost_bytes)}): reachable at "
                   "mark_done but never marked, so the sweep would free live memory")
        def story(x):
            hides = r.hides.get(int(x))
            if hides is None:
                return f"not traced (the replay traces the stories of the first {len(r.hides)} lost objects)"
            return ", then ".join(describe_hide(h, r.mode) for h in hides) or "no event of the mark touched it"

        out += _listed(r.lost, limit, lambda x: f"{label[int(x)]}: {story(x)}")
    if not len(r.floating):
        out.append("  - nothing floating: every marked object was still reachable at mark_done")
    else:
        out.append(f"  - floating {_plural(len(r.floating), 'object')} ({fmt_bytes(r.floating_bytes)}): marked "
                   "though unreachable at mark_done, resident until the next cycle")
        out += _listed(r.floating, limit, lambda x: label[int(x)])
    return out


def why_text(a: Analysis, w) -> str:
    """why_text says how the object at ``w.addr`` is kept alive (a ``paths.Why``), path by path."""
    from .model import ROOT_KINDS

    heap = a.heap
    label = heap.object_label
    start = int(heap.obj_addr[w.obj])
    where = f"{w.addr:#x} is inside {label(w.obj)}" + (f" at +{w.addr - start:#x}" if w.addr != start else "")
    lines = [f"gctrace why: {w.addr:#x} in {os.path.basename(heap.path)}", ""]
    if not w.reachable:
        lines.append(f"{where}: UNREACHABLE. No chain of pointers leads to it from a root; "
                     "the next GC cycle frees it.")
        if not w.referrers:
            lines.append("Nothing points at it.")
        else:
            lines += ["", f"Still pointing at it ({_plural(len(w.referrers) + w.more_referrers, 'field')}, "
                          "all in unreachable objects):"]
            lines += [f"  {label(h.src)} [+{h.off:#x}] = {h.value:#x}" for h in w.referrers]
            if w.more_referrers:
                lines.append(f"  ... and {w.more_referrers} more")
            if w.garbage_entries:
                lines += ["", "Its garbage starts at (unreachable objects that nothing points at):"]
                lines += [f"  {label(i)}" for i in w.garbage_entries]
                if w.more_entries:
                    lines.append(f"  ... and {w.more_entries} more")
            else:
                lines += ["", "It hangs off an unreachable cycle that nothing outside points into."]
        return "\n".join(lines) + "\n"
    best = len(w.paths[0])
    lines.append(f"{where}: reachable, {_plural(best, 'pointer hop')} from its nearest root.")
    for k, (p, first) in enumerate(zip(w.paths, w.first_objects), 1):
        name, kind = heap.roots.name[p.root], ROOT_KINDS[heap.roots.kind[p.root]]
        lines += ["", f"path {k} ({_plural(len(p), 'hop')}):",
                  f"  root {name} ({kind}) = {int(heap.roots.target[p.root]):#x}"]
        for h in p.hops:
            lines.append(f"  {label(h.src)} [+{h.off:#x}] = {h.value:#x}")
        lines.append(f"  {label(p.objects[-1] if p.hops else first)}  <- here")
    return "\n".join(lines) + "\n"


def top_entries(a: Analysis, d, n: int) -> list[dict]:
    """top_entries lists the ``n`` objects retaining the most bytes (a ``dominators.Dominators``)."""
    heap = a.heap
    idx = d.top(n)
    idx = idx[d.retained[idx] > 0]
    hmaps = {m.header.hmap: m for m in a.maps}
    root_obj = heap.find(heap.roots.target) if len(heap.roots) else np.zeros(0, np.int64)
    out = []
    for i in idx:
        e = {"addr": int(heap.obj_addr[i]), "kind": heap.kinds[heap.obj_kind[i]], "size": int(heap.obj_size[i]),
             "retained_bytes": int(d.retained[i]), "map": int(heap.obj_addr[i]) in hmaps}
        if len(heap.obj_type) and heap.types[heap.obj_type[i]]:
            e["type"] = heap.types[heap.obj_type[i]]
        m = hmaps.get(e["addr"])
        if m is not None:
            h = m.header
            e.update(map_name=h.name, impl=h.impl, count=h.count, brief=map_brief(m))
            e.update({"B": h.B} if h.impl == "hmap" else {"capacity": m.capacity, "tables": len(h.tab_addr)})
        e["roots"] = [heap.roots.name[r] for r in np.flatnonzero(root_obj == i)[:3]]
        out.append(e)
    return out


def top_text(a: Analysis, entries: list[dict]) -> str:
    """top_text renders ``top_entries`` as a table for a person."""
    heap, reach = a.heap, a.reachable
    live = int(heap.obj_size[reach].sum())
    lines = [f"gctrace top: {os.path.basename(heap.path)}",
             f"objects retaining the most bytes: what the next GC would free if each became unreachable "
             f"(dominator tree from the roots; {int(reach.sum())} reachable objects, {fmt_bytes(live)})", "",
             f"  {'#':>3}  {'retained':>10}  {'of live':>7}  {'self':>9}  object"]
    for k, e in enumerate(entries, 1):
        what = (f"{e['kind']}, {e['type']}" if e.get("type") else e["kind"]) + ")"
        if e["map"]:
            what += f": map{' ' + e['map_name'] if e['map_name'] else ''}, {e['brief']}"
        if e["roots"]:
            what += ", root " + ", ".join(e["roots"])
        lines.append(f"  {k:>3}  {fmt_bytes(e['retained_bytes']):>10}  {_pct(e['retained_bytes'], live):>7}  "
                     f"{fmt_bytes(e['size']):>9}  {e['addr']:#x} ({what}")
    if not entries:
        lines.append("  (no reachable objects)")
    return "\n".join(lines) + "\n"


def why_page_text(a: Analysis, addr: int, run: int) -> str:
    """why_page_text explains an address inside no object: the class of its page and the run of pages around it.

    ``run`` is the index of the page run holding ``addr`` (PageClasses.run_at).
    """
    from .pagemap_svg import CLASS_MEANING
    from .pages import FLAGGED

    pc = a.pages
    ps = pc.page_size
    first, n, cls = int(pc.first[run]), int(pc.n[run]), CLASSES[pc.cls[run]]
    page = addr // ps
    lines = [f"gctrace why: {addr:#x} in {os.path.basename(a.heap.path)}", "",
             f"{addr:#x} is inside no object of the dump. It is on page {page * ps:#x}, "
             f"in a run of {_plural(n, f'{cls} page')}:",
             f"  {first * ps:#x}-{(first + n) * ps:#x}  {_plural(n, 'page'):>10}  {fmt_bytes(n * ps):>9}  "
             f"{cls:<8}  {run_kinds(a, first, n)}",
             "",
             f"{cls}: {CLASS_MEANING[cls]}."]
    if cls in FLAGGED:
        lines.append("It is flagged: unreachable but resident, so RSS counts it though no live object uses it.")
    lines += [describe_heap_finding(f) for f in a.heap_findings if f.code == cls]
    return "\n".join(lines) + "\n"
