/*
 * test_keybasis.c — key bases in the KV cache (rq_cache_set_key_basis) and
 * their fit (rq_key_basis_fit): scores unchanged by any invertible basis,
 * the fit is the minimizer of the score-error bound (geometric-mean
 * identity, optimality against perturbations, the isotropic case), the
 * fitted basis cuts real attention error on anisotropic keys and queries,
 * and bad input is rejected without changing the cache.
 */
#include "test.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const size_t ZERO[1] = {0}; /* one range: every position */

static rq_cache *cache_of(const char *tk, const char *tv, int L, int H, int d) {
    rq_cache_config c = rq_cache_config_default();
    c.n_layers = L, c.n_kv_heads = H, c.head_dim = d, c.type_k = tk, c.type_v = tv;
    rq_cache *cache = NULL;
    CHECK_OK(rq_cache_init(&cache, &c));
    return cache;
}

static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), s += (double)b[i] * b[i];
    return s > 0 ? sqrt(e / s) : sqrt(e);
}

/* f(A) = tr(A Sk Aᵀ) · tr(A⁻ᵀ Sq A⁻¹): the score-error bound the fit minimizes. */
static double objective(const double *Sk, const double *Sq, const float *A, int d) {
    float *Ait = malloc(sizeof(float) * (size_t)d * d);
    double a = 0, b = 0;
    /* A⁻ᵀ by Gauss–Jordan in double, independent of the library's inverse */
    double *M = malloc(sizeof(double) * 2 * (size_t)d * d);
    for (int i = 0; i < d * d; i++) M[i] = A[i], M[d * d + i] = (i / d == i % d);
    for (int col = 0; col < d; col++) {
        int p = col;
        for (int r = col + 1; r < d; r++)
            if (fabs(M[r * d + col]) > fabs(M[p * d + col])) p = r;
        for (int k = 0; k < d; k++) {
            double t = M[col * d + k];
            M[col * d + k] = M[p * d + k], M[p * d + k] = t;
            t = M[d * d + col * d + k];
            M[d * d + col * d + k] = M[d * d + p * d + k], M[d * d + p * d + k] = t;
        }
        double iv = 1 / M[col * d + col];
        for (int k = 0; k < d; k++) M[col * d + k] *= iv, M[d * d + col * d + k] *= iv;
        for (int r = 0; r < d; r++)
            if (r != col) {
                double f = M[r * d + col];
                for (int k = 0; k < d; k++) M[r * d + k] -= f * M[col * d + k], M[d * d + r * d + k] -= f * M[d * d + col * d + k];
            }
    }
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) Ait[i * d + j] = (float)M[d * d + j * d + i];
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            for (int k = 0; k < d; k++) {
                a += (double)A[i * d + j] * Sk[j * d + k] * A[i * d + k];
                b += (double)Ait[i * d + j] * Sq[j * d + k] * Ait[i * d + k];
            }
    free(M), free(Ait);
    return a * b;
}

/* A random SPD matrix with eigenvalue spread: G diag(e) Gᵀ / d. */
static void random_spd(rq_rng *r, int d, double spread, double *S) {
    double *G = malloc(sizeof(double) * (size_t)d * d);
    for (int i = 0; i < d * d; i++) G[i] = rq_rng_gauss(r);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += G[i * d + k] * G[j * d + k] * pow(spread, (double)k / d);
            S[i * d + j] = s / d;
        }
    free(G);
}

