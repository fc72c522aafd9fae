/*
 * record.c keeps the event log and writes dumps.
 *
 * Recording is an append of a 40-byte gmevent to an array; nothing is
 * formatted until gm_dump, so recording costs little more than the store
 * it describes. The dump writer formats straight into a 1 MiB buffer with
 * its own integer formatting (no printf in the loops).
 *
 * The format is gctrace dump version 1 (docs/dump-format.md, the only
 * contract with the analyzer): a JSON document, or JSON Lines where the first
 * line carries format, version and meta and every later line is one record
 * wrapped in its section's singular name. Records are written in a fixed
 * order (objects and pages by address, roots by registration, events by
 * seq) and meta holds nothing that depends on the run except the measured
 * figures it names as such (meta.measured), so two
 * runs of the same workload with the same seed write the same bytes apart
 * from those.
 *
 * What the writer adds beyond the spec's required keys, all inside records
 * or meta where the spec keeps and ignores unknown keys: an object's "type"
 * (its Go type), "noscan": true on pointer-free bucket objects (whose
 * overflow words are in "ptrs" but not scanned by the collector, see
 * tracer/README.md), "marked" when the dump is taken after mark_done and
 * before the sweep (the collector's verdict, to hold against the
 * analyzer's), and "size"/"kind" on free events.
 */
#include "runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void recordEvent(int op, int kind, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	if (gm.nevents == gm.capevents) {
		size_t n = gm.capevents ? 2 * gm.capevents : 65536;
		gmevent *e = realloc(gm.events, n * sizeof *e);
		if (e == NULL)
			gmthrow("out of memory: event log");
		gm.events = e;
		gm.capevents = n;
	}
	gmevent *e = &gm.events[gm.nevents++];
	e->op = (uint8_t)op;
	e->kind = (uint8_t)kind;
	e->root = 0;
	e->pad = 0;
	e->a = a;
	e->b = b;
	e->c = c;
	e->d = d;
}

/* --- the writer ---------------------------------------------------------- */

typedef struct writer {
	FILE *f;
	char *buf;
	size_t n, cap;
	int err;
	bool jsonl;
	bool first; /* no record yet in the current JSON section */
	uint64_t records[5]; /* written so far, by section: see recordBegin and writeEnd */
} writer;

/* wfail keeps the first write error as its errno (ENOSPC says "No space left on device", not EIO). */
static void wfail(writer *w)
{
	if (w->err == 0)
		w->err = errno != 0 ? -errno : -EIO;
}

static void wflush(writer *w)
{
	if (w->n > 0 && fwrite(w->buf, 1, w->n, w->f) != w->n)
		wfail(w);
	w->n = 0;
}

static inline void wreserve(writer *w, size_t k)
{
	if (w->n + k > w->cap)
		wflush(w);
}

static void ws(writer *w, const char *s)
{
	size_t k = strlen(s);
	if (k > w->cap / 2) {
		wflush(w);
		if (fwrite(s, 1, k, w->f) != k)
			wfail(w);
		return;
	}
	wreserve(w, k);
	memcpy(w->buf + w->n, s, k);
	w->n += k;
}

static void wu(writer *w, uint64_t v)
{
	char tmp[24];
	int i = 24;
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	wreserve(w, 24);
	memcpy(w->buf + w->n, tmp + i, (size_t)(24 - i));
	w->n += (size_t)(24 - i);
}

static void wi(writer *w, int64_t v)
{
	if (v < 0) {
		ws(w, "-");
		wu(w, (uint64_t)0 - (uint64_t)v);
	} else {
		wu(w, (uint64_t)v);
	}
}

/* wq writes s as a JSON string. */
static void wq(writer *w, const char *s)
{
	wreserve(w, 3 + 6 * strlen(s));
	char *o = w->buf + w->n;
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			*o++ = '\\';
			*o++ = (char)*p;
		} else if (*p < 0x20) {
			o += sprintf(o, "\\u%04x", *p);
		} else {
			*o++ = (char)*p;
		}
	}
	*o++ = '"';
	w->n = (size_t)(o - w->buf);
}

/* wkey writes "key": before a value, preceded by a comma unless first. */
static void wkey(writer *w, const char *key, bool first)
{
	if (!first)
		ws(w, ", ");
	wq(w, key);
	ws(w, ": ");
}

