/*
 * rotation.c — the rotation families Π (forward) and Πᵀ (inverse), and the
 * fixed-order reductions every kernel shares.
 *
 *   dense     Π = Q from the QR decomposition of a d×d Gaussian matrix with
 *             R's diagonal made positive: Haar-distributed on O(d)
 *             (TurboQuant, arXiv 2504.19874 §3). d² parameters.
 *   hadamard  d = 2^k · m with m odd:  Π = (H_{2^k} ⊗ Q_m) · diag(σ),
 *             σ ∈ {±1}^d random signs, H_{2^k} the orthonormal Walsh–Hadamard
 *             matrix, Q_m an m×m Haar block (m = 1 for powers of two).
 *             A Kronecker product of orthogonal matrices is orthogonal, every
 *             entry of Π is nonzero (each output mixes every input), and the
 *             cost is O(d log d + d·m): 80 = 16·5, 96 = 32·3, 112 = 16·7,
 *             192 = 64·3 — no padding of the stored codes (docs/FORMAT.md §3).
 *   rotor / planar / iso: block-diagonal families, rotation_block.c.
 *
 * Randomness: one rq_rng stream seeded with the rotation's seed; draw order
 * is part of the format (docs/FORMAT.md §2–3).
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

/* ---- fixed-order reductions ------------------------------------------ */
float rq__sumsq_ref(const float *x, int n) {
    float acc[16] = {0};
    for (int i = 0; i < n; i++) acc[i & 15] += x[i] * x[i];
    for (int w = 8; w >= 1; w >>= 1)
        for (int l = 0; l < w; l++) acc[l] += acc[l + w];
    return acc[0];
}

float rq__dot_ref(const float *a, const float *b, int n) {
    float acc[16] = {0};
    for (int i = 0; i < n; i++) acc[i & 15] += a[i] * b[i];
    for (int w = 8; w >= 1; w >>= 1)
        for (int l = 0; l < w; l++) acc[l] += acc[l + w];
    return acc[0];
}

/* ---- Haar orthogonal matrix ------------------------------------------- */
/* Q of G = QR (G: n×n Gaussian drawn row by row), R with positive diagonal,
 * by modified Gram–Schmidt on the columns, run twice for orthogonality to
 * ~1e-15 ("twice is enough"). Out: row-major n×n Q in float. */
static rq_status haar_matrix(int n, rq_rng *rng, float *out) {
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

/* ---- Walsh–Hadamard ---------------------------------------------------- */
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

/* y = Q_m applied to each of the 2^k consecutive m-blocks (or Qᵀ). */
static void apply_odd(const rq_rotation *r, float *y, bool transpose) {
    int m = r->n_odd;
    float tmp[64];
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

#define RQ_MAX_ODD 63 /* largest odd factor m served by the Kronecker form */

static void hadamard_forward(const rq_rotation *r, const float *x, float *y) {
    int d = r->n_dims;
    for (int i = 0; i < d; i++) y[i] = x[i] * r->signs[i];
    if (r->n_odd > 1) apply_odd(r, y, false);
    fwht_wide(y, r->n_pow2, r->n_odd);
    for (int i = 0; i < d; i++) y[i] *= r->h_scale;
}

static void hadamard_inverse(const rq_rotation *r, const float *x, float *y) {
    int d = r->n_dims;
    if (y != x) memcpy(y, x, sizeof(float) * (size_t)d);
    fwht_wide(y, r->n_pow2, r->n_odd);
    for (int i = 0; i < d; i++) y[i] *= r->h_scale;
    if (r->n_odd > 1) apply_odd(r, y, true);
    for (int i = 0; i < d; i++) y[i] *= r->signs[i];
}

/* ---- dense ------------------------------------------------------------- */
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

/* ---- public API --------------------------------------------------------- */
const char *rq_rot_kind_name(rq_rot_kind kind) {
    switch (kind) {
    case RQ_ROT_NONE: return "none";
    case RQ_ROT_DENSE: return "dense";
    case RQ_ROT_HADAMARD: return "hadamard";
    case RQ_ROT_ROTOR: return "rotor";
    case RQ_ROT_PLANAR: return "planar";
    case RQ_ROT_ISO: return "iso";
    case RQ_ROT_COUNT: break;
    }
    return "?";
}

void rq_rotation_free(rq_rotation *rot) {
    if (!rot) return;
    free(rot->mat);
    free(rot->mat_t);
    free(rot->signs);
    free(rot->q_odd);
    free(rot->block_params);
    free(rot->block_mats);
    free(rot->simd_coef);
    free(rot);
}

static rq_status hadamard_init(rq_rotation *r, rq_rng *rng) {
    int d = r->n_dims, p = 1;
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
        if ((i & 63) == 0) bits = rq_rng_next(rng);
        r->signs[i] = ((bits >> (i & 63)) & 1) ? -1.0f : 1.0f;
    }
    r->n_params = (size_t)d;
    if (r->n_odd > 1) {
        int m = r->n_odd;
        r->q_odd = malloc(sizeof(float) * (size_t)m * (size_t)m);
        if (!r->q_odd) return RQ_ERR_NOMEM;
        rq_status st = haar_matrix(m, rng, r->q_odd);
        if (st) return st;
        r->n_params += (size_t)m * (size_t)m;
    }
    return RQ_OK;
}

static rq_status dense_init(rq_rotation *r, rq_rng *rng) {
    size_t d = (size_t)r->n_dims;
    r->mat = malloc(sizeof(float) * d * d);
    r->mat_t = malloc(sizeof(float) * d * d);
    if (!r->mat || !r->mat_t) return RQ_ERR_NOMEM;
    rq_status st = haar_matrix(r->n_dims, rng, r->mat);
    if (st) return st;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) r->mat_t[j * d + i] = r->mat[i * d + j];
    r->n_params = d * d;
    return RQ_OK;
}