static void test_fit_is_the_minimizer(void) {
    const int d = 16;
    rq_rng r;
    rq_rng_seed(&r, 11);
    double Sk[16 * 16], Sq[16 * 16];
    float A[16 * 16], B[16 * 16], I[16 * 16];
    for (int trial = 0; trial < 4; trial++) {
        random_spd(&r, d, 1e3, Sk);
        random_spd(&r, d, 1e2, Sq);
        CHECK_OK(rq_key_basis_fit(Sk, Sq, d, A));
        for (int i = 0; i < d * d; i++) I[i] = (float)(i / d == i % d);
        double fa = objective(Sk, Sq, A, d), fi = objective(Sk, Sq, I, d);
        CHECK(fa < fi, "trial %d: fitted %.6g vs identity %.6g", trial, fa, fi);
        /* symmetric, and tr(A Sk Aᵀ) = tr(Sk) (to the ridge) */
        double asym = 0, e = 0, tr = 0;
        for (int i = 0; i < d; i++) {
            tr += Sk[i * d + i];
            for (int j = 0; j < d; j++) {
                asym = fmax(asym, fabs((double)A[i * d + j] - A[j * d + i]));
                for (int k = 0; k < d; k++) e += (double)A[i * d + j] * Sk[j * d + k] * A[i * d + k];
            }
        }
        CHECK(asym < 1e-4 * fabs(A[0]) + 1e-6, "A symmetric (%.3g)", asym);
        CHECK(fabs(e / tr - 1) < 1e-3, "energy kept: %.6g vs %.6g", e, tr);
        /* no small perturbation does better (first-order optimality) */
        int worse = 0;
        for (int p = 0; p < 20; p++) {
            for (int i = 0; i < d * d; i++) B[i] = A[i] * (float)(1 + 0.02 * rq_rng_gauss(&r));
            worse += objective(Sk, Sq, B, d) >= fa * (1 - 1e-6);
        }
        CHECK(worse == 20, "trial %d: %d of 20 perturbations not better", trial, worse);
    }
    /* keys and queries alike (Sq ∝ Sk): the best basis is a multiple of I */
    random_spd(&r, d, 1e3, Sk);
    for (int i = 0; i < d * d; i++) Sq[i] = 3 * Sk[i];
    CHECK_OK(rq_key_basis_fit(Sk, Sq, d, A));
    double off = 0, diag = 0;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            if (i == j) diag = fmax(diag, fabs(A[i * d + j] - A[0]));
            else off = fmax(off, fabs((double)A[i * d + j]));
        }
    CHECK(off < 1e-3 * A[0] && diag < 1e-3 * A[0], "Sq = 3 Sk: A = a·I (off %.3g, diag spread %.3g)", off, diag);
    /* deterministic */
    float A2[16 * 16];
    CHECK_OK(rq_key_basis_fit(Sk, Sq, d, A2));
    CHECK(memcmp(A, A2, sizeof A) == 0, "same input, same bytes");
}

/* Any invertible basis leaves attention unchanged (f32 cache: exactly up to
 * rounding), in the fused path and the reference. */
static void test_basis_keeps_scores(void) {
    const int L = 2, H = 2, G = 3, d = 32, n = 70;
    rq_rng r;
    rq_rng_seed(&r, 5);
    float *k = malloc(sizeof(float) * n * H * d), *v = malloc(sizeof(float) * n * H * d);
    float *q = malloc(sizeof(float) * 4 * H * G * d), *A = malloc(sizeof(float) * d * d);
    float *o0 = malloc(sizeof(float) * 4 * H * G * d), *o1 = malloc(sizeof(float) * 4 * H * G * d);
    float *o2 = malloc(sizeof(float) * 4 * H * G * d);
    for (int i = 0; i < n * H * d; i++) k[i] = (float)rq_rng_gauss(&r) * 2, v[i] = (float)rq_rng_gauss(&r);
    for (int i = 0; i < 4 * H * G * d; i++) q[i] = (float)rq_rng_gauss(&r);
    for (int i = 0; i < d * d; i++) A[i] = (float)((i / d == i % d) + 0.3 * rq_rng_gauss(&r));
    rq_cache *c0 = cache_of("f32", "f32", L, H, d), *c1 = cache_of("f32", "f32", L, H, d);
    CHECK_OK(rq_cache_set_key_basis(c1, 1, 0, 1, ZERO, A));
    CHECK_OK(rq_cache_set_key_basis(c1, 1, 1, 1, ZERO, A));
    for (int l = 0; l < L; l++) {
        CHECK_OK(rq_cache_append(c0, l, k, v, n));
        CHECK_OK(rq_cache_append(c1, l, k, v, n));
    }
    rq_attn_params p = {.n_q_heads = H * G, .scale = 0};
    size_t n_ctx[4] = {1, 17, 69, 70};
    CHECK_OK(rq_cache_attention(c0, 1, q, 4, n_ctx, &p, o0));
    CHECK_OK(rq_cache_attention(c1, 1, q, 4, n_ctx, &p, o1));
    CHECK_OK(rq_cache_attention_ref(c1, 1, q, 4, n_ctx, &p, o2));
    double e1 = rel_err(o1, o0, 4 * H * G * d), e2 = rel_err(o2, o0, 4 * H * G * d);
    CHECK(e1 < 1e-5 && e2 < 1e-5, "basis changed attention: fused %.3g, reference %.3g", e1, e2);
    CHECK(rq_cache_bytes_per_token(c1) == rq_cache_bytes_per_token(c0), "a basis stores no bytes per token");
    free(k), free(v), free(q), free(A), free(o0), free(o1), free(o2);
    rq_cache_free(c0), rq_cache_free(c1);
}

