/*
 * test_int8.c — the int8 key scores (rq_cache_config.int8_scores): the
 * kernels (decode_mse8_n, decode_tcq8_n, scores_i8) at every SIMD level bit for bit
 * against the scalar reference, the integer scores against the float ones
 * within the bound the two roundings give, and attention with the option:
 * close to the float path, the same at every level and thread count,
 * and unchanged for key types it does not serve.
 */
#include "test.h"
#include "attn_kernels.h"

#include <string.h>

/* levels to compare with the reference: 0 = avx2, 1 = avx512 */
static int have_level(int l) {
#if defined(__x86_64__) && !defined(RQ_NO_SIMD)
    return l == 0 ? __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                  : __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq");
#else
    (void)l;
    return 0;
#endif
}

/* A symmetric, nonuniform codebook of 2^b entries (as Lloyd-Max's). */
static void make_cent(float *cent, int b) {
    const int nc = 1 << b;
    for (int i = 0; i < nc; i++) {
        float u = (float)i - (float)(nc - 1) / 2;
        cent[i] = 0.07f * u * (1.0f + 0.05f * u * u);
    }
}

static void tab8_of(const float *cent, int b, uint8_t *tab8, float *cfac) {
    const int nc = 1 << b;
    float cmax = 0;
    for (int i = 0; i < nc; i++) cmax = fabsf(cent[i]) > cmax ? fabsf(cent[i]) : cmax;
    for (int i = 0; i < nc; i++) tab8[i] = (uint8_t)(128 + (int)lrintf(cent[i] * (127.0f / cmax)));
    *cfac = cmax / 127.0f;
}

/* decode_mse8_n and scores_i8 at every level (and the AVX-512 level's
 * paths without VBMI/VNNI) return the reference's bytes and float bits:
 * d = 1..300 (tails of 16 and 64), b = 1..5, G = 1..6 heads, n = 1..11
 * tokens (tails of 4). */
