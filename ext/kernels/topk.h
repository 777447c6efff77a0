/* Bounded top-k of (distance, row) pairs: a max-heap keyed by distance, then row index.
 *
 * The root is the worst kept pair. A scan keeps the root distance in a local and only calls
 * topk_replace() when a row beats it, so the heap is touched ~cap*ln(N/cap) times per scan.
 * Rows are offered in increasing index order, so "beats" is a strict `<` on the distance: an
 * equal distance at a later row never displaces an earlier one (ties go to the lower index).
 */
#ifndef SOSIE_TOPK_H
#define SOSIE_TOPK_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float *dist;     /* cap slots */
    int64_t *row;    /* cap slots */
    size_t size;
    size_t cap;
} sosie_topk;

/* a is worse than b: larger distance, or equal distance and larger row. */
static inline int topk_worse(float da, int64_t ra, float db, int64_t rb) {
    return da > db || (da == db && ra > rb);
}

static inline void topk_sift_down(sosie_topk *h, size_t at) {
    float d = h->dist[at];
    int64_t r = h->row[at];
    size_t n = h->size;
    for (;;) {
        size_t child = 2 * at + 1;
        if (child >= n) break;
        if (child + 1 < n && topk_worse(h->dist[child + 1], h->row[child + 1],
                                        h->dist[child], h->row[child]))
            child++;
        if (!topk_worse(h->dist[child], h->row[child], d, r)) break;
        h->dist[at] = h->dist[child];
        h->row[at] = h->row[child];
        at = child;
    }
    h->dist[at] = d;
    h->row[at] = r;
}

/* Add a pair while the heap is not full yet. */
static inline void topk_push(sosie_topk *h, float d, int64_t r) {
    size_t at = h->size++;
    while (at > 0) {
        size_t parent = (at - 1) / 2;
        if (!topk_worse(d, r, h->dist[parent], h->row[parent])) break;
        h->dist[at] = h->dist[parent];
        h->row[at] = h->row[parent];
        at = parent;
    }
    h->dist[at] = d;
    h->row[at] = r;
}

/* Replace the root (the worst pair) of a full heap; returns the new worst distance. */
static inline float topk_replace(sosie_topk *h, float d, int64_t r) {
    h->dist[0] = d;
    h->row[0] = r;
    topk_sift_down(h, 0);
    return h->dist[0];
}

#endif
