/*
 * test_seqio.c — saving and restoring sequences (rq_cache_seq_save*,
 * rq_cache_seq_load*; docs/FORMAT.md §7): round trips for every type, with
 * key bases, windows and forks, equal bit for bit in attention; every
 * mismatch refused with a message naming it; the file written through a
 * temporary and renamed; every truncation and every corrupted byte of a
 * saved file refused with the cache left as it was; the pool's budget.
 */
#include "test.h"

#include <dirent.h>
#include <string.h>
#include <unistd.h>

static rq_cache *io_cache(const char *tk, const char *tv, int L, int H, int d, int page, uint64_t seed) {
    rq_cache_config c = rq_cache_config_default();
    c.n_layers = L, c.n_kv_heads = H, c.head_dim = d, c.type_k = tk, c.type_v = tv;
    c.page_tokens = page, c.quant.seed = seed;
    if (test_is_k8(tk)) c.centre_keys = 1; /* k8 keys need it */
    rq_cache *cache = NULL;
    return rq_cache_init(&cache, &c) == RQ_OK ? cache : NULL;
}

static void fill(rq_rng *r, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)rq_rng_gauss(r);
}

/* sequence 0 with n0 tokens, 1 its fork + 5, 4 a fresh one of n4, in both layers */
static void populate(rq_cache *c, int L, int H, int d, size_t n0, size_t n4, uint64_t seed) {
    rq_rng r;
    rq_rng_seed(&r, seed);
    const size_t vec = (size_t)H * d, n = n0 + n4 + 5;
    float *k = malloc(sizeof(float) * n * vec), *v = malloc(sizeof(float) * n * vec);
    fill(&r, k, n * vec), fill(&r, v, n * vec);
    for (int l = 0; l < L; l++) CHECK_OK(rq_cache_append(c, l, k, v, n0));
    CHECK_OK(rq_cache_seq_fork(c, 0, 1));
    CHECK_OK(rq_cache_seq_add(c, 4));
    for (int l = 0; l < L; l++) {
        CHECK_OK(rq_cache_seq_append(c, 1, l, k + n0 * vec, v + n0 * vec, 5));
        CHECK_OK(rq_cache_seq_append(c, 4, l, k + (n0 + 5) * vec, v + (n0 + 5) * vec, n4));
    }
    free(k), free(v);
}

/* Attention of sequence sa in a and sb in b, every layer: the same bits? */
static int same_attention(const rq_cache *a, int sa, const rq_cache *b, int sb, int L, int Hq, int d) {
    float q[4 * 96], o1[4 * 96], o2[4 * 96];
    rq_rng r;
    rq_rng_seed(&r, 77);
    fill(&r, q, (size_t)Hq * d);
    rq_attn_params p = {.n_q_heads = Hq, .scale = 0};
    int same = 1;
    for (int l = 0; l < L; l++) {
        if (rq_cache_seq_n_tokens(a, sa, l) != rq_cache_seq_n_tokens(b, sb, l)) return 0;
        if (rq_cache_seq_attention(a, sa, l, q, 1, NULL, &p, o1) || rq_cache_seq_attention(b, sb, l, q, 1, NULL, &p, o2))
            return 0;
        same &= !memcmp(o1, o2, sizeof(float) * (size_t)Hq * d);
    }
    return same;
}

