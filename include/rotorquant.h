/*
 * rotorquant.h — the core public header of librotorquant: status and
 * version, types, quantizers, rotations, the compressed KV cache and its
 * attention, threads, SIMD level. The evaluation harness (metrics, data
 * sets, .npy, eval) is in rotorquant_eval.h, the GPU API in
 * rotorquant_cuda.h. Link with `pkg-config --cflags --libs rotorquant`.
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
 *
 * Ownership: an object made by rq_X_init belongs to the caller and is
 * released by rq_X_free (which accepts NULL); pointers the library returns
 * from a getter live as long as the object they came from. Arrays passed in
 * are only read during the call, never kept.
 *
 * Threads: functions without an object argument are safe to call from any
 * thread at any time. Objects follow one rule, stated again per object:
 * a function taking `const T *` only reads it and may run on any number of
 * threads at once; one taking `T *` needs exclusive access to the object
 * (no other call on it may run at the same time).
 */
#ifndef ROTORQUANT_H
#define ROTORQUANT_H

#include <stddef.h>
#include <stdint.h>

/* RQ_API marks the exported symbols: the library is built with
 * -fvisibility=hidden, so everything else stays internal. */
#if defined(_WIN32) && defined(RQ_BUILDING_DLL)
#define RQ_API __declspec(dllexport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#define RQ_API __attribute__((visibility("default")))
#else
#define RQ_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define RQ_VERSION_MAJOR 0
#define RQ_VERSION_MINOR 2
#define RQ_VERSION_PATCH 0
/* MAJOR·10000 + MINOR·100 + PATCH, for compile-time checks. */
#define RQ_VERSION_NUMBER (RQ_VERSION_MAJOR * 10000 + RQ_VERSION_MINOR * 100 + RQ_VERSION_PATCH)
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

RQ_API const char *rq_status_str(rq_status s);
/* The message of the last failed library call on the calling thread, naming
 * the function, the argument and the value at fault, e.g.
 * "rq_cache_append: layer 31 out of range (n_layers = 30)"; "" if no call on
 * this thread has failed yet. Like errno, successful calls leave it
 * unchanged: read it right after a call returned an error. Thread-local, so
 * threads sharing an object never see each other's messages. The pointer
 * stays valid for the thread's lifetime; the text until its next failed
 * call. Set by the quantizer, rotation, cache, attention and key-basis
 * functions. */
RQ_API const char *rq_last_error(void);
/* Empties this thread's message (so a later read shows only newer failures). */
RQ_API void rq_last_error_clear(void);
/* "MAJOR.MINOR.PATCH" and RQ_VERSION_NUMBER of the library actually linked
 * (compare with the header's macros to detect a mismatch). */
RQ_API const char *rq_version_str(void);
RQ_API unsigned rq_version_number(void);

/* ---------------------------------------------------------------------------
 * Deterministic randomness (docs/FORMAT.md §2): xoshiro256** seeded with
 * splitmix64; uniforms from the top 53 bits; Gaussians by the Marsaglia polar
 * method with a libm-free logarithm. Bit-identical on every IEEE-754 machine.
 * ------------------------------------------------------------------------- */
typedef struct {
    uint64_t s[4];
} rq_rng;

RQ_API void rq_rng_seed(rq_rng *rng, uint64_t seed);
RQ_API uint64_t rq_rng_next(rq_rng *rng);
RQ_API double rq_rng_uniform(rq_rng *rng); /* [0, 1), multiple of 2^-53 */
RQ_API double rq_rng_gauss(rq_rng *rng);   /* N(0, 1) */
/* Seed of the sub-stream `stream` for object `index` (docs/FORMAT.md §2
 * lists the stream tags the library itself uses). */
RQ_API uint64_t rq_seed_derive(uint64_t seed, uint64_t stream, uint64_t index);

/* IEEE half precision, round to nearest even (no hardware dependency). */
RQ_API uint16_t rq_f32_to_f16(float f);
RQ_API float rq_f16_to_f32(uint16_t h);

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
RQ_API rq_status rq_codebook_init(rq_codebook *cb, int n_dims, int n_bits, rq_law law);
/* Index of the cell containing y: number of bounds strictly below y. */
RQ_API int rq_codebook_index(const rq_codebook *cb, float y);

/* ---------------------------------------------------------------------------
 * Cl(3,0) geometric algebra. Blades: [1, e1, e2, e3, e12, e13, e23, e123].
 * ------------------------------------------------------------------------- */
typedef struct {
    double c[8];
} rq_mv;

enum { RQ_MV_S, RQ_MV_E1, RQ_MV_E2, RQ_MV_E3, RQ_MV_E12, RQ_MV_E13, RQ_MV_E23, RQ_MV_E123 };

