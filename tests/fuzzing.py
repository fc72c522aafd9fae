"""fuzzing holds what the parsers' fuzz tests share: byte-level mutation, in Python and in C.

``mutate`` edits a seed input for the differential tests (C parser against
Python). A C fuzz driver, built by sanitized.run_sanitized, is
``FUZZ_PROLOGUE``, its own ``static void run(const uint8_t *data, int64_t n)``
(which feeds one input to the code under test and CHECKs its invariants) and
its ``TOKENS``, then ``FUZZ_MAIN``.
"""

import random


def mutate(rng: random.Random, data: bytes, set_byte, tokens, number) -> bytes:
    """mutate returns data with 1 to 3 random edits: a byte set (``set_byte(rng)``), one of ``tokens`` inserted,
    1-4 bytes removed, 1-8 bytes of the input copied elsewhere, the rest cut, or ``number(rng)`` inserted."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(b) + 1)
        what = rng.randrange(6)
        if what == 0 and i < len(b):
            b[i] = set_byte(rng)
        elif what == 1:
            b[i:i] = rng.choice(tokens)
        elif what == 2:
            del b[i:i + rng.randint(1, 4)]
        elif what == 3 and i < len(b):
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 8)]
        elif what == 4:
            del b[i:]
        else:
            b[i:i] = number(rng)
    return bytes(b)


# The random source and the invariant check every driver uses (xorshift64: the same inputs on every run).
FUZZ_PROLOGUE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s\n", #c); abort(); } } while (0)
"""

# main(iterations, corpus files...): runs each file, then that many mutations of them (a byte set, one of the
# driver's TOKENS inserted, up to 7 bytes removed, the input cut), 1 to 4 edits each; prints "ok".
FUZZ_MAIN = r"""
int main(int argc, char **argv) {
    long iters = atol(argv[1]);
    int nf = argc - 2;
    uint8_t *files[64]; int64_t lens[64];
    for (int f = 0; f < nf && f < 64; f++) {
        FILE *fp = fopen(argv[f + 2], "rb");
        fseek(fp, 0, SEEK_END); lens[f] = ftell(fp); fseek(fp, 0, SEEK_SET);
        files[f] = malloc(lens[f] + 1);
        CHECK(fread(files[f], 1, lens[f], fp) == (size_t)lens[f]);
        fclose(fp);
        run(files[f], lens[f]);
    }
    uint8_t *m = malloc(1 << 16);
    for (long it = 0; it < iters; it++) {
        int f = next() % nf;
        int64_t n = lens[f] < 60000 ? lens[f] : 60000;
        memcpy(m, files[f], n);
        for (int e = 1 + next() % 4; e > 0; e--) {
            int64_t i = n ? next() % n : 0;
            switch (next() % 4) {
            case 0: if (n) m[i] = next(); break;
            case 1: { const char *t = TOKENS[next() % (sizeof TOKENS / sizeof *TOKENS)]; int64_t l = strlen(t);
                      if (n + l < (1 << 16)) { memmove(m + i + l, m + i, n - i); memcpy(m + i, t, l); n += l; } break; }
            case 2: { int64_t l = next() % 8; if (i + l > n) l = n - i; memmove(m + i, m + i + l, n - i - l); n -= l; break; }
            default: n = i;
            }
        }
        run(m, n);
    }
    free(m);
    for (int f = 0; f < nf; f++) free(files[f]);
    puts("ok");
    return 0;
}
"""
