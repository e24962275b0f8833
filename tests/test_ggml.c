/*
 * test_ggml.c — ggml weight formats (model/ggml.c): the type table, f16
 * conversion (every half exhaustively, rounding against its neighbours),
 * hand-built blocks whose expected values are worked out from the layout by
 * hand (real_model.md §3a), a round-to-nearest reference quantizer per type
 * with error bounds, the matmul against a double-precision product, and the
 * determinism contract: rqm_matmul equals rqm_matmul_ref bit for bit for
 * every type, thread count, odd row count and SIMD level. Last, the real
 * SmolLM2 weights when present (make model).
 */
#include "test.h"

#include "../model/ggml.h"
#include "../model/gguf.h"
#include "../model/llama.h"
#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* ---- little helpers ----------------------------------------------------------- */
static void put_half(uint8_t *p, float f) {
    uint16_t h = rqm_f32_to_f16(f);
    p[0] = (uint8_t)h, p[1] = (uint8_t)(h >> 8);
}
static float half_at(const uint8_t *p) { return rqm_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The SIMD levels this CPU and build offer, lowest first. */
static int simd_levels(rq_simd_level *out) {
    int n = 0;
    for (int l = RQ_SIMD_SCALAR; l <= (int)rq__simd_cpu_level(); l++) out[n++] = (rq_simd_level)l;
    return n;
}

/* ---- type table ------------------------------------------------------------------- */
static void test_type_table(void) {
    static const struct {
        rqm_ggml_type t;
        const char *name;
        size_t elems, bytes;
        int dequant;
    } want[] = {
        {RQM_GGML_F32, "f32", 1, 4, 1},       {RQM_GGML_F16, "f16", 1, 2, 1},
        {RQM_GGML_Q4_0, "q4_0", 32, 18, 1},   {RQM_GGML_Q4_1, "q4_1", 32, 20, 1},
        {RQM_GGML_Q5_0, "q5_0", 32, 22, 1},   {RQM_GGML_Q5_1, "q5_1", 32, 24, 1},
        {RQM_GGML_Q8_0, "q8_0", 32, 34, 1},   {RQM_GGML_Q8_1, "q8_1", 32, 36, 0},
        {RQM_GGML_Q2_K, "q2_K", 256, 84, 0},  {RQM_GGML_Q3_K, "q3_K", 256, 110, 0},
        {RQM_GGML_Q4_K, "q4_K", 256, 144, 1}, {RQM_GGML_Q5_K, "q5_K", 256, 176, 1},
        {RQM_GGML_Q6_K, "q6_K", 256, 210, 1}, {RQM_GGML_Q8_K, "q8_K", 256, 292, 0},
        {RQM_GGML_BF16, "bf16", 1, 2, 1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        rqm_ggml_type t = want[i].t;
        CHECK(rqm_ggml_block_elems(t) == want[i].elems && rqm_ggml_block_bytes(t) == want[i].bytes, "%s sizes",
              want[i].name);
        CHECK(!strcmp(rqm_ggml_type_name(t), want[i].name), "%s name", want[i].name);
        CHECK(rqm_ggml_can_dequant(t) == want[i].dequant, "%s dequantizer", want[i].name);
    }
    const int unknown[] = {4, 5, 16, 29, 31, -1, 1000};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        rqm_ggml_type t = (rqm_ggml_type)unknown[i];
        CHECK(!rqm_ggml_block_elems(t) && !rqm_ggml_block_bytes(t) && !strcmp(rqm_ggml_type_name(t), "?") &&
                  !rqm_ggml_can_dequant(t),
              "type %d unknown", unknown[i]);
    }
    CHECK(rqm_ggml_row_bytes(RQM_GGML_Q4_1, 576) == 360, "q4_1 row of 576");
    CHECK(rqm_ggml_row_bytes(RQM_GGML_Q8_0, 576) == 612, "q8_0 row of 576");
    CHECK(rqm_ggml_row_bytes(RQM_GGML_Q6_K, 512) == 420, "q6_K row of 512");
    CHECK(rqm_ggml_row_bytes(RQM_GGML_Q4_1, 33) == 0, "partial block");
    CHECK(rqm_ggml_row_bytes(RQM_GGML_Q4_K, 576) == 0, "576 is not whole super-blocks");
    CHECK(rqm_ggml_row_bytes((rqm_ggml_type)4, 32) == 0, "unknown type");
    float out[32];
    uint8_t blk[36] = {0};
    CHECK(rqm_dequant_row(RQM_GGML_Q8_0, blk, out, 31) == RQ_ERR_SHAPE, "31 q8_0 elements");
    CHECK(rqm_dequant_row(RQM_GGML_Q8_1, blk, out, 32) == RQ_ERR_UNSUPPORTED, "q8_1 has no dequantizer");
    CHECK(rqm_dequant_row((rqm_ggml_type)4, blk, out, 32) == RQ_ERR_UNSUPPORTED, "unknown type");
}

/* ---- f16 ------------------------------------------------------------------------------ */
static double half_value(uint16_t h) {
    int e = h >> 10 & 31, m = h & 1023;
    double v = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
    return h & 0x8000 ? -v : v;
}

static void test_f16(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536 && bad < 5; h++) {
        float f = rqm_f16_to_f32((uint16_t)h);
        int e = h >> 10 & 31, m = h & 1023;
        if (e == 31 && m) {
            uint32_t want = (h & 0x8000u) << 16 | 0x7fc00000u | (uint32_t)m << 13;
            if (f32_bits(f) != want) {
                bad++;
                CHECK(0, "NaN %04x -> %08x, want %08x (quiet, payload kept)", h, f32_bits(f), want);
            }
            continue;
        }
        double want = e == 31 ? (h & 0x8000 ? -INFINITY : INFINITY) : half_value((uint16_t)h);
        if ((double)f != want || !signbit(f) != !(h & 0x8000)) {
            bad++;
            CHECK(0, "%04x -> %.9g, want %.9g", h, f, want);
        }
        if (rqm_f32_to_f16(f) != h) {
            bad++;
            CHECK(0, "%04x does not round-trip (%04x)", h, rqm_f32_to_f16(f));
        }
    }
    CHECK(rqm_f16_to_f32(0x0001) == 0x1p-24f && rqm_f16_to_f32(0x03ff) == 1023 * 0x1p-24f, "subnormals");
    CHECK(rqm_f16_to_f32(0x0400) == 0x1p-14f && rqm_f16_to_f32(0x7bff) == 65504.0f, "normal range");
    CHECK(rqm_f16_to_f32(0xc000) == -2.0f && isinf(rqm_f16_to_f32(0xfc00)) && rqm_f16_to_f32(0xfc00) < 0, "sign");

    /* f32 → f16 rounding: ties to even, overflow, underflow */
    CHECK(rqm_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00, "tie rounds down to even");
    CHECK(rqm_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02, "tie rounds up to even");
    CHECK(rqm_f32_to_f16(65519.0f) == 0x7bff && rqm_f32_to_f16(65520.0f) == 0x7c00, "overflow at 65520");
    CHECK(rqm_f32_to_f16(-1e10f) == 0xfc00 && rqm_f32_to_f16(INFINITY) == 0x7c00, "infinities");
    CHECK(rqm_f32_to_f16(0x1p-25f) == 0 && rqm_f32_to_f16(3 * 0x1p-25f) == 2, "subnormal ties to even");
    CHECK(rqm_f32_to_f16(0x1p-25f * 1.0001f) == 1 && rqm_f32_to_f16(-0.0f) == 0x8000, "smallest, -0");
    CHECK(rqm_f32_to_f16(0x1p-14f - 0x1p-26f) == 0x0400, "rounds up into the normal range");
    uint16_t hn = rqm_f32_to_f16(NAN);
    CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff), "NaN stays NaN (%04x)", hn);

    rq_rng rng;
    rq_rng_seed(&rng, 7);
    for (int i = 0; i < 20000; i++) {
        /* log-uniform over the half range, either sign */
        double mag = ldexp(1.0 + rq_rng_uniform(&rng), (int)(rq_rng_uniform(&rng) * 42) - 26);
        float f = (float)(rq_rng_uniform(&rng) < 0.5 ? -mag : mag);
        if (fabsf(f) >= 65504.0f) continue;
        uint16_t h = rqm_f32_to_f16(f);
        double err = fabs(half_value(h) - f);
        uint16_t mag_h = h & 0x7fff;
        for (int dlt = -1; dlt <= 1; dlt += 2) {
            int nb = mag_h + dlt;
            if (nb < 0 || nb > 0x7bff) continue;
            double e2 = fabs(half_value((uint16_t)((h & 0x8000) | nb)) - f);
            if (e2 < err || (e2 == err && (mag_h & 1))) {
                CHECK(0, "%.9g -> %04x is not the nearest-even half", f, h);
                i = 1 << 30;
                break;
            }
        }
    }
}

