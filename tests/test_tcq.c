/*
 * test_tcq.c — the TCQ types (tcq2..tcq5, src/tcq.h): the shipped LUT's
 * hash, exact recovery of representable vectors, round-trip MSE as a
 * property over random isotropic vectors against the targets,
 * MSE falling with bits, the zero vector, bad blocks, determinism and the
 * decode slot at every SIMD level (and each of AVX-512's two decode ways)
 * against the reference.
 */
#include "test.h"
#include "internal.h"
#include "attn_kernels.h"
#include "tcq.h"

#include <string.h>

static uint64_t fnv1a(const void *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ull;
    return h;
}

/* src/tcq_lut.c is generated (bench/tcq_lut.c): its bytes are part of the
 * format — a changed table changes every decoded TCQ block */
static void test_lut_hash(void) {
    uint64_t h = fnv1a(rq__tcq_lut, sizeof rq__tcq_lut);
    CHECK(h == 0x1b72e7dd19cf7abcull, "rq__tcq_lut hash %016llx changed: regenerated? bump RQ_FORMAT_VERSION if intended",
          (unsigned long long)h);
    for (int k = 0; k < RQ_TCQ_MAX_BITS - RQ_TCQ_MIN_BITS + 1; k++) {
        double m = 0, v = 0;
        int dup = 0;
        for (int s = 0; s < RQ_TCQ_STATES; s++) {
            m += rq__tcq_lut[k][s], v += (double)rq__tcq_lut[k][s] * rq__tcq_lut[k][s];
            for (int u = 0; u < s; u++) dup += rq__tcq_lut[k][u] == rq__tcq_lut[k][s];
        }
        m /= RQ_TCQ_STATES, v = v / RQ_TCQ_STATES - m * m;
        CHECK(fabs(m) < 0.1 && v > 0.7 && v < 1.3, "k=%d: LUT mean %.3f variance %.3f (unit variance expected)",
              k + RQ_TCQ_MIN_BITS, m, v);
        CHECK(dup == 0, "k=%d: %d repeated LUT entries", k + RQ_TCQ_MIN_BITS, dup);
    }
}

/* A vector whose values are exactly a stream's reconstruction is encoded
 * with zero error (the Viterbi search, the traceback and the tail-biting
 * wrap are consistent); the stream is then the same (LUT entries differ). */
static void test_exact_recovery(void) {
    rq_rng r;
    rq_rng_seed(&r, 99);
    int n_ok = 0;
    for (int k = RQ_TCQ_MIN_BITS; k <= RQ_TCQ_MAX_BITS; k++)
        for (int T = 8; T <= 256; T *= 2) {
            const float *lut = rq__tcq_lut[k - RQ_TCQ_MIN_BITS];
            uint8_t s[256 * 5 / 8], s2[256 * 5 / 8];
            float y[256], y2[256];
            for (int i = 0; i < T * k / 8; i++) s[i] = (uint8_t)(rq_rng_uniform(&r) * 256);
            rq__tcq_decode_ref(s, T, k, lut, 1.0f, y);
            for (int t = 0; t < T; t++) CHECK(y[t] == lut[rq__tcq_window(s, T, k, t)], "decode window %d", t);
            rq__tcq_encode_ref(y, T, k, lut, s2);
            rq__tcq_decode_ref(s2, T, k, lut, 1.0f, y2);
            bool same = !memcmp(s, s2, (size_t)T * k / 8) && !memcmp(y, y2, sizeof(float) * (size_t)T);
            CHECK(same, "k=%d T=%d: a representable vector is not recovered exactly", k, T);
            n_ok += same;
        }
    TEST_NOTE("%d (k, T) streams recovered exactly", n_ok);
}

