/*
 * map.c is Go 1.19's map (src/runtime/map.go and map_fast64.go), rewritten
 * in C on the tracer's heap so that every allocation, pointer store and
 * growth step of a real Go map can be watched and dumped.
 *
 * A map is just a hash table. The data is arranged into an array of buckets
 * (bmap). Each bucket holds up to 8 key/elem pairs: first tophash[8], the
 * top byte of each key's hash (or a state below minTopHash), then the 8
 * keys, then the 8 elems, then a pointer to an overflow bucket. The low B
 * bits of the hash select the bucket. When more than 8 keys land in one
 * bucket, further buckets are chained through the overflow pointer. For
 * int64 keys and 8-byte elems a bucket is 8 + 64 + 64 + 8 = 144 bytes,
 * exactly Go's size class 11.
 *
 * Why an emptied map keeps its memory. The table grows when an insert would
 * push the average load over 6.5 per bucket (overLoadFactor) or when there
 * are about as many overflow buckets as buckets (tooManyOverflowBuckets: the
 * table is sparse and "grows" to the same size to compact its chains). It
 * never shrinks: mapdelete only marks cells empty (emptyOne, and emptyRest
 * when nothing follows), mapclear zeroes the bucket array but keeps it.
 * Growth is incremental (hashGrow, then growWork from each later write
 * evacuates the bucket being written and one more, evacuatedX/Y/Empty
 * marking what moved, advanceEvacuationMark counting progress in
 * nevacuate), so the old array (oldbuckets) stays reachable until the last
 * old bucket is evacuated and is freed only by the first collection after
 * that. Load factor 6.5 is Go's measured trade-off (from map.go, 64-bit,
 * 8-byte keys and elems, maximally loaded tables):
 *
 *	loadFactor  %overflow  bytes/entry  hitprobe  missprobe
 *	      6.00      15.27        11.67      4.00       6.00
 *	      6.50      20.90        10.79      4.25       6.50
 *	      7.00      27.14        10.15      4.50       7.00
 *
 * Pointer-free buckets. When neither key nor elem holds pointers (our
 * map[int64]int64) Go marks the bucket type as having no pointers, so the
 * collector never scans bucket arrays. The overflow pointer at the end of
 * each bucket is then invisible to the GC, and newoverflow keeps every
 * overflow bucket alive through hmap.extra.overflow (a *[]*bmap), promoted to
 * extra.oldoverflow when the map starts growing. This file does the same:
 * the type table below gives pointer-free buckets an empty ptrmask and an
 * ovfoff, which only the dump writer reads (see tracer/README.md for why the
 * dump still shows that word as a pointer field).
 *
 * What is faithful: the data layout (hmap, mapextra, bmap byte for byte),
 * every constant, the fast64 variants Go compiles int64-keyed maps to
 * (mapassign_fast64, mapaccess2_fast64, mapdelete_fast64, evacuate_fast64),
 * makeBucketArray's preallocated overflow buckets at the tail of arrays with
 * B >= 4 and their sentinel, mapclear, hash0 reset on an emptied map, and
 * every pointer store going through the write barrier as the compiler
 * arranges (writeptr). The hash is Go's memhash64 fallback (wyhash) keyed
 * by fastrand, not the AES hash amd64 uses; nothing about the structure
 * depends on which one. Iterators are not implemented (the iterator and
 * oldIterator flags are kept and honoured where they change behaviour).
 */
#include "runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define bucketCntBits 3
#define bucketCnt (1 << bucketCntBits)
/* loadFactorNum/loadFactorDen is Go's 13/2, kept in gm so that the
 * load-factor table (gm_set_load_factor, tracer/native/loadfactor.py) can measure
 * the map at other load factors; gm_init restores 13/2. */
#define loadFactorNum ((uintptr_t)gm.mapLoadFactorNum)
#define loadFactorDen ((uintptr_t)gm.mapLoadFactorDen)
#define dataOffset 8

#define emptyRest 0      /* this cell is empty, and there are no more non-empty cells at higher indexes or overflows */
#define emptyOne 1       /* this cell is empty */
#define evacuatedX 2     /* key/elem is valid; entry has been evacuated to first half of larger table */
#define evacuatedY 3     /* same as above, but evacuated to second half of larger table */
#define evacuatedEmpty 4 /* cell is empty, bucket is evacuated */
#define minTopHash 5     /* minimum tophash for a normal filled cell */

#define iterator 1     /* there may be an iterator using buckets */
#define oldIterator 2  /* there may be an iterator using oldbuckets */
#define hashWriting 4  /* a goroutine is writing to the map */
#define sameSizeGrow 8 /* the current map growth is to a new map of the same size */

/* hmap is a header for a Go map, laid out as Go 1.19's. */
typedef struct hmap {
	int64_t count;       /* # live cells == size of map */
	uint8_t flags;
	uint8_t B;           /* log_2 of # of buckets */
	uint16_t noverflow;  /* approximate number of overflow buckets */
	uint32_t hash0;      /* hash seed */
	uintptr_t buckets;   /* array of 2^B buckets; may be nil if count==0 */
	uintptr_t oldbuckets; /* previous bucket array, non-nil only when growing */
	uintptr_t nevacuate; /* progress counter for evacuation */
	uintptr_t extra;     /* *mapextra: optional fields */
} hmap;

/* mapextra holds fields that are not present on all maps. */
typedef struct mapextra {
	uintptr_t overflow;     /* *[]*bmap: overflow buckets of buckets, for pointer-free buckets */
	uintptr_t oldoverflow;  /* *[]*bmap: overflow buckets of oldbuckets */
	uintptr_t nextOverflow; /* *bmap: a free preallocated overflow bucket */
} mapextra;