RQ_API rq_mv rq_mv_gp(rq_mv a, rq_mv b);         /* geometric product a b          */
RQ_API rq_mv rq_mv_reverse(rq_mv a);             /* a~                             */
RQ_API rq_mv rq_mv_grade(rq_mv a, int grade);    /* <a>_k, k = 0..3                */
RQ_API double rq_mv_norm2(rq_mv a);              /* <a a~>_0                       */
/* Rotor exp(B/2) for the bivector part of B (b12 e12 + b13 e13 + b23 e23). */
RQ_API rq_mv rq_rotor_exp(rq_mv bivector);
/* R x R~ by two full geometric products (the reference). */
RQ_API rq_mv rq_rotor_sandwich(rq_mv rotor, rq_mv x);
/* Fused sparse sandwich on a grade-1 vector: rotor has 4 nonzero blades
 * (s, e12, e13, e23), v has 3; 28 multiplies. r = {s, b12, b13, b23}. */
RQ_API void rq_rotor_apply3(const float r[4], const float v[3], float out[3]);
RQ_API void rq_rotor_apply3_inverse(const float r[4], const float v[3], float out[3]);

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

RQ_API rq_status rq_rotation_init(rq_rotation **out, rq_rot_kind kind, int n_dims, uint64_t seed);
RQ_API void rq_rotation_free(rq_rotation *rot);
/* y[i] = Π x[i] for n_vec row vectors of n_dims floats (x == y allowed). */
RQ_API rq_status rq_rotation_forward(const rq_rotation *rot, const float *x, float *y, size_t n_vec);
RQ_API rq_status rq_rotation_inverse(const rq_rotation *rot, const float *x, float *y, size_t n_vec);
RQ_API int rq_rotation_dims(const rq_rotation *rot);
RQ_API rq_rot_kind rq_rotation_kind(const rq_rotation *rot);
/* Parameters the map holds (floats or sign bits), counted as scalars. */
RQ_API size_t rq_rotation_n_params(const rq_rotation *rot);
RQ_API const char *rq_rot_kind_name(rq_rot_kind kind);

/* ---------------------------------------------------------------------------
 * Types (the registry, docs/FORMAT.md §4) and quantizers.
 * ------------------------------------------------------------------------- */
typedef enum {
    RQ_FAMILY_F32, RQ_FAMILY_F16, RQ_FAMILY_Q8_0, RQ_FAMILY_Q4_0,
    RQ_FAMILY_MSE,  /* rotation + Lloyd-Max codes              */
    RQ_FAMILY_PROD, /* rotation + (b−1)-bit codes + 1-bit QJL  */
    RQ_FAMILY_TCQ,  /* rotation + trellis-coded b-bit stream   */
} rq_family;

typedef struct {
    const char *name;      /* "turbo3", "rotor2p", "q4_0h", ...              */
    rq_family family;
    rq_rot_kind rotation;  /* RQ_ROT_NONE for f32/f16/q8_0/q4_0              */
    int n_bits;            /* nominal bits per value (MSE bits + QJL bit)    */
    int block_values;      /* 32 for q8_0/q4_0, 0 = whole vector             */
    int key_scaled;        /* 1 for the k8 types: 1-byte norms relative to a
                            * cache's per-head key scale σ (key types of a
                            * centred cache only; docs/FORMAT.md §5.2)      */
} rq_type_info;

RQ_API int rq_type_count(void);
RQ_API const rq_type_info *rq_type_at(int i);
RQ_API const rq_type_info *rq_type_find(const char *name);
/* Exact stored bytes of one d-dimensional vector, or 0 if d is unsupported. */
RQ_API size_t rq_type_bytes_per_vector(const rq_type_info *t, int n_dims);

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

RQ_API rq_quant_config rq_quant_config_default(void);

typedef struct rq_quantizer rq_quantizer;

RQ_API rq_status rq_quantizer_init(rq_quantizer **out, const char *type_name, int n_dims,
                            const rq_quant_config *cfg /* NULL = default */);
RQ_API void rq_quantizer_free(rq_quantizer *q);
RQ_API const rq_type_info *rq_quantizer_type(const rq_quantizer *q);
RQ_API int rq_quantizer_dims(const rq_quantizer *q);
RQ_API size_t rq_quantizer_bytes_per_vector(const rq_quantizer *q);
/* Nominal bits per value = 8 · bytes_per_vector / d (everything counted). */
RQ_API double rq_quantizer_bits_per_value(const rq_quantizer *q);
/* Every parameter the quantizer holds: rotation, codebook (TCQ: its 256-entry
 * LUT), QJL matrix. */
RQ_API size_t rq_quantizer_n_params(const rq_quantizer *q);
RQ_API const rq_codebook *rq_quantizer_codebook(const rq_quantizer *q); /* NULL if none (also TCQ types) */
RQ_API const rq_rotation *rq_quantizer_rotation(const rq_quantizer *q); /* NULL if none */

/* n_vec vectors of d floats → n_vec blocks of bytes_per_vector bytes. On any
 * error nothing is written past the vectors already encoded, and the status
 * tells which check failed (NaN/Inf → RQ_ERR_NONFINITE). */
RQ_API rq_status rq_quantizer_encode(const rq_quantizer *q, const float *x, void *blocks, size_t n_vec);
/* n_vec blocks → n_vec vectors. A block with a NaN or Inf in an fp16 field
 * (norm, scale, f16 value) or an f32 value — which encode never writes — is
 * RQ_ERR_FORMAT (every block is checked first: x is then untouched). */
