/*
 * ggml.c — ggml weight formats: the type table, scalar dequantizers (the
 * executable spec of each block layout, ../shared/research/real_model.md
 * §3a), and the matrix products of the forward pass.
 *
 * Matmul design. For a tile of TILE_W weight rows × TILE_X activation rows,
 * the weight rows are dequantized PIECE columns (a span) at a time into a
 * stack buffer and multiplied against the same columns of every activation
 * row of the tile, accumulating into 32 lanes per (activation, weight) pair.
 * The SIMD kernels (accum) hold register tiles of lane accumulators — a
 * half (AVX-512) or a quarter (AVX2) of the 32 lanes of several pairs,
 * since each lane is a sum of its own — in registers for the whole span.
 * A span's weights stay in L1, each weight is dequantized once per TILE_X
 * activation rows, and the lane accumulators carry across spans, so the
 * summation order (documented at rqm_matmul in ggml.h) does not depend on
 * the tiling, the thread split or the SIMD level: rqm_matmul_ref, which
 * walks one (row, column) pair at a time, gives the same bits. With one
 * activation row (decode) a dequantized copy would not be reused, so the
 * SIMD levels multiply straight from the quantized rows (dot_rows) — the
 * same floats in the same lanes.
 * Dequantized values are float expressions evaluated without contraction
 * (-ffp-contract=off), e.g. Q4_1 x = (float)(d·q) + m, which the SIMD files
 * repeat with separate multiplies and adds (model/ggml_kernels.h).
 */
#include "ggml.h"

#include "ggml_kernels.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- block layouts (ggml-common.h); fields are read by offset, since
 * blocks in a file or a caller's buffer need not be aligned ---------------- */
#define QK 32   /* elements per block of the 32-element types */
#define QK_K 256 /* elements per K-quant super-block           */

typedef struct { uint16_t d; uint8_t qs[QK / 2]; } blk_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[QK / 2]; } blk_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; } blk_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; } blk_q5_1;
typedef struct { uint16_t d; int8_t qs[QK]; } blk_q8_0;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } blk_q4_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } blk_q5_k;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } blk_q6_k;
_Static_assert(sizeof(blk_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(blk_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(blk_q5_0) == 22, "q5_0 block");
_Static_assert(sizeof(blk_q5_1) == 24, "q5_1 block");
_Static_assert(sizeof(blk_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(blk_q4_k) == 144, "q4_K block");
_Static_assert(sizeof(blk_q5_k) == 176, "q5_K block");
_Static_assert(sizeof(blk_q6_k) == 210, "q6_K block");

/* ---- half precision --------------------------------------------------------- */
float rqm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
    float f;
    if (e == 0x1f) {
        bits = sign | 0x7f800000u | m << 13 | (m ? 0x00400000u : 0);
    } else if (e) {
        bits = sign | (e + 112) << 23 | m << 13; /* rebias 15 → 127 */
    } else {
        f = (float)m * 0x1p-24f; /* subnormal (or zero): m·2^-24, exact */
        memcpy(&bits, &f, 4);
        bits |= sign;
    }
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t rqm_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)(x >> 16 & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | (ax >> 13 & 0x3ffu));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* ≥ 65520 rounds to inf */
    if (ax < 0x38800000u) /* below 2^-14: a subnormal half, in units of 2^-24 */
        return (uint16_t)(sign | (uint16_t)rintf(fabsf(f) * 0x1p24f));
    uint32_t r = ax - 0x38000000u, h = r >> 13, rest = r & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++; /* nearest, ties to even */
    return (uint16_t)(sign | h);
}

static inline float half_at(const uint8_t *p) { return rqm_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* ---- scalar dequantizers: one block at a time ----------------------------- */
static void dq_f32(const uint8_t *s, float *y, size_t nb) { memcpy(y, s, nb * 4); /* little-endian host */ }

static void dq_f16(const uint8_t *s, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) y[i] = half_at(s + 2 * i);
}

static void dq_bf16(const uint8_t *s, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        uint32_t bits = (uint32_t)(s[2 * i] | s[2 * i + 1] << 8) << 16;
        memcpy(&y[i], &bits, 4);
    }
}