/* Bases by position range: keys of each range stored in its own basis, the
 * query prepared once per range; attention is unchanged (f32 cache) for
 * causal limits inside, at and across range boundaries, fused and reference,
 * one and two threads, and a page size that does not align with the ranges. */
static void test_basis_ranges_keep_scores(void) {
    const int H = 2, G = 2, d = 16, n = 300, nq = 6;
    const size_t start[3] = {0, 70, 130};
    rq_rng r;
    rq_rng_seed(&r, 8);
    float *k = malloc(sizeof(float) * n * H * d), *v = malloc(sizeof(float) * n * H * d);
    float *q = malloc(sizeof(float) * nq * H * G * d), *A = malloc(sizeof(float) * 3 * d * d);
    float *o0 = malloc(sizeof(float) * nq * H * G * d), *o1 = malloc(sizeof(float) * nq * H * G * d);
    float *o2 = malloc(sizeof(float) * nq * H * G * d);
    for (int i = 0; i < n * H * d; i++) k[i] = (float)rq_rng_gauss(&r), v[i] = (float)rq_rng_gauss(&r);
    for (int i = 0; i < nq * H * G * d; i++) q[i] = (float)rq_rng_gauss(&r);
    for (int i = 0; i < 3 * d * d; i++) A[i] = (float)(((i % (d * d)) / d == i % d) * (1 + i / (d * d)) + 0.2 * rq_rng_gauss(&r));
    size_t n_ctx[6] = {1, 70, 71, 129, 131, 300};
    for (int th = 1; th <= 2; th++) {
        rq_cache_config cfg = rq_cache_config_default();
        cfg.n_layers = 1, cfg.n_kv_heads = H, cfg.head_dim = d, cfg.type_k = cfg.type_v = "f32";
        cfg.page_tokens = 48, cfg.n_threads = th;
        rq_cache *c0 = NULL, *c1 = NULL;
        CHECK_OK(rq_cache_init(&c0, &cfg));
        CHECK_OK(rq_cache_init(&c1, &cfg));
        CHECK_OK(rq_cache_set_key_basis(c1, 0, 0, 3, start, A));
        CHECK_OK(rq_cache_set_key_basis(c1, 0, 1, 2, start, A + d * d)); /* heads may differ */
        for (int t = 0; t < n; t += 50) { /* appends across range boundaries */
            CHECK_OK(rq_cache_append(c0, 0, k + t * H * d, v + t * H * d, 50));
            CHECK_OK(rq_cache_append(c1, 0, k + t * H * d, v + t * H * d, 50));
        }
        rq_attn_params p = {.n_q_heads = H * G, .scale = 0};
        CHECK_OK(rq_cache_attention(c0, 0, q, nq, n_ctx, &p, o0));
        CHECK_OK(rq_cache_attention(c1, 0, q, nq, n_ctx, &p, o1));
        CHECK_OK(rq_cache_attention_ref(c1, 0, q, nq, n_ctx, &p, o2));
        double e1 = rel_err(o1, o0, (size_t)nq * H * G * d), e2 = rel_err(o2, o0, (size_t)nq * H * G * d);
        CHECK(e1 < 1e-5 && e2 < 1e-5, "threads %d: ranged bases changed attention: fused %.3g, reference %.3g", th, e1,
              e2);
        rq_cache_free(c0), rq_cache_free(c1);
    }
    /* compressed keys in ranged bases: the fused path (queries mapped and
     * rotated by one product) against the reference (keys decoded back) */
    static const char *types[] = {"turbo3", "turbo3p", "dense4", "planar3", "iso4", "f16"};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        rq_cache_config cfg = rq_cache_config_default();
        cfg.n_layers = 1, cfg.n_kv_heads = H, cfg.head_dim = d, cfg.type_k = types[ti], cfg.type_v = "turbo3";
        cfg.page_tokens = 48, cfg.n_threads = 2;
        rq_cache *c1 = NULL;
        CHECK_OK(rq_cache_init(&c1, &cfg));
        if (!c1) continue;
        CHECK_OK(rq_cache_set_key_basis(c1, 0, 0, 3, start, A));
        CHECK_OK(rq_cache_set_key_basis(c1, 0, 1, 2, start, A + d * d));
        CHECK_OK(rq_cache_append(c1, 0, k, v, n));
        rq_attn_params p = {.n_q_heads = H * G, .scale = 0};
        CHECK_OK(rq_cache_attention(c1, 0, q, nq, n_ctx, &p, o1));
        CHECK_OK(rq_cache_attention_ref(c1, 0, q, nq, n_ctx, &p, o2));
        double e = rel_err(o1, o2, (size_t)nq * H * G * d);
        CHECK(e < 2e-4, "%s keys in ranged bases: fused vs reference %.3g", types[ti], e);
        rq_cache_free(c1);
    }
    free(k), free(v), free(q), free(A), free(o0), free(o1), free(o2);
}

