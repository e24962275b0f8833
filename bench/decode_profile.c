/*
 * decode_profile.c — decode tokens/s of a real model with two or more KV
 * cache configurations side by side, and where the time of one decode step
 * goes (issue 15: turbo3 vs f16 on Gemma 3 270M at 2048 context; issue 14:
 * the bits budgets against f16).
 *
 * The configurations: every --types entry (K = V = that type), then every
 * --kv-bits budget: the per-layer K/V choice of `rotorquant generate /
 * perplexity --kv-bits B [--kv-family turbo|tcq]` (cli/budget.c: the costs
 * measured once on the model's own text, rq_kv_alloc's choice planned for
 * the positions the sessions hold, ctx + rounds·steps + 1), printed per
 * layer. Keys centred and norms corrected as the CLI's defaults
 * (--no-centre-keys, --no-norm-correct turn them off); --int8-scores gives
 * every configuration int8 key scores as the CLI's flag does, and
 * --int8-scores-also runs every configuration but f16/f32 twice, float and
 * int8 scores, in the same rounds.
 *
 * 1. Side by side: every configuration gets its own session, each prefilled
 *    with the same --ctx tokens of the text (BOS first when the model adds
 *    one). Then --rounds rounds; in each round every session in turn runs
 *    --steps greedy single-token forward passes (rqm_session_eval), each
 *    timed alone; round r starts at configuration r mod n, so no
 *    configuration always runs first. Interleaving the configurations round
 *    by round puts them under the same load on a shared machine; with
 *    --interleave step the rounds interleave step by step (step k of every
 *    configuration in turn, from configuration (r + k) mod n): pairs of
 *    steps tens of ms apart see the same load, but every step starts with
 *    the other sessions' caches in the CPU's caches. Reported:
 *    the median step over all rounds, the tokens/s it gives, × the first
 *    f16 configuration's tokens/s, the lowest and highest round median, and
 *    the lowest, median and highest of the per-round ratios to f16 (each
 *    round's f16 median over this configuration's: the spread the machine's
 *    load left in the comparison), and "paired × f16": the median over all
 *    steps k of f16's step k time over this configuration's (with
 *    --interleave step the two ran tens of ms apart: the most robust of
 *    these on a loaded machine).
 * 2. Profile of one step (unless --no-parts), at the same cache state, by
 *    timing its parts alone with the same kernels, interleaved the same way:
 *      weights   every 2-D blk.* tensor as one rqm_matmul of one row (the
 *                layers' Q/K/V/O and FFN projections);
 *      logits    the output projection (output.weight, else the tied
 *                token_embd.weight): one rqm_matmul of one row;
 *      attention rq_cache_attention of one query (all query heads) at every
 *                layer of the session's own cache (local layers read their
 *                window, as in the model);
 *      rest      the step's median minus the three (norms, RoPE, GELU, the
 *                cache append, the embedding row).
 *    Weights and logits do not depend on the cache type; they are timed
 *    once per round. The bytes each part reads per step are printed next to
 *    it (weights: the tensors' bytes; attention: the cache bytes read).
 *
 *   build: make build/bench/decode_profile
 *   run:   build/bench/decode_profile [-m gemma3|smollm2|PATH] [-f TEXT] [--ctx 2048]
 *            [--steps 16] [--rounds 5] [--threads 2] [--types f16,turbo3]
 *            [--kv-bits B[,B..]] [--kv-family turbo|tcq] [--int8-scores | --int8-scores-also]
 *            [--interleave round|step]
 *            [--no-centre-keys] [--no-norm-correct] [--no-parts]
 *
 * Prints markdown. Not a test: numbers depend on the machine and its load
 * (cat /proc/loadavg is printed before and after).
 */
#include "../cli/budget.h"
#include "../model/ggml.h"
#include "../model/llama.h"
#include "../model/sample.h"
#include "../model/tokenizer.h"
#include "internal.h"
#include "rotorquant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TYPES 16 /* configurations */
#define MAX_BITS 8   /* --kv-bits budgets */
#define MAX_MATS 512
#define TEXT_BYTES (64u << 10) /* enough text for 4096+ tokens */

