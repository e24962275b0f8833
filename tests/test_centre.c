/*
 * test_centre.c — key centring with an exact attention sink
 * (rq_cache_config.centre_keys): keys ≥ 1 stored as k − μ shift every score
 * of a query by q·μ, which softmax drops — so without quantization (f32) the
 * attention weights are those of the plain keys; with quantization the fused
 * kernel matches the reference (μ + decode, the exact sink) and the error
 * against exact attention falls when keys share a large mean; μ is fixed by
 * the first append past position 0, inherited by forks, kept by truncation,
 * cleared with the last token, saved and loaded (FORMAT.md §7); the bits
 * accounting counts μ and the sink; bad inputs are refused.
 */
#include "test.h"
#include "internal.h"

#include <string.h>

#define ATTN_TOL 2e-4 /* fused vs reference, ‖o − o_ref‖/‖o_ref‖ (as test_attention.c) */

static rq_cache *centre_cache(const char *tk, const char *tv, int H, int d, int centre, int page) {
    rq_cache_config c = rq_cache_config_default();
    c.n_layers = 1, c.n_kv_heads = H, c.head_dim = d, c.type_k = tk, c.type_v = tv;
    c.centre_keys = centre, c.page_tokens = page;
    rq_cache *cache = NULL;
    rq_status st = rq_cache_init(&cache, &c);
    CHECK(st == RQ_OK, "%s/%s d=%d centre=%d: %s", tk, tv, d, centre, rq_last_error());
    return cache;
}

/* Keys as real models have them: a large mean shared by every position of a
 * head (|μ| ≈ 3 × the spread) plus noise; position 0 (the sink) different. */
static void model_like_keys(rq_rng *r, float *k, size_t n, int H, int d) {
    for (int h = 0; h < H; h++)
        for (int x = 0; x < d; x++) {
            const float mu = (float)rq_rng_gauss(r) * 3.0f;
            for (size_t t = 0; t < n; t++) {
                float *kt = k + (t * (size_t)H + (size_t)h) * (size_t)d;
                kt[x] = t ? mu + (float)rq_rng_gauss(r) : (float)rq_rng_gauss(r) * 4.0f;
            }
        }
}

static const char *rq_type_name_of(const rq_quantizer *q) { return q ? rq_quantizer_type(q)->name : ""; }

static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), s += (double)b[i] * b[i];
    return s > 0 ? sqrt(e / s) : sqrt(e);
}

/* Without quantization the weights are exactly softmax(scale·q·k): values
 * one-hot (v_t = e_t), so the output is the weight vector; keys on a 1/64
 * grid (exact in fp16, so the sink is exact too). Centred (scores shifted
 * by q·μ) and plain caches and the direct softmax in double agree. */
static void test_centre_f32_softmax_invariant(void) {
    const int H = 2, d = 64;
    const size_t n = 60, vec = (size_t)H * d;
    rq_rng r;
    rq_rng_seed(&r, 5);
    float *k = calloc(n * vec, sizeof(float)), *v = calloc(n * vec, sizeof(float));
    model_like_keys(&r, k, n, H, d);
    for (size_t i = 0; i < n * vec; i++) k[i] = roundf(k[i] * 64.0f) / 64.0f;
    for (size_t t = 0; t < n; t++)
        for (int h = 0; h < H; h++) v[(t * (size_t)H + (size_t)h) * (size_t)d + t] = 1.0f;
    rq_cache *cc = centre_cache("f32", "f32", H, d, 1, 16), *cp = centre_cache("f32", "f32", H, d, 0, 16);
    const int G = 3, Hq = H * G;
    float q[6 * 64], oc[6 * 64], op[6 * 64], orf[6 * 64];
    for (int i = 0; i < Hq * d; i++) q[i] = (float)rq_rng_gauss(&r) * 0.5f;
    rq_attn_params p = {.n_q_heads = Hq, .scale = 0};
    if (cc && cp) {
        CHECK_OK(rq_cache_append(cc, 0, k, v, n));
        CHECK_OK(rq_cache_append(cp, 0, k, v, n));
        CHECK_OK(rq_cache_attention(cc, 0, q, 1, NULL, &p, oc));
        CHECK_OK(rq_cache_attention(cp, 0, q, 1, NULL, &p, op));
        CHECK_OK(rq_cache_attention_ref(cc, 0, q, 1, NULL, &p, orf));
        double worst = 0, worst_ref = 0;
        for (int qh = 0; qh < Hq; qh++) {
            const int h = qh / G;
            double s[64], m = -INFINITY, l = 0;
            for (size_t t = 0; t < n; t++) {
                s[t] = 0;
                for (int x = 0; x < d; x++) s[t] += (double)q[qh * d + x] * k[(t * (size_t)H + (size_t)h) * (size_t)d + (size_t)x];
                s[t] /= sqrt((double)d);
                m = s[t] > m ? s[t] : m;
            }
            for (size_t t = 0; t < n; t++) l += exp(s[t] - m);
            for (size_t t = 0; t < n; t++) {
                const double w = exp(s[t] - m) / l;
                worst = fmax(worst, fabs(oc[qh * d + (int)t] - w));
                worst = fmax(worst, fabs(op[qh * d + (int)t] - w));
                worst_ref = fmax(worst_ref, fabs(orf[qh * d + (int)t] - w));
            }
        }
        TEST_NOTE("f32 K/V: max |weight − softmax(q·k)| centred/plain %.2g, reference %.2g", worst, worst_ref);
        CHECK(worst < 2e-6, "centred or plain weights off by %g", worst);
        CHECK(worst_ref < 1e-6, "reference weights off by %g", worst_ref);
    }
    rq_cache_free(cc), rq_cache_free(cp);
    free(k), free(v);
}

