/*
 * budget.h — `--kv-bits B`: per-layer K/V cache types within a bits budget,
 * for the model commands (cmd_model.c: generate, perplexity, fidelity) and
 * `batched` (cmd_batched.c). One place for what they share:
 *
 *   1. cli_budget_measure: the per-layer costs (model/alloc.h), measured
 *      once per run on CLI_BUDGET_TOKENS tokens of the model's own text,
 *      sampled from the first token at temperature 1 with the run's seed
 *      (held out from any evaluation text). Candidates per bit width 1..5:
 *      turbo1..5, or with --kv-family tcq the trellis codes tcq2..5 (1 bit
 *      stays turbo1); for values their n8 variants (turbo1n8..5n8,
 *      tcq2n8..5n8: the 1-byte log norm head, one byte per vector less),
 *      and with key centring (the default) for keys their k8 variants
 *      (turbo1k8..5k8, tcq2k8..5k8: the byte relative to the per-head σ).
 *      Keys centred and norms corrected as the caches that will use the
 *      choice. There is no switch back to fp16-normed values: the plan
 *      names its per-layer types, and --configs takes any pair.
 *   2. cli_budget_plan: rq_kv_alloc's choice for one budget at a planned
 *      context, μ, the fp16 sink and σ of key centring counted (3·head_dim
 *      + 1 fp16 per layer and KV head: (24 + 8/head_dim) / n_ctx
 *      bits/value), printed as one
 *      stderr line "kv-bits B: ..." (scripts read lines with that prefix).
 *
 * The planned context: the positions the caller's session is sized for,
 * but at least CLI_BUDGET_MIN_CTX (cli_budget_ctx) — the fixed costs of
 * key centring spread over a 13-token generation would leave 1-bit layers.
 *
 * Threads: none of these may run on the same cli_budget at once; distinct
 * ones are independent. Errors: rq_status; the library's rq_last_error()
 * says more where it set one. Nothing here exits.
 */
#ifndef RQ_CLI_BUDGET_H
#define RQ_CLI_BUDGET_H

#include "cli.h"

#include "../model/llama.h"
#include "../model/tokenizer.h"

#define CLI_BUDGET_MAX 16     /* budgets (plans) one cli_budget holds        */
#define CLI_BUDGET_TOKENS 512 /* tokens of the model's own text measured     */
#define CLI_BUDGET_MIN_CTX 512 /* the least context a budget is planned for  */
#define CLI_BUDGET_N_TYPES 5  /* candidates: bit widths 1..5                 */

typedef struct {
    int tcq;                       /* --kv-family tcq (else turbo)            */
    int centre_keys, norm_correct; /* as the caches that will use the choice  */
    int centre_window;             /* of those caches (0 = the library's 64)  */
    uint64_t seed;                 /* sampling and quantizer seed             */
    int n_threads, n_batch;        /* of the measuring session (0: 1, 256)    */
} cli_budget_opts;

typedef struct {
    cli_budget_opts o;
    int n_layers, head_dim;
    double *cost_k, *cost_v; /* [n_layers][CLI_BUDGET_N_TYPES]                */
    const char **names;      /* [CLI_BUDGET_MAX][2][n_layers]: the plans' types */
    double seconds;          /* the measurement's wall time                    */
} cli_budget;

/* One budget's choice. lk, lv point into the cli_budget (valid until
 * cli_budget_free); the names are static candidate names. */
typedef struct {
    double budget;          /* asked, bits/value                            */
    double bits;            /* planned bits/value at n_ctx, every stored bit */
    double cost;            /* the choice's summed output-error cost         */
    long n_ctx;             /* the context it was planned for                */
    const char **lk, **lv;  /* [n_layers] per-layer K and V types            */
} cli_budget_plan;

/* The key candidates, [CLI_BUDGET_N_TYPES] (static): with key centring the
 * k8 types (turbo{b}k8, tcq{k}k8: a 1-byte norm relative to the cache's
 * per-head key scale σ), else the fp16-normed types. */
const char *const *cli_budget_types(int tcq, int centre_keys);
/* The value candidates, [CLI_BUDGET_N_TYPES] (static): the same codes with
 * the 1-byte norm head (turbo{b}n8, tcq{k}n8; docs/FORMAT.md §5.2), whose
 * byte saved the budget counts and spends. */
const char *const *cli_budget_types_v(int tcq);
/* "tcq" or "turbo". */
const char *cli_budget_family(int tcq);
/* The context a budget is planned for when the session holds n_ctx positions. */
long cli_budget_ctx(long n_ctx);
/* Each type's bit width digit ("turbo3", "tcq3n8": '3') into out[n + 1], NUL-terminated. */
void cli_budget_digits(const char *const *types, int n, char *out);

/* Measures the costs into *b (zeroed first; cli_budget_free releases it,
 * also after an error). Prints a progress bar on stderr. Errors:
 * RQ_ERR_NOMEM, or the model's. */
rq_status cli_budget_measure(cli_budget *b, const rqm_llama *m, const rqm_tokenizer *tok, const cli_budget_opts *o);
/* Plan number slot (0 .. CLI_BUDGET_MAX − 1) for budget bits at n_ctx
 * positions (ctx_note: how n_ctx was chosen, printed, or NULL) into *out,
 * and the "kv-bits B: ..." line on stderr. Errors: RQ_ERR_INVALID_ARG
 * (slot out of range, nothing measured, n_ctx < 1), RQ_ERR_NOMEM,
 * rq_kv_alloc's (a budget below the cheapest choice). */
rq_status cli_budget_plan_row(cli_budget *b, int slot, double bits, long n_ctx, const char *ctx_note,
                              cli_budget_plan *out);
void cli_budget_free(cli_budget *b);

/* A progress bar "what [####....] done/total" on stderr, ending the line
 * when done == total. */
void cli_progress(const char *what, size_t done, size_t total);

#endif
