/*
 * rotorquant.h — the one public header of librotorquant.
 *
 * Compresses transformer KV-cache head vectors to 1–4 bits per value with
 * TurboQuant-style pipelines (normalize → rotate → Lloyd-Max scalar codes
 * → optional 1-bit QJL residual sketch), for every rotation family:
 *   dense    Haar-random orthogonal matrix (TurboQuant paper, arXiv 2504.19874)
 *   hadamard random signs + fast Walsh–Hadamard (⊗ a small Haar block for
 *            head dims that are not powers of two)            → type "turbo"
 *   rotor    Cl(3,0) rotor sandwich R x R~ on groups of 3     (RotorQuant)
 *   planar   2-D Givens blocks                                 (PlanarQuant)
 *   iso      4-D quaternion blocks q_L v conj(q_R)             (IsoQuant)
 * plus the llama.cpp baselines f32, f16, q8_0, q4_0 and q4_0h.
 *
 * Conventions: every fallible function returns rq_status (0 = ok, < 0 =
 * error); rq_status_str() names it. The library never prints, exits or
 * aborts on user input. Every random object comes from an explicit seed via
 * the PRNG specified in docs/FORMAT.md: the same seed gives the same bytes on
 * every machine and every SIMD level. Block layouts: docs/FORMAT.md.
 */
#ifndef ROTORQUANT_H
#define ROTORQUANT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RQ_VERSION_MAJOR 0
#define RQ_VERSION_MINOR 1
#define RQ_VERSION_PATCH 0
/* Version of the on-disk/in-memory block format (docs/FORMAT.md). */
#define RQ_FORMAT_VERSION 1

/* ---------------------------------------------------------------------------
 * Errors. Numbers never change once released.
 * ------------------------------------------------------------------------- */
typedef enum {
    RQ_OK = 0,
    RQ_ERR_INVALID_ARG = -1,  /* NULL pointer, bad flag, n out of range       */
    RQ_ERR_DIM = -2,          /* head dimension unsupported by this type      */
    RQ_ERR_BITS = -3,         /* bit width out of range                       */
    RQ_ERR_NONFINITE = -4,    /* NaN or Inf in the input                      */
    RQ_ERR_NOMEM = -5,        /* allocation failed                            */
    RQ_ERR_UNKNOWN_TYPE = -6, /* type name not in the registry                */
    RQ_ERR_RANGE = -7,        /* value does not fit the format (|x| > 65504)  */
    RQ_ERR_FORMAT = -8,       /* malformed data (file or block)               */
    RQ_ERR_IO = -9,           /* file could not be read or written            */
    RQ_ERR_TRUNCATED = -10,   /* data ends early                              */
    RQ_ERR_SHAPE = -11,       /* array shapes do not match                    */
    RQ_ERR_UNSUPPORTED = -12, /* valid request this build cannot serve        */
} rq_status;

const char *rq_status_str(rq_status s);
const char *rq_version_str(void);

/* ---------------------------------------------------------------------------
 * Deterministic randomness (docs/FORMAT.md §2): xoshiro256** seeded with
 * splitmix64; uniforms from the top 53 bits; Gaussians by the Marsaglia polar
 * method with a libm-free logarithm. Bit-identical on every IEEE-754 machine.
 * ------------------------------------------------------------------------- */
typedef struct {
    uint64_t s[4];
} rq_rng;

void rq_rng_seed(rq_rng *rng, uint64_t seed);
uint64_t rq_rng_next(rq_rng *rng);
double rq_rng_uniform(rq_rng *rng); /* [0, 1), multiple of 2^-53 */
double rq_rng_gauss(rq_rng *rng);   /* N(0, 1) */
/* Seed of the sub-stream `stream` (an RQ_STREAM_* tag) for object `index`. */
uint64_t rq_seed_derive(uint64_t seed, uint64_t stream, uint64_t index);

/* IEEE half precision, round to nearest even (no hardware dependency). */
uint16_t rq_f32_to_f16(float f);
float rq_f16_to_f32(uint16_t h);

/* ---------------------------------------------------------------------------
 * Lloyd-Max codebooks for one coordinate of a rotated unit vector.
 * ------------------------------------------------------------------------- */
typedef enum {
    RQ_LAW_BETA = 0,  /* exact law: density ∝ (1−x²)^((d−3)/2) on [−1, 1] */
    RQ_LAW_GAUSS = 1, /* N(0, 1/d), the seed's approximation             */
} rq_law;