/* Quantized: fused = reference, and centring cuts the error against exact
 * attention when keys share a large mean; with a key basis too. */
static void test_centre_quantized(void) {
    const int H = 2, d = 128, G = 3, Hq = H * G;
    const size_t n = 700, vec = (size_t)H * d;
    rq_rng r;
    rq_rng_seed(&r, 9);
    float *k = malloc(sizeof(float) * n * vec), *v = malloc(sizeof(float) * n * vec);
    model_like_keys(&r, k, n, H, d);
    for (size_t i = 0; i < n * vec; i++) v[i] = (float)rq_rng_gauss(&r);
    const size_t nq = 4;
    float *q = malloc(sizeof(float) * nq * (size_t)Hq * d);
    for (size_t i = 0; i < nq * (size_t)Hq * d; i++) q[i] = (float)rq_rng_gauss(&r) * 0.3f;
    const size_t n_ctx[4] = {1, 2, 300, 700};
    const size_t no = nq * (size_t)Hq * d;
    float *oc = malloc(sizeof(float) * no), *orf = malloc(sizeof(float) * no), *op = malloc(sizeof(float) * no),
          *ox = malloc(sizeof(float) * no);
    rq_attn_params p = {.n_q_heads = Hq, .scale = 0};
    rq_cache *cx = centre_cache("f32", "f32", H, d, 0, 64);
    if (cx) {
        CHECK_OK(rq_cache_append(cx, 0, k, v, n));
        CHECK_OK(rq_cache_attention_ref(cx, 0, q, nq, n_ctx, &p, ox));
    }
    static const char *const types[][2] = {{"turbo3", "turbo3"}, {"turbo4", "turbo2"}, {"q8_0", "q4_0"}, {"turbo3p", "turbo3"}};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (int basis = 0; basis < 2; basis++) {
            rq_cache *cc = centre_cache(types[ti][0], types[ti][1], H, d, 1, 64);
            rq_cache *cp = centre_cache(types[ti][0], types[ti][1], H, d, 0, 64);
            if (!cc || !cp) {
                rq_cache_free(cc), rq_cache_free(cp);
                continue;
            }
            if (basis) { /* a diagonal basis with two ranges: A(k − μ) is stored */
                float *A = calloc(2 * (size_t)d * d, sizeof(float));
                const size_t start[2] = {0, 256};
                for (int i = 0; i < d; i++) A[i * d + i] = 1.0f + 0.5f * (i % 3), A[d * d + i * d + i] = 2.0f - 0.25f * (i % 5);
                for (int h = 0; h < H; h++) {
                    CHECK_OK(rq_cache_set_key_basis(cc, 0, h, 2, start, A));
                    CHECK_OK(rq_cache_set_key_basis(cp, 0, h, 2, start, A));
                }
                free(A);
            }
            CHECK_OK(rq_cache_append(cc, 0, k, v, 1)); /* the sink alone, then the rest: μ from 1..64 */
            CHECK_OK(rq_cache_append(cc, 0, k + vec, v + vec, n - 1));
            CHECK_OK(rq_cache_append(cp, 0, k, v, n));
            CHECK_OK(rq_cache_attention(cc, 0, q, nq, n_ctx, &p, oc));
            CHECK_OK(rq_cache_attention_ref(cc, 0, q, nq, n_ctx, &p, orf));
            CHECK_OK(rq_cache_attention(cp, 0, q, nq, n_ctx, &p, op));
            const double e_ref = rel_err(oc, orf, no), e_c = rel_err(oc, ox, no), e_p = rel_err(op, ox, no);
            TEST_NOTE("K %s / V %s%s: fused vs reference %.2g; vs exact: centred %.4f, plain %.4f", types[ti][0],
                      types[ti][1], basis ? " + basis" : "", e_ref, e_c, e_p);
            CHECK(e_ref < ATTN_TOL, "%s/%s: fused vs reference %g", types[ti][0], types[ti][1], e_ref);
            CHECK(e_c < e_p, "%s/%s: centring did not help: %g vs %g", types[ti][0], types[ti][1], e_c, e_p);
            /* n_ctx = 1: the sink alone, exact in fp16 — the output is v0 */
            for (int x = 0; x < d; x++)
                CHECK(fabsf(oc[x] - rq_f16_to_f32(rq_f32_to_f16(v[x]))) < 1e-6f, "sink output[%d] %g vs %g", x,
                      (double)oc[x], (double)v[x]);
            rq_cache_free(cc), rq_cache_free(cp);
        }
    rq_cache_free(cx);
    free(k), free(v), free(q), free(oc), free(orf), free(op), free(ox);
}

