/*
 * swiss.c is Go 1.26's map (src/internal/runtime/maps: map.go, table.go,
 * group.go, runtime_fast64.go), rewritten in C on the tracer's heap beside
 * Go 1.19's classic map (map.c), so that the map every supported Go release
 * uses can be watched and dumped the same way: the same allocations, pointer
 * stores, collector, barrier and scavenger.
 *
 * Terminology (Go's names, kept so this file can be held against Go's):
 * - Slot: a key/elem pair. For int64 keys and 8-byte elems 16 bytes
 *   (slotSize), the elem at elemOff 8.
 * - Group: 8 slots (abi.MapGroupSlots) after an 8-byte control word:
 *   8 + 8 x 16 = 136 bytes (groupSize).
 * - Control word: one byte a slot: ctrlEmpty 0b10000000, ctrlDeleted
 *   0b11111110 (a tombstone), or 0b0hhhhhhh for a full slot, h being H2.
 * - H1, H2: the upper 57 and the lower 7 bits of the key's hash. H1 picks
 *   the first group to probe, H2 is what the control byte stores, so that
 *   one word compares all 8 slots at once (matchH2, false positives
 *   1 in 128 a slot, settled by comparing keys).
 * - Table: one complete Swiss table: a groups array (a power of two of
 *   groups, lengthMask + 1), used, capacity (slots), growthLeft, and
 *   localDepth and index, its place in the directory.
 * - Map: the header (48 bytes: used, seed, dirPtr, dirLen, globalDepth,
 *   globalShift, writing, tombstonePossible, clearSeq).
 * - Directory: an array of 2^globalDepth table pointers; the top
 *   globalDepth bits of the hash index it (extendible hashing). A table
 *   with localDepth < globalDepth fills 2^(globalDepth - localDepth)
 *   consecutive entries starting at its index:
 *
 *	directory (globalDepth=2)
 *	+----+
 *	| 00 | --\
 *	+----+    +--> table (localDepth=1)
 *	| 01 | --/
 *	+----+
 *	| 10 | ------> table (localDepth=2)
 *	+----+
 *	| 11 | ------> table (localDepth=2)
 *	+----+
 *
 * Small maps. Up to 8 entries a map has no table and no directory: dirPtr
 * points straight at one group (growToSmall, on the first insert) and
 * dirLen is 0. A small map never has tombstones: with one group nothing
 * probes past it. The 9th insert moves the 8 entries into a table of 16
 * slots (growToTable) behind a directory of one entry.
 *
 * Probing. The probe sequence (probeSeq) visits groups H1, H1+1, H1+1+2,
 * ... mod the group count: triangular numbers, which visit every group
 * once when the count is a power of two. A lookup stops at the group with
 * the key or at the first group with an empty slot; a table therefore
 * never fills: at most 7/8 of its slots (maxAvgGroupLoad 7 of 8) are used
 * or tombstones, counted down in growthLeft.
 *
 * Deletion. A slot deleted from a group that still has an empty slot
 * becomes empty again (growthLeft++); in a full group it becomes a
 * tombstone, since some probe sequence may pass through that group to a
 * later one. Tombstones keep their growthLeft until the table is rebuilt:
 * an insert reuses the first tombstone on its probe sequence, and when
 * growthLeft reaches 0 pruneTombstones turns back into empty slots the
 * tombstones no probe sequence needs, when that frees at least 10% of the
 * table; otherwise the table is rehashed. tombstonePossible in the Map
 * says whether any table may hold one.
 *
 * Growth. rehash replaces a full table by one of twice the capacity (grow)
 * up to maxTableCapacity, 1024 slots; a table of 1024 slots splits
 * instead into two tables of 1024 (split), by the hash bit below its
 * localDepth, doubling the directory when localDepth == globalDepth
 * (installTableSplit). Each rehash copies one table of at most 1024 slots:
 * that bounds the pause, and is why a Swiss map grows by many small steps.
 * For map[int64]int64 filled from empty: the 9th insert makes a table of
 * 16 slots; it doubles at 15, 29, 57, 113, 225 and 449 entries to 1024;
 * the 897th splits it (1024 x 7/8 = 896); from there on each table splits
 * when it holds 897 entries, so the map's capacity is 1024 x tables, with
 * the tables on average 44-88% full.
 *
 * Why an emptied Swiss map keeps its memory. Nothing shrinks, ever: delete
 * leaves an empty slot or a tombstone, clear (Map.Clear) empties every
 * group of every table and increments clearSeq but keeps every table, the
 * directory and every groups array; only the old arrays replaced by a grow
 * or a split become garbage. A map that once held a million entries keeps
 * about a thousand 18 KiB groups arrays live until the map itself dies.
 *
 * What is faithful: the layout of Map and table byte for byte (48 and 32
 * bytes), the group layout, every constant, the fast64 paths Go compiles
 * int64-keyed maps to (runtime_mapassign_fast64 with pruneTombstones,
 * runtime_mapaccess2_fast64, Map.Delete, Map.Clear and table.Clear with
 * its fullTest), NewMap's sizing from a hint, the seed reset when a map
 * empties or is cleared, the portable (non-SIMD) bitset representation of
 * group.go, and every pointer store through the write barrier as the
 * compiler and typedmemmove arrange (writeptr): Map.dirPtr, the directory's
 * entries, table.groups.data, and pointer elems. Simplified: the hash is
 * memhash64's wyhash fallback (map.c), not AES; the heap is the tracer's
 * Go 1.19 heap, which has the same size classes as Go 1.26 but no malloc
 * headers, so a groups array with pointers starts at its object's first
 * byte where Go 1.22+ puts it 8 bytes in; no iterators (so no grow during
 * iteration), one thread.
 */
#include "runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define abi_MapGroupSlots 8
#define maxAvgGroupLoad 7
#define maxTableCapacity 1024

#define ctrlEmpty 0x80   /* 0b10000000 */
#define ctrlDeleted 0xFE /* 0b11111110 */

#define bitsetLSB 0x0101010101010101ULL
#define bitsetMSB 0x8080808080808080ULL
#define bitsetEmpty (bitsetLSB * ctrlEmpty)

#define ctrlGroupsSize 8
#define groupSlotsOffset ctrlGroupsSize

