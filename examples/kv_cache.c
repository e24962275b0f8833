/*
 * kv_cache.c — the README's compressed KV cache: q8_0 keys and turbo3
 * values for a GQA model (9 query heads over 3 KV heads), a few hundred
 * tokens appended, one decode step of attention on the packed cache,
 * checked against the exact reference (decode everything, attention in
 * double).
 *
 *   cc kv_cache.c $(pkg-config --cflags --libs rotorquant) -lm -o kv_cache
 */
#include <rotorquant.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { N_LAYERS = 30, N_KV = 3, N_Q = 9, HEAD_DIM = 64, N_TOKENS = 300 };

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) / 16777216.0 * 2 - 1);
}

int main(void) {
    static float k[N_TOKENS][N_KV][HEAD_DIM], v[N_TOKENS][N_KV][HEAD_DIM];
    static float q[N_Q][HEAD_DIM], out[N_Q][HEAD_DIM], ref[N_Q][HEAD_DIM];
    unsigned seed = 1;
    for (int t = 0; t < N_TOKENS; t++)
        for (int h = 0; h < N_KV; h++)
            for (int j = 0; j < HEAD_DIM; j++) k[t][h][j] = frand(&seed), v[t][h][j] = frand(&seed);
    for (int h = 0; h < N_Q; h++)
        for (int j = 0; j < HEAD_DIM; j++) q[h][j] = 3 * frand(&seed);
    int layer = 0;
    size_t n_tokens = N_TOKENS;

    rq_cache_config cfg = rq_cache_config_default();
    cfg.n_layers = 30; cfg.n_kv_heads = 3; cfg.head_dim = 64;
    cfg.type_k = "q8_0"; cfg.type_v = "turbo3";         /* asymmetric K/V is first class */
    cfg.n_threads = 2;
    rq_cache *cache;
    rq_status st = rq_cache_init(&cache, &cfg);
    if (st == RQ_OK) st = rq_cache_append(cache, layer, &k[0][0][0], &v[0][0][0], n_tokens); /* [n_tokens][n_kv_heads][head_dim] */
    rq_attn_params p = {.n_q_heads = 9};                /* GQA 9:3 */
    if (st == RQ_OK) st = rq_cache_attention(cache, layer, &q[0][0], 1, NULL, &p, &out[0][0]);

    if (st == RQ_OK) st = rq_cache_attention_ref(cache, layer, &q[0][0], 1, NULL, &p, &ref[0][0]);
    if (st != RQ_OK) {
        fprintf(stderr, "kv_cache: %s: %s\n", rq_status_str(st), rq_last_error());
        rq_cache_free(cache);
        return 1;
    }
    double err = 0;
    for (int h = 0; h < N_Q; h++)
        for (int j = 0; j < HEAD_DIM; j++) err = fmax(err, fabs(out[h][j] - ref[h][j]));
    printf("%zu tokens, %zu bytes per token (f16: %d); fused vs reference attention: max |diff| %.2e\n",
           rq_cache_n_tokens(cache, layer), rq_cache_bytes_per_token(cache), N_LAYERS * N_KV * HEAD_DIM * 2 * 2,
           err);
    rq_cache_free(cache);
    return err < 1e-3 ? 0 : 1;
}
