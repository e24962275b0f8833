/*
 * test_attention.c — the compressed KV cache: append/grow/accounting, GQA,
 * fused attention against "decode everything, then exact attention" for
 * every type (and asymmetric K/V pairs, causal limits, 1 and 2 threads),
 * the attention kernels at every SIMD level against the scalar reference,
 * and bad arguments.
 */
#include "test.h"
#include "attn_kernels.h"

/* Tolerance of fused vs reference attention: ‖o − o_ref‖/‖o_ref‖. The fused
 * path accumulates in float (with FMA in SIMD) over up to ~1000 tokens; the
 * reference uses double on the same decoded blocks. */
#define ATTN_TOL 2e-4

static rq_cache *make_cache(const char *tk, const char *tv, int L, int H, int d, int page, int threads) {
    rq_cache_config c = rq_cache_config_default();
    c.n_layers = L, c.n_kv_heads = H, c.head_dim = d, c.type_k = tk, c.type_v = tv;
    c.page_tokens = page, c.n_threads = threads;
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
    double worst = 0;
    const char *worst_t = "";
    for (int i = 0; i < rq_type_count(); i++) {
        const char *t = rq_type_at(i)->name;
        const int dims[] = {64, 96};
        for (int k = 0; k < 2; k++) {
            if (!rq_type_bytes_per_vector(rq_type_at(i), dims[k])) continue;
            double e = fused_vs_ref(t, t, dims[k], 2, 3, 1, 300);
            CHECK(e < ATTN_TOL, "%s d=%d fused vs reference %.2g", t, dims[k], e);
            if (e > worst) worst = e, worst_t = t;
        }
    }
    TEST_NOTE("worst fused-vs-reference error over every type: %.2g (%s)", worst, worst_t);
}

