/*
 * kernels.h — the encode/decode kernel table: one table per SIMD level
 * (xxHash-style dispatch, chosen once; src/simd/dispatch.c).
 *
 *   rq__kernels_ref     the scalar reference, the executable spec (src/quant.c)
 *   rq__kernels_avx2    AVX2 + FMA + F16C              (src/simd/encode_avx2.c)
 *   rq__kernels_avx512  AVX-512 F/BW/VL/DQ             (src/simd/encode_avx512.c)
 *
 * Contract: every kernel of every level returns exactly the bytes and float
 * bits of the reference (docs/FORMAT.md: float arithmetic, no FMA, the fixed
 * summation orders of rotation.c), for every n it accepts; a SIMD kernel
 * calls the reference for shapes it does not cover. tests/test_simd.c checks
 * this at every level the CPU has. quant.c composes the kernels into the
 * encode and decode pipelines once, so the pipeline logic (errors, zero
 * vectors, norm correction, the QJL residual) exists in one place.
 *
 * Packed codes: rq__pack_ref's bitstream (code i at bits [i·b, (i+1)·b));
 * kernels read and write exactly ⌈n·b/8⌉ bytes, never past them.
 */
#ifndef RQ_KERNELS_H
#define RQ_KERNELS_H

#include "internal.h"

typedef struct {
    const char *name;
    /* Σ x_i² in rq__sumsq_ref's order; *finite = no NaN/Inf among the x_i. */
    float (*sumsq_finite)(const float *x, int n, bool *finite);
    float (*sumsq)(const float *x, int n);  /* = rq__sumsq_ref */
    bool (*all_finite)(const float *x, int n);
    /* y = Π (x·s): the reference rounds u_i = x_i·s, then rq_rotation_forward.
     * y = Πᵀ x: rq_rotation_inverse. x == y allowed; any kind, any n. */
    void (*rotate)(const rq_rotation *r, const float *x, float s, float *y);
    void (*rotate_inv)(const rq_rotation *r, const float *x, float *y);
    /* y_i = Σ_j mt[j·n + i] · v_j, summed from +0 in increasing j (the dense
     * rotation with mt = Πᵀ, and Sᵀs for the Gaussian QJL sketch). y ≠ v. */
    void (*matvec_cols)(const float *mt, int n, const float *v, float *y);
    /* out_i = rq__dot_ref(m + i·n, v, n) for i < n_rows (Gaussian S r). */
    void (*matvec_rows)(const float *m, int n_rows, int n, const float *v, float *out);
    /* the same for k vectors v[t·n ..] → out[t·n_rows ..], t < k ≤ 8: each
     * row of m read once for all of them */
    void (*matvec_rows_k)(const float *m, int n_rows, int n, const float *v, int k, float *out);
    /* code_i = #{k : bounds[k] < y_i} (2^bits − 1 ascending bounds), packed. */
    void (*quantize_pack)(const float *y, int n, int bits, const float *bounds, uint8_t *out);
    /* y_i = s · cent[code_i] for packed bits-bit codes. */
    void (*unpack_scale)(const uint8_t *in, int n, int bits, const float *cent, float s, float *y);
    /* bit i = [v_i ≥ 0] (the QJL signs), packed 1 bit per value. */
    void (*pack_signs)(const float *v, int n, uint8_t *out);
    /* Baselines on n finite values (n % 32 == 0 for q8_0/q4_0). Encoders
     * return RQ_ERR_RANGE when an fp16 field would overflow; the bytes
     * written before that are unspecified. */
    rq_status (*f16_encode)(const float *x, int n, uint8_t *out);
    void (*f16_decode)(const uint8_t *in, int n, float *x);
    rq_status (*q8_0_encode)(const float *x, int n, uint8_t *out);
    void (*q8_0_decode)(const uint8_t *in, int n, float *x);
    rq_status (*q4_0_encode)(const float *x, int n, uint8_t *out);
    void (*q4_0_decode)(const uint8_t *in, int n, float *x);
    /* Optional (NULL: none): rq_quantizer_encode of n_vec vectors of an MSE
     * type, fused, for the shapes a level covers; returns false, writing
     * nothing, for the others. Otherwise encodes in order and stops at the
     * first error: *n_done = vectors encoded, *st = RQ_OK or the error of
     * vector *n_done. Same bytes and statuses as the composed pipeline. */
    bool (*encode_mse)(const rq_quantizer *q, const float *x, uint8_t *blk, size_t n_vec, size_t *n_done,
                       rq_status *st);
} rq_kernels;

/* lanes of simd_coef's arrays (rq__block_simd_lanes, inline for kernels) */
static inline int rq__simd_lanes(const rq_rotation *r) { return (r->block * (r->n_dims / r->block) + 47) / 48 * 48; }

/* Input vectors prefetched ahead of the one being encoded: covers DRAM
 * latency when a batch streams from memory (a few KB in flight). */
#define RQ_PREFETCH_VECS 8

extern const rq_kernels rq__kernels_ref;
#ifndef RQ_NO_SIMD
extern const rq_kernels rq__kernels_avx2;
extern const rq_kernels rq__kernels_avx512;
#endif

/* The table of the process's level (rq__simd_level()), or of a given level
 * (clamped to what this build has). */
const rq_kernels *rq__kernels(void);
const rq_kernels *rq__kernels_for(rq_simd_level level);

#endif /* RQ_KERNELS_H */
