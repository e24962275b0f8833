/*
 * rotorquant.h — the one public header of librotorquant.
 *
 * Compresses transformer KV-cache head vectors to 1–5 bits per value with
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

#define RQ_MAX_BITS 5  /* codebook bits: MSE types 1..5, QJL `p` types 1..4 */
#define RQ_MIN_DIMS 2
#define RQ_MAX_DIMS 4096

typedef struct {
    int n_dims, n_bits, n_levels;  /* n_levels = 2^n_bits                  */
    rq_law law;
    float centroids[1 << RQ_MAX_BITS];     /* ascending, symmetric; n_levels used */
    float bounds[(1 << RQ_MAX_BITS) - 1];  /* decision boundaries (midpoints) */
    double centroids_f64[1 << RQ_MAX_BITS];
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
    RQ_ROT_COUNT         /* number of kinds (not a kind)                     */
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
/* n_vec blocks → n_vec vectors. A block with a NaN or Inf in an fp16 field
 * (norm, scale, f16 value) or an f32 value — which encode never writes — is
 * RQ_ERR_FORMAT; the vectors before it are decoded. */
rq_status rq_quantizer_decode(const rq_quantizer *q, const void *blocks, float *x, size_t n_vec);
/* Inner-product estimates out[i] = <y, x̂_i> (unbiased for PROD types);
 * malformed blocks as rq_quantizer_decode. */
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

/* Key bases (optional, per layer and KV head): invertible head_dim ×
 * head_dim matrices A_r (row-major), one per range of key positions: range r
 * serves positions start[r] .. start[r+1] − 1 and the last range every later
 * position (start[0] = 0, strictly increasing). The cache stores the key at
 * position t as A_r·k, r = the range of t, and scores the query as A_r⁻ᵀq
 * against it, so each score <A_r⁻ᵀq, A_r k> = <q, k> is unchanged in exact
 * arithmetic: only where the quantization error falls moves. Ranges exist
 * because RoPE turns keys with their position, so the best basis changes
 * along the context; attention prepares each query once per range that holds
 * tokens. rq_key_basis_fit chooses each A_r from key and query statistics
 * (calibration). Set while the layer holds no tokens; n_ranges = 0 or A =
 * NULL removes the bases. Errors: RQ_ERR_INVALID_ARG (bad layer/head/starts,
 * tokens already stored, an A_r singular or with condition number > 1e7),
 * RQ_ERR_NONFINITE (NaN/Inf in A). */
rq_status rq_cache_set_key_basis(rq_cache *c, int layer, int kv_head, size_t n_ranges, const size_t *start,
                                 const float *A);

/* The basis that minimizes the expected squared score error of a
 * rotation-based quantizer (error ≈ isotropic, ∝ ‖stored key‖²): from the
 * key second moment Sk = E[k kᵀ] and that of the queries reading those keys,
 * Sq = E[q qᵀ] (d×d, row-major, double), A = P^½ with P = Sk⁻¹ # Sq, the
 * matrix geometric mean (P Sk P = Sq); a ridge of 1e-4·tr(S)/d is added to
 * both moments; A is scaled so that tr(A Sk Aᵀ) = tr(Sk). The expected
 * error falls from ∝ tr(Sk)·tr(Sq) to ∝ (tr (Sk^½ Sq Sk^½)^½)² (src/keybasis.c).
 * Deterministic (double, fixed order). RQ_ERR_INVALID_ARG if a moment has
 * no energy, RQ_ERR_NONFINITE for NaN/Inf. */
rq_status rq_key_basis_fit(const double *Sk, const double *Sq, int d, float *A);
/* out = A⁻ᵀ (d×d, row-major; Gauss–Jordan in double), the map the cache
 * applies to queries. RQ_ERR_INVALID_ARG if A is singular or its 1-norm
 * condition number exceeds 1e7, RQ_ERR_NONFINITE for NaN/Inf. */
rq_status rq_key_basis_inverse_t(const float *A, int d, float *out);

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

/* ---------------------------------------------------------------------------
 * Threads (src/threads.c): one process-wide pool of workers behind every
 * parallel loop of the library — and of its callers: the model's matrix
 * products use it too, so attention and matmuls never run two sets of
 * threads on the same cores. Workers spin briefly (0.1 ms) before they
 * sleep, so back-to-back calls do not pay a thread wake-up each.
 * ------------------------------------------------------------------------- */
typedef void (*rq_task_fn)(void *ctx, int task);
/* Runs fn(ctx, t) for t = 0 .. n_tasks−1 on up to n_threads threads (the
 * calling thread included) and returns when every task is done. Tasks are
 * handed out dynamically: a result must not depend on which thread ran a
 * task. Concurrent calls take turns; a call from inside a task runs inline. */
void rq_parallel_for(int n_threads, int n_tasks, rq_task_fn fn, void *ctx);
/* Joins the workers (they restart on the next call). Optional, at exit. */
void rq_threads_shutdown(void);

/* ---------------------------------------------------------------------------
 * SIMD kernels (src/simd/): chosen once from cpuid, overridable with the
 * environment variable RQ_SIMD=scalar|avx2|avx512. Every level produces the
 * same bytes; only speed differs.
 * ------------------------------------------------------------------------- */
/* The level in use: "scalar", "avx2" or "avx512". */
const char *rq_simd_name(void);
typedef enum { RQ_SIMD_SCALAR = 0, RQ_SIMD_AVX2 = 1, RQ_SIMD_AVX512 = 2 } rq_simd_level;
/* The level in use, as an enum (rq_simd_name() is its name). */
rq_simd_level rq_simd_get(void);
/* RQ_OK, or RQ_ERR_INVALID_ARG when the environment variable RQ_SIMD is now
 * set to something other than scalar, avx2, avx512 or the empty string; such
 * a value is ignored (the level is the automatic choice). A valid level the
 * CPU lacks falls back to the best one it has, which is not an error. */
rq_status rq_simd_status(void);

/* ---------------------------------------------------------------------------
 * CUDA (src/cuda/, built by `make CUDA=1`; other builds answer every call
 * with RQ_ERR_UNSUPPORTED and rq_cuda_available() == 0). Pointers named d_*
 * are device memory; `stream` is a cudaStream_t (NULL = default stream) and
 * the calls that take one are asynchronous. A failing CUDA runtime call is
 * reported as RQ_ERR_UNSUPPORTED and rq_cuda_error_str() gives its text.
 * ------------------------------------------------------------------------- */
int rq_cuda_available(void);          /* 1 if built with CUDA and a GPU is present */
const char *rq_cuda_error_str(void);  /* last CUDA error seen, "" if none          */
rq_status rq_cuda_device_name(char *buf, size_t n);
rq_status rq_cuda_malloc(void **d_ptr, size_t bytes);
void rq_cuda_free(void *d_ptr);
rq_status rq_cuda_upload(void *d_dst, const void *src, size_t bytes);
rq_status rq_cuda_download(void *dst, const void *d_src, size_t bytes);
rq_status rq_cuda_memset(void *d_dst, int value, size_t bytes);
rq_status rq_cuda_synchronize(void);

/* A quantizer's rotation, codebook and QJL matrix on the GPU. Serves every
 * MSE and PROD type (all rotation families) with head_dim ≤ 256; the blocks
 * are byte-identical to rq_quantizer_encode's. q may be freed afterwards. */
typedef struct rq_cuda_quantizer rq_cuda_quantizer;
rq_status rq_cuda_quantizer_init(rq_cuda_quantizer **out, const rq_quantizer *q);
void rq_cuda_quantizer_free(rq_cuda_quantizer *g);
/* d_x [n_vec][d] f32 → d_blocks [n_vec][bytes_per_vector], one fused launch.
 * A vector with NaN/Inf or a norm beyond fp16 gets an all-zero block and its
 * status is recorded; rq_cuda_quantizer_check() waits for the device and
 * returns (and clears) the first recorded status. */
rq_status rq_cuda_encode(rq_cuda_quantizer *g, const float *d_x, void *d_blocks, size_t n_vec, void *stream);
rq_status rq_cuda_quantizer_check(rq_cuda_quantizer *g);
/* Blocks → vectors (f32: the same floats as rq_quantizer_decode; f16: those
 * rounded to nearest even). */
rq_status rq_cuda_decode(const rq_cuda_quantizer *g, const void *d_blocks, float *d_x, size_t n_vec,
                         void *stream);
rq_status rq_cuda_decode_f16(const rq_cuda_quantizer *g, const void *d_blocks, uint16_t *d_x, size_t n_vec,
                             void *stream);

/* Decode attention of one new token over a contiguous compressed cache:
 * keys and values of KV head h are blocks d_k/d_v + (h·kv_stride + t)·bytes,
 * t < n_tokens (kv_stride 0 = n_tokens). d_q, d_out: [n_q_heads][head_dim];
 * query head i reads KV head i / (n_q_heads / n_kv_heads) (GQA).
 * out = Σ_t softmax_t(scale·<q, k_t>) v_t, scale 0 = 1/√head_dim. Split-K
 * over thread blocks; keys scored from their codes against the query rotated
 * once, values summed in the rotated domain, one inverse rotation at the
 * end. MSE key/value types (QJL `p` types are served by the CPU cache).
 * head_dim % 16 == 0 runs on the tensor cores with fp16 centroids (≤ 2^-11
 * relative per decoded coordinate, float accumulation); other head dims
 * (multiples of 8) on the CUDA cores in float.
 * The workspace (splits, rotated queries) is allocated by init only. */
typedef struct rq_cuda_attn rq_cuda_attn;
rq_status rq_cuda_attn_init(rq_cuda_attn **out, int n_q_heads, int n_kv_heads, int head_dim);
void rq_cuda_attn_free(rq_cuda_attn *a);
void rq_cuda_attn_set_splits(rq_cuda_attn *a, int n_splits); /* 0 = automatic (default) */
rq_status rq_cuda_attention(rq_cuda_attn *a, const rq_cuda_quantizer *k, const rq_cuda_quantizer *v,
                            const float *d_q, const void *d_k, const void *d_v, size_t n_tokens,
                            size_t kv_stride, float scale, float *d_out, void *stream);
/* The same over f16 keys and values [n_kv_heads][kv_stride][head_dim]
 * (16-byte aligned): the baseline the packed kernel is measured against. */
rq_status rq_cuda_attention_f16(rq_cuda_attn *a, const float *d_q, const uint16_t *d_k, const uint16_t *d_v,
                                size_t n_tokens, size_t kv_stride, float scale, float *d_out, void *stream);

/* ---------------------------------------------------------------------------
 * Evaluation (issue 3): NumPy .npy arrays (src/npy.c) and the quality of a
 * quantizer on given data (src/eval.c) — what `rotorquant bench` and
 * `rotorquant eval` report. Everything goes through the public quantizer API
 * (encode → decode); exact references are computed in double. For PROD (`p`)
 * types <y, decode(x)> is the unbiased QJL estimator (docs/FORMAT.md §5).
 * ------------------------------------------------------------------------- */
#define RQ_NPY_MAX_DIMS 8

/* An array read from a .npy file, converted to float32, C order. */
typedef struct {
    int n_dims;                     /* 1..RQ_NPY_MAX_DIMS                     */
    size_t shape[RQ_NPY_MAX_DIMS];
    size_t n_elems;                 /* product of shape (may be 0)            */
    int file_itemsize;              /* 4 ('<f4') or 2 ('<f2') in the file     */
    float *data;                    /* n_elems floats; NULL on error          */
    char error[160];                /* on error: what was wrong, one line     */
} rq_npy_array;

/* Reads NPY format 1.0, 2.0 or 3.0 with dtype '<f4' or '<f2', C order. Every
 * field is validated: magic, version, header length against the file size,
 * the header dict (exactly 'descr', 'fortran_order', 'shape'), the shape
 * product (overflow) against the bytes that follow (no more, no fewer).
 * Errors: RQ_ERR_IO (cannot open/read), RQ_ERR_FORMAT (not NPY, malformed
 * header, shape overflow, trailing bytes), RQ_ERR_TRUNCATED (file ends early),
 * RQ_ERR_UNSUPPORTED (other dtype or byte order, fortran_order, > 8 dims),
 * RQ_ERR_SHAPE (0-d array); out->error then names the problem. Free with
 * rq_npy_free (also after an error). */
rq_status rq_npy_read(const char *path, rq_npy_array *out);
void rq_npy_free(rq_npy_array *a);
/* Writes float32 data as NPY 1.0 ('<f4', C order, header padded to 64 bytes). */
rq_status rq_npy_write(const char *path, const float *data, int n_dims, const size_t *shape);
/* The same as '<f2' (round to nearest even); RQ_ERR_RANGE if a value is not
 * finite or exceeds the f16 range (nothing written). */
rq_status rq_npy_write_f16(const char *path, const float *data, int n_dims, const size_t *shape);

/* Relative MSE of encode → decode over n vectors (rq_metric_rel_mse). */
rq_status rq_eval_mse(const rq_quantizer *q, const float *x, size_t n_vec, double *mse);

/* Inner products of pairs: est_i = <y_i, decode(encode(x_i))>, exact_i =
 * <y_i, x_i> in double. The n_pairs vectors x are encoded once and paired
 * with n_sets sets of partners: y holds n_sets × n_pairs vectors, out[s]
 * gets set s. */
typedef struct {
    size_t n;
    double mse;    /* relative MSE of the x (same in every set)       */
    double mean_exact, mean_est;
    double bias;   /* mean(est − exact)                               */
    double ratio;  /* mean_est / mean_exact (shrinkage; 0 if exact 0) */
    double err_std;/* standard deviation of est − exact              */
    double rmse;   /* sqrt(mean((est − exact)²))                      */
    double corr;   /* Pearson(exact, est); 0 if exact is constant     */
} rq_eval_ip_result;
rq_status rq_eval_ip(const rq_quantizer *q, const float *x, const float *y, size_t n_pairs, size_t n_sets,
                     rq_eval_ip_result *out);

/* Attention fidelity of softmax attention over n_keys keys, per query i over
 * the first n_ctx[i] keys (n_ctx NULL: all):
 *   exact  s_t = scale·<q, k_t>, p = softmax(s), o = Σ p_t v_t   (double)
 *   est    ŝ_t = scale·<q, k̂_t>, p̂ = softmax(ŝ), ô = Σ p̂_t v̂_t
 * with k̂ = decode(encode(k)) by qk and v̂ by qv (qv NULL: values exact).
 * scale 0 = 1/sqrt(d). Every input must be finite (RQ_ERR_NONFINITE). */
typedef struct {
    size_t n_keys, n_queries;
    double mse;           /* keys: mean ‖k − k̂‖²/‖k‖²                          */
    double mse_values;    /* values, 0 if none or exact                         */
    double ip_corr;       /* Pearson of exact vs estimated <q,k> over all pairs */
    double ip_bias;       /* mean(est − exact) <q,k> over all pairs             */
    double ip_rmse;       /* sqrt(mean((est − exact)²)) over all pairs          */
    double score_cosine;  /* mean over queries of cos(s, ŝ) (uncentered)        */
    double softmax_kl;    /* mean over queries of KL(p ‖ p̂), nats                */
    double top1;          /* fraction of queries with argmax ŝ = argmax s       */
    double top5;          /* fraction with argmax s among the 5 largest ŝ       */
    double output_cosine; /* mean cos(o, ô); 0 when values is NULL              */
} rq_eval_attn_result;
rq_status rq_eval_attention(const rq_quantizer *qk, const rq_quantizer *qv, const float *keys,
                            const float *values, size_t n_keys, const float *queries, size_t n_queries,
                            const size_t *n_ctx, float scale, rq_eval_attn_result *out);
/* The same metrics with k̂ and v̂ given (keys_hat, values_hat: [n_keys][d],
 * decoded by the caller; values and values_hat both NULL or both set): for
 * stored forms the quantizers alone do not describe, e.g. keys in a key
 * basis (decoded k̂ = A⁻¹·decode(encode(A k))). */
rq_status rq_eval_attention_decoded(int d, const float *keys, const float *keys_hat, const float *values,
                                    const float *values_hat, size_t n_keys, const float *queries, size_t n_queries,
                                    const size_t *n_ctx, float scale, rq_eval_attn_result *out);

/* Needle retrieval with a noisy query: each trial picks a position p at
 * random (seeded) and queries with k_p + σg, g ~ N(0, I_d), σ² = ‖k_p‖²/(d·snr)
 * (snr = signal energy / noise energy). A hit: the largest estimated score
 * <q, k̂_t> is at p. rate_exact: the same with exact scores (the ceiling). */
typedef struct {
    size_t n_trials;
    double rate, rate_exact;
} rq_eval_needle_result;
rq_status rq_eval_needle(const rq_quantizer *q, const float *keys, size_t n_keys, double snr,
                         size_t n_trials, uint64_t seed, rq_eval_needle_result *out);

/* Encode and decode throughput on n_vec vectors: medians over n_reps runs
 * (wall clock, CLOCK_MONOTONIC), one thread, vectors per second. */
typedef struct {
    double encode_vps, decode_vps;
} rq_eval_speed_result;
rq_status rq_eval_speed(const rq_quantizer *q, const float *x, size_t n_vec, int n_reps,
                        rq_eval_speed_result *out);

/* MSE of a bare rotation + codebook pair, outside any type: each x is
 * normalized, rotated (rot NULL: not rotated), and every coordinate replaced
 * by its codebook centroid; mse = mean ‖Πu − ĉ‖² (= ‖u − û‖², Π orthogonal).
 * For experiments such as the seed's RotorQuant, whose codebook was built for
 * a dimension d_eff = 8·⌈d/3⌉ instead of d (research/reference_impl.md §6.3). */
rq_status rq_eval_codebook_mse(const rq_rotation *rot, const rq_codebook *cb, const float *x, size_t n_vec,
                               int d, double *mse);

/* Pairs with a prescribed inner product: pair i takes x = pool[i mod n_pool]
 * and z = the first pool vector from index (i + n_pool/2) mod n_pool on that
 * is not parallel to x; x_out = x/‖x‖, y_out = rho·x_out + sqrt(1−rho²)·ẑ⊥
 * (ẑ⊥: z orthogonalized against x, normalized). So ‖x‖ = ‖y‖ = 1 and
 * <x, y> = rho exactly (to float rounding). rho in [−1, 1]. */
rq_status rq_data_pairs(const float *pool, size_t n_pool, int d, double rho, size_t n_pairs,
                        float *x_out, float *y_out);

/* Attention queries that are not flat: query i = base_i/‖base_i‖ plus the
 * sum of n_hot distinct random keys k_h/‖k_h‖ ("hot" keys, positions drawn
 * from seed), rescaled so the exact logits scale·<q, k_t> over the n_keys keys
 * have standard deviation logit_std (scale 0 = 1/sqrt(d)). */
rq_status rq_data_queries(const float *keys, size_t n_keys, const float *base, size_t n_queries, int d,
                          int n_hot, double logit_std, float scale, uint64_t seed, float *q_out);

#ifdef __cplusplus
}
#endif
#endif /* ROTORQUANT_H */