#define RQ_MAX_BITS 4
#define RQ_MIN_DIMS 2
#define RQ_MAX_DIMS 4096

typedef struct {
    int n_dims, n_bits, n_levels;  /* n_levels = 2^n_bits                  */
    rq_law law;
    float centroids[16];           /* ascending, symmetric                 */
    float bounds[15];              /* decision boundaries (midpoints)      */
    double centroids_f64[16];
    double distortion;             /* E[(x − c(x))²] per coordinate        */
    int n_iters;                   /* Lloyd iterations until converged     */
} rq_codebook;

/* Builds the codebook deterministically; centroid change < 1e-9 at exit. */
rq_status rq_codebook_init(rq_codebook *cb, int n_dims, int n_bits, rq_law law);
/* Index of the cell containing y: number of bounds strictly below y. */
int rq_codebook_index(const rq_codebook *cb, float y);

/* ---------------------------------------------------------------------------
 * Cl(3,0) geometric algebra. Blades: [1, e1, e2, e3, e12, e13, e23, e123].
 * ------------------------------------------------------------------------- */
typedef struct {
    double c[8];
} rq_mv;

enum { RQ_MV_S, RQ_MV_E1, RQ_MV_E2, RQ_MV_E3, RQ_MV_E12, RQ_MV_E13, RQ_MV_E23, RQ_MV_E123 };

rq_mv rq_mv_gp(rq_mv a, rq_mv b);         /* geometric product a b          */
rq_mv rq_mv_reverse(rq_mv a);             /* a~                             */
rq_mv rq_mv_grade(rq_mv a, int grade);    /* <a>_k, k = 0..3                */
double rq_mv_norm2(rq_mv a);              /* <a a~>_0                       */
/* Rotor exp(B/2) for the bivector part of B (b12 e12 + b13 e13 + b23 e23). */
rq_mv rq_rotor_exp(rq_mv bivector);
/* R x R~ by two full geometric products (the reference). */
rq_mv rq_rotor_sandwich(rq_mv rotor, rq_mv x);
/* Fused sparse sandwich on a grade-1 vector: rotor has 4 nonzero blades
 * (s, e12, e13, e23), v has 3; 28 multiplies. r = {s, b12, b13, b23}. */
void rq_rotor_apply3(const float r[4], const float v[3], float out[3]);
void rq_rotor_apply3_inverse(const float r[4], const float v[3], float out[3]);

/* ---------------------------------------------------------------------------
 * Rotations: exact orthogonal maps on R^d, forward Π and inverse Πᵀ.
 * ------------------------------------------------------------------------- */
typedef enum {
    RQ_ROT_NONE = 0,
    RQ_ROT_DENSE = 1,    /* Haar orthogonal d×d (QR with sign fix)          */
    RQ_ROT_HADAMARD = 2, /* (H_{2^k} ⊗ Q_m) · diag(signs), d = 2^k·m, m odd */
    RQ_ROT_ROTOR = 3,    /* Cl(3,0) rotors on groups of 3                   */
    RQ_ROT_PLANAR = 4,   /* Givens rotations on pairs                        */
    RQ_ROT_ISO = 5,      /* q_L v conj(q_R) on groups of 4                  */
} rq_rot_kind;

typedef struct rq_rotation rq_rotation;

rq_status rq_rotation_init(rq_rotation **out, rq_rot_kind kind, int n_dims, uint64_t seed);
void rq_rotation_free(rq_rotation *rot);
/* y[i] = Π x[i] for n_vec row vectors of n_dims floats (x == y allowed). */
rq_status rq_rotation_forward(const rq_rotation *rot, const float *x, float *y, size_t n_vec);
rq_status rq_rotation_inverse(const rq_rotation *rot, const float *x, float *y, size_t n_vec);
int rq_rotation_dims(const rq_rotation *rot);
rq_rot_kind rq_rotation_kind(const rq_rotation *rot);
/* Parameters the map holds (floats or sign bits), counted as scalars. */
size_t rq_rotation_n_params(const rq_rotation *rot);
const char *rq_rot_kind_name(rq_rot_kind kind);

/* ---------------------------------------------------------------------------
 * Types (the registry, docs/FORMAT.md §4) and quantizers.
 * ------------------------------------------------------------------------- */
