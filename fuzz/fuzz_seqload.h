/* fuzz_seqload.h — the cache configurations of fuzz_seqload.c, shared with
 * fuzz/seeds.c (which saves a populated cache of each as a seed). */
#ifndef RQ_FUZZ_SEQLOAD_H
#define RQ_FUZZ_SEQLOAD_H

#include "rotorquant.h"

typedef struct {
    const char *type_k, *type_v;
    int n_layers, n_kv_heads, head_dim, page_tokens;
    size_t window0; /* layer 0's sliding window */
} seqload_config;

static const seqload_config SEQLOAD_CONFIGS[] = {
    {"turbo3", "turbo3", 2, 1, 32, 8, 0},
    {"f32", "q8_0", 1, 2, 32, 4, 0},
    {"turbo3p", "f16", 2, 1, 64, 16, 12},
    {"q4_0h", "rotor3", 1, 2, 32, 8, 0},
    {"tcq3k8", "turbo3n8", 2, 2, 32, 8, 0}, /* k8 keys: centred, with σ per head */
};
#define SEQLOAD_N_CONFIGS (sizeof SEQLOAD_CONFIGS / sizeof SEQLOAD_CONFIGS[0])

static inline rq_cache *seqload_cache(const seqload_config *sc) {
    rq_cache_config cfg = rq_cache_config_default();
    cfg.type_k = sc->type_k, cfg.type_v = sc->type_v, cfg.n_layers = sc->n_layers;
    cfg.n_kv_heads = sc->n_kv_heads, cfg.head_dim = sc->head_dim, cfg.page_tokens = sc->page_tokens;
    cfg.max_bytes = (size_t)8 << 20; /* a bound on what a fuzz input may allocate */
    const char *t = sc->type_k;
    while (*t) t++;
    cfg.centre_keys = t - sc->type_k > 2 && t[-2] == 'k' && t[-1] == '8'; /* k8 keys need centring */
    rq_cache *c = NULL;
    if (rq_cache_init(&c, &cfg)) return NULL;
    if (sc->window0 && rq_cache_set_window(c, 0, sc->window0)) {
        rq_cache_free(c);
        return NULL;
    }
    return c;
}

#endif
