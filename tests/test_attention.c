/*
 * test_attention.c — the compressed KV cache: append/grow/accounting, GQA,
 * fused attention against "decode everything, then exact attention" for
 * every type (and asymmetric K/V pairs, causal limits, 1 and 2 threads),
 * the attention kernels at every SIMD level against the scalar reference,
 * and bad arguments.
 */
#include "test.h"
#include "attn_kernels.h"

#include <string.h>

/* Tolerance of fused vs reference attention: ‖o − o_ref‖/‖o_ref‖. The fused
 * path accumulates in float (with FMA in SIMD) over up to ~1000 tokens; the
 * reference uses double on the same decoded blocks. */
#define ATTN_TOL 2e-4

static rq_cache *make_cache(const char *tk, const char *tv, int L, int H, int d, int page, int threads) {
    rq_cache_config c = rq_cache_config_default();
    c.n_layers = L, c.n_kv_heads = H, c.head_dim = d, c.type_k = tk, c.type_v = tv;
    c.page_tokens = page, c.n_threads = threads;
    if (test_is_k8(tk)) c.centre_keys = 1; /* k8 keys need it */
    rq_cache *cache = NULL;
    rq_status st = rq_cache_init(&cache, &c);
    CHECK(st == RQ_OK, "%s/%s d=%d: %s", tk, tv, d, rq_status_str(st));
    return cache;
}

/* Keys with outlier channels and queries correlated with some keys, so the
 * softmax is peaked as in real attention. */
static void fill_kv(rq_rng *r, float *k, float *v, size_t n, int d) {
    for (size_t i = 0; i < n * (size_t)d; i++) {
        k[i] = (float)rq_rng_gauss(r) * ((i % (size_t)d) % 17 == 3 ? 8.0f : 1.0f);
        v[i] = (float)rq_rng_gauss(r);
    }
}

static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), s += (double)b[i] * b[i];
    return s > 0 ? sqrt(e / s) : sqrt(e);
}

static void test_accounting(void) {
    const int L = 2, H = 3, d = 64, page = 16;
    rq_cache *c = make_cache("turbo3", "q8_0", L, H, d, page, 1);
    if (!c) return;
    size_t bk = rq_type_bytes_per_vector(rq_type_find("turbo3"), d), bv = rq_type_bytes_per_vector(rq_type_find("q8_0"), d);
    CHECK(rq_cache_bytes_per_token(c) == (size_t)L * H * (bk + bv), "bytes/token %zu", rq_cache_bytes_per_token(c));
    rq_rng r;
    rq_rng_seed(&r, 4);
    float k[100 * 3 * 64], v[100 * 3 * 64];
    fill_kv(&r, k, v, 100 * 3, d);
    for (int t = 0; t < 50; t++) CHECK_OK(rq_cache_append(c, 0, k + (size_t)t * H * d, v + (size_t)t * H * d, 1));
    CHECK_OK(rq_cache_append(c, 0, k + (size_t)50 * H * d, v + (size_t)50 * H * d, 50));
    CHECK_OK(rq_cache_append(c, 1, k, v, 7));
    CHECK(rq_cache_n_tokens(c, 0) == 100 && rq_cache_n_tokens(c, 1) == 7, "token counts");
    CHECK(rq_cache_bytes_used(c) == 107 * (size_t)H * (bk + bv), "bytes used %zu", rq_cache_bytes_used(c));
    size_t pages = (100 + 15) / 16 + 1, page_bytes = (size_t)page * H * (bk + bv);
    CHECK(rq_cache_bytes_allocated(c) >= pages * page_bytes && rq_cache_bytes_allocated(c) < pages * page_bytes + 4096,
          "allocated %zu for %zu pages of %zu", rq_cache_bytes_allocated(c), pages, page_bytes);
    /* stored blocks equal direct encodes: attention over 1 token returns its decoded value */
    const rq_quantizer *qv = rq_cache_quantizer(c, 1);
    float vd[64], o[3 * 64], q[3 * 64] = {0};
    uint8_t blk[256];
    size_t one = 1;
    rq_attn_params p = {.n_q_heads = H, .scale = 0};
    CHECK_OK(rq_cache_attention(c, 1, q, 1, &one, &p, o));
    for (int h = 0; h < H; h++) {
        rq_quantizer_encode(qv, v + (size_t)h * d, blk, 1);
        rq_quantizer_decode(qv, blk, vd, 1);
        CHECK(rel_err(o + h * d, vd, (size_t)d) < 1e-6, "head %d: single-token attention = its value (err %.3g)", h, rel_err(o + h * d, vd, (size_t)d));
    }
    /* a bad append changes nothing */
    k[5] = NAN;
    CHECK(rq_cache_append(c, 1, k, v, 3) == RQ_ERR_NONFINITE, "NaN append");
    CHECK(rq_cache_n_tokens(c, 1) == 7, "failed append left %zu tokens", rq_cache_n_tokens(c, 1));
    rq_cache_clear(c);
    CHECK(rq_cache_n_tokens(c, 0) == 0 && rq_cache_bytes_used(c) == 0, "clear");
    rq_cache_free(c);
}