/* Keys with strong channels that the queries hardly read, queries strong
 * where keys are weak: the fitted basis (moments from a separate calibration
 * sample) must cut turbo3's attention error on held-out tokens. */
static void aniso(rq_rng *r, int d, int is_query, float *x, size_t n) {
    for (size_t i = 0; i < n * (size_t)d; i++) {
        int ch = (int)(i % (size_t)d);
        double s = ch < 4 ? (is_query ? 0.1 : 12.0) : ch < 16 ? (is_query ? 3.0 : 0.5) : 1.0;
        x[i] = (float)(s * rq_rng_gauss(r));
    }
}

static void test_fitted_basis_cuts_error(void) {
    const int d = 64, n = 600, nq = 32;
    rq_rng r;
    rq_rng_seed(&r, 9);
    double *Sk = calloc((size_t)d * d, sizeof(double)), *Sq = calloc((size_t)d * d, sizeof(double));
    float *x = malloc(sizeof(float) * 4000 * d), *A = malloc(sizeof(float) * d * d);
    aniso(&r, d, 0, x, 4000);
    for (int t = 0; t < 4000; t++)
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) Sk[i * d + j] += (double)x[t * d + i] * x[t * d + j] / 4000;
    aniso(&r, d, 1, x, 4000);
    for (int t = 0; t < 4000; t++)
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) Sq[i * d + j] += (double)x[t * d + i] * x[t * d + j] / 4000;
    CHECK_OK(rq_key_basis_fit(Sk, Sq, d, A));
    float *k = malloc(sizeof(float) * n * d), *v = malloc(sizeof(float) * n * d), *q = malloc(sizeof(float) * nq * d);
    float *oe = malloc(sizeof(float) * nq * d), *o0 = malloc(sizeof(float) * nq * d), *o1 = malloc(sizeof(float) * nq * d);
    aniso(&r, d, 0, k, n);
    aniso(&r, d, 1, q, nq);
    for (int i = 0; i < n * d; i++) v[i] = (float)rq_rng_gauss(&r);
    rq_cache *ce = cache_of("f32", "f32", 1, 1, d), *c0 = cache_of("turbo3", "f32", 1, 1, d),
             *c1 = cache_of("turbo3", "f32", 1, 1, d);
    CHECK_OK(rq_cache_set_key_basis(c1, 0, 0, 1, ZERO, A));
    CHECK_OK(rq_cache_append(ce, 0, k, v, n));
    CHECK_OK(rq_cache_append(c0, 0, k, v, n));
    CHECK_OK(rq_cache_append(c1, 0, k, v, n));
    rq_attn_params p = {.n_q_heads = 1, .scale = 0};
    CHECK_OK(rq_cache_attention(ce, 0, q, nq, NULL, &p, oe));
    CHECK_OK(rq_cache_attention(c0, 0, q, nq, NULL, &p, o0));
    CHECK_OK(rq_cache_attention(c1, 0, q, nq, NULL, &p, o1));
    double e0 = rel_err(o0, oe, (size_t)nq * d), e1 = rel_err(o1, oe, (size_t)nq * d);
    CHECK(e1 < 0.5 * e0, "turbo3 keys: error with the fitted basis %.4f, without %.4f", e1, e0);
    TEST_NOTE("turbo3 keys, anisotropic keys/queries: attention error %.4f without a basis, %.4f with the fitted one",
              e0, e1);
    free(Sk), free(Sq), free(x), free(A), free(k), free(v), free(q), free(oe), free(o0), free(o1);
    rq_cache_free(ce), rq_cache_free(c0), rq_cache_free(c1);
}

