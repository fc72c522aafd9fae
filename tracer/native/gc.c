/*
 * gc.c is the tracer's collector: Go's tri-colour mark-sweep over a precise
 * heap, stop-the-world or concurrent with Go's hybrid write barrier.
 *
 * Roots are the registered globals and the shadow stack (gm_root_add). A
 * cycle shades every root grey (gcStart, Go's markroot), then scans grey
 * objects one at a time (gcDrain): scanning an object shades every pointer
 * word its type says it has; a pointer-free object is black as soon as it is
 * shaded. Mark bits live in the span (gcmarkBits); the sweeper frees the
 * allocated objects left unmarked and returns empty spans' pages.
 *
 * Stop the world (gm_gc) runs the whole cycle inside one call. Concurrent
 * (gm_gc_start ... gm_gc_step ... gm_gc_mark_finish) lets map operations run
 * between mark steps, so the heap changes under the marker. Go 1.19 keeps
 * the marker correct with the hybrid barrier (mbarrier.go):
 *
 *	writePointer(slot, ptr):
 *	    shade(*slot)
 *	    if current stack is grey:   // always, in Go's implementation
 *	        shade(ptr)
 *	    *slot = ptr
 *
 * applied to every pointer store into a heap object or a global, never to
 * stack stores (stacks are scanned once, at the start, and stay black), and
 * objects allocated during the cycle are born black. The barrier can be
 * switched off (gm_set_barrier) to show what it prevents: a pointer moved
 * from an unscanned object into a scanned one is then lost and freed while
 * still reachable.
 *
 * The pacer follows GOGC: when the live heap reaches
 * max(4 MiB, heap_marked * (1 + GOGC/100)) a cycle becomes pending and
 * starts at the next safepoint, the end of a map operation (Go triggers in
 * mallocgc; waiting for the operation to finish keeps in-flight pointers out
 * of the question without a stack map). A concurrent cycle started by the
 * pacer is advanced by mark_rate grey objects per operation (Go's assists)
 * and finishes when the grey queue is empty.
 */
#include "runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void greyPush(uintptr_t p)
{
	if (gm.ngrey == gm.capgrey) {
		size_t n = gm.capgrey ? 2 * gm.capgrey : 4096;
		uintptr_t *g = realloc(gm.grey, n * sizeof *g);
		if (g == NULL)
			gmthrow("out of memory: grey queue");
		gm.grey = g;
		gm.capgrey = n;
	}
	gm.grey[gm.ngrey++] = p;
}

/* typeHasPointers reports whether the collector must scan objects of type t. */
static bool typeHasPointers(int t)
{
	return gmtypes[t].allptrs || gmtypes[t].ptrmask != 0;
}

/* shade greys the object p points into, if it is white. */
static void shade(uintptr_t p)
{
	mspan *s;
	uint32_t idx;
	if (p == 0 || !findObject(p, &s, &idx) || s->gcmarkBits[idx])
		return;
	s->gcmarkBits[idx] = 1;
	if (typeHasPointers(s->types[idx]))
		greyPush(s->base + idx * s->elemsize);
}

/* scanobject shades every pointer the precise layout of the object at b names. */
static void scanobject(uintptr_t b)
{
	mspan *s;
	uint32_t idx;
	if (!findObject(b, &s, &idx))
		gmthrow("scanobject: not an object");
	const gmtype *t = &gmtypes[s->types[idx]];
	uintptr_t size = s->elemsize;
	if (t->allptrs) {
		for (uintptr_t off = 0; off < size; off += PtrSize)
			shade(*(uintptr_t *)(b + off));
		return;
	}
	uintptr_t unit = t->unit ? t->unit : size;
	for (uintptr_t u = 0; u + unit <= size; u += unit) {
		uint64_t mask = t->ptrmask;
		while (mask) {
			int w = __builtin_ctzll(mask);
			mask &= mask - 1;
			shade(*(uintptr_t *)(b + u + (uintptr_t)w * PtrSize));
		}
	}
}

/* writeptr stores p into *slot, a pointer field of a heap object, applying
 * the hybrid barrier when barrier is set and recording the store. */
void writeptr(uintptr_t *slot, uintptr_t p, bool barrier)
{
	uintptr_t old = *slot;
	if (barrier && gm.gcphase == GM_PHASE_MARK && gm.cfg.barrier) {
		shade(old);
		shade(p);
	}
	*slot = p;
	if (recording() && (old != 0 || p != 0)) {
		uintptr_t obj = objectBase((uintptr_t)slot);
		recordEvent(EV_WRITE, 0, obj, (uintptr_t)slot - obj, old, p);
	}
}

