/* Key-basis calibration (model/calib.c): the second moments of the model's
 * post-RoPE keys and of the queries that read them, per layer and KV head,
 * gathered by a session observer while the model runs on calibration text
 * (or on text it writes itself), then rq_key_basis_fit per head and range
 * of key positions. The result is one array
 * [n_layers][n_kv_heads][n_ranges][head_dim²], kept in a small GGUF file and
 * handed to rqm_session_config.key_basis. */
#ifndef RQ_MODEL_CALIB_H
#define RQ_MODEL_CALIB_H

#include "llama.h"

typedef struct rqm_calib rqm_calib;

/* Key-position ranges, one basis each (RoPE turns keys with position, so
 * the best basis changes along the context): 0, then 256, 512, 1024, …
 * while a range [s, 2s) is at least half below n_ctx, at most max_ranges
 * (0: RQM_KB_MAX_RANGES; 1: one basis for every position). Returns the
 * count. rqm_key_basis_range: the range that serves position pos. */
#define RQM_KB_MAX_RANGES 16
size_t rqm_key_basis_ranges(size_t n_ctx, size_t max_ranges, size_t *start);
size_t rqm_key_basis_range(const size_t *start, size_t n_ranges, size_t pos);

/* n_ctx: the longest context to calibrate for; with max_ranges it sets the
 * ranges (rqm_key_basis_ranges). */
rq_status rqm_calib_init(rqm_calib **out, const rqm_llama_hparams *hp, size_t n_ctx, size_t max_ranges);
void rqm_calib_free(rqm_calib *c);
/* An rqm_observer: user = the rqm_calib. */
rq_status rqm_calib_observe(void *calib, const rqm_layer_event *ev);
/* Key positions seen so far (per layer). */
size_t rqm_calib_tokens(const rqm_calib *c);
/* The ranges' first positions (rqm_key_basis_ranges); returns their count. */
size_t rqm_calib_ranges(const rqm_calib *c, const size_t **start);
/* Fit every head's bases into basis[n_layers][n_kv_heads][n_ranges][head_dim²]
 * (RQ_ERR_INVALID_ARG if a range saw no key). */
rq_status rqm_calib_fit(const rqm_calib *c, float *basis);

/* The basis file: a GGUF (architecture "rotorquant-key-basis") holding one
 * f32 tensor "key_basis" [head_dim², n_ranges, n_kv_heads, n_layers] (ggml
 * order: the C array above), the ranges' first positions and the
 * calibration context. A basis fits the positions it was calibrated on:
 * n_ctx is the longest context it may serve (rqm_session_init refuses
 * more). load checks the shape against hp and every value (finite); *out
 * is malloc'd; err says what was wrong. */
typedef struct {
    long n_ctx;         /* positions calibrated: 0 .. n_ctx − 1           */
    long n_tokens;      /* key positions observed per layer               */
    int self_generated; /* the model's own sampled text (else a text file) */
    size_t n_ranges;    /* bases per layer and KV head                    */
    size_t start[RQM_KB_MAX_RANGES];
} rqm_key_basis_info;

rq_status rqm_key_basis_save(const char *path, const rqm_llama_hparams *hp, const float *basis,
                             const rqm_key_basis_info *info);
rq_status rqm_key_basis_load(const char *path, const rqm_llama_hparams *hp, float **out, rqm_key_basis_info *info,
                             char *err, size_t err_len);

#endif
