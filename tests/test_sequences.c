/*
 * test_sequences.c — the paged multi-sequence cache (include/rotorquant.h,
 * "Many sequences"): fork shares pages and copies only a shared, partly
 * filled last page; truncate and remove give pages back at once; the pool's
 * budget refuses an append whole; the sliding window; key bases shared by
 * sequences; batched attention equal bit for bit to per-sequence calls and
 * to a fresh cache holding the same tokens, and close to the reference,
 * over random mixes of adds, forks, truncations, appends and removals; bad
 * arguments.
 */
#include "test.h"

#include <pthread.h>
#include <string.h>

/* fused vs reference, ‖o − o_ref‖/‖o_ref‖ (as test_attention.c) */
#define ATTN_TOL 2e-4

static rq_cache *seq_cache(const char *tk, const char *tv, int L, int H, int d, int page, int threads,
                           size_t max_bytes) {
    rq_cache_config c = rq_cache_config_default();
    c.n_layers = L, c.n_kv_heads = H, c.head_dim = d, c.type_k = tk, c.type_v = tv;
    c.page_tokens = page, c.n_threads = threads, c.max_bytes = max_bytes;
    rq_cache *cache = NULL;
    rq_status st = rq_cache_init(&cache, &c);
    CHECK(st == RQ_OK, "%s/%s d=%d: %s", tk, tv, d, rq_last_error());
    return cache;
}

static void fill(rq_rng *r, float *x, size_t n, int d) {
    for (size_t i = 0; i < n; i++) x[i] = (float)rq_rng_gauss(r) * ((i % (size_t)d) % 17 == 3 ? 6.0f : 1.0f);
}

static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), s += (double)b[i] * b[i];
    return s > 0 ? sqrt(e / s) : sqrt(e);
}