RQ_API rq_status rq_quantizer_decode(const rq_quantizer *q, const void *blocks, float *x, size_t n_vec);
/* Inner-product estimates out[i] = <y, x̂_i> (unbiased for PROD types);
 * malformed blocks as rq_quantizer_decode (out then untouched);
 * RQ_ERR_RANGE when a product overflows float (out then partly written). */
RQ_API rq_status rq_quantizer_dot(const rq_quantizer *q, const float *y, const void *blocks,
                           size_t n_vec, float *out);

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
 *
 * Threads: every function taking `const rq_cache *` (attention, the
 * getters) may run on any number of threads at once, on the same or on
 * different layers; attention's results are bit for bit those of the same
 * call made alone, whatever else runs. Functions taking `rq_cache *`
 * (append, clear, setting or loading key bases, free) need exclusive
 * access: no other call on the cache may run meanwhile. Quantizers,
 * rotations and codebooks are immutable after init and may be shared
 * likewise (all their functions take const pointers).
 *
 * Memory: append encodes into staging buffers kept in the cache, grown to
 * the largest append; attention works in a workspace, the caller's
 * (rq_cache_attention_ws) or one the cache keeps for reuse
 * (rq_cache_attention: allocated only when more threads attend at once
 * than ever before or a call needs more). In steady state (one token per
 * append, the same query count) neither allocates, apart from a new page
 * every page_tokens tokens.
 *
 * Errors: every fallible function returns an rq_status, and rq_last_error()
 * then says which argument and value were at fault. A function that fails
 * leaves the cache as it was, unless its comment says otherwise.
 * ------------------------------------------------------------------------- */
typedef struct rq_cache rq_cache;

typedef struct {
    int n_layers, n_kv_heads, head_dim;
    const char *type_k, *type_v; /* registry names, e.g. "turbo3", "q8_0"      */
    rq_quant_config quant;       /* K uses quant.seed, V a seed derived from it;
                                    rq_cache_config_default sets norm_correct
                                    (a plain quantizer's default leaves it off) */
    int page_tokens;             /* tokens per page, 0 = 256                    */
    int n_threads;               /* attention threads, 0 = 1                    */
    size_t max_bytes;            /* page pool budget: at most max_bytes /
                                    rq_cache_page_bytes() pages; 0 = no limit  */
    /* Key centring with an exact attention sink (0 = off, the default).
     * Per sequence, layer and KV head the cache keeps μ, the fp16 mean of
     * key positions 1..centre_window, and position 0 (BOS, the attention
     * sink) exactly, as fp16 key and value; keys at positions ≥ 1 are
     * stored as k − μ (A(k − μ) with a key basis). Every score of a query
     * then shifts by q·μ, which softmax drops, and the quantization error
     * falls with |k − μ| (≈ 0.6 |k| on real models). μ is fixed by the
     * first append that reaches past position 0, from the positions
     * 1..centre_window it holds (a short prompt gives μ from fewer); it
     * never changes after, is inherited by forks and kept by truncation
     * (cleared only with every token). rq_cache_attention_ref attends
     * the reconstructed keys μ + decode(block) and the exact sink.
     * With k8 key types (turbo{b}k8, tcq{k}k8; required for them) the
     * cache also sets, with μ, a per-head key scale σ = 2^(mean over the
     * same positions of log2 |k − μ|) (fp16) and stores (k − μ)/σ; out of
     * range norms are clamped (rq_cache_key_clamps), σ is folded into the
     * query, and the reference attends μ + σ·decode(block). With a key
     * basis A (rq_cache_set_key_basis) the stored vector is A(k − μ)/σ
     * while σ comes from |k − μ|: as A is not orthonormal, more norms may
     * be clamped — check rq_cache_key_clamps. */
    int centre_keys;
    int centre_window;           /* positions that fix μ; 0 = 64                */
    /* Integer key scores (0 = off, the default: float scores as before).
     * For keys of MSE codes (the turbo/dense/rotor/planar/iso families and
     * their QJL `p` variants' code part, b ≤ 4 code bits) and TCQ keys
     * (tcq2..tcq5) attention scores each key in int8 (other key types are
     * unaffected): the prepared query
     * (rotated, scaled, per query, head and key-basis range) is quantized
     * once per call to q8 = round-half-even(q′·127/max|q′|) with scale
     * max|q′|/127, the type's centroids (TCQ: its 256-entry LUT, indexed by
     * a value's 8-bit window) to c8 = round(c·127/max|c|), and a
     * score is qscale · (norm·max|c|/127) · Σ_j q8_j·c8[code_j], the Σ in
     * exact int32 (AVX512-VNNI vpdpbusd where the CPU has it): every SIMD
     * level gives the same bits, and they differ from the float scores by
     * the rounding of q′ and c to 8 bits (docs/RESULTS.md: KLD). QJL sign
     * parts, values and the exact sink of centre_keys stay float, and so
     * does rq_cache_attention_ref. The workspace grows by d rounded up to
     * 64, + 8 bytes per query, head and range
     * (rq_cache_attention_workspace_size counts it). Read during
     * rq_cache_init only; attention's thread rules are unchanged. */
    int int8_scores;
    /* Per-layer types (a bits budget, rq_kv_alloc): NULL, or n_layers
     * registry names, an entry NULL meaning type_k / type_v. Read during
     * rq_cache_init only. Each layer's pages hold its own types' blocks:
     * the pool keeps one free list per page size and max_bytes bounds the
     * bytes of all pages together (rq_cache_page_bytes and
     * rq_cache_pages_available speak of the largest pages). */
    const char *const *layer_type_k, *const *layer_type_v;
} rq_cache_config;