static void dq_q4_0(const uint8_t *s, float *y, size_t nb) {
    for (size_t b = 0; b < nb; b++, s += sizeof(blk_q4_0), y += QK) {
        float d = half_at(s);
        const uint8_t *qs = s + offsetof(blk_q4_0, qs);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = d * (float)((qs[j] & 15) - 8);
            y[j + QK / 2] = d * (float)((qs[j] >> 4) - 8);
        }
    }
}

static void dq_q4_1(const uint8_t *s, float *y, size_t nb) {
    for (size_t b = 0; b < nb; b++, s += sizeof(blk_q4_1), y += QK) {
        float d = half_at(s), m = half_at(s + offsetof(blk_q4_1, m));
        const uint8_t *qs = s + offsetof(blk_q4_1, qs);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = d * (float)(qs[j] & 15) + m;
            y[j + QK / 2] = d * (float)(qs[j] >> 4) + m;
        }
    }
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Element j's 5-bit code: its nibble plus bit j of qh as bit 4. */
static inline int q5_code(const uint8_t *qs, uint32_t qh, int j) {
    int nib = j < QK / 2 ? qs[j] & 15 : qs[j - QK / 2] >> 4;
    return nib | (int)(qh >> j & 1) << 4;
}

static void dq_q5_0(const uint8_t *s, float *y, size_t nb) {
    for (size_t b = 0; b < nb; b++, s += sizeof(blk_q5_0), y += QK) {
        float d = half_at(s);
        uint32_t qh = le32(s + offsetof(blk_q5_0, qh));
        const uint8_t *qs = s + offsetof(blk_q5_0, qs);
        for (int j = 0; j < QK; j++) y[j] = d * (float)(q5_code(qs, qh, j) - 16);
    }
}

static void dq_q5_1(const uint8_t *s, float *y, size_t nb) {
    for (size_t b = 0; b < nb; b++, s += sizeof(blk_q5_1), y += QK) {
        float d = half_at(s), m = half_at(s + offsetof(blk_q5_1, m));
        uint32_t qh = le32(s + offsetof(blk_q5_1, qh));
        const uint8_t *qs = s + offsetof(blk_q5_1, qs);
        for (int j = 0; j < QK; j++) y[j] = d * (float)q5_code(qs, qh, j) + m;
    }
}

static void dq_q8_0(const uint8_t *s, float *y, size_t nb) {
    for (size_t b = 0; b < nb; b++, s += sizeof(blk_q8_0), y += QK) {
        float d = half_at(s);
        const uint8_t *qs = s + offsetof(blk_q8_0, qs);
        for (int j = 0; j < QK; j++) y[j] = d * (float)(int8_t)qs[j];
    }
}

/* Q4_K/Q5_K: 6-bit scale and min of sub-block j (0..7) from the 12 bytes:
 * sub-blocks 0-3 in the low 6 bits of bytes 0-3 / 4-7, sub-blocks 4-7 with
 * their low 4 bits in bytes 8-11 and their top 2 bits in the spare top bits
 * of bytes 0-3 / 4-7. */
static inline void k_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0f) | (q[j - 4] >> 6) << 4;
        *m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

/* x = (d·sc)·q − dmin·m, each product rounded to float. */
static void dq_q4_k(const uint8_t *s, float *y, size_t nb) {
    for (size_t b = 0; b < nb; b++, s += sizeof(blk_q4_k), y += QK_K) {
        float d = half_at(s), dmin = half_at(s + offsetof(blk_q4_k, dmin));
        const uint8_t *sc = s + offsetof(blk_q4_k, scales), *qs = s + offsetof(blk_q4_k, qs);
        for (int c = 0; c < 4; c++) {
            int s1, m1, s2, m2;
            k_scale_min(2 * c, sc, &s1, &m1);
            k_scale_min(2 * c + 1, sc, &s2, &m2);
            float d1 = d * (float)s1, n1 = dmin * (float)m1, d2 = d * (float)s2, n2 = dmin * (float)m2;
            for (int l = 0; l < 32; l++) {
                y[64 * c + l] = d1 * (float)(qs[32 * c + l] & 15) - n1;
                y[64 * c + 32 + l] = d2 * (float)(qs[32 * c + l] >> 4) - n2;
            }
        }
    }
}

