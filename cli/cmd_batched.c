/*
 * cmd_batched.c — `rotorquant batched`: the model decoding many sequences at
 * once on one paged multi-sequence cache (issue 13, item 4).
 *
 * For each cache type, context ctx and sequence count B: one prompt of ctx
 * tokens is prefilled once into sequence 0 and given to B sequences — by
 * fork (default: every sequence shares the prompt's pages, as a server
 * with one shared system prompt; the attention then reads the same pages B
 * times, which the CPU's caches may hold) or, with --distinct, as B
 * separate copies of the pages (loaded from the prompt's saved bytes, as B
 * different conversations of that length: B times the memory traffic).
 * Then `--steps` decode steps of all B sequences at once
 * (rqm_session_decode: one token per sequence per step, the B rows through
 * every matmul together, attention through rq_cache_attention_batch) are
 * timed one by one; the median step gives the aggregate (B / step) and the
 * per-sequence (1 / step) decode speed.
 *
 * Capacity: per type and ctx, the largest number of ctx-token sequences a
 * page pool of --mem-budget bytes holds, from the library's page
 * accounting (⌊budget / rq_cache_page_bytes⌋ pages, n_layers·⌈ctx /
 * page_tokens⌉ pages per sequence) and checked by allocation: a cache with
 * that budget takes copies of one saved ctx-token sequence until
 * RQ_ERR_NOMEM. Every layer counts at full context: a model's sliding-window
 * layers (Gemma 3's local ones) would hold fewer pages. A layer's pages
 * hold its own types (per-layer types: each layer's page bytes come from a
 * one-layer cache of its types; the sequence's bytes are their sum).
 *
 * --kv-bits B,..: each budget one more configuration next to the types,
 * taking turns with them step by step: per-layer K/V types within B
 * bits/value (cli/budget.h: costs measured on the model's own text, then
 * rq_kv_alloc), planned for the sessions' context (the largest --ctx +
 * --steps), keys centred and norms corrected as `generate` and
 * `perplexity` do by default (the type configurations stay plain).
 *
 * Everything here is parsing, calling and printing; the forward pass is
 * model/llama.c, the cache src/kvcache.c.
 */
#include "cli.h"
#include "budget.h"

#include <errno.h>
#include <math.h>
#include <time.h>

#include "../model/llama.h"
#include "../model/sample.h"
#include "../model/tokenizer.h"

#define MAX_LIST 8
#define MAX_TYPES 16
#define MAX_BUDGETS 8
#define MAX_LANES (MAX_TYPES + MAX_BUDGETS)

typedef struct {
    const char *model, *ctk, *ctv;
    const char *types[MAX_TYPES]; /* K = V type per run */
    int n_types;
    long seqs[MAX_LIST], ctx[MAX_LIST];
    int n_seqs, n_ctx;
    long steps, threads;
    size_t budget;
    unsigned long long seed;
    int json, distinct, no_alloc_check;
    double kv_bits[MAX_BUDGETS]; /* --kv-bits B,..: one configuration per budget */
    int n_kv_bits, kv_tcq;       /* --kv-family tcq                            */
    int int8_scores;             /* --int8-scores: int8 key scores (rq_cache_config) */
} bopts;

/* One configuration of the run: K/V types, or a budget's per-layer types. */
typedef struct {
    const char *tk, *tv;      /* the types; a budget's: "turbo3" (every layer named) */
    const char **lk, **lv;    /* a budget's per-layer types, or NULL         */
    double budget;            /* a budget: bits/value asked                   */
    int centre, norm;         /* key centring, norm correction (budgets: on)  */
    char name_k[32], name_v[32]; /* printed: the types, or "kv-bits B" / "per layer" */
} lane_cfg;

static const char CMD[] = "batched";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* "1,8,32" into out (at most MAX_LIST items in lo..hi); 0 or 2 after a usage line. */
static int parse_list(const char *opt, char *v, long lo, long hi, long *out, int *n) {
    char whole[256];
    snprintf(whole, sizeof whole, "%s", v);
    *n = 0;
    for (char *p = strtok(v, ","); p; p = strtok(NULL, ","))
        if (*n >= MAX_LIST || parse_long(p, lo, hi, &out[(*n)++]))
            return cli_usage(CMD, "%s: bad item '%s' in '%s' (at most %d of %ld .. %ld)", opt, p, whole, MAX_LIST, lo,
                             hi);
    if (!*n) return cli_usage(CMD, "%s: empty list", opt);
    return 0;
}