RQ_API rq_cache_config rq_cache_config_default(void);
/* A new empty cache in *out (NULL on error); cfg is copied, the type names
 * are not kept. Errors: RQ_ERR_INVALID_ARG (NULL, n_layers or n_kv_heads
 * outside 1..4096, page_tokens outside 0..2^20, n_threads outside 0..256),
 * RQ_ERR_UNKNOWN_TYPE, RQ_ERR_DIM (head_dim unsupported by a type),
 * RQ_ERR_NOMEM. */
RQ_API rq_status rq_cache_init(rq_cache **out, const rq_cache_config *cfg);
/* Releases the cache, its pages, bases and workspaces (NULL: nothing).
 * Exclusive. */
RQ_API void rq_cache_free(rq_cache *c);
/* Append n_tokens positions to one layer: k, v are [n_tokens][n_kv_heads][head_dim]
 * (read during the call only). Exclusive. On error nothing is appended (all
 * tokens are validated and encoded first). Errors: RQ_ERR_INVALID_ARG
 * (NULL, layer out of range, n_tokens > 2^40 / (n_kv_heads·head_dim)),
 * RQ_ERR_NONFINITE (NaN/Inf in k or v), RQ_ERR_RANGE (a value or norm too
 * large for the type's fp16 fields; or positions past those the layer's
 * loaded key basis was calibrated on), RQ_ERR_NOMEM. The message names the
 * token, head and value. */
RQ_API rq_status rq_cache_append(rq_cache *c, int layer, const float *k, const float *v, size_t n_tokens);
/* Forget every token of every layer of every sequence (the sequences stay;
 * pages go back to the pool; bases and workspaces are kept for reuse).
 * Exclusive. */
RQ_API void rq_cache_clear(rq_cache *c);
/* Tokens stored in a layer of sequence 0 (0 for a bad layer or NULL). */
RQ_API size_t rq_cache_n_tokens(const rq_cache *c, int layer);
/* Exact payload bytes per token over all layers and heads, K + V. */
RQ_API size_t rq_cache_bytes_per_token(const rq_cache *c);
/* Payload bytes stored now (= Σ_sequences Σ_layers tokens × per-layer bytes
 * per token; tokens shared by forked sequences count once per sequence). */
RQ_API size_t rq_cache_bytes_used(const rq_cache *c);
/* Bytes allocated: the pool's pages (in use or free; each page costs
 * rq_cache_page_bytes, or its layer's size with per-layer types) and the
 * sequences' block tables. */
RQ_API size_t rq_cache_bytes_allocated(const rq_cache *c);
/* The key (is_value = 0) or value quantizer; lives as long as the cache. */
RQ_API const rq_quantizer *rq_cache_quantizer(const rq_cache *c, int is_value);
/* The same for one layer (its layer_type_k/v or the defaults); NULL for a
 * bad layer or NULL cache. Any thread. */
RQ_API const rq_quantizer *rq_cache_layer_quantizer(const rq_cache *c, int layer, int is_value);
/* Stored bits per cached value, averaged over K and V, every layer and
 * KV head, for one sequence of n_ctx tokens: the blocks (norms, scales and
 * codes included) and, with centre_keys, μ, the fp16 sink (position 0's
 * key and value, kept next to its unread blocks) and the key scale σ per
 * KV head (one fp16). 0 for NULL or n_ctx = 0.
 * Any thread. */
RQ_API double rq_cache_bits_per_value(const rq_cache *c, size_t n_ctx);
/* k8 keys (turbo{b}k8, tcq{k}k8: a 1-byte norm relative to the per-layer,
 * per-KV-head key scale σ that centre_keys sets with μ, docs/FORMAT.md
 * §5.2) whose norm fell outside the table's 2^-2·σ .. 2^2·σ and was
 * clamped to its end, since rq_cache_init, over every sequence and layer
 * (appends never fail for it). Returns the total; *n_high (may be NULL)
 * gets those clamped high. 0 for NULL or a cache without k8 keys. Any
 * thread not racing an append. */
RQ_API uint64_t rq_cache_key_clamps(const rq_cache *c, uint64_t *n_high);

/* Many sequences (paged, as vLLM's PagedAttention). The cache holds
 * sequences with ids the caller chooses (≥ 0); sequence 0 exists from
 * init, and the functions above without a sequence argument act on it
 * (rq_cache_append = rq_cache_seq_append(c, 0, ...), and so on, with the
 * same results bit for bit). Every sequence has, per layer, a block table
 * of pages taken from the cache's one page pool; a page holds page_tokens
 * positions of every KV head of one layer. The pool grows without limit, or
 * up to cfg.max_bytes: then an append that needs more pages than the pool
 * has free fails with RQ_ERR_NOMEM and appends nothing. Pages are
 * reference-counted: rq_cache_seq_fork shares all the parent's pages with
 * the child, and whichever then appends into a shared, partly filled last
 * page first copies that one page (copy-on-write); full pages stay shared
 * for good. Pages whose last sequence lets go return to the pool at once
 * (truncate, remove, clear, the sliding window) and are reused before any
 * new allocation. Key bases belong to the layer and serve every sequence.
 *
 * Threads: as for the whole cache — rq_cache_seq_n_tokens, rq_cache_seq_ids,
 * the page counts and every attention function (const) may run on any
 * number of threads at once; add, remove, fork, truncate, append and
 * set_window are structure changes and need exclusive access to the cache
 * (no other call on it, for any sequence, may run meanwhile). */