/* ---- reference quantizers (round to nearest; not ggml's search) ------------------------
 * Each writes whole blocks for n values and fills bound[i] with the largest
 * error element i may have: half a step plus the part of the block's range
 * its grid cannot reach (clamping). */
typedef void (*quant_fn)(const float *x, uint8_t *dst, size_t n, float *bound);

static void minmax(const float *x, int n, float *lo, float *hi) {
    *lo = *hi = x[0];
    for (int i = 1; i < n; i++) *lo = x[i] < *lo ? x[i] : *lo, *hi = x[i] > *hi ? x[i] : *hi;
}

/* Symmetric types: x ≈ d·(q − zero), q ∈ [0, n_levels). */
static void quant_sym(const float *x, uint8_t *dst, size_t n, float *bound, int bits) {
    int zero = 1 << (bits - 1), bytes = bits == 4 ? 18 : 22;
    for (size_t b = 0; b < n / 32; b++, x += 32, dst += bytes, bound += 32) {
        float lo, hi;
        minmax(x, 32, &lo, &hi);
        float amax = fmaxf(-lo, hi);
        put_half(dst, amax / (float)(zero - 1));
        float d = half_at(dst);
        uint8_t *qs = dst + (bits == 4 ? 2 : 6);
        uint32_t qh = 0;
        memset(qs, 0, 16);
        for (int j = 0; j < 32; j++) {
            int q = d > 0 ? clampi((int)lroundf(x[j] / d) + zero, 0, 2 * zero - 1) : zero;
            qs[j % 16] |= (uint8_t)((q & 15) << (j < 16 ? 0 : 4));
            qh |= (uint32_t)(q >> 4 & 1) << j;
            bound[j] = 0.5f * d * 1.0001f + 1e-7f * amax;
        }
        if (bits == 5) dst[2] = (uint8_t)qh, dst[3] = (uint8_t)(qh >> 8), dst[4] = (uint8_t)(qh >> 16),
                       dst[5] = (uint8_t)(qh >> 24);
    }
}
static void quant_q4_0(const float *x, uint8_t *d, size_t n, float *bd) { quant_sym(x, d, n, bd, 4); }
static void quant_q5_0(const float *x, uint8_t *d, size_t n, float *bd) { quant_sym(x, d, n, bd, 5); }