/* "1GiB", "512MiB", "64M", "1000000": bytes; 0 on a bad value. */
static size_t parse_size(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0)) return 0;
    static const struct {
        const char *suffix;
        double mul;
    } U[] = {{"", 1},       {"B", 1},        {"K", 1024.0},         {"KiB", 1024.0}, {"M", 1048576.0},
             {"MiB", 1048576.0}, {"G", 1073741824.0}, {"GiB", 1073741824.0}, {"KB", 1e3}, {"MB", 1e6},
             {"GB", 1e9}};
    for (size_t i = 0; i < sizeof U / sizeof U[0]; i++)
        if (!strcmp(end, U[i].suffix)) {
            double b = v * U[i].mul;
            return b >= 1 && b < 1e15 ? (size_t)b : 0;
        }
    return 0;
}

static int parse(int argc, char **argv, bopts *o) {
    memset(o, 0, sizeof *o);
    o->seqs[0] = 1, o->seqs[1] = 8, o->seqs[2] = 32, o->n_seqs = 3;
    o->ctx[0] = 512, o->ctx[1] = 4096, o->n_ctx = 2;
    o->steps = 8, o->threads = 2, o->seed = 42;
    o->budget = (size_t)1 << 30;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const int has_value = strcmp(a, "--json") && strcmp(a, "--distinct") && strcmp(a, "--no-alloc-check") &&
                              strcmp(a, "--int8-scores");
        if (has_value && i + 1 >= argc) return cli_usage(CMD, "option %s needs a value", a);
        char *v = has_value ? argv[++i] : NULL;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--int8-scores")) o->int8_scores = 1;
        else if (!strcmp(a, "-ctk") || !strcmp(a, "--cache-type-k") || !strcmp(a, "-ctv") ||
                 !strcmp(a, "--cache-type-v")) {
            if (!rq_type_find(v)) return cli_usage(CMD, "%s: unknown cache type '%s' (`rotorquant types`)", a, v);
            *(!strcmp(a, "-ctk") || !strcmp(a, "--cache-type-k") ? &o->ctk : &o->ctv) = v;
        } else if (!strcmp(a, "--types")) {
            char whole[256];
            snprintf(whole, sizeof whole, "%s", v);
            for (char *p = strtok(v, ","); p; p = strtok(NULL, ",")) {
                if (o->n_types >= MAX_TYPES) return cli_usage(CMD, "--types: more than %d types", MAX_TYPES);
                if (!rq_type_find(p)) return cli_usage(CMD, "--types: unknown cache type '%s' in '%s'", p, whole);
                o->types[o->n_types++] = p;
            }
        } else if (!strcmp(a, "--sequences")) {
            if (parse_list(a, v, 1, 4096, o->seqs, &o->n_seqs)) return 2;
        } else if (!strcmp(a, "--ctx")) {
            if (parse_list(a, v, 1, 1 << 20, o->ctx, &o->n_ctx)) return 2;
        } else if (!strcmp(a, "--steps")) {
            if (parse_long(v, 1, 1 << 16, &o->steps)) return cli_usage(CMD, "bad value for --steps: '%s' (1 .. 65536)", v);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (parse_long(v, 1, 256, &o->threads)) return cli_usage(CMD, "bad value for %s: '%s' (1 .. 256)", a, v);
        } else if (!strcmp(a, "--mem-budget")) {
            if (!(o->budget = parse_size(v)))
                return cli_usage(CMD, "bad value for --mem-budget: '%s' (bytes, or with K/KiB/M/MiB/G/GiB/KB/MB/GB)", v);
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            o->seed = strtoull(v, &end, 0);
            if (errno || *end || end == v || v[0] == '-')
                return cli_usage(CMD, "bad value for --seed: '%s' (an unsigned 64-bit integer)", v);
        } else if (!strcmp(a, "--kv-bits")) {
            char whole[256];
            snprintf(whole, sizeof whole, "%s", v);
            for (char *p = strtok(v, ","); p; p = strtok(NULL, ",")) {
                char *end;
                const double b = strtod(p, &end);
                if (o->n_kv_bits >= MAX_BUDGETS || *end || end == p || !(b >= 1) || b > 32)
                    return cli_usage(CMD, "--kv-bits: bad budget '%s' in '%s' (at most %d of 1 .. 32 bits/value)", p,
                                     whole, MAX_BUDGETS);
                o->kv_bits[o->n_kv_bits++] = b;
            }
            if (!o->n_kv_bits) return cli_usage(CMD, "--kv-bits: no budget in '%s'", whole);
        } else if (!strcmp(a, "--kv-family")) {
            if (strcmp(v, "tcq") && strcmp(v, "turbo"))
                return cli_usage(CMD, "bad value for --kv-family: '%s' (expected turbo or tcq)", v);
            o->kv_tcq = !strcmp(v, "tcq");
        } else if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--distinct")) o->distinct = 1;
        else if (!strcmp(a, "--no-alloc-check")) o->no_alloc_check = 1;
        else return cli_usage(CMD, "unknown option '%s'", a);
    }
    if (o->n_types && (o->ctk || o->ctv)) return cli_usage(CMD, "give either --types or -ctk/-ctv");
    return 0;
}