/* ---- fork, copy-on-write, truncate --------------------------------------- */
static void test_fork_cow_truncate(void) {
    const int H = 2, d = 64, page = 256;
    rq_cache *c = seq_cache("turbo3", "turbo3", 1, H, d, page, 1, 0);
    if (!c) return;
    rq_rng r;
    rq_rng_seed(&r, 11);
    const size_t n = 4000, vec = (size_t)H * d;
    float *k = malloc(sizeof(float) * (n + 200) * vec), *v = malloc(sizeof(float) * (n + 200) * vec);
    fill(&r, k, (n + 200) * vec, d), fill(&r, v, (n + 200) * vec, d);
    CHECK_OK(rq_cache_append(c, 0, k, v, n));
    const size_t pages = (n + page - 1) / page; /* 16, the last partly filled */
    CHECK(rq_cache_pages_in_use(c) == pages, "%zu pages in use", rq_cache_pages_in_use(c));
    float q[2 * 64], o_before[2 * 64], o[2 * 64], o2[2 * 64];
    fill(&r, q, vec, d);
    rq_attn_params p = {.n_q_heads = H, .scale = 0};
    CHECK_OK(rq_cache_attention(c, 0, q, 1, NULL, &p, o_before));

    CHECK_OK(rq_cache_seq_fork(c, 0, 7));
    CHECK(rq_cache_pages_in_use(c) == pages, "fork copied pages: %zu in use", rq_cache_pages_in_use(c));
    CHECK(rq_cache_seq_n_tokens(c, 7, 0) == n, "child tokens %zu", rq_cache_seq_n_tokens(c, 7, 0));
    CHECK_OK(rq_cache_seq_attention(c, 7, 0, q, 1, NULL, &p, o));
    CHECK(!memcmp(o, o_before, sizeof o), "the child attends like its parent, bit for bit");
    /* the child writes: only the shared, partly filled last page is copied */
    CHECK_OK(rq_cache_seq_append(c, 7, 0, k + n * vec, v + n * vec, 1));
    CHECK(rq_cache_pages_in_use(c) == pages + 1, "child append: %zu pages in use", rq_cache_pages_in_use(c));
    CHECK_OK(rq_cache_attention(c, 0, q, 1, NULL, &p, o));
    CHECK(!memcmp(o, o_before, sizeof o), "the parent is untouched by the child's append");
    /* the parent writes its own page in place now (no longer shared) */
    CHECK_OK(rq_cache_append(c, 0, k + (n + 100) * vec, v + (n + 100) * vec, 1));
    CHECK(rq_cache_pages_in_use(c) == pages + 1, "parent append: %zu pages in use", rq_cache_pages_in_use(c));
    /* each equals a fresh cache holding its tokens */
    rq_cache *f = seq_cache("turbo3", "turbo3", 1, H, d, page, 1, 0);
    if (f) {
        CHECK_OK(rq_cache_append(f, 0, k, v, n));
        CHECK_OK(rq_cache_append(f, 0, k + n * vec, v + n * vec, 1));
        CHECK_OK(rq_cache_attention(f, 0, q, 1, NULL, &p, o2));
        CHECK_OK(rq_cache_seq_attention(c, 7, 0, q, 1, NULL, &p, o));
        CHECK(!memcmp(o, o2, sizeof o), "forked child = fresh cache, bit for bit");
        rq_cache_free(f);
    }
    /* fork at a page boundary: the child's append takes a new page, copies none */
    CHECK_OK(rq_cache_seq_truncate(c, 0, 3904));
    CHECK(rq_cache_seq_n_tokens(c, 0, 0) == 3904, "truncate to 3904: %zu", rq_cache_seq_n_tokens(c, 0, 0));
    CHECK_OK(rq_cache_seq_add(c, 8));
    CHECK_OK(rq_cache_seq_append(c, 8, 0, k, v, 4096 - 200));
    CHECK_OK(rq_cache_seq_append(c, 8, 0, k, v, 200));
    const size_t used = rq_cache_pages_in_use(c);
    CHECK_OK(rq_cache_seq_fork(c, 8, 9));
    CHECK_OK(rq_cache_seq_append(c, 9, 0, k, v, 1));
    CHECK(rq_cache_pages_in_use(c) == used + 1, "fork of a full-page prefix: %zu → %zu pages", used,
          rq_cache_pages_in_use(c));
    /* truncate gives pages back at once; remove likewise */
    const size_t before = rq_cache_pages_in_use(c);
    CHECK_OK(rq_cache_seq_truncate(c, 9, 100)); /* keeps page 0 (shared with 8), drops its own last page */
    CHECK(rq_cache_pages_in_use(c) == before - 1, "truncate: %zu → %zu", before, rq_cache_pages_in_use(c));
    CHECK_OK(rq_cache_seq_remove(c, 8));
    CHECK(rq_cache_pages_in_use(c) == before - 1 - 15, "remove: %zu", rq_cache_pages_in_use(c));
    CHECK_OK(rq_cache_seq_remove(c, 9));
    int ids[4];
    CHECK(rq_cache_seq_ids(c, ids, 4) == 2 && ids[0] == 0 && ids[1] == 7, "ids after removals");
    /* truncate then re-append = fresh */
    CHECK_OK(rq_cache_seq_truncate(c, 7, 1000));
    CHECK_OK(rq_cache_seq_append(c, 7, 0, k + 1000 * vec, v + 1000 * vec, 500));
    f = seq_cache("turbo3", "turbo3", 1, H, d, page, 1, 0);
    if (f) {
        CHECK_OK(rq_cache_append(f, 0, k, v, 1500));
        CHECK_OK(rq_cache_attention(f, 0, q, 1, NULL, &p, o2));
        CHECK_OK(rq_cache_seq_attention(c, 7, 0, q, 1, NULL, &p, o));
        CHECK(!memcmp(o, o2, sizeof o), "truncated and re-appended = fresh cache, bit for bit");
        rq_cache_free(f);
    }
    rq_cache_clear(c);
    CHECK(rq_cache_pages_in_use(c) == 0 && rq_cache_seq_ids(c, NULL, 0) == 2, "clear keeps the sequences, frees pages");
    free(k), free(v);
    rq_cache_free(c);
}