rq_status rq_rotation_init(rq_rotation **out, rq_rot_kind kind, int n_dims, uint64_t seed) {
    if (!out) return RQ_ERR_INVALID_ARG;
    *out = NULL;
    if (n_dims < RQ_MIN_DIMS || n_dims > RQ_MAX_DIMS) return RQ_ERR_DIM;
    if (kind < RQ_ROT_NONE || kind >= RQ_ROT_COUNT) return RQ_ERR_INVALID_ARG;
    rq_rotation *r = calloc(1, sizeof *r);
    if (!r) return RQ_ERR_NOMEM;
    r->kind = kind;
    r->n_dims = n_dims;
    rq_rng rng;
    rq_rng_seed(&rng, seed);
    rq_status st = RQ_OK;
    switch (kind) {
    case RQ_ROT_NONE: break;
    case RQ_ROT_DENSE: st = dense_init(r, &rng); break;
    case RQ_ROT_HADAMARD: st = hadamard_init(r, &rng); break;
    case RQ_ROT_ROTOR:
    case RQ_ROT_PLANAR:
    case RQ_ROT_ISO: st = rq__block_rotation_init(r, seed); break;
    case RQ_ROT_COUNT: break;
    }
    if (st != RQ_OK) {
        rq_rotation_free(r);
        return st;
    }
    *out = r;
    return RQ_OK;
}

static void forward_one(const rq_rotation *r, const float *x, float *y) {
    switch (r->kind) {
    case RQ_ROT_NONE:
        if (y != x) memcpy(y, x, sizeof(float) * (size_t)r->n_dims);
        break;
    case RQ_ROT_DENSE: matvec(r->mat, r->n_dims, x, y); break;
    case RQ_ROT_HADAMARD: hadamard_forward(r, x, y); break;
    default: rq__block_forward_ref(r, x, y); break;
    }
}

static void inverse_one(const rq_rotation *r, const float *x, float *y) {
    switch (r->kind) {
    case RQ_ROT_NONE:
        if (y != x) memcpy(y, x, sizeof(float) * (size_t)r->n_dims);
        break;
    case RQ_ROT_DENSE: matvec(r->mat_t, r->n_dims, x, y); break;
    case RQ_ROT_HADAMARD: hadamard_inverse(r, x, y); break;
    default: rq__block_inverse_ref(r, x, y); break;
    }
}

rq_status rq_rotation_forward(const rq_rotation *rot, const float *x, float *y, size_t n_vec) {
    if (!rot || (n_vec && (!x || !y))) return RQ_ERR_INVALID_ARG;
    size_t d = (size_t)rot->n_dims;
    for (size_t v = 0; v < n_vec; v++) forward_one(rot, x + v * d, y + v * d);
    return RQ_OK;
}

rq_status rq_rotation_inverse(const rq_rotation *rot, const float *x, float *y, size_t n_vec) {
    if (!rot || (n_vec && (!x || !y))) return RQ_ERR_INVALID_ARG;
    size_t d = (size_t)rot->n_dims;
    for (size_t v = 0; v < n_vec; v++) inverse_one(rot, x + v * d, y + v * d);
    return RQ_OK;
}

int rq_rotation_dims(const rq_rotation *rot) { return rot ? rot->n_dims : 0; }
rq_rot_kind rq_rotation_kind(const rq_rotation *rot) { return rot ? rot->kind : RQ_ROT_NONE; }
size_t rq_rotation_n_params(const rq_rotation *rot) { return rot ? rot->n_params : 0; }