static void test_basis_bad_input(void) {
    const int d = 8;
    float A[64] = {0}, kv[2 * 8] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8};
    rq_cache *c = cache_of("turbo3", "turbo3", 2, 2, d);
    CHECK(rq_cache_set_key_basis(c, 0, 0, 1, ZERO, A) == RQ_ERR_INVALID_ARG, "singular basis");
    for (int i = 0; i < d; i++) A[i * d + i] = 1;
    A[1] = 1e9f; /* invertible, but cond > 1e7 */
    CHECK(rq_cache_set_key_basis(c, 0, 0, 1, ZERO, A) == RQ_ERR_INVALID_ARG, "ill-conditioned basis");
    A[1] = NAN;
    CHECK(rq_cache_set_key_basis(c, 0, 0, 1, ZERO, A) == RQ_ERR_NONFINITE, "NaN basis");
    A[1] = 0.5f;
    CHECK(rq_cache_set_key_basis(c, 2, 0, 1, ZERO, A) == RQ_ERR_INVALID_ARG, "layer out of range");
    CHECK(rq_cache_set_key_basis(c, 0, 2, 1, ZERO, A) == RQ_ERR_INVALID_ARG, "head out of range");
    CHECK(rq_cache_set_key_basis(NULL, 0, 0, 1, ZERO, A) == RQ_ERR_INVALID_ARG, "NULL cache");
    {
        float A2[2 * 64];
        memcpy(A2, A, sizeof(float) * 64), memcpy(A2 + 64, A, sizeof(float) * 64);
        const size_t bad0[2] = {1, 5}, same[2] = {0, 0}, ok2[2] = {0, 5};
        CHECK(rq_cache_set_key_basis(c, 0, 0, 2, bad0, A2) == RQ_ERR_INVALID_ARG, "ranges not from 0");
        CHECK(rq_cache_set_key_basis(c, 0, 0, 2, same, A2) == RQ_ERR_INVALID_ARG, "ranges not increasing");
        CHECK(rq_cache_set_key_basis(c, 0, 0, 2, NULL, A2) == RQ_ERR_INVALID_ARG, "no starts");
        CHECK_OK(rq_cache_set_key_basis(c, 0, 0, 2, ok2, A2));
    }
    CHECK_OK(rq_cache_set_key_basis(c, 0, 0, 1, ZERO, A));
    CHECK_OK(rq_cache_append(c, 0, kv, kv, 1));
    CHECK(rq_cache_set_key_basis(c, 0, 0, 0, NULL, NULL) == RQ_ERR_INVALID_ARG, "change after tokens were stored");
    CHECK_OK(rq_cache_set_key_basis(c, 1, 1, 1, ZERO, A)); /* another layer is still empty */
    CHECK_OK(rq_cache_set_key_basis(c, 1, 1, 0, NULL, NULL));
    kv[3] = NAN;
    CHECK(rq_cache_append(c, 0, kv, kv, 1) == RQ_ERR_NONFINITE, "NaN key through a basis");
    CHECK(rq_cache_n_tokens(c, 0) == 1, "rejected append stored nothing");
    rq_cache_clear(c);
    CHECK_OK(rq_cache_set_key_basis(c, 0, 0, 0, NULL, NULL)); /* empty again: may change */
    rq_cache_free(c);
    /* the inverse transpose on its own: exact on a permutation-scaled
     * matrix, refused for NaN and for a singular matrix */
    float P[64] = {0}, Pit[64];
    for (int i = 0; i < d; i++) P[i * d + (i + 3) % d] = (float)(1 << (i % 4));
    CHECK_OK(rq_key_basis_inverse_t(P, d, Pit));
    int exact = 1;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) exact &= Pit[i * d + j] == (j == (i + 3) % d ? 1.0f / (float)(1 << (i % 4)) : 0.0f);
    CHECK(exact, "A⁻ᵀ of a scaled permutation is exact");
    P[5] = NAN;
    CHECK(rq_key_basis_inverse_t(P, d, Pit) == RQ_ERR_NONFINITE, "NaN");
    memset(P, 0, sizeof P);
    CHECK(rq_key_basis_inverse_t(P, d, Pit) == RQ_ERR_INVALID_ARG, "zero matrix");
    double S[64] = {0}, T[64] = {0};
    for (int i = 0; i < d; i++) T[i * d + i] = 1;
    CHECK(rq_key_basis_fit(S, T, d, A) == RQ_ERR_INVALID_ARG, "keys without energy");
    CHECK(rq_key_basis_fit(T, S, d, A) == RQ_ERR_INVALID_ARG, "queries without energy");
    S[0] = NAN;
    CHECK(rq_key_basis_fit(S, T, d, A) == RQ_ERR_NONFINITE, "NaN moment");
    CHECK(rq_key_basis_fit(T, T, 0, A) == RQ_ERR_INVALID_ARG, "d = 0");
    CHECK(rq_key_basis_fit(T, T, d, NULL) == RQ_ERR_INVALID_ARG, "NULL output");
}