/* bmapslice is a []*bmap slice header. */
typedef struct bmapslice {
	uintptr_t array;
	int64_t len, cap;
} bmapslice;

typedef struct bmap {
	uint8_t tophash[bucketCnt];
} bmap;

_Static_assert(sizeof(hmap) == 48, "hmap must match Go 1.19's layout");
_Static_assert(sizeof(mapextra) == 24, "mapextra must match Go 1.19's layout");

/* maptype is the part of Go's runtime.maptype that the fast64 paths need. */
typedef struct maptype {
	const char *name;
	int hmaptype, buckettype, overflowtype;
	uintptr_t keysize, elemsize, bucketsize;
	bool ptrdata; /* t.bucket.ptrdata != 0 */
} maptype;

static const maptype maptypes[GM_NSHAPES] = {
	{"map[int64]int64", T_HMAP_I64, T_BUCKETS_I64, T_OVERFLOW_I64, 8, 8, 144, false},
	{"map[int64]*main.T", T_HMAP_PTR, T_BUCKETS_PTR, T_OVERFLOW_PTR, 8, 8, 144, true},
};

/* Words of a 144-byte bucket: 0 tophash, 1-8 keys, 9-16 elems, 17 overflow. */
#define ELEMWORDS ((uint64_t)0xff << 9)
#define OVFWORD ((uint64_t)1 << 17)

const gmtype gmtypes[T_NTYPES] = {
	[T_HMAP_I64] = {"map[int64]int64", "hmap", 0, (1 << 2) | (1 << 3) | (1 << 5), false, -1},
	[T_HMAP_PTR] = {"map[int64]*main.T", "hmap", 0, (1 << 2) | (1 << 3) | (1 << 5), false, -1},
	[T_BUCKETS_I64] = {"bmap[int64]int64", "buckets", 144, 0, false, 136},
	[T_OVERFLOW_I64] = {"bmap[int64]int64", "overflow", 144, 0, false, 136},
	[T_BUCKETS_PTR] = {"bmap[int64]*main.T", "buckets", 144, ELEMWORDS | OVFWORD, false, -1},
	[T_OVERFLOW_PTR] = {"bmap[int64]*main.T", "overflow", 144, ELEMWORDS | OVFWORD, false, -1},
	[T_MAPEXTRA] = {"runtime.mapextra", "mapextra", 0, 0, true, -1},
	[T_BMAPSLICE] = {"[]*runtime.bmap", "slice", 24, 1, false, -1},
	[T_BMAPARRAY] = {"[...]*runtime.bmap", "array", 0, 0, true, -1},
	[T_VALUE] = {"main.T", "value", 0, 0, false, -1},
	/* Go 1.26's Swiss-table map (swiss.c). Map: dirPtr is word 2; table:
	 * groups.data is word 2; a 136-byte group: the control word, then
	 * 8 slots of key (word 1+2i) and elem (word 2+2i). */
	[T_SWISS_MAP_I64] = {"map[int64]int64", "swiss_map", 0, 1 << 2, false, -1},
	[T_SWISS_MAP_PTR] = {"map[int64]*main.T", "swiss_map", 0, 1 << 2, false, -1},
	[T_SWISS_DIRECTORY] = {"[]*maps.table", "swiss_directory", 0, 0, true, -1},
	[T_SWISS_TABLE] = {"internal/runtime/maps.table", "swiss_table", 0, 1 << 2, false, -1},
	[T_SWISS_GROUPS_I64] = {"[]group[int64]int64", "swiss_groups", 136, 0, false, -1},
	[T_SWISS_GROUPS_PTR] = {"[]group[int64]*main.T", "swiss_groups", 136, 0x15554, false, -1},
};

int hmapShape(int type)
{
	return type == T_HMAP_PTR ? GM_SHAPE_I64_PTR : GM_SHAPE_I64_I64;
}

#define add(p, x) ((uintptr_t)(p) + (uintptr_t)(x))
#define EXTRA(h) ((mapextra *)(h)->extra)

/* memhash64 is Go's memhash64Fallback (wyhash). */
static uintptr_t mix(uint64_t a, uint64_t b)
{
	__uint128_t m = (__uint128_t)a * b;
	return (uintptr_t)((uint64_t)(m >> 64) ^ (uint64_t)m);
}

uintptr_t memhash64(uint64_t a, uintptr_t seed)
{
	const uint64_t m1 = 0xa0761d6478bd642fULL, m2 = 0xe7037ed1a0b428dbULL,
		       m5 = 0x1d8e4e27c47d124fULL;
	return mix(m5 ^ 8, mix(a ^ m2, a ^ seed ^ gm.hashkey0 ^ m1));
}

/* bucketShift returns 1<<b. */
static inline uintptr_t bucketShift(uint8_t b) { return (uintptr_t)1 << (b & 63); }
/* bucketMask returns 1<<b - 1. */
static inline uintptr_t bucketMask(uint8_t b) { return bucketShift(b) - 1; }

/* tophash calculates the tophash value for hash. */
static inline uint8_t tophash(uintptr_t hash)
{
	uint8_t top = (uint8_t)(hash >> 56);
	if (top < minTopHash)
		top += minTopHash;
	return top;
}

/* isEmpty reports whether the given tophash array entry represents an empty bucket entry. */
static inline bool isEmpty(uint8_t x) { return x <= emptyOne; }

/* evacuated reports whether bucket b has been evacuated. */
static inline bool evacuated(const bmap *b)
{
	uint8_t h = b->tophash[0];
	return h > emptyOne && h < minTopHash;
}

static inline bmap *bmapOverflow(const maptype *t, const bmap *b)
{
	return *(bmap **)add(b, t->bucketsize - PtrSize);
}

/* setoverflow stores ovf in b's overflow pointer: a pointer store the
 * compiler barriers even for pointer-free bucket types. */