/* Affine types: x ≈ d·q + m, q ∈ [0, 2^bits). */
static void quant_affine(const float *x, uint8_t *dst, size_t n, float *bound, int bits) {
    int top = (1 << bits) - 1, bytes = bits == 4 ? 20 : 24;
    for (size_t b = 0; b < n / 32; b++, x += 32, dst += bytes, bound += 32) {
        float lo, hi;
        minmax(x, 32, &lo, &hi);
        put_half(dst, (hi - lo) / (float)top);
        put_half(dst + 2, lo);
        float d = half_at(dst), m = half_at(dst + 2);
        uint8_t *qs = dst + (bits == 4 ? 4 : 8);
        uint32_t qh = 0;
        memset(qs, 0, 16);
        for (int j = 0; j < 32; j++) {
            int q = d > 0 ? clampi((int)lroundf((x[j] - m) / d), 0, top) : 0;
            qs[j % 16] |= (uint8_t)((q & 15) << (j < 16 ? 0 : 4));
            qh |= (uint32_t)(q >> 4 & 1) << j;
            float reach_lo = m, reach_hi = m + d * (float)top;
            bound[j] = 0.5f * d * 1.0001f + fmaxf(0, reach_lo - x[j]) + fmaxf(0, x[j] - reach_hi) +
                       1e-6f * (fabsf(lo) + fabsf(hi));
        }
        if (bits == 5) dst[4] = (uint8_t)qh, dst[5] = (uint8_t)(qh >> 8), dst[6] = (uint8_t)(qh >> 16),
                       dst[7] = (uint8_t)(qh >> 24);
    }
}
static void quant_q4_1(const float *x, uint8_t *d, size_t n, float *bd) { quant_affine(x, d, n, bd, 4); }
static void quant_q5_1(const float *x, uint8_t *d, size_t n, float *bd) { quant_affine(x, d, n, bd, 5); }

static void quant_q8_0(const float *x, uint8_t *dst, size_t n, float *bound) {
    for (size_t b = 0; b < n / 32; b++, x += 32, dst += 34, bound += 32) {
        float lo, hi;
        minmax(x, 32, &lo, &hi);
        float amax = fmaxf(-lo, hi);
        put_half(dst, amax / 127);
        float d = half_at(dst);
        for (int j = 0; j < 32; j++) {
            dst[2 + j] = (uint8_t)(int8_t)(d > 0 ? clampi((int)lroundf(x[j] / d), -128, 127) : 0);
            bound[j] = 0.5f * d * 1.0001f + 1e-7f * amax;
        }
    }
}

