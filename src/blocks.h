/*
 * blocks.h — the stored block of every type, one struct per block kind,
 * shared by the C library and the CUDA kernels (docs/FORMAT.md §4–5). Every
 * size and offset the code uses is pinned below by a static assertion, so a
 * layout change fails to compile instead of changing bytes.
 *
 * Multi-byte fields are little-endian fp16 (IEEE binary16). The code reads
 * and writes them byte by byte (endianness-neutral); the structs define
 * where they are.
 *
 *   f32     d floats                               (no struct: the values)
 *   f16     d fp16 values                          (no struct: the values)
 *   q8_0    per 32 values: rq_block_q8_0  = [fp16 δ][32 × int8]       34 B
 *   q4_0    per 32 values: rq_block_q4_0  = [fp16 δ][16 B nibbles]    18 B
 *           (value j in the low nibble of byte j, value 16 + j in its
 *           high nibble; q = nibble − 8)
 *   MSE     rq_block_mse_head  = [fp16 n′], then ⌈d·b/8⌉ bytes of codes
 *   PROD    rq_block_prod_head = [fp16 n′][fp16 ‖r′‖], then ⌈d·(b−1)/8⌉
 *           bytes of codes, then ⌈d/8⌉ bytes of QJL sign bits
 *   TCQ     rq_block_mse_head  = [fp16 scale], then d·k/8 bytes: the
 *           circular k-bit/value trellis stream (src/tcq.h; d % 8 == 0)
 *   MSE_N8  rq_block_n8_head   = [u8 norm code], then the MSE codes
 *   TCQ_N8  rq_block_n8_head   = [u8 scale code], then the TCQ stream
 *           (code 0 = 0, c = 1..255 = 2^(−6 + (c−1)·16/254): src/norm8.c)
 *   MSE_K8  rq_block_n8_head   = [u8 norm code], then the MSE codes
 *   TCQ_K8  rq_block_n8_head   = [u8 scale code], then the TCQ stream
 *           (keys relative to the cache's per-head scale σ: code 0 = 0,
 *           c = 1..255 = 2^(−2 + (c−1)·4/254): src/normk8.c)
 *
 * The kind's layout row names the head's table (rq_block_layout.norm_table,
 * src/internal.h: NULL = the fp16 at byte 0); every reader of a head gets
 * that table with the codes' offset (rq__head_norm, head_s).
 */
#ifndef RQ_BLOCKS_H
#define RQ_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#define RQ_QK 32 /* values per q8_0 / q4_0 block (ggml's QK8_0, QK4_0) */

typedef struct {
    uint16_t d;          /* fp16 scale δ */
    int8_t qs[RQ_QK];    /* q_j, x_j ≈ δ·q_j */
} rq_block_q8_0;

typedef struct {
    uint16_t d;              /* fp16 scale δ */
    uint8_t qs[RQ_QK / 2];   /* two 4-bit q + 8 per byte */
} rq_block_q4_0;

typedef struct {
    uint16_t norm; /* fp16 n′ (the norm, or its corrected value) */
} rq_block_mse_head;

typedef struct {
    uint8_t code; /* n′ (TCQ: the scale) on the 255-step log grid, 0 = zero */
} rq_block_n8_head;

typedef struct {
    uint16_t norm;  /* fp16 n′ of the (b−1)-bit MSE stage */
    uint16_t rnorm; /* fp16 ‖r′‖ of the residual          */
} rq_block_prod_head;

/* The block kinds: which struct a type stores (a type is a block kind plus
 * a rotation and a bit width; src/types.c). Never renumber: rows of tables
 * in C and CUDA are indexed by these. */
typedef enum {
    RQ_BLOCK_F32 = 0,
    RQ_BLOCK_F16 = 1,
    RQ_BLOCK_Q8_0 = 2,
    RQ_BLOCK_Q4_0 = 3,
    RQ_BLOCK_MSE = 4,
    RQ_BLOCK_PROD = 5,
    RQ_BLOCK_TCQ = 6,
    RQ_BLOCK_MSE_N8 = 7, /* MSE with the 1-byte norm head */
    RQ_BLOCK_TCQ_N8 = 8, /* TCQ with the 1-byte scale head */
    RQ_BLOCK_MSE_K8 = 9, /* MSE with the 1-byte key norm head (4 octaves around 1) */
    RQ_BLOCK_TCQ_K8 = 10, /* TCQ with the 1-byte key scale head */
    RQ_BLOCK_COUNT
} rq_block_kind;

/* Offsets inside MSE/PROD blocks. */
#define RQ_MSE_CODES_OFF ((int)sizeof(rq_block_mse_head))
#define RQ_PROD_CODES_OFF ((int)sizeof(rq_block_prod_head))
#define RQ_PROD_RNORM_OFF ((int)offsetof(rq_block_prod_head, rnorm))
#define RQ_TCQ_CODES_OFF ((int)sizeof(rq_block_mse_head)) /* TCQ: the MSE head, then the stream */
#define RQ_N8_CODES_OFF ((int)sizeof(rq_block_n8_head))  /* n8 kinds: the code byte, then codes / stream */

#ifdef __cplusplus
#define RQ_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define RQ_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
RQ_STATIC_ASSERT(sizeof(rq_block_q8_0) == 34, "q8_0 block: fp16 + 32 int8");
RQ_STATIC_ASSERT(offsetof(rq_block_q8_0, qs) == 2, "q8_0 values after the scale");
RQ_STATIC_ASSERT(sizeof(rq_block_q4_0) == 18, "q4_0 block: fp16 + 16 bytes");
RQ_STATIC_ASSERT(offsetof(rq_block_q4_0, qs) == 2, "q4_0 nibbles after the scale");
RQ_STATIC_ASSERT(sizeof(rq_block_mse_head) == 2, "MSE head: fp16 norm");
RQ_STATIC_ASSERT(sizeof(rq_block_prod_head) == 4, "PROD head: fp16 norm, fp16 residual norm");
RQ_STATIC_ASSERT(offsetof(rq_block_prod_head, rnorm) == 2, "PROD residual norm at byte 2");
RQ_STATIC_ASSERT(sizeof(rq_block_n8_head) == 1, "n8 head: one code byte");
RQ_STATIC_ASSERT(RQ_N8_CODES_OFF == 1 && RQ_MSE_CODES_OFF == 2 && RQ_TCQ_CODES_OFF == 2 && RQ_PROD_CODES_OFF == 4,
                 "the 1-byte heads' codes start at byte 1, the fp16 heads' at 2 (PROD: 4)");

#endif /* RQ_BLOCKS_H */