static void test_int8_kernel_parity(void) {
    const char *feat[] = {"avx2", "avx512"};
    rq_simd_level levels[] = {RQ_SIMD_AVX2, RQ_SIMD_AVX512};
    rq_rng r;
    rq_rng_seed(&r, 88);
    enum { MAXD = 300, NB = 11, G = 6, DP = 304, NT = 12 /* NB rounded up to groups of 4 */ };
    static uint8_t blob[NB * 200 + RQ_PAGE_SLACK], k0[NT * DP], k1[NT * DP];
    static int8_t q8[G * DP];
    float ks0[NB], ks1[NB], qs[G], S0[G * 12], S1[G * 12], cent[32];
    int32_t qsum[G];
    uint8_t tab8[32];
    for (int l = 0; l < 2; l++) {
        if (!have_level(l)) {
            TEST_NOTE("level %s not available on this CPU/build: skipped", feat[l]);
            continue;
        }
        const rq_attn_kernels *R = &rq__kernels_ref, *S = rq__attn_kernels_for(levels[l]);
        int bad_dec = 0, bad_sc = 0, cases = 0;
        for (int d = 1; d <= MAXD; d += d < 70 ? 1 : 23) {
            for (size_t i = 0; i < sizeof blob; i++) blob[i] = (uint8_t)rq_rng_next(&r);
            const int off = d % 2 ? 1 : 2; /* odd d: the n8 head (any byte, FORMAT.md §5.2) */
            const size_t stride = (size_t)off + ((size_t)d * 5 + 7) / 8 + 3; /* norm + codes + a gap */
            for (size_t t = 0; off == 2 && t < NB; t++) { /* finite fp16 norms, some negative */
                uint16_t h = rq_f32_to_f16((float)rq_rng_gauss(&r) * 3.0f);
                blob[t * stride] = (uint8_t)h, blob[t * stride + 1] = (uint8_t)(h >> 8);
            }
            for (int b = 1; b <= 5; b++) {
                make_cent(cent, b);
                float cfac;
                tab8_of(cent, b, tab8, &cfac);
                /* n tokens in two runs (the second from token n1 of the tile) */
                const int n = 1 + (d + b) % NB, n1 = n / 3, dp = (int)rq__i8_dp(d);
                memset(k0, 7, sizeof k0), memset(k1, 7, sizeof k1);
                R->decode_mse8_n(k0, ks0, 0, blob, stride, n1, d, b, (size_t)off, off == 1 ? rq__norm8 : NULL, tab8, cfac);
                R->decode_mse8_n(k0, ks0, n1, blob + n1 * stride, stride, n - n1, d, b, (size_t)off, off == 1 ? rq__norm8 : NULL, tab8, cfac);
                S->decode_mse8_n(k1, ks1, 0, blob, stride, n1, d, b, (size_t)off, off == 1 ? rq__norm8 : NULL, tab8, cfac);
                S->decode_mse8_n(k1, ks1, n1, blob + n1 * stride, stride, n - n1, d, b, (size_t)off, off == 1 ? rq__norm8 : NULL, tab8, cfac);
                bad_dec += memcmp(k0, k1, sizeof k0) != 0 || memcmp(ks0, ks1, sizeof(float) * n) != 0;
                for (int t = 0; t < n; t++) /* padding bytes are 128 */
                    for (int j = d; j < dp; j++) bad_dec += k0[rq__i8_at(d, t, j)] != 128;
                for (int g = 0; g < G; g++) { /* rows of dp bytes, zeros after d */
                    float x[MAXD];
                    for (int j = 0; j < d; j++) x[j] = (float)rq_rng_gauss(&r) * (j % 9 == 2 ? 6.0f : 1.0f);
                    memset(q8 + g * dp, 0, (size_t)dp);
                    rq__quantize_q8(x, d, q8 + g * dp, qs + g, qsum + g);
                }
                int gn = 1 + (d + 2 * b) % G;
                for (int i = 0; i < G * 12; i++) S0[i] = S1[i] = (float)rq_rng_gauss(&r);
                R->scores_i8(q8, gn, dp, qs, qsum, k0, ks0, n, d, S0, 12);
                S->scores_i8(q8, gn, dp, qs, qsum, k0, ks0, n, d, S1, 12);
                bad_sc += memcmp(S0, S1, sizeof S0) != 0;
#if defined(__x86_64__) && !defined(RQ_NO_SIMD)
                if (l == 1) { /* the level's path without VNNI too */
                    for (int i = 0; i < G * 12; i++) S1[i] = S0[i] = (float)i;
                    R->scores_i8(q8, gn, dp, qs, qsum, k0, ks0, n, d, S0, 12);
                    rq__scores_i8_avx512bw(q8, gn, dp, qs, qsum, k0, ks0, n, d, S1, 12);
                    bad_sc += memcmp(S0, S1, sizeof S0) != 0;
                }
#endif
                cases++;
            }
        }
        CHECK(bad_dec == 0, "%s: %d of %d int8 key decodes differ from scalar", S->name, bad_dec, cases);
        CHECK(bad_sc == 0, "%s: %d of %d int8 score tiles differ from scalar", S->name, bad_sc, cases);
        TEST_NOTE("%s: decode_mse8_n and scores_i8 bit-exact in %d cases (d = 1..300, b = 1..5)", S->name, cases);
    }
}

/* decode_tcq8_n at every level (the AVX-512 level's VBMI path where the
 * CPU has it) returns the reference's bytes and float bits: random streams,
 * d = 8..512 step 8, bits 2..5, n = 1..11 tokens in two runs, a random
 * 256-byte table; blocks exactly 2 + d·bits/8 bytes in a buffer of exactly
 * n blocks (a read past the last stream is a sanitizer error). */
