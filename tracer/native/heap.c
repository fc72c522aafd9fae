/*
 * heap.c is the tracer's memory allocator, modelled on Go 1.19's mheap.
 *
 * The arena is one reservation of address space made at Go's first hint
 * address, 0xc000000000, when that range is free (MAP_FIXED_NOREPLACE), so
 * that the same workload with the same seed puts every object at the same
 * address and dumps compare byte for byte. Like Go's sysReserve/sysMap it is
 * reserved PROT_NONE and made read-write in heapArenaBytes granules as the
 * heap grows; the kernel backs a page only when it is first touched.
 *
 * The heap is cut into runtime pages of 8 KiB (_PageShift 13). A span
 * (mspan) is a run of pages holding either objects of one size class (Go's
 * table from sizeclasses.go, 8 bytes to 32 KiB) or one large object rounded
 * up to whole pages. Every page is in one of Go's states: used (owned by a
 * span), free (free in the allocator but still backed by memory the
 * process touched) or released (returned to the OS with madvise by the
 * scavenger). Pages are handed out lowest address first, as Go's page
 * allocator does, and a released page that is reused becomes used again
 * without a system call (Go's sysUsed is a no-op on Linux).
 *
 * Small objects are zeroed when they are allocated; a large object is zeroed
 * only when one of its pages may hold old data (Go's needzero), so a fresh
 * multi-megabyte bucket array does not become resident until it is written.
 *
 * The scavenger (gm_scavenge) is debug.FreeOSMemory: it returns every free
 * page with MADV_DONTNEED (GODEBUG=madvdontneed=1, Go 1.19's default on
 * Linux) or MADV_FREE (madvdontneed=0), falling back to MADV_DONTNEED where
 * the kernel lacks MADV_FREE, as Go's sysUnused does.
 */
#define _GNU_SOURCE
#include "runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_FREE
#define MADV_FREE 8
#endif

gmstate gm;

/* From Go 1.19 runtime/sizeclasses.go. */
const uint16_t class_to_size[_NumSizeClasses] = {0, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768};
const uint8_t class_to_allocnpages[_NumSizeClasses] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2, 1, 2, 1, 3, 2, 3, 1, 3, 2, 3, 4, 5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2, 9, 7, 5, 8, 3, 10, 7, 4};
static const uint8_t size_to_class8[1024 / 8 + 1] = {0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15, 16, 16, 17, 17, 18, 18, 19, 19, 19, 19, 20, 20, 20, 20, 21, 21, 21, 21, 22, 22, 22, 22, 23, 23, 23, 23, 24, 24, 24, 24, 25, 25, 25, 25, 26, 26, 26, 26, 27, 27, 27, 27, 27, 27, 27, 27, 28, 28, 28, 28, 28, 28, 28, 28, 29, 29, 29, 29, 29, 29, 29, 29, 30, 30, 30, 30, 30, 30, 30, 30, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32};
static const uint8_t size_to_class128[(_MaxSmallSize - 1024) / 128 + 1] = {32, 33, 34, 35, 36, 37, 37, 38, 38, 39, 39, 40, 40, 40, 41, 41, 41, 42, 43, 43, 44, 44, 44, 44, 44, 45, 45, 45, 45, 45, 45, 46, 46, 46, 46, 47, 47, 47, 47, 47, 47, 48, 48, 48, 49, 49, 50, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 52, 52, 52, 52, 52, 52, 52, 52, 52, 52, 53, 53, 54, 54, 54, 54, 55, 55, 55, 55, 55, 56, 56, 56, 56, 56, 56, 56, 56, 56, 56, 56, 57, 57, 57, 57, 57, 57, 57, 57, 57, 57, 58, 58, 58, 58, 58, 58, 59, 59, 59, 59, 59, 59, 59, 59, 59, 59, 59, 59, 59, 59, 59, 59, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 61, 61, 61, 61, 61, 62, 62, 62, 62, 62, 62, 62, 62, 62, 62, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67};

#define divRoundUp(n, a) (((n) + (a) - 1) / (a))
#define alignUp(n, a) (((n) + (a) - 1) & ~((uintptr_t)(a) - 1))

static uint8_t sizeclass(uintptr_t size)
{
	if (size <= 1024 - 8)
		return size_to_class8[divRoundUp(size, 8)];
	return size_to_class128[divRoundUp(size - 1024, 128)];
}

/* roundupsize returns the size of the block mallocgc hands out for size. */
uintptr_t roundupsize(uintptr_t size)
{
	if (size < _MaxSmallSize)
		return class_to_size[sizeclass(size)];
	return alignUp(size, _PageSize);
}

void gmthrow(const char *msg)
{
	fprintf(stderr, "gcmap: fatal error: %s\n", msg);
	abort();
}