typedef enum {
    RQ_FAMILY_F32, RQ_FAMILY_F16, RQ_FAMILY_Q8_0, RQ_FAMILY_Q4_0,
    RQ_FAMILY_MSE,  /* rotation + Lloyd-Max codes              */
    RQ_FAMILY_PROD, /* rotation + (b−1)-bit codes + 1-bit QJL  */
} rq_family;

typedef struct {
    const char *name;      /* "turbo3", "rotor2p", "q4_0h", ...              */
    rq_family family;
    rq_rot_kind rotation;  /* RQ_ROT_NONE for f32/f16/q8_0/q4_0              */
    int n_bits;            /* nominal bits per value (MSE bits + QJL bit)    */
    int block_values;      /* 32 for q8_0/q4_0, 0 = whole vector             */
} rq_type_info;

int rq_type_count(void);
const rq_type_info *rq_type_at(int i);
const rq_type_info *rq_type_find(const char *name);
/* Exact stored bytes of one d-dimensional vector, or 0 if d is unsupported. */
size_t rq_type_bytes_per_vector(const rq_type_info *t, int n_dims);

typedef enum {
    RQ_QJL_GAUSSIAN = 0,   /* S: m×d i.i.d. N(0,1), m = d (the seed's)      */
    RQ_QJL_STRUCTURED = 1, /* S = √d · Hadamard rotation: O(d) parameters   */
} rq_qjl_kind;

typedef struct {
    uint64_t seed;        /* every random object derives from it            */
    rq_law law;           /* codebook law (default RQ_LAW_BETA)              */
    int norm_correct;     /* store ‖x‖/‖ĉ‖ so decode keeps ‖x‖ (default 0)  */
    rq_qjl_kind qjl;      /* QJL sketch matrix (default Gaussian)            */
} rq_quant_config;

rq_quant_config rq_quant_config_default(void);

typedef struct rq_quantizer rq_quantizer;

rq_status rq_quantizer_init(rq_quantizer **out, const char *type_name, int n_dims,
                            const rq_quant_config *cfg /* NULL = default */);
void rq_quantizer_free(rq_quantizer *q);
const rq_type_info *rq_quantizer_type(const rq_quantizer *q);
int rq_quantizer_dims(const rq_quantizer *q);
size_t rq_quantizer_bytes_per_vector(const rq_quantizer *q);
/* Nominal bits per value = 8 · bytes_per_vector / d (everything counted). */
double rq_quantizer_bits_per_value(const rq_quantizer *q);
/* Every parameter the quantizer holds: rotation, codebook, QJL matrix. */
size_t rq_quantizer_n_params(const rq_quantizer *q);
const rq_codebook *rq_quantizer_codebook(const rq_quantizer *q); /* NULL if none */
const rq_rotation *rq_quantizer_rotation(const rq_quantizer *q); /* NULL if none */

/* n_vec vectors of d floats → n_vec blocks of bytes_per_vector bytes. On any
 * error nothing is written past the vectors already encoded, and the status
 * tells which check failed (NaN/Inf → RQ_ERR_NONFINITE). */
rq_status rq_quantizer_encode(const rq_quantizer *q, const float *x, void *blocks, size_t n_vec);
rq_status rq_quantizer_decode(const rq_quantizer *q, const void *blocks, float *x, size_t n_vec);
/* Inner-product estimates out[i] = <y, x̂_i> (unbiased for PROD types). */
rq_status rq_quantizer_dot(const rq_quantizer *q, const float *y, const void *blocks,
                           size_t n_vec, float *out);

/* ---------------------------------------------------------------------------
 * Metrics (src/metrics.c) — used by the CLI, benchmarks and tests.
 * ------------------------------------------------------------------------- */
/* Mean over n vectors of ‖x − x̂‖² / ‖x‖² (vectors with ‖x‖ = 0 skipped). */
double rq_metric_rel_mse(const float *x, const float *xhat, size_t n, int d);
/* Pearson correlation of two length-n series. */
double rq_metric_pearson(const double *a, const double *b, size_t n);
/* Cosine similarity of two length-n vectors (0 if either is zero). */
double rq_metric_cosine(const double *a, const double *b, size_t n);
/* KL(p ‖ q) of the softmaxes of two logit vectors, in nats. */
double rq_metric_softmax_kl(const double *logits_p, const double *logits_q, size_t n);
/* Index of the maximum (first on ties). */
size_t rq_metric_argmax(const double *a, size_t n);
/* 1 if index `target` is among the k largest entries of a, else 0. */
int rq_metric_in_topk(const double *a, size_t n, size_t target, size_t k);