/* Map is the header of a Go 1.26 map, laid out as Go's. */
typedef struct Map {
	uint64_t used;     /* filled slots in all tables; excludes deleted slots */
	uintptr_t seed;    /* hash seed, a random number per map */
	uintptr_t dirPtr;  /* *[dirLen]*table, or *group for a small map, or nil */
	int64_t dirLen;    /* 1 << globalDepth; 0 for a small map */
	uint8_t globalDepth;  /* bits of the hash used for directory lookups */
	uint8_t globalShift;  /* 64 - globalDepth */
	uint8_t writing;      /* toggled while the map is being written */
	bool tombstonePossible; /* false if no table holds a tombstone */
	uint64_t clearSeq;    /* calls to Clear */
} Map;

/* groupsReference describes an array of groups. */
typedef struct groupsReference {
	uintptr_t data;      /* *[lengthMask+1]group */
	uint64_t lengthMask; /* groups - 1 (a power of two minus one) */
} groupsReference;

/* table is one Swiss table, laid out as Go's. */
typedef struct table {
	uint16_t used;       /* filled slots */
	uint16_t capacity;   /* total slots, (lengthMask+1) * 8 */
	uint16_t growthLeft; /* slots that can still be filled before a rehash */
	uint8_t localDepth;  /* bits of directory lookup above this table */
	int64_t index;       /* first directory index of the table; -1 once stale */
	groupsReference groups;
} table;

_Static_assert(sizeof(Map) == 48, "Map must match Go 1.26's layout");
_Static_assert(sizeof(table) == 32, "table must match Go 1.26's layout");

/* mapType is the part of Go's abi.MapType the fast64 paths need. */
typedef struct mapType {
	int maptype, grouptype;
	uintptr_t slotSize, elemOff, groupSize;
	bool elemPointers; /* typ.Elem.Pointers() */
} mapType;

static const mapType mapTypes[GM_NSHAPES] = {
	{T_SWISS_MAP_I64, T_SWISS_GROUPS_I64, 16, 8, 136, false},
	{T_SWISS_MAP_PTR, T_SWISS_GROUPS_PTR, 16, 8, 136, true},
};

typedef uint64_t ctrlGroup;
typedef uint64_t bitset;
typedef uint8_t ctrl;

#define add(p, x) ((uintptr_t)(p) + (uintptr_t)(x))

/* rand64 is Go's rand(): a 64-bit random number. */
static uint64_t rand64(void)
{
	return (uint64_t)fastrand() << 32 | fastrand();
}

/* h1 extracts the H1 portion of a hash: the 57 upper bits. */
static inline uintptr_t h1(uintptr_t h) { return h >> 7; }
/* h2 extracts the H2 portion of a hash: the 7 bits not used for h1. */
static inline uintptr_t h2(uintptr_t h) { return h & 0x7f; }

static inline uintptr_t hashKey(const Map *m, uint64_t key) { return memhash64(key, m->seed); }

/* --- bitsets and control words (group.go, portable versions) ------------- */

/* bitsetFirst returns the index of the first slot in the set. */
static inline uintptr_t bitsetFirst(bitset b) { return (uintptr_t)__builtin_ctzll(b) >> 3; }
/* bitsetRemoveFirst clears the first set slot. */
static inline bitset bitsetRemoveFirst(bitset b) { return b & (b - 1); }
static inline int bitsetCount(bitset b) { return __builtin_popcountll(b); }

static inline ctrl ctrlGet(const ctrlGroup *g, uintptr_t i) { return ((const uint8_t *)g)[i]; }
static inline void ctrlSet(ctrlGroup *g, uintptr_t i, ctrl c) { ((uint8_t *)g)[i] = c; }
static inline void ctrlSetEmpty(ctrlGroup *g) { *g = bitsetEmpty; }

/* matchH2 returns the full slots whose 7-bit hash is h (false positives possible). */
static inline bitset matchH2(ctrlGroup g, uintptr_t h)
{
	uint64_t v = g ^ (bitsetLSB * (uint64_t)h);
	return ((v - bitsetLSB) & ~v) & bitsetMSB;
}

/* matchEmpty returns the empty slots: bit 7 set and bit 1 clear. */
static inline bitset matchEmpty(ctrlGroup g) { return (g & ~(g << 6)) & bitsetMSB; }
/* matchEmptyOrDeleted returns the slots with bit 7 set. */
static inline bitset matchEmptyOrDeleted(ctrlGroup g) { return g & bitsetMSB; }
/* matchFull returns the slots with bit 7 clear. */
static inline bitset matchFull(ctrlGroup g) { return ~g & bitsetMSB; }

/* groupRef returns group i of the groups array g. */
static inline uintptr_t groupRef(const mapType *typ, const groupsReference *g, uint64_t i)
{
	return add(g->data, (uintptr_t)i * typ->groupSize);
}

static inline ctrlGroup *ctrls(uintptr_t g) { return (ctrlGroup *)g; }

static inline uintptr_t slotKey(const mapType *typ, uintptr_t g, uintptr_t i)
{
	return add(g, groupSlotsOffset + i * typ->slotSize);
}

static inline uintptr_t slotElem(const mapType *typ, uintptr_t g, uintptr_t i)
{
	return add(g, groupSlotsOffset + i * typ->slotSize + typ->elemOff);
}

/* --- probeSeq ------------------------------------------------------------ */

/* probeSeq walks the groups of a table: offset p(i) = hash + (i^2 + i)/2 mod mask+1. */
typedef struct probeSeq {
	uint64_t mask, offset, index;
} probeSeq;

static inline probeSeq makeProbeSeq(uintptr_t hash, uint64_t mask)
{
	return (probeSeq){mask, (uint64_t)hash & mask, 0};
}

static inline void probeNext(probeSeq *s)
{
	s->index++;
	s->offset = (s->offset + s->index) & s->mask;
}

/* --- memory: typedmemmove and typedmemclr of elems and groups ----------- */

/* moveElem copies an elem: a barriered pointer store for pointer elems. */
static void moveElem(const mapType *typ, uintptr_t dst, uint64_t v)
{
	if (typ->elemPointers)
		writeptr((uintptr_t *)dst, (uintptr_t)v, true);
	else
		*(uint64_t *)dst = v;
}

/* clearElem is typedmemclr(typ.Elem): a barriered nil store for pointer elems. */
static void clearElem(const mapType *typ, uintptr_t e)
{
	if (typ->elemPointers)
		writeptr((uintptr_t *)e, 0, true);
	else
		*(uint64_t *)e = 0;
}

