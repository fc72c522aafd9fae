/*
 * test_gcmap.c holds the C unit tests of the tracer's core. Each test reads
 * GIVEN / WHEN / THEN; a failed expectation prints the line and exits 1.
 * Built three ways by tracer/Makefile: release (make test), with every map
 * checked after every operation (make debug), and under ASan + UBSan
 * (make sanitize) or valgrind (make valgrind).
 */
#define _GNU_SOURCE
#include "gcmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

#define EXPECT(cond)                                                             \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: %s: expected %s\n", __FILE__, __LINE__, \
				__func__, #cond);                                \
			failures++;                                              \
		}                                                                \
	} while (0)

enum { COUNT, FLAGS, B, NOVERFLOW, HASH0, BUCKETS, OLDBUCKETS, NEVACUATE, EXTRA };

static void start(uint64_t seed, int gcmode, int advice, int check)
{
	gm_config c;
	gm_default_config(&c);
	c.seed = seed;
	c.gcmode = gcmode;
	c.madvise = advice;
	c.gogc = -1;
	if (check >= 0)
		c.check = check;
	if (gm_init(&c) != 0) {
		fprintf(stderr, "gm_init failed\n");
		exit(1);
	}
}

static uint64_t hdr(uintptr_t h, int field)
{
	uint64_t out[9];
	gm_map_header(h, out);
	return out[field];
}

static int contains(const uintptr_t *a, size_t n, uintptr_t p)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] == p)
			return 1;
	return 0;
}

/* B follows Go 1.19: it grows at count 9, then at 13*2^(B-1)+1. */
static void testBSequence(void)
{
	start(1, GM_GC_STW, 0, 0);
	int r = gm_root_add("main.m", GM_ROOT_GLOBAL);
	uintptr_t h = gm_makemap(GM_SHAPE_I64_I64, 0);
	gm_root_set(r, h);
	int b = 0;
	for (int64_t k = 1; k <= 30000; k++) {
		gm_mapassign(GM_SHAPE_I64_I64, h, k, (uint64_t)k);
		int64_t threshold = b == 0 ? 8 : 13LL << (b - 1);
		if (k > threshold)
			b++;
		if ((int)hdr(h, B) != b) {
			EXPECT((int)hdr(h, B) == b);
			break;
		}
	}
	EXPECT(hdr(h, COUNT) == 30000);
	gm_fini();
}

/* A map with invariants checked after each operation survives a random mix. */
static void testRandomOps(void)
{
	start(7, GM_GC_STW, 0, 1);
	for (int shape = 0; shape < GM_NSHAPES; shape++) {
		uintptr_t h = gm_makemap(shape, 0);
		int r = gm_root_add("main.m", GM_ROOT_GLOBAL);
		gm_root_set(r, h);
		static char present[2048];
		memset(present, 0, sizeof present);
		int64_t n = 0;
		srand(3);
		for (int i = 0; i < 6000; i++) {
			int64_t k = rand() % 2048;
			if (rand() % 3) {
				uint64_t v = shape == GM_SHAPE_I64_PTR ? gm_new_value(32) : (uint64_t)k * 3;
				gm_mapassign(shape, h, k, v);
				n += !present[k];
				present[k] = 1;
			} else {
				gm_mapdelete(shape, h, k);
				n -= present[k];
				present[k] = 0;
			}
			if (i % 1000 == 999)
				gm_gc();
		}
		EXPECT((int64_t)hdr(h, COUNT) == n);
		for (int64_t k = 0; k < 2048; k++) {
			uint64_t v;
			EXPECT(gm_mapaccess2(shape, h, k, &v) == present[k]);
			if (shape == GM_SHAPE_I64_I64 && present[k])
				EXPECT(v == (uint64_t)k * 3);
		}
		gm_mapclear(shape, h);
		EXPECT(hdr(h, COUNT) == 0);
		EXPECT(hdr(h, OLDBUCKETS) == 0);
		gm_map_check(shape, h);
	}
	gm_fini();
}