/* One configuration: K = V = one type, or a budget's per-layer types. */
typedef struct {
    char label[64];
    const char *k, *v;     /* the session's types (a budget: the fallback)   */
    const char **lk, **lv; /* a budget's per-layer types, or NULL            */
    double bits;           /* a budget's planned bits/value (μ included), or 0 */
    int int8;              /* int8 key scores                                */
    int budget;            /* 1 + the --kv-bits index of a budget, else 0    */
} config;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void loadavg(const char *when) {
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f)) strcpy(buf, "?");
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = 0;
    printf("load average %s: %s\n", when, buf);
}

static int die(const char *what, rq_status st, const char *err) {
    fprintf(stderr, "decode_profile: %s: %s%s%s\n", what, rq_status_str(st), err && *err ? ": " : "", err ? err : "");
    return 1;
}

/* Blocks' bits per value of one layer's K and V (0 when a type is unknown). */
static double layer_bits(const char *k, const char *v, int d) {
    const rq_type_info *tk = rq_type_find(k), *tv = rq_type_find(v);
    if (!tk || !tv) return 0;
    return 8.0 * (double)(rq_type_bytes_per_vector(tk, d) + rq_type_bytes_per_vector(tv, d)) / (2.0 * d);
}

/* The configuration's blocks' bits per value, averaged over layers. */
static double config_bits(const config *c, int n_layers, int d) {
    double s = 0;
    for (int l = 0; l < n_layers; l++)
        s += layer_bits(c->lk && c->lk[l] ? c->lk[l] : c->k, c->lv && c->lv[l] ? c->lv[l] : c->v, d);
    return s / n_layers;
}

static int usage(const char *msg, const char *arg) {
    fprintf(stderr, "decode_profile: %s%s%s\n", msg, arg ? " " : "", arg ? arg : "");
    return 2;
}

