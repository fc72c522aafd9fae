/*
 * _fastparse is a strict, single-pass parser for the common records of a
 * gctrace dump (docs/dump-format.md): object and event records, as JSON Lines
 * or as the elements of a document's "objects" and "events" arrays. It
 * writes straight into column buffers the caller owns (numpy arrays, see
 * analysis/fastparse.py), so a ten-million-object dump never becomes ten
 * million Python dicts.
 *
 * It is an accelerator, not a second loader. It accepts only what the Python
 * loader (analysis/load.py) accepts, and produces exactly what it produces;
 * everything else it reports as unsupported, and the caller hands that one
 * record (or, for structural damage, the whole file) to the Python path,
 * which accepts it or names the problem. So the rules here are deliberately
 * narrower than JSON:
 *
 *   - integers are plain non-negative decimals below 2^63 where the loader
 *     reads an integer; floats, exponents, negatives, 2^63 and more, and
 *     true/false are unsupported there;
 *   - strings may not hold escapes (a backslash is unsupported) and must be
 *     valid UTF-8 (what orjson requires) without control characters;
 *   - any key given twice in one object is unsupported (orjson keeps the
 *     last; the loader refuses it and names the record);
 *   - unknown keys are skipped when their value is a string, an integer,
 *     true/false/null, or an array/object of those nested at most
 *     FP_MAX_DEPTH deep; anything else (a float, say) is unsupported;
 *   - in JSON Lines only {"object": ...} and {"event": ...} lines are read;
 *     roots, pages, maps, headers and damaged lines are left to Python.
 *
 * The parser never reads outside [buf, buf+end) and never writes past the
 * capacities it is given: when a buffer or the string table fills up it
 * stops before the record (FP_FULL) and the caller drains and calls again.
 * A failed record is rolled back, so the output holds whole records only.
 *
 * Strings (object kind and type, event kind/advice/root) are interned per
 * call into a small table of byte ranges of the input; the caller decodes
 * the few distinct ones. Codes are local to one call; -1 means absent.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { FP_DONE = 0, FP_FULL = 1, FP_UNSUPPORTED = 2, FP_BAD = 3 };
enum { FP_MAX_DEPTH = 64, FP_VERSION = 1 };

/* fp_out is the parser's state and output; its layout is mirrored by
 * fastparse._Out. The caller sets the inputs and capacities and zeroes the
 * counters before each call. */
typedef struct fp_out {
    int64_t pos;       /* in/out: where to resume (after the last whole record) */
    int64_t end;       /* in: parse buf[pos, end) */
    int64_t index;     /* in/out: lines (JSON Lines) or elements (array) done */
    int64_t rec_start; /* out, FP_UNSUPPORTED: the record left to the caller... */
    int64_t rec_end;   /* ...is buf[rec_start, rec_end) (a line with its newline) */
    int32_t ptr_size;  /* in: meta.ptr_size, 4 or 8 */
    int32_t section;   /* in, arrays: 0 objects, 1 events */
    /* objects */
    int64_t obj_cap, ptr_cap, slot_cap;
    int64_t n_obj, n_ptr, n_slot;
    int64_t *addr, *size;
    int16_t *kind;
    int32_t *type;
    int64_t *nptr, *ptr_off, *ptr_target, *nslot;
    int8_t *slots, *has_slots;
    int64_t *owner;
    int64_t *site;
    /* events */
    int64_t ev_cap, n_ev;
    int64_t *seq;
    int8_t *op;
    int64_t *a, *b, *old, *new_;
    int32_t *text;
    int8_t *same;
    /* strings: the table, and its open-addressing index (hash_cap a power of
     * two >= 2 * str_cap, filled with -1 by the caller) */
    int64_t str_cap, n_str, hash_cap;
    int64_t *str_start, *str_len;
    int32_t *hash;
} fp_out;