/* fastrand is Go 1.19's wyrand on 64-bit platforms, seeded by gm_config.seed. */
uint32_t fastrand(void)
{
	gm.fastrand += 0xa0761d6478bd642fULL;
	__uint128_t m = (__uint128_t)gm.fastrand * (gm.fastrand ^ 0xe7037ed1a0b428dbULL);
	return (uint32_t)((uint64_t)(m >> 64) ^ (uint64_t)m);
}

static int readGODEBUGAdvice(void)
{
	const char *g = getenv("GODEBUG");
	int advice = GM_ADVISE_DONTNEED; /* Go 1.19 sets madvdontneed=1 on Linux */
	if (g == NULL)
		return advice;
	const char *p = g;
	while ((p = strstr(p, "madvdontneed=")) != NULL) {
		if (p == g || p[-1] == ',')
			advice = p[13] == '0' ? GM_ADVISE_FREE : GM_ADVISE_DONTNEED;
		p += 13;
	}
	return advice;
}

void gm_default_config(gm_config *c)
{
	memset(c, 0, sizeof *c);
	c->barrier = 1;
	c->record = 1;
	c->gogc = 100;
	c->mark_rate = 16;
	c->madvise = GM_ADVISE_DEFAULT;
	c->gcmode = GM_GC_STW;
#ifdef GCMAP_DEBUG
	c->check = 1; /* a debug build checks every map after every operation */
#endif
}

