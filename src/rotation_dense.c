/*
 * rotation_dense.c — the dense family: Π = Q from the QR decomposition of a
 * d×d Gaussian matrix with R's diagonal made positive, Haar-distributed on
 * O(d) (TurboQuant, arXiv 2504.19874 §3). d² parameters. Also the Haar
 * matrix generator the Hadamard family uses for its odd factor.
 *
 * The map is stored as Π (mat) and Πᵀ (mat_t), both row-major, so the
 * kernels apply either as y_i = Σ_j M_ij x_j with a column sweep
 * (matvec_cols over the transposed matrix).
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

/* Q of G = QR (G: n×n Gaussian drawn row by row), R with positive diagonal,
 * by modified Gram–Schmidt on the columns, run twice for orthogonality to
 * ~1e-15 ("twice is enough"). Out: row-major n×n Q in float. */
rq_status rq__haar_matrix(int n, rq_rng *rng, float *out) {
    double *g = malloc(sizeof(double) * (size_t)n * (size_t)n);
    if (!g) return RQ_ERR_NOMEM;
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) g[i] = rq_rng_gauss(rng);
    for (int j = 0; j < n; j++) {
        for (int pass = 0; pass < 2; pass++) {
            for (int k = 0; k < j; k++) {
                double dot = 0;
                for (int i = 0; i < n; i++) dot += g[(size_t)i * n + k] * g[(size_t)i * n + j];
                for (int i = 0; i < n; i++) g[(size_t)i * n + j] -= dot * g[(size_t)i * n + k];
            }
        }
        double nrm = 0;
        for (int i = 0; i < n; i++) nrm += g[(size_t)i * n + j] * g[(size_t)i * n + j];
        nrm = sqrt(nrm); /* > 0 with probability 1; R_jj = nrm > 0 is the sign fix */
        if (nrm == 0) {
            free(g);
            return RQ_ERR_INVALID_ARG;
        }
        for (int i = 0; i < n; i++) g[(size_t)i * n + j] /= nrm;
    }
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) out[i] = (float)g[i];
    free(g);
    return RQ_OK;
}

/* y_i = Σ_j M_ij x_j, summed in increasing j (SIMD code vectorizes over i
 * with the same order, so results are bit-identical). */
static void matvec(const float *m, int d, const float *x, float *y) {
    float tmp[RQ_MAX_DIMS];
    for (int i = 0; i < d; i++) tmp[i] = 0;
    for (int j = 0; j < d; j++) {
        float xj = x[j];
        for (int i = 0; i < d; i++) tmp[i] += m[(size_t)i * d + j] * xj;
    }
    memcpy(y, tmp, sizeof(float) * (size_t)d);
}

static void dense_forward(const rq_rotation *r, const float *x, float *y) { matvec(r->mat, r->n_dims, x, y); }
static void dense_inverse(const rq_rotation *r, const float *x, float *y) { matvec(r->mat_t, r->n_dims, x, y); }

static bool dense_dims_ok(int d) { return (void)d, true; }

static rq_status dense_init(rq_rotation *r, uint64_t seed) {
    size_t d = (size_t)r->n_dims;
    rq_rng rng;
    rq_rng_seed(&rng, seed);
    r->mat = malloc(sizeof(float) * d * d);
    r->mat_t = malloc(sizeof(float) * d * d);
    if (!r->mat || !r->mat_t) return RQ_ERR_NOMEM;
    rq_status st = rq__haar_matrix(r->n_dims, &rng, r->mat);
    if (st) return st;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) r->mat_t[j * d + i] = r->mat[i * d + j];
    r->n_params = d * d;
    return RQ_OK;
}

static void dense_free(rq_rotation *r) {
    free(r->mat);
    free(r->mat_t);
}

const rq_rot_ops rq__rot_dense = {
    .name = "dense", .matrix = true, .dims_ok = dense_dims_ok, .init = dense_init, .forward = dense_forward,
    .inverse = dense_inverse, .free = dense_free,
};