/* mean relative MSE ‖x − x̂‖²/‖x‖² over n random isotropic vectors */
static double rel_mse(const char *type, int d, int n, int norm_correct, uint64_t seed) {
    rq_quant_config cfg = rq_quant_config_default();
    cfg.norm_correct = norm_correct;
    rq_quantizer *q = NULL;
    if (rq_quantizer_init(&q, type, d, &cfg)) return -1;
    float *x = malloc(sizeof(float) * (size_t)n * d), *xh = malloc(sizeof(float) * (size_t)n * d);
    uint8_t *b = malloc(rq_quantizer_bytes_per_vector(q) * (size_t)n);
    rq_rng r;
    rq_rng_seed(&r, seed);
    for (int v = 0; v < n; v++) test_random_gauss(&r, x + (size_t)v * d, d);
    double m = -1;
    if (!rq_quantizer_encode(q, x, b, (size_t)n) && !rq_quantizer_decode(q, b, xh, (size_t)n)) {
        m = 0;
        for (int v = 0; v < n; v++) {
            double e = 0, s = 0;
            for (int i = 0; i < d; i++) {
                double u = (double)x[(size_t)v * d + i], w = u - xh[(size_t)v * d + i];
                e += w * w, s += u * u;
            }
            m += e / s;
        }
        m /= n;
    }
    free(x), free(xh), free(b);
    rq_quantizer_free(q);
    return m;
}

/* the synthetic targets at d = 128: 3 bits ≤ 0.028 (Lloyd-Max
 * 0.0340), 2 bits ≤ 0.095; every width below its Lloyd-Max turbo type */
static void test_mse(void) {
    const int dims[] = {64, 128, 256};
    for (int di = 0; di < 3; di++) {
        int d = dims[di];
        double prev = 1;
        for (int k = 2; k <= 5; k++) {
            char t[8], lm[8];
            snprintf(t, sizeof t, "tcq%d", k);
            snprintf(lm, sizeof lm, "turbo%d", k);
            double m0 = rel_mse(t, d, 300, 0, 11), m1 = rel_mse(t, d, 300, 1, 11), mt = rel_mse(lm, d, 300, 0, 11);
            TEST_NOTE("d=%3d %s: relative MSE %.5f; %s %.5f (%.2fx)", d, t, m0, lm, mt, m0 / mt);
            CHECK(m0 > 0 && m0 < prev, "%s d=%d: MSE %.5f not below the narrower width's %.5f", t, d, m0, prev);
            CHECK(m0 == m1, "%s d=%d: norm_correct changed TCQ (%.6f vs %.6f): TCQ always keeps the norm", t, d, m0, m1);
            CHECK(m0 < (k == 5 ? 0.95 : 0.9) * mt, "%s d=%d: %.5f vs %s %.5f", t, d, m0, lm, mt);
            if (d == 128 && k == 3) CHECK(m0 <= 0.028, "tcq3 d=128: %.5f > 0.028", m0);
            if (d == 128 && k == 2) CHECK(m0 <= 0.095, "tcq2 d=128: %.5f > 0.095", m0);
            prev = m0;
        }
    }
}

/* zero vector → all-zero block → zeros; a NaN/Inf scale is a format error;
 * non-finite input is refused; d the type cannot serve is refused */
static void test_edges(void) {
    rq_quantizer *q = NULL;
    CHECK_OK(rq_quantizer_init(&q, "tcq3", 128, NULL));
    if (!q) return;
    size_t nb = rq_quantizer_bytes_per_vector(q);
    CHECK(nb == 2 + 48, "tcq3 d=128: %zu bytes", nb);
    float x[128] = {0}, y[128];
    uint8_t b[64];
    memset(b, 0xab, sizeof b);
    CHECK_OK(rq_quantizer_encode(q, x, b, 1));
    int nz = 0;
    for (size_t i = 0; i < nb; i++) nz += b[i] != 0;
    CHECK(nz == 0, "zero vector: %d nonzero bytes", nz);
    CHECK_OK(rq_quantizer_decode(q, b, y, 1));
    nz = 0;
    for (int i = 0; i < 128; i++) nz += y[i] != 0;
    CHECK(nz == 0, "zero block decodes to %d nonzero values", nz);
    for (int i = 0; i < 128; i++) x[i] = (float)sin(i);
    CHECK_OK(rq_quantizer_encode(q, x, b, 1));
    b[1] = 0x7e; /* fp16 NaN scale */
    CHECK(rq_quantizer_decode(q, b, y, 1) == RQ_ERR_FORMAT, "NaN scale refused");
    b[0] = 0, b[1] = 0x7c; /* +Inf */
    CHECK(rq_quantizer_decode(q, b, y, 1) == RQ_ERR_FORMAT, "Inf scale refused");
    float dot;
    CHECK(rq_quantizer_dot(q, x, b, 1, &dot) == RQ_ERR_FORMAT, "dot on a bad block refused");
    x[5] = NAN;
    CHECK(rq_quantizer_encode(q, x, b, 1) == RQ_ERR_NONFINITE, "NaN input refused");
    rq_quantizer_free(q);
    const int bad_d[] = {4, 12, 100, 1024};
    for (int i = 0; i < 4; i++) {
        q = NULL;
        CHECK(rq_quantizer_init(&q, "tcq3", bad_d[i], NULL) == RQ_ERR_DIM && !q, "d=%d refused", bad_d[i]);
    }
    CHECK(rq_quantizer_codebook(NULL) == NULL, "no codebook");
}

