/*
 * internal.h — declarations shared by the library's source files (never
 * installed). Public API: include/rotorquant.h.
 */
#ifndef RQ_INTERNAL_H
#define RQ_INTERNAL_H

#include "rotorquant.h"
#include "rotorquant_cuda.h"
#include "rotorquant_eval.h"
#include "blocks.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

/* Sub-stream tags for rq_seed_derive (docs/FORMAT.md §2). Never renumber. */
enum {
    RQ_STREAM_ROTATION = 1, /* the rotation Π of a quantizer          */
    RQ_STREAM_QJL = 2,      /* the QJL sketch matrix S                */
    RQ_STREAM_Q4H = 3,      /* q4_0h's Hadamard rotation              */
    RQ_STREAM_DATA = 100,   /* test/benchmark data (not part of formats) */
};

/* ---- deterministic libm-free math (detmath.c) -------------------------- */
/* Pure IEEE-754 double arithmetic (+ − × ÷ and exact bit operations), so
 * results are identical on every machine when compiled without FP
 * contraction (-ffp-contract=off, set in the Makefile). */
double rq__exp(double x);
double rq__log(double x); /* x > 0 */

/* ---- rotations (rotation.c: the ops table; one file per family) ---------- */
/* The fields each family fills (the SIMD and CUDA kernels read them). */
struct rq_rotation {
    rq_rot_kind kind;
    int n_dims;
    size_t n_params;
    /* dense: Π row-major (d×d); Πᵀ row-major for the inverse / SIMD */
    float *mat;
    float *mat_t;
    /* hadamard: y = (H_{2^k} ⊗ Q_m) · diag(signs) · x, with H orthonormal */
    int n_pow2;     /* 2^k                                  */
    int n_odd;      /* m (odd), d = 2^k · m                  */
    float *signs;   /* d entries, ±1                          */
    float *q_odd;   /* m×m row-major Haar block (NULL if m=1) */
    float h_scale;  /* 1/√(2^k)                               */
    /* block families (rotor/planar/iso): blocks of `block` coordinates at
     * offsets 0, B, 2B, … and, if B ∤ d, one tail block at d − B that
     * overlaps the previous one (still orthogonal; no padding). */
    int block;            /* 3 rotor, 2 planar, 4 iso                       */
    int n_blocks;
    int n_block_params;   /* floats per block: rotor 4, planar 2, iso 8     */
    float *block_params;  /* n_blocks × n_block_params                      */
    float *block_mats;    /* n_blocks × block² : each block as a matrix     */
    /* block families: per-lane coefficients for the SIMD kernels (derived,
     * not counted in n_params; layout below at rq__block_simd_lanes). The
     * n_blocks − (d mod B ≠ 0) regular blocks are disjoint, so SIMD applies
     * them all at once; the tail block goes through the ops row's tail. */
    float *simd_coef;
};

/* One rotation family: a row of the ops table, indexed by rq_rot_kind. A
 * family's form tells the kernel layer (rq__rotate) how to run it: a dense
 * matrix (mat/mat_t through the matvec kernels), block-diagonal (the
 * kernels' regular-block slot, then `tail`), or a whole map (the kernels'
 * per-kind slot). Without a slot at a level, the reference below runs. */
typedef struct {
    const char *name;   /* rq_rot_kind_name                                     */
    int block;          /* B of a block-diagonal family, else 0                 */
    bool matrix;        /* the map is mat (Π) / mat_t (Πᵀ), row-major           */
    /* d in [RQ_MIN_DIMS, RQ_MAX_DIMS] that the family serves */
    bool (*dims_ok)(int d);
    /* fill the fields of r (kind, n_dims set) from the seed, n_params too */
    rq_status (*init)(rq_rotation *r, uint64_t seed);
    /* the reference y = Π x and y = Πᵀ x, x == y allowed */
    void (*forward)(const rq_rotation *r, const float *x, float *y);
    void (*inverse)(const rq_rotation *r, const float *x, float *y);
    /* block-diagonal families: the overlapping tail block alone, in place */
    void (*tail)(const rq_rotation *r, float *y, bool inverse);
    /* free what init allocated (not r itself) */
    void (*free)(rq_rotation *r);
} rq_rot_ops;