static void dq_q5_k(const uint8_t *s, float *y, size_t nb) {
    for (size_t b = 0; b < nb; b++, s += sizeof(blk_q5_k), y += QK_K) {
        float d = half_at(s), dmin = half_at(s + offsetof(blk_q5_k, dmin));
        const uint8_t *sc = s + offsetof(blk_q5_k, scales), *qh = s + offsetof(blk_q5_k, qh);
        const uint8_t *qs = s + offsetof(blk_q5_k, qs);
        for (int c = 0; c < 4; c++) {
            int s1, m1, s2, m2;
            k_scale_min(2 * c, sc, &s1, &m1);
            k_scale_min(2 * c + 1, sc, &s2, &m2);
            float d1 = d * (float)s1, n1 = dmin * (float)m1, d2 = d * (float)s2, n2 = dmin * (float)m2;
            for (int l = 0; l < 32; l++) {
                int q1 = (qs[32 * c + l] & 15) | (qh[l] >> (2 * c) & 1) << 4;
                int q2 = (qs[32 * c + l] >> 4) | (qh[l] >> (2 * c + 1) & 1) << 4;
                y[64 * c + l] = d1 * (float)q1 - n1;
                y[64 * c + 32 + l] = d2 * (float)q2 - n2;
            }
        }
    }
}

/* x = (d·scale)·q with q ∈ [−32, 31]; each half of 128 elements takes its
 * low 4 bits from 64 ql bytes (low nibbles: elements 0-63, high: 64-127)
 * and its top 2 bits from 32 qh bytes (bit pairs 0,2,4,6 → quarters 0..3). */
static void dq_q6_k(const uint8_t *s, float *y, size_t nb) {
    for (size_t b = 0; b < nb; b++, s += sizeof(blk_q6_k), y += QK_K) {
        float d = half_at(s + offsetof(blk_q6_k, d));
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = s + offsetof(blk_q6_k, ql) + 64 * h, *qh = s + offsetof(blk_q6_k, qh) + 32 * h;
            const int8_t *sc = (const int8_t *)(s + offsetof(blk_q6_k, scales)) + 8 * h;
            float *yh = y + 128 * h;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 15) | (qh[l] >> 0 & 3) << 4) - 32;
                int q2 = ((ql[l + 32] & 15) | (qh[l] >> 2 & 3) << 4) - 32;
                int q3 = ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32;
                int q4 = ((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) - 32;
                yh[l] = (d * (float)sc[is]) * (float)q1;
                yh[l + 32] = (d * (float)sc[is + 2]) * (float)q2;
                yh[l + 64] = (d * (float)sc[is + 4]) * (float)q3;
                yh[l + 96] = (d * (float)sc[is + 6]) * (float)q4;
            }
        }
    }
}

/* ---- dequantizer table --------------------------------------------------------- */
typedef void (*dequant_fn)(const uint8_t *src, float *dst, size_t n_blocks);

/* The types with a dequantizer; their sizes are model/ggml_types.c's, which
 * the _Static_asserts above pin to the block structs. */
#define N_TYPES 31
static const dequant_fn DEQUANT[N_TYPES] = {
    [RQM_GGML_F32] = dq_f32,   [RQM_GGML_F16] = dq_f16,   [RQM_GGML_Q4_0] = dq_q4_0, [RQM_GGML_Q4_1] = dq_q4_1,
    [RQM_GGML_Q5_0] = dq_q5_0, [RQM_GGML_Q5_1] = dq_q5_1, [RQM_GGML_Q8_0] = dq_q8_0, [RQM_GGML_Q4_K] = dq_q4_k,
    [RQM_GGML_Q5_K] = dq_q5_k, [RQM_GGML_Q6_K] = dq_q6_k, [RQM_GGML_BF16] = dq_bf16,
};

int rqm_ggml_can_dequant(rqm_ggml_type t) { return (unsigned)t < N_TYPES && DEQUANT[t]; }

/* ---- kernel tables ------------------------------------------------------------ */
static void accum_ref(float *acc, const float *w, size_t w_stride, size_t n_w, const float *x, size_t x_stride,
                      size_t n_x, size_t n32);