static void test_roundtrip_every_type(void) {
    int n = 0;
    for (int i = 0; i < rq_type_count(); i++) {
        const char *t = rq_type_at(i)->name, *tv = rq_type_at((i + 3) % rq_type_count())->name;
        if (test_is_k8(tv)) tv = "tcq3n8"; /* k8: key types only (of a centred cache) */
        rq_cache *a = io_cache(t, tv, 2, 2, 64, 16, 5), *b = io_cache(t, tv, 2, 2, 64, 16, 5);
        if (!a || !b) {
            rq_cache_free(a), rq_cache_free(b);
            continue;
        }
        populate(a, 2, 2, 64, 37, 20, (uint64_t)i);
        size_t need;
        CHECK_OK(rq_cache_seq_save_mem(a, RQ_SEQ_ALL, NULL, 0, &need));
        uint8_t *buf = malloc(need);
        size_t got;
        CHECK(rq_cache_seq_save_mem(a, RQ_SEQ_ALL, buf, need - 1, &got) == RQ_ERR_INVALID_ARG, "short buffer");
        CHECK_OK(rq_cache_seq_save_mem(a, RQ_SEQ_ALL, buf, need, &got));
        CHECK(got == need, "size %zu vs %zu", got, need);
        CHECK_OK(rq_cache_seq_remove(b, 0)); /* the file holds sequence 0 */
        CHECK_OK(rq_cache_seq_load_mem(b, RQ_SEQ_ALL, buf, got));
        int ids[8];
        CHECK(rq_cache_seq_ids(b, ids, 8) == 3 && ids[0] == 0 && ids[1] == 1 && ids[2] == 4, "%s: ids", t);
        for (int s = 0; s < 5; s++)
            if (s < 2 || s == 4) CHECK(same_attention(a, s, b, s, 2, 4, 64), "%s/%s: sequence %d round trip", t, tv, s);
        /* one sequence, loaded under another id */
        CHECK_OK(rq_cache_seq_save_mem(a, 4, buf, need, &got));
        CHECK(rq_cache_seq_load_mem(b, 4, buf, got) == RQ_ERR_INVALID_ARG, "an id already present");
        CHECK_OK(rq_cache_seq_load_mem(b, 9, buf, got));
        CHECK(same_attention(a, 4, b, 9, 2, 4, 64), "%s: sequence 4 loaded as 9", t);
        free(buf);
        rq_cache_free(a), rq_cache_free(b);
        n++;
    }
    CHECK(n >= 20, "%d types round-tripped", n);
}

static void test_mismatches(void) {
    rq_cache *a = io_cache("turbo3", "q8_0", 2, 2, 64, 16, 5);
    if (!a) return;
    populate(a, 2, 2, 64, 20, 10, 1);
    size_t n;
    CHECK_OK(rq_cache_seq_save_mem(a, 0, NULL, 0, &n));
    uint8_t *buf = malloc(n);
    CHECK_OK(rq_cache_seq_save_mem(a, 0, buf, n, &n));
    struct {
        rq_cache *c;
        const char *word;
    } cases[] = {
        {io_cache("turbo4", "q8_0", 2, 2, 64, 16, 5), "types"},
        {io_cache("turbo3", "q8_0", 2, 2, 96, 16, 5), "head_dim"},
        {io_cache("turbo3", "q8_0", 3, 2, 64, 16, 5), "layers"},
        {io_cache("turbo3", "q8_0", 2, 1, 64, 16, 5), "KV heads"},
        {io_cache("turbo3", "q8_0", 2, 2, 64, 32, 5), "pages of"},
        {io_cache("turbo3", "q8_0", 2, 2, 64, 16, 6), "seed"},
        {io_cache("turbo3", "q8_0", 2, 2, 64, 16, 5), "key bases"},
        {io_cache("turbo3", "q8_0", 2, 2, 64, 16, 5), "window"},
    };
    const int d = 64;
    float *A = calloc((size_t)d * d, sizeof(float));
    for (int i = 0; i < d; i++) A[i * d + i] = i % 2 ? 2.0f : 0.5f;
    size_t start0 = 0;
    if (cases[6].c) CHECK_OK(rq_cache_set_key_basis(cases[6].c, 1, 0, 1, &start0, A));
    if (cases[7].c) CHECK_OK(rq_cache_set_window(cases[7].c, 1, 64));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (!cases[i].c) continue;
        rq_status st = rq_cache_seq_load_mem(cases[i].c, 3, buf, n);
        CHECK(st == RQ_ERR_FORMAT, "%s: %s", cases[i].word, rq_status_str(st));
        CHECK(strstr(rq_last_error(), cases[i].word) != NULL, "message names the %s: %s", cases[i].word,
              rq_last_error());
        CHECK(rq_cache_seq_ids(cases[i].c, NULL, 0) == 1, "nothing loaded");
        rq_cache_free(cases[i].c);
    }
    /* with the same bases on both sides, loading works */
    rq_cache *b = io_cache("turbo3", "q8_0", 2, 2, 64, 16, 5), *e = io_cache("turbo3", "q8_0", 2, 2, 64, 16, 5);
    if (b && e) {
        CHECK_OK(rq_cache_set_key_basis(b, 1, 0, 1, &start0, A));
        CHECK_OK(rq_cache_set_key_basis(e, 1, 0, 1, &start0, A));
        populate(b, 2, 2, 64, 20, 10, 1);
        CHECK_OK(rq_cache_seq_save_mem(b, 1, NULL, 0, &n));
        free(buf);
        buf = malloc(n);
        CHECK_OK(rq_cache_seq_save_mem(b, 1, buf, n, &n));
        CHECK_OK(rq_cache_seq_load_mem(e, 3, buf, n));
        CHECK(same_attention(b, 1, e, 3, 2, 4, 64), "with key bases");
    }
    rq_cache_free(b), rq_cache_free(e);
    free(A), free(buf);
    rq_cache_free(a);
}