const rq_rot_ops *rq__rot_ops(rq_rot_kind kind); /* NULL outside 0..RQ_ROT_COUNT−1 */

/* Haar-distributed n×n orthogonal matrix from rng, row-major (rotation_dense.c). */
rq_status rq__haar_matrix(int n, rq_rng *rng, float *out);
/* Block b alone, in place on its B floats v (the reference's per-block map). */
void rq__block_apply(const rq_rotation *rot, int b, float *v, bool inverse);
/* simd_coef layout: regular blocks n_reg = ⌊d/B⌋, lanes L = B·n_reg
 * rounded up to a multiple of 48 (zero padded).
 *   rotor   6 × L, lane 3g + i of block g: C_j = M_ij (forward),
 *           D_j = M_ji (inverse), j = 0..2 (M = the block's block_mats)
 *   planar  3 × L: [−s, c] per pair (forward, with block_params' [c, s]),
 *           [c, c], [s, −s] (inverse)
 *   iso     16 × L, per lane i of a block (quaternion component i):
 *           A_k = sgn(i,k)·q_L,k, Q_k = sgn(i,k)·conj(q_R)_(i⊕k)   (forward)
 *           A'_k = sgn(i,k)·conj(q_L)_k, Q'_k = sgn(i,k)·q_R,(i⊕k)  (inverse)
 *           for k = 0..3, with the Hamilton product written
 *           (a b)_i = Σ_k sgn(i,k) a_k b_(i⊕k) in increasing k. */
int rq__block_simd_lanes(const rq_rotation *rot);

/* In-place orthonormal fast Walsh–Hadamard transform of n = 2^k floats,
 * butterfly order fixed (docs/FORMAT.md §3) so SIMD versions match. */
void rq__fwht_ref(float *x, int n);
/* Hadamard family: Q_m (or Q_mᵀ) on each of the 2^k runs of m floats of y,
 * sums from +0 in increasing index (shared by every level). */
void rq__hadamard_odd(const rq_rotation *r, float *y, bool transpose);

/* ---- reductions with a fixed order (shared by scalar and SIMD) -------- */
/* Σ x_i² in float with 16 interleaved partial sums (lane = i mod 16) and a
 * fixed pairwise tree; the order AVX2/AVX-512 code reproduces exactly. */
float rq__sumsq_ref(const float *x, int n);
float rq__dot_ref(const float *a, const float *b, int n);

/* ---- bit packing (pack.c): little-endian bitstream, code i at bits
 * [i·b, (i+1)·b) of the byte array. ----------------------------------- */
size_t rq__packed_bytes(int n, int bits);
void rq__pack_ref(const uint8_t *codes, int n, int bits, uint8_t *out);
void rq__unpack_ref(const uint8_t *in, int n, int bits, uint8_t *codes);

static inline bool rq__finite(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x7f800000u) != 0x7f800000u;
}


/* ---- block kinds and type traits (types.c) ------------------------------- */
/* One row per block kind (blocks.h): its layout for any d and, for the
 * value blocks, the reference codecs (the executable spec of the kernels'
 * per-kind slots). */