static void setoverflow(const maptype *t, bmap *b, bmap *ovf)
{
	writeptr((uintptr_t *)add(b, t->bucketsize - PtrSize), (uintptr_t)ovf, true);
}

static inline uintptr_t keyAt(const maptype *t, const bmap *b, uintptr_t i)
{
	return add(b, dataOffset + i * t->keysize);
}

static inline uintptr_t elemAt(const maptype *t, const bmap *b, uintptr_t i)
{
	return add(b, dataOffset + bucketCnt * t->keysize + i * t->elemsize);
}

/* overLoadFactor reports whether count items placed in 1<<B buckets is over loadFactor. */
static bool overLoadFactor(int64_t count, uint8_t B)
{
	return count > bucketCnt && (uintptr_t)count > loadFactorNum * (bucketShift(B) / loadFactorDen);
}

/* tooManyOverflowBuckets reports whether noverflow buckets is too many for a map with 1<<B buckets. */
static bool tooManyOverflowBuckets(uint16_t noverflow, uint8_t B)
{
	if (B > 15)
		B = 15;
	return noverflow >= (uint16_t)1 << (B & 15);
}

/* growing reports whether h is growing. */
static inline bool growing(const hmap *h) { return h->oldbuckets != 0; }

/* isSameSizeGrow reports whether the current growth is to a map of the same size. */
static inline bool isSameSizeGrow(const hmap *h) { return (h->flags & sameSizeGrow) != 0; }

/* noldbuckets calculates the number of buckets prior to the current map growth. */
static uintptr_t noldbuckets(const hmap *h)
{
	uint8_t oldB = h->B;
	if (!isSameSizeGrow(h))
		oldB--;
	return bucketShift(oldB);
}

/* oldbucketmask provides a mask that can be applied to calculate n % noldbuckets(). */
static uintptr_t oldbucketmask(const hmap *h) { return noldbuckets(h) - 1; }

/* incrnoverflow increments h.noverflow: exactly below B 16, then with
 * probability 1/(1<<(B-15)). */
static void incrnoverflow(hmap *h)
{
	if (h->B < 16) {
		h->noverflow++;
		return;
	}
	uint32_t mask = ((uint32_t)1 << (h->B - 15)) - 1;
	if ((fastrand() & mask) == 0)
		h->noverflow++;
}

/* createOverflow allocates h.extra and h.extra.overflow when missing. */
static void createOverflow(hmap *h)
{
	if (h->extra == 0)
		writeptr(&h->extra, mallocgc(sizeof(mapextra), T_MAPEXTRA), true);
	if (EXTRA(h)->overflow == 0)
		writeptr(&EXTRA(h)->overflow, mallocgc(sizeof(bmapslice), T_BMAPSLICE), true);
}

/* appendOverflow is *s = append(*s, ovf), growing the array as growslice does. */
static void appendOverflow(uintptr_t sp, uintptr_t ovf)
{
	bmapslice *s = (bmapslice *)sp;
	if (s->len == s->cap) {
		int64_t newcap = s->cap, doublecap = 2 * s->cap, want = s->len + 1;
		if (want > doublecap) {
			newcap = want;
		} else if (s->cap < 256) {
			newcap = doublecap;
		} else {
			while (newcap < want)
				newcap += (newcap + 3 * 256) / 4;
		}
		uintptr_t mem = roundupsize((uintptr_t)newcap * PtrSize);
		uintptr_t a = mallocgc(mem, T_BMAPARRAY);
		for (int64_t i = 0; i < s->len; i++)
			writeptr((uintptr_t *)a + i, ((uintptr_t *)s->array)[i], true);
		writeptr(&s->array, a, true);
		s->cap = (int64_t)(mem / PtrSize);
	}
	writeptr((uintptr_t *)s->array + s->len, ovf, true);
	s->len++;
}

/* newoverflow links a new overflow bucket after b, from the preallocated
 * pool when one is left, and returns it. */
static bmap *newoverflow(const maptype *t, hmap *h, bmap *b)
{
	bmap *ovf;
	if (h->extra != 0 && EXTRA(h)->nextOverflow != 0) {
		/* We have preallocated overflow buckets available. */
		ovf = (bmap *)EXTRA(h)->nextOverflow;
		if (bmapOverflow(t, ovf) == NULL) {
			/* We're not at the end of the preallocated overflow buckets. Bump the pointer. */
			writeptr(&EXTRA(h)->nextOverflow, add(ovf, t->bucketsize), true);
		} else {
			/* This is the last preallocated overflow bucket. Reset the
			 * overflow pointer on this bucket, which was set to a non-nil
			 * sentinel value. */
			setoverflow(t, ovf, NULL);
			writeptr(&EXTRA(h)->nextOverflow, 0, true);
		}
	} else {
		ovf = (bmap *)mallocgc(t->bucketsize, t->overflowtype);
	}
	incrnoverflow(h);
	if (!t->ptrdata) {
		createOverflow(h);
		appendOverflow(EXTRA(h)->overflow, (uintptr_t)ovf);
	}
	setoverflow(t, b, ovf);
	return ovf;
}

/* memclrBuckets zeroes n buckets at p: memclrHasPointers (barriered) for
 * bucket types with pointers, memclrNoHeapPointers otherwise. The stores of
 * nil over the pointer words the dump shows are recorded either way. */
static void memclrBuckets(const maptype *t, uintptr_t p, uintptr_t off, uintptr_t n)
{
	const gmtype *bt = &gmtypes[t->buckettype];
	for (uintptr_t i = 0; i < n; i += t->bucketsize) {
		for (uintptr_t w = off / PtrSize; w < t->bucketsize / PtrSize; w++) {
			uintptr_t *slot = (uintptr_t *)add(p, i + w * PtrSize);
			bool isptr = (bt->ptrmask >> w) & 1;
			bool isovf = bt->ovfoff >= 0 && w * PtrSize == (uintptr_t)bt->ovfoff;
			if ((isptr || isovf) && *slot != 0)
				writeptr(slot, 0, isptr);
		}
	}
	memset((void *)(p + off), 0, n - off);
}

