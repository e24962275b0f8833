/*
 * rotorquant_eval.h — the evaluation side of librotorquant: quality metrics,
 * synthetic data sets, NumPy .npy files and the quality of a quantizer on
 * given data (what `rotorquant bench` and `rotorquant eval` report).
 *
 * Thread rules: every function here is reentrant (no shared state); the
 * arrays it reads may be shared, the ones it writes belong to the caller.
 */
#ifndef ROTORQUANT_EVAL_H
#define ROTORQUANT_EVAL_H

#include "rotorquant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Metrics (src/metrics.c) — used by the CLI, benchmarks and tests.
 * ------------------------------------------------------------------------- */
/* Mean over n vectors of ‖x − x̂‖² / ‖x‖² (vectors with ‖x‖ = 0 skipped;
 * NaN — undefined — when every x is zero). */
RQ_API double rq_metric_rel_mse(const float *x, const float *xhat, size_t n, int d);
/* Pearson correlation of two length-n series (NaN — undefined — when n < 2
 * or a series is constant). */
RQ_API double rq_metric_pearson(const double *a, const double *b, size_t n);
/* Cosine similarity of two length-n vectors (0 if either is zero). */
RQ_API double rq_metric_cosine(const double *a, const double *b, size_t n);
/* KL(p ‖ q) of the softmaxes of two logit vectors, in nats. */
RQ_API double rq_metric_softmax_kl(const double *logits_p, const double *logits_q, size_t n);
/* Index of the maximum (first on ties). */
RQ_API size_t rq_metric_argmax(const double *a, size_t n);
/* 1 if index `target` is among the k largest entries of a, else 0. */
RQ_API int rq_metric_in_topk(const double *a, size_t n, size_t target, size_t k);

/* Synthetic data sets for benchmarks and tests (deterministic per seed). */
typedef enum {
    RQ_DATA_ISOTROPIC = 0, /* uniform on the unit sphere                        */
    RQ_DATA_OUTLIER = 1,   /* Gaussian with 4 channels at 10–30× the std dev,
                              normalized (as real keys have, DESIGN.md §3)     */
} rq_dataset;
RQ_API rq_status rq_data_generate(rq_dataset kind, uint64_t seed, float *x, size_t n, int d);
RQ_API const char *rq_dataset_name(rq_dataset kind);

/* ---------------------------------------------------------------------------
 * Evaluation: NumPy .npy arrays (src/npy.c) and the quality of a
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
RQ_API rq_status rq_npy_read(const char *path, rq_npy_array *out);
RQ_API void rq_npy_free(rq_npy_array *a);
/* Writes float32 data as NPY 1.0 ('<f4', C order, header padded to 64 bytes),
 * atomically: into a temporary file beside path, flushed, then renamed over
 * path; on failure (RQ_ERR_IO) the old file is untouched and no temporary is
 * left. */
RQ_API rq_status rq_npy_write(const char *path, const float *data, int n_dims, const size_t *shape);
/* The same as '<f2' (round to nearest even); RQ_ERR_RANGE if a value is not
 * finite or exceeds the f16 range (nothing written). */
RQ_API rq_status rq_npy_write_f16(const char *path, const float *data, int n_dims, const size_t *shape);

/* Relative MSE of encode → decode over n vectors (rq_metric_rel_mse). */
RQ_API rq_status rq_eval_mse(const rq_quantizer *q, const float *x, size_t n_vec, double *mse);

/* Inner products of pairs: est_i = <y_i, decode(encode(x_i))>, exact_i =
 * <y_i, x_i> in double. The n_pairs vectors x are encoded once and paired
 * with n_sets sets of partners: y holds n_sets × n_pairs vectors, out[s]
 * gets set s. */