static void test_int8_tcq_kernel_parity(void) {
    const char *feat[] = {"avx2", "avx512"};
    rq_simd_level levels[] = {RQ_SIMD_AVX2, RQ_SIMD_AVX512};
    rq_rng r;
    rq_rng_seed(&r, 814);
    enum { NB = 11, NT = 12 };
    uint8_t tab8[256];
    float ks0[NB], ks1[NB];
    uint8_t *k0 = malloc(NT * 512), *k1 = malloc(NT * 512);
    for (int l = 0; l < 2; l++) {
        if (!have_level(l)) {
            TEST_NOTE("level %s not available on this CPU/build: skipped", feat[l]);
            continue;
        }
        const rq_attn_kernels *R = &rq__kernels_ref, *S = rq__attn_kernels_for(levels[l]);
        int bad = 0, cases = 0;
        for (int d = 8; d <= 512; d += 8)
            for (int b = RQ_TCQ_MIN_BITS; b <= RQ_TCQ_MAX_BITS; b++) {
                const int off = (d / 8) % 2 ? 1 : 2; /* odd d/8: the n8 head */
                const size_t stride = (size_t)off + (size_t)d * (size_t)b / 8;
                const int n = 1 + (d / 8 + b) % NB, n1 = (d / 8) % (n + 1), dp = (int)rq__i8_dp(d);
                uint8_t *blob = malloc(stride * (size_t)n);
                for (size_t i = 0; i < stride * (size_t)n; i++) blob[i] = (uint8_t)rq_rng_next(&r);
                for (int t = 0; off == 2 && t < n; t++) { /* finite fp16 scales, some negative */
                    uint16_t h = rq_f32_to_f16((float)rq_rng_gauss(&r) * 3.0f);
                    blob[t * stride] = (uint8_t)h, blob[t * stride + 1] = (uint8_t)(h >> 8);
                }
                for (int i = 0; i < 256; i++) tab8[i] = (uint8_t)rq_rng_next(&r);
                const float cfac = (float)rq_rng_uniform(&r) * 0.01f;
                memset(k0, 7, NT * 512), memset(k1, 7, NT * 512);
                R->decode_tcq8_n(k0, ks0, 0, blob, stride, n1, d, b, (size_t)off, off == 1 ? rq__norm8 : NULL, tab8, cfac);
                R->decode_tcq8_n(k0, ks0, n1, blob + n1 * stride, stride, n - n1, d, b, (size_t)off, off == 1 ? rq__norm8 : NULL, tab8, cfac);
                S->decode_tcq8_n(k1, ks1, 0, blob, stride, n1, d, b, (size_t)off, off == 1 ? rq__norm8 : NULL, tab8, cfac);
                S->decode_tcq8_n(k1, ks1, n1, blob + n1 * stride, stride, n - n1, d, b, (size_t)off, off == 1 ? rq__norm8 : NULL, tab8, cfac);
                bad += memcmp(k0, k1, NT * 512) != 0 || memcmp(ks0, ks1, sizeof(float) * (size_t)n) != 0;
                for (int t = 0; t < n; t++) { /* the reference's own bytes: windows, then 128 */
                    for (int j = 0; j < d; j++)
                        bad += k0[rq__i8_at(d, t, j)] != tab8[rq__tcq_window(blob + t * stride + off, d, b, j)];
                    for (int j = d; j < dp; j++) bad += k0[rq__i8_at(d, t, j)] != 128;
                }
                free(blob);
                cases++;
            }
        CHECK(bad == 0, "%s: %d of %d TCQ int8 key decodes differ from scalar", S->name, bad, cases);
        TEST_NOTE("%s: decode_tcq8_n bit-exact in %d cases (d = 8..512, bits 2..5)", S->name, cases);
    }
    free(k0), free(k1);
}

/* The integer score against the float one, Σ_j q_j·n·c[code_j] (double):
 * with q_j = qs·q8_j + e_j, |e_j| ≤ qs/2, and n·c_j = n·cfac·(c8_j + f_j),
 * |f_j| ≤ 1/2, the difference is Σ q_j·n·cfac·f_j + Σ n·cfac·c8_j·e_j, so
 * |Δ| ≤ (|n|·cfac/2)·Σ|q_j| + (qs/2)·Σ|n·cfac·c8_j| (+ float rounding,
 * 1e-5 of Σ|q_j·k_j|). Checked for b = 1..4 at d = 64, 128; the bound must
 * also not be loose by more than 100× on average (measured 20×: a worst
 * case adds every rounding with one sign). */