typedef struct {
    const uint8_t *b;
    int64_t i, n;
    fp_out *o;
    int full; /* set when a capacity stopped the record */
} P;

static inline int is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static inline void ws(P *p) {
    while (p->i < p->n && is_ws(p->b[p->i]))
        p->i++;
}

static inline int peek(const P *p) { return p->i < p->n ? p->b[p->i] : -1; }

static inline int eat(P *p, uint8_t c) {
    if (p->i < p->n && p->b[p->i] == c) {
        p->i++;
        return 1;
    }
    return 0;
}

static int lit(P *p, const char *word) {
    size_t k = strlen(word);
    if (p->n - p->i < (int64_t)k || memcmp(p->b + p->i, word, k) != 0)
        return 0;
    p->i += (int64_t)k;
    return 1;
}

/* utf8_len returns the length of the valid UTF-8 sequence at s (non-ASCII
 * lead byte), or 0: no overlongs, no surrogates, nothing above U+10FFFF. */
static int utf8_len(const uint8_t *s, int64_t n) {
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    int k;
    if (c >= 0xC2 && c <= 0xDF)
        k = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (n < k || s[1] < lo || s[1] > hi)
        return 0;
    for (int j = 2; j < k; j++)
        if ((s[j] & 0xC0) != 0x80)
            return 0;
    return k;
}

/* str parses a string without escapes; its bytes are b[*s, *s + *len). */
static int str(P *p, int64_t *s, int64_t *len) {
    if (!eat(p, '"'))
        return 0;
    int64_t start = p->i;
    while (p->i < p->n) {
        uint8_t c = p->b[p->i];
        if (c == '"') {
            *s = start;
            *len = p->i - start;
            p->i++;
            return 1;
        }
        if (c == '\\' || c < 0x20)
            return 0;
        if (c < 0x80) {
            p->i++;
            continue;
        }
        int k = utf8_len(p->b + p->i, p->n - p->i);
        if (!k)
            return 0;
        p->i += k;
    }
    return 0;
}

