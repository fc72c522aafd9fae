/*
 * _gowrite.c writes the JSON Lines of a Go import's plain objects straight from the heap dump's arrays.
 *
 * Issue 11's fast import (tracer/goheap/gowrite.py, goimport.GoObjects.write): a
 * dict per object, orjson-dumped, took 10 s and gigabytes at 1M objects.
 * Nearly all of those objects are "plain": an address, a size, a kind, the
 * pointer words of their fields and maybe the map that owns them and a type
 * name, nothing else. gw_objects writes their lines byte for byte as
 * orjson.dumps({"object": {...}}) does with goimport's key order:
 *
 *     {"object":{"addr":A,"size":S,"kind":"K","ptrs":[[off,target],...],"map":M,"type":"T"}}
 *
 * reading each field's word from the dump's contents (little-endian, 8
 * bytes; nil words and words >= 2^63, which are no address, are left out,
 * as goimport does). Objects are taken in the order given (by address), and
 * at the first one not plain the call returns for Python to write it with
 * orjson. Plain C loaded with ctypes (gctrace.native).
 */
#include <stdint.h>
#include <string.h>

/* u64 writes x in decimal at p and returns the end. */
static inline uint8_t *u64(uint8_t *p, uint64_t x) {
    uint8_t tmp[20];
    int n = 0;
    do {
        tmp[n++] = (uint8_t)('0' + x % 10);
        x /= 10;
    } while (x);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static inline uint8_t *lit(uint8_t *p, const char *s, size_t n) {
    memcpy(p, s, n);
    return p + n;
}

int64_t gw_version(void) { return 3; }

/*
 * gw_objects writes the lines of order[*at .. n_order) into out (cap bytes), stopping when the next line
 * might not fit, or at the first object not plain; *at is left at the first object not written. Returns the
 * bytes written. names is the kinds' and types' JSON strings (quoted, escaped) end to end, name_start[c]
 * where name c starts (name_start[c + 1] its end); kind[i] is one, type[i] another or -1 (no "type");
 * owner[i] is the "map", 0 for none. A line of an object with f fields takes at most
 * 128 + the kind's and type's lengths + 44 f bytes; the caller gives at least that for one object.
 */
int64_t gw_objects(const uint8_t *raw, const int64_t *order, int64_t n_order, int64_t *at,
                   const uint64_t *addr, const int64_t *off, const int64_t *size,
                   const int64_t *field_start, const int64_t *data_off,
                   const int32_t *kind, const int32_t *type, const uint64_t *owner,
                   const uint8_t *names, const int64_t *name_start,
                   const uint8_t *plain, uint8_t *out, int64_t cap) {
    uint8_t *p = out, *end = out + cap;
    int64_t i = *at;
    for (; i < n_order; i++) {
        int64_t k = order[i];
        if (!plain[i])
            break;
        int64_t f0 = field_start[k], f1 = field_start[k + 1];
        int32_t kd = kind[i], ty = type[i];
        int64_t klen = name_start[kd + 1] - name_start[kd];
        int64_t tlen = ty < 0 ? 0 : name_start[ty + 1] - name_start[ty];
        if (end - p < 128 + klen + tlen + 44 * (f1 - f0))
            break;
        p = lit(p, "{\"object\":{\"addr\":", 18);
        p = u64(p, addr[k]);
        p = lit(p, ",\"size\":", 8);
        p = u64(p, (uint64_t)size[k]);
        p = lit(p, ",\"kind\":", 8);
        p = lit(p, (const char *)names + name_start[kd], (size_t)klen);
        p = lit(p, ",\"ptrs\":[", 9);
        int first = 1;
        for (int64_t f = f0; f < f1; f++) {
            uint64_t w;
            memcpy(&w, raw + off[k] + data_off[f], 8);  /* little-endian hosts only: the importer's dumps are */
            if (!w || w >> 63)
                continue;
            if (!first)
                *p++ = ',';
            first = 0;
            *p++ = '[';
            p = u64(p, (uint64_t)data_off[f]);
            *p++ = ',';
            p = u64(p, w);
            *p++ = ']';
        }
        *p++ = ']';
        if (owner[i]) {
            p = lit(p, ",\"map\":", 7);
            p = u64(p, owner[i]);
        }
        if (ty >= 0) {
            p = lit(p, ",\"type\":", 8);
            p = lit(p, (const char *)names + name_start[ty], (size_t)tlen);
        }
        p = lit(p, "}}\n", 3);
    }
    *at = i;
    return p - out;
}