/* μ is fixed by the first append past position 0 (from its positions
 * 1..window): splitting that append elsewhere changes nothing after it;
 * token-by-token appends fix μ from position 1 alone and still match the
 * reference; forks inherit μ, truncation keeps it, truncation to 0 clears
 * it; save/load restores it; bits/value counts μ and the sink. */
static void test_centre_sequences(void) {
    const int H = 2, d = 64, G = 2, Hq = H * G;
    const size_t n = 300, vec = (size_t)H * d;
    rq_rng r;
    rq_rng_seed(&r, 13);
    float *k = malloc(sizeof(float) * n * vec), *v = malloc(sizeof(float) * n * vec);
    model_like_keys(&r, k, n, H, d);
    for (size_t i = 0; i < n * vec; i++) v[i] = (float)rq_rng_gauss(&r);
    float q[4 * 64], o1[4 * 64], o2[4 * 64], o3[4 * 64];
    for (int i = 0; i < Hq * d; i++) q[i] = (float)rq_rng_gauss(&r) * 0.3f;
    rq_attn_params p = {.n_q_heads = Hq, .scale = 0};
    rq_cache *a = centre_cache("turbo3", "turbo3", H, d, 1, 32), *b = centre_cache("turbo3", "turbo3", H, d, 1, 32);
    if (!a || !b) goto out;
    /* one append vs [0, 1..99], [100..): the same μ (positions 1..64), the same bytes */
    CHECK_OK(rq_cache_append(a, 0, k, v, n));
    CHECK_OK(rq_cache_append(b, 0, k, v, 100));
    CHECK_OK(rq_cache_append(b, 0, k + 100 * vec, v + 100 * vec, n - 100));
    CHECK_OK(rq_cache_attention(a, 0, q, 1, NULL, &p, o1));
    CHECK_OK(rq_cache_attention(b, 0, q, 1, NULL, &p, o2));
    CHECK(!memcmp(o1, o2, sizeof(float) * (size_t)Hq * d), "split append changed the output");
    /* fork: the child attends as the parent; truncation keeps μ: re-append = same */
    CHECK_OK(rq_cache_seq_fork(a, 0, 5));
    CHECK_OK(rq_cache_seq_attention(a, 5, 0, q, 1, NULL, &p, o2));
    CHECK(!memcmp(o1, o2, sizeof(float) * (size_t)Hq * d), "fork changed the output");
    CHECK_OK(rq_cache_seq_truncate(a, 5, 10));
    CHECK_OK(rq_cache_seq_append(a, 5, 0, k + 10 * vec, v + 10 * vec, n - 10));
    CHECK_OK(rq_cache_seq_attention(a, 5, 0, q, 1, NULL, &p, o2));
    CHECK(!memcmp(o1, o2, sizeof(float) * (size_t)Hq * d), "truncate + re-append changed the output");
    /* truncate to 1 (μ kept), then the rest: the same too */
    CHECK_OK(rq_cache_seq_truncate(a, 5, 1));
    CHECK_OK(rq_cache_seq_append(a, 5, 0, k + vec, v + vec, n - 1));
    CHECK_OK(rq_cache_seq_attention(a, 5, 0, q, 1, NULL, &p, o2));
    CHECK(!memcmp(o1, o2, sizeof(float) * (size_t)Hq * d), "truncate to 1 + re-append changed the output");
    /* save/load (every sequence) into a fresh centred cache: the same bits */
    size_t nb = 0;
    CHECK_OK(rq_cache_seq_save_mem(a, RQ_SEQ_ALL, NULL, 0, &nb));
    uint8_t *buf = malloc(nb);
    CHECK_OK(rq_cache_seq_save_mem(a, RQ_SEQ_ALL, buf, nb, &nb));
    rq_cache *c = centre_cache("turbo3", "turbo3", H, d, 1, 32), *plain = centre_cache("turbo3", "turbo3", H, d, 0, 32);
    if (c && plain) {
        CHECK_OK(rq_cache_seq_remove(c, 0));
        CHECK_OK(rq_cache_seq_load_mem(c, RQ_SEQ_ALL, buf, nb));
        CHECK_OK(rq_cache_seq_attention(c, 5, 0, q, 1, NULL, &p, o2));
        CHECK(!memcmp(o1, o2, sizeof(float) * (size_t)Hq * d), "save/load changed the output");
        CHECK_OK(rq_cache_seq_remove(plain, 0));
        CHECK(rq_cache_seq_load_mem(plain, RQ_SEQ_ALL, buf, nb) == RQ_ERR_FORMAT, "a centred file in a plain cache");
        /* a flipped byte of μ: the centring state's CRC refuses it (header,
         * 2 records, then layer 0 of sequence 0: CRC, μ) */
        const size_t at = 116 + 8 + (8 + 24 + 4) + 4 + 3;
        buf[at] ^= 0x40;
        CHECK(rq_cache_seq_load_mem(plain, 9, buf, nb) != RQ_OK, "corrupted file loaded");
        rq_cache *c2 = centre_cache("turbo3", "turbo3", H, d, 1, 32);
        if (c2) {
            CHECK_OK(rq_cache_seq_remove(c2, 0));
            CHECK(rq_cache_seq_load_mem(c2, RQ_SEQ_ALL, buf, nb) == RQ_ERR_FORMAT, "flipped μ byte loaded: %s",
                  rq_last_error());
            rq_cache_free(c2);
        }
    }
    free(buf);
    rq_cache_free(c), rq_cache_free(plain);
    /* truncation to 0 clears μ: b re-filled token by token fixes μ from position 1 */
    rq_cache_clear(b);
    for (size_t t = 0; t < n; t++) CHECK_OK(rq_cache_append(b, 0, k + t * vec, v + t * vec, 1));
    CHECK_OK(rq_cache_attention(b, 0, q, 1, NULL, &p, o2));
    CHECK_OK(rq_cache_attention_ref(b, 0, q, 1, NULL, &p, o3));
    CHECK(rel_err(o2, o3, (size_t)Hq * d) < ATTN_TOL, "token by token: fused vs reference %g",
          rel_err(o2, o3, (size_t)Hq * d));
    CHECK(memcmp(o1, o2, sizeof(float) * (size_t)Hq * d), "μ from position 1 alone gave the same output");
    /* bits/value: blocks + μ, k0, v0, σ (3·d + 1 fp16 per layer and head): (24 + 8/d)/n_ctx more */
    rq_cache *pl = centre_cache("turbo3", "turbo3", H, d, 0, 32);
    if (pl) {
        const double bc = rq_cache_bits_per_value(a, 512), bp = rq_cache_bits_per_value(pl, 512);
        CHECK_NEAR(bc - bp, (24.0 + 8.0 / d) / 512, 1e-12);
        CHECK_NEAR(bp, 8.0 * (double)rq_cache_bytes_per_token(pl) / (2.0 * H * d), 1e-12);
        CHECK(rq_cache_bits_per_value(a, 0) == 0 && rq_cache_bits_per_value(NULL, 5) == 0, "0 for nothing");
    }
    rq_cache_free(pl);
out:
    rq_cache_free(a), rq_cache_free(b);
    free(k), free(v);
}

