/*
 * attn_kernels.h — the attention slots of the kernel table (simd/kernels.h:
 * decode_codes, decode_signs, decode_mse_n, scores, accum, exp_sum, the
 * value-block decoders, and the optional fused scores_mse_n / accum_mse_n,
 * AVX-512 only). The scalar reference is attn_kernels.c; AVX2 and AVX-512
 * are src/simd/attn_*.c, tested against it in tests/test_attention.c.
 *
 * Per token, attention decodes each packed field of the block once into an
 * L1-resident float vector (codes: scale·cent[code_j]; signs: ±scale; value
 * blocks: their values), then scores it against every query head of the
 * GQA group (`scores`) and accumulates values (`accum`): the unpack cost is
 * paid once per token, not once per query head.
 * The SIMD code readers may read up to RQ_PAGE_SLACK bytes past a field,
 * so every buffer they read needs that much readable tail padding.
 */
#ifndef RQ_ATTN_KERNELS_H
#define RQ_ATTN_KERNELS_H

#include "simd/kernels.h"

#define RQ_PAGE_SLACK 64

/* The int8 key tile of decode_mse8_n / scores_i8 (simd/kernels.h): rows
 * of dp = d rounded up to 16 bytes; tokens in groups of 4, a group's 4·dp
 * bytes interleaved by 16-byte pieces (piece c of its token u at c·64 +
 * u·16), so that one 64-byte vector holds 16 dimensions of 4 tokens and a
 * query piece broadcast to the 4 lanes scores all of them. */
static inline size_t rq__i8_dp(int d) { return ((size_t)d + 15) & ~(size_t)15; }
static inline size_t rq__i8_at(int d, int t, int j) {
    return (size_t)(t / 4) * 4 * rq__i8_dp(d) + (size_t)(j / 16) * 64 + (size_t)(t % 4) * 16 + (size_t)(j % 16);
}

/* The attention code reads the one kernel table. */
typedef rq_kernels rq_attn_kernels;
static inline const rq_attn_kernels *rq__attn_kernels(void) { return rq__kernels(); }
static inline const rq_attn_kernels *rq__attn_kernels_for(rq_simd_level level) { return rq__kernels_for(level); }

#ifndef RQ_NO_SIMD
/* The AVX-512 level's code decoder without its VBMI path (the level uses
 * vpmultishiftqb where the CPU has AVX512_VBMI): tests compare both with
 * the reference. */
void rq__decode_codes_avx512f(float *out, const uint8_t *codes, int d, int bits, const float *cent, float scale);
/* The AVX-512 level's fused MSE slots without VBMI (the two-word loader). */
void rq__scores_mse_n_avx512f(const float *Q, int G, int ldq, const uint8_t *const *blk, int n, int d, int bits,
                              size_t off_codes, const float *ntab, const float *cent, float *S, int lds);
void rq__accum_mse_n_avx512f(float *A, int G, int lda, const float *P, int ldp, const uint8_t *blk, size_t stride,
                             int n, int d, int bits, size_t off_codes, const float *ntab, const float *cent);
/* The AVX-512 level's integer scores without AVX512_VNNI (vpmaddwd on
 * widened bytes; the level uses vpdpbusd where the CPU has VNNI). */
void rq__scores_i8_avx512bw(const int8_t *Q8, int G, int ldq, const float *qs, const int32_t *qsum, const uint8_t *K8,
                            const float *ks, int n, int d, float *S, int lds);
#endif

/* The int8 score path's query rule (rq_cache_config.int8_scores): q8 =
 * round-half-even(x·127/max|x|) clamped to ±127, *qs = max|x|/127, *qsum =
 * Σ q8 (all zeros for a zero x). Writes q8[0..d). */
void rq__quantize_q8(const float *x, int d, int8_t *q8, float *qs, int32_t *qsum);

#endif