/* Q4_K / Q5_K: 8 sub-blocks of 32, x ≈ (d·sc)·q − dmin·m with 6-bit sc, m. */
static void pack_scales_k(uint8_t *s12, const int *sc, const int *m) {
    for (int j = 0; j < 4; j++) {
        s12[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        s12[j + 4] = (uint8_t)((m[j] & 63) | (m[j + 4] >> 4) << 6);
        s12[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

static void quant_k(const float *x, uint8_t *dst, size_t n, float *bound, int bits) {
    int top = (1 << bits) - 1, bytes = bits == 4 ? 144 : 176;
    for (size_t b = 0; b < n / 256; b++, x += 256, dst += bytes, bound += 256) {
        float step[8], mn[8], max_step = 0, max_mn = 0;
        for (int j = 0; j < 8; j++) {
            float lo, hi;
            minmax(x + 32 * j, 32, &lo, &hi);
            lo = fminf(lo, 0); /* the format stores −min ≥ 0 */
            step[j] = (hi - lo) / (float)top, mn[j] = -lo;
            max_step = fmaxf(max_step, step[j]), max_mn = fmaxf(max_mn, mn[j]);
        }
        put_half(dst, max_step / 63);
        put_half(dst + 2, max_mn / 63);
        float d = half_at(dst), dmin = half_at(dst + 2);
        int sc[8], m[8];
        for (int j = 0; j < 8; j++) {
            sc[j] = d > 0 ? clampi((int)lroundf(step[j] / d), 0, 63) : 0;
            m[j] = dmin > 0 ? clampi((int)lroundf(mn[j] / dmin), 0, 63) : 0;
        }
        pack_scales_k(dst + 4, sc, m);
        uint8_t *qh = dst + 16, *qs = dst + (bits == 4 ? 16 : 48);
        memset(dst + 16, 0, (size_t)bytes - 16);
        for (int i = 0; i < 256; i++) {
            int j = i / 32, c = i / 64, hi_half = (i / 32) & 1, l = i % 32;
            float s = d * (float)sc[j], off = dmin * (float)m[j];
            int q = s > 0 ? clampi((int)lroundf((x[i] + off) / s), 0, top) : 0;
            qs[32 * c + l] |= (uint8_t)((q & 15) << (hi_half ? 4 : 0));
            if (bits == 5) qh[l] |= (uint8_t)((q >> 4) << (2 * c + hi_half));
            float reach_lo = -off, reach_hi = s * (float)top - off;
            bound[i] = 0.5f * s * 1.0001f + fmaxf(0, reach_lo - x[i]) + fmaxf(0, x[i] - reach_hi) + 1e-6f * max_mn +
                       1e-6f * fabsf(x[i]);
        }
    }
}
static void quant_q4_k(const float *x, uint8_t *d, size_t n, float *bd) { quant_k(x, d, n, bd, 4); }
static void quant_q5_k(const float *x, uint8_t *d, size_t n, float *bd) { quant_k(x, d, n, bd, 5); }

/* Q6_K: 16 sub-blocks of 16, x ≈ (d·sc)·q, sc int8, q ∈ [−32, 31]. */
static void quant_q6_k(const float *x, uint8_t *dst, size_t n, float *bound) {
    for (size_t b = 0; b < n / 256; b++, x += 256, dst += 210, bound += 256) {
        float amax[16], max_scale = 0;
        for (int s = 0; s < 16; s++) {
            float lo, hi;
            minmax(x + 16 * s, 16, &lo, &hi);
            amax[s] = fmaxf(-lo, hi);
            max_scale = fmaxf(max_scale, amax[s] / 31);
        }
        memset(dst, 0, 210);
        put_half(dst + 208, max_scale / 127);
        float d = half_at(dst + 208);
        int8_t *sc = (int8_t *)(dst + 192);
        for (int s = 0; s < 16; s++) sc[s] = (int8_t)(d > 0 ? clampi((int)lroundf(amax[s] / 31 / d), 0, 127) : 0);
        for (int i = 0; i < 256; i++) {
            int h = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
            float step = d * (float)sc[i / 16];
            int q = step > 0 ? clampi((int)lroundf(x[i] / step), -32, 31) : 0;
            int u = q + 32;
            uint8_t *ql = dst + 64 * h + l + (quarter & 1) * 32;
            *ql |= (uint8_t)((u & 15) << (quarter >= 2 ? 4 : 0));
            dst[128 + 32 * h + l] |= (uint8_t)((u >> 4) << (2 * quarter));
            bound[i] = 0.5f * step * 1.0001f + fmaxf(0, -32 * step - x[i]) + fmaxf(0, x[i] - 31 * step) +
                       1e-6f * fabsf(x[i]);
        }
    }
}

static void quant_f32(const float *x, uint8_t *dst, size_t n, float *bound) {
    memcpy(dst, x, n * 4);
    for (size_t i = 0; i < n; i++) bound[i] = 0;
}

static void quant_f16(const float *x, uint8_t *dst, size_t n, float *bound) {
    for (size_t i = 0; i < n; i++) {
        put_half(dst + 2 * i, x[i]);
        bound[i] = fabsf(x[i]) * 0x1p-11f + 0x1p-25f;
    }
}

static void quant_bf16(const float *x, uint8_t *dst, size_t n, float *bound) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = f32_bits(x[i]);
        u = (u + 0x7fffu + (u >> 16 & 1)) >> 16; /* nearest even */
        dst[2 * i] = (uint8_t)u, dst[2 * i + 1] = (uint8_t)(u >> 8);
        bound[i] = fabsf(x[i]) * 0x1p-8f;
    }
}

typedef struct {
    rqm_ggml_type type;
    quant_fn quant;
    double max_rel_rms; /* RMS error / RMS value on Gaussian data, with margin */
} qcase;

static const qcase QCASES[] = {
    {RQM_GGML_F32, quant_f32, 0},        {RQM_GGML_F16, quant_f16, 4e-4},   {RQM_GGML_BF16, quant_bf16, 3e-3},
    {RQM_GGML_Q4_0, quant_q4_0, 0.15},   {RQM_GGML_Q4_1, quant_q4_1, 0.12}, {RQM_GGML_Q5_0, quant_q5_0, 0.07},
    {RQM_GGML_Q5_1, quant_q5_1, 0.06},   {RQM_GGML_Q8_0, quant_q8_0, 0.01}, {RQM_GGML_Q4_K, quant_q4_k, 0.15},
    {RQM_GGML_Q5_K, quant_q5_k, 0.08},   {RQM_GGML_Q6_K, quant_q6_k, 0.05},
};
#define N_QCASES (sizeof QCASES / sizeof QCASES[0])

static const qcase *qcase_of(rqm_ggml_type t) {
    for (size_t c = 0; c < N_QCASES; c++)
        if (QCASES[c].type == t) return &QCASES[c];
    return NULL;
}

/* n_out rows of n_in Gaussian values quantized to `type` (malloc'd). */
static uint8_t *random_matrix(const qcase *qc, size_t n_in, size_t n_out, uint64_t seed, rqm_matrix *m) {
    size_t rb = rqm_ggml_row_bytes(qc->type, n_in);
    uint8_t *data = malloc(rb * n_out + 1);
    float *x = malloc(n_in * sizeof *x), *bound = malloc(n_in * sizeof *bound);
    rq_rng rng;
    rq_rng_seed(&rng, seed);
    for (size_t o = 0; o < n_out; o++) {
        test_random_gauss(&rng, x, (int)n_in);
        qc->quant(x, data + o * rb, n_in, bound);
    }
    free(x), free(bound);
    *m = (rqm_matrix){qc->type, n_in, n_out, rb, data};
    return data;
}

static void reference_quantizers(void) {
    const size_t n = 1024;
    float *x = malloc(n * 4), *y = malloc(n * 4), *bound = malloc(n * 4);
    uint8_t *blk = malloc(n * 4 + 1);
    rq_rng rng;
    rq_rng_seed(&rng, 11);
    for (size_t c = 0; c < N_QCASES; c++) {
        const qcase *qc = &QCASES[c];
        const char *name = rqm_ggml_type_name(qc->type);
        test_random_gauss(&rng, x, (int)n);
        for (size_t i = 0; i < 64; i++) x[i] *= 30; /* blocks of very different scales */
        x[100] = 0, x[101] = -0.0f;
        qc->quant(x, blk, n, bound);
        CHECK_OK(rqm_dequant_row(qc->type, blk, y, n));
        double se = 0, sx = 0;
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            double e = fabs((double)y[i] - x[i]);
            se += e * e, sx += (double)x[i] * x[i];
            if (!(e <= bound[i]) && bad++ < 3)
                CHECK(0, "%s element %zu: %.7g -> %.7g, error %.3g > bound %.3g", name, i, x[i], y[i], e, bound[i]);
        }
        double rel = sqrt(se / sx);
        CHECK(rel <= qc->max_rel_rms, "%s: relative RMS error %.4g > %.4g", name, rel, qc->max_rel_rms);
        /* a misplaced bit anywhere shows up as an error far above the bound;
         * also make sure the quantizer is not trivially exact */
        if (qc->max_rel_rms > 0) CHECK(rel > qc->max_rel_rms / 100, "%s: error %.3g suspiciously small", name, rel);
    }
    free(x), free(y), free(bound), free(blk);
}

/* ---- hand-built blocks ----------------------------------------------------------------
 * Expected values worked out by hand from the layouts in real_model.md §3a. */
static void known_blocks(void) {
    float y[256];
    uint8_t b[256];

    /* Q4_0: d = 0.5; qs[3] = 0xA5 → element 3 = (5−8)·0.5, element 19 = (10−8)·0.5 */
    memset(b, 0x88, 18);
    put_half(b, 0.5f);
    b[2 + 3] = 0xA5;
    CHECK_OK(rqm_dequant_row(RQM_GGML_Q4_0, b, y, 32));
    CHECK(y[3] == -1.5f && y[19] == 1.0f && y[0] == 0 && y[31] == 0, "q4_0: %g %g", y[3], y[19]);

    /* Q4_1: d = 0.25, m = −1; nibble 0 → the min, qs[15] high nibble 15 → element 31 */
    memset(b, 0, 20);
    put_half(b, 0.25f), put_half(b + 2, -1.0f);
    b[4 + 15] = 0xF0;
    CHECK_OK(rqm_dequant_row(RQM_GGML_Q4_1, b, y, 32));
    CHECK(y[0] == -1.0f && y[15] == -1.0f && y[31] == 2.75f, "q4_1: %g %g", y[0], y[31]);

    /* Q5_0: d = 1; qs[4] = 0x33, qh bit 20 set → element 20 = (3|16)−16 = 3, element 4 = 3−16 */
    memset(b, 0, 22);
    put_half(b, 1.0f);
    b[2 + 2] = 0x10; /* qh bit 20 (byte 2, bit 4) */
    b[6 + 4] = 0x33;
    CHECK_OK(rqm_dequant_row(RQM_GGML_Q5_0, b, y, 32));
    CHECK(y[20] == 3.0f && y[4] == -13.0f && y[0] == -16.0f, "q5_0: %g %g %g", y[20], y[4], y[0]);

    /* Q5_1: d = 2, m = 0.5; qh bit 0 and qs[0] = 0x01 → element 0 = 17·2 + 0.5 */
    memset(b, 0, 24);
    put_half(b, 2.0f), put_half(b + 2, 0.5f);
    b[4] = 0x01, b[8] = 0x01;
    CHECK_OK(rqm_dequant_row(RQM_GGML_Q5_1, b, y, 32));
    CHECK(y[0] == 34.5f && y[16] == 0.5f, "q5_1: %g %g", y[0], y[16]);

    /* Q8_0: d = 2; qs[7] = −128 */
    memset(b, 0, 34);
    put_half(b, 2.0f);
    b[2 + 7] = 0x80, b[2 + 8] = 0x7f;
    CHECK_OK(rqm_dequant_row(RQM_GGML_Q8_0, b, y, 32));
    CHECK(y[7] == -256.0f && y[8] == 254.0f, "q8_0: %g %g", y[7], y[8]);

    /* Q4_K: d = 1/8, dmin = 1/2. Sub-block 1: scales[1] = 0x80|7 (sc 7, spare bits 2),
     * scales[5] = 0x40|9 (m 9, spare bits 1). Sub-block 5 takes its low 4 bits
     * from scales[9] = 0xA3 (sc 3, m 10) and its top 2 from those spare bits:
     * sc5 = 3 | 2<<4 = 35, m5 = 10 | 1<<4 = 26. Element 163 (chunk 2, high
     * nibbles, l = 3) has q = hi4(qs[64+3]) = 7 → (0.125·35)·7 − 0.5·26 = 17.625;
     * element 35 (sub-block 1, l = 3) has q = hi4(qs[3]) = 4 → (0.125·7)·4 − 0.5·9. */
    memset(b, 0, 144);
    put_half(b, 0.125f), put_half(b + 2, 0.5f);
    b[4 + 1] = 0x80 | 7, b[4 + 5] = 0x40 | 9, b[4 + 9] = 0xA3;
    b[16 + 64 + 3] = 0x70, b[16 + 3] = 0x40;
    CHECK_OK(rqm_dequant_row(RQM_GGML_Q4_K, b, y, 256));
    CHECK(y[163] == 17.625f, "q4_K element 163 = %g", y[163]);
    CHECK(y[35] == 3.5f - 4.5f && y[32] == -4.5f, "q4_K element 35 = %g, 32 = %g", y[35], y[32]);
    CHECK(y[131] == 0 && y[0] == 0, "q4_K sub-blocks 4 and 0 have sc = m = 0: %g %g", y[131], y[0]);

    /* Q5_K: the same scales; qh[3] bit 5 (chunk 2, high half) adds 16 to element 163:
     * q = 7 + 16 → (0.125·35)·23 − 13 */
    memset(b, 0, 176);
    put_half(b, 0.125f), put_half(b + 2, 0.5f);
    b[4 + 1] = 0x80 | 7, b[4 + 5] = 0x40 | 9, b[4 + 9] = 0xA3;
    b[16 + 3] = 1 << 5;
    b[48 + 64 + 3] = 0x70;
    CHECK_OK(rqm_dequant_row(RQM_GGML_Q5_K, b, y, 256));
    CHECK(y[163] == 4.375f * 23 - 13, "q5_K element 163 = %g", y[163]);

    /* Q6_K: d = 0.5 (stored last). Element 100 = half 0, quarter 3, l = 4:
     * q = hi4(ql[36]) | ((qh[4] >> 6) & 3) << 4 = 11 | 2<<4 = 43 → 43 − 32 = 11,
     * scale sc[0 + 6] = −3 → (0.5·−3)·11 = −16.5. Element 200 = half 1,
     * quarter 2, l = 8: q = hi4(ql[64+8]) | ((qh[32+8] >> 4) & 3) << 4, scale sc[8+4]. */
    memset(b, 0, 210);
    put_half(b + 208, 0.5f);
    b[36] = 0xB0, b[128 + 4] = 0x80;
    ((int8_t *)(b + 192))[6] = -3;
    b[64 + 8] = 0x50, b[128 + 32 + 8] = 0x30; /* q = 5 | 3<<4 = 53 → 21 */
    ((int8_t *)(b + 192))[12] = 2;
    CHECK_OK(rqm_dequant_row(RQM_GGML_Q6_K, b, y, 256));
    CHECK(y[100] == -16.5f, "q6_K element 100 = %g", y[100]);
    CHECK(y[200] == 21.0f, "q6_K element 200 = %g", y[200]);
    CHECK(y[96] == (0.5f * -3) * -32 && y[0] == 0, "q6_K element 96 = %g (code 0 → −32)", y[96]);

    /* F16 / BF16 rows */
    uint8_t h[4] = {0x00, 0x3c, 0x00, 0xc0};
    CHECK_OK(rqm_dequant_row(RQM_GGML_F16, h, y, 2));
    CHECK(y[0] == 1.0f && y[1] == -2.0f, "f16 row");
    uint8_t bf[4] = {0x80, 0x3f, 0x40, 0xc0};
    CHECK_OK(rqm_dequant_row(RQM_GGML_BF16, bf, y, 2));
    CHECK(y[0] == 1.0f && y[1] == -3.0f, "bf16 row");
}

/* fn at every SIMD level (rqm_dequant_row dispatches on it). */
static void at_every_level(void (*fn)(void)) {
    rq_simd_level levels[3], saved = rq__simd_level();
    int n_levels = simd_levels(levels);
    for (int l = 0; l < n_levels; l++) {
        int before = rq_test_failures;
        rq__simd_force(levels[l]);
        fn();
        if (rq_test_failures != before) TEST_NOTE("(the failures above are at level %s)", rq__simd_level_name(levels[l]));
    }
    rq__simd_force(saved);
}

static void test_known_blocks(void) { at_every_level(known_blocks); }
static void test_reference_quantizers(void) { at_every_level(reference_quantizers); }

/* Random bytes (NaN and subnormal scales included) must dequantize to the
 * same bits at every SIMD level; an odd start address checks unaligned reads.
 * Only NaN payloads may differ: when two NaNs meet (d·q + m with both scales
 * NaN) C leaves open which one an addition returns, and compilers swap the
 * operands of commutative operations. */
static int same_float(float a, float b) { return f32_bits(a) == f32_bits(b) || (isnan(a) && isnan(b)); }

static void test_dequant_simd_parity(void) {
    rq_simd_level levels[3], saved = rq__simd_level();
    int n_levels = simd_levels(levels);
    const size_t n = 65536; /* f16: every half once */
    uint8_t *raw = malloc(4 * n + 1);
    float *ref = malloc(n * 4), *got = malloc(n * 4);
    rq_rng rng;
    rq_rng_seed(&rng, 3);
    for (size_t c = 0; c < N_QCASES; c++) {
        rqm_ggml_type t = QCASES[c].type;
        size_t bytes = rqm_ggml_row_bytes(t, n);
        for (size_t i = 0; i < bytes; i++) raw[1 + i] = (uint8_t)(rq_rng_next(&rng) >> 32);
        if (t == RQM_GGML_F16)
            for (size_t i = 0; i < n; i++) raw[1 + 2 * i] = (uint8_t)i, raw[2 + 2 * i] = (uint8_t)(i >> 8);
        rq__simd_force(RQ_SIMD_SCALAR);
        CHECK_OK(rqm_dequant_row(t, raw + 1, ref, n));
        for (int l = 1; l < n_levels; l++) {
            rq__simd_force(levels[l]);
            CHECK_OK(rqm_dequant_row(t, raw + 1, got, n));
            size_t i = 0;
            while (i < n && same_float(ref[i], got[i])) i++;
            CHECK(i == n, "%s at %s: element %zu %08x != scalar %08x", rqm_ggml_type_name(t),
                  rq__simd_level_name(levels[l]), i, i < n ? f32_bits(got[i]) : 0, i < n ? f32_bits(ref[i]) : 0);
        }
    }
    rq__simd_force(saved);
    free(raw), free(ref), free(got);
}

/* ---- matmul ------------------------------------------------------------------------------ */
/* Row length for a type: less than one span (768 columns, model/ggml.c)
 * and a tail of n mod 32 for the one-element types. */
static size_t test_n_in(rqm_ggml_type t) {
    size_t be = rqm_ggml_block_elems(t);
    return be == 256 ? 768 : be == 32 ? 576 : 300;
}

/* Longer rows: two whole spans plus a partial one (the lane accumulators
 * leave registers between spans), with a tail for the one-element types. */
static size_t test_n_in_long(rqm_ggml_type t) {
    size_t be = rqm_ggml_block_elems(t);
    return be == 256 ? 2048 : be == 32 ? 1600 : 1700;
}

static void test_matmul_vs_double(void) {
    const size_t n_rows = 5, n_out = 37;
    for (size_t c = 0; c < N_QCASES; c++) {
        const qcase *qc = &QCASES[c];
        size_t n_in = test_n_in(qc->type);
        rqm_matrix m;
        uint8_t *data = random_matrix(qc, n_in, n_out, 100 + c, &m);
        float *x = malloc(n_rows * n_in * 4), *w = malloc(n_in * 4), *y = malloc(n_rows * n_out * 4);
        rq_rng rng;
        rq_rng_seed(&rng, 5);
        test_random_gauss(&rng, x, (int)(n_rows * n_in));
        rqm_matmul_ref(&m, x, n_rows, y);
        int bad = 0;
        for (size_t o = 0; o < n_out; o++) {
            CHECK_OK(rqm_matrix_row(&m, o, w));
            for (size_t i = 0; i < n_rows; i++) {
                double s = 0, a = 0;
                for (size_t j = 0; j < n_in; j++) s += (double)w[j] * x[i * n_in + j], a += fabs((double)w[j] * x[i * n_in + j]);
                /* float accumulation over ≤ n/32 + 5 roundings of partial sums ≤ a */
                double tol = 1e-6 * a;
                if (!(fabs(y[i * n_out + o] - s) <= tol) && bad++ < 3)
                    CHECK(0, "%s y[%zu][%zu] = %.9g, double %.9g, tol %.3g", rqm_ggml_type_name(qc->type), i, o,
                          y[i * n_out + o], s, tol);
            }
        }
        free(data), free(x), free(w), free(y);
    }
}

static void test_matmul_parity(void) {
    /* n_rows, n_out, long rows: every remainder of the 4 × 4 register tiles
     * and 8-row weight tiles, part edges, batches past the 32-row tile */
    static const size_t cases[][3] = {{1, 264, 0}, {2, 64, 0},  {3, 100, 0}, {17, 100, 0}, {70, 40, 0},
                                      {5, 43, 0},  {6, 45, 1},  {33, 30, 1}, {4, 7, 1},    {1, 3, 1}};
    static const int threads[] = {1, 2, 3};
    rq_simd_level levels[3], saved = rq__simd_level();
    int n_levels = simd_levels(levels);
    for (size_t c = 0; c < N_QCASES; c++) {
        const qcase *qc = &QCASES[c];
        const char *name = rqm_ggml_type_name(qc->type);
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            size_t n_rows = cases[k][0], n_out = cases[k][1];
            size_t n_in = cases[k][2] ? test_n_in_long(qc->type) : test_n_in(qc->type);
            rqm_matrix m;
            uint8_t *data = random_matrix(qc, n_in, n_out, 200 + c, &m);
            float *x = malloc(n_rows * n_in * 4), *ref = malloc(n_rows * n_out * 4), *y = malloc(n_rows * n_out * 4);
            rq_rng rng;
            rq_rng_seed(&rng, 9 + k);
            test_random_gauss(&rng, x, (int)(n_rows * n_in));
            rqm_matmul_ref(&m, x, n_rows, ref);
            for (int l = 0; l < n_levels; l++) {
                rq__simd_force(levels[l]);
                for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
                    memset(y, 0xff, n_rows * n_out * 4);
                    rqm_matmul(&m, x, n_rows, y, threads[t]);
                    CHECK(!memcmp(y, ref, n_rows * n_out * 4),
                          "%s n_rows %zu n_out %zu n_in %zu %s threads %d differs from ref", name, n_rows, n_out,
                          n_in, rq__simd_level_name(levels[l]), threads[t]);
                }
            }
            free(data), free(x), free(ref), free(y);
        }
    }
    rq__simd_force(saved);
}