typedef struct {
    const char *name;
    bool codes;        /* rotated Lloyd-Max codes (MSE, PROD), not values     */
    bool signs;        /* + fp16 ‖r′‖ and the QJL sign bits (PROD)            */
    bool in_place;     /* the block is the d floats themselves (f32)          */
    bool trellis;      /* codes are a TCQ stream (src/tcq.h), not Lloyd-Max   */
    /* the 1-byte log norm head's table (rq__norm8: n8 kinds, rq__normk8: k8
     * kinds; codes_off = RQ_N8_CODES_OFF), NULL for the fp16 head */
    const float *norm_table;
    size_t codes_off;  /* codes start (after the head)                        */
    /* bytes of one d-value vector with code_bits-bit codes */
    size_t (*bytes)(int d, int code_bits);
    /* every fp16 (f32) field of the vector's block is finite: what the
     * encoder writes, and what the decoders may assume */
    bool (*fields_ok)(const uint8_t *blk, int d);
    /* value blocks: n finite values → block (RQ_ERR_RANGE when an fp16 field
     * would overflow; the bytes written before that are unspecified), and
     * back; NULL for code blocks (their pipelines are in quant.c) */
    rq_status (*encode_ref)(const float *x, int n, uint8_t *out);
    void (*decode_ref)(const uint8_t *in, int n, float *out);
} rq_block_layout;

extern const rq_block_layout rq__blocks[RQ_BLOCK_COUNT];

/* ---- the n8 norm head (norm8.c, generated by scripts/gen_norm8.py) -------
 * rq__norm8[c]: code 0 = 0, c = 1..255 = 2^(−6 + (c−1)·16/254), exact float
 * constants. rq__norm8_limit: the largest norm that rounds to code 255. */
extern const float rq__norm8[256];
extern const double rq__norm8_limit;
/* The range in error messages (rq__norm8: "2^-6 .. 2^10 = 1024"; norms past
 * the limit, ≈ 1046.9, fail). */
const char *rq__norm_table_range(const float *table);
/* ---- the k8 norm head (normk8.c, generated by scripts/gen_norm8.py k8) ----
 * rq__normk8[c]: code 0 = 0, c = 1..255 = 2^(−2 + (c−1)·4/254): keys divided
 * by the cache's per-head scale σ (4 octaves around 1); rq__normk8_limit ≈
 * 4.022, the largest norm that rounds to code 255. */
extern const float rq__normk8[256];
extern const double rq__normk8_limit;
/* The table's encoding limit (rq__norm8_limit or rq__normk8_limit). */
double rq__norm_table_limit(const float *table);
/* n ≥ 0 finite → the code of table's nearest value (linear distance,
 * computed exactly in double; ties to the lower code), except 0 < n <
 * table[1] → 1 (clamped: code 0 is the zero vector only); RQ_ERR_RANGE
 * when n > the table's limit or n is not finite (*code untouched). table:
 * rq__norm8 or rq__normk8. */
rq_status rq__norm_encode(const float *table, float n, uint8_t *code);
static inline rq_status rq__norm8_encode(float n, uint8_t *code) { return rq__norm_encode(rq__norm8, n, code); }
/* The head of a code block: the fp16 norm/scale at byte 0, or for the 1-byte
 * kinds (layout norm_table ≠ NULL; blocks.h) ntab[byte 0]. Every reader
 * passes the layout's table (rq_quantizer_view.ntab). */
static inline float rq__head_norm(const uint8_t *blk, const float *ntab) {
    return ntab ? ntab[blk[0]] : rq_f16_to_f32((uint16_t)(blk[0] | (blk[1] << 8)));
}

/* A type row: the public part first (rq_type_at returns &info). */
typedef struct {
    rq_type_info info;
    rq_block_kind block;
    int code_bits; /* bits per code: b (MSE), b − 1 (PROD), 0 for value blocks */
} rq_type_traits;

/* The row of a type (a pointer from rq_type_at/find, or a copy of one). */
const rq_type_traits *rq__type_traits(const rq_type_info *t);

/* ---- quantizer internals (quant.c; the CUDA upload reads the struct) ------ */
struct rq_quantizer {
    const rq_type_info *type;
    const rq_type_traits *traits; /* type's row                            */
    int n_dims;
    rq_quant_config cfg;
    size_t bytes;          /* per vector                                 */
    rq_rotation *rot;      /* NULL for f32/f16/q8_0/q4_0                 */
    int mse_bits;          /* bits of the Lloyd-Max stage (0..5)         */
    rq_codebook cb;        /* valid when mse_bits > 0                    */
    float *qjl_s;          /* Gaussian S, m×d row-major (m = d)          */
    rq_rotation *qjl_rot;  /* structured S = √d · Π_qjl                  */
    float qjl_alpha;       /* reconstruction scale α                     */
    float *tcq_lut;        /* TCQ: 2^L floats, rq__tcq_lut / √d (else NULL) */
};

