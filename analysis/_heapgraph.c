/* _heapgraph.c: the heap graph's hot loops over the heap's own arrays: resolve, mark, dominators.
 *
 * The mark resolves every pointer target (20M of them in a 10M-object heap)
 * to the object that contains it. numpy's searchsorted does that in
 * O(log n) cache misses per target; this does it in about two, the way Go's
 * runtime finds an object's span (spanOf: a table indexed by address, then a
 * short search). Objects arrive sorted by address and disjoint, which the
 * loader checks, so their ends ascend too.
 *
 *   granule table: the heap's span [base, end) is cut into granules of 2^shift
 *     bytes, shift chosen so there are at most about as many granules as
 *     objects (the table costs at most 8 bytes an object). tab[g] is the first
 *     object whose end lies beyond the granule's start; the object containing
 *     any address in granule g, if one does, is in [tab[g], tab[g+1]].
 *   lookup: the first object in that range whose end lies beyond the address
 *     (a few steps of a linear walk, or a binary search when the range is
 *     long, so clustered or sparse heaps stay O(log n)); it contains the
 *     address when it starts at or before it.
 *   prefetch: targets are random, so each lookup is two dependent cache
 *     misses (table, then object). Looking D targets ahead, the loop prefetches
 *     the table entry, and D/2 ahead the object it names: the misses overlap.
 *     Measured at 1M objects, 2M targets (bench/scale_bench.py): 0.07 s,
 *     against 0.6 s for argsort + searchsorted.
 *
 * The BFS (hg_mark) walks the heap's own CSR arrays: ptr_start per object and
 * the resolved target of every pointer field, -1 skipped. scipy's csgraph
 * needs its own copy of the graph first (external pointers dropped, int32
 * indices, float64 data: 36 bytes a pointer, 720 MB at 20M pointers) and is
 * 1.3x slower than a plain C BFS; this needs a queue of 4 bytes an object.
 *
 * The dominator tree (hg_dominators) is Semi-NCA (Georgiadis, "Linear-Time
 * Algorithms for Dominators and Related Problems", 2005; what LLVM uses):
 * semidominators as in Lengauer-Tarjan, by path compression over a DFS
 * spanning tree, then each immediate dominator as the nearest common
 * ancestor of the node's parent and its semidominator, climbing already
 * final dominators. Every loop is iterative: a heap's DFS tree can be a
 * 10M-deep list. The Python fallback (analysis/dominators.py) is Cooper-
 * Harvey-Kennedy with numpy doing what it can: 60-70 s at 10M objects.
 *
 * Plain C loaded with ctypes (analysis/heapgraph.py), like the loader's parser:
 * optional, the numpy/scipy/Python path gives the same answers (tests compare them).
 */

#include <stdint.h>
#include <stdlib.h>

#define HG_VERSION 3
#define PREFETCH_AHEAD 16
#define LINEAR_MAX 8
#define HG_BAD_OFFSETS (-2) /* ptr_start descends somewhere: the caller's arrays are not a graph */

int hg_version(void) { return HG_VERSION; }

/* ends_by reports whether object k ends at or before t. An object may end at
 * exactly 2^63, past int64, so the end is never computed: t - addr is. */
static inline int ends_by(const int64_t *addr, const int64_t *size, int64_t k, int64_t t)
{
    return t >= addr[k] && (uint64_t)t - (uint64_t)addr[k] >= (uint64_t)size[k];
}

