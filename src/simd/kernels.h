/*
 * kernels.h — the kernel layer: one table of kernels per SIMD level
 * (xxHash-style dispatch, chosen once; src/simd/dispatch.c), holding the
 * encode/decode slots and the attention slots.
 *
 *   rq__kernels_ref     the scalar reference, the executable spec
 *                       (src/quant.c, src/attn_kernels.c, src/types.c,
 *                       the rotation families' ops rows)
 *   rq__kernels_avx2    AVX2 + FMA + F16C   (src/simd/encode_avx2.c, attn_avx2.c)
 *   rq__kernels_avx512  AVX-512 F/BW/VL/DQ  (src/simd/encode_avx512.c, attn_avx512.c)
 *
 * Every table starts as a copy of the reference (RQ_KERNELS_REF below;
 * later designated initializers win) and overrides the slots its level
 * implements. The per-kind slots (rotations by rq_rot_kind, value blocks by
 * rq_block_kind) are NULL in the reference: NULL means the family's ops row
 * (rotation*.c) or the block's layout row (types.c), so a new rotation
 * family or block type needs no kernel at all to work at every level.
 *
 * The ISA-independent composition — which slot a rotation family's form
 * uses, the block families' tail block, the reference fallbacks — lives
 * once in dispatch.c (rq__rotate, rq__rotate_inv, rq__values_*); quant.c
 * composes the encode and decode pipelines, kvcache.c the attention loop.
 *
 * Contract: every kernel of every level returns exactly the bytes and float
 * bits of the reference (docs/FORMAT.md: float arithmetic, no FMA, the fixed
 * summation orders of rotation.c), for every n it accepts; a SIMD kernel
 * calls the reference for shapes it does not cover. tests/test_simd.c checks
 * this at every level the CPU has (the attention score/accumulate/exp
 * slots, which may use FMA, within the tolerances of tests/test_attention.c).
 *
 * Packed codes: rq__pack_ref's bitstream (code i at bits [i·b, (i+1)·b));
 * encode kernels write exactly ⌈n·b/8⌉ bytes; attention readers may read up
 * to RQ_PAGE_SLACK bytes past a field (attn_kernels.h).
 */
#ifndef RQ_KERNELS_H
#define RQ_KERNELS_H

#include "internal.h"
#include "tcq.h"