/* clearGroup is typedmemclr(typ.Group, g): every pointer word through the barrier. */
static void clearGroup(const mapType *typ, uintptr_t g)
{
	if (typ->elemPointers) {
		for (uintptr_t i = 0; i < abi_MapGroupSlots; i++) {
			uintptr_t *e = (uintptr_t *)slotElem(typ, g, i);
			if (*e != 0)
				writeptr(e, 0, true);
		}
	}
	memset((void *)g, 0, typ->groupSize);
}

/* newGroups allocates an array of length groups (length a power of two). */
static groupsReference newGroups(const mapType *typ, uint64_t length)
{
	return (groupsReference){mallocgc(typ->groupSize * (uintptr_t)length, typ->grouptype), length - 1};
}

/* --- tables (table.go) --------------------------------------------------- */

/* alignUpPow2 rounds n up to the next power of 2. */
static uint64_t alignUpPow2(uint64_t n)
{
	if (n <= 1)
		return n;
	return (uint64_t)1 << (64 - __builtin_clzll(n - 1));
}

/* maxGrowthLeft is the number of inserts we can do before resizing, starting from an empty table. */
static uint16_t maxGrowthLeft(const table *t)
{
	if (t->capacity == 0)
		gmthrow("table must have positive capacity");
	if (t->capacity <= abi_MapGroupSlots)
		return t->capacity - 1; /* one empty slot terminates find operations */
	return (uint16_t)((t->capacity * maxAvgGroupLoad) / abi_MapGroupSlots);
}

/* reset gives t new, empty groups with the specified total capacity. */
static void reset(const mapType *typ, table *t, uint16_t capacity)
{
	uint64_t groupCount = capacity / abi_MapGroupSlots;
	groupsReference g = newGroups(typ, groupCount);
	writeptr(&t->groups.data, g.data, true);
	t->groups.lengthMask = g.lengthMask;
	t->capacity = capacity;
	t->growthLeft = maxGrowthLeft(t);
	for (uint64_t i = 0; i <= t->groups.lengthMask; i++)
		ctrlSetEmpty(ctrls(groupRef(typ, &t->groups, i)));
}

static table *newTable(const mapType *typ, uint64_t capacity, int64_t index, uint8_t localDepth)
{
	if (capacity < abi_MapGroupSlots)
		capacity = abi_MapGroupSlots;
	table *t = (table *)mallocgc(sizeof(table), T_SWISS_TABLE);
	t->index = index;
	t->localDepth = localDepth;
	if (capacity > maxTableCapacity)
		gmthrow("initial table capacity too large");
	/* N.B. group count must be a power of two for probeSeq to visit every group. */
	capacity = alignUpPow2(capacity);
	reset(typ, t, (uint16_t)capacity);
	return t;
}

/* tombstones returns the number of deleted (tombstone) slots in the table. */
static uint16_t tombstones(const table *t)
{
	return (uint16_t)((t->capacity * maxAvgGroupLoad) / abi_MapGroupSlots - t->used - t->growthLeft);
}

/* getWithoutKey returns the address of the elem of key, or 0. */
static uintptr_t tableGet(const mapType *typ, const table *t, uintptr_t hash, uint64_t key)
{
	probeSeq seq = makeProbeSeq(h1(hash), t->groups.lengthMask);
	uintptr_t h2Hash = h2(hash);
	for (;; probeNext(&seq)) {
		uintptr_t g = groupRef(typ, &t->groups, seq.offset);
		bitset match = matchH2(*ctrls(g), h2Hash);
		while (match != 0) {
			uintptr_t i = bitsetFirst(match);
			if (key == *(uint64_t *)slotKey(typ, g, i))
				return slotElem(typ, g, i);
			match = bitsetRemoveFirst(match);
		}
		if (matchEmpty(*ctrls(g)) != 0)
			return 0; /* an empty slot ends the probe sequence */
	}
}

/* uncheckedPutSlot inserts an entry known not to be in the table, which
 * has room and no tombstones (grow, split). */
static void uncheckedPutSlot(const mapType *typ, table *t, uintptr_t hash, uint64_t key, uint64_t elem)
{
	if (t->growthLeft == 0)
		gmthrow("invariant failed: growthLeft is unexpectedly 0");
	probeSeq seq = makeProbeSeq(h1(hash), t->groups.lengthMask);
	for (;; probeNext(&seq)) {
		uintptr_t g = groupRef(typ, &t->groups, seq.offset);
		bitset match = matchEmptyOrDeleted(*ctrls(g));
		if (match != 0) {
			uintptr_t i = bitsetFirst(match);
			*(uint64_t *)slotKey(typ, g, i) = key;
			moveElem(typ, slotElem(typ, g, i), elem);
			t->growthLeft--;
			t->used++;
			ctrlSet(ctrls(g), i, (ctrl)h2(hash));
			return;
		}
	}
}

/* tableDelete removes key and reports whether it left a tombstone. */
static bool tableDelete(const mapType *typ, Map *m, table *t, uintptr_t hash, uint64_t key)
{
	probeSeq seq = makeProbeSeq(h1(hash), t->groups.lengthMask);
	uintptr_t h2Hash = h2(hash);
	for (;; probeNext(&seq)) {
		uintptr_t g = groupRef(typ, &t->groups, seq.offset);
		bitset match = matchH2(*ctrls(g), h2Hash);
		while (match != 0) {
			uintptr_t i = bitsetFirst(match);
			if (key == *(uint64_t *)slotKey(typ, g, i)) {
				t->used--;
				m->used--;
				/* int64 keys hold no pointers: the key stays. Unlike keys,
				 * the elem is always cleared (go.dev/issue/25936). */
				clearElem(typ, slotElem(typ, g, i));
				/* Only a full group can appear in the middle of a probe
				 * sequence, and it stays full until rehashing. So if the
				 * group isn't full now, the slot can simply become empty;
				 * otherwise it becomes a tombstone. */
				if (matchEmpty(*ctrls(g)) != 0) {
					ctrlSet(ctrls(g), i, ctrlEmpty);
					t->growthLeft++;
					return false;
				}
				ctrlSet(ctrls(g), i, ctrlDeleted);
				return true;
			}
			match = bitsetRemoveFirst(match);
		}
		if (matchEmpty(*ctrls(g)) != 0)
			return false;
	}
}