/* ---- the basis file (src/keybasis_io.c) --------------------------------- */
/* The small deterministic bases of the golden file: 2 layers × 3 KV heads ×
 * 2 ranges of 4×4. */
static void golden_bases(rq_key_basis_info *info, float *b) {
    memset(info, 0, sizeof *info);
    info->n_layers = 2, info->n_kv_heads = 3, info->head_dim = 4, info->n_ranges = 2;
    info->start[0] = 0, info->start[1] = 256, info->n_ctx = 600, info->n_tokens = 1200, info->self_generated = 1;
    for (int i = 0; i < 2 * 3 * 2 * 16; i++) b[i] = (float)(i % 13) * 0.25f - 1.0f + (float)((i % 16) / 4 == i % 4);
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(1 << 16);
    *n = f && buf ? fread(buf, 1, 1 << 16, f) : 0;
    if (f) fclose(f);
    return buf;
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* The writer emits the bytes `rotorquant calibrate` has always written (the
 * golden hash is of the file the model's writer made for these bases), and
 * the reader gives back every field and float. */
static void test_basis_file_golden_round_trip(void) {
    rq_key_basis_info info, got;
    float b[2 * 3 * 2 * 16], *back = NULL;
    golden_bases(&info, b);
    char path[] = "/tmp/rq_test_kb_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temp file");
    if (fd < 0) return;
    close(fd);
    CHECK_OK(rq_key_basis_save(path, &info, b));
    size_t n = 0;
    uint8_t *bytes = read_all(path, &n);
    CHECK(n == 1120 && fnv1a(bytes, n) == 0x7077eaea2659f8a6ull, "golden file: %zu bytes, hash %016llx", n,
          (unsigned long long)fnv1a(bytes, n));
    CHECK_OK(rq_key_basis_load(path, &got, &back));
    CHECK(back && !memcmp(back, b, sizeof b), "the floats round-trip bit for bit");
    CHECK(got.n_layers == 2 && got.n_kv_heads == 3 && got.head_dim == 4 && got.n_ranges == 2 && got.start[0] == 0 &&
              got.start[1] == 256 && got.n_ctx == 600 && got.n_tokens == 1200 && got.self_generated == 1,
          "the info round-trips");
    free(back), back = NULL;
    CHECK_OK(rq_key_basis_load_mem(bytes, n, &got, NULL)); /* info only */
    CHECK_OK(rq_key_basis_load_mem(bytes, n, &got, &back));
    CHECK(back && !memcmp(back, b, sizeof b), "from memory too");
    free(back), back = NULL;
    /* a failed save (NaN) leaves the old file as it was */
    b[7] = NAN;
    CHECK(rq_key_basis_save(path, &info, b) == RQ_ERR_NONFINITE, "NaN basis saved");
    CHECK(strstr(rq_last_error(), "basis[7] = nan"), "%s", rq_last_error());
    size_t n2 = 0;
    uint8_t *again = read_all(path, &n2);
    CHECK(n2 == n && !memcmp(again, bytes, n), "the old file is intact");
    free(again);
    remove(path);
    /* a target that cannot be replaced: an error, and no temporary left behind */
    char dir[] = "/tmp/rq_test_kbdir_XXXXXX";
    if (mkdtemp(dir)) {
        char target[64];
        snprintf(target, sizeof target, "%s/kb.gguf", dir);
        CHECK(mkdir(target, 0700) == 0, "mkdir");
        b[7] = 0;
        CHECK(rq_key_basis_save(target, &info, b) == RQ_ERR_IO, "rename over a directory");
        CHECK(strstr(rq_last_error(), target) != NULL, "%s", rq_last_error());
        rmdir(target);
        CHECK(rmdir(dir) == 0, "no temporary file left in %s", dir);
    }
    CHECK(rq_key_basis_load("/nonexistent/kb.gguf", &got, &back) == RQ_ERR_IO && !back, "missing file");
    CHECK(strstr(rq_last_error(), "/nonexistent/kb.gguf"), "%s", rq_last_error());
    free(bytes);
}

/* Truncated at every byte: an error with a message, nothing allocated.
 * Every byte flipped three ways: never a crash (the sanitizer build checks
 * the reads); a header change is refused, a change the format allows
 * (a float, a count field's value) loads. */
static void test_basis_file_corrupt(void) {
    rq_key_basis_info info, got;
    float b[2 * 3 * 2 * 16], *back = NULL;
    golden_bases(&info, b);
    char path[] = "/tmp/rq_test_kb_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return;
    close(fd);
    CHECK_OK(rq_key_basis_save(path, &info, b));
    size_t n = 0;
    uint8_t *bytes = read_all(path, &n);
    remove(path);
    int bad = 0;
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exactly cut bytes: ASan sees any over-read */
        memcpy(copy, bytes, cut);
        rq_status st = rq_key_basis_load_mem(copy, cut, &got, &back);
        bad += !(st == RQ_ERR_TRUNCATED || st == RQ_ERR_FORMAT) || back || !rq_last_error()[0];
        free(copy);
    }
    CHECK(bad == 0, "%d truncations not refused", bad);
    const uint8_t flips[3] = {0x01, 0x80, 0xff};
    int refused_magic = 0, ok_data = 0;
    for (size_t i = 0; i < n; i++)
        for (int f = 0; f < 3; f++) {
            uint8_t *copy = malloc(n);
            memcpy(copy, bytes, n);
            copy[i] ^= flips[f];
            rq_status st = rq_key_basis_load_mem(copy, n, &got, &back);
            if (st) CHECK(!back && rq_last_error()[0], "byte %zu ^ %02x: an error without a message", i, flips[f]);
            else CHECK(back && got.n_ranges >= 1 && got.n_ranges <= RQ_KEY_BASIS_MAX_RANGES, "byte %zu", i);
            refused_magic += i < 4 && st == RQ_ERR_FORMAT;
            ok_data += i >= n - sizeof b && st == RQ_OK;
            free(back), back = NULL;
            free(copy);
        }
    CHECK(refused_magic == 12, "magic changes refused (%d of 12)", refused_magic);
    CHECK(ok_data > 0, "float changes that stay finite load");
    /* a NaN among the floats: named by layer, head and range */
    uint8_t *copy = malloc(n);
    memcpy(copy, bytes, n);
    const float nan = NAN;
    memcpy(copy + n - 4, &nan, 4);
    CHECK(rq_key_basis_load_mem(copy, n, &got, &back) == RQ_ERR_NONFINITE && !back, "NaN");
    CHECK(strstr(rq_last_error(), "layer 1, KV head 2, range 1"), "%s", rq_last_error());
    free(copy), free(bytes);
    CHECK(rq_key_basis_load_mem("tests", 5, &got, &back) == RQ_ERR_FORMAT, "not a GGUF");
    CHECK(rq_key_basis_load_mem(NULL, 0, &got, &back) == RQ_ERR_TRUNCATED, "empty");
    /* found by fuzz_keybasis: n_tokens as a u64 of 2^36 + 4 was accepted,
     * and rq_key_basis_save then refused the info (the format's u32): the
     * loader now refuses what the saver cannot write */
    size_t fn_len = 0;
    uint8_t *fz = read_all("tests/data/kb_n_tokens_u64.gguf", &fn_len);
    CHECK(fz != NULL, "tests/data/kb_n_tokens_u64.gguf (run from the repository root)");
    if (fz) {
        CHECK(rq_key_basis_load_mem(fz, fn_len, &got, &back) == RQ_ERR_FORMAT && !back, "n_tokens beyond u32");
        CHECK(strstr(rq_last_error(), "n_tokens"), "%s", rq_last_error());
        free(fz);
    }
}

