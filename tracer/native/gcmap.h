/*
 * gcmap.h is the public interface of the gctrace tracer's native core: a heap
 * laid out like Go 1.19's (8 KiB pages, size classes, a precise mark-sweep
 * collector, a scavenger) holding Go 1.19 maps, every step of which can be
 * recorded and dumped in the gctrace dump format (docs/dump-format.md).
 *
 * The core keeps one heap per process (the arena sits at Go's fixed hint
 * address so that dumps are reproducible); gm_init creates it, gm_fini
 * returns it to the OS. Addresses cross the interface as uintptr_t.
 * Functions that can fail return 0 on success and a negative errno.
 * The core never prints; an internal invariant failure aborts (like Go's
 * throw) with one line on stderr.
 */
#ifndef GCMAP_H
#define GCMAP_H

#include <stddef.h>
#include <stdint.h>

#define GM_VERSION "0.1.0"

/* Map shapes: the two map types the tracer instantiates. */
enum {
	GM_SHAPE_I64_I64 = 0, /* map[int64]int64: pointer-free buckets */
	GM_SHAPE_I64_PTR = 1, /* map[int64]*main.T: the elem points to a value object */
	GM_NSHAPES
};

/* Collector modes. */
enum { GM_GC_STW = 0, GM_GC_CONCURRENT = 1 };

/* How the scavenger returns pages: GM_ADVISE_DEFAULT follows GODEBUG
 * (madvdontneed=1 is Go 1.19's default on Linux, madvdontneed=0 selects
 * MADV_FREE). */
enum { GM_ADVISE_DEFAULT = 0, GM_ADVISE_FREE = 1, GM_ADVISE_DONTNEED = 2 };

/* Root kinds, as in the dump format. */
enum { GM_ROOT_GLOBAL = 0, GM_ROOT_STACK = 1 };

/* Collector phases, as gm_gcphase reports them. */
enum { GM_PHASE_OFF = 0, GM_PHASE_MARK = 1, GM_PHASE_MARKDONE = 2 };

typedef struct gm_config {
	uint64_t seed;        /* seeds fastrand: hash0 of every map, the hash key */
	int madvise;          /* GM_ADVISE_* */
	int gcmode;           /* GM_GC_*: what the pacer starts when the heap grows */
	int barrier;          /* 1: hybrid write barrier on while marking */
	int record;           /* 1: keep the event log */
	int gogc;             /* GOGC; < 0 turns the pacer off */
	int mark_rate;        /* grey objects scanned per map operation while marking */
	int check;            /* 1: check map invariants after every operation */
	uint64_t arena_bytes; /* address space to reserve; 0 = 8 GiB */
} gm_config;

/* gm_default_config fills c with Go's defaults (GOGC=100, barrier on). */
void gm_default_config(gm_config *c);
/* gm_init reserves the arena and resets every piece of state. */
int gm_init(const gm_config *c);
/* gm_fini unmaps the arena and frees all metadata. */
void gm_fini(void);

/* Roots. gm_root_add returns the root's index or a negative errno. */
int gm_root_add(const char *name, int kind);
/* gm_root_set stores p into root i; global roots are barriered while marking. */
void gm_root_set(int i, uintptr_t p);
uintptr_t gm_root_get(int i);

/* Objects. gm_new_value allocates a pointer-free value object (a main.T). */
uintptr_t gm_new_value(uintptr_t size);
/* gm_object_base returns the start of the allocated object containing p, or 0. */
uintptr_t gm_object_base(uintptr_t p);

/* Maps. All operations end at a safepoint where the collector may run. */
uintptr_t gm_makemap(int shape, int64_t hint);
/* gm_mapassign stores val under key (for GM_SHAPE_I64_PTR val is a pointer). */
void gm_mapassign(int shape, uintptr_t h, int64_t key, uint64_t val);
/* gm_mapaccess2 reports whether key is present and stores its elem in *val. */
int gm_mapaccess2(int shape, uintptr_t h, int64_t key, uint64_t *val);
void gm_mapdelete(int shape, uintptr_t h, int64_t key);
void gm_mapclear(int shape, uintptr_t h);
/* gm_assign_batch assigns keys[i] -> vals[i] (vals may be NULL: the value is
 * the key for I64_I64 and a fresh value object of valsize bytes for I64_PTR),
 * storing the map's B after each insert in Bs when it is not NULL. */
void gm_assign_batch(int shape, uintptr_t h, const int64_t *keys,
		     const uint64_t *vals, size_t n, uintptr_t valsize, uint8_t *Bs);
void gm_delete_batch(int shape, uintptr_t h, const int64_t *keys, size_t n);
/* gm_map_header copies count, flags, B, noverflow, hash0, buckets,
 * oldbuckets, nevacuate and extra into out[0..8]. */
void gm_map_header(uintptr_t h, uint64_t out[9]);
/* gm_map_check verifies every invariant of h and aborts when one fails. */
void gm_map_check(int shape, uintptr_t h);

/* Measurement hooks for the load-factor tables (tracer/native/loadfactor.py).
 * gm_set_load_factor sets the classic map's loadFactor to num/den (Go's
 * 13/2 until then). gm_map_probes stores the full cells each key's lookup
 * checks (map.go's hitprobe/missprobe). gm_map_occupancy counts primary
 * buckets by entries on their chain, 0..8 and more than 8 (out[9]), and the
 * overflow buckets (out[10]). */
