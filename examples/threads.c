/*
 * threads.c — one compressed cache attended from several threads at once:
 * each thread owns a workspace sized by rq_cache_attention_workspace_size
 * and runs decode attention on the layers with rq_cache_attention_ws; the
 * outputs are the same bytes one thread alone computes. Appending needs
 * the cache to itself, so it happens before the threads start.
 *
 *   cc threads.c $(pkg-config --cflags --libs rotorquant) -lm -lpthread -o threads
 */
#define _POSIX_C_SOURCE 200809L
#include <rotorquant.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N_LAYERS = 4, N_KV = 2, N_Q = 8, HEAD_DIM = 64, N_TOKENS = 500, N_THREADS = 3 };

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) / 16777216.0 * 2 - 1);
}

typedef struct {
    const rq_cache *cache;          /* shared, read-only while threads run */
    const float *q;                 /* [N_Q][HEAD_DIM]                      */
    float out[N_LAYERS][N_Q][HEAD_DIM];
    rq_status st;
} worker;

static void *attend_all_layers(void *arg) {
    worker *w = arg;
    rq_attn_params p = {.n_q_heads = N_Q};
    size_t ws_bytes = 0;
    w->st = rq_cache_attention_workspace_size(w->cache, 1, &p, &ws_bytes);
    void *ws = w->st == RQ_OK ? malloc(ws_bytes) : NULL;   /* this thread's own workspace */
    for (int layer = 0; layer < N_LAYERS && ws && w->st == RQ_OK; layer++)
        w->st = rq_cache_attention_ws(w->cache, layer, w->q, 1, NULL, &p, &w->out[layer][0][0], ws, ws_bytes);
    if (w->st != RQ_OK) fprintf(stderr, "threads: %s\n", rq_last_error());   /* this thread's message */
    free(ws);
    return NULL;
}

int main(void) {
    static float k[N_TOKENS][N_KV][HEAD_DIM], v[N_TOKENS][N_KV][HEAD_DIM], q[N_Q][HEAD_DIM];
    static float alone[N_LAYERS][N_Q][HEAD_DIM];
    static worker w[N_THREADS];
    unsigned seed = 7;
    rq_cache_config cfg = rq_cache_config_default();
    cfg.n_layers = N_LAYERS, cfg.n_kv_heads = N_KV, cfg.head_dim = HEAD_DIM;
    cfg.type_k = "turbo4", cfg.type_v = "turbo3", cfg.n_threads = 2;
    rq_cache *cache;
    rq_status st = rq_cache_init(&cache, &cfg);
    for (int layer = 0; layer < N_LAYERS && st == RQ_OK; layer++) {
        for (int t = 0; t < N_TOKENS; t++)
            for (int h = 0; h < N_KV; h++)
                for (int j = 0; j < HEAD_DIM; j++) k[t][h][j] = frand(&seed), v[t][h][j] = frand(&seed);
        st = rq_cache_append(cache, layer, &k[0][0][0], &v[0][0][0], N_TOKENS);
    }
    for (int h = 0; h < N_Q; h++)
        for (int j = 0; j < HEAD_DIM; j++) q[h][j] = 2 * frand(&seed);
    rq_attn_params p = {.n_q_heads = N_Q};
    for (int layer = 0; layer < N_LAYERS && st == RQ_OK; layer++) /* one thread alone */
        st = rq_cache_attention(cache, layer, &q[0][0], 1, NULL, &p, &alone[layer][0][0]);
    if (st != RQ_OK) {
        fprintf(stderr, "threads: %s\n", rq_last_error());
        rq_cache_free(cache);
        return 1;
    }

    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        w[i].cache = cache, w[i].q = &q[0][0];
        pthread_create(&th[i], NULL, attend_all_layers, &w[i]);
    }
    int same = 1;
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        same &= w[i].st == RQ_OK && !memcmp(w[i].out, alone, sizeof alone);
    }
    printf("%d threads attended %d layers of one cache at once: %s\n", N_THREADS, N_LAYERS,
           same ? "every output identical to one thread's" : "MISMATCH");
    rq_cache_free(cache);
    return same ? 0 : 1;
}