/* makeBucketArray initializes a backing array for map buckets. 1<<b is the
 * minimum number of buckets to allocate; dirtyalloc, when not 0, is a bucket
 * array previously allocated with the same t and b, cleared and reused. */
static uintptr_t makeBucketArray(const maptype *t, uint8_t b, uintptr_t dirtyalloc, uintptr_t *nextOverflow)
{
	uintptr_t base = bucketShift(b);
	uintptr_t nbuckets = base;
	/* For small b, overflow buckets are unlikely. */
	if (b >= 4) {
		/* Add on the estimated number of overflow buckets required to
		 * insert the median number of elements used with this value of b. */
		nbuckets += bucketShift(b - 4);
		uintptr_t sz = t->bucketsize * nbuckets;
		uintptr_t up = roundupsize(sz);
		if (up != sz)
			nbuckets = up / t->bucketsize;
	}
	uintptr_t buckets;
	if (dirtyalloc == 0) {
		buckets = mallocgc(t->bucketsize * nbuckets, t->buckettype);
	} else {
		buckets = dirtyalloc;
		memclrBuckets(t, buckets, 0, t->bucketsize * nbuckets);
	}
	*nextOverflow = 0;
	if (base != nbuckets) {
		/* We preallocated some overflow buckets. A preallocated overflow
		 * bucket with a nil overflow pointer means more follow; the last
		 * one points at buckets, a safe non-nil sentinel. */
		*nextOverflow = add(buckets, base * t->bucketsize);
		bmap *last = (bmap *)add(buckets, (nbuckets - 1) * t->bucketsize);
		setoverflow(t, last, (bmap *)buckets);
	}
	return buckets;
}

/* makemap implements make(map[k]v, hint): B is the smallest size that holds
 * hint entries under the load factor. */
static uintptr_t makemap(const maptype *t, int64_t hint)
{
	if (hint < 0 || (uint64_t)hint > ((uint64_t)1 << 40))
		hint = 0;
	hmap *h = (hmap *)mallocgc(sizeof(hmap), t->hmaptype);
	h->hash0 = fastrand();
	/* Find the size parameter B which will hold the requested # of elements. */
	uint8_t B = 0;
	while (overLoadFactor(hint, B))
		B++;
	h->B = B;
	/* If B == 0, the buckets field is allocated lazily later (in mapassign). */
	if (h->B != 0) {
		uintptr_t nextOverflow;
		writeptr(&h->buckets, makeBucketArray(t, h->B, 0, &nextOverflow), true);
		if (nextOverflow != 0) {
			writeptr(&h->extra, mallocgc(sizeof(mapextra), T_MAPEXTRA), true);
			writeptr(&EXTRA(h)->nextOverflow, nextOverflow, true);
		}
	}
	return (uintptr_t)h;
}

/* hashGrow starts a growth: a new bucket array (twice as big, or the same
 * size when overflow buckets are too many) replaces buckets, which becomes
 * oldbuckets until evacuation completes. */
static void hashGrow(const maptype *t, hmap *h)
{
	/* If we've hit the load factor, get bigger. Otherwise, there are too
	 * many overflow buckets, so keep the same number of buckets and "grow"
	 * laterally. */
	uint8_t bigger = 1;
	if (!overLoadFactor(h->count + 1, h->B)) {
		bigger = 0;
		h->flags |= sameSizeGrow;
	}
	uintptr_t oldbuckets = h->buckets;
	uintptr_t nextOverflow;
	uintptr_t newbuckets = makeBucketArray(t, h->B + bigger, 0, &nextOverflow);

	uint8_t flags = h->flags & ~(iterator | oldIterator);
	if (h->flags & iterator)
		flags |= oldIterator;
	/* commit the grow */
	h->B += bigger;
	h->flags = flags;
	writeptr(&h->oldbuckets, oldbuckets, true);
	writeptr(&h->buckets, newbuckets, true);
	h->nevacuate = 0;
	h->noverflow = 0;

	if (h->extra != 0 && EXTRA(h)->overflow != 0) {
		/* Promote current overflow buckets to the old generation. */
		if (EXTRA(h)->oldoverflow != 0)
			gmthrow("oldoverflow is not nil");
		writeptr(&EXTRA(h)->oldoverflow, EXTRA(h)->overflow, true);
		writeptr(&EXTRA(h)->overflow, 0, true);
	}
	if (nextOverflow != 0) {
		if (h->extra == 0)
			writeptr(&h->extra, mallocgc(sizeof(mapextra), T_MAPEXTRA), true);
		writeptr(&EXTRA(h)->nextOverflow, nextOverflow, true);
	}
	gm.grows++;
	gm.same_size_grows += bigger == 0;
	if (recording())
		recordEvent(EV_GROW_START, bigger == 0, (uintptr_t)h, 0, 0, 0);
	/* the actual copying of the hash table data is done incrementally by
	 * growWork() and evacuate(). */
}

/* bucketEvacuated reports whether old bucket number bucket has been evacuated. */
static bool bucketEvacuated(const maptype *t, const hmap *h, uintptr_t bucket)
{
	return evacuated((const bmap *)add(h->oldbuckets, bucket * t->bucketsize));
}

/* advanceEvacuationMark moves nevacuate past evacuated old buckets and ends
 * the growth when none is left. */