typedef struct rq_kernels rq_kernels;
struct rq_kernels {
    const char *name;
    /* ---- reductions and elementwise ---- */
    /* Σ x_i² in rq__sumsq_ref's order; *finite = no NaN/Inf among the x_i. */
    float (*sumsq_finite)(const float *x, int n, bool *finite);
    float (*sumsq)(const float *x, int n);  /* = rq__sumsq_ref */
    bool (*all_finite)(const float *x, int n);
    /* y_i = x_i · s, any alias */
    void (*scale)(const float *x, float s, float *y, int n);
    /* ---- rotations (composed by rq__rotate) ---- */
    /* whole-map families: y = Π(x·s) (forward; the reference rounds x·s
     * first) or y = Πᵀx (inverse, s = 1); x == y allowed. NULL: reference. */
    void (*rot[RQ_ROT_COUNT])(const rq_rotation *r, const float *x, float s, float *y, bool inverse);
    /* block-diagonal families: the ⌊d/B⌋ disjoint regular blocks in place
     * (the tail block is the ops row's). NULL: reference. */
    void (*rot_blocks[RQ_ROT_COUNT])(const rq_rotation *r, float *y, bool inverse);
    /* y_i = Σ_j mt[j·n + i] · v_j, summed from +0 in increasing j (the dense
     * rotation with mt = Πᵀ, and Sᵀs for the Gaussian QJL sketch). y ≠ v. */
    void (*matvec_cols)(const float *mt, int n, const float *v, float *y);
    /* out_i = rq__dot_ref(m + i·n, v, n) for i < n_rows (Gaussian S r). */
    void (*matvec_rows)(const float *m, int n_rows, int n, const float *v, float *out);
    /* the same for k vectors v[t·n ..] → out[t·n_rows ..], t < k ≤ 8: each
     * row of m read once for all of them */
    void (*matvec_rows_k)(const float *m, int n_rows, int n, const float *v, int k, float *out);
    /* ---- codes ---- */
    /* code_i = #{k : bounds[k] < y_i} (2^bits − 1 ascending bounds), packed. */
    void (*quantize_pack)(const float *y, int n, int bits, const float *bounds, uint8_t *out);
    /* y_i = s · cent[code_i] for packed bits-bit codes. */
    void (*unpack_scale)(const uint8_t *in, int n, int bits, const float *cent, float s, float *y);
    /* bit i = [v_i ≥ 0] (the QJL signs), packed 1 bit per value. */
    void (*pack_signs)(const float *v, int n, uint8_t *out);
    /* ---- value blocks, one codec per block kind (NULL: the layout's
     * reference). n values (n % 32 == 0 for q8_0/q4_0); encoders take
     * finite values, decoders blocks whose fields are finite (fields_ok). */
    rq_status (*values_encode[RQ_BLOCK_COUNT])(const float *x, int n, uint8_t *out);
    void (*values_decode[RQ_BLOCK_COUNT])(const uint8_t *in, int n, float *out);
    /* Optional (NULL: none): rq_quantizer_encode of n_vec vectors of an MSE
     * type, fused, for the shapes a level covers; returns false, writing
     * nothing, for the others. Otherwise encodes in order and stops at the
     * first error: *n_done = vectors encoded, *st = RQ_OK or the error of
     * vector *n_done. Same bytes and statuses as the composed pipeline. */
    bool (*encode_mse)(const rq_quantizer *q, const float *x, uint8_t *blk, size_t n_vec, size_t *n_done,
                       rq_status *st);
    /* ---- TCQ (src/tcq.h) ---- */
    /* the trellis stream of y[0..T) at k bits (rq__tcq_encode_ref's bytes) */
    void (*tcq_encode)(const float *y, int T, int k, const float *lut, uint8_t *out);
    /* n consecutive TCQ blocks `stride` bytes apart → n·d floats: value t =
     * the block's fp16 scale (offset 0) · lut[window t of the stream at
     * off_codes] (rq__decode_tcq_n_ref's floats) */
    void (*decode_tcq_n)(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes, const float *ntab,
                         const float *lut);
    /* ---- fused attention (attn_kernels.h) ---- */
    /* one token's field → floats (the caller reuses them for every query
     * head of the GQA group): codes → scale·cent[code_j]; signs → ±scale */
    void (*decode_codes)(float *out, const uint8_t *codes, int d, int bits, const float *cent, float scale);
    void (*decode_signs)(float *out, const uint8_t *signs, int d, float scale);
    /* n consecutive MSE blocks `stride` bytes apart → n·d floats (one call
     * per run of a page): decode_codes with scale = the block's fp16 norm
     * (offset 0), codes at off_codes */
    void (*decode_mse_n)(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes, const float *ntab,
                         const float *cent);
    /* S[g·lds + t] += Σ_j Q[g·ldq + j] · K[t·d + j]   (g < G, t < n) */
    void (*scores)(const float *Q, int G, int ldq, const float *K, int n, int d, float *S, int lds);
    /* Optional (NULL: attention decodes with decode_mse_n, then scores):
     * scores over the keys decode_mse_n would give for the n MSE blocks
     * blk[0..n) (token t's block at blk[t]), without storing them — S[g·lds
     * + t] += Σ_j Q[g·ldq + j] · (norm_t · cent[code_tj]), the same
     * operations and order as the level's decode_mse_n + scores (so the
     * same bits). Only for 1 ≤ bits ≤ 4 and d a multiple of 16. */
    void (*scores_mse_n)(const float *Q, int G, int ldq, const uint8_t *const *blk, int n, int d, int bits,
                         size_t off_codes, const float *ntab, const float *cent, float *S, int lds);
    /* A[g·lda + j] += Σ_t P[g·ldp + t] · V[t·d + j]   (g < G, j < d) */
    void (*accum)(float *A, int G, int lda, const float *P, int ldp, const float *V, int n, int d);
    /* Optional (NULL: attention decodes with decode_mse_n, then accum):
     * accum over the values decode_mse_n would give for n consecutive MSE
     * blocks `stride` bytes apart, without storing them — A[g·lda + j] +=
     * Σ_t P[g·ldp + t] · (norm_t · cent[code_tj]), the same operations per
     * accumulator, in token order, as the two slots (so the same bits as
     * the level's decode_mse_n + accum). Only for 1 ≤ bits ≤ 4 and d a
     * multiple of 16. */
    void (*accum_mse_n)(float *A, int G, int lda, const float *P, int ldp, const uint8_t *blk, size_t stride, int n,
                        int d, int bits, size_t off_codes, const float *ntab, const float *cent);
    /* x_t ← exp(x_t − m) for t < n; returns Σ_t of the results. SIMD
     * versions use a polynomial exp within 2e-7 relative of expf. */
    float (*exp_sum)(float *x, int n, float m);
    /* ---- integer scores (opt-in: rq_cache_config.int8_scores) ----
     * Keys of MSE codes as biased bytes in the tile layout of
     * attn_kernels.h (rq__i8_at): byte (t, j) = tab8[code_tj] (tab8[i] =
     * 128 + c8[i], c8 the type's centroids scaled to ±127; i < 2^bits,
     * bits ≤ 5), bytes j in [d, dp) = 128; ks[t] = the block's fp16 norm
     * (offset 0) · cfac; tokens t0 .. t0+n−1 of the tile from n consecutive
     * blocks `stride` bytes apart, codes at off_codes (as decode_mse_n).
     * Other tokens' bytes are left as they are. */
    void (*decode_mse8_n)(uint8_t *tile, float *ks, int t0, const uint8_t *blk, size_t stride, int n, int d, int bits,
                          size_t off_codes, const float *ntab, const uint8_t *tab8, float cfac);
    /* The same for TCQ keys (src/tcq.h): byte (t, j) = tab8[window j of
     * the block's stream of d·bits bits at off_codes] (tab8: 256 entries,
     * 128 + the LUT scaled to ±127; 2 ≤ bits ≤ 5), ks[t] = the block's fp16
     * scale (offset 0) · cfac. Levels read no byte past a stream. */
    void (*decode_tcq8_n)(uint8_t *tile, float *ks, int t0, const uint8_t *blk, size_t stride, int n, int d, int bits,
                          size_t off_codes, const float *ntab, const uint8_t *tab8, float cfac);
    /* S[g·lds + t] += (qs[g]·ks[t]) · (float)Σ_{j<d} Q8[g·ldq + j]·(K8(t, j) − 128)
     * (g < G, t < n; K8(t, j) the tile's byte): the Σ in int32 is exact
     * (|Σ| ≤ 4096·127·128), so every level returns the reference's bits
     * (no FMA: two multiplies and an add, in that order). qsum[g] = Σ_j
     * Q8[g·ldq + j] (the correction of unsigned-by-signed byte products,
     * Σ q·u − 128·Σ q). Levels read Q8 up to dp (bytes d .. dp−1 must be
     * 0) and the tile's whole groups of 4 (bytes of tokens ≥ n: any). */
    void (*scores_i8)(const int8_t *Q8, int G, int ldq, const float *qs, const int32_t *qsum, const uint8_t *K8,
                      const float *ks, int n, int d, float *S, int lds);
    /* ---- checksums ---- */
    /* CRC-32C register c (inverted: start from 0xFFFFFFFF, xor the result
     * with it) advanced over n bytes (src/crc32c.c). */
    uint32_t (*crc32c)(uint32_t c, const uint8_t *p, size_t n);
};

