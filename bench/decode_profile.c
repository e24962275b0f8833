/*
 * decode_profile.c — decode tokens/s of a real model with two or more KV
 * cache types side by side, and where the time of one decode step goes
 * (issue 15: turbo3 vs f16 on Gemma 3 270M at 2048 context).
 *
 * 1. Side by side: every cache type gets its own session, each prefilled
 *    with the same --ctx tokens of the text (BOS first when the model adds
 *    one). Then --rounds rounds; in each round every session in turn runs
 *    --steps greedy single-token forward passes (rqm_session_eval), each
 *    timed alone. Interleaving the types round by round puts them under the
 *    same load on a shared machine. Reported: the median step over all
 *    rounds, the tokens/s it gives, and the lowest and highest round median
 *    (the spread the machine's load made).
 * 2. Profile of one step, at the same cache state, by timing its parts
 *    alone with the same kernels, interleaved the same way:
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
 *
 * Prints markdown. Not a test: numbers depend on the machine and its load
 * (cat /proc/loadavg is printed before and after).
 */
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

#define MAX_TYPES 8
#define MAX_MATS 512
#define TEXT_BYTES (64u << 10) /* enough text for 4096+ tokens */

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

int main(int argc, char **argv) {
    const char *model = "gemma3", *text = NULL, *types_arg = "f16,turbo3";
    long ctx = 2048, steps = 16, rounds = 5, threads = 2;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "decode_profile: %s needs a value\n", a), 2;
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "-f")) text = v;
        else if (!strcmp(a, "--ctx")) ctx = atol(v);
        else if (!strcmp(a, "--steps")) steps = atol(v);
        else if (!strcmp(a, "--rounds")) rounds = atol(v);
        else if (!strcmp(a, "--threads")) threads = atol(v);
        else if (!strcmp(a, "--types")) types_arg = v;
        else return fprintf(stderr, "decode_profile: unknown option %s\n", a), 2;
    }
    if (ctx < 1 || ctx > 32768 || steps < 2 || steps > 1024 || rounds < 1 || rounds > 100 || threads < 1 ||
        threads > 256)
        return fprintf(stderr, "decode_profile: --ctx 1..32768, --steps 2..1024, --rounds 1..100, --threads 1..256\n"),
               2;
    char types_buf[256], *types[MAX_TYPES];
    int n_types = 0;
    snprintf(types_buf, sizeof types_buf, "%s", types_arg);
    for (char *p = strtok(types_buf, ","); p && n_types < MAX_TYPES; p = strtok(NULL, ",")) types[n_types++] = p;

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

    /* ---- sessions, prefilled ------------------------------------------- */
    rqm_session *s[MAX_TYPES] = {0};
    float *logits = malloc(V * sizeof *logits);
    int32_t next[MAX_TYPES];
    const size_t n_steps = (size_t)(steps * rounds);
    double *t_step = calloc((size_t)n_types * n_steps, sizeof *t_step);
    double *t_round = calloc((size_t)n_types * (size_t)rounds, sizeof *t_round);
    if (!logits || !t_step || !t_round) return die("alloc", RQ_ERR_NOMEM, NULL);
    printf("# decode_profile: %s, %d layers, head_dim %d, %d/%d heads, vocab %zu; context %ld, %ld rounds of "
           "%ld steps per type, %ld threads\n\n",
           model, hp->n_layers, hp->head_dim, hp->n_heads, hp->n_kv_heads, V, ctx, rounds, steps, threads);
    loadavg("at start");
    for (int t = 0; t < n_types; t++) {
        rqm_session_config sc;
        memset(&sc, 0, sizeof sc);
        sc.type_k = sc.type_v = types[t];
        sc.seed = 42;
        sc.n_ctx = (int)(ctx + (long)n_steps + 1);
        sc.n_threads = (int)threads;
        if ((st = rqm_session_init(&s[t], m, &sc))) return die(types[t], st, rq_last_error());
        const double t0 = now();
        if ((st = rqm_session_eval_seq(s[t], bos, ids, (size_t)ctx, 0, logits))) return die("prefill", st, NULL);
        fprintf(stderr, "decode_profile: %s prefill of %ld tokens: %.1f s\n", types[t], ctx, now() - t0);
        next[t] = rqm_argmax(logits, V);
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
    double *t_a = calloc((size_t)n_types * n_steps, sizeof *t_a);
    if (!t_w || !t_o || !t_a) return die("alloc", RQ_ERR_NOMEM, NULL);
    rq_attn_params ap = {.n_q_heads = hp->n_heads, .scale = 0};

    /* ---- rounds --------------------------------------------------------- */
    for (long r = 0; r < rounds; r++) {
        for (int t = 0; t < n_types; t++) {
            for (long k = 0; k < steps; k++) {
                const double t0 = now();
                if ((st = rqm_session_eval(s[t], &next[t], 1, 0, logits))) return die("decode", st, NULL);
                t_step[(size_t)t * n_steps + (size_t)(r * steps + k)] = now() - t0;
                next[t] = rqm_argmax(logits, V);
            }
            double tmp[1024];
            memcpy(tmp, t_step + (size_t)t * n_steps + (size_t)(r * steps), (size_t)steps * sizeof *tmp);
            t_round[(size_t)t * (size_t)rounds + (size_t)r] = median(tmp, (size_t)steps);
        }
        for (long k = 0; k < steps; k++) {
            double t0 = now();
            for (size_t i = 0; i < n_mats; i++) rqm_matmul(&mats[i], x, 1, y, (int)threads);
            t_w[r * steps + k] = now() - t0;
            t0 = now();
            rqm_matmul(&out_w, x, 1, y, (int)threads);
            t_o[r * steps + k] = now() - t0;
        }
        for (int t = 0; t < n_types; t++)
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
    const double w_med = median(t_w, n_steps), o_med = median(t_o, n_steps);
    printf("\n| K = V | bytes/token | step ms (median of %zu) | tok/s | round medians ms (min .. max) |\n"
           "|---|---:|---:|---:|---|\n",
           n_steps);
    double step_med[MAX_TYPES], att_med[MAX_TYPES];
    for (int t = 0; t < n_types; t++) {
        double *rt = t_round + (size_t)t * (size_t)rounds;
        qsort(rt, (size_t)rounds, sizeof *rt, cmp_d);
        step_med[t] = median(t_step + (size_t)t * n_steps, n_steps);
        att_med[t] = median(t_a + (size_t)t * n_steps, n_steps);
        printf("| %s | %zu | %.2f | %.1f | %.2f .. %.2f |\n", types[t], rq_cache_bytes_per_token(rqm_session_cache(s[t])),
               1e3 * step_med[t], 1.0 / step_med[t], 1e3 * rt[0], 1e3 * rt[rounds - 1]);
    }
    const double out_bytes = (double)ot->n_bytes;
    printf("\nOne step's parts (medians of %zu, ms; each timed alone, interleaved with the steps above):\n\n"
           "| K = V | weights (%zu matrices, %.1f MB) | logits (%zu × %d, %.1f MB) | attention (%d layers) | rest | "
           "step |\n|---|---:|---:|---:|---:|---:|\n",
           n_steps, n_mats, 1e-6 * (double)w_bytes, V, hp->n_embd, 1e-6 * out_bytes, hp->n_layers);
    for (int t = 0; t < n_types; t++)
        printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", types[t], 1e3 * w_med, 1e3 * o_med, 1e3 * att_med[t],
               1e3 * (step_med[t] - w_med - o_med - att_med[t]), 1e3 * step_med[t]);
    printf("\nweights + logits read %.1f MB per step: %.1f GB/s at the medians above\n",
           1e-6 * ((double)w_bytes + out_bytes), 1e-9 * ((double)w_bytes + out_bytes) / (w_med + o_med));

    for (int t = 0; t < n_types; t++) rqm_session_free(s[t]);
    free(t_step), free(t_round), free(t_w), free(t_o), free(t_a), free(x), free(y), free(q), free(att);
    free(logits), free(ids), free(buf);
    rqm_tokenizer_free(tok);
    rqm_llama_free(m);
    rqm_gguf_close(g);
    rqm_matmul_shutdown();
    return 0;
}
