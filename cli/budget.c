/*
 * budget.c — see budget.h. The measurement is model/alloc.c's, the choice
 * the library's rq_kv_alloc; this file runs them and prints the choice.
 */
#include "budget.h"

#include <time.h>

#include "../model/alloc.h"
#include "../model/sample.h"

static const char *const TYPES_TURBO[CLI_BUDGET_N_TYPES] = {"turbo1", "turbo2", "turbo3", "turbo4", "turbo5"};
static const char *const TYPES_TCQ[CLI_BUDGET_N_TYPES] = {"turbo1", "tcq2", "tcq3", "tcq4", "tcq5"};

/* values: the same codes with the 1-byte log norm head (measured: the norm
 * rounding costs nothing, the byte saved buys bits; docs/RESULTS.md) */
static const char *const TYPES_TURBO_V[CLI_BUDGET_N_TYPES] = {"turbo1n8", "turbo2n8", "turbo3n8", "turbo4n8",
                                                             "turbo5n8"};
static const char *const TYPES_TCQ_V[CLI_BUDGET_N_TYPES] = {"turbo1n8", "tcq2n8", "tcq3n8", "tcq4n8", "tcq5n8"};

/* keys of a centred cache: the same codes with the 1-byte norm relative
 * to the per-head key scale σ (docs/FORMAT.md §5.2) */
static const char *const TYPES_TURBO_K8[CLI_BUDGET_N_TYPES] = {"turbo1k8", "turbo2k8", "turbo3k8", "turbo4k8",
                                                              "turbo5k8"};
static const char *const TYPES_TCQ_K8[CLI_BUDGET_N_TYPES] = {"turbo1k8", "tcq2k8", "tcq3k8", "tcq4k8", "tcq5k8"};

const char *const *cli_budget_types(int tcq, int centre_keys) {
    return centre_keys ? (tcq ? TYPES_TCQ_K8 : TYPES_TURBO_K8) : tcq ? TYPES_TCQ : TYPES_TURBO;
}
const char *const *cli_budget_types_v(int tcq) { return tcq ? TYPES_TCQ_V : TYPES_TURBO_V; }
const char *cli_budget_family(int tcq) { return tcq ? "tcq" : "turbo"; }
long cli_budget_ctx(long n_ctx) { return n_ctx > CLI_BUDGET_MIN_CTX ? n_ctx : CLI_BUDGET_MIN_CTX; }

