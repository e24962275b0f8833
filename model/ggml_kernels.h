/* Kernels shared by model/ggml.c (scalar reference, matmul driver) and the
 * per-ISA files (model/ggml_avx2.c, model/ggml_avx512.c). Internal to
 * model/. Every kernel computes exactly the floats of the scalar code: the
 * same products and sums in the same lanes, never fused. */
#ifndef RQ_MODEL_GGML_KERNELS_H
#define RQ_MODEL_GGML_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "ggml.h"

/* Products accumulate into 32 lanes; see rqm_matmul in ggml.h. */
#define RQM_LANES 32

typedef struct {
    /* acc[(ix·n_w + iw)·32 + j] += w[iw·w_stride + 32b + j] · x[ix·x_stride + 32b + j]
     * for every b < n32, j < 32, ix < n_x, iw < n_w — a float product, then a
     * float sum, in increasing b. */
    void (*accum)(float *acc, const float *w, size_t w_stride, size_t n_w, const float *x, size_t x_stride,
                  size_t n_x, size_t n32);
    /* Dequantize n_blocks blocks of type t (bit 1 << t of dequant_types). */
    void (*dequant)(rqm_ggml_type t, const uint8_t *src, float *dst, size_t n_blocks);
    uint32_t dequant_types;
    /* y[i] = the documented fold of the 32 lanes acc[32i .. 32i+31], i < n. */
    void (*fold)(const float *acc, size_t n, float *y);
    /* y[o] = W[o] · x for o < n_rows rows of n_blocks blocks each, straight
     * from the quantized rows (the same floats as dequantize, accum, fold):
     * the one-activation-row case, where a dequantized copy would not be
     * reused. Types: bit 1 << t of dot_types (block sizes ≥ 32, no tail). */
    void (*dot_rows)(rqm_ggml_type t, const uint8_t *w, size_t row_bytes, size_t n_rows, const float *x,
                     size_t n_blocks, float *y);
    uint32_t dot_types;
} rqm_ggml_kernels;

#define RQM_TYPE_BIT(t) (1u << (t))

extern const rqm_ggml_kernels rqm__ggml_ref;
#ifndef RQ_NO_SIMD
extern const rqm_ggml_kernels rqm__ggml_avx2;
extern const rqm_ggml_kernels rqm__ggml_avx512;
/* The AVX2 dequantizers, which the AVX-512 table reuses for the types it
 * does not specialise. */
void rqm__dequant_avx2(rqm_ggml_type t, const uint8_t *src, float *dst, size_t n_blocks);
#define RQM_AVX2_DEQUANT_TYPES                                                                              \
    (RQM_TYPE_BIT(RQM_GGML_F16) | RQM_TYPE_BIT(RQM_GGML_Q4_0) | RQM_TYPE_BIT(RQM_GGML_Q4_1) |            \
     RQM_TYPE_BIT(RQM_GGML_Q5_0) | RQM_TYPE_BIT(RQM_GGML_Q5_1) | RQM_TYPE_BIT(RQM_GGML_Q8_0) |           \
     RQM_TYPE_BIT(RQM_GGML_Q4_K) | RQM_TYPE_BIT(RQM_GGML_Q6_K))
#endif

#endif
