/*
 * rotation_hadamard.c — the Hadamard family: d = 2^k · m with m odd,
 *   Π = (H_{2^k} ⊗ Q_m) · diag(σ),
 * σ ∈ {±1}^d random signs, H_{2^k} the orthonormal Walsh–Hadamard matrix,
 * Q_m an m×m Haar block (m = 1 for powers of two). A Kronecker product of
 * orthogonal matrices is orthogonal, every entry of Π is nonzero (each
 * output mixes every input), and the cost is O(d log d + d·m): 80 = 16·5,
 * 96 = 32·3, 112 = 16·7, 192 = 64·3 — no padding of the stored codes
 * (docs/FORMAT.md §3). Parameters: d signs (+ m² for Q_m).
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

#define RQ_MAX_ODD 63 /* largest odd factor m served by the Kronecker form */

/* Butterflies over "elements" of w consecutive floats (w = m for the
 * Kronecker form): x_j, x_{j+h} ← x_j + x_{j+h}, x_j − x_{j+h}. Unscaled. */
static void fwht_wide(float *x, int n, int w) {
    for (int h = 1; h < n; h <<= 1)
        for (int i = 0; i < n; i += h << 1)
            for (int j = i; j < i + h; j++) {
                float *a = x + (size_t)j * w, *b = x + (size_t)(j + h) * w;
                for (int t = 0; t < w; t++) {
                    float u = a[t], v = b[t];
                    a[t] = u + v;
                    b[t] = u - v;
                }
            }
}

void rq__fwht_ref(float *x, int n) {
    fwht_wide(x, n, 1);
    float s = (float)(1.0 / sqrt((double)n));
    for (int i = 0; i < n; i++) x[i] *= s;
}

void rq__hadamard_odd(const rq_rotation *r, float *y, bool transpose) {
    int m = r->n_odd;
    float tmp[RQ_MAX_ODD];
    for (int p = 0; p < r->n_pow2; p++) {
        float *blk = y + (size_t)p * m;
        for (int a = 0; a < m; a++) {
            float s = 0;
            for (int b = 0; b < m; b++)
                s += (transpose ? r->q_odd[b * m + a] : r->q_odd[a * m + b]) * blk[b];
            tmp[a] = s;
        }
        memcpy(blk, tmp, sizeof(float) * (size_t)m);
    }
}

static void hadamard_forward(const rq_rotation *r, const float *x, float *y) {
    int d = r->n_dims;
    for (int i = 0; i < d; i++) y[i] = x[i] * r->signs[i];
    if (r->n_odd > 1) rq__hadamard_odd(r, y, false);
    fwht_wide(y, r->n_pow2, r->n_odd);
    for (int i = 0; i < d; i++) y[i] *= r->h_scale;
}

static void hadamard_inverse(const rq_rotation *r, const float *x, float *y) {
    int d = r->n_dims;
    if (y != x) memcpy(y, x, sizeof(float) * (size_t)d);
    fwht_wide(y, r->n_pow2, r->n_odd);
    for (int i = 0; i < d; i++) y[i] *= r->h_scale;
    if (r->n_odd > 1) rq__hadamard_odd(r, y, true);
    for (int i = 0; i < d; i++) y[i] *= r->signs[i];
}

/* the largest odd factor of d is one the Kronecker form serves */
static bool hadamard_dims_ok(int d) {
    while (d % 2 == 0) d /= 2;
    return d <= RQ_MAX_ODD;
}

static rq_status hadamard_init(rq_rotation *r, uint64_t seed) {
    int d = r->n_dims, p = 1;
    rq_rng rng;
    rq_rng_seed(&rng, seed);
    while (d % (2 * p) == 0) p *= 2;
    r->n_pow2 = p;
    r->n_odd = d / p;
    if (r->n_odd > RQ_MAX_ODD) return RQ_ERR_DIM;
    r->h_scale = (float)(1.0 / sqrt((double)p));
    r->signs = malloc(sizeof(float) * (size_t)d);
    if (!r->signs) return RQ_ERR_NOMEM;
    /* one 64-bit draw per 64 signs, bit i mod 64 of draw i/64: 1 → −1 */
    uint64_t bits = 0;
    for (int i = 0; i < d; i++) {
        if ((i & 63) == 0) bits = rq_rng_next(&rng);
        r->signs[i] = ((bits >> (i & 63)) & 1) ? -1.0f : 1.0f;
    }
    r->n_params = (size_t)d;
    if (r->n_odd > 1) {
        int m = r->n_odd;
        r->q_odd = malloc(sizeof(float) * (size_t)m * (size_t)m);
        if (!r->q_odd) return RQ_ERR_NOMEM;
        rq_status st = rq__haar_matrix(m, &rng, r->q_odd);
        if (st) return st;
        r->n_params += (size_t)m * (size_t)m;
    }
    return RQ_OK;
}

static void hadamard_free(rq_rotation *r) {
    free(r->signs);
    free(r->q_odd);
}

const rq_rot_ops rq__rot_hadamard = {
    .name = "hadamard", .dims_ok = hadamard_dims_ok, .init = hadamard_init, .forward = hadamard_forward,
    .inverse = hadamard_inverse, .free = hadamard_free,
};