/* Determinism: the saved bytes of a centred cache (μ, the sink, every
 * block) are the same at every SIMD level. */
static void test_centre_simd_bytes(void) {
    const rq_simd_level was = rq__simd_level();
    const rq_simd_level levels[] = {RQ_SIMD_SCALAR, RQ_SIMD_AVX2, RQ_SIMD_AVX512};
    const int H = 2, d = 64;
    const size_t n = 200, vec = (size_t)H * d;
    rq_rng r;
    rq_rng_seed(&r, 17);
    float *k = malloc(sizeof(float) * n * vec), *v = malloc(sizeof(float) * n * vec);
    model_like_keys(&r, k, n, H, d);
    for (size_t i = 0; i < n * vec; i++) v[i] = (float)rq_rng_gauss(&r);
    uint8_t *first = NULL;
    size_t first_n = 0;
    for (int li = 0; li < 3; li++) {
        if (rq__simd_force(levels[li]) != levels[li]) continue;
        rq_cache *c = centre_cache("turbo4", "turbo2", H, d, 1, 64);
        if (!c) continue;
        CHECK_OK(rq_cache_append(c, 0, k, v, 70));
        CHECK_OK(rq_cache_append(c, 0, k + 70 * vec, v + 70 * vec, n - 70));
        size_t nb = 0;
        CHECK_OK(rq_cache_seq_save_mem(c, 0, NULL, 0, &nb));
        uint8_t *buf = malloc(nb);
        CHECK_OK(rq_cache_seq_save_mem(c, 0, buf, nb, &nb));
        if (!first) first = buf, first_n = nb;
        else {
            CHECK(nb == first_n && !memcmp(buf, first, nb), "%s: saved bytes differ", rq__simd_level_name(levels[li]));
            free(buf);
        }
        rq_cache_free(c);
    }
    rq__simd_force(was);
    free(first), free(k), free(v);
}

static void test_centre_bad_args(void) {
    rq_cache_config c = rq_cache_config_default();
    c.head_dim = 64, c.centre_keys = 2;
    rq_cache *cache = NULL;
    CHECK(rq_cache_init(&cache, &c) == RQ_ERR_INVALID_ARG && !cache, "centre_keys = 2 accepted");
    c.centre_keys = 1, c.centre_window = -1;
    CHECK(rq_cache_init(&cache, &c) == RQ_ERR_INVALID_ARG && !cache, "centre_window = -1 accepted");
    c.centre_window = 0;
    CHECK_OK(rq_cache_init(&cache, &c));
    if (!cache) return;
    float k[2 * 64], v[2 * 64];
    for (int i = 0; i < 128; i++) k[i] = v[i] = 0.5f;
    k[3] = 70000.0f; /* the fp16 sink cannot hold it */
    CHECK(rq_cache_append(cache, 0, k, v, 2) == RQ_ERR_RANGE, "a sink beyond fp16 accepted");
    CHECK(rq_cache_n_tokens(cache, 0) == 0, "a refused append stored tokens");
    k[3] = 0.5f, v[64 + 5] = NAN;
    CHECK(rq_cache_append(cache, 0, k, v, 2) == RQ_ERR_NONFINITE, "NaN accepted");
    v[64 + 5] = 0.5f, k[64 + 7] = INFINITY; /* μ from an Inf key */
    CHECK(rq_cache_append(cache, 0, k, v, 2) == RQ_ERR_NONFINITE, "Inf key accepted");
    k[64 + 7] = 0.5f;
    CHECK_OK(rq_cache_append(cache, 0, k, v, 2));
    rq_cache_free(cache);
}