/* ---- the reference slots (defined in quant.c, attn_kernels.c, rotation.c) */
float rq__sumsq_finite_ref(const float *x, int n, bool *finite);
bool rq__all_finite_ref(const float *x, int n);
void rq__scale_ref(const float *x, float s, float *y, int n);
void rq__matvec_cols_ref(const float *mt, int n, const float *v, float *y);
void rq__matvec_rows_ref(const float *m, int n_rows, int n, const float *v, float *out);
void rq__matvec_rows_k_ref(const float *m, int n_rows, int n, const float *v, int k, float *out);
void rq__quantize_pack_ref(const float *y, int n, int bits, const float *bounds, uint8_t *out);
void rq__unpack_scale_ref(const uint8_t *in, int n, int bits, const float *cent, float s, float *y);
void rq__pack_signs_ref(const float *v, int n, uint8_t *out);
void rq__decode_codes_ref(float *out, const uint8_t *codes, int d, int bits, const float *cent, float scale);
void rq__decode_signs_ref(float *out, const uint8_t *signs, int d, float scale);
void rq__decode_mse_n_ref(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits, size_t off_codes, const float *ntab,
                          const float *cent);
void rq__scores_ref(const float *Q, int G, int ldq, const float *K, int n, int d, float *S, int lds);
void rq__accum_ref(float *A, int G, int lda, const float *P, int ldp, const float *V, int n, int d);
void rq__scores_mse_n_ref(const float *Q, int G, int ldq, const uint8_t *const *blk, int n, int d, int bits,
                          size_t off_codes, const float *ntab, const float *cent, float *S, int lds);
void rq__accum_mse_n_ref(float *A, int G, int lda, const float *P, int ldp, const uint8_t *blk, size_t stride, int n,
                         int d, int bits, size_t off_codes, const float *ntab, const float *cent);
