/* Key-basis calibration (model/calib.c): the second moments of the model's
 * post-RoPE keys and of the queries that read them, per layer and KV head,
 * gathered by a session observer while the model runs on calibration text
 * (or on text it writes itself), then rq_key_basis_fit per head. The result
 * is one array [n_layers][n_kv_heads][head_dim][head_dim], kept as a .npy
 * file and handed to rqm_session_config.key_basis. */
#ifndef RQ_MODEL_CALIB_H
#define RQ_MODEL_CALIB_H

#include "llama.h"

typedef struct rqm_calib rqm_calib;

rq_status rqm_calib_init(rqm_calib **out, const rqm_llama_hparams *hp);
void rqm_calib_free(rqm_calib *c);
/* An rqm_observer: user = the rqm_calib. */
rq_status rqm_calib_observe(void *calib, const rqm_layer_event *ev);
/* Key positions seen so far (per layer). */
size_t rqm_calib_tokens(const rqm_calib *c);
/* Fit every head's basis into basis[n_layers · n_kv_heads · head_dim²]. */
rq_status rqm_calib_fit(const rqm_calib *c, float *basis);

/* .npy, float32, shape (n_layers, n_kv_heads, head_dim, head_dim). load
 * checks the shape against hp and every value (finite); *out is malloc'd.
 * On error err says what was wrong. */
rq_status rqm_key_basis_save(const char *path, const rqm_llama_hparams *hp, const float *basis);
rq_status rqm_key_basis_load(const char *path, const rqm_llama_hparams *hp, float **out, char *err, size_t err_len);

#endif