/* The old bucket array lives while growing and is freed by the next GC. */
static void testOldBucketsFreed(void)
{
	start(2, GM_GC_STW, 0, -1);
	int r = gm_root_add("main.m", GM_ROOT_GLOBAL);
	uintptr_t h = gm_makemap(GM_SHAPE_I64_PTR, 0);
	gm_root_set(r, h);
	int64_t k = 0;
	while (hdr(h, OLDBUCKETS) == 0 || hdr(h, B) < 6)
		gm_mapassign(GM_SHAPE_I64_PTR, h, k++, gm_new_value(16));
	uintptr_t old = hdr(h, OLDBUCKETS);
	uint64_t nevac = hdr(h, NEVACUATE);
	gm_gc();
	uintptr_t marked[1 << 14];
	size_t n = gm_marked(marked, 1 << 14);
	(void)n;
	while (hdr(h, OLDBUCKETS) != 0) {
		gm_mapassign(GM_SHAPE_I64_PTR, h, k++, gm_new_value(16));
		EXPECT(hdr(h, NEVACUATE) >= nevac || hdr(h, OLDBUCKETS) == 0);
		nevac = hdr(h, NEVACUATE);
	}
	gm_gc_start();
	gm_gc_mark_finish();
	n = gm_marked(marked, 1 << 14);
	EXPECT(!contains(marked, n < (1 << 14) ? n : (1 << 14), old));
	EXPECT(contains(marked, n < (1 << 14) ? n : (1 << 14), hdr(h, BUCKETS)));
	gm_gc_sweep();
	gm_fini();
}

/* Deleting every key frees the values, keeps the buckets; the scavenger
 * returns the values' pages and, with MADV_DONTNEED, they leave RAM. */
static void testFillDeleteScavenge(int advice)
{
	start(3, GM_GC_STW, advice, 0);
	int r = gm_root_add("main.m", GM_ROOT_GLOBAL);
	uintptr_t h = gm_makemap(GM_SHAPE_I64_PTR, 0);
	gm_root_set(r, h);
	for (int64_t k = 0; k < 100000; k++)
		gm_mapassign(GM_SHAPE_I64_PTR, h, k, gm_new_value(64));
	gm_gc();
	gm_stats before;
	gm_get_stats(&before);
	for (int64_t k = 0; k < 100000; k++)
		gm_mapdelete(GM_SHAPE_I64_PTR, h, k);
	EXPECT(hdr(h, COUNT) == 0);
	gm_gc();
	gm_stats after;
	gm_get_stats(&after);
	EXPECT(after.heap_live < before.heap_live / 2);
	EXPECT(hdr(h, BUCKETS) != 0);
	uintptr_t released = gm_scavenge();
	EXPECT(released >= 100000 * 64 * 9 / 10);
	gm_get_stats(&after);
	EXPECT(after.advice == (uint64_t)advice);
	uint64_t res, tot;
	EXPECT(gm_resident(after.arena, after.heap_pages * 8192, &res, &tot) == 0);
	if (advice == GM_ADVISE_DONTNEED)
		EXPECT((tot - res) * 4096 >= released);
	else
		EXPECT((tot - res) * 4096 < released / 2); /* MADV_FREE pages stay until memory pressure */
	uint64_t rss_kb, lazy_kb;
	EXPECT(gm_smaps_arena(&rss_kb, &lazy_kb) == 0);
	if (advice == GM_ADVISE_FREE)
		EXPECT(lazy_kb * 1024 >= released * 9 / 10);
	else
		EXPECT(lazy_kb == 0);
	char path[] = "/tmp/gcmap_test_XXXXXX";
	int fd = mkstemp(path);
	EXPECT(fd >= 0);
	close(fd);
	EXPECT(gm_dump(path, 1, "\"scenario\": \"c-test\"") == 0);
	unlink(path);
	gm_fini();
}

/* With the barrier, a concurrent cycle interleaved with growth marks every
 * value the map still holds; without it, some are lost: the cycle starts
 * one insert before the map grows, so the new bucket array is born black
 * and evacuation moves values into it from old buckets not yet scanned. */
