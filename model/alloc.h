/* The measured side of a bits budget (model/alloc.c): per layer, the cost
 * of storing only the keys (values exact) or only the values (keys exact)
 * in each candidate type, on the model's own post-RoPE queries, keys and
 * values of one text, every q_stride-th position a causal query: the proxy
 * of perplexity KLD from bench/fidelity/FINDINGS.md, a·KL + b·outErr — KL
 * the mean softmax KL(exact ‖ quantized keys), outErr the relative
 * attention output error Σ‖o − o_ref‖² / Σ‖o_ref‖² (a = 0.0254,
 * b = 0.0482; values: b·outErr) — then rq_kv_alloc picks the per-layer
 * types for a budget. The text should be held out from any evaluation (the
 * CLI samples the model's own). */
#ifndef RQ_MODEL_ALLOC_H
#define RQ_MODEL_ALLOC_H

#include "llama.h"

typedef struct rqm_sens rqm_sens;

/* Room for n_ctx positions of every layer. */
rq_status rqm_sens_init(rqm_sens **out, const rqm_llama *m, size_t n_ctx);
void rqm_sens_free(rqm_sens *s);
/* An rqm_observer (user = the rqm_sens): keeps q, k, v of positions below
 * n_ctx (one sequence from position 0). */
rq_status rqm_sens_observe(void *sens, const rqm_layer_event *ev);
size_t rqm_sens_tokens(const rqm_sens *s);

typedef struct {
    int n_types_k, n_types_v;
    const char *const *types_k, *const *types_v;
    int centre_keys, norm_correct; /* as the caches that will use the choice */
    uint64_t seed;
    size_t q_stride;               /* every q_stride-th position a query (0 = 4) */
    int n_threads;
} rqm_sens_config;

/* cost_k[n_layers][n_types_k], cost_v[n_layers][n_types_v]: each layer's
 * cost per candidate, with one-layer caches of the candidate (and f32 for
 * the other side) against an f32 cache, the layer's sliding window kept. */
rq_status rqm_sens_costs(const rqm_sens *s, const rqm_sens_config *cfg, double *cost_k, double *cost_v);

#endif