/* first_end_after returns the first k in [lo, hi] that ends after t, given that hi does or hi == n. */
static int64_t first_end_after(const int64_t *addr, const int64_t *size, int64_t lo, int64_t hi, int64_t t)
{
    if (hi - lo <= LINEAR_MAX) {
        while (lo < hi && ends_by(addr, size, lo, t))
            lo++;
        return lo;
    }
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (ends_by(addr, size, mid, t))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* hg_find sets out[i] to the index of the object containing q[i], or -1.
 *
 * addr and size describe n objects sorted by address, disjoint, size >= 1.
 * Returns 0, or -1 when the granule table cannot be allocated (the caller
 * then uses its own path).
 */
int hg_find(int64_t n, const int64_t *addr, const int64_t *size, int64_t m, const int64_t *q, int64_t *out)
{
    if (n == 0) {
        for (int64_t i = 0; i < m; i++)
            out[i] = -1;
        return 0;
    }
    int64_t base = addr[0];
    uint64_t span = (uint64_t)addr[n - 1] + (uint64_t)size[n - 1] - (uint64_t)base;
    int shift = 0;
    while ((span >> shift) > (uint64_t)n)
        shift++;
    int64_t ng = (int64_t)(span >> shift) + 1;
    int64_t *tab = malloc((size_t)(ng + 1) * sizeof *tab);
    if (!tab)
        return -1;
    int64_t j = 0;
    for (int64_t g = 0; g < ng; g++) {
        int64_t start = (int64_t)((uint64_t)base + ((uint64_t)g << shift));
        while (j < n && ends_by(addr, size, j, start))
            j++;
        tab[g] = j;
    }
    tab[ng] = n;

    for (int64_t i = 0; i < m; i++) {
        if (i + PREFETCH_AHEAD < m) {
            uint64_t o = (uint64_t)q[i + PREFETCH_AHEAD] - (uint64_t)base;
            if (o < span)
                __builtin_prefetch(&tab[o >> shift]);
        }
        if (i + PREFETCH_AHEAD / 2 < m) {
            uint64_t o = (uint64_t)q[i + PREFETCH_AHEAD / 2] - (uint64_t)base;
            if (o < span) {
                int64_t k = tab[o >> shift];
                if (k < n) {
                    __builtin_prefetch(&addr[k]);
                    __builtin_prefetch(&size[k]);
                }
            }
        }
        int64_t t = q[i], r = -1;
        uint64_t o = (uint64_t)t - (uint64_t)base;
        if (o < span) {
            int64_t g = (int64_t)(o >> shift);
            int64_t k = first_end_after(addr, size, tab[g], tab[g + 1], t);
            if (k < n && addr[k] <= t)
                r = k;
        }
        out[i] = r;
    }
    free(tab);
    return 0;
}

/* hg_mark sets seen[v] for every object reachable from the roots and returns how many there are.
 *
 * ptr_start[v]..ptr_start[v+1] are object v's pointer fields and dest[e] the
 * object field e points into, -1 for none; roots are object indices, -1 for
 * none. Returns -1 when n does not fit the 32-bit queue or the queue cannot be
 * allocated (the caller then uses scipy), HG_BAD_OFFSETS when ptr_start
 * descends (checked in the pass that clears seen; the caller checks its ends).
 */
int64_t hg_mark(int64_t n, const int64_t *ptr_start, const int64_t *dest, int64_t nroots, const int64_t *roots,
                uint8_t *seen)
{
    if (n > (int64_t)UINT32_MAX)
        return -1;
    uint32_t *queue = malloc((size_t)(n ? n : 1) * sizeof *queue);
    if (!queue)
        return -1;
    int64_t head = 0, tail = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ptr_start[i] > ptr_start[i + 1]) {
            free(queue);
            return HG_BAD_OFFSETS;
        }
        seen[i] = 0;
    }
    for (int64_t i = 0; i < nroots; i++) {
        int64_t r = roots[i];
        if (r >= 0 && r < n && !seen[r]) {
            seen[r] = 1;
            queue[tail++] = (uint32_t)r;
        }
    }
    while (head < tail) {
        if (head + PREFETCH_AHEAD < tail)
            __builtin_prefetch(&ptr_start[queue[head + PREFETCH_AHEAD]]);
        if (head + PREFETCH_AHEAD / 2 < tail)
            __builtin_prefetch(&dest[ptr_start[queue[head + PREFETCH_AHEAD / 2]]]);
        int64_t v = queue[head++];
        for (int64_t e = ptr_start[v]; e < ptr_start[v + 1]; e++) {
            int64_t w = dest[e];
            if (w >= 0 && w < n && !seen[w]) {
                seen[w] = 1;
                queue[tail++] = (uint32_t)w;
            }
        }
    }
    free(queue);
    return tail;
}

