/*
 * _goheapdump.c scans the object records of a Go heap dump (runtime/debug.WriteHeapDump).
 *
 * Why it exists: a heap dump of a million live objects is a million object
 * records (tag 1: addr, contents, fields), and reading them one varint at a
 * time in Python is most of an import (50 s of a profiled 112 s at 1M
 * objects). The other records (params, memstats, types, frames, goroutines,
 * finalizers, ...) number in the hundreds or thousands; tracer/goheap/goheapdump.py
 * keeps reading those itself.
 *
 * The contract, which keeps the Python parser the one reference:
 *
 *   - ghd_scan reads object records from s->pos and appends each to the
 *     caller's columns (addr, contents offset and length into buf, and its
 *     fields as CSR: field_end[i] is the number of fields once object i is
 *     in, field_kind/field_off the raw kind and offset of each).
 *   - It takes an object record only when the Python parser would take it
 *     with exactly these values: every varint within the rules of its uv()
 *     (at most 10 bytes, at most 64 bits, overlong encodings allowed), a
 *     non-zero address and length, contents inside the buffer, every field
 *     of kind 1, 2 or 3 at a multiple of the pointer size and inside the
 *     contents.
 *   - Anything else stops it with s->pos at the start of that record and
 *     GHD_OTHER: another tag, the eof, or an object record it does not
 *     take. Python then reads that one record: a good one is parsed the
 *     usual way, a bad one raises the Python parser's own HeapDumpError, so
 *     the messages cannot differ.
 *   - It never reads outside buf[0:s->end] and never writes past the
 *     capacities it is given; when a column is full it stops at the record
 *     that does not fit (GHD_FULL) and the caller grows the columns.
 *
 * Plain C loaded with ctypes (gctrace/native.py finds the build), like the
 * tracer's core and the loader's parser: no CPython API.
 */
#include <stdint.h>
#include <string.h>

enum { GHD_END = 0, GHD_OTHER = 1, GHD_FULL = 2, GHD_LIMIT = 3 };
enum { TAG_OBJECT = 1, FIELD_PTR = 1, FIELD_IFACE = 2, FIELD_EFACE = 3 };

/* ghd_scan_t mirrors class _Scan in tracer/goheap/goscan.py, field for field. */
typedef struct {
    int64_t pos;        /* in/out: the next record */
    int64_t end;        /* in: the buffer's length */
    int64_t limit;      /* in: return GHD_LIMIT at the first record boundary at or past it */
    int64_t ptr_size;   /* in: 4 or 8, as the dump's params say (8 before them) */
    int64_t obj_cap, field_cap;  /* in: the columns' capacities */
    int64_t n_obj, n_field;      /* in/out: how many are filled; records are appended */
    uint64_t *addr;
    int64_t *off, *size, *field_end;
    uint8_t *field_kind;
    int64_t *field_off;
} ghd_scan_t;

/* uv reads an unsigned LEB128 varint as goheapdump.parse's uv() does; 0 means Python must judge it. */
static inline int uv(const uint8_t *buf, int64_t end, int64_t *pos, uint64_t *out) {
    uint64_t x = 0;
    int shift = 0;
    int64_t p = *pos;
    for (;;) {
        if (p >= end)
            return 0;
        uint8_t b = buf[p++];
        if (shift == 63 && b > 1)
            return 0;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (b < 0x80) {
            *out = x;
            *pos = p;
            return 1;
        }
        shift += 7;
        if (shift > 63)
            return 0;
    }
}

/* ghd_version lets the binding refuse a library built from another layout of ghd_scan_t. */
int64_t ghd_version(void) { return 1000 + (int64_t)sizeof(ghd_scan_t); }

/* ghd_scan appends the object records from s->pos on; see the contract at the top. */
int ghd_scan(const uint8_t *buf, ghd_scan_t *s) {
    const int64_t end = s->end;
    const uint64_t ptr = (uint64_t)s->ptr_size;
    int64_t pos = s->pos;
    int status;
    for (;;) {
        if (pos >= end) {
            status = GHD_END;
            break;
        }
        if (pos >= s->limit) {
            status = GHD_LIMIT;
            break;
        }
        if (s->n_obj >= s->obj_cap) {
            status = GHD_FULL;
            break;
        }
        int64_t p = pos;
        uint64_t tag, addr, n;
        if (!uv(buf, end, &p, &tag) || tag != TAG_OBJECT || !uv(buf, end, &p, &addr) || !uv(buf, end, &p, &n)
            || n > (uint64_t)(end - p) || addr == 0 || n == 0) {
            status = GHD_OTHER;
            break;
        }
        const int64_t contents = p;
        p += (int64_t)n;
        int64_t nf = s->n_field;
        int ok = 1, full = 0;
        for (;;) {
            uint64_t kind, off, width;
            if (!uv(buf, end, &p, &kind)) {
                ok = 0;
                break;
            }
            if (kind == 0)
                break;
            if (!uv(buf, end, &p, &off)) {
                ok = 0;
                break;
            }
            if (kind == FIELD_PTR)
                width = 1;
            else if (kind == FIELD_IFACE || kind == FIELD_EFACE)
                width = 2;
            else {
                ok = 0;
                break;
            }
            if (off % ptr || off > n || width * ptr > n - off) {
                ok = 0;
                break;
            }
            if (nf >= s->field_cap) {
                full = 1;
                break;
            }
            s->field_kind[nf] = (uint8_t)kind;
            s->field_off[nf] = (int64_t)off;
            nf++;
        }
        if (full) {
            status = GHD_FULL;
            break;
        }
        if (!ok) {
            status = GHD_OTHER;
            break;
        }
        int64_t i = s->n_obj++;
        s->addr[i] = addr;
        s->off[i] = contents;
        s->size[i] = (int64_t)n;
        s->field_end[i] = s->n_field = nf;
        pos = p;
    }
    s->pos = pos;
    return status;
}
