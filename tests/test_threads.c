/*
 * test_threads.c — the thread-safety contract (rotorquant.h): any number of
 * threads attend one cache at once, on different and on the same layers,
 * through rq_cache_attention (workspaces from the cache's free list) and
 * rq_cache_attention_ws (the caller's), and every output is bit for bit the
 * one a single thread computes alone, for 1, 2 and 3 pool threads. `make
 * tsan` runs these under ThreadSanitizer. Also: the workspace bound, and
 * rq_last_error's messages (the value at fault, per thread).
 */
#include "test.h"

#include <pthread.h>
#include <string.h>

enum { T_LAYERS = 3, T_HEADS = 2, T_GQA = 2, T_D = 64, T_QUERIES = 2, T_CALLERS = 4, T_ROUNDS = 3 };
#define T_HQ (T_HEADS * T_GQA)
#define T_OUT ((size_t)T_QUERIES * T_HQ * T_D)

typedef struct {
    const rq_cache *cache;
    const float *q;                         /* [T_LAYERS][T_OUT]                  */
    const size_t *n_ctx;                    /* [T_LAYERS][T_QUERIES]              */
    const float *want;                      /* [T_LAYERS][T_OUT]: one thread alone */
    size_t ws_bytes;
    int id, mismatches, errors;
} caller;

/* One caller: T_ROUNDS passes over every layer, starting at its own layer
 * (so at any moment some callers share a layer and some do not); odd
 * callers bring their own workspace. */
static void *caller_main(void *arg) {
    caller *cl = arg;
    const rq_attn_params p = {.n_q_heads = T_HQ};
    void *ws = cl->id % 2 ? malloc(cl->ws_bytes) : NULL;
    float *out = malloc(sizeof(float) * T_OUT);
    for (int r = 0; r < T_ROUNDS; r++)
        for (int i = 0; i < T_LAYERS; i++) {
            const int l = (cl->id + i) % T_LAYERS;
            const float *q = cl->q + (size_t)l * T_OUT;
            const size_t *n_ctx = r == 1 ? NULL : cl->n_ctx + (size_t)l * T_QUERIES;
            rq_status st = ws ? rq_cache_attention_ws(cl->cache, l, q, T_QUERIES, n_ctx, &p, out, ws, cl->ws_bytes)
                              : rq_cache_attention(cl->cache, l, q, T_QUERIES, n_ctx, &p, out);
            if (st) cl->errors++;
            /* round 1 (every token) is compared against itself: no NULL-n_ctx reference kept */
            else if (r != 1 && memcmp(out, cl->want + (size_t)l * T_OUT, sizeof(float) * T_OUT)) cl->mismatches++;
        }
    free(out), free(ws);
    return NULL;
}