static void advanceEvacuationMark(hmap *h, const maptype *t, uintptr_t newbit)
{
	h->nevacuate++;
	/* Experiments suggest that 1024 is overkill by at least an order of
	 * magnitude. Put it in there as a safeguard anyway. */
	uintptr_t stop = h->nevacuate + 1024;
	if (stop > newbit)
		stop = newbit;
	while (h->nevacuate != stop && bucketEvacuated(t, h, h->nevacuate))
		h->nevacuate++;
	if (h->nevacuate == newbit) { /* newbit == # of oldbuckets */
		/* Growing is all done. Free old main bucket array. */
		writeptr(&h->oldbuckets, 0, true);
		/* Can discard old overflow buckets as well. */
		if (h->extra != 0)
			writeptr(&EXTRA(h)->oldoverflow, 0, true);
		h->flags &= ~sameSizeGrow;
		if (recording())
			recordEvent(EV_GROW_END, 0, (uintptr_t)h, 0, 0, 0);
	}
}

/* evacDst is an evacuation destination. */
typedef struct evacDst {
	bmap *b;     /* current destination bucket */
	int i;       /* key/elem index into b */
	uintptr_t k; /* pointer to current key storage */
	uintptr_t e; /* pointer to current elem storage */
} evacDst;

/* evacuate moves the entries of old bucket oldbucket and its overflow chain
 * to their new buckets (x: same index, y: index + newbit). */
static void evacuate(const maptype *t, hmap *h, uintptr_t oldbucket)
{
	bmap *b = (bmap *)add(h->oldbuckets, oldbucket * t->bucketsize);
	uintptr_t newbit = noldbuckets(h);
	if (!evacuated(b)) {
		/* xy contains the x and y (low and high) evacuation destinations. */
		evacDst xy[2];
		memset(xy, 0, sizeof xy);
		evacDst *x = &xy[0];
		x->b = (bmap *)add(h->buckets, oldbucket * t->bucketsize);
		x->k = add(x->b, dataOffset);
		x->e = add(x->k, bucketCnt * t->keysize);
		if (!isSameSizeGrow(h)) {
			/* Only calculate y pointers if we're growing bigger. */
			evacDst *y = &xy[1];
			y->b = (bmap *)add(h->buckets, (oldbucket + newbit) * t->bucketsize);
			y->k = add(y->b, dataOffset);
			y->e = add(y->k, bucketCnt * t->keysize);
		}
		for (; b != NULL; b = bmapOverflow(t, b)) {
			uintptr_t k = add(b, dataOffset);
			uintptr_t e = add(k, bucketCnt * t->keysize);
			for (int i = 0; i < bucketCnt; i++, k += t->keysize, e += t->elemsize) {
				uint8_t top = b->tophash[i];
				if (isEmpty(top)) {
					b->tophash[i] = evacuatedEmpty;
					continue;
				}
				if (top < minTopHash)
					gmthrow("bad map state");
				uint8_t useY = 0;
				if (!isSameSizeGrow(h)) {
					/* Compute hash to make our evacuation decision (whether we
					 * need to send this key/elem to bucket x or bucket y). */
					uintptr_t hash = memhash64(*(uint64_t *)k, h->hash0);
					if (hash & newbit)
						useY = 1;
				}
				b->tophash[i] = evacuatedX + useY; /* evacuatedX + 1 == evacuatedY */
				evacDst *dst = &xy[useY];          /* evacuation destination */
				if (dst->i == bucketCnt) {
					dst->b = newoverflow(t, h, dst->b);
					dst->i = 0;
					dst->k = add(dst->b, dataOffset);
					dst->e = add(dst->k, bucketCnt * t->keysize);
				}
				dst->b->tophash[dst->i & (bucketCnt - 1)] = top;
				/* Copy key. */
				*(uint64_t *)dst->k = *(uint64_t *)k;
				/* typedmemmove(t.elem, dst.e, e) */
				if (t->ptrdata)
					writeptr((uintptr_t *)dst->e, *(uintptr_t *)e, true);
				else
					*(uint64_t *)dst->e = *(uint64_t *)e;
				dst->i++;
				dst->k = add(dst->k, t->keysize);
				dst->e = add(dst->e, t->elemsize);
			}
		}
		/* Unlink the overflow buckets & clear key/elem to help GC. */
		if ((h->flags & oldIterator) == 0 && t->ptrdata) {
			/* Preserve b.tophash because the evacuation state is maintained there. */
			uintptr_t ob = add(h->oldbuckets, oldbucket * t->bucketsize);
			memclrBuckets(t, ob, dataOffset, t->bucketsize);
		}
		if (recording())
			recordEvent(EV_EVACUATE, isSameSizeGrow(h), (uintptr_t)h, oldbucket, 0, 0);
	}
	if (oldbucket == h->nevacuate)
		advanceEvacuationMark(h, t, newbit);
}

/* growWork evacuates the old bucket behind bucket and one more. */
static void growWork(const maptype *t, hmap *h, uintptr_t bucket)
{
	/* make sure we evacuate the oldbucket corresponding to the bucket we're about to use */
	evacuate(t, h, bucket & oldbucketmask(h));
	/* evacuate one more oldbucket to make progress on growing */
	if (growing(h))
		evacuate(t, h, h->nevacuate);
}