float rq__exp_sum_ref(float *x, int n, float m);
void rq__decode_mse8_n_ref(uint8_t *tile, float *ks, int t0, const uint8_t *blk, size_t stride, int n, int d, int bits,
                           size_t off_codes, const float *ntab, const uint8_t *tab8, float cfac);
void rq__decode_tcq8_n_ref(uint8_t *tile, float *ks, int t0, const uint8_t *blk, size_t stride, int n, int d, int bits,
                           size_t off_codes, const float *ntab, const uint8_t *tab8, float cfac);
void rq__scores_i8_ref(const int8_t *Q8, int G, int ldq, const float *qs, const int32_t *qsum, const uint8_t *K8,
                       const float *ks, int n, int d, float *S, int lds);
uint32_t rq__crc32c_ref(uint32_t c, const uint8_t *p, size_t n);

#define RQ_KERNELS_REF                                                                                           \
    .name = "scalar", .sumsq_finite = rq__sumsq_finite_ref, .sumsq = rq__sumsq_ref,                             \
    .all_finite = rq__all_finite_ref, .scale = rq__scale_ref, .matvec_cols = rq__matvec_cols_ref,                \
    .matvec_rows = rq__matvec_rows_ref, .matvec_rows_k = rq__matvec_rows_k_ref,                                  \
    .quantize_pack = rq__quantize_pack_ref, .unpack_scale = rq__unpack_scale_ref,                                \
    .pack_signs = rq__pack_signs_ref, .decode_codes = rq__decode_codes_ref,                                      \
    .decode_signs = rq__decode_signs_ref, .decode_mse_n = rq__decode_mse_n_ref, .scores = rq__scores_ref,        \
    .accum = rq__accum_ref, .exp_sum = rq__exp_sum_ref, .tcq_encode = rq__tcq_encode_ref,                         \
    .decode_tcq_n = rq__decode_tcq_n_ref, .decode_mse8_n = rq__decode_mse8_n_ref, .scores_i8 = rq__scores_i8_ref, \
    .decode_tcq8_n = rq__decode_tcq8_n_ref, .crc32c = rq__crc32c_ref

/* A level's table overrides slots of RQ_KERNELS_REF by design. */
#if defined(__clang__)
#define RQ_KERNELS_OVERRIDE_BEGIN \
    _Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Winitializer-overrides\"")
#define RQ_KERNELS_OVERRIDE_END _Pragma("clang diagnostic pop")
#else
#define RQ_KERNELS_OVERRIDE_BEGIN \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Woverride-init\"")
#define RQ_KERNELS_OVERRIDE_END _Pragma("GCC diagnostic pop")
#endif

/* lanes of simd_coef's arrays (rq__block_simd_lanes, inline for kernels) */
static inline int rq__simd_lanes(const rq_rotation *r) { return (r->block * (r->n_dims / r->block) + 47) / 48 * 48; }

/* Input vectors prefetched ahead of the one being encoded: covers DRAM
 * latency when a batch streams from memory (a few KB in flight). */
#define RQ_PREFETCH_VECS 8

extern const rq_kernels rq__kernels_ref;
#ifndef RQ_NO_SIMD
extern const rq_kernels rq__kernels_avx2;
extern const rq_kernels rq__kernels_avx512;
/* the attention slots of each level (attn_avx2.c, attn_avx512.c) */
#define RQ_ATTN_SLOTS_DECL(ISA)                                                                                   \
    void rq__decode_codes_##ISA(float *out, const uint8_t *codes, int d, int bits, const float *cent, float scale); \
    void rq__decode_signs_##ISA(float *out, const uint8_t *signs, int d, float scale);                            \
    void rq__decode_mse_n_##ISA(float *out, const uint8_t *blk, size_t stride, int n, int d, int bits,           \
                                size_t off_codes, const float *ntab, const float *cent);                                             \
    void rq__scores_##ISA(const float *Q, int G, int ldq, const float *K, int n, int d, float *S, int lds);       \
    void rq__accum_##ISA(float *A, int G, int lda, const float *P, int ldp, const float *V, int n, int d);        \
    float rq__exp_sum_##ISA(float *x, int n, float m);                                                           \
    void rq__decode_mse8_n_##ISA(uint8_t *tile, float *ks, int t0, const uint8_t *blk, size_t stride, int n,     \
                                 int d, int bits, size_t off_codes, const float *ntab, const uint8_t *tab8, float cfac);             \
    void rq__scores_i8_##ISA(const int8_t *Q8, int G, int ldq, const float *qs, const int32_t *qsum,              \
                             const uint8_t *K8, const float *ks, int n, int d, float *S, int lds);