/* pruneTombstones turns back into empty slots the tombstones no probe
 * sequence of a full entry passes, when that restores at least 10% of the
 * table's capacity. Best effort: it never moves entries. */
static void pruneTombstones(const mapType *typ, Map *m, table *t)
{
	if (tombstones(t) * 10 < t->capacity)
		return; /* not enough tombstones to be worth the effort */
	/* needed marks every group whose tombstones are needed. */
	uint32_t needed[(maxTableCapacity / abi_MapGroupSlots + 31) / 32];
	memset(needed, 0, sizeof needed);
	for (uint64_t i = 0; i <= t->groups.lengthMask; i++) {
		uintptr_t g = groupRef(typ, &t->groups, i);
		bitset match = matchFull(*ctrls(g));
		while (match != 0) {
			uintptr_t j = bitsetFirst(match);
			match = bitsetRemoveFirst(match);
			uintptr_t hash = hashKey(m, *(uint64_t *)slotKey(typ, g, j));
			/* Walk the key's probe sequence: each tombstone group it passes is needed. */
			for (probeSeq seq = makeProbeSeq(h1(hash), t->groups.lengthMask);; probeNext(&seq)) {
				if (seq.offset == i)
					break;
				uintptr_t pg = groupRef(typ, &t->groups, seq.offset);
				if (matchEmptyOrDeleted(*ctrls(pg)) != 0)
					needed[seq.offset / 32] |= (uint32_t)1 << (seq.offset % 32);
			}
		}
		if (matchEmpty(*ctrls(g)) != 0)
			needed[i / 32] |= (uint32_t)1 << (i % 32);
	}
	int cnt = 0;
	for (uint64_t i = 0; i <= t->groups.lengthMask; i++) {
		if ((needed[i / 32] >> (i % 32)) & 1)
			continue;
		cnt += bitsetCount(matchEmptyOrDeleted(*ctrls(groupRef(typ, &t->groups, i))));
	}
	if (cnt * 10 < (int)t->capacity)
		return; /* can't restore 10% of capacity: the caller grows instead */
	for (uint64_t i = 0; i <= t->groups.lengthMask; i++) {
		if ((needed[i / 32] >> (i % 32)) & 1)
			continue;
		ctrlGroup *c = ctrls(groupRef(typ, &t->groups, i));
		bitset match = matchEmptyOrDeleted(*c);
		while (match != 0) {
			ctrlSet(c, bitsetFirst(match), ctrlEmpty);
			match = bitsetRemoveFirst(match);
			t->growthLeft++;
		}
	}
	gm.swiss_prunes++;
}

/* tableClear empties every group of t, keeping its groups array. */
static void tableClear(const mapType *typ, table *t)
{
	uint16_t mgl = maxGrowthLeft(t);
	if (t->used == 0 && t->growthLeft == mgl)
		return; /* no entries and no tombstones */
	/* Go tests groups for full slots first only when few are likely full
	 * (under ~0.25 entries a group) or slots are large. */
	bool fullTest = (uint64_t)t->used * 4 <= t->groups.lengthMask || typ->slotSize > 32;
	for (uint64_t i = 0; i <= t->groups.lengthMask; i++) {
		uintptr_t g = groupRef(typ, &t->groups, i);
		if (!fullTest || (~*ctrls(g) & bitsetMSB) != 0)
			clearGroup(typ, g);
		ctrlSetEmpty(ctrls(g));
	}
	t->used = 0;
	t->growthLeft = mgl;
}

/* --- the directory (map.go) ---------------------------------------------- */

static inline uintptr_t directoryIndex(const Map *m, uintptr_t hash)
{
	if (m->dirLen == 1)
		return 0;
	return hash >> (m->globalShift & 63);
}

static inline table *directoryAt(const Map *m, uintptr_t i)
{
	return ((table **)m->dirPtr)[i];
}

static inline void directorySet(Map *m, uintptr_t i, table *nt)
{
	writeptr((uintptr_t *)m->dirPtr + i, (uintptr_t)nt, true);
}

static inline uint8_t depthToShift(uint8_t depth) { return (uint8_t)(64 - depth); }

/* replaceTable installs nt at every directory entry it covers. */
static void replaceTable(Map *m, table *nt)
{
	int64_t entries = (int64_t)1 << (m->globalDepth - nt->localDepth);
	for (int64_t i = 0; i < entries; i++)
		directorySet(m, (uintptr_t)(nt->index + i), nt);
}

/* installTableSplit replaces old by left and right, doubling the directory
 * when old already used every bit of it. */
static void installTableSplit(Map *m, table *old, table *left, table *right)
{
	if (old->localDepth == m->globalDepth) {
		/* No room for another level in the directory. Grow the directory. */
		uintptr_t newDir = mallocgc((uintptr_t)m->dirLen * 2 * PtrSize, T_SWISS_DIRECTORY);
		for (int64_t i = 0; i < m->dirLen; i++) {
			table *t = directoryAt(m, (uintptr_t)i);
			writeptr((uintptr_t *)newDir + 2 * i, (uintptr_t)t, true);
			writeptr((uintptr_t *)newDir + 2 * i + 1, (uintptr_t)t, true);
			/* t may be in several entries: update its index once, the
			 * first time (its index only increases). */
			if (t->index == i)
				t->index = 2 * i;
		}
		m->globalDepth++;
		m->globalShift--;
		writeptr(&m->dirPtr, newDir, true);
		m->dirLen *= 2;
	}
	/* left and right may still take several entries if the directory grew
	 * several times since old was last split. */
	left->index = old->index;
	replaceTable(m, left);
	int64_t entries = (int64_t)1 << (m->globalDepth - left->localDepth);
	right->index = left->index + entries;
	replaceTable(m, right);
}

/* localDepthMask is the bit of the hash that selects left or right at this depth. */
static inline uintptr_t localDepthMask(uint8_t localDepth) { return (uintptr_t)1 << (64 - localDepth); }