/* The summation order documented at rqm_matmul, pinned on values where the
 * usual alternatives give other floats. B = 2^26 has an ulp of 8 (4 just
 * below it), so B + 3 → B and 3 − B → −(B − 4). Lane 0 gets B, 3, −B, 3 in
 * its four accumulators: (B + 3) + (−B + 3) = 4, whereas pairing (a0 + a16)
 * first would give 6. Lanes 4, 2, 6 get B, 3, −B: the documented fold
 * (s0 + s4) + (s2 + s6) = B + (3 − B) = 4, adjacent pairs would give 7. A tail
 * of five 0.5 follows. */
static void test_dot_order(void) {
    enum { N = 64 + 5 };
    const float B = 67108864.0f;
    float w[N] = {0}, x[N], y;
    for (int j = 0; j < N; j++) x[j] = 1;
    w[0] = B, w[8] = 3, w[16] = -B, w[24] = 3;
    w[4] = B, w[2] = 3, w[6] = -B;
    w[32 + 1] = 0.25f; /* second group, lane 1: (s1 + s5) + ... */
    for (int j = 64; j < N; j++) w[j] = 0.5f;
    const float want = 4 + 0.25f + 5 * 0.5f;
    rqm_matrix m = {RQM_GGML_F32, N, 1, N * 4, w};
    rqm_matmul_ref(&m, x, 1, &y);
    CHECK(y == want, "ref %.9g, documented order %.9g", y, want);
    rq_simd_level levels[3], saved = rq__simd_level();
    int n_levels = simd_levels(levels);
    for (int l = 0; l < n_levels; l++) {
        rq__simd_force(levels[l]);
        rqm_matmul(&m, x, 1, &y, 1);
        CHECK(y == want, "%s %.9g, documented order %.9g", rq__simd_level_name(levels[l]), y, want);
    }
    rq__simd_force(saved);
}