void cli_budget_digits(const char *const *types, int n, char *out) {
    for (int i = 0; i < n; i++) {
        const rq_type_info *t = rq_type_find(types[i]);
        out[i] = t && t->n_bits >= 0 && t->n_bits <= 9 ? (char)('0' + t->n_bits) : '?';
    }
    out[n > 0 ? n : 0] = 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress(const char *what, size_t done, size_t total) {
    const int W = 30;
    int filled = total ? (int)(W * done / total) : W;
    fprintf(stderr, "\r%s [", what);
    for (int i = 0; i < W; i++) fputc(i < filled ? '#' : '.', stderr);
    fprintf(stderr, "] %zu/%zu", done, total);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
}

void cli_budget_free(cli_budget *b) {
    if (!b) return;
    free(b->cost_k), free(b->cost_v), free(b->names);
    memset(b, 0, sizeof *b);
}

rq_status cli_budget_measure(cli_budget *b, const rqm_llama *m, const rqm_tokenizer *tok, const cli_budget_opts *o) {
    memset(b, 0, sizeof *b);
    const rqm_llama_hparams *hp = rqm_llama_hparams_of(m);
    const size_t L = (size_t)hp->n_layers;
    const size_t N = CLI_BUDGET_TOKENS < (size_t)hp->n_ctx_train ? CLI_BUDGET_TOKENS : (size_t)hp->n_ctx_train;
    const double t0 = now_s();
    b->o = *o;
    b->n_layers = hp->n_layers, b->head_dim = hp->head_dim;
    b->cost_k = malloc(sizeof(double) * L * CLI_BUDGET_N_TYPES);
    b->cost_v = malloc(sizeof(double) * L * CLI_BUDGET_N_TYPES);
    b->names = calloc((size_t)CLI_BUDGET_MAX * 2 * L, sizeof(char *));
    float *logits = malloc(sizeof(float) * (size_t)hp->n_vocab);
    rqm_sens *sens = NULL;
    rqm_session *s = NULL;
    rq_status st = b->cost_k && b->cost_v && b->names && logits ? rqm_sens_init(&sens, m, N) : RQ_ERR_NOMEM;
    /* an exact (f32) cache whose layers hand their q, k, v to the sens */
    rqm_session_config sc;
    memset(&sc, 0, sizeof sc);
    sc.type_k = sc.type_v = "f32";
    sc.seed = o->seed;
    sc.norm_correct = o->norm_correct;
    sc.centre_window = o->centre_window;
    sc.n_ctx = (int)N;
    sc.n_threads = o->n_threads;
    sc.n_batch = o->n_batch ? o->n_batch : 256;
    sc.observer = rqm_sens_observe, sc.observer_user = sens;
    if (!st) st = rqm_session_init(&s, m, &sc);
    const int32_t first = rqm_tokenizer_bos(tok) >= 0 ? rqm_tokenizer_bos(tok) : rqm_tokenizer_eos(tok);
    rq_rng rng;
    rq_rng_seed(&rng, o->seed);
    int32_t t = first;
    for (size_t i = 0; i < N && !st; i++) {
        if (!(st = rqm_session_eval(s, &t, 1, 0, logits))) t = rqm_sample(logits, (size_t)hp->n_vocab, 1.0, &rng);
        if ((i + 1) % 64 == 0 || i + 1 == N) cli_progress("kv-bits: the model's own text", i + 1, N);
    }
    rqm_session_free(s);
    const char *const *types = cli_budget_types(o->tcq, o->centre_keys), *const *types_v = cli_budget_types_v(o->tcq);
    const rqm_sens_config cfg = {CLI_BUDGET_N_TYPES, CLI_BUDGET_N_TYPES, types, types_v, o->centre_keys,
                                 o->norm_correct, o->seed, 4, o->n_threads};
    if (!st) st = rqm_sens_costs(sens, &cfg, b->cost_k, b->cost_v);
    rqm_sens_free(sens);
    free(logits);
    b->seconds = now_s() - t0;
    return st;
}

rq_status cli_budget_plan_row(cli_budget *b, int slot, double bits, long n_ctx, const char *ctx_note,
                              cli_budget_plan *out) {
    const int L = b->n_layers;
    if (slot < 0 || slot >= CLI_BUDGET_MAX || L < 1 || n_ctx < 1 || !b->names) return RQ_ERR_INVALID_ARG;
    const char *const *types = cli_budget_types(b->o.tcq, b->o.centre_keys), *const *types_v = cli_budget_types_v(b->o.tcq);
    const rq_kv_alloc_problem pb = {L, b->head_dim, CLI_BUDGET_N_TYPES, CLI_BUDGET_N_TYPES, types, types_v,
                                    b->cost_k, b->cost_v,
                                    /* μ, the fp16 sink and σ: 3·head_dim + 1 fp16 per layer and KV head */
                                    b->o.centre_keys ? (24.0 + 8.0 / b->head_dim) / (double)n_ctx : 0.0};
    int *ck = malloc(2 * sizeof(int) * (size_t)L), *cv = ck + L;
    char *dk = malloc(2 * ((size_t)L + 1)), *dv = dk + L + 1;
    double got = 0, cost = 0;
    rq_status st = ck && dk ? rq_kv_alloc(&pb, bits, ck, cv, &got, &cost) : RQ_ERR_NOMEM;
    if (st) {
        free(ck), free(dk);
        return st;
    }
    const char **lk = b->names + (size_t)slot * 2 * (size_t)L, **lv = lk + L;
    for (int l = 0; l < L; l++) lk[l] = types[ck[l]], lv[l] = types_v[cv[l]];
    free(ck);
    *out = (cli_budget_plan){bits, got, cost, n_ctx, lk, lv};
    cli_budget_digits(lk, L, dk), cli_budget_digits(lv, L, dv);
    fprintf(stderr,
            "kv-bits %.2f: %.4f bits/value planned for %ld positions%s%s%s%s; %s bits per layer 0..%d: K %s / V %s "
            "(output-error cost %.4f, measured on %d tokens of the model's own text in %.0f s)\n",
            bits, got, n_ctx, ctx_note ? " (" : "", ctx_note ? ctx_note : "", ctx_note ? ")" : "",
            b->o.centre_keys ? ", μ and the sink included" : "", b->o.tcq ? (b->o.centre_keys ? "tcq (1: turbo1; K k8, V n8)" : "tcq (1: turbo1; V n8)")
                      : b->o.centre_keys ? "turbo (K k8, V n8)" : "turbo (V n8)", L - 1, dk,
            dv, cost, CLI_BUDGET_TOKENS, b->seconds);
    free(dk);
    return RQ_OK;
}