/* split splits a full table of maxTableCapacity slots into two. */
static void split(const mapType *typ, Map *m, table *t)
{
	uint8_t localDepth = t->localDepth + 1;
	table *left = newTable(typ, maxTableCapacity, -1, localDepth);
	table *right = newTable(typ, maxTableCapacity, -1, localDepth);
	uintptr_t mask = localDepthMask(localDepth);
	for (uint64_t i = 0; i <= t->groups.lengthMask; i++) {
		uintptr_t g = groupRef(typ, &t->groups, i);
		for (uintptr_t j = 0; j < abi_MapGroupSlots; j++) {
			if ((ctrlGet(ctrls(g), j) & ctrlEmpty) == ctrlEmpty)
				continue; /* empty or deleted */
			uint64_t key = *(uint64_t *)slotKey(typ, g, j);
			uint64_t elem = *(uint64_t *)slotElem(typ, g, j);
			uintptr_t hash = hashKey(m, key);
			uncheckedPutSlot(typ, (hash & mask) == 0 ? left : right, hash, key, elem);
		}
	}
	installTableSplit(m, t, left, right);
	t->index = -1;
	gm.swiss_splits++;
}

/* grow replaces t by a table of newCapacity slots holding the same entries. */
static void grow(const mapType *typ, Map *m, table *t, uint16_t newCapacity)
{
	table *nt = newTable(typ, newCapacity, t->index, t->localDepth);
	for (uint64_t i = 0; i <= t->groups.lengthMask; i++) {
		uintptr_t g = groupRef(typ, &t->groups, i);
		for (uintptr_t j = 0; j < abi_MapGroupSlots; j++) {
			if ((ctrlGet(ctrls(g), j) & ctrlEmpty) == ctrlEmpty)
				continue;
			uint64_t key = *(uint64_t *)slotKey(typ, g, j);
			uncheckedPutSlot(typ, nt, hashKey(m, key), key, *(uint64_t *)slotElem(typ, g, j));
		}
	}
	replaceTable(m, nt);
	t->index = -1;
	gm.swiss_grows++;
}

/* rehash replaces t with one larger table or two split tables. */
static void rehash(const mapType *typ, Map *m, table *t)
{
	uint32_t newCapacity = 2u * t->capacity;
	if (newCapacity <= maxTableCapacity) {
		grow(typ, m, t, (uint16_t)newCapacity);
		return;
	}
	split(typ, m, t);
}

/* --- the map ------------------------------------------------------------- */

/* newMap is NewMap: make(map[int64]V, hint). A hint up to 8 allocates
 * nothing but the header; a larger one builds the directory and tables that
 * hold hint entries without growing. */
static Map *newMap(const mapType *typ, uint64_t hint)
{
	Map *m = (Map *)mallocgc(sizeof(Map), typ->maptype);
	m->seed = (uintptr_t)rand64();
	if (hint <= abi_MapGroupSlots)
		return m;
	uint64_t targetCapacity = (hint * abi_MapGroupSlots) / maxAvgGroupLoad;
	if (targetCapacity < hint)
		return m; /* overflow: an empty map */
	uint64_t dirSize = alignUpPow2((targetCapacity + maxTableCapacity - 1) / maxTableCapacity);
	if (dirSize > ((uint64_t)1 << 24))
		return m; /* far beyond the arena: an empty map */
	m->globalDepth = (uint8_t)__builtin_ctzll(dirSize);
	m->globalShift = depthToShift(m->globalDepth);
	uintptr_t directory = mallocgc((uintptr_t)dirSize * PtrSize, T_SWISS_DIRECTORY);
	for (uint64_t i = 0; i < dirSize; i++) {
		table *t = newTable(typ, targetCapacity / dirSize, (int64_t)i, m->globalDepth);
		writeptr((uintptr_t *)directory + i, (uintptr_t)t, true);
	}
	writeptr(&m->dirPtr, directory, true);
	m->dirLen = (int64_t)dirSize;
	return m;
}

/* growToSmall gives an empty map its one group. */
static void growToSmall(const mapType *typ, Map *m)
{
	groupsReference grp = newGroups(typ, 1);
	writeptr(&m->dirPtr, grp.data, true);
	ctrlSetEmpty(ctrls(m->dirPtr));
}

/* growToTable moves a full small map into a table of 16 slots behind a directory of one. */
static void growToTable(const mapType *typ, Map *m)
{
	table *tab = newTable(typ, 2 * abi_MapGroupSlots, 0, 0);
	uintptr_t g = m->dirPtr;
	for (uintptr_t i = 0; i < abi_MapGroupSlots; i++) {
		if ((ctrlGet(ctrls(g), i) & ctrlEmpty) == ctrlEmpty)
			continue;
		uint64_t key = *(uint64_t *)slotKey(typ, g, i);
		uncheckedPutSlot(typ, tab, hashKey(m, key), key, *(uint64_t *)slotElem(typ, g, i));
	}
	uintptr_t directory = mallocgc(PtrSize, T_SWISS_DIRECTORY);
	writeptr((uintptr_t *)directory, (uintptr_t)tab, true);
	writeptr(&m->dirPtr, directory, true);
	m->dirLen = 1;
	m->globalDepth = 0;
	m->globalShift = depthToShift(m->globalDepth);
}

/* putSlotSmallFast64 returns the elem of key in a small map, inserting it. */
static uintptr_t putSlotSmallFast64(const mapType *typ, Map *m, uintptr_t hash, uint64_t key)
{
	uintptr_t g = m->dirPtr;
	bitset match = matchH2(*ctrls(g), h2(hash));
	while (match != 0) {
		uintptr_t i = bitsetFirst(match);
		if (key == *(uint64_t *)slotKey(typ, g, i))
			return slotElem(typ, g, i);
		match = bitsetRemoveFirst(match);
	}
	/* Small maps have no deleted slots (see deleteSmall). */
	match = matchEmptyOrDeleted(*ctrls(g));
	if (match == 0)
		gmthrow("small map with no empty slot (concurrent map writes?)");
	uintptr_t i = bitsetFirst(match);
	*(uint64_t *)slotKey(typ, g, i) = key;
	ctrlSet(ctrls(g), i, (ctrl)h2(hash));
	m->used++;
	return slotElem(typ, g, i);
}