static void wkvu(writer *w, const char *key, uint64_t v)
{
	wkey(w, key, false);
	wu(w, v);
}

static void wkvs(writer *w, const char *key, const char *v)
{
	wkey(w, key, false);
	wq(w, v);
}

static void sectionBegin(writer *w, const char *plural)
{
	if (!w->jsonl) {
		ws(w, ",\n");
		wq(w, plural);
		ws(w, ": [");
	}
	w->first = true;
}

/* The sections in the end record's order; a record's singular name is told by its first letter. */
static const char *const sectionNames[5] = {"objects", "roots", "pages", "maps", "events"};

static void recordBegin(writer *w, const char *singular)
{
	for (int k = 0; k < 5; k++)
		if (sectionNames[k][0] == singular[0])
			w->records[k]++;
	if (w->jsonl) {
		ws(w, "{");
		wq(w, singular);
		ws(w, ": {");
	} else {
		ws(w, w->first ? "\n{" : ",\n{");
	}
	w->first = false;
}

static void recordEnd(writer *w)
{
	ws(w, w->jsonl ? "}}\n" : "}");
}

static void sectionEnd(writer *w)
{
	if (!w->jsonl)
		ws(w, w->first ? "]" : "\n]");
}

/* --- sections ------------------------------------------------------------ */

static const char *phaseName(int p)
{
	return p == GM_PHASE_MARK ? "mark" : p == GM_PHASE_MARKDONE ? "mark_done" : "off";
}

static const char *adviceName(int a)
{
	return a == GM_ADVISE_FREE ? "free" : "dontneed";
}

static void writeMeta(writer *w, const char *extra)
{
	uint64_t rss_kb = 0, lazy_kb = 0;
	gm_smaps_arena(&rss_kb, &lazy_kb);
	ws(w, "{\"page_size\": ");
	wu(w, (uint64_t)sysconf(_SC_PAGESIZE));
	wkvu(w, "ptr_size", PtrSize);
	wkvs(w, "source", "gcmap");
	wkvs(w, "madvise", adviceName(gm.advice));
	wkvs(w, "tracer_version", GM_VERSION);
	wkvs(w, "runtime_model", "go1.19");
	wkvu(w, "runtime_page_size", _PageSize);
	wkvu(w, "arena", gm.arena);
	wkey(w, "arena_fixed", false);
	ws(w, gm.arena_fixed ? "true" : "false");
	wkvu(w, "heap_pages", gm.hwm);
	wkvu(w, "seed", gm.cfg.seed);
	wkvs(w, "gc", gm.cfg.gcmode == GM_GC_CONCURRENT ? "concurrent" : "stw");
	wkey(w, "barrier", false);
	ws(w, gm.cfg.barrier ? "true" : "false");
	wkey(w, "gogc", false);
	wi(w, gm.cfg.gogc);
	wkvs(w, "gc_phase", phaseName(gm.gcphase));
	wkvu(w, "gc_cycles", gm.gc_cycles);
	wkvu(w, "heap_live", gm.heap_live);
	wkey(w, "events_recorded", false);
	ws(w, gm.cfg.record ? "true" : "false");
	uint64_t present = 0;
	gm_pagemap_present(gm.arena, gm.hwm << _PageShift, &present);
	wkvs(w, "measured", "rss arena_rss_kb arena_lazyfree_kb arena_pagemap_present");
	wkvu(w, "rss", processRSS());
	wkvu(w, "arena_rss_kb", rss_kb);
	wkvu(w, "arena_lazyfree_kb", lazy_kb);
	wkvu(w, "arena_pagemap_present", present);
	if (extra != NULL && extra[0] != '\0') {
		ws(w, ", ");
		ws(w, extra);
	}
	ws(w, "}");
}

static bool isBucketType(int t)
{
	return t == T_BUCKETS_I64 || t == T_OVERFLOW_I64 || t == T_BUCKETS_PTR || t == T_OVERFLOW_PTR;
}