typedef struct {
    size_t n;
    double mse;    /* relative MSE of the x (same in every set)       */
    double mean_exact, mean_est;
    double bias;   /* mean(est − exact)                               */
    double ratio;  /* mean_est / mean_exact (shrinkage; NaN if exact 0)*/
    double err_std;/* standard deviation of est − exact              */
    double rmse;   /* sqrt(mean((est − exact)²))                      */
    double corr;   /* Pearson(exact, est); NaN if either is constant   */
} rq_eval_ip_result;
RQ_API rq_status rq_eval_ip(const rq_quantizer *q, const float *x, const float *y, size_t n_pairs, size_t n_sets,
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
    double ip_corr;       /* Pearson of exact vs estimated <q,k> (NaN: undefined) */
    double ip_bias;       /* mean(est − exact) <q,k> over all pairs             */
    double ip_rmse;       /* sqrt(mean((est − exact)²)) over all pairs          */
    double score_cosine;  /* mean over queries of cos(s, ŝ) (uncentered)        */
    double softmax_kl;    /* mean over queries of KL(p ‖ p̂), nats                */
    double top1;          /* fraction of queries with argmax ŝ = argmax s       */
    double top5;          /* fraction with argmax s among the 5 largest ŝ       */
    double output_cosine; /* mean cos(o, ô); 0 when values is NULL              */
} rq_eval_attn_result;
RQ_API rq_status rq_eval_attention(const rq_quantizer *qk, const rq_quantizer *qv, const float *keys,
                            const float *values, size_t n_keys, const float *queries, size_t n_queries,
                            const size_t *n_ctx, float scale, rq_eval_attn_result *out);
/* The same metrics with k̂ and v̂ given (keys_hat, values_hat: [n_keys][d],
 * decoded by the caller; values and values_hat both NULL or both set): for
 * stored forms the quantizers alone do not describe, e.g. keys in a key
 * basis (decoded k̂ = A⁻¹·decode(encode(A k))). */
RQ_API rq_status rq_eval_attention_decoded(int d, const float *keys, const float *keys_hat, const float *values,
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
RQ_API rq_status rq_eval_needle(const rq_quantizer *q, const float *keys, size_t n_keys, double snr,
                         size_t n_trials, uint64_t seed, rq_eval_needle_result *out);

/* Encode and decode throughput on n_vec vectors: medians over n_reps runs
 * (wall clock, CLOCK_MONOTONIC), one thread, vectors per second. */
typedef struct {
    double encode_vps, decode_vps;
} rq_eval_speed_result;
RQ_API rq_status rq_eval_speed(const rq_quantizer *q, const float *x, size_t n_vec, int n_reps,
                        rq_eval_speed_result *out);

/* MSE of a bare rotation + codebook pair, outside any type: each x is
 * normalized, rotated (rot NULL: not rotated), and every coordinate replaced
 * by its codebook centroid; mse = mean ‖Πu − ĉ‖² (= ‖u − û‖², Π orthogonal).
 * For experiments such as the seed's RotorQuant, whose codebook was built for
 * a dimension d_eff = 8·⌈d/3⌉ instead of d (research/reference_impl.md §6.3). */
RQ_API rq_status rq_eval_codebook_mse(const rq_rotation *rot, const rq_codebook *cb, const float *x, size_t n_vec,
                               int d, double *mse);

/* Pairs with a prescribed inner product: pair i takes x = pool[i mod n_pool]
 * and z = the first pool vector from index (i + n_pool/2) mod n_pool on that
 * is not parallel to x; x_out = x/‖x‖, y_out = rho·x_out + sqrt(1−rho²)·ẑ⊥
 * (ẑ⊥: z orthogonalized against x, normalized). So ‖x‖ = ‖y‖ = 1 and
 * <x, y> = rho exactly (to float rounding). rho in [−1, 1]. */
RQ_API rq_status rq_data_pairs(const float *pool, size_t n_pool, int d, double rho, size_t n_pairs,
                        float *x_out, float *y_out);

/* Attention queries that are not flat: query i = base_i/‖base_i‖ plus the
 * sum of n_hot distinct random keys k_h/‖k_h‖ ("hot" keys, positions drawn
 * from seed), rescaled so the exact logits scale·<q, k_t> over the n_keys keys
 * have standard deviation logit_std (scale 0 = 1/sqrt(d)). */
RQ_API rq_status rq_data_queries(const float *keys, size_t n_keys, const float *base, size_t n_queries, int d,
                          int n_hot, double logit_std, float scale, uint64_t seed, float *q_out);

#ifdef __cplusplus
}
#endif
#endif /* ROTORQUANT_EVAL_H */
