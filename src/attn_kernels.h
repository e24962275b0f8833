/*
 * attn_kernels.h — the inner loops of fused decode attention, one table per
 * SIMD level (scalar reference in attn_kernels.c; AVX2/AVX-512 in
 * src/simd/attn_*.c, tested against the reference in tests/test_attention.c).
 *
 * Each works on one packed field of one token's block (docs/FORMAT.md):
 *   dot_*  returns Σ_j q_j · x_j  of the field's values x
 *   acc_*  does    acc_j += w · x_j
 * For codes, x_j = cent[code_j] (the caller multiplies by the block's norm);
 * for signs, x_j = ±1; for f16/f32/q8_0/q4_0, x_j is the stored value.
 */
#ifndef RQ_ATTN_KERNELS_H
#define RQ_ATTN_KERNELS_H

#include "internal.h"

typedef struct {
    const char *name;
    float (*dot_codes)(const float *q, const uint8_t *codes, int d, int bits, const float *cent);
    void (*acc_codes)(float *acc, float w, const uint8_t *codes, int d, int bits, const float *cent);
    float (*dot_signs)(const float *q, const uint8_t *signs, int d);
    void (*acc_signs)(float *acc, float w, const uint8_t *signs, int d);
    float (*dot_f32)(const float *q, const uint8_t *x, int d);
    void (*acc_f32)(float *acc, float w, const uint8_t *x, int d);
    float (*dot_f16)(const float *q, const uint8_t *x, int d);
    void (*acc_f16)(float *acc, float w, const uint8_t *x, int d);
    float (*dot_q8_0)(const float *q, const uint8_t *x, int d); /* d % 32 == 0 */
    void (*acc_q8_0)(float *acc, float w, const uint8_t *x, int d);
    float (*dot_q4_0)(const float *q, const uint8_t *x, int d);
    void (*acc_q4_0)(float *acc, float w, const uint8_t *x, int d);
} rq_attn_kernels;

extern const rq_attn_kernels rq__attn_ref;
#ifndef RQ_NO_SIMD
extern const rq_attn_kernels rq__attn_avx2;
extern const rq_attn_kernels rq__attn_avx512;
#endif
/* The table for the process's SIMD level (rq__simd_level()). */
const rq_attn_kernels *rq__attn_kernels(void);
/* The table for a given level (falls back to the best available below it). */
const rq_attn_kernels *rq__attn_kernels_for(rq_simd_level level);

#endif