static void test_int8_scores_bound(void) {
    rq_rng r;
    rq_rng_seed(&r, 5);
    const rq_attn_kernels *K = rq__attn_kernels();
    int bad = 0, n_cases = 0;
    double used = 0; /* mean |Δ| / bound */
    for (int b = 1; b <= 4; b++)
        for (int d = 64; d <= 128; d += 64)
            for (int rep = 0; rep < 40; rep++) {
                float cent[32], cfac, q[128], ks, qs, S = 0;
                uint8_t tab8[32], blk[2 + 64 + RQ_PAGE_SLACK], k8[4 * 128];
                int8_t q8[128];
                int32_t qsum;
                make_cent(cent, b);
                tab8_of(cent, b, tab8, &cfac);
                for (size_t i = 0; i < sizeof blk; i++) blk[i] = (uint8_t)rq_rng_next(&r);
                const float norm = 0.5f + 4.0f * (float)rq_rng_uniform(&r);
                uint16_t h = rq_f32_to_f16(norm);
                blk[0] = (uint8_t)h, blk[1] = (uint8_t)(h >> 8);
                const double nf = (double)rq_f16_to_f32(h);
                for (int j = 0; j < d; j++) q[j] = (float)rq_rng_gauss(&r) * (j % 13 == 1 ? 5.0f : 1.0f);
                rq__quantize_q8(q, d, q8, &qs, &qsum);
                memset(k8, 128, sizeof k8);
                K->decode_mse8_n(k8, &ks, 0, blk, 0, 1, d, b, 2, NULL, tab8, cfac);
                K->scores_i8(q8, 1, d, &qs, &qsum, k8, &ks, 1, d, &S, 1);
                double exact = 0, sq = 0, sk = 0, sqk = 0;
                for (int j = 0; j < d; j++) {
                    size_t bit = (size_t)j * b;
                    unsigned v = blk[2 + (bit >> 3)] | (unsigned)blk[2 + (bit >> 3) + 1] << 8;
                    unsigned code = (v >> (bit & 7)) & ((1u << b) - 1);
                    double kj = nf * cent[code], khat = nf * cfac * ((int)tab8[code] - 128);
                    exact += (double)q[j] * kj;
                    sq += fabs((double)q[j]), sk += fabs(khat), sqk += fabs((double)q[j] * kj);
                }
                double bound = fabs(nf) * cfac / 2 * sq + (double)qs / 2 * sk + 1e-5 * sqk;
                bad += fabs((double)S - exact) > bound;
                used += fabs((double)S - exact) / bound, n_cases++;
            }
    CHECK(bad == 0, "%d of %d int8 scores outside the rounding bound", bad, n_cases);
    CHECK(used / n_cases > 0.01, "bound loose: mean |Δ|/bound = %.3g", used / n_cases);
    TEST_NOTE("int8 vs float scores: all %d within the bound; mean |Δ|/bound = %.3f", n_cases, used / n_cases);
}

/* Attention of one cache with and without int8_scores (the same stored
 * bytes): outputs for queries near cached keys; *diff = ‖o8 − o‖/‖o‖. The
 * int8 outputs at every SIMD level and thread count are returned in o8s. */