/* uint63 parses a JSON integer in [0, 2^63) with nothing number-like after it. */
static int uint63(P *p, int64_t *v) {
    int64_t i = p->i, start = p->i;
    uint64_t x = 0;
    /* 19 digits cannot overflow 64 unsigned bits; 2^63 has 19. */
    while (i < p->n && (unsigned)(p->b[i] - '0') < 10 && i - start < 19)
        x = x * 10 + (unsigned)(p->b[i++] - '0');
    int64_t digits = i - start;
    if (digits == 0 || (p->b[start] == '0' && digits > 1) || x > (uint64_t)INT64_MAX)
        return 0;
    if (i < p->n) {
        uint8_t c = p->b[i];
        if ((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E')
            return 0;
    }
    p->i = i;
    *v = (int64_t)x;
    return 1;
}

/* members walks an object's members: '{', then "key": value pairs separated
 * by commas, then '}'. For each it calls member with p at the value and the
 * key at b[ks, ks+kl); member must consume the value. 0 on a syntax error or
 * when member returns 0. */
typedef int (*member_fn)(P *p, int64_t ks, int64_t kl, void *ctx);
static int members(P *p, member_fn member, void *ctx) {
    int64_t ks, kl;
    if (!eat(p, '{'))
        return 0;
    ws(p);
    if (eat(p, '}'))
        return 1;
    for (;;) {
        if (!str(p, &ks, &kl))
            return 0;
        ws(p);
        if (!eat(p, ':'))
            return 0;
        ws(p);
        if (!member(p, ks, kl, ctx))
            return 0;
        ws(p);
        if (eat(p, '}'))
            return 1;
        if (!eat(p, ','))
            return 0;
        ws(p);
    }
}

/* elements walks an array: '[', values separated by commas, ']'. For each it
 * calls element with p at the value; element must consume it. 0 on a syntax
 * error or when element returns 0. */
typedef int (*element_fn)(P *p, void *ctx);
static int elements(P *p, element_fn element, void *ctx) {
    if (!eat(p, '['))
        return 0;
    ws(p);
    if (eat(p, ']'))
        return 1;
    for (;;) {
        if (!element(p, ctx))
            return 0;
        ws(p);
        if (eat(p, ']'))
            return 1;
        if (!eat(p, ','))
            return 0;
        ws(p);
    }
}

/* keyset holds the keys of one object that the caller does not know, so
 * that one given twice is told (known keys are told by a bit each). */
enum { FP_MAX_UNKNOWN = 16 };
typedef struct {
    int n;
    int64_t start[FP_MAX_UNKNOWN], len[FP_MAX_UNKNOWN];
} keyset;

/* fresh adds the key b[s, s+len) to k: 0 when it is there already, or k is
 * full (so many unknown keys are left to the caller). */
static int fresh(const P *p, keyset *k, int64_t s, int64_t len) {
    for (int j = 0; j < k->n; j++)
        if (k->len[j] == len && memcmp(p->b + k->start[j], p->b + s, (size_t)len) == 0)
            return 0;
    if (k->n == FP_MAX_UNKNOWN)
        return 0;
    k->start[k->n] = s;
    k->len[k->n++] = len;
    return 1;
}

static int skip(P *p, int depth);

static int skip_element(P *p, void *depth) {
    return skip(p, *(int *)depth + 1);
}

/* The state of one object skipped whole: its depth, and its keys. */
typedef struct {
    int depth;
    keyset keys;
} skipped_object;

static int skip_member(P *p, int64_t ks, int64_t kl, void *ctx) {
    skipped_object *o = ctx;
    return fresh(p, &o->keys, ks, kl) && skip(p, o->depth + 1);
}

/* skip passes over one value of an unknown key (see the rules above). */
static int skip(P *p, int depth) {
    int64_t s, len, v;
    if (depth > FP_MAX_DEPTH)
        return 0;
    switch (peek(p)) {
    case '"':
        return str(p, &s, &len);
    case '-':
        p->i++;
        return uint63(p, &v);
    case 't':
        return lit(p, "true");
    case 'f':
        return lit(p, "false");
    case 'n':
        return lit(p, "null");
    case '[':
        return elements(p, skip_element, &depth);
    case '{': {
        skipped_object o;
        o.depth = depth;
        o.keys.n = 0;
        return members(p, skip_member, &o);
    }
    default:
        return uint63(p, &v);
    }
}

/* intern returns the table code of the string b[s, s+len), adding it; -1 when full. */
static int32_t intern(P *p, int64_t s, int64_t len) {
    fp_out *o = p->o;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int64_t k = 0; k < len; k++)
        h = (h ^ p->b[s + k]) * 16777619u;
    uint64_t mask = (uint64_t)o->hash_cap - 1;
    for (uint64_t j = h & mask;; j = (j + 1) & mask) {
        int32_t c = o->hash[j];
        if (c < 0) {
            if (o->n_str >= o->str_cap) {
                p->full = 1;
                return -1;
            }
            o->str_start[o->n_str] = s;
            o->str_len[o->n_str] = len;
            o->hash[j] = (int32_t)o->n_str;
            return (int32_t)o->n_str++;
        }
        if (o->str_len[c] == len && memcmp(p->b + o->str_start[c], p->b + s, (size_t)len) == 0)
            return c;
    }
}

static int intern_value(P *p, int32_t *code) {
    int64_t s, len;
    if (!str(p, &s, &len))
        return 0;
    *code = intern(p, s, len);
    return *code >= 0;
}

static int key_is(const P *p, int64_t s, int64_t len, const char *name) {
    return (size_t)len == strlen(name) && memcmp(p->b + s, name, (size_t)len) == 0;
}

/* key_index returns the index of the key b[s, s+len) in names[0, n), or n. */
static int key_index(const P *p, int64_t s, int64_t len, const char *const *names, const uint8_t *lens, int n) {
    const uint8_t *k = p->b + s;
    for (int j = 0; j < n; j++)
        if (lens[j] == len && k[0] == (uint8_t)names[j][0] && memcmp(k, names[j], (size_t)len) == 0)
            return j;
    return n;
}

/* ptr_field parses one [off, target] pair into the pointer buffers. */
static int ptr_field(P *p, void *unused) {
    (void)unused;
    fp_out *o = p->o;
    int64_t off, tgt;
    if (o->n_ptr >= o->ptr_cap) {
        p->full = 1;
        return 0;
    }
    if (!eat(p, '['))
        return 0;
    ws(p);
    if (!uint63(p, &off))
        return 0;
    ws(p);
    if (!eat(p, ','))
        return 0;
    ws(p);
    if (!uint63(p, &tgt))
        return 0;
    ws(p);
    if (!eat(p, ']'))
        return 0;
    o->ptr_off[o->n_ptr] = off;
    o->ptr_target[o->n_ptr] = tgt;
    o->n_ptr++;
    return 1;
}

/* ptrs parses [[off, target], ...] into the pointer buffers. */
static int ptrs(P *p) {
    return elements(p, ptr_field, NULL);
}

/* slot parses one slot count n, 0..8 (Go's bucketCnt), into the slot buffer. */
static int slot(P *p, void *unused) {
    (void)unused;
    fp_out *o = p->o;
    int64_t v;
    if (o->n_slot >= o->slot_cap) {
        p->full = 1;
        return 0;
    }
    if (!uint63(p, &v) || v > 8)
        return 0;
    o->slots[o->n_slot++] = (int8_t)v;
    return 1;
}

/* slots parses [n, ...] into the slot buffer. */
static int slots(P *p) {
    return elements(p, slot, NULL);
}

/* sort_fields heap-sorts the pointer fields off[0,n) (with their targets) by offset. */
static void sift(int64_t *off, int64_t *tgt, int64_t root, int64_t n) {
    for (;;) {
        int64_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && off[child + 1] > off[child])
            child++;
        if (off[root] >= off[child])
            return;
        int64_t t = off[root];
        off[root] = off[child];
        off[child] = t;
        t = tgt[root];
        tgt[root] = tgt[child];
        tgt[child] = t;
        root = child;
    }
}