/* ---- per-layer K/V types (rq_cache_config.layer_type_k/v) ------------------ */
/* Each layer attends exactly as a one-layer cache of its types (the same
 * seeds: the same rotations and bytes); bytes and bits count each layer's
 * own blocks; the pool's byte budget holds pages of different sizes; save
 * and load keep every layer's types and refuse other ones. */
static void test_layer_types(void) {
    enum { L = 4, H = 2, d = 64, G = 2 };
    static const char *const tk[L] = {"turbo2", "turbo4", "q8_0", NULL}, *const tv[L] = {NULL, "turbo2", "q4_0", "turbo5"};
    rq_cache_config cfg = rq_cache_config_default();
    cfg.n_layers = L, cfg.n_kv_heads = H, cfg.head_dim = d, cfg.page_tokens = 16, cfg.centre_keys = 1;
    cfg.layer_type_k = tk, cfg.layer_type_v = tv; /* defaults turbo3/turbo3 */
    rq_cache *c = NULL;
    CHECK_OK(rq_cache_init(&c, &cfg));
    if (!c) return;
    const size_t n = 100, vec = (size_t)H * d;
    rq_rng r;
    rq_rng_seed(&r, 21);
    float *k = malloc(sizeof(float) * n * vec), *v = malloc(sizeof(float) * n * vec);
    model_like_keys(&r, k, n, H, d);
    for (size_t i = 0; i < n * vec; i++) v[i] = (float)rq_rng_gauss(&r);
    float q[H * G * d], o1[H * G * d], o2[H * G * d];
    for (int i = 0; i < H * G * d; i++) q[i] = (float)rq_rng_gauss(&r) * 0.3f;
    rq_attn_params p = {.n_q_heads = H * G, .scale = 0};
    size_t bpt = 0;
    for (int l = 0; l < L; l++) CHECK_OK(rq_cache_append(c, l, k, v, n));
    for (int l = 0; l < L; l++) {
        const char *K = tk[l] ? tk[l] : "turbo3", *V = tv[l] ? tv[l] : "turbo3";
        CHECK(!strcmp(rq_type_name_of(rq_cache_layer_quantizer(c, l, 0)), K) &&
                  !strcmp(rq_type_name_of(rq_cache_layer_quantizer(c, l, 1)), V),
              "layer %d types", l);
        rq_cache *one = centre_cache(K, V, H, d, 1, 16);
        if (!one) continue;
        CHECK_OK(rq_cache_append(one, 0, k, v, n));
        CHECK_OK(rq_cache_attention(c, l, q, 1, NULL, &p, o1));
        CHECK_OK(rq_cache_attention(one, 0, q, 1, NULL, &p, o2));
        CHECK(!memcmp(o1, o2, sizeof o1), "layer %d (%s/%s) differs from a one-layer cache", l, K, V);
        bpt += rq_cache_bytes_per_token(one);
        rq_cache_free(one);
    }
    CHECK(rq_cache_bytes_per_token(c) == bpt, "bytes per token %zu, layers sum to %zu", rq_cache_bytes_per_token(c), bpt);
    CHECK(rq_cache_bytes_used(c) == n * bpt, "bytes used %zu", rq_cache_bytes_used(c));
    CHECK_NEAR(rq_cache_bits_per_value(c, 512), (512.0 * 8 * (double)bpt + L * 8.0 * (3 * d + 1) * H * 2) / (512.0 * L * H * d * 2),
               1e-12);
    /* save/load: the same bits; a cache of other per-layer types refuses the file */
    size_t nb = 0;
    CHECK_OK(rq_cache_seq_save_mem(c, 0, NULL, 0, &nb));
    uint8_t *buf = malloc(nb);
    CHECK_OK(rq_cache_seq_save_mem(c, 0, buf, nb, &nb));
    CHECK_OK(rq_cache_seq_load_mem(c, 3, buf, nb));
    CHECK_OK(rq_cache_seq_attention(c, 3, 2, q, 1, NULL, &p, o2));
    CHECK_OK(rq_cache_attention(c, 2, q, 1, NULL, &p, o1));
    CHECK(!memcmp(o1, o2, sizeof o1), "save/load changed layer 2");
    static const char *const tk2[L] = {"turbo2", "turbo4", "q8_0", "turbo2"};
    rq_cache_config cfg2 = cfg;
    cfg2.layer_type_k = tk2;
    rq_cache *c2 = NULL;
    CHECK_OK(rq_cache_init(&c2, &cfg2));
    if (c2) {
        CHECK(rq_cache_seq_load_mem(c2, 5, buf, nb) == RQ_ERR_FORMAT, "other layer types loaded");
        CHECK(strstr(rq_last_error(), "layer 3") != NULL, "message: %s", rq_last_error());
    }
    rq_cache_free(c2);
    free(buf);
    /* a byte budget of 6 pages of the largest size: pages of every size
     * draw on it, and an append past it is refused whole */
    cfg.max_bytes = 6 * rq_cache_page_bytes(c);
    rq_cache *b = NULL;
    CHECK_OK(rq_cache_init(&b, &cfg));
    if (b) {
        rq_status st = RQ_OK;
        size_t appended = 0;
        while (!st && appended < 400) {
            for (int l = 0; l < L && !st; l++) st = rq_cache_append(b, l, k, v, 10);
            appended += 10;
        }
        CHECK(st == RQ_ERR_NOMEM, "the budget never ran out: %s", rq_status_str(st));
        CHECK(rq_cache_bytes_allocated(b) <= cfg.max_bytes + 4096, "allocated %zu over %zu", rq_cache_bytes_allocated(b),
              cfg.max_bytes);
        CHECK(rq_cache_pages_in_use(b) > 6, "only %zu pages: smaller pages should fit more", rq_cache_pages_in_use(b));
        rq_cache_clear(b);
        CHECK(rq_cache_pages_in_use(b) == 0, "pages in use after clear");
        for (int l = 0; l < L; l++) CHECK_OK(rq_cache_append(b, l, k, v, 20)); /* free pages are reused */
    }
    rq_cache_free(b);
    /* a bad per-layer name */
    static const char *const bad[L] = {NULL, "turbo9", NULL, NULL};
    cfg.layer_type_k = bad, cfg.max_bytes = 0;
    rq_cache *x = NULL;
    CHECK(rq_cache_init(&x, &cfg) == RQ_ERR_UNKNOWN_TYPE && !x, "turbo9 accepted");
    CHECK(strstr(rq_last_error(), "layer_type_k[1]") != NULL, "message: %s", rq_last_error());
    rq_cache_free(c);
    free(k), free(v);
}