/* compress is Lengauer-Tarjan's path compression, without recursion: it
 * shortens v's ancestor path to the nearest unlinked node, keeping in
 * label[x] the node of least semidominator on x's old path. */
static void compress(int32_t *anc, int32_t *label, const int32_t *semi, int32_t *stack, int32_t v)
{
    int64_t top = 0;
    for (int32_t x = v; anc[anc[x]] != -1; x = anc[x])
        stack[top++] = x;
    while (top > 0) {
        int32_t x = stack[--top], a = anc[x];
        if (semi[label[a]] < semi[label[x]])
            label[x] = label[a];
        anc[x] = anc[a];
    }
}

/* hg_dominators computes every object's immediate dominator and retained size.
 *
 * The graph is hg_mark's: ptr_start, dest (-1: none), roots (-1: none),
 * under a virtual super-root numbered n. idom_out[v] is v's immediate
 * dominator, n for the super-root, -1 when v is unreachable; retained_out[v]
 * is the sum of size over v's dominator subtree, 0 when unreachable.
 * Returns the number of reachable objects, -1 when n does not fit 32-bit
 * numbering or memory runs out (the caller then uses Python), or
 * HG_BAD_OFFSETS as hg_mark does.
 */
int64_t hg_dominators(int64_t n, const int64_t *ptr_start, const int64_t *dest, int64_t nroots, const int64_t *roots,
                      const int64_t *size, int64_t *idom_out, int64_t *retained_out)
{
    if (n >= INT32_MAX)
        return -1;
    int64_t cap = n + 1; /* preorder numbers: 0 is the super-root */
    int32_t *pre = malloc((size_t)(n ? n : 1) * sizeof *pre);
    int32_t *vertex = malloc((size_t)cap * sizeof *vertex), *parent = malloc((size_t)cap * sizeof *parent);
    int32_t *stack = malloc((size_t)cap * sizeof *stack);
    int64_t *next_edge = malloc((size_t)cap * sizeof *next_edge);
    int32_t *semi = NULL, *label = NULL, *anc = NULL, *preds = NULL;
    int64_t *pstart = NULL, *ret = NULL;
    int64_t count = -1;
    if (!pre || !vertex || !parent || !stack || !next_edge)
        goto out;
    for (int64_t v = 0; v < n; v++) {
        if (ptr_start[v] > ptr_start[v + 1]) {
            count = HG_BAD_OFFSETS;
            goto out;
        }
        pre[v] = -1;
    }

    /* 1. DFS from the super-root, iterative: preorder numbers, spanning-tree parents. */
    int32_t N = 1;
    vertex[0] = -1;
    parent[0] = 0;
    for (int64_t i = 0; i < nroots; i++) {
        int64_t r = roots[i];
        if (r < 0 || r >= n || pre[r] != -1)
            continue;
        pre[r] = N;
        vertex[N] = (int32_t)r;
        parent[N++] = 0;
        int64_t top = 0;
        stack[top] = (int32_t)r;
        next_edge[top++] = ptr_start[r];
        while (top > 0) {
            int32_t v = stack[top - 1];
            int64_t e = next_edge[top - 1], end = ptr_start[v + 1];
            while (e < end) {
                int64_t w = dest[e++];
                if (w >= 0 && w < n && pre[w] == -1) {
                    next_edge[top - 1] = e;
                    pre[w] = N;
                    vertex[N] = (int32_t)w;
                    parent[N++] = pre[v];
                    stack[top] = (int32_t)w;
                    next_edge[top++] = ptr_start[w];
                    goto descended;
                }
            }
            top--;
        descended:;
        }
    }
    free(next_edge);
    next_edge = NULL;

    /* 2. Predecessors in preorder numbers, CSR: the super-root precedes every root. */
    pstart = calloc((size_t)N + 1, sizeof *pstart);
    if (!pstart)
        goto out;
    /* Objects in index order, not preorder: their fields are then read in sequence. */
    for (int64_t v = 0; v < n; v++) {
        if (pre[v] < 0)
            continue;
        for (int64_t e = ptr_start[v]; e < ptr_start[v + 1]; e++)
            if (dest[e] >= 0 && dest[e] < n)
                pstart[pre[dest[e]] + 1]++;
    }
    for (int64_t i = 0; i < nroots; i++)
        if (roots[i] >= 0 && roots[i] < n)
            pstart[pre[roots[i]] + 1]++;
    for (int32_t p = 0; p < N; p++)
        pstart[p + 1] += pstart[p];
    preds = malloc((size_t)(pstart[N] ? pstart[N] : 1) * sizeof *preds);
    if (!preds)
        goto out;
    int32_t *fill = stack; /* reused: the next free slot of each node's predecessor list */
    for (int32_t p = 0; p < N; p++)
        fill[p] = 0;
    for (int64_t v = 0; v < n; v++) {
        int32_t p = pre[v];
        if (p < 0)
            continue;
        for (int64_t e = ptr_start[v]; e < ptr_start[v + 1]; e++)
            if (dest[e] >= 0 && dest[e] < n) {
                int32_t q = pre[dest[e]];
                preds[pstart[q] + fill[q]++] = p;
            }
    }
    for (int64_t i = 0; i < nroots; i++)
        if (roots[i] >= 0 && roots[i] < n) {
            int32_t q = pre[roots[i]];
            preds[pstart[q] + fill[q]++] = 0;
        }

    /* 3. Semidominators, in reverse preorder, with path compression. */
    semi = malloc((size_t)N * sizeof *semi);
    label = malloc((size_t)N * sizeof *label);
    anc = malloc((size_t)N * sizeof *anc);
    if (!semi || !label || !anc)
        goto out;
    for (int32_t p = 0; p < N; p++) {
        semi[p] = label[p] = p;
        anc[p] = -1;
    }
    for (int32_t w = N - 1; w >= 1; w--) {
        int32_t s = semi[w];
        for (int64_t k = pstart[w]; k < pstart[w + 1]; k++) {
            int32_t v = preds[k], u = v;
            if (anc[v] != -1) {  /* processed already: the least semidominator on its path */
                compress(anc, label, semi, stack, v);
                u = label[v];
            }
            if (semi[u] < s)
                s = semi[u];
        }
        semi[w] = s;
        anc[w] = parent[w]; /* link w under its parent */
    }

    /* 4. Immediate dominators: the nearest common ancestor of parent and semidominator. */
    int32_t *idom = anc; /* reused */
    idom[0] = 0;
    for (int32_t w = 1; w < N; w++) {
        int32_t d = parent[w];
        while (d > semi[w])
            d = idom[d];
        idom[w] = d;
    }

    /* 5. Retained sizes: each node's subtree into its dominator, children before parents. */
    ret = malloc((size_t)N * sizeof *ret);
    if (!ret)
        goto out;
    ret[0] = 0;
    for (int32_t w = 1; w < N; w++)
        ret[w] = size[vertex[w]];
    for (int32_t w = N - 1; w >= 1; w--)
        ret[idom[w]] += ret[w];
    for (int64_t v = 0; v < n; v++) {
        int32_t p = pre[v];
        idom_out[v] = p < 0 ? -1 : idom[p] == 0 ? n : vertex[idom[p]];
        retained_out[v] = p < 0 ? 0 : ret[p];
    }
    count = N - 1;
out:
    free(pre);
    free(vertex);
    free(parent);
    free(stack);
    free(next_edge);
    free(pstart);
    free(preds);
    free(semi);
    free(label);
    free(anc);
    free(ret);
    return count;
}