static void writeObject(writer *w, mspan *s, uint32_t j)
{
	uintptr_t b = s->base + j * s->elemsize, size = s->elemsize;
	int typ = s->types[j];
	const gmtype *t = &gmtypes[typ];
	recordBegin(w, "object");
	ws(w, "\"addr\": ");
	wu(w, b);
	wkvu(w, "size", size);
	wkvs(w, "kind", t->kind);
	wkvs(w, "type", t->name);
	bool any = false;
	uintptr_t unit = t->unit ? t->unit : size;
	for (uintptr_t u = 0; u + unit <= size; u += unit) {
		for (uintptr_t off = 0; off < unit; off += PtrSize) {
			uintptr_t w8 = off / PtrSize;
			bool isptr = t->allptrs || (w8 < 64 && ((t->ptrmask >> w8) & 1)) ||
				     (t->ovfoff >= 0 && off == (uintptr_t)t->ovfoff);
			if (!isptr)
				continue;
			uintptr_t v = *(uintptr_t *)(b + u + off);
			if (v == 0)
				continue;
			ws(w, any ? ", [" : ", \"ptrs\": [[");
			wu(w, u + off);
			ws(w, ", ");
			wu(w, v);
			ws(w, "]");
			any = true;
		}
	}
	if (any)
		ws(w, "]");
	if (isBucketType(typ)) {
		ws(w, ", \"slots\": [");
		for (uintptr_t u = 0; u + unit <= size; u += unit) {
			const uint8_t *top = (const uint8_t *)(b + u);
			int n = 0;
			for (int i = 0; i < 8; i++)
				n += top[i] >= 5; /* minTopHash: a full cell */
			if (u > 0)
				ws(w, ", ");
			wu(w, (uint64_t)n);
		}
		ws(w, "]");
		if (t->ovfoff >= 0)
			ws(w, ", \"noscan\": true");
	}
	if (gm.gcphase == GM_PHASE_MARKDONE)
		ws(w, s->gcmarkBits[j] ? ", \"marked\": true" : ", \"marked\": false");
	recordEnd(w);
}

/* forEachObject calls fn on every allocated object in address order. */
static void forEachObject(writer *w, void (*fn)(writer *, mspan *, uint32_t))
{
	mspan *s;
	for (uintptr_t i = 0; (s = nextSpan(&i)) != NULL;) {
		for (uint32_t j = 0; j < s->nelems; j++)
			if (s->allocBits[j])
				fn(w, s, j);
	}
}

/* wctrl writes a [full, deleted, empty] triple of the group at g. */
static void wctrl(writer *w, uintptr_t g)
{
	uint32_t c[3];
	gm_swiss_ctrl_counts(g, c);
	ws(w, "[");
	wu(w, c[0]);
	ws(w, ", ");
	wu(w, c[1]);
	ws(w, ", ");
	wu(w, c[2]);
	ws(w, "]");
}

/* writeSwissMap writes the map record of a Swiss map (docs/dump-format.md,
 * "Swiss-table maps"): the header, the small group's control counts or each
 * distinct table in directory order with per-group control counts. */
static void writeSwissMap(writer *w, uintptr_t addr, int typ)
{
	uint64_t h[GM_SWISS_HEADER_WORDS];
	gm_swiss_header(addr, h);
	recordBegin(w, "map");
	ws(w, "\"hmap\": ");
	wu(w, addr);
	wkvs(w, "impl", "swiss");
	wkvu(w, "count", h[0]);
	wkvu(w, "dir_ptr", h[2]);
	wkvu(w, "dir_len", h[3]);
	wkvu(w, "global_depth", h[4]);
	wkvu(w, "clear_seq", h[7]);
	wkvu(w, "slot_size", 16);
	wkvu(w, "group_size", 136);
	wkvu(w, "seed", h[1]);
	wkvu(w, "global_shift", h[5]);
	wkey(w, "tombstone_possible", false);
	ws(w, h[6] ? "true" : "false");
	wkvu(w, "key_size", 8);
	wkvu(w, "elem_size", 8);
	wkvs(w, "type", gmtypes[typ].name);
	if (h[3] == 0 && h[2] != 0) {
		ws(w, ", \"small\": {\"ctrl\": ");
		wctrl(w, h[2]);
		ws(w, "}");
	}
	ws(w, ", \"tables\": [");
	size_t n = gm_swiss_tables(addr, NULL, 0);
	uint64_t *t = malloc((n ? n : 1) * GM_SWISS_TABLE_WORDS * sizeof *t);
	if (t == NULL) {
		w->err = -ENOMEM;
		n = 0;
	} else {
		gm_swiss_tables(addr, t, n);
	}
	for (size_t i = 0; i < n; i++) {
		const uint64_t *o = t + i * GM_SWISS_TABLE_WORDS;
		ws(w, i ? ", {\"addr\": " : "{\"addr\": ");
		wu(w, o[0]);
		wkvu(w, "capacity", o[1]);
		wkvu(w, "used", o[2]);
		wkvu(w, "growth_left", o[3]);
		wkvu(w, "local_depth", o[4]);
		wkey(w, "index", false);
		wi(w, (int64_t)o[5]);
		wkvu(w, "groups", o[6]);
		wkvu(w, "groups_len", o[7]);
		ws(w, ", \"ctrl\": [");
		for (uint64_t g = 0; g < o[7]; g++) {
			if (g > 0)
				ws(w, ", ");
			wctrl(w, o[6] + g * 136);
		}
		ws(w, "]}");
	}
	free(t);
	ws(w, "]");
	recordEnd(w);
}