RQ_ATTN_SLOTS_DECL(avx2)
RQ_ATTN_SLOTS_DECL(avx512)
#undef RQ_ATTN_SLOTS_DECL
void rq__scores_mse_n_avx512(const float *Q, int G, int ldq, const uint8_t *const *blk, int n, int d, int bits,
                             size_t off_codes, const float *ntab, const float *cent, float *S, int lds);
void rq__accum_mse_n_avx512(float *A, int G, int lda, const float *P, int ldp, const uint8_t *blk, size_t stride,
                            int n, int d, int bits, size_t off_codes, const float *ntab, const float *cent);
uint32_t rq__crc32c_avx2(uint32_t c, const uint8_t *p, size_t n); /* crc_avx2.c, both x86 levels */
/* The slots both x86 levels implement, by their names in encode_<ISA>.c
 * (static) and attn_<ISA>.c (the rq__*_<ISA> above): every slot but the
 * dense and none rotations (composed from matvec_cols / the reference) and
 * the f32 block (memcpy). */
#define RQ_KERNELS_X86(ISA)                                                                                       \
    .name = #ISA, .sumsq_finite = sumsq_finite_##ISA, .sumsq = sumsq_##ISA, .all_finite = all_finite_##ISA,       \
    .scale = scale_##ISA, .rot[RQ_ROT_HADAMARD] = hadamard, .rot_blocks[RQ_ROT_ROTOR] = rotor_blocks,             \
    .rot_blocks[RQ_ROT_PLANAR] = planar_blocks, .rot_blocks[RQ_ROT_ISO] = iso_blocks,                             \
    .matvec_cols = matvec_cols_##ISA, .matvec_rows = matvec_rows_##ISA, .matvec_rows_k = matvec_rows_k_##ISA,     \
    .quantize_pack = quantize_pack_##ISA, .unpack_scale = unpack_scale_##ISA, .pack_signs = pack_signs_##ISA,     \
    .values_encode[RQ_BLOCK_F16] = f16_encode_##ISA, .values_decode[RQ_BLOCK_F16] = f16_decode_##ISA,             \
    .values_encode[RQ_BLOCK_Q8_0] = q8_0_encode_##ISA, .values_decode[RQ_BLOCK_Q8_0] = q8_0_decode_##ISA,         \
    .values_encode[RQ_BLOCK_Q4_0] = q4_0_encode_##ISA, .values_decode[RQ_BLOCK_Q4_0] = q4_0_decode_##ISA,         \
    .encode_mse = encode_mse_##ISA, .decode_codes = rq__decode_codes_##ISA,                                       \
    .decode_signs = rq__decode_signs_##ISA, .decode_mse_n = rq__decode_mse_n_##ISA, .scores = rq__scores_##ISA,   \
    .accum = rq__accum_##ISA, .exp_sum = rq__exp_sum_##ISA, .decode_mse8_n = rq__decode_mse8_n_##ISA,            \
    .scores_i8 = rq__scores_i8_##ISA, .crc32c = rq__crc32c_avx2
#endif

/* The table of the process's level (rq__simd_level()), or of a given level
 * (clamped to what this build has). */
const rq_kernels *rq__kernels(void);
const rq_kernels *rq__kernels_for(rq_simd_level level);

/* ---- composition (dispatch.c): the same at every level ------------------ */
/* y = Π(x·s) and y = Πᵀx with table k's slots (or the reference); x == y allowed. */
void rq__rotate(const rq_kernels *k, const rq_rotation *r, const float *x, float s, float *y);
void rq__rotate_inv(const rq_kernels *k, const rq_rotation *r, const float *x, float *y);
/* block-diagonal families: all blocks in place (regular ones, then the tail;
 * inverse: the tail first) */
void rq__rotate_blocks(const rq_kernels *k, const rq_rotation *r, float *y, bool inverse);
/* the codec of a value block kind at table k (its slot or the reference) */
static inline rq_status (*rq__values_encoder(const rq_kernels *k, rq_block_kind b))(const float *, int, uint8_t *) {
    return k->values_encode[b] ? k->values_encode[b] : rq__blocks[b].encode_ref;
}
static inline void (*rq__values_decoder(const rq_kernels *k, rq_block_kind b))(const uint8_t *, int, float *) {
    return k->values_decode[b] ? k->values_decode[b] : rq__blocks[b].decode_ref;
}

#endif /* RQ_KERNELS_H */