static void test_window_budget(void) {
    rq_cache *a = io_cache("q4_0", "turbo2", 2, 1, 32, 8, 5);
    if (!a) return;
    CHECK_OK(rq_cache_set_window(a, 0, 20));
    rq_rng r;
    rq_rng_seed(&r, 3);
    float k[100 * 32], v[100 * 32];
    fill(&r, k, 100 * 32), fill(&r, v, 100 * 32);
    for (int t = 0; t < 100; t += 10)
        for (int l = 0; l < 2; l++) CHECK_OK(rq_cache_append(a, l, k + t * 32, v + t * 32, 10));
    size_t n;
    CHECK_OK(rq_cache_seq_save_mem(a, 0, NULL, 0, &n));
    uint8_t *buf = malloc(n);
    CHECK_OK(rq_cache_seq_save_mem(a, 0, buf, n, &n));
    rq_cache_config cfg = rq_cache_config_default();
    cfg.n_layers = 2, cfg.n_kv_heads = 1, cfg.head_dim = 32, cfg.type_k = "q4_0", cfg.type_v = "turbo2";
    cfg.page_tokens = 8, cfg.quant.seed = 5;
    rq_cache *b = NULL;
    CHECK_OK(rq_cache_init(&b, &cfg));
    if (b) {
        CHECK_OK(rq_cache_set_window(b, 0, 20));
        CHECK_OK(rq_cache_seq_load_mem(b, 2, buf, n));
        CHECK(rq_cache_pages_in_use(b) == rq_cache_pages_in_use(a), "pages: %zu loaded, %zu saved",
              rq_cache_pages_in_use(b), rq_cache_pages_in_use(a));
        CHECK(same_attention(a, 0, b, 2, 2, 1, 32), "window round trip");
        rq_cache_free(b);
    }
    /* a budget too small: refused whole */
    cfg.max_bytes = 3 * rq_cache_page_bytes(a);
    b = NULL;
    CHECK_OK(rq_cache_init(&b, &cfg));
    if (b) {
        CHECK_OK(rq_cache_set_window(b, 0, 20));
        CHECK(rq_cache_seq_load_mem(b, 2, buf, n) == RQ_ERR_NOMEM, "over the budget");
        CHECK(rq_cache_seq_ids(b, NULL, 0) == 1 && rq_cache_pages_in_use(b) == 0, "nothing loaded");
        rq_cache_free(b);
    }
    free(buf);
    rq_cache_free(a);
}

/* every prefix and every single corrupted byte of a saved file is refused,
 * and leaves the cache as it was */