/* ---- the pool's budget ---------------------------------------------------- */
static void test_budget(void) {
    const int H = 2, d = 64, page = 16;
    rq_cache *probe = seq_cache("q8_0", "turbo2", 2, H, d, page, 1, 0);
    if (!probe) return;
    const size_t pb = rq_cache_page_bytes(probe);
    rq_cache_free(probe);
    rq_cache *c = seq_cache("q8_0", "turbo2", 2, H, d, page, 1, 5 * pb + pb / 2);
    if (!c) return;
    CHECK(rq_cache_pages_available(c) == 5, "budget of 5.5 pages: %zu available", rq_cache_pages_available(c));
    rq_rng r;
    rq_rng_seed(&r, 12);
    float k[100 * 2 * 64], v[100 * 2 * 64];
    fill(&r, k, sizeof k / sizeof k[0], d), fill(&r, v, sizeof v / sizeof v[0], d);
    CHECK_OK(rq_cache_append(c, 0, k, v, 40)); /* 3 pages */
    CHECK_OK(rq_cache_append(c, 1, k, v, 20)); /* 2 pages */
    CHECK(rq_cache_pages_available(c) == 0, "%zu left", rq_cache_pages_available(c));
    rq_last_error_clear();
    CHECK(rq_cache_append(c, 0, k, v, 9) == RQ_ERR_NOMEM, "past the budget");
    CHECK(strstr(rq_last_error(), "out of pages") != NULL, "message: %s", rq_last_error());
    CHECK(rq_cache_n_tokens(c, 0) == 40, "nothing half-appended: %zu", rq_cache_n_tokens(c, 0));
    CHECK_OK(rq_cache_append(c, 0, k, v, 8)); /* fills page 3's free slots */
    /* a fork sharing a partly filled page cannot write it without a copy */
    CHECK_OK(rq_cache_seq_fork(c, 0, 1));
    CHECK(rq_cache_seq_append(c, 1, 1, k, v, 1) == RQ_ERR_NOMEM, "copy-on-write needs a page");
    CHECK(rq_cache_seq_n_tokens(c, 1, 1) == 20, "child unchanged");
    CHECK_OK(rq_cache_seq_truncate(c, 0, 16)); /* frees nothing: the child shares them */
    CHECK(rq_cache_pages_available(c) == 0, "shared pages stay");
    CHECK_OK(rq_cache_seq_remove(c, 1)); /* now layer 0's pages 1..2 and layer 1's page 1 go */
    CHECK(rq_cache_pages_available(c) == 3, "%zu available after remove", rq_cache_pages_available(c));
    CHECK_OK(rq_cache_append(c, 1, k, v, 40));
    CHECK(rq_cache_n_tokens(c, 1) == 56, "layer 1 truncated to 16, then + 40: %zu", rq_cache_n_tokens(c, 1));
    CHECK(rq_cache_bytes_allocated(c) <= 5 * pb + 4096, "allocated %zu within the budget", rq_cache_bytes_allocated(c));
    rq_cache_free(c);
}

/* ---- sliding window ---------------------------------------------------------- */
static void test_window(void) {
    const int H = 2, d = 64, page = 16, W = 50;
    rq_cache *c = seq_cache("turbo3", "q8_0", 2, H, d, page, 2, 0);
    if (!c) return;
    CHECK_OK(rq_cache_set_window(c, 0, W));
    rq_rng r;
    rq_rng_seed(&r, 13);
    const size_t n = 300, vec = (size_t)H * d;
    float *k = malloc(sizeof(float) * n * vec), *v = malloc(sizeof(float) * n * vec);
    fill(&r, k, n * vec, d), fill(&r, v, n * vec, d);
    float q[2 * 2 * 64], o[2 * 2 * 64], o2[2 * 2 * 64], o3[2 * 2 * 64];
    fill(&r, q, 2 * vec, d);
    rq_attn_params p = {.n_q_heads = H, .scale = 0};
    double worst = 0;
    int exact_bad = 0;
    for (size_t t = 0; t < n;) {
        size_t m = 1 + (t * 7) % 13;
        if (m > n - t) m = n - t;
        for (int l = 0; l < 2; l++) CHECK_OK(rq_cache_append(c, l, k + t * vec, v + t * vec, m));
        t += m;
        size_t ctx[2] = {t, t - (m - 1)}; /* a causal pair: the last and the first new position */
        CHECK_OK(rq_cache_attention(c, 0, q, 2, ctx, &p, o));
        CHECK_OK(rq_cache_attention_ref(c, 0, q, 2, ctx, &p, o2));
        double e = rel_err(o, o2, 2 * vec);
        worst = e > worst ? e : worst;
        /* the reference over the window = the reference of a cache holding just those tokens */
        rq_cache *f = seq_cache("turbo3", "q8_0", 1, H, d, page, 1, 0);
        if (f) {
            size_t lo = t > (size_t)W ? t - (size_t)W : 0;
            CHECK_OK(rq_cache_append(f, 0, k + lo * vec, v + lo * vec, t - lo));
            CHECK_OK(rq_cache_attention_ref(f, 0, q, 1, NULL, &p, o3));
            exact_bad += memcmp(o3, o2, sizeof(float) * vec) != 0;
            rq_cache_free(f);
        }
    }
    CHECK(worst < ATTN_TOL, "window fused vs reference %.2g", worst);
    CHECK(exact_bad == 0, "%d steps: the window's reference differs from the last W tokens'", exact_bad);
    /* layer 0 holds ⌈W/page⌉ + 1 pages at most; layer 1 all of them */
    CHECK(rq_cache_pages_in_use(c) <= (size_t)(W / page + 2) + (n + page - 1) / page, "%zu pages in use",
          rq_cache_pages_in_use(c));
    size_t early = 100;
    CHECK(rq_cache_attention(c, 0, q, 1, &early, &p, o) == RQ_ERR_RANGE, "n_ctx into released positions");
    CHECK(rq_cache_seq_truncate(c, 0, 100) == RQ_ERR_RANGE, "truncating back into released positions");
    CHECK(rq_cache_n_tokens(c, 1) == n, "failed truncate changed nothing");
    CHECK_OK(rq_cache_seq_truncate(c, 0, n - 1));
    CHECK(rq_cache_set_window(c, 0, 10) == RQ_ERR_INVALID_ARG, "window set with tokens stored");
    free(k), free(v);
    rq_cache_free(c);
}