typedef struct {
    const rqm_matrix *m;
    const float *x;
    float *y;
    size_t n_rows;
} mm_args;

static void *mm_thread(void *arg) {
    mm_args *a = arg;
    for (int r = 0; r < 5; r++) rqm_matmul(a->m, a->x, a->n_rows, a->y, 2);
    return NULL;
}

/* Two callers share the pool; the pool can be shut down and restarted. */
static void test_matmul_pool(void) {
    const size_t n_in = 576, n_out = 200, n_rows = 9;
    rqm_matrix m;
    uint8_t *data = random_matrix(qcase_of(RQM_GGML_Q4_1), n_in, n_out, 77, &m);
    float *x = malloc(n_rows * n_in * 4), *ref = malloc(n_rows * n_out * 4);
    float *y1 = malloc(n_rows * n_out * 4), *y2 = malloc(n_rows * n_out * 4);
    rq_rng rng;
    rq_rng_seed(&rng, 1);
    test_random_gauss(&rng, x, (int)(n_rows * n_in));
    rqm_matmul_ref(&m, x, n_rows, ref);
    mm_args a1 = {&m, x, y1, n_rows}, a2 = {&m, x, y2, n_rows};
    pthread_t t1, t2;
    int ok1 = !pthread_create(&t1, NULL, mm_thread, &a1), ok2 = !pthread_create(&t2, NULL, mm_thread, &a2);
    if (ok1) pthread_join(t1, NULL);
    if (ok2) pthread_join(t2, NULL);
    CHECK(ok1 && ok2 && !memcmp(y1, ref, n_rows * n_out * 4) && !memcmp(y2, ref, n_rows * n_out * 4),
          "concurrent callers");
    rqm_matmul_shutdown();
    memset(y1, 0, n_rows * n_out * 4);
    rqm_matmul(&m, x, n_rows, y1, 1000); /* more threads than the pool holds: clamped */
    CHECK(!memcmp(y1, ref, n_rows * n_out * 4), "after shutdown, 1000 threads");
    rqm_matmul_shutdown();
    rqm_matmul_shutdown(); /* idempotent */
    free(data), free(x), free(ref), free(y1), free(y2);
}