/* A new empty sequence with id seq (≥ 0). Exclusive. Errors:
 * RQ_ERR_INVALID_ARG (NULL, seq negative or already present), RQ_ERR_NOMEM. */
RQ_API rq_status rq_cache_seq_add(rq_cache *c, int seq);
/* Removes the sequence; its pages go back to the pool unless another
 * sequence shares them. Sequence 0 may be removed too (the calls without a
 * sequence argument then fail until it is added again). Exclusive. Errors:
 * RQ_ERR_INVALID_ARG (NULL, no such sequence). */
RQ_API rq_status rq_cache_seq_remove(rq_cache *c, int seq);
/* A new sequence `child` holding every token of `parent` in every layer,
 * sharing its pages (no page is copied; each gains a reference): prefix
 * sharing, beam search, parallel sampling. Later appends to either copy
 * only a shared, partly filled last page. Exclusive. Errors:
 * RQ_ERR_INVALID_ARG (NULL, no parent, child negative or present),
 * RQ_ERR_NOMEM (the child's block tables; nothing changed). */
RQ_API rq_status rq_cache_seq_fork(rq_cache *c, int parent, int child);
/* Keeps the first n_tokens positions of the sequence in every layer
 * (layers holding fewer are unchanged): rollback of rejected speculative
 * tokens. Pages past the new end go back to the pool at once. Exclusive.
 * Errors: RQ_ERR_INVALID_ARG (NULL, no such sequence), RQ_ERR_RANGE (a
 * layer's sliding window already released positions the new end would
 * attend: nothing changed). */
RQ_API rq_status rq_cache_seq_truncate(rq_cache *c, int seq, size_t n_tokens);
/* rq_cache_append on sequence seq; the same arguments, rules and errors,
 * and also RQ_ERR_INVALID_ARG for no such sequence and RQ_ERR_NOMEM when
 * the pool's budget (cfg.max_bytes) has too few free pages for the append
 * (counting pages the sliding window releases): checked before anything
 * is written, so nothing is appended. */
RQ_API rq_status rq_cache_seq_append(rq_cache *c, int seq, int layer, const float *k, const float *v,
                                     size_t n_tokens);
/* Tokens of sequence seq in a layer (0 for NULL, a bad layer or no such
 * sequence). */
RQ_API size_t rq_cache_seq_n_tokens(const rq_cache *c, int seq, int layer);
/* The number of sequences; their ids, ascending, go to ids[0 .. max_ids−1]
 * (ids may be NULL). 0 for NULL. */
RQ_API size_t rq_cache_seq_ids(const rq_cache *c, int *ids, size_t max_ids);
/* A sliding window of n_window positions for one layer (0 = none, the
 * default): attention of a query at context length n reads positions
 * n − n_window .. n − 1 only, and each append first releases the pages
 * every later query is past (those wholly below n_tokens − n_window).
 * Set while no sequence holds tokens in the layer. Exclusive. Errors:
 * RQ_ERR_INVALID_ARG (NULL, bad layer, tokens stored). Attention with an
 * n_ctx reaching back into released positions is RQ_ERR_RANGE. */
RQ_API rq_status rq_cache_set_window(rq_cache *c, int layer, size_t n_window);
/* Pages of the pool in use by some sequence; pages a caller may still take
 * (free ones plus the budget not yet allocated; SIZE_MAX with no budget);
 * the bytes one page costs the budget (header, blocks, padding). 0 for NULL. */
RQ_API size_t rq_cache_pages_in_use(const rq_cache *c);
RQ_API size_t rq_cache_pages_available(const rq_cache *c);
RQ_API size_t rq_cache_page_bytes(const rq_cache *c);

/* Save and restore (docs/FORMAT.md §7). The bytes of one sequence
 * (seq ≥ 0) or of every sequence (seq = RQ_SEQ_ALL): a header with the
 * file format version, the block format and library versions, the K/V
 * types, head_dim, layers, KV heads, page size, the quantizer seed and
 * options, a hash of the key bases and the layers' windows (CRC32C), then
 * per sequence its token counts (CRC32C) and its pages, each with its own
 * CRC32C. Loading into a cache checks every field against the cache and
 * refuses any mismatch (RQ_ERR_FORMAT, rq_last_error naming the field and
 * both values), every CRC and every block before it changes anything.
 * Loaded pages are not shared (a fork saved with its parent loads as two
 * copies). */