static rq_status attend_both(const char *tk, const char *tv, int d, int H, int G, int threads, int n_tok, int level,
                             int centre, float *o, float *o8, double *diff) {
    rq_cache_config cf = rq_cache_config_default();
    cf.n_layers = 1, cf.n_kv_heads = H, cf.head_dim = d, cf.type_k = tk, cf.type_v = tv;
    cf.page_tokens = centre ? 23 : 64, cf.n_threads = threads, cf.centre_keys = centre;
    rq_cache *c0 = NULL, *c1 = NULL;
    rq_status st = rq_cache_init(&c0, &cf);
    cf.int8_scores = 1;
    if (!st) st = rq_cache_init(&c1, &cf);
    const int Hq = H * G, nq = 2;
    size_t n = (size_t)n_tok * H * d;
    float *k = malloc(sizeof(float) * n), *v = malloc(sizeof(float) * n), *q = malloc(sizeof(float) * nq * Hq * d);
    rq_rng r;
    rq_rng_seed(&r, (uint64_t)d + 7);
    for (size_t i = 0; i < n; i++) {
        k[i] = (float)rq_rng_gauss(&r) * ((i % (size_t)d) % 17 == 3 ? 8.0f : 1.0f);
        v[i] = (float)rq_rng_gauss(&r);
    }
    for (int i = 0; i < nq * Hq; i++) {
        const float *kk = k + ((size_t)(i * 7 % n_tok) * H + (size_t)(i % Hq) / G) * d;
        for (int x = 0; x < d; x++) q[i * d + x] = 0.3f * kk[x] + (float)rq_rng_gauss(&r);
    }
    size_t n_ctx[2] = {(size_t)n_tok, (size_t)n_tok / 3};
    rq_attn_params p = {.n_q_heads = Hq, .scale = 0};
    rq_simd_level was = rq__simd_force((rq_simd_level)level);
    if (!st) st = rq_cache_append(c0, 0, k, v, (size_t)n_tok);
    if (!st) st = rq_cache_append(c1, 0, k, v, (size_t)n_tok);
    if (!st) st = rq_cache_attention(c0, 0, q, nq, n_ctx, &p, o);
    if (!st) st = rq_cache_attention(c1, 0, q, nq, n_ctx, &p, o8);
    rq__simd_force(was);
    double e = 0, s = 0;
    for (size_t i = 0; !st && i < (size_t)nq * Hq * d; i++) e += ((double)o8[i] - o[i]) * ((double)o8[i] - o[i]), s += (double)o[i] * o[i];
    *diff = s > 0 ? sqrt(e / s) : sqrt(e);
    free(k), free(v), free(q);
    rq_cache_free(c0), rq_cache_free(c1);
    return st;
}

/* Attention with int8_scores: within 4e-2 of the float scores for the
 * types it serves (the roundings perturb each score by ~1e-3 of its scale;
 * measured 4e-3 .. 1.9e-2, largest for rotor3 whose rotation leaves the
 * outlier channels in the query), within LEVEL_TOL at every SIMD level and 1 or 2 threads,
 * and bit-identical to the float path for key types it does not serve
 * (5-bit MSE codes, baselines). TCQ keys (2..5 bits) are served: their
 * 256-entry LUT rounded to 8 bits as the centroids. */
/* between levels and thread counts only the float parts differ (FMA in
 * the value sums, the polynomial exp, the chunk merge): ATTN_TOL of
 * tests/test_attention.c; the scores themselves are the same bits */
#define LEVEL_TOL 2e-4