/* mapassign_fast64 is runtime_mapassign_fast64: the address of key's elem, inserting key. */
static uintptr_t mapassign_fast64(const mapType *typ, Map *m, uint64_t key)
{
	if (m->writing != 0)
		gmthrow("concurrent map writes");
	uintptr_t hash = hashKey(m, key);
	m->writing ^= 1;
	if (m->dirPtr == 0)
		growToSmall(typ, m);
	if (m->dirLen == 0) {
		if (m->used < abi_MapGroupSlots) {
			uintptr_t elem = putSlotSmallFast64(typ, m, hash, key);
			m->writing ^= 1;
			return elem;
		}
		/* Can't fit another entry, grow to full size map. */
		growToTable(typ, m);
	}
	uintptr_t elem = 0;
	for (;;) { /* until the key has a slot; a rehash starts over in the new table */
		table *t = directoryAt(m, directoryIndex(m, hash));
		probeSeq seq = makeProbeSeq(h1(hash), t->groups.lengthMask);
		/* Remember the first deleted slot on the way, to reuse it. */
		uintptr_t firstDeletedGroup = 0, firstDeletedSlot = 0;
		uintptr_t h2Hash = h2(hash);
		for (;; probeNext(&seq)) {
			uintptr_t g = groupRef(typ, &t->groups, seq.offset);
			bitset match = matchH2(*ctrls(g), h2Hash);
			while (match != 0) {
				uintptr_t i = bitsetFirst(match);
				if (key == *(uint64_t *)slotKey(typ, g, i)) {
					elem = slotElem(typ, g, i);
					goto done;
				}
				match = bitsetRemoveFirst(match);
			}
			match = matchEmptyOrDeleted(*ctrls(g));
			if (match == 0)
				continue; /* nothing but filled slots: keep probing */
			uintptr_t i = bitsetFirst(match);
			if (ctrlGet(ctrls(g), i) == ctrlDeleted) {
				if (firstDeletedGroup == 0) {
					firstDeletedGroup = g;
					firstDeletedSlot = i;
				}
				continue;
			}
			/* An empty slot: the end of the probe sequence. A deleted
			 * slot found on the way is reused without using growthLeft. */
			if (firstDeletedGroup != 0) {
				g = firstDeletedGroup;
				i = firstDeletedSlot;
				t->growthLeft++; /* decremented below */
			}
			if (t->growthLeft == 0)
				pruneTombstones(typ, m, t);
			if (t->growthLeft > 0) {
				*(uint64_t *)slotKey(typ, g, i) = key;
				elem = slotElem(typ, g, i);
				ctrlSet(ctrls(g), i, (ctrl)h2Hash);
				t->growthLeft--;
				t->used++;
				m->used++;
				goto done;
			}
			rehash(typ, m, t);
			break;
		}
	}
done:
	if (m->writing == 0)
		gmthrow("concurrent map writes");
	m->writing ^= 1;
	return elem;
}

/* mapaccess2_fast64 is runtime_mapaccess2_fast64: the address of key's elem, or 0. */
static uintptr_t mapaccess2_fast64(const mapType *typ, const Map *m, uint64_t key)
{
	if (m == NULL || m->used == 0)
		return 0;
	if (m->writing != 0)
		gmthrow("concurrent map read and map write");
	if (m->dirLen == 0) {
		uintptr_t g = m->dirPtr;
		bitset full = matchFull(*ctrls(g));
		uintptr_t k = slotKey(typ, g, 0);
		for (; full != 0; full >>= 8, k += typ->slotSize) {
			if (key == *(uint64_t *)k && (full & 0x80))
				return k + 8;
		}
		return 0;
	}
	uintptr_t hash = hashKey(m, key);
	return tableGet(typ, directoryAt(m, directoryIndex(m, hash)), hash, key);
}

/* deleteSmall removes key from a small map: its slot becomes empty at once. */
static void deleteSmall(const mapType *typ, Map *m, uintptr_t hash, uint64_t key)
{
	uintptr_t g = m->dirPtr;
	bitset match = matchH2(*ctrls(g), h2(hash));
	while (match != 0) {
		uintptr_t i = bitsetFirst(match);
		if (key == *(uint64_t *)slotKey(typ, g, i)) {
			m->used--;
			clearElem(typ, slotElem(typ, g, i));
			ctrlSet(ctrls(g), i, ctrlEmpty);
			return;
		}
		match = bitsetRemoveFirst(match);
	}
}

/* mapdelete is Map.Delete. */
static void mapdelete(const mapType *typ, Map *m, uint64_t key)
{
	if (m == NULL || m->used == 0)
		return;
	if (m->writing != 0)
		gmthrow("concurrent map writes");
	uintptr_t hash = hashKey(m, key);
	m->writing ^= 1;
	if (m->dirLen == 0) {
		deleteSmall(typ, m, hash, key);
	} else {
		table *t = directoryAt(m, directoryIndex(m, hash));
		if (tableDelete(typ, m, t, hash, key))
			m->tombstonePossible = true;
	}
	/* Reset the hash seed to make it more difficult for attackers to
	 * repeatedly trigger hash collisions. See go.dev/issue/25237. */
	if (m->used == 0)
		m->seed = (uintptr_t)rand64();
	if (m->writing == 0)
		gmthrow("concurrent map writes");
	m->writing ^= 1;
}

/* mapclear is Map.Clear: every table emptied and kept, clearSeq++. */
static void mapclear(const mapType *typ, Map *m)
{
	if (m == NULL || (m->used == 0 && !m->tombstonePossible))
		return;
	if (m->writing != 0)
		gmthrow("concurrent map writes");
	m->writing ^= 1;
	if (m->dirLen == 0) {
		/* clearSmall */
		clearGroup(typ, m->dirPtr);
		ctrlSetEmpty(ctrls(m->dirPtr));
		m->used = 0;
	} else {
		table *lastTab = NULL;
		for (int64_t i = 0; i < m->dirLen; i++) {
			table *t = directoryAt(m, (uintptr_t)i);
			if (t == lastTab)
				continue;
			tableClear(typ, t);
			lastTab = t;
		}
		m->used = 0;
		m->tombstonePossible = false;
	}
	m->clearSeq++;
	m->seed = (uintptr_t)rand64();
	if (m->writing == 0)
		gmthrow("concurrent map writes");
	m->writing ^= 1;
}

/* --- invariants ---------------------------------------------------------- */