static void sort_fields(int64_t *off, int64_t *tgt, int64_t n) {
    int64_t k = 1;
    while (k < n && off[k - 1] <= off[k])
        k++;
    if (k >= n)
        return; /* the common case: already in order */
    for (int64_t i = n / 2 - 1; i >= 0; i--)
        sift(off, tgt, i, n);
    for (int64_t end = n - 1; end > 0; end--) {
        int64_t t = off[0];
        off[0] = off[end];
        off[end] = t;
        t = tgt[0];
        tgt[0] = tgt[end];
        tgt[end] = t;
        sift(off, tgt, 0, end);
    }
}

enum { K_ADDR, K_SIZE, K_KIND, K_PTRS, K_SLOTS, K_TYPE, K_SITE, K_MAP, K_OBJ_N };
static const char *const OBJ_KEYS[K_OBJ_N] = {"addr", "size", "kind", "ptrs", "slots", "type", "site", "map"};
static const uint8_t OBJ_KEY_LENS[K_OBJ_N] = {4, 4, 4, 4, 5, 4, 4, 3};

/* The members of one object record, as object_member reads them. */
typedef struct {
    int64_t addr, size, site, owner;
    int32_t kind, type;
    unsigned seen;    /* 1 << K_*: the known keys met so far */
    keyset *unknown; /* and the others */
} obj_members;