/* mapaccess2_fast64 returns the address of h[key]'s elem, or 0. */
static uintptr_t mapaccess2_fast64(const maptype *t, hmap *h, uint64_t key)
{
	if (h == NULL || h->count == 0)
		return 0;
	if (h->flags & hashWriting)
		gmthrow("concurrent map read and map write");
	bmap *b;
	if (h->B == 0) {
		/* One-bucket table. No need to hash. */
		b = (bmap *)h->buckets;
	} else {
		uintptr_t hash = memhash64(key, h->hash0);
		uintptr_t m = bucketMask(h->B);
		b = (bmap *)add(h->buckets, (hash & m) * t->bucketsize);
		if (h->oldbuckets != 0) {
			if (!isSameSizeGrow(h))
				m >>= 1; /* There used to be half as many buckets. */
			bmap *oldb = (bmap *)add(h->oldbuckets, (hash & m) * t->bucketsize);
			if (!evacuated(oldb))
				b = oldb;
		}
	}
	for (; b != NULL; b = bmapOverflow(t, b)) {
		for (uintptr_t i = 0; i < bucketCnt; i++) {
			if (*(uint64_t *)keyAt(t, b, i) == key && !isEmpty(b->tophash[i]))
				return elemAt(t, b, i);
		}
	}
	return 0;
}

/* mapassign_fast64 returns the address of the elem for key, inserting it. */
static uintptr_t mapassign_fast64(const maptype *t, hmap *h, uint64_t key)
{
	if (h->flags & hashWriting)
		gmthrow("concurrent map writes");
	uintptr_t hash = memhash64(key, h->hash0);
	h->flags ^= hashWriting;
	if (h->buckets == 0)
		writeptr(&h->buckets, mallocgc(t->bucketsize, t->buckettype), true); /* newarray(t.bucket, 1) */

	bmap *b, *insertb;
	uintptr_t inserti;
again:
	{
		uintptr_t bucket = hash & bucketMask(h->B);
		if (growing(h))
			growWork(t, h, bucket);
		b = (bmap *)add(h->buckets, bucket * t->bucketsize);
	}
	insertb = NULL;
	inserti = 0;
	for (;;) {
		for (uintptr_t i = 0; i < bucketCnt; i++) {
			if (isEmpty(b->tophash[i])) {
				if (insertb == NULL) {
					insertb = b;
					inserti = i;
				}
				if (b->tophash[i] == emptyRest)
					goto bucketloopDone;
				continue;
			}
			if (*(uint64_t *)keyAt(t, b, i) != key)
				continue;
			insertb = b;
			inserti = i;
			goto done;
		}
		bmap *ovf = bmapOverflow(t, b);
		if (ovf == NULL)
			break;
		b = ovf;
	}
bucketloopDone:
	/* Did not find mapping for key. Allocate new cell & add entry. If we hit
	 * the max load factor or we have too many overflow buckets, and we're
	 * not already in the middle of growing, start growing. */
	if (!growing(h) && (overLoadFactor(h->count + 1, h->B) || tooManyOverflowBuckets(h->noverflow, h->B))) {
		hashGrow(t, h);
		goto again; /* Growing the table invalidates everything, so try again */
	}
	if (insertb == NULL) {
		/* The current bucket and all the overflow buckets connected to it
		 * are full, allocate a new one. */
		insertb = newoverflow(t, h, b);
		inserti = 0;
	}
	insertb->tophash[inserti & (bucketCnt - 1)] = tophash(hash);
	*(uint64_t *)keyAt(t, insertb, inserti) = key;
	h->count++;
done:
	if ((h->flags & hashWriting) == 0)
		gmthrow("concurrent map writes");
	h->flags &= ~hashWriting;
	return elemAt(t, insertb, inserti);
}

/* mapdelete_fast64 removes key, marking its cell emptyOne, or emptyRest with
 * every empty cell before it when nothing follows. */
static void mapdelete_fast64(const maptype *t, hmap *h, uint64_t key)
{
	if (h == NULL || h->count == 0)
		return;
	if (h->flags & hashWriting)
		gmthrow("concurrent map writes");
	uintptr_t hash = memhash64(key, h->hash0);
	h->flags ^= hashWriting;

	uintptr_t bucket = hash & bucketMask(h->B);
	if (growing(h))
		growWork(t, h, bucket);
	bmap *b = (bmap *)add(h->buckets, bucket * t->bucketsize);
	bmap *bOrig = b;
	for (; b != NULL; b = bmapOverflow(t, b)) {
		for (uintptr_t i = 0; i < bucketCnt; i++) {
			if (key != *(uint64_t *)keyAt(t, b, i) || isEmpty(b->tophash[i]))
				continue;
			/* Only clear key if there are pointers in it: int64 has none. */
			uintptr_t e = elemAt(t, b, i);
			if (t->ptrdata)
				writeptr((uintptr_t *)e, 0, true); /* memclrHasPointers */
			else
				*(uint64_t *)e = 0; /* memclrNoHeapPointers */
			b->tophash[i] = emptyOne;
			/* If the bucket now ends in a bunch of emptyOne states, change
			 * those to emptyRest states. */
			if (i == bucketCnt - 1) {
				if (bmapOverflow(t, b) != NULL && bmapOverflow(t, b)->tophash[0] != emptyRest)
					goto notLast;
			} else {
				if (b->tophash[i + 1] != emptyRest)
					goto notLast;
			}
			for (;;) {
				b->tophash[i] = emptyRest;
				if (i == 0) {
					if (b == bOrig)
						break; /* beginning of initial bucket, we're done. */
					/* Find previous bucket, continue at its last entry. */
					bmap *c = b;
					for (b = bOrig; bmapOverflow(t, b) != c; b = bmapOverflow(t, b)) {
					}
					i = bucketCnt - 1;
				} else {
					i--;
				}
				if (b->tophash[i] != emptyOne)
					break;
			}
notLast:
			h->count--;
			/* Reset the hash seed to make it more difficult for attackers
			 * to repeatedly trigger hash collisions. See issue 25237. */
			if (h->count == 0)
				h->hash0 = fastrand();
			goto out;
		}
	}
out:
	if ((h->flags & hashWriting) == 0)
		gmthrow("concurrent map writes");
	h->flags &= ~hashWriting;
}