static void test_fused_asymmetric_threads(void) {
    const char *pairs[][2] = {{"q8_0", "turbo3"}, {"turbo4", "q4_0h"}, {"turbo3p", "turbo3"}, {"f16", "rotor3p"},
                              {"rotor3", "iso4"}, {"dense2p", "planar3"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        for (int th = 1; th <= 2; th++) {
            double e = fused_vs_ref(pairs[i][0], pairs[i][1], 128, 2, 4, th, 1100);
            CHECK(e < ATTN_TOL, "%s/%s threads=%d: %.2g", pairs[i][0], pairs[i][1], th, e);
        }
    /* GQA 3:1 at head_dim 64 with 2 threads and many chunks */
    double e = fused_vs_ref("turbo3", "turbo3", 64, 3, 3, 2, 2500);
    CHECK(e < ATTN_TOL, "GQA 9:3 2 threads %.2g", e);
}

/* Each kernel at each level the CPU has against the scalar reference. */
static void test_kernel_parity(void) {
    rq_simd_level levels[] = {RQ_SIMD_AVX2, RQ_SIMD_AVX512};
    const char *feat[] = {"avx2", "avx512f"};
    rq_rng r;
    rq_rng_seed(&r, 17);
    float q[300], acc0[300], acc1[300], cent[16];
    uint8_t blob[1400];
    for (int i = 0; i < 16; i++) cent[i] = (float)(i - 7.5) * 0.1f;
    for (int l = 0; l < 2; l++) {
        int have = 0;
#if defined(__x86_64__) && !defined(RQ_NO_SIMD)
        have = l == 0 ? __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") : __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#endif
        if (!have) {
            TEST_NOTE("level %s not available on this CPU/build: skipped", feat[l]);
            continue;
        }
        const rq_attn_kernels *R = &rq__attn_ref, *S = rq__attn_kernels_for(levels[l]);
        int bad = 0;
        for (int d = 1; d <= 288; d += (d < 40 ? 1 : 31)) {
            for (int i = 0; i < d; i++) q[i] = (float)rq_rng_gauss(&r);
            for (size_t i = 0; i < sizeof blob; i++) blob[i] = (uint8_t)rq_rng_next(&r);
            for (int i = 0; i < d / 32 * 34; i += 34) blob[i + 1] &= 0x3b, blob[i + 35 - 34] &= 0x3b; /* finite scales */
            for (int b = 1; b <= 4; b++) {
                double a = R->dot_codes(q, blob, d, b, cent), s = S->dot_codes(q, blob, d, b, cent);
                bad += fabs(a - s) > 1e-4 * (1 + fabs(a));
                for (int i = 0; i < d; i++) acc0[i] = acc1[i] = q[i];
                R->acc_codes(acc0, 0.7f, blob, d, b, cent);
                S->acc_codes(acc1, 0.7f, blob, d, b, cent);
                bad += rel_err(acc1, acc0, (size_t)d) > 1e-6;
            }
            bad += fabs(R->dot_signs(q, blob, d) - S->dot_signs(q, blob, d)) > 1e-4 * (1 + fabs(R->dot_signs(q, blob, d)));
            for (int i = 0; i < d; i++) acc0[i] = acc1[i] = q[i];
            R->acc_signs(acc0, 0.3f, blob, d);
            S->acc_signs(acc1, 0.3f, blob, d);
            bad += rel_err(acc1, acc0, (size_t)d) > 1e-6;
            float f16buf[300];
            for (int i = 0; i < d; i++) f16buf[i] = (float)rq_rng_gauss(&r);
            uint8_t h[600];
            for (int i = 0; i < d; i++) {
                uint16_t hv = rq_f32_to_f16(f16buf[i]);
                h[2 * i] = (uint8_t)hv, h[2 * i + 1] = (uint8_t)(hv >> 8);
            }
            bad += fabs(R->dot_f16(q, h, d) - S->dot_f16(q, h, d)) > 1e-4 * (1 + fabs(R->dot_f16(q, h, d)));
            bad += fabs(R->dot_f32(q, (uint8_t *)f16buf, d) - S->dot_f32(q, (uint8_t *)f16buf, d)) > 1e-4 * (1 + fabs(R->dot_f32(q, (uint8_t *)f16buf, d)));
            for (int i = 0; i < d; i++) acc0[i] = acc1[i] = q[i];
            R->acc_f16(acc0, 0.3f, h, d), S->acc_f16(acc1, 0.3f, h, d);
            R->acc_f32(acc0, 0.3f, (uint8_t *)f16buf, d), S->acc_f32(acc1, 0.3f, (uint8_t *)f16buf, d);
            bad += rel_err(acc1, acc0, (size_t)d) > 1e-6;
            if (d % 32 == 0) {
                uint8_t q8[400], q4[300];
                rq_quantizer *a, *b;
                rq_quantizer_init(&a, "q8_0", d, NULL);
                rq_quantizer_init(&b, "q4_0", d, NULL);
                rq_quantizer_encode(a, f16buf, q8, 1);
                rq_quantizer_encode(b, f16buf, q4, 1);
                bad += fabs(R->dot_q8_0(q, q8, d) - S->dot_q8_0(q, q8, d)) > 1e-4 * (1 + fabs(R->dot_q8_0(q, q8, d)));
                bad += fabs(R->dot_q4_0(q, q4, d) - S->dot_q4_0(q, q4, d)) > 1e-4 * (1 + fabs(R->dot_q4_0(q, q4, d)));
                for (int i = 0; i < d; i++) acc0[i] = acc1[i] = q[i];
                R->acc_q8_0(acc0, 0.3f, q8, d), S->acc_q8_0(acc1, 0.3f, q8, d);
                R->acc_q4_0(acc0, 0.3f, q4, d), S->acc_q4_0(acc1, 0.3f, q4, d);
                bad += rel_err(acc1, acc0, (size_t)d) > 1e-6;
                rq_quantizer_free(a), rq_quantizer_free(b);
            }
        }
        CHECK(bad == 0, "%s: %d kernel mismatches against scalar", S->name, bad);
        TEST_NOTE("%s attention kernels match scalar on d = 1..288 (dot rel 1e-4, acc rel 1e-6)", S->name);
    }
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

const rq_test tests_attention[] = {
    {"cache_append_grow_accounting", test_accounting},
    {"attention_fused_vs_reference_every_type", test_fused_every_type},
    {"attention_asymmetric_gqa_threads", test_fused_asymmetric_threads},
    {"attention_kernel_simd_parity", test_kernel_parity},
    {"attention_bad_args", test_attention_bad_args},
    {NULL, NULL},
};