static int object_member(P *p, int64_t ks, int64_t kl, void *ctx) {
    obj_members *m = ctx;
    int key = kl ? key_index(p, ks, kl, OBJ_KEYS, OBJ_KEY_LENS, K_OBJ_N) : K_OBJ_N;
    if (key < K_OBJ_N) {
        if (m->seen & (1u << key))
            return 0;
        m->seen |= 1u << key;
    }
    switch (key) {
    case K_ADDR: return uint63(p, &m->addr);
    case K_SIZE: return uint63(p, &m->size);
    case K_KIND: return intern_value(p, &m->kind);
    case K_PTRS: return ptrs(p);
    case K_SLOTS: return slots(p);
    case K_TYPE: return intern_value(p, &m->type);
    case K_SITE: return uint63(p, &m->site);
    case K_MAP: return uint63(p, &m->owner);
    default: return fresh(p, m->unknown, ks, kl) && skip(p, 2);
    }
}

/* object parses one object record, with every check of _Builder.add_object. */
static int object(P *p) {
    fp_out *o = p->o;
    if (o->n_obj >= o->obj_cap) {
        p->full = 1;
        return 0;
    }
    int64_t p0 = o->n_ptr, s0 = o->n_slot;
    keyset unknown;
    unknown.n = 0;
    obj_members m = {.kind = -1, .type = -1, .unknown = &unknown};
    if (!members(p, object_member, &m))
        return 0;
    int64_t addr = m.addr, size = m.size, owner = m.owner;
    int32_t kind = m.kind, type = m.type;
    unsigned seen = m.seen;
    if (!(seen & (1u << K_ADDR)) || !(seen & (1u << K_SIZE)) || addr < 1 || size < 1)
        return 0;
    if ((uint64_t)addr + (uint64_t)size > (UINT64_C(1) << 63))
        return 0;
    int64_t np = o->n_ptr - p0, ps = o->ptr_size;
    int64_t *off = o->ptr_off + p0, *tgt = o->ptr_target + p0;
    sort_fields(off, tgt, np);
    for (int64_t k = 0; k < np; k++) {
        if (off[k] > size - ps || tgt[k] == 0)
            return 0;
        if (k > 0 && off[k] - off[k - 1] < ps)
            return 0;
    }
    int64_t n = o->n_obj;
    o->addr[n] = addr;
    o->size[n] = size;
    o->kind[n] = (int16_t)kind;
    o->type[n] = type;
    o->nptr[n] = np;
    o->nslot[n] = o->n_slot - s0;
    o->has_slots[n] = (seen & (1u << K_SLOTS)) != 0;
    o->owner[n] = owner;
    o->site[n] = m.site;
    o->n_obj++;
    return 1;
}

enum { T_ABSENT, T_INT, T_STR, T_BOOL, T_OTHER };
typedef struct {
    int t;
    int64_t i, s, len;
} V;

/* val parses the value of a known event key, noting its type; an unusual
 * value (float, negative, huge) fails, a nested one is skipped as T_OTHER. */
static int val(P *p, V *v) {
    int c = peek(p);
    if (c == '"') {
        v->t = T_STR;
        return str(p, &v->s, &v->len);
    }
    if (c >= '0' && c <= '9') {
        v->t = T_INT;
        return uint63(p, &v->i);
    }
    if (c == 't' || c == 'f') {
        v->t = T_BOOL;
        v->i = c == 't';
        return lit(p, c == 't' ? "true" : "false");
    }
    v->t = T_OTHER;
    return skip(p, 2);
}

enum { E_SEQ, E_OP, E_ADDR, E_SIZE, E_KIND, E_OBJ, E_OFF, E_OLD, E_NEW, E_ROOT, E_LEN, E_ADVICE,
       E_HMAP, E_BUCKET, E_SAME, E_N };
static const char *const EV_KEYS[E_N] = {"seq", "op", "addr", "size", "kind", "obj", "off", "old", "new",
                                         "root", "len", "advice", "hmap", "bucket", "same_size"};