static size_t concurrentLost(int barrier)
{
	start(4, GM_GC_CONCURRENT, 0, 0);
	int r = gm_root_add("main.m", GM_ROOT_GLOBAL);
	uintptr_t h = gm_makemap(GM_SHAPE_I64_PTR, 0);
	gm_root_set(r, h);
	int64_t k = 0;
	for (; k < 3328; k++) /* 6.5 * 2^9: the next insert grows the map */
		gm_mapassign(GM_SHAPE_I64_PTR, h, k, gm_new_value(16));
	EXPECT(hdr(h, B) == 9 && hdr(h, OLDBUCKETS) == 0);
	gm_set_barrier(barrier);
	gm_set_mark_rate(0);
	gm_gc_start();
	for (; k < 9000; k++) {
		gm_mapassign(GM_SHAPE_I64_PTR, h, k, gm_new_value(16));
		gm_gc_step(1);
	}
	gm_gc_mark_finish();
	static uintptr_t marked[1 << 16];
	size_t n = gm_marked(marked, 1 << 16);
	size_t lost = 0;
	for (int64_t i = 0; i < k; i++) {
		uint64_t v;
		if (gm_mapaccess2(GM_SHAPE_I64_PTR, h, i, &v) && !contains(marked, n, v))
			lost++;
	}
	gm_gc_sweep();
	gm_fini();
	return lost;
}

static void testConcurrentBarrier(void)
{
	EXPECT(concurrentLost(1) == 0);
	EXPECT(concurrentLost(0) > 0);
}

/* The same seed gives the same addresses and hash seeds. */
static void testDeterministic(void)
{
	uint64_t h0[2];
	uintptr_t b[2];
	for (int i = 0; i < 2; i++) {
		start(99, GM_GC_STW, 0, 0);
		uintptr_t h = gm_makemap(GM_SHAPE_I64_I64, 0);
		for (int64_t k = 0; k < 1000; k++)
			gm_mapassign(GM_SHAPE_I64_I64, h, k, 1);
		h0[i] = hdr(h, HASH0);
		b[i] = hdr(h, BUCKETS);
		gm_fini();
	}
	EXPECT(h0[0] == h0[1]);
	EXPECT(b[0] == b[1]);
}

/* --- the Swiss-table map (swiss.c) --- */

enum { S_USED, S_SEED, S_DIRPTR, S_DIRLEN, S_GDEPTH, S_GSHIFT, S_TOMB, S_CLEARSEQ, S_TABLES, S_CAPACITY };

static uint64_t shdr(uintptr_t m, int field)
{
	uint64_t out[GM_SWISS_HEADER_WORDS];
	gm_swiss_header(m, out);
	return out[field];
}

/* A Swiss map[int64]int64 grows as Go 1.26's does (fixtures/go/swiss_sequence.json):
 * small map to 8, a 16-slot table at 9, doublings at 15, 29, 57, 113, 225,
 * 449 to 1024 slots, the first split at 897. */
static void testSwissSequence(void)
{
	start(1, GM_GC_STW, 0, -1);
	int r = gm_root_add("main.m", GM_ROOT_GLOBAL);
	uintptr_t m = gm_swiss_makemap(GM_SHAPE_I64_I64, 0);
	gm_root_set(r, m);
	EXPECT(shdr(m, S_DIRPTR) == 0);
	static const int64_t at[] = {1, 9, 15, 29, 57, 113, 225, 449, 897};
	static const uint32_t want[][3] = {{0, 0, 8}, {1, 1, 16}, {1, 1, 32}, {1, 1, 64}, {1, 1, 128},
					   {1, 1, 256}, {1, 1, 512}, {1, 1, 1024}, {2, 2, 2048}};
	static int64_t keys[1000];
	static uint32_t trace[3 * 1000];
	for (int64_t k = 0; k < 1000; k++)
		keys[k] = k + 1;
	gm_swiss_assign_batch(GM_SHAPE_I64_I64, m, keys, NULL, 1000, 0, trace);
	size_t next = 0;
	for (int64_t n = 1; n <= 1000 && n <= 1707; n++) {
		const uint32_t *t = trace + 3 * (n - 1);
		if (next < sizeof at / sizeof at[0] && n == at[next])
			next++;
		const uint32_t *w = want[next - 1];
		if (t[0] != w[0] || t[1] != w[1] || t[2] != w[2]) {
			fprintf(stderr, "count %ld: dir_len %u tables %u capacity %u\n", (long)n, t[0], t[1], t[2]);
			EXPECT(0);
			break;
		}
	}
	gm_fini();
}