static void test_file_truncate_corrupt(void) {
    rq_cache *a = io_cache("turbo3p", "f16", 2, 1, 32, 8, 5), *b = io_cache("turbo3p", "f16", 2, 1, 32, 8, 5);
    if (!a || !b) {
        rq_cache_free(a), rq_cache_free(b);
        return;
    }
    populate(a, 2, 1, 32, 11, 6, 2);
    char dir[] = "/tmp/rq_seqio_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[64];
    snprintf(path, sizeof path, "%s/cache.rqs", dir);
    CHECK_OK(rq_cache_seq_save(a, RQ_SEQ_ALL, path));
    CHECK_OK(rq_cache_seq_save(a, RQ_SEQ_ALL, path)); /* over an existing file */
    int files = 0;
    DIR *dd = opendir(dir);
    for (struct dirent *e; dd && (e = readdir(dd));) files += e->d_name[0] != '.';
    if (dd) closedir(dd);
    CHECK(files == 1, "%d files in the directory: the temporary was renamed", files);
    FILE *f = fopen(path, "rb");
    uint8_t *img = malloc(1 << 16);
    size_t n = f ? fread(img, 1, 1 << 16, f) : 0;
    if (f) fclose(f);
    size_t want;
    CHECK_OK(rq_cache_seq_save_mem(a, RQ_SEQ_ALL, NULL, 0, &want));
    CHECK(n == want && n < (1 << 16), "file of %zu bytes, expected %zu", n, want);
    CHECK_OK(rq_cache_seq_remove(b, 0));
    int bad_trunc = 0, bad_corrupt = 0, no_msg = 0;
    for (size_t len = 0; len < n; len++) {
        rq_last_error_clear();
        rq_status st = rq_cache_seq_load_mem(b, RQ_SEQ_ALL, img, len);
        bad_trunc += !(st == RQ_ERR_TRUNCATED || st == RQ_ERR_FORMAT) || rq_cache_seq_ids(b, NULL, 0) != 0 ||
                     rq_cache_pages_in_use(b) != 0;
        no_msg += !rq_last_error()[0];
    }
    for (size_t i = 0; i < n; i++) {
        img[i] ^= 0x55;
        rq_last_error_clear();
        rq_status st = rq_cache_seq_load_mem(b, RQ_SEQ_ALL, img, n);
        bad_corrupt += st == RQ_OK || rq_cache_seq_ids(b, NULL, 0) != 0 || rq_cache_pages_in_use(b) != 0;
        no_msg += !rq_last_error()[0];
        if (st == RQ_OK) TEST_NOTE("corrupting byte %zu went unnoticed", i);
        while (rq_cache_seq_ids(b, NULL, 0)) { /* keep going after a failure */
            int id;
            rq_cache_seq_ids(b, &id, 1);
            rq_cache_seq_remove(b, id);
        }
        img[i] ^= 0x55;
    }
    CHECK(bad_trunc == 0, "%d truncations accepted or changed the cache", bad_trunc);
    CHECK(bad_corrupt == 0, "%d corrupted bytes accepted or changed the cache", bad_corrupt);
    CHECK(no_msg == 0, "%d failures without a message", no_msg);
    rq_last_error_clear();
    CHECK(rq_cache_seq_load_mem(b, RQ_SEQ_ALL, img, n) == RQ_OK, "the intact bytes load: %s", rq_last_error());
    CHECK(same_attention(a, 1, b, 1, 2, 2, 32), "file round trip");
    CHECK_OK(rq_cache_seq_remove(b, 0));
    CHECK_OK(rq_cache_seq_remove(b, 1));
    CHECK_OK(rq_cache_seq_remove(b, 4));
    CHECK_OK(rq_cache_seq_load(b, RQ_SEQ_ALL, path));
    CHECK(rq_cache_seq_load(b, RQ_SEQ_ALL, "/nonexistent/x.rqs") == RQ_ERR_IO, "missing file");
    CHECK(rq_cache_seq_save(a, 0, "/nonexistent/x.rqs") == RQ_ERR_IO, "unwritable directory");
    remove(path);
    rmdir(dir);
    free(img);
    rq_cache_free(a), rq_cache_free(b);
}

const rq_test tests_seqio[] = {
    {"seqio_roundtrip_every_type", test_roundtrip_every_type},
    {"seqio_mismatches_refused", test_mismatches},
    {"seqio_window_and_budget", test_window_budget},
    {"seqio_file_every_truncation_and_corruption", test_file_truncate_corrupt},
    {NULL, NULL},
};