static void test_matrix_from_tensor(void) {
    uint8_t data[2 * 34] = {0};
    rqm_tensor t = {{"w", 1}, 2, {32, 2, 1, 1}, RQM_GGML_Q8_0, 0, data, sizeof data};
    rqm_matrix m;
    char err[200] = "";
    CHECK_OK(rqm_matrix_from_tensor(&m, &t, 32, 2, err, sizeof err));
    CHECK(m.n_in == 32 && m.n_out == 2 && m.row_bytes == 34 && m.data == data, "matrix fields");
    CHECK(rqm_matrix_from_tensor(&m, &t, 64, 1, err, sizeof err) == RQ_ERR_SHAPE && strstr(err, "'w'"),
          "shape mismatch names the tensor: %s", err);
    t.n_dims = 3, t.ne[2] = 2;
    CHECK(rqm_matrix_from_tensor(&m, &t, 32, 2, err, sizeof err) == RQ_ERR_SHAPE, "3-D tensor");
    t.n_dims = 2, t.ne[2] = 1, t.type = RQM_GGML_Q8_1, t.n_bytes = 72;
    CHECK(rqm_matrix_from_tensor(&m, &t, 32, 2, err, sizeof err) == RQ_ERR_UNSUPPORTED && strstr(err, "q8_1"),
          "type without dequantizer: %s", err);
    t.type = RQM_GGML_Q8_0, t.n_bytes = 34;
    CHECK(rqm_matrix_from_tensor(&m, &t, 32, 2, err, sizeof err) == RQ_ERR_FORMAT, "data too short");
    t.n_bytes = sizeof data;
    CHECK_OK(rqm_matrix_from_tensor(&m, &t, 32, 2, NULL, 0));
    float row[32];
    CHECK(rqm_matrix_row(&m, 2, row) == RQ_ERR_INVALID_ARG, "row out of range");
    data[34] = 0x00, data[35] = 0x3c, data[36 + 31] = 5; /* row 1: d = 1, last element 5 */
    CHECK_OK(rqm_matrix_row(&m, 1, row));
    CHECK(row[31] == 5 && row[0] == 0, "row 1");
}