/* fused vs reference for one K/V pair */
static double fused_vs_ref(const char *tk, const char *tv, int d, int H, int G, int threads, int n_tok) {
    rq_cache *c = make_cache(tk, tv, 1, H, d, 64, threads);
    if (!c) return 1;
    rq_rng r;
    rq_rng_seed(&r, (uint64_t)d * 31 + (uint64_t)H);
    size_t n = (size_t)n_tok * H * d;
    float *k = malloc(sizeof(float) * n), *v = malloc(sizeof(float) * n);
    fill_kv(&r, k, v, (size_t)n_tok * H, d);
    CHECK_OK(rq_cache_append(c, 0, k, v, (size_t)n_tok / 2));
    CHECK_OK(rq_cache_append(c, 0, k + n / 2, v + n / 2, (size_t)n_tok - (size_t)n_tok / 2));
    const int nq = 3;
    int Hq = H * G;
    float *q = malloc(sizeof(float) * nq * Hq * d), *o = malloc(sizeof(float) * nq * Hq * d),
          *o2 = malloc(sizeof(float) * nq * Hq * d);
    for (int i = 0; i < nq * Hq; i++) { /* query = a cached key (scaled) + noise */
        const float *kk = k + ((size_t)(i * 7 % n_tok) * H + (size_t)(i % Hq) / G) * d;
        for (int x = 0; x < d; x++) q[i * d + x] = 0.3f * kk[x] + (float)rq_rng_gauss(&r);
    }
    size_t n_ctx[3] = {(size_t)n_tok, (size_t)n_tok / 3, 1};
    rq_attn_params p = {.n_q_heads = Hq, .scale = 0};
    CHECK_OK(rq_cache_attention(c, 0, q, nq, n_ctx, &p, o));
    CHECK_OK(rq_cache_attention_ref(c, 0, q, nq, n_ctx, &p, o2));
    double e = rel_err(o, o2, (size_t)nq * Hq * d);
    free(k), free(v), free(q), free(o), free(o2);
    rq_cache_free(c);
    return e;
}

static void test_fused_every_type(void) {
    double worst = 0, worst5 = 0;
    const char *worst_t = "";
    int n_5bit = 0;
    for (int i = 0; i < rq_type_count(); i++) {
        const rq_type_info *ti = rq_type_at(i);
        const char *t = ti->name;
        const int dims[] = {64, 96};
        for (int k = 0; k < 2; k++) {
            if (!rq_type_bytes_per_vector(ti, dims[k])) continue;
            /* k8: key types of a centred cache, with n8 values */
            double e = fused_vs_ref(t, test_is_k8(t) ? "turbo3n8" : t, dims[k], 2, 3, 1, 300);
            CHECK(e < ATTN_TOL, "%s d=%d fused vs reference %.2g", t, dims[k], e);
            if (e > worst) worst = e, worst_t = t;
            if (ti->family == RQ_FAMILY_MSE && ti->n_bits == 5) {
                n_5bit++;
                if (e > worst5) worst5 = e;
            }
        }
    }
    CHECK(n_5bit == 14, "%d 5-bit (type, d) pairs checked, expected 5 rotation families + turbo5n8 + turbo5k8, × 2 dims",
          n_5bit);
    TEST_NOTE("worst fused-vs-reference error over every type: %.2g (%s); over the 5-bit types %.2g", worst, worst_t,
              worst5);
}