/* The prompt: the evaluation text's first tokens (as `perplexity` reads
 * it), or, without the text, deterministic pseudo-random ids. */
static int32_t *prompt_ids(const rqm_tokenizer *tok, size_t n_vocab, size_t n, uint64_t seed, int *from_text) {
    int32_t *ids = malloc(n * sizeof *ids);
    if (!ids) return NULL;
    *from_text = 0;
    char path[4096];
    FILE *f = fopen(rqm_default_path(RQM_PATH_TEXT, path, sizeof path), "rb");
    if (f) {
        size_t cap = n * 8 + 4096; /* bytes: well over n tokens of English */
        char *text = malloc(cap);
        size_t len = text ? fread(text, 1, cap, f) : 0, got = 0;
        int32_t *all = text ? malloc((len + 16) * sizeof *all) : NULL;
        if (all && !rqm_tokenize(tok, text, len, 0, all, len + 16, &got) && got >= n) {
            memcpy(ids, all, n * sizeof *ids);
            *from_text = 1;
        }
        free(all), free(text);
        fclose(f);
    }
    if (!*from_text) {
        rq_rng rng;
        rq_rng_seed(&rng, seed);
        for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(rq_rng_next(&rng) % n_vocab);
    }
    return ids;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The bytes of one page of every layer of c (cfg: its configuration):
 * n_layers pages of rq_cache_page_bytes, or with per-layer types the sum
 * of each layer's, from a one-layer cache of its types. */
static rq_status layer_pages_bytes(const rq_cache *c, const rq_cache_config *cfg, size_t *out) {
    *out = (size_t)cfg->n_layers * rq_cache_page_bytes(c);
    if (!cfg->layer_type_k && !cfg->layer_type_v) return RQ_OK;
    rq_cache_config c1 = *cfg;
    c1.n_layers = 1, c1.max_bytes = 0, c1.layer_type_k = c1.layer_type_v = NULL;
    rq_status st = RQ_OK;
    *out = 0;
    for (int l = 0; l < cfg->n_layers && !st; l++) {
        rq_cache *one = NULL;
        if (cfg->layer_type_k && cfg->layer_type_k[l]) c1.type_k = cfg->layer_type_k[l];
        if (cfg->layer_type_v && cfg->layer_type_v[l]) c1.type_v = cfg->layer_type_v[l];
        if (!(st = rq_cache_init(&one, &c1))) *out += rq_cache_page_bytes(one);
        rq_cache_free(one);
        c1.type_k = cfg->type_k, c1.type_v = cfg->type_v;
    }
    return st;
}

/* Sequences of ctx tokens that a pool of `budget` bytes holds: by the
 * page arithmetic (*by_pages: each layer ⌈ctx / page_tokens⌉ pages of its
 * own types) and, unless skipped, by allocating copies of one saved
 * ctx-token sequence until the pool says RQ_ERR_NOMEM (*by_alloc; −1 if
 * not checked). *page_bytes: a layer's page, the mean over layers;
 * *bits: bits/value of the cache at ctx positions (rq_cache_bits_per_value). */
static rq_status capacity(const rqm_llama_hparams *hp, const lane_cfg *lc, uint64_t seed, long ctx, size_t budget,
                          int check, long *by_pages, long *by_alloc, size_t *page_bytes, double *bits) {
    rq_cache_config cc = rq_cache_config_default();
    cc.n_layers = hp->n_layers, cc.n_kv_heads = hp->n_kv_heads, cc.head_dim = hp->head_dim;
    cc.type_k = lc->tk, cc.type_v = lc->tv;
    cc.layer_type_k = lc->lk, cc.layer_type_v = lc->lv;
    cc.quant.seed = seed;
    cc.quant.norm_correct = lc->norm;
    cc.centre_keys = lc->centre;
    cc.max_bytes = budget;
    rq_cache *c = NULL;
    rq_status st = rq_cache_init(&c, &cc);
    if (st) return st;
    const size_t pt = cc.page_tokens ? (size_t)cc.page_tokens : 256; /* rq_cache_config: 0 = 256 */
    size_t layer_pages = 0;
    if ((st = layer_pages_bytes(c, &cc, &layer_pages))) {
        rq_cache_free(c);
        return st;
    }
    *page_bytes = (layer_pages + (size_t)hp->n_layers / 2) / (size_t)hp->n_layers;
    *bits = rq_cache_bits_per_value(c, (size_t)ctx);
    *by_pages = (long)(budget / (layer_pages * (((size_t)ctx + pt - 1) / pt)));
    *by_alloc = -1;
    if (!check || !*by_pages) {
        rq_cache_free(c);
        return RQ_OK;
    }
    /* one ctx-token sequence of Gaussian keys and values, saved, then loaded
     * as new sequences until the pool is full */
    const size_t row = (size_t)hp->n_kv_heads * (size_t)hp->head_dim, chunk = 256;
    float *kv = malloc(chunk * row * sizeof *kv);
    rq_rng rng;
    rq_rng_seed(&rng, seed);
    for (size_t i = 0; kv && i < chunk * row; i++) kv[i] = (float)rq_rng_gauss(&rng);
    if (!kv) st = RQ_ERR_NOMEM;
    rq_cache *one = NULL;
    cc.max_bytes = 0;
    if (!st) st = rq_cache_init(&one, &cc);
    for (int l = 0; l < hp->n_layers && !st; l++)
        for (size_t t = 0; t < (size_t)ctx && !st; t += chunk)
            st = rq_cache_append(one, l, kv, kv, (size_t)ctx - t < chunk ? (size_t)ctx - t : chunk);
    size_t nb = 0;
    void *bytes = NULL;
    if (!st) st = rq_cache_seq_save_mem(one, 0, NULL, 0, &nb);
    if (!st && !(bytes = malloc(nb))) st = RQ_ERR_NOMEM;
    if (!st) st = rq_cache_seq_save_mem(one, 0, bytes, nb, &nb);
    long n = 0;
    if (!st) {
        rq_status ls;
        while ((ls = rq_cache_seq_load_mem(c, (int)n + 1, bytes, nb)) == RQ_OK) n++;
        if (ls != RQ_ERR_NOMEM) st = ls;
        else rq_last_error_clear(); /* the expected end, not an error */
        *by_alloc = n;
    }
    free(bytes), free(kv);
    rq_cache_free(one);
    rq_cache_free(c);
    return st;
}

typedef struct {
    int li; /* the configuration (lane_cfg) */
    long B, ctx;
    double prefill_s, step_s, agg, per_seq, bits;
    size_t bytes_logical, bytes_alloc;
} result;

/* One configuration's session while a (ctx, B) point is measured. */
typedef struct {
    rqm_session *s;
    float *logits0; /* [n_vocab]: the prompt's last logits      */
    float *logits;  /* [B][n_vocab]                             */
    int32_t *tok;   /* [B] the next token of each sequence      */
    double *t;      /* [steps] step times                       */
    size_t layer_pages; /* the bytes of one page of every layer     */
} lane;

/* Sequences 1 .. B get the prompt of sequence 0 (which stays as it is):
 * forked, or loaded as copies of its saved bytes (--distinct). */
static rq_status fill(lane *ln, const bopts *o, long B, size_t n_vocab) {
    rq_cache *c = rqm_session_cache_mut(ln->s);
    rq_status st = RQ_OK;
    void *saved = NULL;
    size_t nb = 0;
    if (o->distinct) {
        st = rq_cache_seq_save_mem(c, 0, NULL, 0, &nb);
        if (!st && !(saved = malloc(nb))) st = RQ_ERR_NOMEM;
        if (!st) st = rq_cache_seq_save_mem(c, 0, saved, nb, &nb);
    }
    const int32_t first = rqm_argmax(ln->logits0, n_vocab);
    for (long b = 0; b < B && !st; b++) {
        ln->tok[b] = first;
        st = o->distinct ? rq_cache_seq_load_mem(c, (int)b + 1, saved, nb) : rq_cache_seq_fork(c, 0, (int)b + 1);
    }
    free(saved);
    return st;
}

/* One timed decode step of sequences 1 .. B; the next tokens greedy. */
static rq_status step(lane *ln, const int *ids, long B, size_t n_vocab, double *secs) {
    double t0 = now_s();
    rq_status st = rqm_session_decode(ln->s, ids, ln->tok, (size_t)B, ln->logits);
    *secs = now_s() - t0;
    for (long b = 0; b < B && !st; b++) ln->tok[b] = rqm_argmax(ln->logits + (size_t)b * n_vocab, n_vocab);
    return st;
}

static double median(double *t, size_t n) {
    qsort(t, n, sizeof *t, cmp_dbl);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

int cmd_batched(int argc, char **argv) {
    bopts o;
    if (parse(argc, argv, &o)) return 2;
    if (!o.n_types) {
        o.types[0] = o.ctk ? o.ctk : "f16";
        o.n_types = 1;
    }
    const char *tv_override = o.n_types == 1 && o.ctv ? o.ctv : NULL;
    /* the configurations: the types, then one per --kv-bits budget (filled
     * once the costs are measured) */
    lane_cfg cfgs[MAX_LANES];
    memset(cfgs, 0, sizeof cfgs);
    const int n_lanes = o.n_types + o.n_kv_bits;
    for (int i = 0; i < o.n_types; i++) {
        lane_cfg *lc = &cfgs[i];
        lc->tk = o.types[i], lc->tv = tv_override ? tv_override : o.types[i];
        snprintf(lc->name_k, sizeof lc->name_k, "%s", lc->tk), snprintf(lc->name_v, sizeof lc->name_v, "%s", lc->tv);
    }
    char err[256] = "", buf[4096];
    const char *path = o.model;
    if (!path || !strcmp(path, "smollm2")) path = rqm_default_path(RQM_PATH_MODEL, buf, sizeof buf);
    else if (!strcmp(path, "gemma3")) path = rqm_default_path(RQM_PATH_GEMMA3, buf, sizeof buf);
    rqm_gguf *g = NULL;
    rqm_llama *m = NULL;
    rqm_tokenizer *tok = NULL;
    rq_status st = rqm_gguf_open(&g, path, err, sizeof err);
    if (st) return cli_failf(CMD, err[0] ? RQ_OK : st, "%s: %s%s", path, err,
                             st == RQ_ERR_IO ? " (run `make model` to download SmolLM2-135M, or pass -m)" : "");
    if ((st = rqm_llama_load(&m, g, err, sizeof err)) || (st = rqm_tokenizer_from_gguf(&tok, g, err, sizeof err))) {
        rqm_llama_free(m);
        rqm_gguf_close(g);
        return cli_failf(CMD, err[0] ? RQ_OK : st, "%s: %s", path, err);
    }
    const rqm_llama_hparams *hp = rqm_llama_hparams_of(m);
    long max_ctx = 0, max_b = 0;
    for (int i = 0; i < o.n_ctx; i++) max_ctx = o.ctx[i] > max_ctx ? o.ctx[i] : max_ctx;
    for (int i = 0; i < o.n_seqs; i++) max_b = o.seqs[i] > max_b ? o.seqs[i] : max_b;
    int rc = 1, from_text = 0;
    int32_t *prompt = NULL;
    cli_budget bud;
    memset(&bud, 0, sizeof bud);
    result *res = calloc((size_t)n_lanes * (size_t)o.n_ctx * (size_t)o.n_seqs, sizeof *res);
    long *cap_pages = calloc((size_t)n_lanes * (size_t)o.n_ctx, sizeof *cap_pages);
    long *cap_alloc = calloc((size_t)n_lanes * (size_t)o.n_ctx, sizeof *cap_alloc);
    double *cap_bits = calloc((size_t)n_lanes * (size_t)o.n_ctx, sizeof *cap_bits);
    size_t n_res = 0;
    if (max_ctx + o.steps > hp->n_ctx_train) {
        cli_failf(CMD, RQ_OK, "--ctx %ld + --steps %ld exceeds the model's context length %d", max_ctx, o.steps,
                  hp->n_ctx_train);
        goto done;
    }
    if (!res || !cap_pages || !cap_alloc || !cap_bits ||
        !(prompt = prompt_ids(tok, (size_t)hp->n_vocab, (size_t)max_ctx, o.seed, &from_text))) {
        cli_fail(CMD, RQ_ERR_NOMEM, "buffers");
        goto done;
    }
    const long plan_ctx = max_ctx + o.steps; /* the positions each session holds */
    if (o.n_kv_bits) {
        /* keys centred and norms corrected, as the model commands' defaults */
        const cli_budget_opts bo = {o.kv_tcq, 1, 1, 0, o.seed, (int)o.threads, 256};
        if ((st = cli_budget_measure(&bud, m, tok, &bo))) goto done;
        for (int i = 0; i < o.n_kv_bits && !st; i++) {
            cli_budget_plan p;
            if ((st = cli_budget_plan_row(&bud, i, o.kv_bits[i], plan_ctx, "the largest --ctx + --steps", &p))) break;
            lane_cfg *lc = &cfgs[o.n_types + i];
            lc->tk = lc->tv = "turbo3"; /* every layer names its own */
            lc->lk = p.lk, lc->lv = p.lv, lc->budget = o.kv_bits[i];
            lc->centre = lc->norm = 1;
            snprintf(lc->name_k, sizeof lc->name_k, "kv-bits %.2f", o.kv_bits[i]);
            snprintf(lc->name_v, sizeof lc->name_v, "per layer");
        }
        if (st) goto done;
    }
    if (!o.json) {
        printf("# rotorquant batched: %s, %d layers, %d KV heads x %d, %ld threads, SIMD %s\n", path, hp->n_layers,
               hp->n_kv_heads, hp->head_dim, o.threads, rq_simd_name());
        printf("# each ctx: one %s prompt prefilled once into sequence 0, then %s; %ld decode steps of all B\n"
               "# sequences timed one by one, the configurations taking turns step by step (so each sees the same\n"
               "# machine load); median step; aggregate = B / step, per sequence = 1 / step\n",
               from_text ? "evaluation-text" : "pseudo-random-token",
               o.distinct ? "copied into B sequences of their own (distinct pages: B x the memory traffic)"
                          : "forked into B sequences (shared pages, as a server with one shared system prompt;\n"
                            "# attention reads the same pages for every sequence - --distinct gives each its own copy)",
               o.steps);
        if (o.n_kv_bits)
            printf("# kv-bits B: per-layer %s types within B bits/value planned for %ld positions, keys centred and\n"
                   "# norms corrected (the types' rows: neither); the per-layer choice below the tables\n",
                   cli_budget_family(o.kv_tcq), plan_ctx);
        printf("\n| K / V | B | ctx | prefill s | step ms | aggregate tok/s | per-seq tok/s | cache B x ctx | pages in use |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        fflush(stdout);
    }
    /* every configuration's session at once: their steps take turns, so
     * each one's median sees the same machine load (this matters on a
     * shared machine; the ratios are the result) */
    lane *lanes = calloc((size_t)n_lanes, sizeof *lanes);
    int *ids = malloc((size_t)max_b * sizeof *ids);
    if (!lanes || !ids) st = RQ_ERR_NOMEM;
    for (long b = 0; ids && b < max_b; b++) ids[b] = (int)b + 1; /* sequence 0 stays the pristine prompt */
    for (int ti = 0; ti < n_lanes && !st; ti++) {
        const lane_cfg *lc = &cfgs[ti];
        rqm_session_config sc;
        memset(&sc, 0, sizeof sc);
        sc.type_k = lc->tk, sc.type_v = lc->tv;
        sc.layer_type_k = lc->lk, sc.layer_type_v = lc->lv;
        sc.centre_keys = lc->centre, sc.norm_correct = lc->norm;
        sc.seed = o.seed;
        sc.n_ctx = (int)plan_ctx;
        sc.n_batch = (int)(max_b > 256 ? max_b : 256);
        sc.n_threads = (int)o.threads;
        sc.int8_scores = o.int8_scores;
        lane *ln = &lanes[ti];
        if ((st = rqm_session_init(&ln->s, m, &sc))) break;
        /* the cache's configuration, for its page bytes */
        rq_cache_config cc = rq_cache_config_default();
        cc.n_layers = hp->n_layers, cc.n_kv_heads = hp->n_kv_heads, cc.head_dim = hp->head_dim;
        cc.type_k = lc->tk, cc.type_v = lc->tv, cc.layer_type_k = lc->lk, cc.layer_type_v = lc->lv;
        cc.centre_keys = lc->centre; /* k8 keys need it */
        if ((st = layer_pages_bytes(rqm_session_cache(ln->s), &cc, &ln->layer_pages))) break;
        ln->logits0 = malloc((size_t)hp->n_vocab * sizeof(float));
        ln->logits = malloc((size_t)max_b * (size_t)hp->n_vocab * sizeof(float));
        ln->tok = malloc((size_t)max_b * sizeof *ln->tok);
        ln->t = malloc((size_t)o.steps * sizeof *ln->t);
        if (!ln->logits0 || !ln->logits || !ln->tok || !ln->t) st = RQ_ERR_NOMEM;
    }
    for (int ci = 0; ci < o.n_ctx && !st; ci++) {
        double prefill[MAX_LANES];
        for (int ti = 0; ti < n_lanes && !st; ti++) {
            rqm_session_reset(lanes[ti].s);
            double t0 = now_s();
            st = rqm_session_eval(lanes[ti].s, prompt, (size_t)o.ctx[ci], 0, lanes[ti].logits0);
            prefill[ti] = now_s() - t0;
        }
        for (int bi = 0; bi < o.n_seqs && !st; bi++) {
            const long B = o.seqs[bi];
            for (int ti = 0; ti < n_lanes && !st; ti++) st = fill(&lanes[ti], &o, B, (size_t)hp->n_vocab);
            for (long k = 0; k < o.steps && !st; k++)
                for (int ti = 0; ti < n_lanes && !st; ti++)
                    st = step(&lanes[ti], ids, B, (size_t)hp->n_vocab, &lanes[ti].t[k]);
            for (int ti = 0; ti < n_lanes && !st; ti++) {
                const rq_cache *c = rqm_session_cache(lanes[ti].s);
                result *r = &res[n_res++];
                *r = (result){.li = ti, .B = B, .ctx = o.ctx[ci], .prefill_s = prefill[ti]};
                r->step_s = median(lanes[ti].t, (size_t)o.steps);
                r->agg = (double)B / r->step_s;
                r->per_seq = 1.0 / r->step_s;
                r->bits = rq_cache_bits_per_value(c, (size_t)o.ctx[ci]);
                r->bytes_logical = (size_t)B * (size_t)o.ctx[ci] * rq_cache_bytes_per_token(c);
                /* the pool's pages in use: the prompt's (shared by the forks,
                 * or B + 1 copies) and the pages each sequence took since;
                 * every layer holds as many (the same tokens), so with
                 * per-layer types each n_layers of them cost one of each layer's */
                r->bytes_alloc = rq_cache_pages_in_use(c) * lanes[ti].layer_pages / (size_t)hp->n_layers;
                if (!o.json)
                    printf("| %s / %s | %ld | %ld | %.2f | %.1f | %.1f | %.2f | %.1f MiB | %.1f MiB |\n",
                           cfgs[ti].name_k, cfgs[ti].name_v, r->B, r->ctx, r->prefill_s, 1e3 * r->step_s, r->agg,
                           r->per_seq, (double)r->bytes_logical / 1048576.0, (double)r->bytes_alloc / 1048576.0);
            }
            fflush(stdout);
            for (int ti = 0; ti < n_lanes; ti++)
                for (long b = 0; b < B; b++) (void)rq_cache_seq_remove(rqm_session_cache_mut(lanes[ti].s), (int)b + 1);
        }
    }
    for (int ti = 0; lanes && ti < n_lanes; ti++) {
        rqm_session_free(lanes[ti].s);
        free(lanes[ti].logits0), free(lanes[ti].logits), free(lanes[ti].tok), free(lanes[ti].t);
    }
    free(lanes), free(ids);
    if (st) goto done;
    if (!o.json)
        printf("\n# capacity: ctx-token sequences in a page pool of %.0f MiB (pages: budget / the bytes of a sequence's "
               "pages,\n# each layer's of its own types; alloc: copies of a saved sequence loaded until RQ_ERR_NOMEM; "
               "page bytes: per layer, the mean)\n\n"
               "| K / V | ctx | bits/value | page bytes | by pages | by allocation | vs f16 |\n"
               "|---|---:|---:|---:|---:|---:|---:|\n",
               (double)o.budget / 1048576.0);
    long f16_cap[MAX_LIST] = {0};
    const lane_cfg f16 = {.tk = "f16", .tv = "f16"};
    for (int ci = 0; ci < o.n_ctx; ci++) { /* the f16 reference row, always computed */
        size_t pb;
        long a;
        double bits;
        if ((st = capacity(hp, &f16, o.seed, o.ctx[ci], o.budget, 0, &f16_cap[ci], &a, &pb, &bits))) goto done;
    }
    for (int ti = 0; ti < n_lanes; ti++) {
        for (int ci = 0; ci < o.n_ctx; ci++) {
            size_t pb = 0;
            const size_t k = (size_t)ti * (size_t)o.n_ctx + (size_t)ci;
            if ((st = capacity(hp, &cfgs[ti], o.seed, o.ctx[ci], o.budget, !o.no_alloc_check, &cap_pages[k],
                               &cap_alloc[k], &pb, &cap_bits[k])))
                goto done;
            char alloc[32], ratio[32];
            if (!o.json) {
                printf("| %s / %s | %ld | %.4f | %zu | %ld | %s | %s |\n", cfgs[ti].name_k, cfgs[ti].name_v, o.ctx[ci],
                       cap_bits[k], pb, cap_pages[k],
                       cap_alloc[k] < 0 ? "-" : (snprintf(alloc, sizeof alloc, "%ld", cap_alloc[k]), alloc),
                       cli_num(ratio, sizeof ratio, "%.2fx",
                               f16_cap[ci] ? (double)cap_pages[k] / (double)f16_cap[ci] : NAN));
                fflush(stdout);
            }
        }
    }
    /* a budget's per-layer choice: each layer's bit width, K then V */
    char *dk = malloc(2 * ((size_t)hp->n_layers + 1)), *dv = dk ? dk + hp->n_layers + 1 : NULL;
    if (!dk) {
        st = RQ_ERR_NOMEM;
        goto done;
    }
    for (int ti = o.n_types; !o.json && ti < n_lanes; ti++) {
        cli_budget_digits(cfgs[ti].lk, hp->n_layers, dk), cli_budget_digits(cfgs[ti].lv, hp->n_layers, dv);
        printf("%skv-bits %.2f, %s bits of layers 0..%d: K %s / V %s\n", ti == o.n_types ? "\n" : "",
               cfgs[ti].budget, o.kv_tcq ? "tcq (1: turbo1)" : "turbo", hp->n_layers - 1, dk, dv);
    }
    if (o.json) {
        printf("{\"model\": \"%s\", \"threads\": %ld, \"simd\": \"%s\", \"steps\": %ld, \"fill\": \"%s\", "
               "\"prompt\": \"%s\", \"mem_budget\": %zu,\n \"runs\": [",
               path, o.threads, rq_simd_name(), o.steps, o.distinct ? "distinct" : "fork", from_text ? "text" : "random",
               o.budget);
        for (size_t i = 0; i < n_res; i++) {
            const result *r = &res[i];
            const lane_cfg *lc = &cfgs[r->li];
            printf("%s\n  {\"type_k\": \"%s\", \"type_v\": \"%s\", \"sequences\": %ld, \"ctx\": %ld, \"prefill_s\": %.4f, "
                   "\"step_s\": %.6f, \"aggregate_tok_s\": %.3f, \"per_seq_tok_s\": %.4f, \"cache_bytes\": %zu, "
                   "\"pages_bytes\": %zu, \"bits_per_value\": %.4f, \"centre_keys\": %s, \"norm_correct\": %s",
                   i ? "," : "", lc->name_k, lc->name_v, r->B, r->ctx, r->prefill_s, r->step_s, r->agg, r->per_seq,
                   r->bytes_logical, r->bytes_alloc, r->bits, lc->centre ? "true" : "false",
                   lc->norm ? "true" : "false");
            if (lc->lk) {
                cli_budget_digits(lc->lk, hp->n_layers, dk), cli_budget_digits(lc->lv, hp->n_layers, dv);
                printf(", \"kv_bits\": %.4f, \"kv_family\": \"%s\", \"kv_plan_ctx\": %ld, \"layer_bits_k\": \"%s\", "
                       "\"layer_bits_v\": \"%s\"",
                       lc->budget, cli_budget_family(o.kv_tcq), plan_ctx, dk, dv);
            }
            printf("}");
        }
        printf("],\n \"capacity\": [");
        for (int ti = 0; ti < n_lanes; ti++)
            for (int ci = 0; ci < o.n_ctx; ci++) {
                const size_t k = (size_t)ti * (size_t)o.n_ctx + (size_t)ci;
                printf("%s\n  {\"type_k\": \"%s\", \"type_v\": \"%s\", \"ctx\": %ld, \"bits_per_value\": %.4f, ",
                       k ? "," : "", cfgs[ti].name_k, cfgs[ti].name_v, o.ctx[ci], cap_bits[k]);
                if (cfgs[ti].lk) printf("\"kv_bits\": %.4f, ", cfgs[ti].budget);
                printf("\"by_pages\": %ld, \"by_alloc\": %ld, \"f16_by_pages\": %ld}", cap_pages[k], cap_alloc[k],
                       f16_cap[ci]);
            }
        printf("]}\n");
    }
    free(dk);
    rc = 0;
done:
    if (st && rc) cli_fail(CMD, st, rq_last_error()[0] ? rq_last_error() : "running the model");
    cli_budget_free(&bud);
    free(res), free(cap_pages), free(cap_alloc), free(cap_bits), free(prompt);
    rqm_matmul_shutdown();
    rqm_tokenizer_free(tok);
    rqm_llama_free(m);
    rqm_gguf_close(g);
    return rc;
}