int gm_init(const gm_config *c)
{
	if (gm.inited)
		return -EBUSY;
	memset(&gm, 0, sizeof gm);
	gm.cfg = *c;
	if (gm.cfg.arena_bytes == 0)
		gm.cfg.arena_bytes = (uint64_t)8 << 30;
	gm.arena_bytes = alignUp(gm.cfg.arena_bytes, heapArenaBytes);
	gm.advice = c->madvise == GM_ADVISE_DEFAULT ? readGODEBUGAdvice() : c->madvise;
	void *hint = (void *)(uintptr_t)0xc000000000ULL;
	void *p = mmap(hint, gm.arena_bytes, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED || p != hint) {
		if (p != MAP_FAILED)
			munmap(p, gm.arena_bytes);
		p = mmap(NULL, gm.arena_bytes + heapArenaBytes, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		/* Keep the arena aligned like Go's so page arithmetic matches. */
		uintptr_t a = alignUp((uintptr_t)p, heapArenaBytes);
		if (a > (uintptr_t)p)
			munmap(p, a - (uintptr_t)p);
		uintptr_t end = (uintptr_t)p + gm.arena_bytes + heapArenaBytes;
		if (end > a + gm.arena_bytes)
			munmap((void *)(a + gm.arena_bytes), end - (a + gm.arena_bytes));
		p = (void *)a;
	} else {
		gm.arena_fixed = 1;
	}
	gm.arena = (uintptr_t)p;
	gm.npages = gm.arena_bytes >> _PageShift;
	gm.pagestate = calloc(gm.npages, 1);
	gm.spans = calloc(gm.npages, sizeof(mspan *));
	if (gm.pagestate == NULL || gm.spans == NULL) {
		munmap(p, gm.arena_bytes);
		free(gm.pagestate);
		free(gm.spans);
		return -ENOMEM;
	}
	gm.fastrand = c->seed;
	gm.hashkey0 = ((uint64_t)fastrand() << 32 | fastrand()) | 1;
	gm.trigger = 4 << 20; /* Go's heapminimum */
	gm.mapLoadFactorNum = 13; /* Go's loadFactor 6.5 (map.c) */
	gm.mapLoadFactorDen = 2;
	gm.inited = true;
	return 0;
}

static void freeSpanStruct(mspan *s)
{
	free(s->allocBits);
	free(s);
}

void gm_fini(void)
{
	if (!gm.inited)
		return;
	mspan *s;
	for (uintptr_t i = 0; (s = nextSpan(&i)) != NULL;) {
		freeSpanStruct(s);
	}
	munmap((void *)gm.arena, gm.arena_bytes);
	free(gm.pagestate);
	free(gm.spans);
	free(gm.grey);
	free(gm.events);
	memset(&gm, 0, sizeof gm);
}

/* sysMap makes the arena read-write up to end, a heapArenaBytes granule at a time. */
static void sysMap(uintptr_t end)
{
	if (end <= gm.committed)
		return;
	uintptr_t n = alignUp(end, heapArenaBytes);
	if (n > gm.arena_bytes)
		gmthrow("out of memory: arena exhausted");
	if (mprotect((void *)(gm.arena + gm.committed), n - gm.committed, PROT_READ | PROT_WRITE) != 0)
		gmthrow("out of memory: mprotect failed");
	gm.committed = n;
}

/* allocPages finds the lowest run of npages pages that are not in use. */
static uintptr_t allocPages(uintptr_t npages, bool *needzero)
{
	uintptr_t i = gm.searchAddr, run = 0, start = i;
	while (run < npages) {
		if (i >= gm.npages)
			gmthrow("out of memory: arena exhausted");
		if ((gm.pagestate[i] & PS_STATE) == PS_USED) {
			run = 0;
			start = i + 1;
		} else {
			run++;
		}
		i++;
	}
	*needzero = false;
	for (uintptr_t j = start; j < start + npages; j++) {
		if (gm.pagestate[j] & PS_NEEDZERO)
			*needzero = true;
		gm.pagestate[j] = PS_USED;
	}
	if (start + npages > gm.hwm) {
		gm.hwm = start + npages;
		sysMap(gm.hwm << _PageShift);
	}
	if (start == gm.searchAddr) {
		uintptr_t k = start + npages;
		while (k < gm.hwm && (gm.pagestate[k] & PS_STATE) == PS_USED)
			k++;
		gm.searchAddr = k;
	}
	return start;
}

static mspan *allocSpan(uintptr_t npages, uint8_t sc, uintptr_t elemsize, bool *needzero)
{
	uintptr_t pi = allocPages(npages, needzero);
	mspan *s = calloc(1, sizeof *s);
	if (s == NULL)
		gmthrow("out of memory: span metadata");
	s->base = gm.arena + (pi << _PageShift);
	s->npages = npages;
	s->sizeclass = sc;
	s->elemsize = elemsize;
	s->nelems = (uint32_t)((npages << _PageShift) / elemsize);
	s->allocBits = calloc(3 * (size_t)s->nelems, 1);
	if (s->allocBits == NULL)
		gmthrow("out of memory: span metadata");
	s->gcmarkBits = s->allocBits + s->nelems;
	s->types = s->gcmarkBits + s->nelems;
	for (uintptr_t j = 0; j < npages; j++)
		gm.spans[pi + j] = s;
	return s;
}

static void partialPush(mspan *s)
{
	mcentral *c = &gm.central[s->sizeclass];
	s->prev = NULL;
	s->next = c->partial;
	if (c->partial)
		c->partial->prev = s;
	c->partial = s;
	s->inpartial = true;
}

static void partialRemove(mspan *s)
{
	mcentral *c = &gm.central[s->sizeclass];
	if (s->prev)
		s->prev->next = s->next;
	else
		c->partial = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	s->inpartial = false;
}

/* freeSpan returns the pages of an empty span to the page allocator. */
static void freeSpan(mspan *s)
{
	uintptr_t pi = (s->base - gm.arena) >> _PageShift;
	for (uintptr_t j = 0; j < s->npages; j++) {
		gm.pagestate[pi + j] = PS_FREE | PS_NEEDZERO;
		gm.spans[pi + j] = NULL;
	}
	if (pi < gm.searchAddr)
		gm.searchAddr = pi;
	if (s->inpartial)
		partialRemove(s);
	freeSpanStruct(s);
}

/* mallocgc allocates a zeroed object of size bytes and type typ. */
uintptr_t mallocgc(uintptr_t size, int typ)
{
	mspan *s;
	uint32_t idx;
	bool needzero;
	if (size <= _MaxSmallSize) {
		uint8_t sc = sizeclass(size);
		mcentral *c = &gm.central[sc];
		for (;;) {
			s = c->partial;
			if (s == NULL) {
				s = allocSpan(class_to_allocnpages[sc], sc, class_to_size[sc], &needzero);
				partialPush(s);
			}
			while (s->freeindex < s->nelems && s->allocBits[s->freeindex])
				s->freeindex++;
			if (s->freeindex < s->nelems)
				break;
			partialRemove(s);
		}
		idx = s->freeindex++;
		memset((void *)(s->base + idx * s->elemsize), 0, s->elemsize);
	} else {
		uintptr_t npages = alignUp(size, _PageSize) >> _PageShift;
		s = allocSpan(npages, 0, npages << _PageShift, &needzero);
		idx = 0;
		if (needzero)
			memset((void *)s->base, 0, s->elemsize);
	}
	s->allocBits[idx] = 1;
	s->types[idx] = (uint8_t)typ;
	s->allocCount++;
	/* Objects allocated while the collector marks are black. */
	s->gcmarkBits[idx] = gm.gcphase != GM_PHASE_OFF;
	if (s->allocCount == s->nelems && s->inpartial)
		partialRemove(s);
	uintptr_t p = s->base + idx * s->elemsize;
	gm.nobjects++;
	gm.heap_live += s->elemsize;
	if (gm.cfg.gogc >= 0 && gm.heap_live >= gm.trigger && gm.gcphase == GM_PHASE_OFF)
		gm.gc_pending = true;
	if (recording())
		recordEvent(EV_ALLOC, typ, p, s->elemsize, 0, 0);
	return p;
}

/* findObject maps a pointer, possibly interior, to its allocated object. */
bool findObject(uintptr_t p, mspan **sp, uint32_t *idxp)
{
	if (p < gm.arena || p >= gm.arena + (gm.hwm << _PageShift))
		return false;
	mspan *s = gm.spans[(p - gm.arena) >> _PageShift];
	if (s == NULL)
		return false;
	uintptr_t idx = (p - s->base) / s->elemsize;
	if (idx >= s->nelems || !s->allocBits[idx])
		return false;
	*sp = s;
	*idxp = (uint32_t)idx;
	return true;
}

/* objectBase returns the start of the object containing p, or 0. */
uintptr_t objectBase(uintptr_t p)
{
	mspan *s;
	uint32_t idx;
	if (!findObject(p, &s, &idx))
		return 0;
	return s->base + idx * s->elemsize;
}

/* sweepSpans frees every allocated object that is not marked, clears the
 * marks and frees the pages of spans left empty (Go's mspan.sweep). */
void sweepSpans(void)
{
	mspan *s;
	for (uintptr_t i = 0; (s = nextSpan(&i)) != NULL;) {
		for (uint32_t j = 0; j < s->nelems; j++) {
			if (s->allocBits[j] && !s->gcmarkBits[j]) {
				if (recording())
					recordEvent(EV_FREE, s->types[j], s->base + j * s->elemsize, s->elemsize, 0, 0);
				s->allocBits[j] = 0;
				s->allocCount--;
				gm.nobjects--;
				gm.heap_live -= s->elemsize;
			}
			s->gcmarkBits[j] = 0;
		}
		if (s->allocCount == 0) {
			freeSpan(s);
			continue;
		}
		s->freeindex = 0;
		if (s->sizeclass != 0 && s->allocCount < s->nelems && !s->inpartial)
			partialPush(s);
	}
}

uintptr_t gm_object_base(uintptr_t p)
{
	return objectBase(p);
}

uintptr_t gm_new_value(uintptr_t size)
{
	return mallocgc(size ? size : 8, T_VALUE);
}

/* gm_scavenge returns every free page to the OS and reports the bytes released. */
uintptr_t gm_scavenge(void)
{
	uintptr_t released = 0;
	for (uintptr_t i = 0; i < gm.hwm;) {
		if ((gm.pagestate[i] & PS_STATE) != PS_FREE) {
			i++;
			continue;
		}
		uintptr_t j = i;
		while (j < gm.hwm && (gm.pagestate[j] & PS_STATE) == PS_FREE)
			j++;
		uintptr_t addr = gm.arena + (i << _PageShift), len = (j - i) << _PageShift;
		int advice = gm.advice;
		if (advice == GM_ADVISE_FREE && madvise((void *)addr, len, MADV_FREE) != 0) {
			gm.advice = advice = GM_ADVISE_DONTNEED; /* kernel before 4.5 */
		}
		if (advice == GM_ADVISE_DONTNEED)
			madvise((void *)addr, len, MADV_DONTNEED);
		for (uintptr_t k = i; k < j; k++) {
			/* MADV_DONTNEED pages read back as zeros; MADV_FREE ones may not. */
			gm.pagestate[k] = PS_RELEASED | (advice == GM_ADVISE_FREE ? PS_NEEDZERO : 0);
		}
		if (recording())
			recordEvent(EV_MADVISE, advice, addr, len, 0, 0);
		released += len;
		i = j;
	}
	gm.released_bytes += released;
	return released;
}

void gm_get_stats(gm_stats *st)
{
	memset(st, 0, sizeof *st);
	st->arena = gm.arena;
	st->arena_fixed = gm.arena_fixed;
	st->heap_pages = gm.hwm;
	for (uintptr_t i = 0; i < gm.hwm; i++) {
		switch (gm.pagestate[i] & PS_STATE) {
		case PS_USED: st->pages_used++; break;
		case PS_RELEASED: st->pages_released++; break;
		default: st->pages_free++; break;
		}
	}
	st->objects = gm.nobjects;
	st->heap_live = gm.heap_live;
	st->events = gm.nevents;
	st->gc_cycles = gm.gc_cycles;
	st->released_bytes = gm.released_bytes;
	st->advice = (uint64_t)gm.advice;
	st->grows = gm.grows;
	st->same_size_grows = gm.same_size_grows;
	st->swiss_grows = gm.swiss_grows;
	st->swiss_splits = gm.swiss_splits;
	st->swiss_prunes = gm.swiss_prunes;
}