static void test_fused_asymmetric_threads(void) {
    const char *pairs[][2] = {{"q8_0", "turbo3"}, {"turbo4", "q4_0h"}, {"turbo3p", "turbo3"}, {"f16", "rotor3p"},
                              {"rotor3", "iso4"}, {"dense2p", "planar3"}, {"turbo5", "turbo3"}, {"q8_0", "iso5"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        for (int th = 1; th <= 2; th++) {
            double e = fused_vs_ref(pairs[i][0], pairs[i][1], 128, 2, 4, th, 1100);
            CHECK(e < ATTN_TOL, "%s/%s threads=%d: %.2g", pairs[i][0], pairs[i][1], th, e);
        }
    /* GQA 3:1 at head_dim 64 with 2 threads and many chunks */
    double e = fused_vs_ref("turbo3", "turbo3", 64, 3, 3, 2, 2500);
    CHECK(e < ATTN_TOL, "GQA 9:3 2 threads %.2g", e);
}

/* Each kernel at each level the CPU has against the scalar reference:
 * decoders bit-exact (one multiply per value in both), dot/axpy within
 * named tolerances (FMA and a different summation order). */
static void test_kernel_parity(void) {
    rq_simd_level levels[] = {RQ_SIMD_AVX2, RQ_SIMD_AVX512};
    const char *feat[] = {"avx2", "avx512"};
    rq_rng r;
    rq_rng_seed(&r, 17);
    float a0[300], a1[300], cent[1 << RQ_MAX_BITS];
    uint8_t blob[1400 + RQ_PAGE_SLACK];
    for (int i = 0; i < 1 << RQ_MAX_BITS; i++) cent[i] = (float)(i - 15.5) * 0.05f;
    for (int l = 0; l < 2; l++) {
        int have = 0;
#if defined(__x86_64__) && !defined(RQ_NO_SIMD)
        have = l == 0 ? __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                      : __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#endif
        if (!have) {
            TEST_NOTE("level %s not available on this CPU/build: skipped", feat[l]);
            continue;
        }
        const rq_attn_kernels *R = &rq__kernels_ref, *S = rq__attn_kernels_for(levels[l]);
        int bad_dec = 0, bad_exp = 0, bad_tile = 0;
        for (int d = 1; d <= 288; d += (d < 40 ? 1 : 31)) {
            for (size_t i = 0; i < sizeof blob; i++) blob[i] = (uint8_t)rq_rng_next(&r);
            for (int b = 1; b <= RQ_MAX_BITS; b++) { /* codes of b bits use cent[0 .. 2^b − 1] */
                R->decode_codes(a0, blob, d, b, cent, 1.7f);
                S->decode_codes(a1, blob, d, b, cent, 1.7f);
                bad_dec += memcmp(a0, a1, sizeof(float) * (size_t)d) != 0;
#if defined(__x86_64__) && !defined(RQ_NO_SIMD)
                if (l == 1) { /* the level's path without VBMI too */
                    rq__decode_codes_avx512f(a1, blob, d, b, cent, 1.7f);
                    bad_dec += memcmp(a0, a1, sizeof(float) * (size_t)d) != 0;
                }
#endif
            }
            R->decode_signs(a0, blob, d, 0.3f), S->decode_signs(a1, blob, d, 0.3f);
            bad_dec += memcmp(a0, a1, sizeof(float) * (size_t)d) != 0;
            /* the value blocks' decoders are the kernel table's values_decode
             * slots, checked at 0 ULP in tests/test_simd.c */
            for (int i = 0; i < d; i++) a0[i] = a1[i] = (float)(-30.0 * rq_rng_uniform(&r)) + (i == 3 ? -200.0f : 0.0f);
            float s0 = R->exp_sum(a0, d, 0.5f), s1 = S->exp_sum(a1, d, 0.5f);
            bad_exp += fabsf(s0 - s1) > 1e-6f * s0;
            for (int i = 0; i < d; i++) bad_exp += fabsf(a0[i] - a1[i]) > 1e-6f * a0[i] + 1e-37f; /* below 1e-37: 0 vs subnormal */
            /* scores and accum against the reference on a 5-head, d-wide tile */
            {
                float Q[5 * 300], Kt[7 * 300], S0[5 * 8] = {0}, S1[5 * 8] = {0}, A0[5 * 300] = {0}, A1[5 * 300] = {0};
                for (int i = 0; i < 5 * d; i++) Q[i] = (float)rq_rng_gauss(&r);
                for (int i = 0; i < 7 * d; i++) Kt[i] = (float)rq_rng_gauss(&r);
                R->scores(Q, 5, d, Kt, 7, d, S0, 8), S->scores(Q, 5, d, Kt, 7, d, S1, 8);
                for (int i = 0; i < 5 * 8; i++) bad_tile += fabsf(S0[i] - S1[i]) > 1e-5f * (float)d;
                R->accum(A0, 5, d, S0, 8, Kt, 7, d), S->accum(A1, 5, d, S0, 8, Kt, 7, d);
                bad_tile += rel_err(A1, A0, (size_t)(5 * d)) > 1e-6;
            }
        }
        CHECK(bad_dec == 0, "%s: %d decoder results differ from scalar", S->name, bad_dec);
        CHECK(bad_exp == 0, "%s: %d exp results outside 1e-6 relative", S->name, bad_exp);
        CHECK(bad_tile == 0, "%s: %d scores/accum results outside tolerance", S->name, bad_tile);
        TEST_NOTE("%s: decoders bit-exact; dot, scores within 1e-5·|q||x|; axpy, accum 1e-6; exp 1e-6 (d = 1..288)", S->name);
    }
}

/* Each level's decode_mse_n against the reference (bit for bit), and the
 * fused MSE slots (scores_mse_n, accum_mse_n) against the level's own
 * decode_mse_n followed by scores / accum, bit for bit (the same FMAs in
 * the same order), at the levels that have them (and the AVX-512 loops
 * without VBMI), and the scalar references against the scalar
 * composition: bits 1..4, d = 16..256, 1..9 heads, runs of 1..64 tokens,
 * blocks of two separate runs (as across a page boundary), with the fp16
 * head and (every other run length) the n8 head (codes at byte 1). */
static int fused_mse_case(rq_rng *r, const rq_attn_kernels *S, int which, int d, int bits, int G, int n, int off) {
    enum { NMAX = 64, DMAX = 256, GMAX = 9 };
    static uint8_t runs[2][NMAX * (2 + DMAX / 2) + RQ_PAGE_SLACK];
    static float tile[NMAX * DMAX], Q[GMAX * (DMAX + 3)], P[GMAX * NMAX], A0[GMAX * (DMAX + 3)], A1[GMAX * (DMAX + 3)];
    static float S0[GMAX * NMAX], S1[GMAX * NMAX];
    float cent[16];
    for (int i = 0; i < 16; i++) cent[i] = (float)(rq_rng_gauss(r) * 0.7);
    const size_t stride = (size_t)off + (size_t)d * (size_t)bits / 8; /* off 2: fp16 head; 1: n8 head */
    for (int u = 0; u < 2; u++)
        for (size_t i = 0; i < sizeof runs[u]; i++) runs[u][i] = (uint8_t)rq_rng_next(r);
    const int n0 = n / 2 + (n > 2); /* tokens from the first run */
    const float *ntab = off == 1 ? rq__norm8 : NULL; /* the head's table */
    const uint8_t *kp[NMAX];
    for (int t = 0; t < n; t++) {
        uint8_t *b = t < n0 ? runs[0] + (size_t)t * stride : runs[1] + (size_t)(t - n0) * stride;
        uint16_t h = (uint16_t)(0x3400 + rq_rng_next(r) % 0x0c00) | (uint16_t)(rq_rng_next(r) & 1 ? 0x8000 : 0); /* ±0.25..~4 */
        if (off == 2) b[0] = (uint8_t)h, b[1] = (uint8_t)(h >> 8);
        else b[0] = (uint8_t)rq_rng_next(r); /* any n8 code, 0 included */
        kp[t] = b;
    }
    const int ld = d + 3; /* strides unlike d (the arrays hold DMAX + 3 per head) */
    for (int i = 0; i < G * ld; i++) Q[i] = (float)rq_rng_gauss(r);
    for (int i = 0; i < G * NMAX; i++) P[i] = (float)rq_rng_uniform(r), S0[i] = S1[i] = (float)rq_rng_gauss(r);
    for (int i = 0; i < G * ld; i++) A0[i] = A1[i] = (float)rq_rng_gauss(r);
    /* the composition: each run decoded, then scores / accum over the tile */
    S->decode_mse_n(tile, runs[0], stride, n0, d, bits, (size_t)off, ntab, cent);
    if (n > n0) S->decode_mse_n(tile + (size_t)n0 * d, runs[1], stride, n - n0, d, bits, (size_t)off, ntab, cent);
    S->scores(Q, G, ld, tile, n, d, S0, NMAX);
    S->accum(A0, G, ld, P, NMAX, tile, n, d);
    int bad = 0;
    if (which == 0) { /* the level's decode_mse_n itself: the reference's floats */
        static float ref[NMAX * DMAX];
        rq__decode_mse_n_ref(ref, runs[0], stride, n0, d, bits, (size_t)off, ntab, cent);
        if (n > n0) rq__decode_mse_n_ref(ref + (size_t)n0 * d, runs[1], stride, n - n0, d, bits, (size_t)off, ntab, cent);
        bad += memcmp(ref, tile, sizeof(float) * (size_t)n * d) != 0;
    }
    /* the fused slots: which 0 the table's, 1 the reference, 2 AVX-512 without VBMI */
    void (*sc)(const float *, int, int, const uint8_t *const *, int, int, int, size_t, const float *, const float *, float *, int) =
        which == 1 ? rq__scores_mse_n_ref : S->scores_mse_n;
    void (*ac)(float *, int, int, const float *, int, const uint8_t *, size_t, int, int, int, size_t, const float *, const float *) =
        which == 1 ? rq__accum_mse_n_ref : S->accum_mse_n;
#if defined(__x86_64__) && !defined(RQ_NO_SIMD)
    if (which == 2) sc = rq__scores_mse_n_avx512f, ac = rq__accum_mse_n_avx512f;
#endif
    if (!sc || !ac) return bad; /* the level has no fused slots: its decode_mse_n only */
    sc(Q, G, ld, kp, n, d, bits, (size_t)off, ntab, cent, S1, NMAX);
    ac(A1, G, ld, P, NMAX, runs[0], stride, n0, d, bits, (size_t)off, ntab, cent);
    if (n > n0) ac(A1, G, ld, P + n0, NMAX, runs[1], stride, n - n0, d, bits, (size_t)off, ntab, cent);
    return bad + (memcmp(S0, S1, sizeof(float) * (size_t)G * NMAX) != 0) + (memcmp(A0, A1, sizeof(float) * (size_t)G * ld) != 0);
}

static void test_fused_mse_slots(void) {
    rq_rng r;
    rq_rng_seed(&r, 23);
    const rq_simd_level levels[] = {RQ_SIMD_SCALAR, RQ_SIMD_AVX2, RQ_SIMD_AVX512};
    const int dims[] = {16, 32, 64, 80, 128, 256}, heads[] = {1, 2, 3, 4, 5, 8, 9}, ns[] = {1, 3, 4, 7, 63, 64};
    int checked = 0;
    for (int l = 0; l < 3; l++) {
        const rq_attn_kernels *S = rq__attn_kernels_for(levels[l]);
        if (l > 0 && S == rq__attn_kernels_for(levels[l - 1])) continue; /* not in this build/CPU */
        for (int which = 0; which < 3; which++) {
            if (which == 1 && l != 0) continue;                  /* the references: vs the scalar table */
            if (which == 2 && levels[l] != RQ_SIMD_AVX512) continue;
            int bad = 0, cases = 0;
            for (size_t di = 0; di < sizeof dims / sizeof *dims; di++)
                for (int bits = 1; bits <= 4; bits++)
                    for (size_t gi = 0; gi < sizeof heads / sizeof *heads; gi++)
                        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++, cases++)
                            bad += fused_mse_case(&r, S, which, dims[di], bits, heads[gi], ns[ni], 2 - (int)(ni % 2));
            CHECK(bad == 0, "%s %s: %d of %d cases differ (decode_mse_n vs the reference; fused vs decode_mse_n + scores/accum)", S->name,
                  which == 1 ? "reference" : which == 2 ? "without VBMI" : "fused", bad, 2 * cases);
            checked++;
        }
    }
    CHECK(checked >= 1, "no fused slot checked");
    TEST_NOTE("%d sets checked (level x fused / reference / no-VBMI): all bit-identical", checked);
}

static void test_attention_bad_args(void) {
    rq_cache *c = NULL;
    rq_cache_config cfg = rq_cache_config_default();
    cfg.type_k = "nope";
    CHECK(rq_cache_init(&c, &cfg) == RQ_ERR_UNKNOWN_TYPE && !c, "unknown type");
    cfg = rq_cache_config_default();
    cfg.n_layers = 0;
    CHECK(rq_cache_init(&c, &cfg) == RQ_ERR_INVALID_ARG, "zero layers");
    cfg = rq_cache_config_default();
    cfg.head_dim = 80, cfg.type_v = "q8_0";
    CHECK(rq_cache_init(&c, &cfg) == RQ_ERR_DIM, "q8_0 at d=80");
    CHECK(rq_cache_init(NULL, &cfg) == RQ_ERR_INVALID_ARG, "NULL out");
    c = make_cache("turbo3", "turbo3", 2, 2, 64, 0, 1);
    if (!c) return;
    float q[4 * 64] = {0}, o[4 * 64], kv[2 * 64] = {0};
    CHECK_OK(rq_cache_append(c, 0, kv, kv, 1));
    rq_attn_params p = {.n_q_heads = 3, .scale = 0};
    CHECK(rq_cache_attention(c, 0, q, 1, NULL, &p, o) == RQ_ERR_SHAPE, "3 q heads on 2 kv heads");
    p.n_q_heads = 4;
    size_t too_many = 2;
    CHECK(rq_cache_attention(c, 0, q, 1, &too_many, &p, o) == RQ_ERR_SHAPE, "n_ctx beyond cache");
    CHECK(rq_cache_attention(c, 2, q, 1, NULL, &p, o) == RQ_ERR_INVALID_ARG, "layer out of range");
    CHECK(rq_cache_append(c, -1, kv, kv, 1) == RQ_ERR_INVALID_ARG, "append layer -1");
    q[3] = INFINITY;
    CHECK(rq_cache_attention(c, 0, q, 1, NULL, &p, o) == RQ_ERR_NONFINITE, "Inf query");
    q[3] = 0;
    p.scale = NAN;
    CHECK(rq_cache_attention(c, 0, q, 1, NULL, &p, o) == RQ_ERR_INVALID_ARG, "NaN scale");
    p.scale = 0;
    /* empty layer: zero output */
    for (int i = 0; i < 4 * 64; i++) o[i] = 1;
    CHECK_OK(rq_cache_attention(c, 1, q, 1, NULL, &p, o));
    int nz = 0;
    for (int i = 0; i < 4 * 64; i++) nz += o[i] != 0;
    CHECK(nz == 0, "empty context gives zeros");
    rq_cache_free(c);
}

/* Sliding window at Gemma 3's shape (rq_cache_set_window, head_dim 256,
 * W = 512, appended in batches as the model does): the fused path against
 * the reference and the caller's-workspace variant, and against a cache that
 * holds only the window's keys (f32 keys and values: float rounding). */
static void test_sliding_window(void) {
    const int d = 256, H = 1, G = 4, n_tok = 1300, W = 512;
    const char *types[] = {"f32", "turbo3", "q8_0"};
    rq_rng r;
    rq_rng_seed(&r, 77);
    float *k = malloc(sizeof(float) * n_tok * d), *v = malloc(sizeof(float) * n_tok * d);
    float q[3 * 4 * 256], o[3 * 4 * 256], o2[3 * 4 * 256], o3[4 * 256];
    fill_kv(&r, k, v, (size_t)n_tok, d);
    for (int i = 0; i < 3 * G * d; i++) q[i] = 0.3f * k[(size_t)(i / d * 101 % n_tok) * d + (size_t)(i % d)] + (float)rq_rng_gauss(&r);
    size_t n_ctx[3] = {(size_t)n_tok, 1000, 900}; /* the last batch's queries; 900 − W ≥ released pages */
    for (int ti = 0; ti < 3; ti++)
        for (int th = 1; th <= 2; th++) {
            rq_cache *c = make_cache(types[ti], types[ti], 1, H, d, 64, th);
            if (!c) continue;
            CHECK_OK(rq_cache_set_window(c, 0, W));
            CHECK_OK(rq_cache_append(c, 0, k, v, 899));
            CHECK_OK(rq_cache_append(c, 0, k + (size_t)899 * d, v + (size_t)899 * d, (size_t)n_tok - 899));
            rq_attn_params p = {.n_q_heads = H * G, .scale = 0};
            CHECK_OK(rq_cache_attention(c, 0, q, 3, n_ctx, &p, o));
            CHECK_OK(rq_cache_attention_ref(c, 0, q, 3, n_ctx, &p, o2));
            double e = rel_err(o, o2, (size_t)3 * G * d);
            CHECK(e < ATTN_TOL, "%s threads=%d: windowed fused vs reference %.2g", types[ti], th, e);
            /* the caller's workspace: the same window, bit for bit */
            size_t wsb = 0;
            CHECK_OK(rq_cache_attention_workspace_size(c, 3, &p, &wsb));
            void *ws = malloc(wsb);
            if (ws) {
                CHECK_OK(rq_cache_attention_ws(c, 0, q, 3, n_ctx, &p, o2, ws, wsb));
                CHECK(memcmp(o, o2, sizeof(float) * 3 * (size_t)G * (size_t)d) == 0,
                      "%s threads=%d: windowed _ws differs from rq_cache_attention", types[ti], th);
                free(ws);
            }
            /* the window changes the answer (else this test could not fail) */
            rq_cache *cf = make_cache(types[ti], types[ti], 1, H, d, 64, th);
            if (cf) {
                rq_attn_params pf = {.n_q_heads = H * G, .scale = 0};
                CHECK_OK(rq_cache_append(cf, 0, k, v, (size_t)n_tok));
                CHECK_OK(rq_cache_attention(cf, 0, q, 1, n_ctx, &pf, o3));
                CHECK(rel_err(o3, o, (size_t)G * d) > 1e-3, "%s: window of %d over %d keys changed nothing", types[ti],
                      W, n_tok);
                rq_cache_free(cf);
            }
            rq_cache_free(c);
        }
    /* f32: the window equals a cache holding only keys n_tok − W .. n_tok − 1 */
    rq_cache *c = make_cache("f32", "f32", 1, H, d, 64, 1);
    if (c) {
        CHECK_OK(rq_cache_append(c, 0, k + (size_t)(n_tok - W) * d, v + (size_t)(n_tok - W) * d, (size_t)W));
        rq_attn_params pf = {.n_q_heads = H * G, .scale = 0};
        CHECK_OK(rq_cache_attention(c, 0, q, 1, NULL, &pf, o3));
        rq_cache *cw = make_cache("f32", "f32", 1, H, d, 64, 1);
        if (cw) {
            CHECK_OK(rq_cache_set_window(cw, 0, W));
            CHECK_OK(rq_cache_append(cw, 0, k, v, (size_t)n_tok));
            rq_attn_params p = {.n_q_heads = H * G, .scale = 0};
            CHECK_OK(rq_cache_attention(cw, 0, q, 1, n_ctx, &p, o));
            double e = rel_err(o, o3, (size_t)G * d);
            CHECK(e < 1e-5, "f32 window vs a cache of the window's keys: %.2g", e);
            TEST_NOTE("window %d over %d keys at head_dim %d: f32 windowed vs truncated cache %.2g", W, n_tok, d, e);
            rq_cache_free(cw);
        }
        rq_cache_free(c);
    }
    free(k), free(v);
}

/* Finite inputs whose scaled scores overflow float (key 60000, query 1e35,
 * scale 3e38; or f32 keys of 1e30 against queries of 1e10): RQ_ERR_RANGE
 * with a message at every SIMD level, never an all-zero or all-NaN output;
 * values whose weighted sum overflows likewise; large but safe inputs still
 * give the same finite output at every level. */
static void test_attention_overflow(void) {
    const rq_simd_level was = rq__simd_level();
    const rq_simd_level levels[] = {RQ_SIMD_SCALAR, RQ_SIMD_AVX2, RQ_SIMD_AVX512};
    float first[2 * 64];
    for (int li = 0; li < 3; li++) {
        if (rq__simd_force(levels[li]) != levels[li]) continue; /* the CPU lacks it */
        const char *name = rq__simd_level_name(levels[li]);
        const char *types[] = {"f16", "q8_0", "turbo3", "turbo3p", "f32"};
        for (int ti = 0; ti < 5; ti++) {
            /* keys at the fp16 edge: plain norms (a norm-corrected n/‖c‖ of
             * a 60000-norm key is past fp16, refused at append) */
            rq_cache_config cc = rq_cache_config_default();
            cc.n_layers = 1, cc.n_kv_heads = 1, cc.head_dim = 64, cc.type_k = types[ti], cc.type_v = "f16";
            cc.n_threads = 2, cc.quant.norm_correct = 0;
            rq_cache *c = NULL;
            CHECK_OK(rq_cache_init(&c, &cc));
            if (!c) continue;
            float k[300 * 64], v[300 * 64], q[2 * 64], o[2 * 64];
            for (int i = 0; i < 300 * 64; i++) k[i] = i % 64 == 0 ? 60000.0f : 0.5f, v[i] = (float)(i % 7);
            CHECK_OK(rq_cache_append(c, 0, k, v, 300));
            for (int i = 0; i < 2 * 64; i++) q[i] = 1e35f;
            rq_attn_params p = {.n_q_heads = 2, .scale = 3e38f};
            for (int i = 0; i < 2 * 64; i++) o[i] = 7;
            CHECK(rq_cache_attention(c, 0, q, 1, NULL, &p, o) == RQ_ERR_RANGE, "%s, %s keys: overflow", name,
                  types[ti]);
            CHECK(strstr(rq_last_error(), "scores may overflow") != NULL, "%s: %s", name, rq_last_error());
            /* a big but safe query: finite, the same output at every level
             * up to the kernels' documented tolerance */
            for (int i = 0; i < 2 * 64; i++) q[i] = 1e-3f * (float)(i % 5);
            p.scale = 0;
            CHECK_OK(rq_cache_attention(c, 0, q, 1, NULL, &p, o));
            int bad = 0;
            for (int i = 0; i < 2 * 64; i++) bad += !isfinite(o[i]);
            CHECK(bad == 0, "%s, %s: finite output", name, types[ti]);
            if (ti == 0 && li == 0) memcpy(first, o, sizeof first);
            if (ti == 0) CHECK(rel_err(o, first, 2 * 64) < ATTN_TOL, "%s: same output as scalar", name);
            rq_cache_free(c);
        }
        /* f32 keys of 1e30: the scaled query (1e10) is finite, the scores are not */
        rq_cache *c = make_cache("f32", "f32", 1, 1, 64, 0, 1);
        if (c) {
            float k[64], v[64], q[64], o[64];
            for (int i = 0; i < 64; i++) k[i] = 1e30f, v[i] = 3e38f, q[i] = 1e10f;
            CHECK_OK(rq_cache_append(c, 0, k, v, 1));
            rq_attn_params p = {.n_q_heads = 1, .scale = 1};
            CHECK(rq_cache_attention(c, 0, q, 1, NULL, &p, o) == RQ_ERR_RANGE, "%s: f32 scores overflow", name);
            /* scores fine, but 3e38 + 3e38 overflows the value sum */
            for (int i = 0; i < 64; i++) k[i] = 0;
            rq_cache_clear(c);
            CHECK_OK(rq_cache_append(c, 0, k, v, 1));
            CHECK_OK(rq_cache_append(c, 0, k, v, 1));
            CHECK(rq_cache_attention(c, 0, q, 1, NULL, &p, o) == RQ_ERR_RANGE, "%s: value sum overflows", name);
            CHECK(strstr(rq_last_error(), "output of query 0, head 0 overflows") != NULL, "%s", rq_last_error());
            rq_cache_free(c);
        }
    }
    rq_simd_level now = rq__simd_force(was);
    CHECK(now == was, "level restored");
}


/* n8 values (1-byte norm head): the fused loops (accum_mse_n, the tile
 * path for TCQ) against the reference, with fp16-normed keys and GQA 1/4;
 * a value past the n8 range fails the append cleanly. */
static void test_norm8_values(void) {
    static const char *const PAIRS[][2] = {{"turbo3", "turbo3n8"}, {"turbo4", "turbo2n8"}, {"tcq3", "tcq3n8"},
                                           {"tcq4", "tcq2n8"}, {"turbo3n8", "turbo3n8"}};
    double worst = 0;
    for (size_t i = 0; i < sizeof PAIRS / sizeof PAIRS[0]; i++)
        for (int g = 1; g <= 4; g += 3)
            for (int d = 64; d <= 128; d += 64) {
                double e = fused_vs_ref(PAIRS[i][0], PAIRS[i][1], d, 2, g, 1 + (g > 1), 300);
                CHECK(e < ATTN_TOL, "K %s / V %s d=%d G=%d: fused vs reference %.2g", PAIRS[i][0], PAIRS[i][1], d, g, e);
                worst = e > worst ? e : worst;
            }
    TEST_NOTE("worst fused-vs-reference error with n8 values: %.2g", worst);
    rq_cache *c = make_cache("turbo3", "tcq3n8", 1, 2, 64, 16, 1);
    if (!c) return;
    float k[3 * 2 * 64], v[3 * 2 * 64];
    rq_rng r;
    rq_rng_seed(&r, 5);
    fill_kv(&r, k, v, 3 * 2, 64);
    CHECK_OK(rq_cache_append(c, 0, k, v, 3));
    const size_t used = rq_cache_bytes_used(c);
    for (int i = 0; i < 64; i++) v[2 * 64 + i] *= 300.0f; /* token 1, head 0: norm ≈ 2400 > 1024 */
    rq_status st = rq_cache_append(c, 0, k, v, 3);
    CHECK(st == RQ_ERR_RANGE, "append past the n8 range: %s", rq_status_str(st));
    CHECK(strstr(rq_last_error(), "token 1, KV head 0") && strstr(rq_last_error(), "tcq3n8") &&
              strstr(rq_last_error(), "2^10"), "message '%s'", rq_last_error());
    CHECK(rq_cache_n_tokens(c, 0) == 3 && rq_cache_bytes_used(c) == used, "failed append left %zu tokens",
          rq_cache_n_tokens(c, 0));
    rq_cache_free(c);
}

const rq_test tests_attention[] = {
    {"cache_append_grow_accounting", test_accounting},
    {"attention_fused_vs_reference_every_type", test_fused_every_type},
    {"attention_asymmetric_gqa_threads", test_fused_asymmetric_threads},
    {"attention_kernel_simd_parity", test_kernel_parity},
    {"attention_fused_mse_slots", test_fused_mse_slots},
    {"attention_norm8_values", test_norm8_values},
    {"attention_bad_args", test_attention_bad_args},
    {"attention_sliding_window", test_sliding_window},
    {"attention_overflow_every_simd_level", test_attention_overflow},
    {NULL, NULL},
};