/* How the cache and the attention kernels read a quantizer's blocks. */
typedef struct {
    rq_block_kind block;
    const rq_block_layout *layout;
    int bits;           /* code bits (0: none)                     */
    size_t off_codes;   /* byte offsets inside the block           */
    const float *ntab;  /* the 1-byte head's table (layout->norm_table), NULL: fp16 */
    size_t off_signs;   /* PROD: the sign bits                     */
    const float *cent;  /* centroids (NULL without codes)          */
    float alpha;        /* QJL reconstruction scale                */
    bool rotated;       /* values live in the rotated domain       */
} rq_quantizer_view;

rq_quantizer_view rq__quantizer_view(const rq_quantizer *q);

/* rq_quantizer_encode for the cache's k8 keys: a head value past the
 * table's limit is stored as code 255 instead of failing (the norm's fp16
 * check is skipped too), one below table[1] as code 1 (as always); clamps[0]
 * / [1] are increased by the low / high clamps, on success only. Other
 * types: rq_quantizer_encode. */
rq_status rq__quantizer_encode_clamp(const rq_quantizer *q, const float *x, void *blocks, size_t n_vec,
                                     uint64_t clamps[2]);

/* Block → decoded vector in the rotated domain (MSE/PROD types): n′·c(code)
 * (+ ‖r′‖·α·Sᵀs for PROD). */
void rq__decode_rotated(const rq_quantizer *q, const uint8_t *blk, float *xr);
/* QJL sketch: out = S v; out = Sᵀ s for packed sign bits s; out = Sᵀ v for
 * a float vector v. */
void rq__qjl_apply(const rq_quantizer *q, const float *v, float *out);
void rq__qjl_transpose(const rq_quantizer *q, const uint8_t *bits, float *out);
void rq__qjl_transpose_f(const rq_quantizer *q, const float *v, float *out);

/* ---- SIMD level (src/simd/dispatch.c) ----------------------------------
 * Chosen once from cpuid, overridable with RQ_SIMD=scalar|avx2|avx512
 * (a level the CPU lacks falls back to the best one it has; an unknown
 * value is ignored and reported by rq_simd_status()). */
rq_simd_level rq__simd_level(void);
/* The best level this CPU (and build) supports, ignoring RQ_SIMD. */
rq_simd_level rq__simd_cpu_level(void);
/* Tests and benchmarks: use `level` from now on (clamped to the CPU's best);
 * returns the level set. Not meant to race with running kernels. */
rq_simd_level rq__simd_force(rq_simd_level level);
const char *rq__simd_level_name(rq_simd_level level); /* "scalar", "avx2", "avx512" */
/* CRC-32C (Castagnoli) of n bytes, by the level's kernel (src/crc32c.c). */
uint32_t rq__crc32c(const void *data, size_t n);

/* ---- errors (error.c) ------------------------------------------------
 * Sets this thread's rq_last_error() message and returns st, at every error
 * return of a public function: `return rq__fail(RQ_ERR_SHAPE, "rq_x: n = %d
 * ...", n);`. The message names the function, the argument and its value. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
rq_status rq__fail(rq_status st, const char *fmt, ...);

/* Writes n bytes to path through a temporary file in the same directory,
 * fsync'd, then renamed over path: a failed write leaves any old file
 * intact. fn names the public function in messages (src/keybasis_io.c). */
rq_status rq__write_atomic(const char *fn, const char *path, const void *bytes, size_t n);
/* The whole file into a malloc'd buffer (free() it, also after an error). */
rq_status rq__read_file(const char *fn, const char *path, uint8_t **buf, size_t *n);

#endif /* RQ_INTERNAL_H */