static const uint8_t EV_KEY_LENS[E_N] = {3, 2, 4, 4, 4, 3, 3, 3, 3, 4, 3, 6, 4, 6, 9};
/* The ops in model.EVENT_OPS order: the op code is the index. */
enum { OP_ALLOC, OP_FREE, OP_WRITE, OP_GC_START, OP_MARK_DONE, OP_SWEEP_DONE, OP_MADVISE, OP_GROW_START,
       OP_EVACUATE, OP_GROW_END, OP_N };
static const char *const OPS[OP_N] = {"alloc", "free", "write", "gc_start", "mark_done", "sweep_done",
                                      "madvise", "grow_start", "evacuate", "grow_end"};

static int text_of(P *p, const V *v, int32_t *code) {
    if (v->t != T_STR)
        return 0;
    *code = intern(p, v->s, v->len);
    return *code >= 0;
}

/* The members of one event record, as event_member reads them. */
typedef struct {
    V v[E_N];
    keyset *unknown;
} ev_members;

/* event_member reads one member of an event record into v[key]; unknown keys are skipped. */
static int event_member(P *p, int64_t ks, int64_t kl, void *ctx) {
    ev_members *m = ctx;
    int key = kl ? key_index(p, ks, kl, EV_KEYS, EV_KEY_LENS, E_N) : E_N;
    if (key < E_N)
        return m->v[key].t == T_ABSENT && val(p, &m->v[key]);
    return fresh(p, m->unknown, ks, kl) && skip(p, 2);
}

/* event parses one event record, with every check of _Builder.add_event. */
static int event(P *p) {
    fp_out *o = p->o;
    if (o->n_ev >= o->ev_cap) {
        p->full = 1;
        return 0;
    }
    keyset unknown;
    unknown.n = 0;
    ev_members m;
    memset(m.v, 0, sizeof m.v);
    m.unknown = &unknown;
    if (!members(p, event_member, &m))
        return 0;
    V *v = m.v;
    if (v[E_SEQ].t != T_INT || v[E_OP].t != T_STR)
        return 0;
    int op = 0;
    while (op < OP_N && !key_is(p, v[E_OP].s, v[E_OP].len, OPS[op]))
        op++;
    int64_t a = 0, b = 0, old = 0, nw = 0;
    int32_t text = -1;
    int same = 0;
    switch (op) {
    case OP_ALLOC:
        if (v[E_ADDR].t != T_INT || v[E_SIZE].t != T_INT || !text_of(p, &v[E_KIND], &text))
            return 0;
        a = v[E_ADDR].i;
        b = v[E_SIZE].i;
        if (a == 0 || b == 0)
            return 0;
        break;
    case OP_FREE:
        if (v[E_ADDR].t != T_INT)
            return 0;
        a = v[E_ADDR].i;
        break;
    case OP_WRITE:
        if (v[E_OBJ].t != T_INT || v[E_OFF].t != T_INT || v[E_OLD].t != T_INT || v[E_NEW].t != T_INT)
            return 0;
        a = v[E_OBJ].i;
        b = v[E_OFF].i;
        old = v[E_OLD].i;
        nw = v[E_NEW].i;
        if (a == 0 && !text_of(p, &v[E_ROOT], &text))
            return 0;
        break;
    case OP_GC_START:
    case OP_MARK_DONE:
    case OP_SWEEP_DONE:
        break;
    case OP_MADVISE:
        if (v[E_ADDR].t != T_INT || v[E_LEN].t != T_INT || !text_of(p, &v[E_ADVICE], &text))
            return 0;
        a = v[E_ADDR].i;
        b = v[E_LEN].i;
        break;
    case OP_GROW_START:
    case OP_EVACUATE:
    case OP_GROW_END:
        if (v[E_HMAP].t != T_INT)
            return 0;
        if (v[E_BUCKET].t != T_ABSENT && v[E_BUCKET].t != T_INT)
            return 0;
        if (v[E_SAME].t != T_ABSENT && v[E_SAME].t != T_BOOL)
            return 0;
        a = v[E_HMAP].i;
        b = v[E_BUCKET].t == T_INT ? v[E_BUCKET].i : 0;
        same = v[E_SAME].t == T_BOOL && v[E_SAME].i;
        break;
    default:
        return 0; /* an unknown op */
    }
    int64_t n = o->n_ev;
    o->seq[n] = v[E_SEQ].i;
    o->op[n] = (int8_t)op;
    o->a[n] = a;
    o->b[n] = b;
    o->old[n] = old;
    o->new_[n] = nw;
    o->text[n] = text;
    o->same[n] = (int8_t)same;
    o->n_ev++;
    return 1;
}