/* ---- the bits budget (rq_kv_alloc) ------------------------------------------ */
/* On random convex costs (w·4^-b, as distortion falls with bits) the choice
 * fits the budget, is within 2% of the brute-force optimum over every
 * choice, never costs more with more budget, and beats the uniform choice
 * of the same bits; bad inputs are refused. */
static void test_kv_alloc(void) {
    enum { L = 4, NK = 3, NV = 3 };
    static const char *const tk[NK] = {"turbo2", "turbo3", "turbo4"}, *const tv[NV] = {"turbo1", "turbo2", "turbo3"};
    const double bk[NK] = {2.25, 3.25, 4.25}, bv[NV] = {1.25, 2.25, 3.25};
    double ck[L * NK], cv[L * NV];
    rq_rng r;
    rq_rng_seed(&r, 3);
    for (int trial = 0; trial < 20; trial++) {
        for (int l = 0; l < L; l++) {
            const double wk = 0.2 + rq_rng_uniform(&r), wv = 0.2 + rq_rng_uniform(&r);
            for (int i = 0; i < NK; i++) ck[l * NK + i] = wk * pow(4.0, -bk[i]) * (0.8 + 0.4 * rq_rng_uniform(&r));
            for (int i = 0; i < NV; i++) cv[l * NV + i] = wv * pow(4.0, -bv[i]) * (0.8 + 0.4 * rq_rng_uniform(&r));
        }
        rq_kv_alloc_problem pb = {L, 64, NK, NV, tk, tv, ck, cv, 0.01};
        double prev = INFINITY;
        for (double B = 1.8; B <= 3.8; B += 0.25) {
            int chk[L], chv[L];
            double bits = 0, cost = 0;
            CHECK_OK(rq_kv_alloc(&pb, B, chk, chv, &bits, &cost));
            CHECK(bits <= B + 1e-9, "budget %.2f: %.4f bits", B, bits);
            /* brute force over all 3^8 choices */
            double opt = INFINITY;
            for (int code = 0; code < 6561; code++) {
                int x = code;
                double b = 0, c = 0;
                for (int l = 0; l < L; l++) {
                    const int a = x % 3, e = (x / 3) % 3;
                    x /= 9;
                    b += bk[a] + bv[e], c += ck[l * NK + a] + cv[l * NV + e];
                }
                if (b / (2.0 * L) + 0.01 <= B + 1e-9 && c < opt) opt = c;
            }
            CHECK(cost <= opt * 1.02 + 1e-15, "trial %d, budget %.2f: cost %g, optimum %g", trial, B, cost, opt);
            CHECK(cost <= prev + 1e-15, "more budget cost more: %g after %g", cost, prev);
            prev = cost;
        }
    }
    /* bad inputs */
    rq_kv_alloc_problem pb = {L, 64, NK, NV, tk, tv, ck, cv, 0.0};
    int chk[L], chv[L];
    CHECK(rq_kv_alloc(&pb, 1.5, chk, chv, NULL, NULL) == RQ_ERR_RANGE, "a budget below the smallest choice");
    CHECK(rq_kv_alloc(NULL, 3, chk, chv, NULL, NULL) == RQ_ERR_INVALID_ARG, "NULL problem");
    CHECK(rq_kv_alloc(&pb, NAN, chk, chv, NULL, NULL) == RQ_ERR_INVALID_ARG, "NaN budget");
    ck[5] = NAN;
    CHECK(rq_kv_alloc(&pb, 3, chk, chv, NULL, NULL) == RQ_ERR_NONFINITE, "NaN cost");
    ck[5] = 0.1;
    static const char *const bad[NK] = {"turbo2", "nope", "turbo4"};
    pb.types_k = bad;
    CHECK(rq_kv_alloc(&pb, 3, chk, chv, NULL, NULL) == RQ_ERR_UNKNOWN_TYPE, "unknown type");
}