static void checkfail(const Map *m, const char *what, int64_t dir, int64_t group, int slot)
{
	fprintf(stderr, "gcmap: bad map state: swiss map %#lx: %s (directory %ld group %ld slot %d, used %lu dirLen %ld)\n",
		(unsigned long)(uintptr_t)m, what, (long)dir, (long)group, slot, (unsigned long)m->used, (long)m->dirLen);
	abort();
}

/* checkTable verifies one table installed at directory index di (table.go's
 * checkInvariants and more) and returns its used count. */
static uint64_t checkTable(const mapType *typ, const Map *m, const table *t, int64_t di)
{
	if (t->index != di)
		checkfail(m, "table index is not its first directory entry", di, -1, -1);
	if (t->localDepth > m->globalDepth)
		checkfail(m, "localDepth > globalDepth", di, -1, -1);
	int64_t entries = (int64_t)1 << (m->globalDepth - t->localDepth);
	if (di % entries != 0 || di + entries > m->dirLen)
		checkfail(m, "table's directory entries are not aligned", di, -1, -1);
	for (int64_t k = di; k < di + entries; k++)
		if (directoryAt(m, (uintptr_t)k) != t)
			checkfail(m, "a table does not fill its 2^(globalDepth-localDepth) entries", k, -1, -1);
	uint64_t ngroups = t->groups.lengthMask + 1;
	if ((ngroups & t->groups.lengthMask) != 0 || t->capacity != ngroups * abi_MapGroupSlots ||
	    t->capacity > maxTableCapacity)
		checkfail(m, "capacity is not 8 x a power-of-two group count <= 1024", di, -1, -1);
	if (objectBase(t->groups.data) != t->groups.data)
		checkfail(m, "groups array is not an object", di, -1, -1);
	int used = 0, deleted = 0, empty = 0;
	for (uint64_t i = 0; i < ngroups; i++) {
		uintptr_t g = groupRef(typ, &t->groups, i);
		for (uintptr_t j = 0; j < abi_MapGroupSlots; j++) {
			ctrl c = ctrlGet(ctrls(g), j);
			if (c == ctrlDeleted) {
				deleted++;
				continue;
			}
			if (c == ctrlEmpty) {
				empty++;
				continue;
			}
			if (c & 0x80)
				checkfail(m, "control byte neither empty, deleted nor full", di, (int64_t)i, (int)j);
			used++;
			uint64_t key = *(uint64_t *)slotKey(typ, g, j);
			uintptr_t hash = hashKey(m, key);
			if (h2(hash) != c)
				checkfail(m, "control byte is not the key's H2", di, (int64_t)i, (int)j);
			uintptr_t idx = directoryIndex(m, hash);
			if ((int64_t)idx < di || (int64_t)idx >= di + entries)
				checkfail(m, "key in a table its hash does not select", di, (int64_t)i, (int)j);
			if (tableGet(typ, t, hash, key) != slotElem(typ, g, j))
				checkfail(m, "key not findable (or duplicated)", di, (int64_t)i, (int)j);
		}
	}
	if (used != t->used)
		checkfail(m, "used does not count the full slots", di, -1, -1);
	if ((int)t->growthLeft != (t->capacity * maxAvgGroupLoad) / abi_MapGroupSlots - used - deleted)
		checkfail(m, "growthLeft is not capacity*7/8 - used - deleted", di, -1, -1);
	if (deleted != tombstones(t))
		checkfail(m, "tombstones() does not count the deleted slots", di, -1, -1);
	if (empty == 0)
		checkfail(m, "no empty slot (violates the probe invariant)", di, -1, -1);
	if (deleted > 0 && !m->tombstonePossible)
		checkfail(m, "a tombstone while tombstonePossible is false", di, -1, -1);
	return (uint64_t)used;
}

/* gm_swiss_check verifies every invariant of the Swiss map at mp and aborts
 * loudly on the first one that fails. */
void gm_swiss_check(int shape, uintptr_t mp)
{
	const mapType *typ = &mapTypes[shape];
	const Map *m = (const Map *)mp;
	if (m->writing != 0)
		checkfail(m, "writing set outside a write", -1, -1, -1);
	if (m->dirPtr == 0) {
		if (m->used != 0 || m->dirLen != 0)
			checkfail(m, "entries without a group or directory", -1, -1, -1);
		return;
	}
	if (m->dirLen == 0) {
		uintptr_t g = m->dirPtr;
		uint64_t used = 0;
		for (uintptr_t i = 0; i < abi_MapGroupSlots; i++) {
			ctrl c = ctrlGet(ctrls(g), i);
			if (c == ctrlEmpty)
				continue;
			if (c & 0x80)
				checkfail(m, "small map with a tombstone", 0, 0, (int)i);
			uint64_t key = *(uint64_t *)slotKey(typ, g, i);
			if (h2(hashKey(m, key)) != c)
				checkfail(m, "control byte is not the key's H2", 0, 0, (int)i);
			if (mapaccess2_fast64(typ, m, key) != slotElem(typ, g, i))
				checkfail(m, "key not findable (or duplicated)", 0, 0, (int)i);
			used++;
		}
		if (used != m->used)
			checkfail(m, "used does not count the small group's full slots", 0, 0, -1);
		return;
	}
	if (m->dirLen != (int64_t)1 << m->globalDepth || m->globalShift != depthToShift(m->globalDepth))
		checkfail(m, "dirLen is not 2^globalDepth (or globalShift not 64-globalDepth)", -1, -1, -1);
	if (objectBase(m->dirPtr) != m->dirPtr)
		checkfail(m, "directory is not an object", -1, -1, -1);
	uint64_t used = 0;
	for (int64_t i = 0; i < m->dirLen;) {
		const table *t = directoryAt(m, (uintptr_t)i);
		used += checkTable(typ, m, t, i);
		i += (int64_t)1 << (m->globalDepth - t->localDepth);
	}
	if (used != m->used)
		checkfail(m, "Map.used is not the sum of the tables' used", -1, -1, -1);
}

/* --- the interface ------------------------------------------------------- */

int swissShape(int type)
{
	return type == T_SWISS_MAP_PTR ? GM_SHAPE_I64_PTR : GM_SHAPE_I64_I64;
}

uintptr_t gm_swiss_makemap(int shape, int64_t hint)
{
	return (uintptr_t)newMap(&mapTypes[shape], hint < 0 ? 0 : (uint64_t)hint);
}

static void afterWrite(int shape, uintptr_t m)
{
	if (gm.cfg.check)
		gm_swiss_check(shape, m);
	safepoint();
}