static void writeMap(writer *w, mspan *s, uint32_t j)
{
	int typ = s->types[j];
	if (typ == T_SWISS_MAP_I64 || typ == T_SWISS_MAP_PTR) {
		writeSwissMap(w, s->base + j * s->elemsize, typ);
		return;
	}
	if (typ != T_HMAP_I64 && typ != T_HMAP_PTR)
		return;
	uint64_t h[9];
	uintptr_t addr = s->base + j * s->elemsize;
	gm_map_header(addr, h);
	recordBegin(w, "map");
	ws(w, "\"hmap\": ");
	wu(w, addr);
	wkvu(w, "B", h[2]);
	wkvu(w, "count", h[0]);
	wkvu(w, "noverflow", h[3]);
	wkvu(w, "flags", h[1]);
	wkvu(w, "hash0", h[4]);
	wkvu(w, "buckets", h[5]);
	wkvu(w, "oldbuckets", h[6]);
	wkvu(w, "nevacuate", h[7]);
	wkvu(w, "extra", h[8]);
	wkvu(w, "bucketsize", 144);
	wkvu(w, "keysize", 8);
	wkvu(w, "elemsize", 8);
	wkvs(w, "type", gmtypes[typ].name);
	recordEnd(w);
}

static void writeRoots(writer *w)
{
	sectionBegin(w, "roots");
	for (int i = 0; i < gm.nroots; i++) {
		recordBegin(w, "root");
		ws(w, "\"name\": ");
		wq(w, gm.roots[i].name);
		wkvs(w, "kind", gm.roots[i].kind == GM_ROOT_STACK ? "stack" : "global");
		wkvu(w, "target", gm.roots[i].val);
		recordEnd(w);
	}
	sectionEnd(w);
}

static const char *pageStateName(uint8_t ps)
{
	switch (ps & PS_STATE) {
	case PS_USED: return "used";
	case PS_RELEASED: return "released";
	default: return "free";
	}
}

static int writePages(writer *w)
{
	uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t len = gm.hwm << _PageShift, n = len / ps, per = _PageSize / ps;
	unsigned char *vec = malloc(n ? n : 1);
	if (vec == NULL)
		return -ENOMEM;
	int err = residentVector(gm.arena, len, vec);
	if (err != 0) {
		free(vec);
		return err;
	}
	sectionBegin(w, "pages");
	for (uintptr_t i = 0; i < n;) {
		const char *st = pageStateName(gm.pagestate[i / per]);
		bool res = vec[i] & 1;
		uintptr_t k = i + 1;
		while (k < n && (vec[k] & 1) == res && pageStateName(gm.pagestate[k / per]) == st)
			k++;
		recordBegin(w, "page");
		ws(w, "\"addr\": ");
		wu(w, gm.arena + i * ps);
		wkvu(w, "n", k - i);
		wkey(w, "resident", false);
		ws(w, res ? "true" : "false");
		wkvs(w, "state", st);
		recordEnd(w);
		i = k;
	}
	sectionEnd(w);
	free(vec);
	return 0;
}