void gm_set_load_factor(uint32_t num, uint32_t den);
void gm_map_probes(int shape, uintptr_t h, const int64_t *keys, size_t n, uint32_t *entries);
void gm_map_occupancy(int shape, uintptr_t h, uint64_t out[11]);

/* Swiss-table maps (Go 1.24+, swiss.c): the same shapes, the same heap.
 * m is the address of the maps.Map header. */
uintptr_t gm_swiss_makemap(int shape, int64_t hint);
void gm_swiss_assign(int shape, uintptr_t m, int64_t key, uint64_t val);
int gm_swiss_access2(int shape, uintptr_t m, int64_t key, uint64_t *val);
void gm_swiss_delete(int shape, uintptr_t m, int64_t key);
void gm_swiss_clear(int shape, uintptr_t m);
/* gm_swiss_assign_batch is gm_assign_batch for a Swiss map; trace, when not
 * NULL, receives after each insert i the directory length, the distinct
 * tables and the total slots at trace[3i], trace[3i+1], trace[3i+2]. */
void gm_swiss_assign_batch(int shape, uintptr_t m, const int64_t *keys, const uint64_t *vals,
			   size_t n, uintptr_t valsize, uint32_t *trace);
void gm_swiss_delete_batch(int shape, uintptr_t m, const int64_t *keys, size_t n);
#define GM_SWISS_HEADER_WORDS 10
/* gm_swiss_header copies used, seed, dirPtr, dirLen, globalDepth,
 * globalShift, tombstonePossible, clearSeq, the distinct tables and the
 * total slots (8 for a small map's group) into out. */
void gm_swiss_header(uintptr_t m, uint64_t out[GM_SWISS_HEADER_WORDS]);
#define GM_SWISS_TABLE_WORDS 10
/* gm_swiss_tables writes, for each distinct table in directory order (up to
 * cap), its address, capacity, used, growthLeft, localDepth, index, groups,
 * group count, full and deleted slots; it returns the number of tables. */
size_t gm_swiss_tables(uintptr_t m, uint64_t *out, size_t cap);
/* gm_swiss_ctrl_counts counts the full, deleted and empty control bytes of the group at g. */
void gm_swiss_ctrl_counts(uintptr_t g, uint32_t out[3]);
/* gm_swiss_probes stores for each key the groups its lookup probes and the
 * keys it compares (H2 matches); cmps may be NULL. */
void gm_swiss_probes(int shape, uintptr_t m, const int64_t *keys, size_t n, uint32_t *groups, uint32_t *cmps);
/* gm_swiss_check verifies every invariant of m and aborts when one fails. */
void gm_swiss_check(int shape, uintptr_t m);

/* Collector. */
void gm_gc(void);                 /* runtime.GC: a whole stop-the-world cycle */
void gm_gc_start(void);           /* begins a concurrent cycle: roots shaded */
size_t gm_gc_step(size_t n);      /* scans up to n grey objects; returns grey left */
void gm_gc_mark_finish(void);     /* drains the grey queue; emits mark_done */
void gm_gc_sweep(void);           /* frees the unmarked objects; emits sweep_done */
int gm_gcphase(void);
void gm_set_barrier(int on);
void gm_set_mark_rate(int n);
/* gm_marked copies the addresses of marked objects (valid after mark_done)
 * into out, up to cap; returns how many there are. */
size_t gm_marked(uintptr_t *out, size_t cap);

/* Scavenger: returns every free page to the OS (debug.FreeOSMemory). */
uintptr_t gm_scavenge(void);

/* Statistics, for summaries and tests. */
typedef struct gm_stats {
	uint64_t arena;         /* arena base address */
	uint64_t arena_fixed;   /* 1 when the arena sits at Go's hint */
	uint64_t heap_pages;    /* runtime pages below the high-water mark */
	uint64_t pages_used, pages_free, pages_released;
	uint64_t objects, heap_live;
	uint64_t events, gc_cycles;
	uint64_t released_bytes; /* total bytes ever madvised */
	uint64_t advice;         /* GM_ADVISE_FREE or GM_ADVISE_DONTNEED in effect */
	uint64_t grows, same_size_grows; /* hashGrow calls, and those to the same size */
	uint64_t swiss_grows, swiss_splits, swiss_prunes; /* Swiss tables grown, split, and pruned of tombstones */
} gm_stats;
void gm_get_stats(gm_stats *s);

/* Residency, read from the kernel. */
/* gm_resident counts the resident and total OS pages of [addr, addr+len). */
int gm_resident(uintptr_t addr, uintptr_t len, uint64_t *resident, uint64_t *total);
/* gm_pagemap_present counts the pages of [addr, addr+len) that
 * /proc/self/pagemap reports present. */
int gm_pagemap_present(uintptr_t addr, uintptr_t len, uint64_t *present);
/* gm_smaps_arena sums Rss and LazyFree (kB) of the arena's mappings. */
int gm_smaps_arena(uint64_t *rss_kb, uint64_t *lazyfree_kb);

/* Dumps. meta_extra is a JSON object body ("\"k\": v, ...") added to meta,
 * or NULL. jsonl selects JSON Lines. */
int gm_dump(const char *path, int jsonl, const char *meta_extra);

#endif