#define RQ_SEQ_ALL (-1)
/* Serializes into buf (cap bytes); *n_bytes = the size (buf = NULL: the
 * size only). Const: any number of threads, with attention. Errors:
 * RQ_ERR_INVALID_ARG (NULL c or n_bytes, no such sequence, cap too small:
 * nothing written). */
RQ_API rq_status rq_cache_seq_save_mem(const rq_cache *c, int seq, void *buf, size_t cap, size_t *n_bytes);
/* The same bytes to a file: written to a temporary file in path's
 * directory, fsync'd, then renamed over path (a failed save leaves any
 * old file intact). Const (any thread; different paths). Errors: those
 * of rq_cache_seq_save_mem, RQ_ERR_IO, RQ_ERR_NOMEM. */
RQ_API rq_status rq_cache_seq_save(const rq_cache *c, int seq, const char *path);
/* Adds the saved sequences to the cache: with seq ≥ 0 the data must hold
 * one sequence, loaded as id seq; with RQ_SEQ_ALL each keeps its saved id.
 * The ids must not exist yet. All or nothing. Exclusive. Errors:
 * RQ_ERR_INVALID_ARG (NULL, an id present), RQ_ERR_TRUNCATED (data ends
 * early), RQ_ERR_FORMAT (not such data, version, a mismatch with the
 * cache, a CRC, a malformed block, bytes after the end), RQ_ERR_NOMEM (out
 * of memory, or of pages under cfg.max_bytes). */
RQ_API rq_status rq_cache_seq_load_mem(rq_cache *c, int seq, const void *data, size_t n_bytes);
/* The same from a file. Errors: those of rq_cache_seq_load_mem, RQ_ERR_IO. */
RQ_API rq_status rq_cache_seq_load(rq_cache *c, int seq, const char *path);

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
 * NULL removes the bases. start and A ([n_ranges][head_dim][head_dim]) are
 * copied. Exclusive. Errors: RQ_ERR_INVALID_ARG (bad layer/head/starts,
 * n_ranges > 4096, tokens already stored, an A_r singular or with condition
 * number > 1e7), RQ_ERR_NONFINITE (NaN/Inf in A), RQ_ERR_NOMEM. */
RQ_API rq_status rq_cache_set_key_basis(rq_cache *c, int layer, int kv_head, size_t n_ranges, const size_t *start,
                                 const float *A);

/* The basis that minimizes the expected squared score error of a
 * rotation-based quantizer (error ≈ isotropic, ∝ ‖stored key‖²): from the
 * key second moment Sk = E[k kᵀ] and that of the queries reading those keys,
 * Sq = E[q qᵀ] (d×d, row-major, double), A = P^½ with P = Sk⁻¹ # Sq, the
 * matrix geometric mean (P Sk P = Sq); a ridge of 1e-4·tr(S)/d is added to
 * both moments; A is scaled so that tr(A Sk Aᵀ) = tr(Sk). The expected
 * error falls from ∝ tr(Sk)·tr(Sq) to ∝ (tr (Sk^½ Sq Sk^½)^½)² (src/keybasis.c).
 * Deterministic (double, fixed order). Any thread. RQ_ERR_INVALID_ARG if a
 * moment has no energy (or NULL, d outside 1..RQ_MAX_DIMS), RQ_ERR_NONFINITE
 * for NaN/Inf, RQ_ERR_RANGE if A overflows float, RQ_ERR_NOMEM. */
RQ_API rq_status rq_key_basis_fit(const double *Sk, const double *Sq, int d, float *A);
/* out = A⁻ᵀ (d×d, row-major; Gauss–Jordan in double), the map the cache
 * applies to queries. Any thread. RQ_ERR_INVALID_ARG if A is singular or
 * its 1-norm condition number exceeds 1e7, RQ_ERR_NONFINITE for NaN/Inf,
 * RQ_ERR_NOMEM. */
RQ_API rq_status rq_key_basis_inverse_t(const float *A, int d, float *out);

/* The key-basis file `rotorquant calibrate` writes (a small GGUF, layout in
 * src/keybasis_io.c): bases for every layer and KV head of a model, as
 * floats [n_layers][n_kv_heads][n_ranges][head_dim][head_dim], with what
 * they were calibrated on. A basis serves only the positions it was
 * calibrated on: a cache whose bases came from a file (or from
 * rq_cache_set_key_bases with n_ctx > 0) refuses to append position n_ctx
 * and later (RQ_ERR_RANGE). */
#define RQ_KEY_BASIS_MAX_RANGES 16
typedef struct {
    int n_layers, n_kv_heads, head_dim;
    size_t n_ranges;                       /* bases per layer and KV head, 1..16      */
    size_t start[RQ_KEY_BASIS_MAX_RANGES]; /* each range's first key position          */
    size_t n_ctx;        /* positions calibrated: serves positions 0 .. n_ctx − 1 (0: any) */
    size_t n_tokens;     /* key positions observed per layer (information)           */
    int self_generated;  /* calibrated on the model's own text (information)          */
} rq_key_basis_info;

/* Writes the file: to a temporary file next to path, flushed to disk, then
 * renamed over path, so a failed save leaves any old file intact. The
 * bytes are exactly those calibrate writes. Any thread (different paths).
 * Errors: RQ_ERR_INVALID_ARG (NULL; shape, ranges or n_ctx out of range:
 * n_ctx 1..2^30, starts increasing from 0 below n_ctx, n_tokens < 2^32),
 * RQ_ERR_NONFINITE, RQ_ERR_IO, RQ_ERR_NOMEM. */
