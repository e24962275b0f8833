/*
 * sequences.c — the README's many sequences in one cache: a shared prompt
 * prefix in sequence 0, forked into three continuations (no page copied),
 * each extended by its own tokens, then one batched decode step over all
 * four; a rejected speculative token is rolled back with truncate. Checks
 * the batched outputs against per-sequence calls (bit for bit) and the
 * pages in use against an unshared layout.
 *
 *   cc sequences.c $(pkg-config --cflags --libs rotorquant) -lm -o sequences
 */
#include <rotorquant.h>

#include <stdio.h>
#include <string.h>

enum { N_KV = 2, N_Q = 8, HEAD_DIM = 64, N_PROMPT = 1000, N_SEQ = 4 };

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) / 16777216.0 * 2 - 1);
}

int main(void) {
    static float k[N_PROMPT][N_KV][HEAD_DIM], v[N_PROMPT][N_KV][HEAD_DIM];
    static float q[N_SEQ][N_Q][HEAD_DIM], out[N_SEQ][N_Q][HEAD_DIM], one[N_Q][HEAD_DIM];
    unsigned seed = 7;
    for (int t = 0; t < N_PROMPT; t++)
        for (int h = 0; h < N_KV; h++)
            for (int j = 0; j < HEAD_DIM; j++) k[t][h][j] = frand(&seed), v[t][h][j] = frand(&seed);
    for (int s = 0; s < N_SEQ; s++)
        for (int h = 0; h < N_Q; h++)
            for (int j = 0; j < HEAD_DIM; j++) q[s][h][j] = 3 * frand(&seed);
    int layer = 0;

    rq_cache_config cfg = rq_cache_config_default();
    cfg.n_kv_heads = 2; cfg.head_dim = 64; cfg.type_k = cfg.type_v = "turbo3";
    cfg.max_bytes = (size_t)64 << 20;                    /* the page pool's budget */
    rq_cache *cache;
    rq_status st = rq_cache_init(&cache, &cfg);          /* sequence 0 exists */
    if (st == RQ_OK) st = rq_cache_seq_append(cache, 0, layer, &k[0][0][0], &v[0][0][0], 1000); /* the prompt */
    for (int s = 1; s < 4 && st == RQ_OK; s++) {
        st = rq_cache_seq_fork(cache, 0, s);             /* shares the prompt's pages */
        if (st == RQ_OK) st = rq_cache_seq_append(cache, s, layer, &k[s][0][0], &v[s][0][0], 1);
    }
    if (st == RQ_OK) st = rq_cache_seq_truncate(cache, 3, 1000); /* roll back a rejected draft token */
    rq_attn_seq batch[4];
    for (int s = 0; s < 4; s++)
        batch[s] = (rq_attn_seq){.seq = s, .q = &q[s][0][0], .n_queries = 1, .out = &out[s][0][0]};
    rq_attn_params p = {.n_q_heads = 8};
    if (st == RQ_OK) st = rq_cache_attention_batch(cache, layer, batch, 4, &p); /* one call, every sequence */

    int same = 1;
    for (int s = 0; s < N_SEQ && st == RQ_OK; s++) {
        st = rq_cache_seq_attention(cache, s, layer, &q[s][0][0], 1, NULL, &p, &one[0][0]);
        same &= memcmp(one, out[s], sizeof one) == 0;
    }
    if (st != RQ_OK) {
        fprintf(stderr, "sequences: %s: %s\n", rq_status_str(st), rq_last_error());
        rq_cache_free(cache);
        return 1;
    }
    const size_t unshared = (size_t)N_SEQ * ((N_PROMPT + 1 + 255) / 256);
    printf("%d sequences of %zu..%zu tokens in %zu pages (%zu unshared); batched = per-sequence: %s\n", N_SEQ,
           rq_cache_seq_n_tokens(cache, 0, layer), rq_cache_seq_n_tokens(cache, 1, layer), rq_cache_pages_in_use(cache),
           unshared, same ? "yes" : "NO");
    const int ok = same && rq_cache_pages_in_use(cache) == 4 + 3; /* the prompt, and one copied last page per fork */
    rq_cache_free(cache);
    return ok ? 0 : 1;
}