/* A Swiss map checked after every operation survives a random mix, with
 * collections and a clear, in both shapes. */
static void testSwissRandomOps(void)
{
	start(8, GM_GC_STW, 0, 1);
	for (int shape = 0; shape < GM_NSHAPES; shape++) {
		uintptr_t m = gm_swiss_makemap(shape, 0);
		int r = gm_root_add("main.m", GM_ROOT_GLOBAL);
		gm_root_set(r, m);
		static char present[4096];
		memset(present, 0, sizeof present);
		int64_t n = 0;
		srand(5);
		for (int i = 0; i < 12000; i++) {
			int64_t k = rand() % 4096;
			if (rand() % 3) {
				uint64_t v = shape == GM_SHAPE_I64_PTR ? gm_new_value(32) : (uint64_t)k * 3;
				gm_swiss_assign(shape, m, k, v);
				n += !present[k];
				present[k] = 1;
			} else {
				gm_swiss_delete(shape, m, k);
				n -= present[k];
				present[k] = 0;
			}
			if (i % 2000 == 1999)
				gm_gc();
		}
		EXPECT((int64_t)shdr(m, S_USED) == n);
		for (int64_t k = 0; k < 4096; k++) {
			uint64_t v;
			EXPECT(gm_swiss_access2(shape, m, k, &v) == present[k]);
			if (shape == GM_SHAPE_I64_I64 && present[k])
				EXPECT(v == (uint64_t)k * 3);
		}
		uint64_t tables = shdr(m, S_TABLES), capacity = shdr(m, S_CAPACITY);
		gm_swiss_clear(shape, m);
		EXPECT(shdr(m, S_USED) == 0);
		EXPECT(shdr(m, S_CLEARSEQ) == 1);
		EXPECT(shdr(m, S_TABLES) == tables && shdr(m, S_CAPACITY) == capacity);
		gm_swiss_check(shape, m);
	}
	gm_fini();
}

/* Deleting every key of a Swiss map keeps every table and groups array
 * live; the collector frees the values, never a group. */
static void testSwissFillDelete(void)
{
	start(3, GM_GC_STW, 0, 0);
	int r = gm_root_add("main.m", GM_ROOT_GLOBAL);
	uintptr_t m = gm_swiss_makemap(GM_SHAPE_I64_PTR, 0);
	gm_root_set(r, m);
	for (int64_t k = 0; k < 50000; k++)
		gm_swiss_assign(GM_SHAPE_I64_PTR, m, k, gm_new_value(64));
	gm_gc();
	uint64_t tables = shdr(m, S_TABLES);
	static uint64_t before[256 * GM_SWISS_TABLE_WORDS], after[256 * GM_SWISS_TABLE_WORDS];
	EXPECT(gm_swiss_tables(m, before, 256) == tables);
	for (int64_t k = 0; k < 50000; k++)
		gm_swiss_delete(GM_SHAPE_I64_PTR, m, k);
	gm_gc();
	gm_swiss_check(GM_SHAPE_I64_PTR, m);
	EXPECT(shdr(m, S_USED) == 0 && shdr(m, S_TABLES) == tables && shdr(m, S_TOMB) == 1);
	EXPECT(gm_swiss_tables(m, after, 256) == tables);
	uint64_t deleted = 0;
	for (uint64_t i = 0; i < tables; i++) {
		const uint64_t *a = after + i * GM_SWISS_TABLE_WORDS, *b = before + i * GM_SWISS_TABLE_WORDS;
		EXPECT(a[0] == b[0] && a[6] == b[6]); /* same table, same groups */
		EXPECT(a[8] == 0);                     /* nothing full */
		EXPECT(gm_object_base(a[6]) == a[6]);  /* the groups array survived the GC */
		deleted += a[9];
	}
	EXPECT(deleted > 0);
	gm_stats st;
	gm_get_stats(&st);
	EXPECT(st.objects == 1 + 1 + 2 * tables); /* Map, directory, tables and groups: the values are gone */
	gm_fini();
}