/* rq_cache_load_key_basis: the same cache as setting every head's bases by
 * hand (bit-identical attention); the calibrated positions bound the
 * context; a basis for another shape is refused by name. */
static void test_cache_load_key_basis(void) {
    enum { L = 2, H = 2, D = 16, R = 2, N = 300 };
    rq_key_basis_info info;
    memset(&info, 0, sizeof info);
    info.n_layers = L, info.n_kv_heads = H, info.head_dim = D, info.n_ranges = R, info.start[1] = 128, info.n_ctx = N;
    static float A[L * H * R * D * D];
    rq_rng r;
    rq_rng_seed(&r, 5);
    for (int i = 0; i < L * H * R * D * D; i++) A[i] = (float)((i % (D * D)) / D == i % D) + 0.1f * (float)rq_rng_gauss(&r);
    char path[] = "/tmp/rq_test_kb_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return;
    close(fd);
    CHECK_OK(rq_key_basis_save(path, &info, A));
    rq_cache *c1 = cache_of("turbo3", "turbo3", L, H, D), *c2 = cache_of("turbo3", "turbo3", L, H, D);
    rq_key_basis_info got;
    CHECK_OK(rq_cache_load_key_basis(c1, path, &got));
    CHECK(got.n_ctx == N && got.n_ranges == R, "info");
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) CHECK_OK(rq_cache_set_key_basis(c2, l, h, R, info.start, A + (l * H + h) * R * D * D));
    static float k[N * H * D], v[N * H * D], q[2 * H * D], o1[2 * H * D], o2[2 * H * D];
    for (int i = 0; i < N * H * D; i++) k[i] = (float)rq_rng_gauss(&r), v[i] = (float)rq_rng_gauss(&r);
    for (int i = 0; i < 2 * H * D; i++) q[i] = (float)rq_rng_gauss(&r);
    rq_attn_params p = {.n_q_heads = 2 * H};
    for (int l = 0; l < L; l++) {
        CHECK_OK(rq_cache_append(c1, l, k, v, N));
        CHECK_OK(rq_cache_append(c2, l, k, v, N));
        CHECK_OK(rq_cache_attention(c1, l, q, 1, NULL, &p, o1));
        CHECK_OK(rq_cache_attention(c2, l, q, 1, NULL, &p, o2));
        CHECK(!memcmp(o1, o2, sizeof o1), "layer %d: loaded = set by hand", l);
    }
    /* position N is past what the basis was calibrated on */
    CHECK(rq_cache_append(c1, 0, k, v, 1) == RQ_ERR_RANGE && rq_cache_n_tokens(c1, 0) == N, "beyond n_ctx");
    CHECK(strstr(rq_last_error(), "calibrated on 300 positions"), "%s", rq_last_error());
    CHECK_OK(rq_cache_append(c2, 0, k, v, 1)); /* bases set by hand have no such limit */
    CHECK(rq_cache_load_key_basis(c2, path, NULL) == RQ_ERR_INVALID_ARG, "tokens already stored");
    rq_cache_free(c1), rq_cache_free(c2);
    rq_cache *c3 = cache_of("turbo3", "turbo3", L + 1, H, D);
    CHECK(rq_cache_load_key_basis(c3, path, NULL) == RQ_ERR_SHAPE, "another shape");
    CHECK(strstr(rq_last_error(), "bases for 2 layers × 2 KV heads × head_dim 16, the cache has 3 × 2 × 16"), "%s",
          rq_last_error());
    rq_cache_free(c3);
    remove(path);
}

const rq_test tests_keybasis[] = {
    {"key_basis_fit_is_the_minimizer", test_fit_is_the_minimizer},
    {"key_basis_keeps_scores", test_basis_keeps_scores},
    {"key_basis_ranges_keep_scores", test_basis_ranges_keep_scores},
    {"key_basis_fitted_cuts_attention_error", test_fitted_basis_cuts_error},
    {"key_basis_bad_input", test_basis_bad_input},
    {"key_basis_file_golden_round_trip", test_basis_file_golden_round_trip},
    {"key_basis_file_corrupt", test_basis_file_corrupt},
    {"key_basis_cache_load", test_cache_load_key_basis},
    {NULL, NULL},
};
