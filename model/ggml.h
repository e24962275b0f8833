/* ggml weight formats (model/ggml.c): block sizes, dequantizers and the
 * matrix-vector / matrix-matrix products the forward pass needs.
 * Block layouts: ../shared/research/real_model.md §3 (F32, F16, BF16, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K). Every kernel has a scalar
 * reference; SIMD versions (model/ggml_avx2.c, model/ggml_avx512.c)
 * reproduce it bit for bit, so a model's logits are the same on every SIMD
 * level and thread count. */
#ifndef RQ_MODEL_GGML_H
#define RQ_MODEL_GGML_H

#include <stddef.h>
#include <stdint.h>

#include "ggml_types.h"
#include "gguf.h"

/* 1 if rqm_dequant_row / rqm_matmul serve type t. */
int rqm_ggml_can_dequant(rqm_ggml_type t);

/* IEEE binary16 ↔ binary32. f16→f32 is exact (subnormals, ±inf; a NaN
 * keeps its payload and is made quiet, as F16C does); f32→f16 rounds to
 * nearest even, overflowing to ±inf. */
float rqm_f16_to_f32(uint16_t h);
uint16_t rqm_f32_to_f16(float f);

/* Dequantize n elements (n a multiple of the block size): RQ_ERR_SHAPE if
 * it is not, RQ_ERR_UNSUPPORTED for a type without a dequantizer. */
rq_status rqm_dequant_row(rqm_ggml_type t, const void *src, float *dst, size_t n);

/* A weight matrix W [n_out][n_in] in one ggml type, rows contiguous
 * (tensor ne[0] = n_in, ne[1] = n_out). */
typedef struct {
    rqm_ggml_type type;
    size_t n_in, n_out, row_bytes;
    const void *data;
} rqm_matrix;

/* Fill m from a tensor, checking it is 2-D with the expected shape
 * (n_in, n_out) and a supported type; error message in err. */
rq_status rqm_matrix_from_tensor(rqm_matrix *m, const rqm_tensor *t, size_t n_in, size_t n_out,
                                 char *err, size_t err_len);

/* Y[i][o] = Σ_j W[o][j] · X[i][j] for i < n_rows: X [n_rows][n_in],
 * Y [n_rows][n_out]. Rows of W are split over n_threads threads (each
 * output computed by exactly one thread, in a fixed order, so the result
 * does not depend on n_threads).
 *
 * Summation order (the same in every kernel, so results are bit-identical
 * across thread counts and SIMD levels): element j of the row goes to
 * accumulator lane j mod 32, lane += w·x (a product rounded to float, then
 * a sum; never fused); then lanes are folded as
 *   s[l] = (a[l] + a[l+8]) + (a[l+16] + a[l+24])          (l < 8)
 *   y    = ((s0+s4) + (s2+s6)) + ((s1+s5) + (s3+s7))
 * and the last n_in mod 32 products are added to y one by one.
 *
 * W must have a dequantizer (rqm_matrix_from_tensor checks it). X rows
 * that start on 64-byte boundaries (X from aligned_alloc(64, …) and n_in a
 * multiple of 16) run about 30% faster with AVX-512. Threads come from the
 * library's shared pool (rq_parallel_for), the one the cache's attention
 * uses. Concurrent calls are safe; they take turns on the pool. */
void rqm_matmul(const rqm_matrix *w, const float *x, size_t n_rows, float *y, int n_threads);
/* Scalar reference of the same (same summation order, same bits). */
void rqm_matmul_ref(const rqm_matrix *w, const float *x, size_t n_rows, float *y);
/* Joins the shared pool's threads (rq_threads_shutdown; they restart on demand). */
void rqm_matmul_shutdown(void);

/* Row `row` of W dequantized into dst[n_in] (embedding lookup). */
rq_status rqm_matrix_row(const rqm_matrix *w, size_t row, float *dst);

#endif