/* the same bytes at every SIMD level (encode), the same floats from the
 * decode_tcq_n slot as from its reference, runs of blocks included */
static void test_levels(void) {
    const rq_simd_level saved = rq__simd_level(), levels[] = {RQ_SIMD_SCALAR, RQ_SIMD_AVX2, RQ_SIMD_AVX512};
    const int dims[] = {8, 64, 96, 128, 256, 512};
    rq_rng r;
    rq_rng_seed(&r, 5);
    int n_checked = 0;
    for (int k = 2; k <= 5; k++)
        for (int di = 0; di < 6; di++) {
            const int d = dims[di], n = 5;
            char t[8];
            snprintf(t, sizeof t, "tcq%d", k);
            rq_quantizer *q = NULL;
            CHECK_OK(rq_quantizer_init(&q, t, d, NULL));
            if (!q) continue;
            size_t nb = rq_quantizer_bytes_per_vector(q);
            float *x = malloc(sizeof(float) * (size_t)n * d), *y0 = malloc(sizeof(float) * (size_t)n * d),
                  *y1 = malloc(sizeof(float) * (size_t)n * d);
            uint8_t *b0 = malloc(nb * n + RQ_PAGE_SLACK), *b1 = malloc(nb * n + RQ_PAGE_SLACK);
            for (int i = 0; i < n * d; i++) x[i] = (float)rq_rng_gauss(&r) * (i % 7 == 0 ? 3.0f : 1.0f);
            for (int i = 0; i < d; i++) /* ties: a one-hot vector (±1/√d after the rotation), a constant one */
                x[i] = i == 3 ? 1.0f : 0.0f, x[d + i] = 0.25f;
            memset(b0, 0, nb * n + RQ_PAGE_SLACK);
            memset(b1, 0, nb * n + RQ_PAGE_SLACK);
            rq__simd_force(RQ_SIMD_SCALAR);
            CHECK_OK(rq_quantizer_encode(q, x, b0, (size_t)n));
            rq__decode_tcq_n_ref(y0, b0, nb, n, d, k, 2, NULL, rq__quantizer_view(q).cent);
            for (int l = 1; l < 3; l++) {
                if (rq__simd_force(levels[l]) != levels[l]) continue;
                CHECK_OK(rq_quantizer_encode(q, x, b1, (size_t)n));
                CHECK(!memcmp(b0, b1, nb * n), "%s d=%d: %s encode differs", t, d, rq__simd_level_name(levels[l]));
                rq__kernels()->decode_tcq_n(y1, b0, nb, n, d, k, 2, NULL, rq__quantizer_view(q).cent);
                CHECK(!memcmp(y0, y1, sizeof(float) * (size_t)n * d), "%s d=%d: %s decode_tcq_n differs", t, d,
                      rq__simd_level_name(levels[l]));
                n_checked++;
            }
            free(x), free(y0), free(y1), free(b0), free(b1);
            rq_quantizer_free(q);
        }
    rq__simd_force(saved);
    TEST_NOTE("%d (type, d, level) encode/decode pairs bit-identical to scalar", n_checked);
}