static void test_int8_attention(void) {
    const char *pairs[][2] = {{"turbo3", "turbo3"}, {"turbo2", "turbo4"}, {"turbo4", "q8_0"}, {"turbo3p", "turbo3"},
                              {"rotor3", "iso4"},   {"dense2p", "planar3"}, {"turbo1", "f16"}, {"turbo5", "turbo3"},
                              {"q8_0", "turbo3"},   {"tcq3", "turbo3"},  {"tcq4", "tcq2"},  {"tcq2", "f16"},
                              {"tcq5", "turbo3"},   {"f16", "f16"}};
    const int dims[] = {64, 128, 96};
    enum { MAXO = 2 * 16 * 128 };
    static float o[MAXO], o8[MAXO], o8ref[MAXO], oref[MAXO];
    double worst = 0, worst_level = 0;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const rq_type_info *ti = rq_type_find(pairs[i][0]);
        const bool served = ti && (((ti->family == RQ_FAMILY_MSE || ti->family == RQ_FAMILY_PROD) &&
                                    ti->n_bits - (ti->family == RQ_FAMILY_PROD) >= 1 &&
                                    ti->n_bits - (ti->family == RQ_FAMILY_PROD) <= 4) ||
                                   (ti->family == RQ_FAMILY_TCQ && ti->n_bits >= 2 && ti->n_bits <= 5));
        for (int k = 0; k < 3; k++) {
            const int d = dims[k], H = 2, G = k == 0 ? 3 : 4;
            if (!ti || !rq_type_bytes_per_vector(ti, d) || !rq_type_bytes_per_vector(rq_type_find(pairs[i][1]), d))
                continue;
            double e = 0, e2;
            const int centre = k == 1; /* d = 128: keys centred (the sink stays float), pages of 23 tokens */
            CHECK_OK(attend_both(pairs[i][0], pairs[i][1], d, H, G, 1, 700, RQ_SIMD_SCALAR, centre, oref, o8ref, &e));
            if (served) {
                CHECK(e > 0 && e < 4e-2, "%s/%s d=%d: int8 vs float scores %.3g", pairs[i][0], pairs[i][1], d, e);
                worst = e > worst ? e : worst;
            } else
                CHECK(e == 0, "%s/%s d=%d: not served, yet int8_scores changed the output (%.3g)", pairs[i][0],
                      pairs[i][1], d, e);
            for (int l = RQ_SIMD_SCALAR; l <= RQ_SIMD_AVX512; l++)
                for (int th = 1; th <= 2; th++) {
                    CHECK_OK(attend_both(pairs[i][0], pairs[i][1], d, H, G, th, 700, l, centre, o, o8, &e2));
                    double x = 0, y = 0; /* the int8 outputs of the level against the scalar's */
                    for (int u = 0; u < 2 * H * G * d; u++)
                        x += ((double)o8[u] - o8ref[u]) * ((double)o8[u] - o8ref[u]), y += (double)o8ref[u] * o8ref[u];
                    x = sqrt(x / y);
                    CHECK(x < LEVEL_TOL, "%s/%s d=%d level %d threads %d: int8 output %.3g from the scalar level's",
                          pairs[i][0], pairs[i][1], d, l, th, x);
                    worst_level = x > worst_level ? x : worst_level;
                }
        }
    }
    TEST_NOTE("int8 vs float scores, attention outputs: worst ‖Δo‖/‖o‖ = %.3g; every level and thread count within "
              "%.2g of the scalar level's int8 outputs",
              worst, worst_level);
}

/* The workspace the option needs: rq_cache_attention_workspace_size counts
 * the int8 queries, and a call in exactly that much succeeds. */
static void test_int8_workspace(void) {
    rq_cache_config cf = rq_cache_config_default();
    cf.n_kv_heads = 2, cf.head_dim = 80;
    rq_cache *c0 = NULL, *c1 = NULL;
    CHECK_OK(rq_cache_init(&c0, &cf));
    cf.int8_scores = 1;
    CHECK_OK(rq_cache_init(&c1, &cf));
    rq_attn_params p = {.n_q_heads = 6, .scale = 0};
    size_t b0 = 0, b1 = 0;
    CHECK_OK(rq_cache_attention_workspace_size(c0, 3, &p, &b0));
    CHECK_OK(rq_cache_attention_workspace_size(c1, 3, &p, &b1));
    CHECK(b1 == b0 + 3 * 6 * (8 + 128), "int8 workspace %zu vs %zu", b1, b0);
    float k[2 * 80 * 5], q[3 * 6 * 80], o[3 * 6 * 80];
    rq_rng r;
    rq_rng_seed(&r, 3);
    test_random_gauss(&r, k, 2 * 80 * 5), test_random_gauss(&r, q, 3 * 6 * 80);
    CHECK_OK(rq_cache_append(c1, 0, k, k, 5));
    void *ws = malloc(b1);
    CHECK_OK(rq_cache_attention_ws(c1, 0, q, 3, NULL, &p, o, ws, b1));
    free(ws);
    rq_cache_free(c0), rq_cache_free(c1);
}

const rq_test tests_int8[] = {
    {"int8_kernel_simd_parity", test_int8_kernel_parity},
    {"int8_tcq_kernel_simd_parity", test_int8_tcq_kernel_parity},
    {"int8_scores_within_rounding_bound", test_int8_scores_bound},
    {"int8_attention_levels_threads", test_int8_attention},
    {"int8_workspace_size", test_int8_workspace},
    {NULL, NULL},
};