static int sane(const fp_out *o) {
    return o && o->pos >= 0 && o->pos <= o->end && (o->ptr_size == 4 || o->ptr_size == 8) &&
           o->str_cap > 0 && o->str_cap <= 32767 && o->hash_cap >= 2 * o->str_cap &&
           (o->hash_cap & (o->hash_cap - 1)) == 0;
}

/* line_record parses {"object": {...}} or {"event": {...}}: the whole line. */
static int line_record(P *p) {
    int64_t ks, kl;
    ws(p);
    if (!eat(p, '{'))
        return 0;
    ws(p);
    if (!str(p, &ks, &kl))
        return 0;
    ws(p);
    if (!eat(p, ':'))
        return 0;
    ws(p);
    int ok;
    if (key_is(p, ks, kl, "object"))
        ok = object(p);
    else if (key_is(p, ks, kl, "event"))
        ok = event(p);
    else
        return 0;
    if (!ok)
        return 0;
    ws(p);
    if (!eat(p, '}'))
        return 0;
    ws(p);
    return p->i == p->n;
}

/* fp_parse_lines parses JSON Lines records from buf[o->pos, o->end) until
 * the end (FP_DONE), a full buffer (FP_FULL) or a line it leaves to the
 * caller (FP_UNSUPPORTED); either way the line is in rec_start..rec_end
 * (with its newline), and o->pos is where it starts. Blank lines are
 * skipped; o->index counts the lines passed. */
int fp_parse_lines(const uint8_t *buf, fp_out *o) {
    if (!sane(o))
        return FP_BAD;
    while (o->pos < o->end) {
        int64_t start = o->pos;
        const uint8_t *nl = memchr(buf + start, '\n', (size_t)(o->end - start));
        int64_t eol = nl ? nl - buf : o->end;
        int64_t next = nl ? eol + 1 : eol;
        P p = {buf, start, eol, o, 0};
        ws(&p);
        if (p.i < eol) {
            int64_t n_obj = o->n_obj, n_ptr = o->n_ptr, n_slot = o->n_slot, n_ev = o->n_ev;
            if (!line_record(&p)) {
                o->n_obj = n_obj, o->n_ptr = n_ptr, o->n_slot = n_slot, o->n_ev = n_ev;
                o->rec_start = start;
                o->rec_end = next;
                return p.full ? FP_FULL : FP_UNSUPPORTED;
            }
        }
        o->pos = next;
        o->index++;
    }
    return FP_DONE;
}

/* fp_skip_value returns the end of the JSON value at buf[pos] (after
 * whitespace), or -1. It is lenient: it only matches brackets and quotes, to
 * find where a value ends; the value itself is then parsed strictly, by this
 * file or by orjson. */