void gm_swiss_assign(int shape, uintptr_t m, int64_t key, uint64_t val)
{
	const mapType *typ = &mapTypes[shape];
	moveElem(typ, mapassign_fast64(typ, (Map *)m, (uint64_t)key), val);
	afterWrite(shape, m);
}

int gm_swiss_access2(int shape, uintptr_t m, int64_t key, uint64_t *val)
{
	uintptr_t e = mapaccess2_fast64(&mapTypes[shape], (const Map *)m, (uint64_t)key);
	if (e == 0)
		return 0;
	*val = *(uint64_t *)e;
	return 1;
}

void gm_swiss_delete(int shape, uintptr_t m, int64_t key)
{
	mapdelete(&mapTypes[shape], (Map *)m, (uint64_t)key);
	afterWrite(shape, m);
}

void gm_swiss_clear(int shape, uintptr_t m)
{
	mapclear(&mapTypes[shape], (Map *)m);
	afterWrite(shape, m);
}

/* shapeOf reads the total slots and distinct tables of m. */
static void shapeOf(const Map *m, uint64_t *tables, uint64_t *capacity)
{
	*tables = 0;
	*capacity = 0;
	if (m->dirPtr == 0)
		return;
	if (m->dirLen == 0) {
		*capacity = abi_MapGroupSlots;
		return;
	}
	for (int64_t i = 0; i < m->dirLen;) {
		const table *t = directoryAt(m, (uintptr_t)i);
		(*tables)++;
		*capacity += t->capacity;
		i += (int64_t)1 << (m->globalDepth - t->localDepth);
	}
}

void gm_swiss_assign_batch(int shape, uintptr_t m, const int64_t *keys, const uint64_t *vals, size_t n,
			   uintptr_t valsize, uint32_t *trace)
{
	const mapType *typ = &mapTypes[shape];
	for (size_t i = 0; i < n; i++) {
		uint64_t v;
		if (vals != NULL)
			v = vals[i];
		else if (typ->elemPointers)
			v = gm_new_value(valsize);
		else
			v = (uint64_t)keys[i];
		gm_swiss_assign(shape, m, keys[i], v);
		if (trace != NULL) {
			uint64_t tables, capacity;
			shapeOf((const Map *)m, &tables, &capacity);
			trace[3 * i] = (uint32_t)((const Map *)m)->dirLen;
			trace[3 * i + 1] = (uint32_t)tables;
			trace[3 * i + 2] = (uint32_t)capacity;
		}
	}
}

void gm_swiss_delete_batch(int shape, uintptr_t m, const int64_t *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		gm_swiss_delete(shape, m, keys[i]);
}

void gm_swiss_header(uintptr_t mp, uint64_t out[GM_SWISS_HEADER_WORDS])
{
	const Map *m = (const Map *)mp;
	out[0] = m->used;
	out[1] = m->seed;
	out[2] = m->dirPtr;
	out[3] = (uint64_t)m->dirLen;
	out[4] = m->globalDepth;
	out[5] = m->globalShift;
	out[6] = m->tombstonePossible;
	out[7] = m->clearSeq;
	shapeOf(m, &out[8], &out[9]);
}

void gm_swiss_ctrl_counts(uintptr_t group, uint32_t out[3])
{
	ctrlGroup c = *ctrls(group);
	int full = bitsetCount(matchFull(c)), empty = bitsetCount(matchEmpty(c));
	out[0] = (uint32_t)full;
	out[1] = (uint32_t)(abi_MapGroupSlots - full - empty);
	out[2] = (uint32_t)empty;
}

size_t gm_swiss_tables(uintptr_t mp, uint64_t *out, size_t cap)
{
	const Map *m = (const Map *)mp;
	size_t n = 0;
	if (m->dirPtr == 0 || m->dirLen == 0)
		return 0;
	for (int64_t i = 0; i < m->dirLen; n++) {
		const table *t = directoryAt(m, (uintptr_t)i);
		if (n < cap) {
			uint64_t *o = out + n * GM_SWISS_TABLE_WORDS;
			uint64_t full = 0, deleted = 0;
			for (uint64_t g = 0; g <= t->groups.lengthMask; g++) {
				uint32_t c[3];
				gm_swiss_ctrl_counts(t->groups.data + g * mapTypes[0].groupSize, c); /* both shapes: 136 */
				full += c[0];
				deleted += c[1];
			}
			o[0] = (uintptr_t)t;
			o[1] = t->capacity;
			o[2] = t->used;
			o[3] = t->growthLeft;
			o[4] = t->localDepth;
			o[5] = (uint64_t)t->index;
			o[6] = t->groups.data;
			o[7] = t->groups.lengthMask + 1;
			o[8] = full;
			o[9] = deleted;
		}
		i += (int64_t)1 << (m->globalDepth - t->localDepth);
	}
	return n;
}

void gm_swiss_probes(int shape, uintptr_t mp, const int64_t *keys, size_t n, uint32_t *groups, uint32_t *cmps)
{
	const mapType *typ = &mapTypes[shape];
	const Map *m = (const Map *)mp;
	for (size_t k = 0; k < n; k++) {
		uint64_t key = (uint64_t)keys[k];
		uint32_t ng = 0, nc = 0;
		if (m->dirPtr != 0 && m->dirLen == 0) {
			ng = 1;
			nc = (uint32_t)bitsetCount(matchFull(*ctrls(m->dirPtr)));
		} else if (m->dirPtr != 0) {
			uintptr_t hash = hashKey(m, key);
			const table *t = directoryAt(m, directoryIndex(m, hash));
			probeSeq seq = makeProbeSeq(h1(hash), t->groups.lengthMask);
			for (;; probeNext(&seq)) {
				uintptr_t g = groupRef(typ, &t->groups, seq.offset);
				ng++;
				bool found = false;
				for (bitset match = matchH2(*ctrls(g), h2(hash)); match != 0; match = bitsetRemoveFirst(match)) {
					nc++;
					if (key == *(uint64_t *)slotKey(typ, g, bitsetFirst(match))) {
						found = true;
						break;
					}
				}
				if (found || matchEmpty(*ctrls(g)) != 0)
					break;
			}
		}
		groups[k] = ng;
		if (cmps != NULL)
			cmps[k] = nc;
	}
}