RQ_API rq_status rq_key_basis_save(const char *path, const rq_key_basis_info *info, const float *basis);
/* Reads and checks a whole file: every field, offset and float (finite).
 * *info gets the shape and calibration; *basis a malloc'd array the caller
 * releases with free() (basis = NULL: check and fill info only; *basis is
 * NULL on error). Any thread. Errors: RQ_ERR_IO (cannot open or read),
 * RQ_ERR_TRUNCATED, RQ_ERR_FORMAT (not a GGUF or not a key basis, a field
 * out of range), RQ_ERR_NONFINITE, RQ_ERR_NOMEM, RQ_ERR_INVALID_ARG (NULL). */
RQ_API rq_status rq_key_basis_load(const char *path, rq_key_basis_info *info, float **basis);
/* The same on a file's bytes in memory (data is only read). */
RQ_API rq_status rq_key_basis_load_mem(const void *data, size_t n_bytes, rq_key_basis_info *info, float **basis);
/* Every layer's and KV head's bases at once (as rq_cache_set_key_basis for
 * each, all or none), limited to info->n_ctx positions (0: no limit).
 * Exclusive; every layer must be empty. Errors: RQ_ERR_SHAPE (n_layers,
 * n_kv_heads or head_dim differ from the cache's), those of
 * rq_cache_set_key_basis. */
RQ_API rq_status rq_cache_set_key_bases(rq_cache *c, const rq_key_basis_info *info, const float *basis);
/* rq_key_basis_load + rq_cache_set_key_bases; info (may be NULL) gets the
 * file's. Exclusive. Errors: those of both. */
RQ_API rq_status rq_cache_load_key_basis(rq_cache *c, const char *path, rq_key_basis_info *info);

typedef struct {
    int n_q_heads; /* query heads; a multiple of n_kv_heads. Query head h reads
                      KV head h / (n_q_heads / n_kv_heads) (GQA)              */
    float scale;   /* score scale; 0 = 1/sqrt(head_dim)                        */
} rq_attn_params;

/* out[i][h] = Σ_t softmax_t(scale · <q[i][h], k_t>) v_t over t < n_ctx[i]
 * (n_ctx = NULL: every cached token; a causal limit per query otherwise),
 * and t ≥ n_ctx[i] − W on a layer with a sliding window W (rq_cache_set_window).
 * q, out: [n_queries][n_q_heads][head_dim]. Keys and values are never
 * reconstructed. Any number of threads at once (see above); the split over
 * tokens runs on the shared pool with the cache's n_threads. The workspace
 * comes from the cache's own reusable ones. Errors: RQ_ERR_INVALID_ARG
 * (NULL, layer out of range, scale NaN/Inf/negative), RQ_ERR_SHAPE
 * (n_q_heads not a multiple of n_kv_heads, n_ctx[i] > the layer's tokens),
 * RQ_ERR_NONFINITE (NaN/Inf in q), RQ_ERR_RANGE (scores could overflow
 * float: |scale·q| times the largest key norm the key type can hold — for
 * f32 keys the largest stored — exceeds FLT_MAX/4, decided the same way at
 * every SIMD level; or the output overflows, with f32 values near FLT_MAX:
 * out is then partly written), RQ_ERR_NOMEM. */
RQ_API rq_status rq_cache_attention(const rq_cache *c, int layer, const float *q, size_t n_queries,
                             const size_t *n_ctx, const rq_attn_params *p, float *out);
/* The bytes of workspace that rq_cache_attention_ws needs for n_queries
 * queries with p: enough for any layer and any context of this cache,
 * until its key bases change. Any thread. Errors: RQ_ERR_INVALID_ARG (NULL,
 * n_queries > 2^32), RQ_ERR_SHAPE (n_q_heads). */
RQ_API rq_status rq_cache_attention_workspace_size(const rq_cache *c, size_t n_queries, const rq_attn_params *p,
                                                   size_t *n_bytes);
/* rq_cache_attention on a workspace the caller owns (any alignment; one
 * per concurrent call), with the same results bit for bit. It never
 * allocates. Errors: those of rq_cache_attention, and RQ_ERR_INVALID_ARG
 * if ws is NULL or smaller than this call needs (the message says how
 * much). */
RQ_API rq_status rq_cache_attention_ws(const rq_cache *c, int layer, const float *q, size_t n_queries,
                                       const size_t *n_ctx, const rq_attn_params *p, float *out, void *ws,
                                       size_t ws_bytes);
/* The reference: decode every key and value, exact softmax attention in
 * double. Same arguments and thread rules; allocates per call; for tests
 * and accuracy measurements. */
RQ_API rq_status rq_cache_attention_ref(const rq_cache *c, int layer, const float *q, size_t n_queries,
                                 const size_t *n_ctx, const rq_attn_params *p, float *out);
/* rq_cache_attention and rq_cache_attention_ref on sequence seq (same
 * arguments, results, thread rules and errors; RQ_ERR_INVALID_ARG for no
 * such sequence). */