/* ---- random mixes: batched = per sequence = fresh; fused ≈ reference ------- */
#define MIX_SEQS 12
#define MIX_POOL 700
#define MIX_LEN 600

typedef struct {
    int live;
    size_t n;
    int tok[MIX_LEN]; /* pool index of each position */
} shadow;

static void mix_case(const char *tk, const char *tv, int H, int G, int d, int threads, int with_basis, uint64_t seed) {
    const int L = 2, page = 32, Hq = H * G;
    rq_cache *c = seq_cache(tk, tv, L, H, d, page, threads, 0);
    if (!c) return;
    rq_rng r;
    rq_rng_seed(&r, seed);
    const size_t vec = (size_t)H * d;
    float *kp = malloc(sizeof(float) * MIX_POOL * vec), *vp = malloc(sizeof(float) * MIX_POOL * vec);
    float *kb = malloc(sizeof(float) * MIX_LEN * vec), *vb = malloc(sizeof(float) * MIX_LEN * vec);
    fill(&r, kp, MIX_POOL * vec, d), fill(&r, vp, MIX_POOL * vec, d);
    float *A = NULL;
    size_t starts[2] = {0, 200};
    if (with_basis) { /* a well-conditioned basis per range: I + small noise */
        A = malloc(sizeof(float) * 2 * (size_t)d * (size_t)d);
        for (size_t i = 0; i < 2 * (size_t)d * (size_t)d; i++)
            A[i] = (i % ((size_t)d * d)) % ((size_t)d + 1) == 0 ? 1.0f : 0.05f * (float)rq_rng_gauss(&r);
        for (int l = 0; l < L; l++)
            for (int h = 0; h < H; h++) CHECK_OK(rq_cache_set_key_basis(c, l, h, 2, starts, A));
    }
    static shadow sh[MIX_SEQS];
    memset(sh, 0, sizeof sh);
    sh[0].live = 1;
    for (int op = 0; op < 60; op++) {
        int s = (int)(rq_rng_next(&r) % MIX_SEQS), kind = (int)(rq_rng_next(&r) % 10);
        if (!sh[s].live) {
            if (kind < 5) { /* fork from a live one */
                int from = (int)(rq_rng_next(&r) % MIX_SEQS);
                if (!sh[from].live) continue;
                CHECK_OK(rq_cache_seq_fork(c, from, s));
                sh[s] = sh[from];
            } else {
                CHECK_OK(rq_cache_seq_add(c, s));
                sh[s].live = 1, sh[s].n = 0;
            }
        } else if (kind < 6) { /* append */
            size_t m = 1 + rq_rng_next(&r) % (kind < 2 ? 150 : 9);
            if (sh[s].n + m > MIX_LEN) m = MIX_LEN - sh[s].n;
            for (size_t t = 0; t < m; t++) {
                int pi = (int)(rq_rng_next(&r) % MIX_POOL);
                sh[s].tok[sh[s].n + t] = pi;
                memcpy(kb + t * vec, kp + (size_t)pi * vec, sizeof(float) * vec);
                memcpy(vb + t * vec, vp + (size_t)pi * vec, sizeof(float) * vec);
            }
            for (int l = 0; l < L; l++) CHECK_OK(rq_cache_seq_append(c, s, l, kb, vb, m));
            sh[s].n += m;
        } else if (kind < 9) { /* truncate */
            size_t to = sh[s].n ? rq_rng_next(&r) % (sh[s].n + 1) : 0;
            CHECK_OK(rq_cache_seq_truncate(c, s, to));
            sh[s].n = to;
        } else {
            CHECK_OK(rq_cache_seq_remove(c, s));
            sh[s].live = 0;
        }
    }
    /* attend every live sequence: 2 queries each (the full context and a causal limit) */
    rq_attn_seq items[MIX_SEQS];
    size_t ctx[MIX_SEQS][2];
    const size_t qn = 2 * (size_t)Hq * d;
    float *q = malloc(sizeof(float) * MIX_SEQS * qn), *ob = malloc(sizeof(float) * MIX_SEQS * qn);
    float *o1 = malloc(sizeof(float) * qn), *o2 = malloc(sizeof(float) * qn);
    fill(&r, q, MIX_SEQS * qn, d);
    size_t n_items = 0, total_pages = 0;
    for (int s = 0; s < MIX_SEQS; s++) {
        if (!sh[s].live) continue;
        CHECK(rq_cache_seq_n_tokens(c, s, 1) == sh[s].n, "seq %d: %zu tokens, expected %zu", s,
              rq_cache_seq_n_tokens(c, s, 1), sh[s].n);
        ctx[s][0] = sh[s].n, ctx[s][1] = sh[s].n / 2;
        items[n_items++] = (rq_attn_seq){.seq = s, .q = q + (size_t)s * qn, .n_queries = 2, .n_ctx = ctx[s],
                                         .out = ob + (size_t)s * qn};
        total_pages += L * ((sh[s].n + page - 1) / page);
    }
    CHECK(rq_cache_pages_in_use(c) <= total_pages, "%zu pages in use > %zu unshared", rq_cache_pages_in_use(c),
          total_pages);
    rq_attn_params p = {.n_q_heads = Hq, .scale = 0};
    double worst = 0;
    int same_batch = 0, same_fresh = 0;
    for (int l = 0; l < L; l++) {
        CHECK_OK(rq_cache_attention_batch(c, l, items, n_items, &p));
        for (size_t b = 0; b < n_items; b++) {
            const int s = items[b].seq;
            CHECK_OK(rq_cache_seq_attention(c, s, l, items[b].q, 2, ctx[s], &p, o1));
            same_batch += !memcmp(o1, items[b].out, sizeof(float) * qn);
            CHECK_OK(rq_cache_seq_attention_ref(c, s, l, items[b].q, 2, ctx[s], &p, o2));
            double e = rel_err(o1, o2, qn);
            worst = e > worst ? e : worst;
            /* a fresh single-sequence cache with the same tokens gives the same bits */
            rq_cache *f = seq_cache(tk, tv, 1, H, d, page, threads, 0);
            if (!f) continue;
            for (int h = 0; with_basis && h < H; h++) CHECK_OK(rq_cache_set_key_basis(f, 0, h, 2, starts, A));
            for (size_t t = 0; t < sh[s].n; t++) {
                memcpy(kb + t * vec, kp + (size_t)sh[s].tok[t] * vec, sizeof(float) * vec);
                memcpy(vb + t * vec, vp + (size_t)sh[s].tok[t] * vec, sizeof(float) * vec);
            }
            CHECK_OK(rq_cache_append(f, 0, kb, vb, sh[s].n));
            CHECK_OK(rq_cache_attention(f, 0, items[b].q, 2, ctx[s], &p, o2));
            same_fresh += !memcmp(o1, o2, sizeof(float) * qn);
            rq_cache_free(f);
        }
    }
    CHECK(same_batch == L * (int)n_items, "%s/%s: batched = per-sequence for %d of %zu", tk, tv, same_batch,
          L * n_items);
    CHECK(same_fresh == L * (int)n_items, "%s/%s: per-sequence = fresh cache for %d of %zu", tk, tv, same_fresh,
          L * n_items);
    CHECK(worst < ATTN_TOL, "%s/%s%s: fused vs reference %.2g", tk, tv, with_basis ? " (key basis)" : "", worst);
    TEST_NOTE("%s/%s%s, %d thread(s): %zu sequences, %zu pages in use of %zu unshared, fused vs reference %.2g", tk, tv,
              with_basis ? " (key basis)" : "", threads, n_items, rq_cache_pages_in_use(c), total_pages, worst);
    free(kp), free(vp), free(kb), free(vb), free(q), free(ob), free(o1), free(o2), free(A);
    rq_cache_free(c);
}