/* A split during a concurrent mark moves values from old groups not yet
 * scanned into new groups born black: the barrier shades them, and
 * without it they are lost. */
static size_t swissConcurrentLost(int barrier)
{
	start(4, GM_GC_CONCURRENT, 0, 0);
	int r = gm_root_add("main.m", GM_ROOT_GLOBAL);
	uintptr_t m = gm_swiss_makemap(GM_SHAPE_I64_PTR, 0);
	gm_root_set(r, m);
	int64_t k = 0;
	for (; k < 896; k++) /* 1024 x 7/8: the next insert splits the table */
		gm_swiss_assign(GM_SHAPE_I64_PTR, m, k, gm_new_value(16));
	EXPECT(shdr(m, S_TABLES) == 1 && shdr(m, S_CAPACITY) == 1024);
	gm_set_barrier(barrier);
	gm_set_mark_rate(0);
	gm_gc_start();
	for (; k < 1200; k++) {
		gm_swiss_assign(GM_SHAPE_I64_PTR, m, k, gm_new_value(16));
		gm_gc_step(1);
	}
	EXPECT(shdr(m, S_TABLES) == 2);
	gm_gc_mark_finish();
	static uintptr_t marked[1 << 14];
	size_t n = gm_marked(marked, 1 << 14);
	size_t lost = 0;
	for (int64_t i = 0; i < k; i++) {
		uint64_t v;
		if (gm_swiss_access2(GM_SHAPE_I64_PTR, m, i, &v) && !contains(marked, n, v))
			lost++;
	}
	gm_gc_sweep();
	gm_fini();
	return lost;
}

static void testSwissConcurrentBarrier(void)
{
	EXPECT(swissConcurrentLost(1) == 0);
	EXPECT(swissConcurrentLost(0) > 0);
}

/* A Swiss dump is written without error (its records are checked in tests/test_tracer_swiss.py). */
static void testSwissDump(void)
{
	start(6, GM_GC_STW, 0, 0);
	int r = gm_root_add("main.m", GM_ROOT_GLOBAL);
	uintptr_t small = gm_swiss_makemap(GM_SHAPE_I64_I64, 0), big = gm_swiss_makemap(GM_SHAPE_I64_PTR, 5000);
	gm_root_set(r, small);
	int r2 = gm_root_add("main.big", GM_ROOT_GLOBAL);
	gm_root_set(r2, big);
	EXPECT(shdr(big, S_DIRLEN) == 8 && shdr(big, S_CAPACITY) == 8 * 1024); /* NewMap: 5000*8/7 slots, 8 tables */
	gm_swiss_assign(GM_SHAPE_I64_I64, small, 1, 1);
	for (int64_t k = 0; k < 5000; k++)
		gm_swiss_assign(GM_SHAPE_I64_PTR, big, k, gm_new_value(8));
	EXPECT(shdr(big, S_TABLES) == 8); /* the hint was enough: no growth */
	char path[] = "/tmp/gcmap_swiss_XXXXXX";
	int fd = mkstemp(path);
	EXPECT(fd >= 0);
	close(fd);
	EXPECT(gm_dump(path, 1, NULL) == 0);
	EXPECT(gm_dump(path, 0, NULL) == 0);
	unlink(path);
	gm_fini();
}

int main(void)
{
	testBSequence();
	testRandomOps();
	testOldBucketsFreed();
	testFillDeleteScavenge(GM_ADVISE_DONTNEED);
	testFillDeleteScavenge(GM_ADVISE_FREE);
	testConcurrentBarrier();
	testDeterministic();
	testSwissSequence();
	testSwissRandomOps();
	testSwissFillDelete();
	testSwissConcurrentBarrier();
	testSwissDump();
	if (failures) {
		fprintf(stderr, "test_gcmap: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_gcmap: ok\n");
	return 0;
}