/* k8 keys (1-byte norms relative to the per-head σ set with μ): refused
 * without centring and as values; fused (float and int8 scores) vs the
 * reference and vs the exact output as good as the fp16-normed type; the
 * same keys ×1000 append without clamps (σ scales with them); keys far
 * from / at μ are clamped and counted, never fail; the v2 file is refused. */
static void test_k8_keys(void) {
    const int H = 2, d = 64, G = 3, Hq = H * G;
    const size_t n = 400, vec = (size_t)H * d;
    rq_cache *bad = NULL;
    rq_cache_config cfg = rq_cache_config_default();
    cfg.n_layers = 1, cfg.n_kv_heads = H, cfg.head_dim = d, cfg.type_k = "tcq3k8", cfg.type_v = "turbo3";
    CHECK(rq_cache_init(&bad, &cfg) == RQ_ERR_UNSUPPORTED && !bad && strstr(rq_last_error(), "centre_keys"),
          "k8 keys without centring: '%s'", rq_last_error());
    cfg.centre_keys = 1, cfg.type_k = "turbo3", cfg.type_v = "turbo3k8";
    CHECK(rq_cache_init(&bad, &cfg) == RQ_ERR_UNSUPPORTED && !bad && strstr(rq_last_error(), "key types only"),
          "k8 values: '%s'", rq_last_error());
    rq_rng r;
    rq_rng_seed(&r, 31);
    float *k = malloc(sizeof(float) * n * vec), *v = malloc(sizeof(float) * n * vec), *kb = malloc(sizeof(float) * n * vec);
    model_like_keys(&r, k, n, H, d);
    for (size_t i = 0; i < n * vec; i++) v[i] = (float)rq_rng_gauss(&r), kb[i] = k[i] * 1000.0f;
    const size_t nq = 3, no = nq * (size_t)Hq * d;
    float *q = malloc(sizeof(float) * no), *o = malloc(sizeof(float) * no), *orf = malloc(sizeof(float) * no),
          *ox = malloc(sizeof(float) * no), *o16 = malloc(sizeof(float) * no), *ob = malloc(sizeof(float) * no),
          *qb = malloc(sizeof(float) * no);
    for (size_t i = 0; i < no; i++) q[i] = (float)rq_rng_gauss(&r) * 0.3f, qb[i] = q[i] / 1000.0f;
    const size_t n_ctx[3] = {1, 150, 400};
    rq_attn_params p = {.n_q_heads = Hq, .scale = 0};
    rq_cache *cx = centre_cache("f32", "f32", H, d, 0, 64);
    if (cx) {
        CHECK_OK(rq_cache_append(cx, 0, k, v, n));
        CHECK_OK(rq_cache_attention_ref(cx, 0, q, nq, n_ctx, &p, ox));
    }
    static const char *const types[][3] = {{"tcq3k8", "tcq3n8", "tcq3"}, {"turbo3k8", "turbo3n8", "turbo3"},
                                           {"tcq5k8", "tcq2n8", "tcq5"}, {"turbo2k8", "turbo4n8", "turbo2"}};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (int i8 = 0; i8 < 2; i8++) {
            rq_cache_config c = rq_cache_config_default();
            c.n_layers = 1, c.n_kv_heads = H, c.head_dim = d, c.centre_keys = 1, c.page_tokens = 64, c.int8_scores = i8;
            c.type_k = types[ti][0], c.type_v = types[ti][1];
            rq_cache *ck = NULL, *c16 = NULL, *cb = NULL;
            CHECK_OK(rq_cache_init(&ck, &c));
            CHECK_OK(rq_cache_init(&cb, &c));
            c.type_k = types[ti][2];
            CHECK_OK(rq_cache_init(&c16, &c));
            if (!ck || !c16 || !cb) goto next;
            CHECK_OK(rq_cache_append(ck, 0, k, v, 1)); /* the sink alone, then the rest */
            CHECK_OK(rq_cache_append(ck, 0, k + vec, v + vec, n - 1));
            CHECK_OK(rq_cache_append(c16, 0, k, v, n));
            CHECK_OK(rq_cache_append(cb, 0, kb, v, n));
            CHECK(rq_cache_key_clamps(ck, NULL) == 0 && rq_cache_key_clamps(cb, NULL) == 0, "%s: clamps %llu / %llu",
                  types[ti][0], (unsigned long long)rq_cache_key_clamps(ck, NULL),
                  (unsigned long long)rq_cache_key_clamps(cb, NULL));
            CHECK_OK(rq_cache_attention(ck, 0, q, nq, n_ctx, &p, o));
            CHECK_OK(rq_cache_attention_ref(ck, 0, q, nq, n_ctx, &p, orf));
            CHECK_OK(rq_cache_attention(c16, 0, q, nq, n_ctx, &p, o16));
            CHECK_OK(rq_cache_attention(cb, 0, qb, nq, n_ctx, &p, ob));
            const double e_ref = rel_err(o, orf, no), e_k = rel_err(o, ox, no), e_16 = rel_err(o16, ox, no),
                         e_b = rel_err(ob, o, no);
            TEST_NOTE("K %s / V %s%s: fused vs reference %.2g; vs exact %.4f (K %s: %.4f); keys x1000 vs x1 %.2g",
                      types[ti][0], types[ti][1], i8 ? " int8" : "", e_ref, e_k, types[ti][2], e_16, e_b);
            CHECK(e_ref < (i8 ? 0.05 : ATTN_TOL), "%s: fused vs reference %g", types[ti][0], e_ref);
            CHECK(e_k < 1.15 * e_16 + 1e-3, "%s: k8 error %g vs fp16-normed %g", types[ti][0], e_k, e_16);
            CHECK(e_b < 0.02, "%s: keys x1000 (σ x1000) %g off", types[ti][0], e_b);
            for (int x = 0; x < d; x++) /* n_ctx = 1: the sink alone */
                CHECK(fabsf(o[x] - rq_f16_to_f32(rq_f32_to_f16(v[x]))) < 1e-6f, "sink output[%d]", x);
            if (ti == 0 && !i8) { /* clamps: far from μ (high), at μ + tiny (low); the append never fails */
                float kk[2 * 64 * 2], vv[2 * 64 * 2];
                for (size_t i = 0; i < 2 * vec; i++) kk[i] = k[vec + i % vec], vv[i] = v[i % vec];
                for (int x = 0; x < d; x++) kk[x] = k[vec + x] + 60.0f * (x % 2 ? 1.0f : -1.0f); /* ≈ 60·8 from μ */
                const size_t before = rq_cache_n_tokens(ck, 0);
                CHECK_OK(rq_cache_append(ck, 0, kk, vv, 2));
                uint64_t hi = 0, all = rq_cache_key_clamps(ck, &hi);
                CHECK(rq_cache_n_tokens(ck, 0) == before + 2 && all >= 1 && hi >= 1, "clamps %llu (high %llu)",
                      (unsigned long long)all, (unsigned long long)hi);
                /* the file: a round trip keeps σ; version 2 is refused */
                size_t need = 0, got = 0;
                CHECK_OK(rq_cache_seq_save_mem(ck, 0, NULL, 0, &need));
                uint8_t *buf = malloc(need);
                CHECK_OK(rq_cache_seq_save_mem(ck, 0, buf, need, &got));
                rq_cache *cl = NULL;
                c.type_k = types[ti][0];
                CHECK_OK(rq_cache_init(&cl, &c));
                if (cl) {
                    float *o2 = malloc(sizeof(float) * no);
                    CHECK_OK(rq_cache_seq_remove(cl, 0));
                    CHECK_OK(rq_cache_seq_load_mem(cl, 0, buf, got));
                    const size_t nc2[3] = {1, 150, before + 2};
                    CHECK_OK(rq_cache_attention(ck, 0, q, nq, nc2, &p, o));
                    CHECK_OK(rq_cache_attention(cl, 0, q, nq, nc2, &p, o2));
                    CHECK(!memcmp(o, o2, sizeof(float) * no), "save/load changed the output");
                    free(o2);
                    CHECK_OK(rq_cache_seq_remove(cl, 0));
                    buf[8] = 2; /* the file version */
                    CHECK(rq_cache_seq_load_mem(cl, 0, buf, got) == RQ_ERR_FORMAT, "a version 2 file loaded");
                    rq_cache_free(cl);
                }
                free(buf);
            }
        next:
            rq_cache_free(ck), rq_cache_free(c16), rq_cache_free(cb);
        }
    rq_cache_free(cx);
    free(k), free(v), free(kb), free(q), free(o), free(orf), free(ox), free(o16), free(ob), free(qb);
}

const rq_test tests_centre[] = {
    {"centre_f32_softmax_invariant", test_centre_f32_softmax_invariant},
    {"centre_quantized", test_centre_quantized},
    {"centre_sequences", test_centre_sequences},
    {"centre_simd_bytes", test_centre_simd_bytes},
    {"centre_bad_args", test_centre_bad_args},
    {"layer_types", test_layer_types},
    {"kv_alloc", test_kv_alloc},
    {"centre_k8_keys", test_k8_keys},
    {NULL, NULL},
};