static void fold_ref(const float *acc, size_t n, float *y);

static void dequant_ref(rqm_ggml_type t, const uint8_t *src, float *dst, size_t n_blocks) {
    DEQUANT[t](src, dst, n_blocks);
}

const rqm_ggml_kernels rqm__ggml_ref = {accum_ref, dequant_ref, 0xffffffffu, fold_ref, NULL, 0};

/* The kernels of the level rq_simd_get() reports (it honours RQ_SIMD and
 * the tests' rq__simd_force). Read once per call, so one product never
 * mixes levels. */
static const rqm_ggml_kernels *kernels_now(void) {
#ifndef RQ_NO_SIMD
    rq_simd_level level = rq_simd_get();
    if (level == RQ_SIMD_AVX512) return &rqm__ggml_avx512;
    if (level == RQ_SIMD_AVX2) return &rqm__ggml_avx2;
#endif
    return &rqm__ggml_ref;
}

static void dequant_blocks(const rqm_ggml_kernels *k, rqm_ggml_type t, const uint8_t *src, float *dst,
                           size_t n_blocks) {
    if (k->dequant_types & RQM_TYPE_BIT(t))
        k->dequant(t, src, dst, n_blocks);
    else
        DEQUANT[t](src, dst, n_blocks);
}

rq_status rqm_dequant_row(rqm_ggml_type t, const void *src, float *dst, size_t n) {
    if (!rqm_ggml_can_dequant(t)) return RQ_ERR_UNSUPPORTED;
    const size_t elems = rqm_ggml_block_elems(t);
    if (n % elems) return RQ_ERR_SHAPE;
    if (!n) return RQ_OK;
    if (!src || !dst) return RQ_ERR_INVALID_ARG;
    dequant_blocks(kernels_now(), t, src, dst, n / elems);
    return RQ_OK;
}

/* ---- matrices --------------------------------------------------------------------- */
rq_status rqm_matrix_from_tensor(rqm_matrix *m, const rqm_tensor *t, size_t n_in, size_t n_out, char *err,
                                 size_t err_len) {
    if (!m || !t) return rqm_say(err, err_len, RQ_ERR_INVALID_ARG, "matrix: NULL argument");
    int nl = (int)t->name.len;
    if (t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != 1 || t->ne[3] != 1)
        return rqm_say(err, err_len, RQ_ERR_SHAPE,
                   "tensor '%.*s' has shape [%llu, %llu, %llu, %llu], expected [%zu, %zu]", nl, t->name.ptr,
                   (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                   (unsigned long long)t->ne[3], n_in, n_out);
    if (!rqm_ggml_can_dequant(t->type))
        return rqm_say(err, err_len, RQ_ERR_UNSUPPORTED, "tensor '%.*s' has type %s (%d), which has no dequantizer", nl,
                   t->name.ptr, rqm_ggml_type_name(t->type), (int)t->type);
    size_t rb = rqm_ggml_row_bytes(t->type, n_in);
    if (!rb || !t->data || t->n_bytes / rb < n_out)
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "tensor '%.*s': data size does not match its shape", nl,
                   t->name.ptr);
    *m = (rqm_matrix){t->type, n_in, n_out, rb, t->data};
    return RQ_OK;
}

rq_status rqm_matrix_row(const rqm_matrix *w, size_t row, float *dst) {
    if (!w || !dst) return RQ_ERR_INVALID_ARG;
    if (row >= w->n_out) return RQ_ERR_INVALID_ARG;
    return rqm_dequant_row(w->type, (const uint8_t *)w->data + row * w->row_bytes, dst, w->n_in);
}

/* ---- the dot-product order ----------------------------------------------------- */
static void accum_ref(float *acc, const float *w, size_t w_stride, size_t n_w, const float *x, size_t x_stride,
                      size_t n_x, size_t n32) {
    for (size_t ix = 0; ix < n_x; ix++) {
        for (size_t iw = 0; iw < n_w; iw++) {
            float *a = acc + (ix * n_w + iw) * RQM_LANES;
            const float *wr = w + iw * w_stride, *xr = x + ix * x_stride;
            for (size_t b = 0; b < n32; b++)
                for (int j = 0; j < RQM_LANES; j++) a[j] = a[j] + wr[RQM_LANES * b + j] * xr[RQM_LANES * b + j];
        }
    }
}