static void test_random_mixes(void) {
    const char *pairs[][2] = {{"turbo3", "turbo3"}, {"q8_0", "turbo3p"}, {"f16", "q4_0"},   {"turbo2p", "rotor3"},
                              {"iso4", "planar2"}, {"f32", "f16"},       {"q4_0h", "turbo4"}, {"dense3p", "iso3p"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        mix_case(pairs[i][0], pairs[i][1], 2, 2, 64, 1 + (int)(i % 2), 0, 100 + i);
    mix_case("turbo3", "turbo3", 2, 3, 64, 2, 1, 200);
    mix_case("q8_0", "turbo4", 1, 4, 96, 2, 1, 201);
}

/* ---- batched attention from several threads at once ------------------------ */
typedef struct {
    const rq_cache *c;
    const rq_attn_seq *items;
    size_t n;
    const rq_attn_params *p;
    rq_status st;
} batch_arg;

static void *batch_thread(void *arg) {
    batch_arg *a = arg;
    for (int rep = 0; rep < 4 && !a->st; rep++) a->st = rq_cache_attention_batch(a->c, 0, a->items, a->n, a->p);
    return NULL;
}

static void test_batch_concurrent(void) {
    const int H = 2, d = 64, Hq = 4;
    rq_cache *c = seq_cache("turbo3", "turbo3", 1, H, d, 64, 2, 0);
    if (!c) return;
    rq_rng r;
    rq_rng_seed(&r, 14);
    const size_t vec = (size_t)H * d, lens[5] = {3000, 5, 64, 65, 1};
    float *k = malloc(sizeof(float) * 3000 * vec), *v = malloc(sizeof(float) * 3000 * vec);
    fill(&r, k, 3000 * vec, d), fill(&r, v, 3000 * vec, d);
    const size_t qn = (size_t)Hq * d;
    float q[5 * 4 * 64], solo[5 * 4 * 64], out[2][5 * 4 * 64];
    fill(&r, q, 5 * qn, d);
    rq_attn_seq items[3][5];
    for (int s = 0; s < 5; s++) {
        if (s) CHECK_OK(rq_cache_seq_add(c, s));
        CHECK_OK(rq_cache_seq_append(c, s, 0, k + (size_t)s * vec, v + (size_t)s * vec, lens[s]));
        for (int x = 0; x < 3; x++) {
            float *o = x == 0 ? solo : out[x - 1];
            items[x][s] = (rq_attn_seq){.seq = s, .q = q + (size_t)s * qn, .n_queries = 1, .out = o + (size_t)s * qn};
        }
    }
    rq_attn_params p = {.n_q_heads = Hq, .scale = 0};
    CHECK_OK(rq_cache_attention_batch(c, 0, items[0], 5, &p));
    batch_arg a[2] = {{c, items[1], 5, &p, RQ_OK}, {c, items[2], 5, &p, RQ_OK}};
    pthread_t th[2];
    for (int t = 0; t < 2; t++) pthread_create(&th[t], NULL, batch_thread, &a[t]);
    for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < 2; t++) {
        CHECK(a[t].st == RQ_OK, "thread %d: %s", t, rq_status_str(a[t].st));
        CHECK(!memcmp(out[t], solo, sizeof solo), "thread %d: concurrent batched = alone, bit for bit", t);
    }
    free(k), free(v);
    rq_cache_free(c);
}

/* ---- bad arguments -------------------------------------------------------------- */
static void test_seq_bad_args(void) {
    rq_cache *c = seq_cache("turbo3", "turbo3", 2, 1, 64, 16, 1, 0);
    if (!c) return;
    float k[64] = {1}, v[64] = {1}, q[64] = {1}, o[64];
    rq_attn_params p = {.n_q_heads = 1, .scale = 0};
    CHECK(rq_cache_seq_add(c, 0) == RQ_ERR_INVALID_ARG, "sequence 0 exists by default");
    CHECK(rq_cache_seq_add(c, -1) == RQ_ERR_INVALID_ARG, "negative id");
    CHECK(rq_cache_seq_add(NULL, 1) == RQ_ERR_INVALID_ARG, "NULL");
    CHECK(rq_cache_seq_remove(c, 3) == RQ_ERR_INVALID_ARG, "remove a missing sequence");
    CHECK(rq_cache_seq_fork(c, 3, 4) == RQ_ERR_INVALID_ARG, "fork a missing parent");
    CHECK(rq_cache_seq_fork(c, 0, 0) == RQ_ERR_INVALID_ARG, "fork onto an existing id");
    CHECK(rq_cache_seq_truncate(c, 3, 0) == RQ_ERR_INVALID_ARG, "truncate a missing sequence");
    CHECK(rq_cache_seq_append(c, 3, 0, k, v, 1) == RQ_ERR_INVALID_ARG, "append to a missing sequence");
    CHECK(strstr(rq_last_error(), "no sequence 3") != NULL, "message: %s", rq_last_error());
    CHECK(rq_cache_seq_attention(c, 3, 0, q, 1, NULL, &p, o) == RQ_ERR_INVALID_ARG, "attend a missing sequence");
    CHECK(rq_cache_seq_n_tokens(c, 3, 0) == 0, "tokens of a missing sequence");
    CHECK(rq_cache_set_window(c, 2, 5) == RQ_ERR_INVALID_ARG, "window of a bad layer");
    CHECK(rq_cache_attention_batch(c, 0, NULL, 2, &p) == RQ_ERR_INVALID_ARG, "NULL entries");
    CHECK_OK(rq_cache_attention_batch(c, 0, NULL, 0, &p));
    rq_attn_seq bad[2] = {{.seq = 0, .q = q, .n_queries = 1, .out = o}, {.seq = 5, .q = q, .n_queries = 1, .out = o}};
    CHECK(rq_cache_attention_batch(c, 0, bad, 2, &p) == RQ_ERR_INVALID_ARG, "a missing sequence in a batch");
    CHECK(strstr(rq_last_error(), "entry 1") != NULL, "message names the entry: %s", rq_last_error());
    size_t big = 2;
    bad[1].seq = 0, bad[1].n_ctx = &big;
    CHECK(rq_cache_attention_batch(c, 0, bad, 2, &p) == RQ_ERR_SHAPE, "n_ctx past the sequence's tokens");
    /* sequence 0 removed: the single-sequence calls fail until it returns */
    CHECK_OK(rq_cache_seq_add(c, 1));
    CHECK_OK(rq_cache_seq_remove(c, 0));
    CHECK(rq_cache_append(c, 0, k, v, 1) == RQ_ERR_INVALID_ARG, "append without sequence 0");
    CHECK(rq_cache_attention(c, 0, q, 1, NULL, &p, o) == RQ_ERR_INVALID_ARG, "attention without sequence 0");
    CHECK_OK(rq_cache_seq_add(c, 0));
    CHECK_OK(rq_cache_append(c, 0, k, v, 1));
    rq_cache_config cfg = rq_cache_config_default();
    cfg.max_bytes = 100;
    rq_cache *tiny = NULL;
    CHECK(rq_cache_init(&tiny, &cfg) == RQ_ERR_INVALID_ARG && !tiny, "a budget below one page");
    rq_cache_free(c);
}

const rq_test tests_sequences[] = {
    {"seq_fork_cow_truncate_remove", test_fork_cow_truncate},
    {"seq_pool_budget_all_or_nothing", test_budget},
    {"seq_sliding_window", test_window},
    {"seq_random_mixes_batched_fresh_reference", test_random_mixes},
    {"seq_batch_threads_concurrent_bit_identical", test_batch_concurrent},
    {"seq_bad_args", test_seq_bad_args},
    {NULL, NULL},
};