/* mapclear deletes all keys from a map, keeping its bucket array. */
static void mapclear(const maptype *t, hmap *h)
{
	if (h == NULL || h->count == 0)
		return;
	if (h->flags & hashWriting)
		gmthrow("concurrent map writes");
	h->flags ^= hashWriting;

	h->flags &= ~sameSizeGrow;
	writeptr(&h->oldbuckets, 0, true);
	h->nevacuate = 0;
	h->noverflow = 0;
	h->count = 0;
	/* Reset the hash seed to make it more difficult for attackers to
	 * repeatedly trigger hash collisions. See issue 25237. */
	h->hash0 = fastrand();
	/* Keep the mapextra allocation but clear any extra information. */
	if (h->extra != 0) {
		writeptr(&EXTRA(h)->overflow, 0, true);
		writeptr(&EXTRA(h)->oldoverflow, 0, true);
		writeptr(&EXTRA(h)->nextOverflow, 0, true);
	}
	/* makeBucketArray clears the memory pointed to by h.buckets and recovers
	 * any overflow buckets by generating them as if h.buckets was newly
	 * alloced. */
	uintptr_t nextOverflow;
	makeBucketArray(t, h->B, h->buckets, &nextOverflow);
	if (nextOverflow != 0) {
		/* If overflow buckets are created then h.extra will have been
		 * allocated during initial bucket creation. */
		writeptr(&EXTRA(h)->nextOverflow, nextOverflow, true);
	}
	if ((h->flags & hashWriting) == 0)
		gmthrow("concurrent map writes");
	h->flags &= ~hashWriting;
}

/* --- invariants ---------------------------------------------------------- */

static void checkfail(hmap *h, const char *what, uintptr_t bucket, int cell)
{
	fprintf(stderr, "gcmap: bad map state: map %#lx: %s (bucket %lu cell %d, count %ld B %u)\n",
		(unsigned long)(uintptr_t)h, what, (unsigned long)bucket, cell, (long)h->count, h->B);
	abort();
}

/* checkChain verifies one bucket chain and returns its number of full cells. */
static int64_t checkChain(const maptype *t, hmap *h, bmap *b, uintptr_t bucket, uintptr_t mask, int64_t *novf)
{
	int64_t full = 0;
	bool rest = false;
	int depth = 0;
	for (bmap *c = b; c != NULL; c = bmapOverflow(t, c)) {
		if (depth++ > 1 << 20)
			checkfail(h, "overflow chain loops", bucket, -1);
		if (c != b)
			(*novf)++;
		for (int i = 0; i < bucketCnt; i++) {
			uint8_t top = c->tophash[i];
			if (rest && top != emptyRest)
				checkfail(h, "cell after emptyRest is not emptyRest", bucket, i);
			if (top == emptyRest) {
				rest = true;
				continue;
			}
			if (top == emptyOne)
				continue;
			if (top < minTopHash)
				checkfail(h, "full cell with tophash < minTopHash", bucket, i);
			uint64_t key = *(uint64_t *)keyAt(t, c, i);
			uintptr_t hash = memhash64(key, h->hash0);
			if ((hash & mask) != bucket)
				checkfail(h, "key in the wrong bucket", bucket, i);
			if (tophash(hash) != top)
				checkfail(h, "tophash does not match the key", bucket, i);
			if (mapaccess2_fast64(t, h, key) != elemAt(t, c, i))
				checkfail(h, "key not findable (or duplicated)", bucket, i);
			full++;
		}
	}
	return full;
}

/* gm_map_check verifies every invariant of the map at hp and aborts loudly
 * (like Go's throw("bad map state")) on the first one that fails. */
void gm_map_check(int shape, uintptr_t hp)
{
	const maptype *t = &maptypes[shape];
	hmap *h = (hmap *)hp;
	if (h->flags & hashWriting)
		checkfail(h, "hashWriting set outside a write", 0, -1);
	if (h->buckets == 0) {
		if (h->count != 0)
			checkfail(h, "count without buckets", 0, -1);
		return;
	}
	int64_t full = 0, novf = 0;
	uintptr_t nb = bucketShift(h->B);
	if (growing(h)) {
		uintptr_t nold = noldbuckets(h);
		if (h->nevacuate >= nold)
			checkfail(h, "growing with every old bucket evacuated", 0, -1);
		for (uintptr_t j = 0; j < nold; j++) {
			bmap *ob = (bmap *)add(h->oldbuckets, j * t->bucketsize);
			if (evacuated(ob)) {
				for (int i = 0; i < bucketCnt; i++)
					if (ob->tophash[i] < evacuatedX || ob->tophash[i] > evacuatedEmpty)
						checkfail(h, "half-evacuated old bucket", j, i);
				continue;
			}
			if (j < h->nevacuate)
				checkfail(h, "old bucket below nevacuate not evacuated", j, -1);
			int64_t unused = 0;
			full += checkChain(t, h, ob, j, nold - 1, &unused);
		}
	}
	for (uintptr_t i = 0; i < nb; i++) {
		bmap *b = (bmap *)add(h->buckets, i * t->bucketsize);
		if (growing(h) && !bucketEvacuated(t, h, i & oldbucketmask(h))) {
			for (bmap *c = b; c != NULL; c = bmapOverflow(t, c))
				for (int k = 0; k < bucketCnt; k++)
					if (!isEmpty(c->tophash[k]))
						checkfail(h, "new bucket filled before its old bucket was evacuated", i, k);
		}
		full += checkChain(t, h, b, i, nb - 1, &novf);
	}
	if (full != h->count)
		checkfail(h, "count does not match the full cells", 0, -1);
	if (h->B < 16 && novf != h->noverflow)
		checkfail(h, "noverflow does not count the overflow buckets", 0, -1);
	if (!t->ptrdata && novf > 0) {
		if (h->extra == 0 || EXTRA(h)->overflow == 0)
			checkfail(h, "pointer-free overflow buckets not held by extra.overflow", 0, -1);
		bmapslice *s = (bmapslice *)EXTRA(h)->overflow;
		if (s->len < novf)
			checkfail(h, "extra.overflow misses overflow buckets", 0, -1);
	}
}