int64_t fp_skip_value(const uint8_t *buf, int64_t len, int64_t pos) {
    int64_t i = pos, depth = 0;
    while (i < len && is_ws(buf[i]))
        i++;
    if (i < 0 || i >= len)
        return -1;
    uint8_t c = buf[i];
    if (c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n') {
        while (i < len && !is_ws(buf[i]) && buf[i] != ',' && buf[i] != ']' && buf[i] != '}')
            i++;
        return i;
    }
    if (c != '"' && c != '[' && c != '{')
        return -1;
    while (i < len) {
        c = buf[i];
        if (c == '"') {
            for (i++;; i++) {
                const uint8_t *q = memchr(buf + i, '"', (size_t)(len - i));
                if (!q)
                    return -1;
                int64_t j = q - buf, bs = 0;
                while (j - 1 - bs >= i && buf[j - 1 - bs] == '\\')
                    bs++;
                i = j;
                if (bs % 2 == 0)
                    break;
            }
            i++;
            if (depth == 0)
                return i;
            continue;
        }
        if (c == '[' || c == '{')
            depth++;
        else if (c == ']' || c == '}') {
            if (--depth == 0)
                return i + 1;
        }
        i++;
    }
    return -1;
}

/* fp_parse_array parses the elements of an "objects" (section 0) or
 * "events" (section 1) array, buf[o->pos] being just after its '['; like
 * fp_parse_lines (FP_FULL and FP_UNSUPPORTED delimit the record in
 * rec_start..rec_end), but FP_DONE leaves o->pos after the closing ']', and a
 * separator that is not ',' or ']' (or an unsupported element whose end
 * cannot be found) is FP_BAD: the caller then reads the file the slow way. */
int fp_parse_array(const uint8_t *buf, fp_out *o) {
    if (!sane(o) || (o->section != 0 && o->section != 1))
        return FP_BAD;
    P p = {buf, o->pos, o->end, o, 0};
    for (;;) {
        ws(&p);
        if (eat(&p, ']')) {
            o->pos = p.i;
            return FP_DONE;
        }
        if (o->index > 0) {
            if (!eat(&p, ','))
                return FP_BAD;
            ws(&p);
        }
        int64_t start = p.i;
        int64_t n_obj = o->n_obj, n_ptr = o->n_ptr, n_slot = o->n_slot, n_ev = o->n_ev;
        if (!(o->section == 0 ? object(&p) : event(&p))) {
            o->n_obj = n_obj, o->n_ptr = n_ptr, o->n_slot = n_slot, o->n_ev = n_ev;
            o->rec_start = start;
            o->rec_end = fp_skip_value(buf, o->end, start);
            return o->rec_end < 0 ? FP_BAD : p.full ? FP_FULL : FP_UNSUPPORTED;
        }
        o->pos = p.i;
        o->index++;
    }
}

/* fp_scan_document finds the top-level keys of a JSON document: for key k,
 * out[4k..4k+3] = key start, key length, value start, value end. It returns
 * the number of keys, -1 when the top level is not a plain object of
 * escape-free keys, -2 when there are more than cap keys. */
int64_t fp_scan_document(const uint8_t *buf, int64_t len, int64_t *out, int64_t cap) {
    P p = {buf, 0, len, NULL, 0};
    int64_t k = 0;
    ws(&p);
    if (!eat(&p, '{'))
        return -1;
    ws(&p);
    if (!eat(&p, '}'))
        for (;;) {
            int64_t ks, kl;
            if (!str(&p, &ks, &kl))
                return -1;
            ws(&p);
            if (!eat(&p, ':'))
                return -1;
            int64_t end = fp_skip_value(buf, len, p.i);
            if (end < 0)
                return -1;
            ws(&p);
            if (k >= cap)
                return -2;
            out[4 * k] = ks, out[4 * k + 1] = kl, out[4 * k + 2] = p.i, out[4 * k + 3] = end;
            k++;
            p.i = end;
            ws(&p);
            if (eat(&p, '}'))
                break;
            if (!eat(&p, ','))
                return -1;
            ws(&p);
        }
    ws(&p);
    return p.i == len ? k : -1;
}

/* fp_version returns the layout version of fp_out, checked by fastparse.py. */
int fp_version(void) { return FP_VERSION * 1000 + (int)sizeof(fp_out); }
