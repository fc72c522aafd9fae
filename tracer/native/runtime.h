/*
 * runtime.h is shared by the core's translation units only: the heap's
 * structures (Go's mspan, page states, object types), the collector's hooks
 * and the event log. Names follow Go's runtime where one exists.
 */
#ifndef GCMAP_RUNTIME_H
#define GCMAP_RUNTIME_H

#include "gcmap.h"

#include <stdbool.h>
#include <stdint.h>

#define _PageShift 13
#define _PageSize ((uintptr_t)1 << _PageShift) /* Go's runtime page: 8 KiB */
#define _MaxSmallSize 32768
#define _NumSizeClasses 68
#define heapArenaBytes ((uintptr_t)64 << 20) /* commit granule, Go's arena size */
#define PtrSize 8

extern const uint16_t class_to_size[_NumSizeClasses];
extern const uint8_t class_to_allocnpages[_NumSizeClasses];
uintptr_t roundupsize(uintptr_t size);

/* Object types: every object's pointer layout is known (a precise heap). */
enum {
	T_HMAP_I64,      /* hmap of map[int64]int64 */
	T_HMAP_PTR,      /* hmap of map[int64]*main.T */
	T_BUCKETS_I64,   /* bucket array, pointer-free */
	T_OVERFLOW_I64,  /* one overflow bucket, pointer-free */
	T_BUCKETS_PTR,   /* bucket array with pointer elems */
	T_OVERFLOW_PTR,  /* one overflow bucket with pointer elems */
	T_MAPEXTRA,      /* runtime.mapextra */
	T_BMAPSLICE,     /* the []*bmap slice header that mapextra.overflow points to */
	T_BMAPARRAY,     /* the backing array of a []*bmap */
	T_VALUE,         /* main.T, pointer-free */
	T_SWISS_MAP_I64,    /* maps.Map of a Swiss map[int64]int64 (swiss.c) */
	T_SWISS_MAP_PTR,    /* maps.Map of a Swiss map[int64]*main.T */
	T_SWISS_DIRECTORY,  /* the directory: an array of *table */
	T_SWISS_TABLE,      /* maps.table */
	T_SWISS_GROUPS_I64, /* a groups array, pointer-free */
	T_SWISS_GROUPS_PTR, /* a groups array with pointer elems */
	T_NTYPES
};

typedef struct gmtype {
	const char *name; /* Go type name, written as the object's "type" */
	const char *kind; /* the dump's kind */
	uint16_t unit;    /* the layout repeats every unit bytes (0: whole object) */
	uint64_t ptrmask; /* bit i: word i of each unit is a pointer the GC scans */
	bool allptrs;     /* every word is a pointer */
	int16_t ovfoff;   /* noscan buckets: offset of the overflow word in a unit, else -1 */
} gmtype;

extern const gmtype gmtypes[T_NTYPES];

/* mspan is a run of pages holding objects of one size class, or one large
 * object (sizeclass 0). Bitmaps are a byte per object for clarity. */
typedef struct mspan {
	uintptr_t base, npages, elemsize;
	uint32_t nelems, freeindex, allocCount;
	uint8_t sizeclass;
	bool inpartial;
	uint8_t *allocBits, *gcmarkBits, *types;
	struct mspan *next, *prev; /* the partial list of its size class */
} mspan;

/* Page states, one byte per runtime page. */
enum { PS_FRESH = 0, PS_FREE = 1, PS_USED = 2, PS_RELEASED = 3 };
#define PS_STATE 3
#define PS_NEEDZERO 4

/* Event ops. */
enum {
	EV_ALLOC, EV_FREE, EV_WRITE, EV_ROOTWRITE, EV_GC_START, EV_MARK_DONE,
	EV_SWEEP_DONE, EV_MADVISE, EV_GROW_START, EV_EVACUATE, EV_GROW_END
};

typedef struct gmevent {
	uint8_t op, kind;
	uint16_t root;
	uint32_t pad;
	uint64_t a, b, c, d;
} gmevent;

#define MAXROOTS 1024

typedef struct gmroot {
	char name[64];
	int kind;
	uintptr_t val;
} gmroot;

typedef struct mcentral {
	mspan *partial; /* spans with a free slot */
} mcentral;

/* gmstate is the whole runtime: one per process. */
typedef struct gmstate {
	bool inited;
	gm_config cfg;
	int advice;             /* GM_ADVISE_FREE or GM_ADVISE_DONTNEED */
	uintptr_t arena, arena_bytes, arena_fixed;
	uintptr_t committed;    /* bytes of the arena mapped read-write */
	uintptr_t npages;       /* runtime pages in the arena */
	uintptr_t hwm;          /* pages below this index have been used */
	uintptr_t searchAddr;   /* no free page below this index */
	uint8_t *pagestate;
	mspan **spans;          /* spans[i]: the span that owns page i */
	mcentral central[_NumSizeClasses];
	uint64_t nobjects, heap_live, heap_marked, trigger;
	uint64_t released_bytes;
	uint64_t grows, same_size_grows;
	uint64_t swiss_grows, swiss_splits, swiss_prunes; /* Swiss tables grown, split, pruned of tombstones */
	uint32_t mapLoadFactorNum, mapLoadFactorDen; /* map.c's loadFactor, 13/2 unless gm_set_load_factor */

	/* collector */
	int gcphase;
	bool gc_pending, gc_auto;
	uint64_t gc_cycles;
	uintptr_t *grey;
	size_t ngrey, capgrey;

	/* fastrand and the hash key */
	uint64_t fastrand;
	uint64_t hashkey0;

	gmroot roots[MAXROOTS];
	int nroots;

	gmevent *events;
	size_t nevents, capevents;
} gmstate;

extern gmstate gm;

/* heap.c */
uintptr_t mallocgc(uintptr_t size, int type);
bool findObject(uintptr_t p, mspan **sp, uint32_t *idxp);
uintptr_t objectBase(uintptr_t p);
void sweepSpans(void);
uint32_t fastrand(void);
void gmthrow(const char *msg) __attribute__((noreturn));

/* gc.c */
void writeptr(uintptr_t *slot, uintptr_t p, bool barrier);
void safepoint(void);
void gcStartIfPending(void);

/* record.c */
void recordEvent(int op, int kind, uint64_t a, uint64_t b, uint64_t c, uint64_t d);
static inline bool recording(void) { return gm.cfg.record; }

/* map.c */
int hmapShape(int type);
uintptr_t memhash64(uint64_t a, uintptr_t seed);

/* swiss.c */
int swissShape(int type);

/* nextSpan returns the first span at or after page index *i, and moves *i
 * past it; NULL when no span is left. Walk the heap with
 * for (uintptr_t i = 0; (s = nextSpan(&i)) != NULL;). */
static inline mspan *nextSpan(uintptr_t *i)
{
	while (*i < gm.hwm) {
		mspan *s = gm.spans[*i];
		if (s == NULL) {
			(*i)++;
			continue;
		}
		*i += s->npages;
		return s;
	}
	return NULL;
}

/* residency.c */
int residentVector(uintptr_t addr, uintptr_t len, unsigned char *vec);
uint64_t processRSS(void);

#endif