/* Every decode kernel the CPU can run (the level slots, and AVX-512's
 * gather and VBMI ways each) against the reference on random streams
 * (every window value, the wrap included) and random finite fp16 scales
 * (signed, subnormal, zero), runs of 1–7 blocks at every d the types allow
 * up to 136 and a few above; each run in a buffer of its exact size, so a
 * kernel reading past the last stream is a sanitizer error. */
static void test_decode_ways(void) {
    typedef void (*decode_fn)(float *, const uint8_t *, size_t, int, int, int, size_t, const float *, const float *);
    decode_fn ways[4];
    const char *names[4];
    int n_ways = 0;
#ifndef RQ_NO_SIMD
    const rq_simd_level cpu = rq__simd_cpu_level();
    if (cpu >= RQ_SIMD_AVX2) ways[n_ways] = rq__decode_tcq_n_avx2, names[n_ways++] = "avx2";
    if (cpu >= RQ_SIMD_AVX512) ways[n_ways] = rq__decode_tcq_n_avx512_gather, names[n_ways++] = "avx512 gather";
    if (cpu >= RQ_SIMD_AVX512 && rq__tcq_has_vbmi())
        ways[n_ways] = rq__decode_tcq_n_avx512_vbmi, names[n_ways++] = "avx512 vbmi";
    if (cpu < RQ_SIMD_AVX512 || !rq__tcq_has_vbmi())
        TEST_NOTE("AVX-512 VBMI decode not available on this CPU: skipped");
#endif
    if (!n_ways) {
        TEST_NOTE("no SIMD decode on this CPU/build: skipped");
        return;
    }
    rq_rng r;
    rq_rng_seed(&r, 23);
    int n_bad = 0, n_runs = 0;
    for (int d = 8; d <= 512; d += d < 136 ? 8 : 56)
        for (int k = 2; k <= 5; k++)
            for (int n = 1; n <= 7; n += 3) {
                /* off 2: the fp16 head; off 1 (odd n): the n8 head, any byte (FORMAT.md §5.2) */
                const size_t off = n % 2 ? 1 : 2, stride = off + (size_t)d * k / 8;
                uint8_t *blk = malloc(stride * n);
                float *y0 = malloc(sizeof(float) * (size_t)n * d), *y1 = malloc(sizeof(float) * (size_t)n * d);
                for (size_t i = 0; i < stride * n; i++) blk[i] = (uint8_t)rq_rng_next(&r);
                for (int b = 0; off == 2 && b < n; b++) { /* a finite fp16 scale: exponent field 0–30 */
                    uint16_t h = (uint16_t)(rq_rng_next(&r) & 0xffff);
                    if ((h & 0x7c00) == 0x7c00) h &= 0x83ff;
                    blk[b * stride] = (uint8_t)h, blk[b * stride + 1] = (uint8_t)(h >> 8);
                }
                const float *lut = rq__tcq_lut[k - RQ_TCQ_MIN_BITS];
                rq__decode_tcq_n_ref(y0, blk, stride, n, d, k, off, off == 1 ? rq__norm8 : NULL, lut);
                for (int w = 0; w < n_ways; w++) {
                    memset(y1, 0xff, sizeof(float) * (size_t)n * d);
                    ways[w](y1, blk, stride, n, d, k, off, off == 1 ? rq__norm8 : NULL, lut);
                    bool same = !memcmp(y0, y1, sizeof(float) * (size_t)n * d);
                    if (!same && n_bad++ < 5)
                        CHECK(same, "%s: d=%d k=%d n=%d differs from the reference", names[w], d, k, n);
                    n_runs++;
                }
                free(blk), free(y0), free(y1);
            }
    CHECK(n_bad == 0, "%d decode runs differ from the reference", n_bad);
    TEST_NOTE("%d (way, d, k, n) decode runs bit-identical to the reference (%d ways)", n_runs, n_ways);
}

const rq_test tests_tcq[] = {
    {"tcq_lut_hash", test_lut_hash},
    {"tcq_exact_recovery", test_exact_recovery},
    {"tcq_mse", test_mse},
    {"tcq_edges", test_edges},
    {"tcq_levels", test_levels},
    {"tcq_decode_ways", test_decode_ways},
    {NULL, NULL},
};