/* Synthetic data sets for benchmarks and tests (deterministic per seed). */
typedef enum {
    RQ_DATA_ISOTROPIC = 0, /* uniform on the unit sphere                        */
    RQ_DATA_OUTLIER = 1,   /* Gaussian with 4 channels at 10–30× the std dev,
                              normalized (as real keys have, DESIGN.md §3)     */
} rq_dataset;
rq_status rq_data_generate(rq_dataset kind, uint64_t seed, float *x, size_t n, int d);
const char *rq_dataset_name(rq_dataset kind);

/* ---------------------------------------------------------------------------
 * Compressed KV cache with fused decode attention (src/kvcache.c).
 *
 * Storage: for every layer × KV head, keys and values in pages of
 * `page_tokens` blocks (one block per token, the type's exact layout), so
 * appending never copies earlier tokens; only the page table (pointers)
 * grows. Key and value types are chosen independently (asymmetric K/V).
 * Attention runs on the packed blocks: the query is rotated once per KV
 * head, keys are scored by codebook lookups over their codes (+ the QJL sign
 * term for `p` types), softmax is computed online, values are accumulated in
 * the rotated domain and one inverse rotation is applied to the output.
 * ------------------------------------------------------------------------- */
typedef struct rq_cache rq_cache;

typedef struct {
    int n_layers, n_kv_heads, head_dim;
    const char *type_k, *type_v; /* registry names, e.g. "turbo3", "q8_0"      */
    rq_quant_config quant;       /* K uses quant.seed, V a seed derived from it */
    int page_tokens;             /* tokens per page, 0 = 256                    */
    int n_threads;               /* attention threads, 0 = 1                    */
} rq_cache_config;

rq_cache_config rq_cache_config_default(void);
rq_status rq_cache_init(rq_cache **out, const rq_cache_config *cfg);
void rq_cache_free(rq_cache *c);
/* Append n_tokens positions to one layer: k, v are [n_tokens][n_kv_heads][head_dim].
 * On error nothing is appended (all tokens are validated and encoded first). */
rq_status rq_cache_append(rq_cache *c, int layer, const float *k, const float *v, size_t n_tokens);
/* Forget every token of every layer (pages are kept for reuse). */
void rq_cache_clear(rq_cache *c);
size_t rq_cache_n_tokens(const rq_cache *c, int layer);
/* Exact payload bytes per token over all layers and heads, K + V. */
size_t rq_cache_bytes_per_token(const rq_cache *c);
/* Payload bytes stored now (= Σ_layers tokens × per-layer bytes per token). */
size_t rq_cache_bytes_used(const rq_cache *c);
/* Bytes allocated: pages (including unused slots of the last page) and page tables. */
size_t rq_cache_bytes_allocated(const rq_cache *c);
const rq_quantizer *rq_cache_quantizer(const rq_cache *c, int is_value);

typedef struct {
    int n_q_heads; /* query heads; a multiple of n_kv_heads. Query head h reads
                      KV head h / (n_q_heads / n_kv_heads) (GQA)              */
    float scale;   /* score scale; 0 = 1/sqrt(head_dim)                        */
} rq_attn_params;

/* out[i][h] = Σ_t softmax_t(scale · <q[i][h], k_t>) v_t over t < n_ctx[i]
 * (n_ctx = NULL: every cached token; a causal limit per query otherwise).
 * q, out: [n_queries][n_q_heads][head_dim]. Keys and values are never
 * reconstructed. */
rq_status rq_cache_attention(const rq_cache *c, int layer, const float *q, size_t n_queries,
                             const size_t *n_ctx, const rq_attn_params *p, float *out);
/* The reference: decode every key and value, exact softmax attention in
 * double. Same arguments; for tests and accuracy measurements. */
rq_status rq_cache_attention_ref(const rq_cache *c, int layer, const float *q, size_t n_queries,
                                 const size_t *n_ctx, const rq_attn_params *p, float *out);

#ifdef __cplusplus
}
#endif
#endif /* ROTORQUANT_H */