RQ_API rq_status rq_cache_seq_attention(const rq_cache *c, int seq, int layer, const float *q, size_t n_queries,
                                        const size_t *n_ctx, const rq_attn_params *p, float *out);
RQ_API rq_status rq_cache_seq_attention_ref(const rq_cache *c, int seq, int layer, const float *q, size_t n_queries,
                                            const size_t *n_ctx, const rq_attn_params *p, float *out);

/* One sequence's part of a batched attention call. */
typedef struct {
    int seq;              /* sequence id                                      */
    const float *q;       /* [n_queries][n_q_heads][head_dim]                 */
    size_t n_queries;     /* 0: nothing to do for this entry                  */
    const size_t *n_ctx;  /* per query, as in rq_cache_attention (NULL: all)  */
    float *out;           /* [n_queries][n_q_heads][head_dim]                 */
} rq_attn_seq;

/* Decode attention of n_seqs sequences of one layer in one call: every
 * entry's out gets, bit for bit, what rq_cache_seq_attention gives for it
 * alone, at any thread count. The work is one parallel loop over (entry, KV
 * head, token chunk), so one long and many short sequences keep every
 * thread busy, with one pool hand-off per layer instead of one per
 * sequence. A sequence may appear in several entries. Const: any number of
 * threads at once. Errors: those of rq_cache_seq_attention, the message
 * naming the entry; RQ_ERR_INVALID_ARG (seqs NULL with n_seqs > 0, n_seqs
 * > 2^24). On error the outputs are unspecified. */
RQ_API rq_status rq_cache_attention_batch(const rq_cache *c, int layer, const rq_attn_seq *seqs, size_t n_seqs,
                                          const rq_attn_params *p);

/* ---------------------------------------------------------------------------
 * A bits budget (src/budget.c): per-layer K/V types from a measured cost.
 * ------------------------------------------------------------------------- */
typedef struct {
    int n_layers, head_dim;
    int n_types_k, n_types_v;          /* candidates per side, 1..64            */
    const char *const *types_k;        /* [n_types_k] registry names            */
    const char *const *types_v;        /* [n_types_v]                           */
    const double *cost_k;              /* [n_layers][n_types_k]: the cost (≥ 0)
                                          of layer l's keys in type i, values
                                          exact — e.g. attention output error  */
    const double *cost_v;              /* [n_layers][n_types_v], keys exact      */
    double overhead_bits;              /* bits/value spent outside the blocks
                                          (rq_cache_bits_per_value's μ and sink) */
} rq_kv_alloc_problem;

/* The per-layer types (choice_k[l], choice_v[l]: candidate indices,
 * [n_layers] each, caller-owned) minimising Σ_l cost_k + cost_v with
 * mean bits per value — Σ_l (bits of K type + bits of V type) / (2 n_layers)
 * + overhead_bits, every block byte counted (norms, scales) — at most
 * `budget`: a Lagrangian choice, then greedy upgrades (FINDINGS.md's
 * allocator). bits_out, cost_out (may be NULL): the choice's bits and cost.
 * Deterministic; any thread. Errors: RQ_ERR_INVALID_ARG (NULL, counts out of
 * range, budget not > 0, overhead < 0), RQ_ERR_UNKNOWN_TYPE, RQ_ERR_DIM (a
 * type refuses head_dim), RQ_ERR_NONFINITE (a cost NaN, Inf or negative),
 * RQ_ERR_RANGE (even the smallest types exceed the budget). */
RQ_API rq_status rq_kv_alloc(const rq_kv_alloc_problem *p, double budget, int *choice_k, int *choice_v,
                             double *bits_out, double *cost_out);

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
 * task. Safe from any thread: concurrent calls take turns on the pool (so
 * two threads attending at once never deadlock, they share the workers);
 * a call from inside a task runs inline. */
RQ_API void rq_parallel_for(int n_threads, int n_tasks, rq_task_fn fn, void *ctx);
/* Joins the workers (they restart on the next call). Optional, at exit. */
RQ_API void rq_threads_shutdown(void);

/* ---------------------------------------------------------------------------
 * SIMD kernels (src/simd/): chosen once from cpuid, overridable with the
 * environment variable RQ_SIMD=scalar|avx2|avx512. Every level produces the
 * same bytes; only speed differs.
 * ------------------------------------------------------------------------- */
/* The level in use: "scalar", "avx2" or "avx512". */
RQ_API const char *rq_simd_name(void);
typedef enum { RQ_SIMD_SCALAR = 0, RQ_SIMD_AVX2 = 1, RQ_SIMD_AVX512 = 2 } rq_simd_level;
/* The level in use, as an enum (rq_simd_name() is its name). */
RQ_API rq_simd_level rq_simd_get(void);
/* RQ_OK, or RQ_ERR_INVALID_ARG when the environment variable RQ_SIMD is now
 * set to something other than scalar, avx2, avx512 or the empty string; such
 * a value is ignored (the level is the automatic choice). A valid level the
 * CPU lacks falls back to the best one it has, which is not an error. */
RQ_API rq_status rq_simd_status(void);

#ifdef __cplusplus
}
#endif
#endif /* ROTORQUANT_H */