static void threads_case(const char *tk, const char *tv, int n_threads, int with_basis) {
    rq_cache_config cfg = rq_cache_config_default();
    cfg.n_layers = T_LAYERS, cfg.n_kv_heads = T_HEADS, cfg.head_dim = T_D, cfg.type_k = tk, cfg.type_v = tv;
    cfg.n_threads = n_threads, cfg.page_tokens = 128;
    rq_cache *c = NULL;
    CHECK_OK(rq_cache_init(&c, &cfg));
    if (!c) return;
    rq_rng r;
    rq_rng_seed(&r, 1234 + (uint64_t)n_threads);
    if (with_basis) { /* two ranges on layer 1, head 0: the prepared-query path */
        float A[2 * T_D * T_D];
        for (int i = 0; i < 2 * T_D * T_D; i++) A[i] = (float)((i % (T_D * T_D)) / T_D == i % T_D) + 0.05f * (float)rq_rng_gauss(&r);
        const size_t start[2] = {0, 300};
        CHECK_OK(rq_cache_set_key_basis(c, 1, 0, 2, start, A));
    }
    const size_t n_tok[T_LAYERS] = {700, 1500, 333};
    float *q = malloc(sizeof(float) * T_LAYERS * T_OUT), *want = malloc(sizeof(float) * T_LAYERS * T_OUT);
    size_t n_ctx[T_LAYERS * T_QUERIES];
    for (int l = 0; l < T_LAYERS; l++) {
        const size_t n = n_tok[l] * T_HEADS * T_D;
        float *k = malloc(sizeof(float) * n), *v = malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) k[i] = (float)rq_rng_gauss(&r) * (i % 11 == 2 ? 6.0f : 1.0f), v[i] = (float)rq_rng_gauss(&r);
        for (size_t t = 0; t < n_tok[l]; t += 100) /* appends of up to 100 tokens */
            CHECK_OK(rq_cache_append(c, l, k + t * T_HEADS * T_D, v + t * T_HEADS * T_D,
                                     n_tok[l] - t < 100 ? n_tok[l] - t : 100));
        free(k), free(v);
        for (size_t i = 0; i < T_OUT; i++) q[(size_t)l * T_OUT + i] = (float)rq_rng_gauss(&r);
        n_ctx[l * T_QUERIES] = n_tok[l] - 5, n_ctx[l * T_QUERIES + 1] = n_tok[l];
    }
    const rq_attn_params p = {.n_q_heads = T_HQ};
    for (int l = 0; l < T_LAYERS; l++) /* one thread alone */
        CHECK_OK(rq_cache_attention(c, l, q + (size_t)l * T_OUT, T_QUERIES, n_ctx + l * T_QUERIES, &p,
                                    want + (size_t)l * T_OUT));
    size_t ws_bytes = 0;
    CHECK_OK(rq_cache_attention_workspace_size(c, T_QUERIES, &p, &ws_bytes));
    caller cl[T_CALLERS];
    pthread_t th[T_CALLERS];
    for (int i = 0; i < T_CALLERS; i++) {
        cl[i] = (caller){.cache = c, .q = q, .n_ctx = n_ctx, .want = want, .ws_bytes = ws_bytes, .id = i};
        CHECK(pthread_create(&th[i], NULL, caller_main, &cl[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < T_CALLERS; i++) {
        pthread_join(th[i], NULL);
        CHECK(cl[i].errors == 0 && cl[i].mismatches == 0, "%s/%s, %d pool threads%s: caller %d: %d errors, %d outputs "
              "differ from one thread's", tk, tv, n_threads, with_basis ? ", key basis" : "", i, cl[i].errors,
              cl[i].mismatches);
    }
    free(q), free(want);
    rq_cache_free(c);
}

static void test_threads_concurrent_attention(void) {
    threads_case("q8_0", "turbo3", 1, 0);
    threads_case("turbo3p", "q4_0h", 2, 0);
    threads_case("turbo3", "turbo3p", 3, 1);
    threads_case("f32", "f16", 2, 1);
}

/* Attention called from inside the library's own pool (tasks run it
 * inline): same bytes as from one thread, no deadlock. */
typedef struct {
    const rq_cache *c;
    const float *q;
    float *out; /* [n_tasks][T_HQ·T_D] */
    rq_status st[8];
} pool_ctx;

static void pool_task(void *arg, int t) {
    pool_ctx *x = arg;
    const rq_attn_params p = {.n_q_heads = T_HQ};
    x->st[t] = rq_cache_attention(x->c, t % T_LAYERS, x->q, 1, NULL, &p, x->out + (size_t)t * T_HQ * T_D);
}

static void test_threads_attention_in_pool_tasks(void) {
    rq_cache_config cfg = rq_cache_config_default();
    cfg.n_layers = T_LAYERS, cfg.n_kv_heads = T_HEADS, cfg.head_dim = T_D, cfg.n_threads = 2;
    rq_cache *c = NULL;
    CHECK_OK(rq_cache_init(&c, &cfg));
    if (!c) return;
    rq_rng r;
    rq_rng_seed(&r, 77);
    float k[600 * T_HEADS * T_D], v[600 * T_HEADS * T_D], q[T_HQ * T_D];
    for (int l = 0; l < T_LAYERS; l++) {
        for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) k[i] = (float)rq_rng_gauss(&r), v[i] = (float)rq_rng_gauss(&r);
        CHECK_OK(rq_cache_append(c, l, k, v, 600));
    }
    for (int i = 0; i < T_HQ * T_D; i++) q[i] = (float)rq_rng_gauss(&r);
    pool_ctx x = {.c = c, .q = q, .out = malloc(sizeof(float) * 8 * T_HQ * T_D)};
    float *want = malloc(sizeof(float) * 8 * T_HQ * T_D);
    for (int t = 0; t < 8; t++) pool_task(&x, t);
    memcpy(want, x.out, sizeof(float) * 8 * T_HQ * T_D);
    memset(x.out, 0, sizeof(float) * 8 * T_HQ * T_D);
    rq_parallel_for(2, 8, pool_task, &x);
    int bad = 0;
    for (int t = 0; t < 8; t++) bad += x.st[t] != RQ_OK;
    CHECK(bad == 0 && !memcmp(want, x.out, sizeof(float) * 8 * T_HQ * T_D), "attention inside pool tasks: %d errors", bad);
    free(x.out), free(want);
    rq_cache_free(c);
}

/* rq_cache_attention_workspace_size bounds every call on the cache: every
 * context length, every layer, key bases included; a smaller workspace is
 * refused with a message naming both sizes. */
static void test_threads_workspace_bound(void) {
    for (int nt = 1; nt <= 4; nt += 3) {
        rq_cache_config cfg = rq_cache_config_default();
        cfg.n_layers = 1, cfg.n_kv_heads = 1, cfg.head_dim = 32, cfg.n_threads = nt, cfg.type_k = "q8_0";
        rq_cache *c = NULL;
        CHECK_OK(rq_cache_init(&c, &cfg));
        if (!c) return;
        const size_t start[3] = {0, 256, 1024};
        float A[3 * 32 * 32] = {0};
        for (int i = 0; i < 3 * 32 * 32; i++) A[i] = (float)((i % 1024) / 32 == i % 32);
        CHECK_OK(rq_cache_set_key_basis(c, 0, 0, 3, start, A));
        const rq_attn_params p = {.n_q_heads = 2};
        size_t bound = 0;
        CHECK_OK(rq_cache_attention_workspace_size(c, 3, &p, &bound));
        void *ws = malloc(bound);
        float kv[32] = {1}, q[3 * 2 * 32], out[3 * 2 * 32];
        for (int i = 0; i < 3 * 2 * 32; i++) q[i] = 0.01f * (float)(i % 7);
        int bad = 0;
        for (size_t n = 1; n <= 5000; n++) {
            CHECK_OK(rq_cache_append(c, 0, kv, kv, 1));
            if (n % 37 && n != 5000) continue;
            const size_t ctx[3] = {n, n / 2, 1};
            bad += rq_cache_attention_ws(c, 0, q, 3, ctx, &p, out, ws, bound) != RQ_OK;
        }
        CHECK(bad == 0, "n_threads %d: %d contexts needed more than the bound (%zu bytes)", nt, bad, bound);
        rq_status st = rq_cache_attention_ws(c, 0, q, 3, NULL, &p, out, ws, 100);
        CHECK(st == RQ_ERR_INVALID_ARG && strstr(rq_last_error(), "workspace of 100 bytes"), "small workspace: %s",
              rq_last_error());
        free(ws);
        rq_cache_free(c);
    }
}

/* rq_last_error: names the function, the argument and the value; success
 * leaves it; another thread's failure does not touch this thread's. */
static void *fail_elsewhere(void *arg) {
    rq_cache_append(arg, 99, NULL, NULL, 0);
    return strstr(rq_last_error(), "layer 99") ? arg : NULL;
}

static void test_threads_error_messages(void) {
    rq_cache_config cfg = rq_cache_config_default();
    cfg.n_layers = 30, cfg.n_kv_heads = 3, cfg.head_dim = 64;
    rq_cache *c = NULL;
    CHECK_OK(rq_cache_init(&c, &cfg));
    if (!c) return;
    float kv[3 * 64] = {0}, q[9 * 64] = {0}, out[9 * 64];
    CHECK(rq_cache_append(c, 31, kv, kv, 1) == RQ_ERR_INVALID_ARG, "layer 31");
    CHECK(!strcmp(rq_last_error(), "rq_cache_append: layer 31 out of range (n_layers = 30)"), "%s", rq_last_error());
    CHECK_OK(rq_cache_append(c, 0, kv, kv, 1));
    CHECK(strstr(rq_last_error(), "layer 31") != NULL, "success leaves the message: %s", rq_last_error());
    kv[64 + 5] = NAN;
    CHECK(rq_cache_append(c, 0, kv, kv, 1) == RQ_ERR_NONFINITE, "NaN key");
    CHECK(strstr(rq_last_error(), "token 0, KV head 1: k[5] = nan"), "%s", rq_last_error());
    kv[64 + 5] = 0, kv[2 * 64 + 7] = 1e6f;
    CHECK(rq_cache_append(c, 0, kv, kv, 1) == RQ_ERR_RANGE, "1e6 in a turbo3 key");
    CHECK(strstr(rq_last_error(), "KV head 2: k[7] = 1e+06"), "%s", rq_last_error());
    kv[2 * 64 + 7] = 0;
    rq_attn_params p = {.n_q_heads = 8};
    CHECK(rq_cache_attention(c, 0, q, 1, NULL, &p, out) == RQ_ERR_SHAPE, "8 q heads");
    CHECK(strstr(rq_last_error(), "n_q_heads = 8") && strstr(rq_last_error(), "n_kv_heads = 3"), "%s", rq_last_error());
    p.n_q_heads = 9, q[2 * 64 + 3] = INFINITY;
    CHECK(rq_cache_attention(c, 0, q, 1, NULL, &p, out) == RQ_ERR_NONFINITE, "Inf query");
    CHECK(strstr(rq_last_error(), "rq_cache_attention: q[0][2][3] = inf"), "%s", rq_last_error());
    q[2 * 64 + 3] = 0;
    size_t n_ctx = 5;
    CHECK(rq_cache_attention(c, 0, q, 1, &n_ctx, &p, out) == RQ_ERR_SHAPE, "n_ctx 5 of 1");
    CHECK(strstr(rq_last_error(), "n_ctx[0] = 5 exceeds the 1 tokens of layer 0"), "%s", rq_last_error());
    /* another thread's failure stays on that thread */
    pthread_t th;
    void *ok = NULL;
    CHECK(pthread_create(&th, NULL, fail_elsewhere, c) == 0, "pthread_create");
    pthread_join(th, &ok);
    CHECK(ok == c, "the other thread saw its own message");
    CHECK(strstr(rq_last_error(), "n_ctx[0] = 5"), "this thread's message unchanged: %s", rq_last_error());
    rq_cache_free(c);

    rq_cache *bad = NULL;
    cfg.type_k = "turbo9";
    CHECK(rq_cache_init(&bad, &cfg) == RQ_ERR_UNKNOWN_TYPE && !bad, "turbo9");
    CHECK(strstr(rq_last_error(), "type_k") && strstr(rq_last_error(), "turbo9"), "%s", rq_last_error());
    cfg.type_k = "turbo3", cfg.n_kv_heads = 0;
    CHECK(rq_cache_init(&bad, &cfg) == RQ_ERR_INVALID_ARG, "0 KV heads");
    CHECK(strstr(rq_last_error(), "n_kv_heads = 0"), "%s", rq_last_error());
    cfg.n_kv_heads = 1, cfg.head_dim = 80, cfg.type_v = "q8_0";
    CHECK(rq_cache_init(&bad, &cfg) == RQ_ERR_DIM, "q8_0 at 80");
    CHECK(strstr(rq_last_error(), "type_v") && strstr(rq_last_error(), "80"), "%s", rq_last_error());
    rq_rotation *rot = NULL;
    CHECK(rq_rotation_init(&rot, RQ_ROT_DENSE, 1, 0) == RQ_ERR_DIM, "d = 1");
    CHECK(strstr(rq_last_error(), "n_dims = 1"), "%s", rq_last_error());
    float A[4] = {1, 2, 2, 4}, At[4];
    CHECK(rq_key_basis_inverse_t(A, 2, At) == RQ_ERR_INVALID_ARG, "singular");
    CHECK(strstr(rq_last_error(), "singular"), "%s", rq_last_error());
}

const rq_test tests_threads[] = {
    {"threads_concurrent_attention_bit_identical", test_threads_concurrent_attention},
    {"threads_attention_in_pool_tasks", test_threads_attention_in_pool_tasks},
    {"threads_workspace_bound", test_threads_workspace_bound},
    {"threads_error_messages", test_threads_error_messages},
    {NULL, NULL},
};