/* ---- the real model ------------------------------------------------------------------- */
/* the `make model` cache or $RQ_MODEL (model/llama.h) */
static const char *model_path(void) {
    static char path[4096];
    return rqm_default_path(RQM_PATH_MODEL, path, sizeof path);
}

static void test_smollm2_weights(void) {
    const char *path = model_path();
    if (access(path, R_OK) != 0) TEST_SKIP("model not found: run make model");
    rqm_gguf *g = NULL;
    char err[512] = "";
    CHECK_OK(rqm_gguf_open(&g, path, err, sizeof err));
    if (!g) return;
    rqm_matrix k, emb, down;
    CHECK_OK(rqm_matrix_from_tensor(&k, rqm_gguf_tensor(g, "blk.0.attn_k.weight"), 576, 192, err, sizeof err));
    CHECK_OK(rqm_matrix_from_tensor(&down, rqm_gguf_tensor(g, "blk.29.ffn_down.weight"), 1536, 576, err, sizeof err));
    CHECK_OK(rqm_matrix_from_tensor(&emb, rqm_gguf_tensor(g, "token_embd.weight"), 576, 49152, err, sizeof err));
    CHECK(rqm_matrix_from_tensor(&k, rqm_gguf_tensor(g, "blk.0.attn_k.weight"), 576, 576, err, sizeof err) ==
              RQ_ERR_SHAPE,
          "wrong shape");
    /* embedding rows: finite, not all zero, typical magnitude */
    float row[1536];
    double ss = 0;
    int finite = 1;
    for (size_t tok = 0; tok < 49152; tok += 4096) {
        CHECK_OK(rqm_matrix_row(&emb, tok, row));
        for (int j = 0; j < 576; j++) finite &= isfinite(row[j]) != 0, ss += (double)row[j] * row[j];
    }
    double rms = sqrt(ss / (12 * 576));
    CHECK(finite && rms > 1e-3 && rms < 10, "embedding rows finite, rms %.4g", rms);
    /* the products on real weights (batched and one-row paths): every level
     * and thread count gives the reference bits */
    rq_simd_level levels[3], saved = rq__simd_level();
    int n_levels = simd_levels(levels);
    const rqm_matrix *mats[2] = {&down, &k};
    const size_t n_rows_of[2] = {3, 1};
    for (int c = 0; c < 2; c++) {
        const rqm_matrix *m = mats[c];
        size_t n_rows = n_rows_of[c];
        float *x = malloc(n_rows * m->n_in * 4), *ref = malloc(n_rows * m->n_out * 4);
        float *y = malloc(n_rows * m->n_out * 4);
        rq_rng rng;
        rq_rng_seed(&rng, 4);
        test_random_gauss(&rng, x, (int)(n_rows * m->n_in));
        rqm_matmul_ref(m, x, n_rows, ref);
        for (int l = 0; l < n_levels; l++) {
            rq__simd_force(levels[l]);
            for (int t = 1; t <= 2; t++) {
                rqm_matmul(m, x, n_rows, y, t);
                CHECK(!memcmp(y, ref, n_rows * m->n_out * 4), "%s, %zu rows at %s, %d threads",
                      c ? "attn_k" : "ffn_down", n_rows, rq__simd_level_name(levels[l]), t);
            }
        }
        free(x), free(ref), free(y);
    }
    rq__simd_force(saved);
    rqm_gguf_close(g);
}

const rq_test tests_ggml[] = {
    {"ggml_type_table", test_type_table},
    {"ggml_f16", test_f16},
    {"ggml_known_blocks", test_known_blocks},
    {"ggml_reference_quantizers", test_reference_quantizers},
    {"ggml_dequant_simd_parity", test_dequant_simd_parity},
    {"ggml_matmul_vs_double", test_matmul_vs_double},
    {"ggml_dot_order", test_dot_order},
    {"ggml_matmul_parity", test_matmul_parity},
    {"ggml_matmul_pool", test_matmul_pool},
    {"ggml_matrix_from_tensor", test_matrix_from_tensor},
    {"ggml_smollm2_weights", test_smollm2_weights},
    {NULL, NULL},
};