/* The fixed fold of the 32 lanes (the tree an AVX2 horizontal sum takes). */
static float fold_lanes(const float *a) {
    float s[8];
    for (int l = 0; l < 8; l++) s[l] = (a[l] + a[l + 8]) + (a[l + 16] + a[l + 24]);
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

static void fold_ref(const float *acc, size_t n, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = fold_lanes(acc + i * RQM_LANES);
}

/* Columns dequantized per step (a span): a multiple of every block size
 * and of the 32 lanes. The kernels keep a register tile's lane
 * accumulators in registers for a whole span, so they go to memory (acc)
 * once per span. With TILE_W weight rows a span's weights take 24 KB,
 * which stay in L1 next to a few activation rows while all TILE_X
 * activation rows of the tile pass them (each weight dequantized once per
 * TILE_X rows); the SmolLM2 rows (576, 1536) are one or two spans. The
 * reference (rqm_matmul_ref) uses the same span; it only sets where its
 * dequantized piece ends, not the summation order. */
#define PIECE 768
#define TILE_W 8
#define TILE_X 32

typedef struct {
    const rqm_matrix *w;
    const float *x;
    float *y;
    size_t n_rows;
    const rqm_ggml_kernels *k;
} mm_job;

/* Outputs y[*][o0..o1). */
static void matmul_rows(const mm_job *job, size_t o0, size_t o1) {
    const rqm_matrix *w = job->w;
    const rqm_ggml_kernels *k = job->k;
    const size_t n_in = w->n_in, n_out = w->n_out, tail = n_in % RQM_LANES;
    const size_t elems = rqm_ggml_block_elems(w->type), bytes = rqm_ggml_block_bytes(w->type);
    if (job->n_rows == 1 && (k->dot_types & RQM_TYPE_BIT(w->type))) {
        k->dot_rows(w->type, (const uint8_t *)w->data + o0 * w->row_bytes, w->row_bytes, o1 - o0, job->x,
                    n_in / elems, job->y + o0);
        return;
    }
    _Alignas(64) float wbuf[TILE_W * PIECE];
    _Alignas(64) float acc[TILE_X * TILE_W * RQM_LANES];
    for (size_t x0 = 0; x0 < job->n_rows; x0 += TILE_X) {
        size_t nx = job->n_rows - x0 < TILE_X ? job->n_rows - x0 : TILE_X;
        const float *xt = job->x + x0 * n_in;
        for (size_t w0 = o0; w0 < o1; w0 += TILE_W) {
            size_t nw = o1 - w0 < TILE_W ? o1 - w0 : TILE_W, nc = 0;
            memset(acc, 0, nx * nw * RQM_LANES * sizeof *acc);
            for (size_t c0 = 0; c0 < n_in; c0 += PIECE) {
                nc = n_in - c0 < PIECE ? n_in - c0 : PIECE;
                for (size_t iw = 0; iw < nw; iw++) {
                    const uint8_t *src = (const uint8_t *)w->data + (w0 + iw) * w->row_bytes + c0 / elems * bytes;
                    dequant_blocks(k, w->type, src, wbuf + iw * PIECE, nc / elems);
                }
                k->accum(acc, wbuf, PIECE, nw, xt + c0, n_in, nx, nc / RQM_LANES);
            }
            /* wbuf still holds the last piece; its last `tail` columns remain */
            for (size_t ix = 0; ix < nx; ix++) {
                float *yr = job->y + (x0 + ix) * n_out + w0;
                k->fold(acc + ix * nw * RQM_LANES, nw, yr);
                for (size_t iw = 0; iw < nw && tail; iw++) {
                    const float *wt = wbuf + iw * PIECE + nc - tail, *xr = xt + ix * n_in + n_in - tail;
                    for (size_t j = 0; j < tail; j++) yr[iw] = yr[iw] + wt[j] * xr[j];
                }
            }
        }
    }
}

void rqm_matmul_ref(const rqm_matrix *w, const float *x, size_t n_rows, float *y) {
    assert(w && rqm_ggml_can_dequant(w->type));
    const size_t n_in = w->n_in, tail = n_in % RQM_LANES;
    const size_t elems = rqm_ggml_block_elems(w->type), bytes = rqm_ggml_block_bytes(w->type);
    float wbuf[PIECE], acc[RQM_LANES];
    for (size_t i = 0; i < n_rows; i++) {
        for (size_t o = 0; o < w->n_out; o++) {
            size_t nc = 0;
            memset(acc, 0, sizeof acc);
            for (size_t c0 = 0; c0 < n_in; c0 += PIECE) {
                nc = n_in - c0 < PIECE ? n_in - c0 : PIECE;
                const uint8_t *src = (const uint8_t *)w->data + o * w->row_bytes + c0 / elems * bytes;
                DEQUANT[w->type](src, wbuf, nc / elems);
                accum_ref(acc, wbuf, PIECE, 1, x + i * n_in + c0, 0, 1, nc / RQM_LANES);
            }
            float s = fold_lanes(acc);
            for (size_t j = 0; j < tail; j++) s = s + wbuf[nc - tail + j] * x[i * n_in + n_in - tail + j];
            y[i * w->n_out + o] = s;
        }
    }
}

/* ---- threads -------------------------------------------------------------------------
 * Output rows are split into n_parts ranges, run on the library's shared
 * pool (rq_parallel_for, src/threads.c) — the same workers as the cache's
 * attention, so the two never compete for cores. Each output is computed by
 * exactly one part in the fixed order above: the result does not depend on
 * the number of threads or parts. There are up to PARTS_PER_THREAD parts per
 * thread, taken in turn by whichever thread is free: when a worker starts
 * late (the cores are shared with other processes) the others take its
 * share instead of waiting for it to finish a fixed half. */
#define MAX_THREADS 64
#define PARTS_PER_THREAD 4
/* Below this many multiply-adds per part, handing out work costs more than it saves. */
#define MIN_PART_MACS (1u << 15)
#define ROW_ALIGN 16 /* parts start on 16 outputs (a cache line of y) */

typedef struct {
    mm_job job;
    int n_parts;
} mm_parts;

static void part_range(size_t n_out, int n_parts, int p, size_t *o0, size_t *o1) {
    size_t a = n_out * (size_t)p / (size_t)n_parts, b = n_out * (size_t)(p + 1) / (size_t)n_parts;
    a = p == 0 ? 0 : a / ROW_ALIGN * ROW_ALIGN;
    b = p == n_parts - 1 ? n_out : b / ROW_ALIGN * ROW_ALIGN;
    *o0 = a;
    *o1 = b > a ? b : a;
}

static void matmul_part(void *ctx, int p) {
    const mm_parts *mp = ctx;
    size_t o0, o1;
    part_range(mp->job.w->n_out, mp->n_parts, p, &o0, &o1);
    matmul_rows(&mp->job, o0, o1);
}

void rqm_matmul(const rqm_matrix *w, const float *x, size_t n_rows, float *y, int n_threads) {
    assert(w && rqm_ggml_can_dequant(w->type));
    if (!n_rows || !w->n_out) return;
    mm_parts mp = {{w, x, y, n_rows, kernels_now()}, 1};
    double macs = (double)n_rows * (double)w->n_out * (double)w->n_in;
    size_t n_thr = n_threads > 1 ? (size_t)n_threads : 1;
    if (n_thr > MAX_THREADS) n_thr = MAX_THREADS;
    size_t n_parts = n_thr > 1 ? n_thr * PARTS_PER_THREAD : 1;
    if (n_parts > (w->n_out + ROW_ALIGN - 1) / ROW_ALIGN) n_parts = (w->n_out + ROW_ALIGN - 1) / ROW_ALIGN;
    if ((double)n_parts * MIN_PART_MACS > macs)
        n_parts = macs >= 2.0 * MIN_PART_MACS ? (size_t)(macs / MIN_PART_MACS) : 1;
    if (n_thr > n_parts) n_thr = n_parts;
    mp.n_parts = (int)n_parts;
    rq_parallel_for((int)n_thr, (int)n_parts, matmul_part, &mp);
}

void rqm_matmul_shutdown(void) { rq_threads_shutdown(); }
