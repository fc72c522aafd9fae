/*
 * residency.c asks the kernel which pages of the arena are in RAM.
 *
 * mincore(2) gives one byte per OS page (bit 0: resident). A page released
 * with MADV_DONTNEED is gone at once; one released with MADV_FREE stays
 * resident, and counted in RSS, until the kernel needs the memory, so
 * mincore still reports it. /proc/self/smaps gives the cross-check: the
 * LazyFree line of a mapping counts exactly those MADV_FREE pages. The dump
 * records both (pages[].resident from mincore, meta.arena_lazyfree_kb from
 * smaps) so a reader can see the two agree, and a third witness,
 * /proc/self/pagemap's present bit (bit 63 of each page's 64-bit entry),
 * counted over the arena as meta.arena_pagemap_present.
 */
#define _GNU_SOURCE
#include "runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

/* residentVector fills vec with mincore's byte per OS page of [addr, addr+len). */
int residentVector(uintptr_t addr, uintptr_t len, unsigned char *vec)
{
	if (len == 0)
		return 0;
	if (mincore((void *)addr, len, vec) != 0)
		return -errno;
	return 0;
}

int gm_resident(uintptr_t addr, uintptr_t len, uint64_t *resident, uint64_t *total)
{
	long ps = sysconf(_SC_PAGESIZE);
	uintptr_t start = addr & ~((uintptr_t)ps - 1);
	uintptr_t n = (addr + len - start + (uintptr_t)ps - 1) / (uintptr_t)ps;
	unsigned char *vec = malloc(n ? n : 1);
	if (vec == NULL)
		return -ENOMEM;
	int err = residentVector(start, n * (uintptr_t)ps, vec);
	if (err == 0) {
		uint64_t r = 0;
		for (uintptr_t i = 0; i < n; i++)
			r += vec[i] & 1;
		*resident = r;
		*total = n;
	}
	free(vec);
	return err;
}

int gm_smaps_arena(uint64_t *rss_kb, uint64_t *lazyfree_kb)
{
	*rss_kb = *lazyfree_kb = 0;
	FILE *f = fopen("/proc/self/smaps", "r");
	if (f == NULL)
		return -errno;
	char line[512];
	bool inArena = false;
	while (fgets(line, sizeof line, f) != NULL) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			inArena = lo < gm.arena + gm.arena_bytes && hi > gm.arena;
			continue;
		}
		if (!inArena)
			continue;
		unsigned long kb;
		if (sscanf(line, "Rss: %lu kB", &kb) == 1)
			*rss_kb += kb;
		else if (sscanf(line, "LazyFree: %lu kB", &kb) == 1)
			*lazyfree_kb += kb;
	}
	fclose(f);
	return 0;
}

/* processRSS returns the resident set of the whole process in bytes (statm). */
uint64_t processRSS(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return 0;
	unsigned long size, res;
	int ok = fscanf(f, "%lu %lu", &size, &res) == 2;
	fclose(f);
	return ok ? (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

int gm_pagemap_present(uintptr_t addr, uintptr_t len, uint64_t *present)
{
	*present = 0;
	uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
	int fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return -errno;
	uint64_t buf[512];
	uintptr_t first = addr / ps, n = (len + ps - 1) / ps;
	for (uintptr_t i = 0; i < n;) {
		uintptr_t k = n - i < 512 ? n - i : 512;
		ssize_t got = pread(fd, buf, k * 8, (off_t)((first + i) * 8));
		if (got <= 0) {
			close(fd);
			return got < 0 ? -errno : -EIO;
		}
		for (uintptr_t j = 0; j < (uintptr_t)got / 8; j++)
			*present += buf[j] >> 63;
		i += (uintptr_t)got / 8;
	}
	close(fd);
	return 0;
}