/* --- the interface ------------------------------------------------------- */

uintptr_t gm_makemap(int shape, int64_t hint)
{
	return makemap(&maptypes[shape], hint);
}

static void afterWrite(int shape, uintptr_t h)
{
	if (gm.cfg.check)
		gm_map_check(shape, h);
	safepoint();
}

void gm_mapassign(int shape, uintptr_t h, int64_t key, uint64_t val)
{
	const maptype *t = &maptypes[shape];
	uintptr_t e = mapassign_fast64(t, (hmap *)h, (uint64_t)key);
	if (t->ptrdata)
		writeptr((uintptr_t *)e, (uintptr_t)val, true);
	else
		*(uint64_t *)e = val;
	afterWrite(shape, h);
}

int gm_mapaccess2(int shape, uintptr_t h, int64_t key, uint64_t *val)
{
	uintptr_t e = mapaccess2_fast64(&maptypes[shape], (hmap *)h, (uint64_t)key);
	if (e == 0)
		return 0;
	*val = *(uint64_t *)e;
	return 1;
}

void gm_mapdelete(int shape, uintptr_t h, int64_t key)
{
	mapdelete_fast64(&maptypes[shape], (hmap *)h, (uint64_t)key);
	afterWrite(shape, h);
}

void gm_mapclear(int shape, uintptr_t h)
{
	mapclear(&maptypes[shape], (hmap *)h);
	afterWrite(shape, h);
}

void gm_assign_batch(int shape, uintptr_t h, const int64_t *keys, const uint64_t *vals,
		     size_t n, uintptr_t valsize, uint8_t *Bs)
{
	const maptype *t = &maptypes[shape];
	for (size_t i = 0; i < n; i++) {
		uint64_t v;
		if (vals != NULL)
			v = vals[i];
		else if (t->ptrdata)
			v = gm_new_value(valsize);
		else
			v = (uint64_t)keys[i];
		gm_mapassign(shape, h, keys[i], v);
		if (Bs != NULL)
			Bs[i] = ((hmap *)h)->B;
	}
}

void gm_delete_batch(int shape, uintptr_t h, const int64_t *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		gm_mapdelete(shape, h, keys[i]);
}

/* --- measurement hooks for the load-factor tables ------------------------ */

void gm_set_load_factor(uint32_t num, uint32_t den)
{
	gm.mapLoadFactorNum = num;
	gm.mapLoadFactorDen = den;
}

/* gm_map_probes stores, for each key, the entries (full cells) a lookup
 * checks: up to and including the key when present, the whole chain when
 * absent. This is map.go's hitprobe/missprobe measure; the fast64 code
 * compares every cell of each bucket, full or not. */
void gm_map_probes(int shape, uintptr_t hp, const int64_t *keys, size_t n, uint32_t *entries)
{
	const maptype *t = &maptypes[shape];
	hmap *h = (hmap *)hp;
	for (size_t j = 0; j < n; j++) {
		uint64_t key = (uint64_t)keys[j];
		uint32_t checked = 0;
		if (h->buckets != 0) {
			uintptr_t hash = memhash64(key, h->hash0);
			uintptr_t m = bucketMask(h->B);
			bmap *b = (bmap *)add(h->buckets, (hash & m) * t->bucketsize);
			if (h->oldbuckets != 0) {
				if (!isSameSizeGrow(h))
					m >>= 1;
				bmap *oldb = (bmap *)add(h->oldbuckets, (hash & m) * t->bucketsize);
				if (!evacuated(oldb))
					b = oldb;
			}
			for (; b != NULL; b = bmapOverflow(t, b)) {
				for (uintptr_t i = 0; i < bucketCnt; i++) {
					if (isEmpty(b->tophash[i]))
						continue;
					checked++;
					if (*(uint64_t *)keyAt(t, b, i) == key)
						goto found;
				}
			}
		}
found:
		entries[j] = checked;
	}
}

/* gm_map_occupancy counts the primary buckets of a map that is not growing
 * by the entries on their chains: out[k] for k = 0..8, out[9] for more than
 * 8 (an overflow bucket); out[10] is the overflow buckets on the chains. */
void gm_map_occupancy(int shape, uintptr_t hp, uint64_t out[11])
{
	const maptype *t = &maptypes[shape];
	hmap *h = (hmap *)hp;
	memset(out, 0, 11 * sizeof out[0]);
	if (h->buckets == 0)
		return;
	for (uintptr_t i = 0; i < bucketShift(h->B); i++) {
		uint64_t k = 0;
		bmap *b = (bmap *)add(h->buckets, i * t->bucketsize);
		for (; b != NULL; b = bmapOverflow(t, b)) {
			for (uintptr_t c = 0; c < bucketCnt; c++)
				k += !isEmpty(b->tophash[c]);
			if (bmapOverflow(t, b) != NULL)
				out[10]++;
		}
		out[k > bucketCnt ? 9 : k]++;
	}
}

void gm_map_header(uintptr_t hp, uint64_t out[9])
{
	const hmap *h = (const hmap *)hp;
	out[0] = (uint64_t)h->count;
	out[1] = h->flags;
	out[2] = h->B;
	out[3] = h->noverflow;
	out[4] = h->hash0;
	out[5] = h->buckets;
	out[6] = h->oldbuckets;
	out[7] = h->nevacuate;
	out[8] = h->extra;
}