static const char *opName(int op)
{
	static const char *names[] = {
		[EV_ALLOC] = "alloc", [EV_FREE] = "free", [EV_WRITE] = "write",
		[EV_ROOTWRITE] = "write", [EV_GC_START] = "gc_start",
		[EV_MARK_DONE] = "mark_done", [EV_SWEEP_DONE] = "sweep_done",
		[EV_MADVISE] = "madvise", [EV_GROW_START] = "grow_start",
		[EV_EVACUATE] = "evacuate", [EV_GROW_END] = "grow_end",
	};
	return names[op];
}

static void writeEvents(writer *w)
{
	sectionBegin(w, "events");
	for (size_t i = 0; i < gm.nevents; i++) {
		const gmevent *e = &gm.events[i];
		recordBegin(w, "event");
		ws(w, "\"seq\": ");
		wu(w, i + 1);
		wkvs(w, "op", opName(e->op));
		switch (e->op) {
		case EV_ALLOC:
			wkvu(w, "addr", e->a);
			wkvu(w, "size", e->b);
			wkvs(w, "kind", gmtypes[e->kind].kind);
			break;
		case EV_FREE:
			wkvu(w, "addr", e->a);
			wkvu(w, "size", e->b);
			wkvs(w, "kind", gmtypes[e->kind].kind);
			break;
		case EV_WRITE:
			wkvu(w, "obj", e->a);
			wkvu(w, "off", e->b);
			wkvu(w, "old", e->c);
			wkvu(w, "new", e->d);
			break;
		case EV_ROOTWRITE:
			wkvu(w, "obj", 0);
			wkvu(w, "off", 0);
			wkvs(w, "root", gm.roots[e->b].name);
			wkvu(w, "old", e->c);
			wkvu(w, "new", e->d);
			break;
		case EV_GC_START:
		case EV_MARK_DONE:
		case EV_SWEEP_DONE:
			wkvu(w, "cycle", e->a);
			break;
		case EV_MADVISE:
			wkvu(w, "addr", e->a);
			wkvu(w, "len", e->b);
			wkvs(w, "advice", adviceName(e->kind));
			break;
		case EV_GROW_START:
		case EV_GROW_END:
			wkvu(w, "hmap", e->a);
			if (e->op == EV_GROW_START) {
				wkey(w, "same_size", false);
				ws(w, e->kind ? "true" : "false");
			}
			break;
		case EV_EVACUATE:
			wkvu(w, "hmap", e->a);
			wkvu(w, "bucket", e->b);
			wkey(w, "same_size", false);
			ws(w, e->kind ? "true" : "false");
			break;
		}
		recordEnd(w);
	}
	sectionEnd(w);
}

/* writeEnd writes the end record (docs/dump-format.md, "end"): the count of
 * records of each section, so a reader tells a cut dump from a whole one. */
static void writeEnd(writer *w)
{
	ws(w, w->jsonl ? "{\"end\": {" : ",\n\"end\": {");
	for (int k = 0; k < 5; k++) {
		wkey(w, sectionNames[k], k == 0);
		wu(w, w->records[k]);
	}
	ws(w, w->jsonl ? "}}\n" : "}");
}

int gm_dump(const char *path, int jsonl, const char *meta_extra)
{
	writer w = {0};
	w.jsonl = jsonl != 0;
	w.cap = 1 << 20;
	w.buf = malloc(w.cap);
	if (w.buf == NULL)
		return -ENOMEM;
	w.f = fopen(path, "wb");
	if (w.f == NULL) {
		int e = -errno;
		free(w.buf);
		return e;
	}
	ws(&w, "{\"format\": \"gctrace.dump\", \"version\": 1, \"meta\": ");
	writeMeta(&w, meta_extra);
	if (w.jsonl)
		ws(&w, "}\n");
	sectionBegin(&w, "objects");
	forEachObject(&w, writeObject);
	sectionEnd(&w);
	writeRoots(&w);
	int err = writePages(&w);
	sectionBegin(&w, "maps");
	forEachObject(&w, writeMap);
	sectionEnd(&w);
	if (gm.cfg.record)
		writeEvents(&w);
	writeEnd(&w);
	if (!w.jsonl)
		ws(&w, "}\n");
	wflush(&w);
	if (fclose(w.f) != 0)
		wfail(&w);
	free(w.buf);
	return err != 0 ? err : w.err;
}