int main(int argc, char **argv) {
    const char *model = "gemma3", *text = NULL, *types_arg = "f16,turbo3", *bits_arg = NULL;
    long ctx = 2048, steps = 16, rounds = 5, threads = 2;
    int tcq = 0, int8 = 0, int8_also = 0, centre = 1, norm_corr = 1, parts = 1, by_step = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* the flags */
        if (!strcmp(a, "--int8-scores")) { int8 = 1; continue; }
        if (!strcmp(a, "--int8-scores-also")) { int8_also = 1; continue; }
        if (!strcmp(a, "--no-centre-keys")) { centre = 0; continue; }
        if (!strcmp(a, "--no-norm-correct")) { norm_corr = 0; continue; }
        if (!strcmp(a, "--no-parts")) { parts = 0; continue; }
        /* the options with a value */
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) return usage("needs a value:", a);
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "-f")) text = v;
        else if (!strcmp(a, "--ctx")) ctx = atol(v);
        else if (!strcmp(a, "--steps")) steps = atol(v);
        else if (!strcmp(a, "--rounds")) rounds = atol(v);
        else if (!strcmp(a, "--threads")) threads = atol(v);
        else if (!strcmp(a, "--types")) types_arg = v;
        else if (!strcmp(a, "--kv-bits")) bits_arg = v;
        else if (!strcmp(a, "--interleave")) {
            if (strcmp(v, "step") && strcmp(v, "round")) return usage("--interleave is step or round, not", v);
            by_step = !strcmp(v, "step");
        }
        else if (!strcmp(a, "--kv-family")) {
            if (strcmp(v, "turbo") && strcmp(v, "tcq")) return usage("--kv-family is turbo or tcq, not", v);
            tcq = !strcmp(v, "tcq");
        } else return usage("unknown option", a);
    }
    if (ctx < 1 || ctx > 32768 || steps < 2 || steps > 1024 || rounds < 1 || rounds > 100 || threads < 1 ||
        threads > 256)
        return usage("--ctx 1..32768, --steps 2..1024, --rounds 1..100, --threads 1..256", NULL);
    if (int8 && int8_also) return usage("--int8-scores or --int8-scores-also, not both", NULL);
    char types_buf[256], bits_buf[256], *types[MAX_TYPES];
    int n_types = 0, n_bits = 0;
    double bits[MAX_BITS];
    snprintf(types_buf, sizeof types_buf, "%s", types_arg);
    for (char *p = strtok(types_buf, ","); p; p = strtok(NULL, ",")) {
        if (n_types == MAX_TYPES) return usage("too many --types", NULL);
        types[n_types++] = p;
    }
    if (bits_arg) {
        snprintf(bits_buf, sizeof bits_buf, "%s", bits_arg);
        for (char *p = strtok(bits_buf, ","); p; p = strtok(NULL, ",")) {
            char *e = NULL;
            const double b = strtod(p, &e);
            if (e == p || *e || !(b >= 1 && b <= 32)) return usage("--kv-bits: a budget of 1 .. 32 bits/value, not", p);
            if (n_bits == MAX_BITS) return usage("too many --kv-bits budgets", NULL);
            bits[n_bits++] = b;
        }
    }
    /* the configurations: the types, the budgets; with --int8-scores-also each compressed one twice */
    config cf[MAX_TYPES];
    int n_cf = 0;
    for (int i = 0; i < n_types + n_bits; i++)
        for (int j = 0; j < 1 + int8_also; j++) {
            const int exact = i < n_types && (!strcmp(types[i], "f16") || !strcmp(types[i], "f32"));
            if (j && exact) continue;
            if (n_cf == MAX_TYPES) return usage("too many configurations (16 at most)", NULL);
            config *c = &cf[n_cf++];
            memset(c, 0, sizeof *c);
            c->int8 = int8 || j;
            c->budget = i < n_types ? 0 : 1 + i - n_types;
            c->k = c->v = i < n_types ? types[i] : "turbo3";
            if (i < n_types) snprintf(c->label, sizeof c->label, "%s%s", types[i], c->int8 && !exact ? " int8" : "");
            else
                snprintf(c->label, sizeof c->label, "kv-bits %.2f %s%s", bits[i - n_types], tcq ? "tcq" : "turbo",
                         c->int8 ? " int8" : "");
        }

    /* ---- model, tokenizer, text ----------------------------------------- */
    char path[4096], tpath[4096], err[256] = "";
    if (!strcmp(model, "gemma3")) model = rqm_default_path(RQM_PATH_GEMMA3, path, sizeof path);
    else if (!strcmp(model, "smollm2")) model = rqm_default_path(RQM_PATH_MODEL, path, sizeof path);
    if (!text) text = rqm_default_path(RQM_PATH_TEXT, tpath, sizeof tpath);
    rqm_gguf *g = NULL;
    rqm_llama *m = NULL;
    rqm_tokenizer *tok = NULL;
    rq_status st = rqm_gguf_open(&g, model, err, sizeof err);
    if (st) return die(model, st, err);
    if ((st = rqm_llama_load(&m, g, err, sizeof err)) || (st = rqm_tokenizer_from_gguf(&tok, g, err, sizeof err)))
        return die(model, st, err);
    const rqm_llama_hparams *hp = rqm_llama_hparams_of(m);
    const size_t V = (size_t)hp->n_vocab;
    FILE *f = fopen(text, "rb");
    if (!f) return die(text, RQ_ERR_IO, "cannot open the text");
    char *buf = malloc(TEXT_BYTES + 1);
    size_t len = buf ? fread(buf, 1, TEXT_BYTES, f) : 0;
    fclose(f);
    if (!buf) return die("text", RQ_ERR_NOMEM, NULL);
    buf[len] = 0;
    int32_t *ids = malloc((len + 1) * sizeof *ids);
    size_t n_ids = 0;
    if (!ids || (st = rqm_tokenize(tok, buf, len, 0, ids, len + 1, &n_ids))) return die("tokenize", st, NULL);
    if (n_ids < (size_t)ctx) return die("text", RQ_ERR_RANGE, "fewer tokens than --ctx");
    const int32_t bos = rqm_tokenizer_seq_bos(tok);

    /* ---- the budgets' per-layer choices (cli/budget.c) ------------------ */
    const size_t n_steps = (size_t)(steps * rounds);
    const long n_pos = ctx + (long)n_steps + 1; /* the positions every session holds */
    cli_budget bud;
    memset(&bud, 0, sizeof bud);
    if (n_bits) {
        const cli_budget_opts bo = {tcq, centre, norm_corr, 0, 42, (int)threads, 256};
        if ((st = cli_budget_measure(&bud, m, tok, &bo))) return die("kv-bits: measuring the costs", st, rq_last_error());
        for (int i = 0; i < n_bits; i++) {
            cli_budget_plan pl;
            if ((st = cli_budget_plan_row(&bud, i, bits[i], cli_budget_ctx(n_pos), "the sessions' positions", &pl)))
                return die("kv-bits", st, rq_last_error());
            for (int c = 0; c < n_cf; c++)
                if (cf[c].budget == 1 + i) cf[c].lk = pl.lk, cf[c].lv = pl.lv, cf[c].bits = pl.bits;
        }
    }

    /* ---- sessions, prefilled ------------------------------------------- */
    rqm_session *s[MAX_TYPES] = {0};
    float *logits = malloc(V * sizeof *logits);
    int32_t next[MAX_TYPES];
    double *t_step = calloc((size_t)n_cf * n_steps, sizeof *t_step);
    double *t_round = calloc((size_t)n_cf * (size_t)rounds, sizeof *t_round);
    if (!logits || !t_step || !t_round) return die("alloc", RQ_ERR_NOMEM, NULL);
    printf("# decode_profile: %s, %d layers, head_dim %d, %d/%d heads, vocab %zu; context %ld, %ld rounds of "
           "%ld steps per configuration (interleaved by %s), %ld threads; keys %scentred, norms %scorrected%s\n\n",
           model, hp->n_layers, hp->head_dim, hp->n_heads, hp->n_kv_heads, V, ctx, rounds, steps,
           by_step ? "step" : "round", threads,
           centre ? "" : "not ", norm_corr ? "" : "not ",
           int8 ? "; int8 key scores" : int8_also ? "; every compressed configuration also with int8 key scores" : "");
    loadavg("at start");
    for (int t = 0; t < n_cf; t++) {
        rqm_session_config sc;
        memset(&sc, 0, sizeof sc);
        sc.type_k = cf[t].k, sc.type_v = cf[t].v;
        sc.layer_type_k = cf[t].lk, sc.layer_type_v = cf[t].lv;
        sc.seed = 42;
        sc.norm_correct = norm_corr;
        sc.centre_keys = centre && strcmp(cf[t].k, "f32"); /* as the CLI: the f32 reference stays as it is */
        sc.int8_scores = cf[t].int8;
        sc.n_ctx = (int)n_pos;
        sc.n_threads = (int)threads;
        if ((st = rqm_session_init(&s[t], m, &sc))) return die(cf[t].label, st, rq_last_error());
        const double t0 = now();
        if ((st = rqm_session_eval_seq(s[t], bos, ids, (size_t)ctx, 0, logits))) return die("prefill", st, NULL);
        fprintf(stderr, "decode_profile: %s prefill of %ld tokens: %.1f s\n", cf[t].label, ctx, now() - t0);
        next[t] = rqm_argmax(logits, V);
    }
    if (n_bits) {
        printf("\nThe budgets' choices (`--kv-bits B --kv-family %s`, planned for %ld positions; costs measured on %d "
               "tokens of the model's own text in %.0f s), bits of layers 0..%d:\n\n",
               cli_budget_family(tcq), cli_budget_ctx(n_pos), CLI_BUDGET_TOKENS, bud.seconds, hp->n_layers - 1);
        for (int t = 0; t < n_cf; t++) {
            if (!cf[t].lk || (int8_also && cf[t].int8)) continue;
            char dk[4097], dv[4097];
            const int L = hp->n_layers < 4096 ? hp->n_layers : 4096;
            cli_budget_digits(cf[t].lk, L, dk), cli_budget_digits(cf[t].lv, L, dv);
            printf("- %s: %.4f bits/value planned%s: K %s / V %s\n", cf[t].label, cf[t].bits,
                   centre ? " (μ and the sink included)" : "", dk, dv);
        }
    }

    /* ---- the parts of a step ------------------------------------------- */
    rqm_matrix mats[MAX_MATS], out_w;
    size_t n_mats = 0, w_bytes = 0, max_out = V, max_in = (size_t)hp->n_embd;
    const rqm_tensor *ot = rqm_gguf_tensor(g, "output.weight");
    if (!ot) ot = rqm_gguf_tensor(g, "token_embd.weight");
    if (!ot || (st = rqm_matrix_from_tensor(&out_w, ot, (size_t)hp->n_embd, V, err, sizeof err)))
        return die("output weights", st ? st : RQ_ERR_FORMAT, err);
    for (size_t i = 0; i < rqm_gguf_n_tensors(g) && n_mats < MAX_MATS; i++) {
        const rqm_tensor *t = rqm_gguf_tensor_at(g, i);
        if (t->n_dims != 2 || t->name.len < 4 || memcmp(t->name.ptr, "blk.", 4)) continue;
        if ((st = rqm_matrix_from_tensor(&mats[n_mats], t, t->ne[0], t->ne[1], err, sizeof err)))
            return die("a layer weight", st, err);
        w_bytes += t->n_bytes;
        if (t->ne[0] > max_in) max_in = t->ne[0];
        if (t->ne[1] > max_out) max_out = t->ne[1];
        n_mats++;
    }
    float *x = aligned_alloc(64, (max_in + 15) / 16 * 64), *y = malloc(max_out * sizeof *y);
    const size_t qn = (size_t)hp->n_heads * (size_t)hp->head_dim;
    float *q = malloc(qn * sizeof *q), *att = malloc(qn * sizeof *att);
    if (!x || !y || !q || !att) return die("alloc", RQ_ERR_NOMEM, NULL);
    rq_rng rng;
    rq_rng_seed(&rng, 7);
    for (size_t i = 0; i < max_in; i++) x[i] = (float)((double)(rq_rng_next(&rng) >> 11) * 0x1p-53 - 0.5);
    for (size_t i = 0; i < qn; i++) q[i] = (float)((double)(rq_rng_next(&rng) >> 11) * 0x1p-53 - 0.5);
    double *t_w = calloc(n_steps, sizeof *t_w), *t_o = calloc(n_steps, sizeof *t_o);
    double *t_a = calloc((size_t)n_cf * n_steps, sizeof *t_a);
    if (!t_w || !t_o || !t_a) return die("alloc", RQ_ERR_NOMEM, NULL);
    rq_attn_params ap = {.n_q_heads = hp->n_heads, .scale = 0};

    /* ---- rounds --------------------------------------------------------- */
    for (long r = 0; r < rounds; r++) {
        /* by_step: step k of every configuration in turn (from configuration
         * (r + k) mod n), else all steps of one, then the next (from r mod n) */
        for (long j = 0; j < (long)n_cf * steps; j++) {
            const long k = by_step ? j / n_cf : j % steps, i = by_step ? j % n_cf : j / steps;
            const int t = (int)((r + (by_step ? k : 0) + i) % n_cf);
            const double t0 = now();
            if ((st = rqm_session_eval(s[t], &next[t], 1, 0, logits))) return die("decode", st, NULL);
            t_step[(size_t)t * n_steps + (size_t)(r * steps + k)] = now() - t0;
            next[t] = rqm_argmax(logits, V);
        }
        for (int t = 0; t < n_cf; t++) {
            double tmp[1024];
            memcpy(tmp, t_step + (size_t)t * n_steps + (size_t)(r * steps), (size_t)steps * sizeof *tmp);
            t_round[(size_t)t * (size_t)rounds + (size_t)r] = median(tmp, (size_t)steps);
        }
        if (!parts) continue;
        for (long k = 0; k < steps; k++) {
            double t0 = now();
            for (size_t i = 0; i < n_mats; i++) rqm_matmul(&mats[i], x, 1, y, (int)threads);
            t_w[r * steps + k] = now() - t0;
            t0 = now();
            rqm_matmul(&out_w, x, 1, y, (int)threads);
            t_o[r * steps + k] = now() - t0;
        }
        for (int t = 0; t < n_cf; t++)
            for (long k = 0; k < steps; k++) {
                const rq_cache *c = rqm_session_cache(s[t]);
                const double t0 = now();
                for (int l = 0; l < hp->n_layers; l++)
                    if ((st = rq_cache_attention(c, l, q, 1, NULL, &ap, att))) return die("attention", st, rq_last_error());
                t_a[(size_t)t * n_steps + (size_t)(r * steps + k)] = now() - t0;
            }
    }
    loadavg("at end");

    /* ---- report ---------------------------------------------------------- */
    int ref = -1; /* the first f16 configuration: the × f16 columns' reference */
    for (int t = 0; t < n_cf && ref < 0; t++)
        if (!cf[t].lk && !strcmp(cf[t].k, "f16")) ref = t;
    printf("\n| configuration | bits/value (blocks) | bits/value (stored) | bytes/token | step ms (median of %zu) | tok/s | × f16 | round medians ms "
           "(min .. max) | per-round × f16 (min / median / max) | paired × f16 |\n"
           "|---|---:|---:|---:|---:|---:|---:|---|---|---:|\n",
           n_steps);
    double step_med[MAX_TYPES], att_med[MAX_TYPES], paired[MAX_TYPES];
    double *pr = malloc(n_steps * sizeof *pr);
    if (!pr) return die("alloc", RQ_ERR_NOMEM, NULL);
    for (int t = 0; t < n_cf; t++) { /* before the medians sort t_step: step k of f16 over step k of t */
        paired[t] = 0;
        if (ref < 0) continue;
        for (size_t k = 0; k < n_steps; k++) pr[k] = t_step[(size_t)ref * n_steps + k] / t_step[(size_t)t * n_steps + k];
        paired[t] = median(pr, n_steps);
    }
    free(pr);
    for (int t = 0; t < n_cf; t++) step_med[t] = median(t_step + (size_t)t * n_steps, n_steps);
    for (int t = 0; t < n_cf; t++) {
        const double *rt = t_round + (size_t)t * (size_t)rounds;
        double sorted[100], ratio[100], rmin = 0, rmax = 0, rmed = 0;
        memcpy(sorted, rt, (size_t)rounds * sizeof *sorted);
        qsort(sorted, (size_t)rounds, sizeof *sorted, cmp_d);
        if (ref >= 0) {
            for (long r = 0; r < rounds; r++) ratio[r] = t_round[(size_t)ref * (size_t)rounds + (size_t)r] / rt[r];
            rmed = median(ratio, (size_t)rounds), rmin = ratio[0], rmax = ratio[rounds - 1];
        }
        const rq_cache *ct = rqm_session_cache(s[t]);
        printf("| %s | %.3f | %.3f | %zu | %.2f | %.1f | ", cf[t].label, config_bits(&cf[t], hp->n_layers, hp->head_dim),
               rq_cache_bits_per_value(ct, (size_t)ctx), rq_cache_bytes_per_token(ct), 1e3 * step_med[t],
               1.0 / step_med[t]);
        if (ref >= 0) printf("%.3f | ", step_med[ref] / step_med[t]);
        else printf("– | ");
        printf("%.2f .. %.2f | ", 1e3 * sorted[0], 1e3 * sorted[rounds - 1]);
        if (ref >= 0) printf("%.3f / %.3f / %.3f | %.3f |\n", rmin, rmed, rmax, paired[t]);
        else printf("– | – |\n");
    }
    printf("\nbits/value: K and V averaged over layers; blocks = the blocks alone, stored = rq_cache_bits_per_value at --ctx "
           "(also μ and the fp16 sink of centred keys)\n");
    if (parts) {
        const double w_med = median(t_w, n_steps), o_med = median(t_o, n_steps);
        const double out_bytes = (double)ot->n_bytes;
        printf("\nOne step's parts (medians of %zu, ms; each timed alone, interleaved with the steps above):\n\n"
               "| configuration | weights (%zu matrices, %.1f MB) | logits (%zu × %d, %.1f MB) | attention (%d layers) | "
               "rest | step |\n|---|---:|---:|---:|---:|---:|\n",
               n_steps, n_mats, 1e-6 * (double)w_bytes, V, hp->n_embd, 1e-6 * out_bytes, hp->n_layers);
        for (int t = 0; t < n_cf; t++) {
            att_med[t] = median(t_a + (size_t)t * n_steps, n_steps);
            printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", cf[t].label, 1e3 * w_med, 1e3 * o_med,
                   1e3 * att_med[t], 1e3 * (step_med[t] - w_med - o_med - att_med[t]), 1e3 * step_med[t]);
        }
        printf("\nweights + logits read %.1f MB per step: %.1f GB/s at the medians above\n",
               1e-6 * ((double)w_bytes + out_bytes), 1e-9 * ((double)w_bytes + out_bytes) / (w_med + o_med));
    }

    for (int t = 0; t < n_cf; t++) rqm_session_free(s[t]);
    cli_budget_free(&bud);
    free(t_step), free(t_round), free(t_w), free(t_o), free(t_a), free(x), free(y), free(q), free(att);
    free(logits), free(ids), free(buf);
    rqm_tokenizer_free(tok);
    rqm_llama_free(m);
    rqm_gguf_close(g);
    rqm_matmul_shutdown();
    return 0;
}