int gm_root_add(const char *name, int kind)
{
	if (gm.nroots == MAXROOTS)
		return -ENOSPC;
	gmroot *r = &gm.roots[gm.nroots];
	strncpy(r->name, name, sizeof r->name - 1);
	r->kind = kind;
	r->val = 0;
	return gm.nroots++;
}

void gm_root_set(int i, uintptr_t p)
{
	gmroot *r = &gm.roots[i];
	uintptr_t old = r->val;
	/* Globals are barriered; stack slots never are. */
	if (r->kind == GM_ROOT_GLOBAL && gm.gcphase == GM_PHASE_MARK && gm.cfg.barrier) {
		shade(old);
		shade(p);
	}
	r->val = p;
	if (recording() && (old != 0 || p != 0))
		recordEvent(EV_ROOTWRITE, 0, 0, (uint64_t)i, old, p);
}

uintptr_t gm_root_get(int i)
{
	return gm.roots[i].val;
}

void gm_gc_start(void)
{
	if (gm.gcphase != GM_PHASE_OFF)
		return;
	gm.gc_pending = false;
	gm.gc_auto = false;
	gm.gcphase = GM_PHASE_MARK;
	gm.gc_cycles++;
	if (recording())
		recordEvent(EV_GC_START, 0, gm.gc_cycles, 0, 0, 0);
	for (int i = 0; i < gm.nroots; i++)
		shade(gm.roots[i].val);
}

size_t gm_gc_step(size_t n)
{
	if (gm.gcphase != GM_PHASE_MARK)
		return 0;
	while (n-- > 0 && gm.ngrey > 0)
		scanobject(gm.grey[--gm.ngrey]);
	return gm.ngrey;
}

void gm_gc_mark_finish(void)
{
	if (gm.gcphase != GM_PHASE_MARK)
		return;
	while (gm.ngrey > 0)
		scanobject(gm.grey[--gm.ngrey]);
	gm.gcphase = GM_PHASE_MARKDONE;
	if (recording())
		recordEvent(EV_MARK_DONE, 0, gm.gc_cycles, 0, 0, 0);
}

void gm_gc_sweep(void)
{
	if (gm.gcphase != GM_PHASE_MARKDONE)
		return;
	sweepSpans();
	gm.gcphase = GM_PHASE_OFF;
	gm.heap_marked = gm.heap_live;
	uint64_t goal = gm.cfg.gogc >= 0 ? gm.heap_marked + gm.heap_marked * (uint64_t)gm.cfg.gogc / 100 : UINT64_MAX;
	gm.trigger = goal > (4u << 20) ? goal : (4u << 20);
	if (recording())
		recordEvent(EV_SWEEP_DONE, 0, gm.gc_cycles, 0, 0, 0);
}

/* gm_gc is runtime.GC: it finishes a cycle in progress, then runs a whole
 * stop-the-world cycle. */
void gm_gc(void)
{
	if (gm.gcphase == GM_PHASE_MARK)
		gm_gc_mark_finish();
	if (gm.gcphase == GM_PHASE_MARKDONE)
		gm_gc_sweep();
	gm_gc_start();
	gm_gc_mark_finish();
	gm_gc_sweep();
}

int gm_gcphase(void)
{
	return gm.gcphase;
}

void gm_set_barrier(int on)
{
	gm.cfg.barrier = on;
}

void gm_set_mark_rate(int n)
{
	gm.cfg.mark_rate = n;
}

size_t gm_marked(uintptr_t *out, size_t cap)
{
	size_t n = 0;
	mspan *s;
	for (uintptr_t i = 0; (s = nextSpan(&i)) != NULL;) {
		for (uint32_t j = 0; j < s->nelems; j++) {
			if (s->allocBits[j] && s->gcmarkBits[j]) {
				if (n < cap)
					out[n] = s->base + j * s->elemsize;
				n++;
			}
		}
	}
	return n;
}

/* safepoint runs at the end of every map operation: it starts a pending
 * cycle and lets a pacer-started concurrent cycle make progress. */
void safepoint(void)
{
	if (gm.gcphase == GM_PHASE_MARK) {
		if (gm.cfg.mark_rate > 0)
			gm_gc_step((size_t)gm.cfg.mark_rate);
		if (gm.gc_auto && gm.ngrey == 0) {
			gm_gc_mark_finish();
			gm_gc_sweep();
		}
		return;
	}
	if (!gm.gc_pending || gm.gcphase != GM_PHASE_OFF)
		return;
	if (gm.cfg.gcmode == GM_GC_STW) {
		gm_gc();
	} else {
		gm_gc_start();
		gm.gc_auto = true;
	}
}
