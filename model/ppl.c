/*
 * ppl.c — perplexity, KL divergence and top-1 agreement (model/ppl.h).
 *
 * For every chunk of ctx tokens and every session, the forward pass gives
 * logits for every position; the second half of the chunk (positions ctx/2
 * .. ctx − 1, which see at least ctx/2 tokens of context) is scored:
 *   NLL  −log softmax(logits_t)[token t+1]            (perplexity = exp(mean NLL))
 *   KLD  KL(p_ref,t ‖ p_t), rq_metric_softmax_kl on the log-probabilities
 *   top-1 rq_metric_argmax(ref) == rq_metric_argmax(this)
 * The reference's log-probabilities of one chunk are kept ([ctx − ctx/2][V]
 * doubles) while the other sessions run the same chunk. With add_bos, each
 * chunk starts with BOS in place of its first token (rqm_session_eval_seq:
 * llama-perplexity's convention for Gemma); targets stay the text's tokens.
 * cfg->llamacpp: llama-perplexity's chunks exactly (model/ppl.h), for the
 * cross-check against it (bench/llamacpp_peer.sh).
 * Decode speed: the median of RQM_DECODE_TOKENS single-token forward passes
 * (the median ignores a first-call or scheduler outlier).
 */
#include "ppl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sample.h"

#include "rotorquant_eval.h"

/* log-softmax of logits[n] into out (double). */
static void log_softmax(const float *logits, size_t n, double *out) {
    float mx = logits[0];
    for (size_t i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    const double lse = mx + log(sum);
    for (size_t i = 0; i < n; i++) out[i] = (double)logits[i] - lse;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

rq_status rqm_decode_speed(rqm_session *s, size_t n_vocab, int32_t bos, const int32_t *ids, size_t n_prefill,
                           double *tokens_per_s) {
    if (!s || !ids || !n_prefill || !n_vocab || !tokens_per_s) return RQ_ERR_INVALID_ARG;
    const int n_gen = RQM_DECODE_TOKENS;
    double times[RQM_DECODE_TOKENS];
    float *logits = malloc(n_vocab * sizeof *logits);
    if (!logits) return RQ_ERR_NOMEM;
    rqm_session_reset(s);
    rq_status st = rqm_session_eval_seq(s, bos, ids, n_prefill, 0, logits);
    for (int i = 0; i < n_gen && !st; i++) {
        int32_t next = rqm_argmax(logits, n_vocab);
        double t0 = now_s();
        st = rqm_session_eval(s, &next, 1, 0, logits);
        times[i] = now_s() - t0;
    }
    if (!st) {
        qsort(times, (size_t)n_gen, sizeof times[0], cmp_double);
        *tokens_per_s = 1.0 / (0.5 * (times[n_gen / 2 - 1] + times[n_gen / 2]));
    }
    free(logits);
    return st;
}

rq_status rqm_perplexity_run(rqm_session *const *sessions, size_t n_sessions, const int32_t *ids, size_t n_ids,
                             const rqm_ppl_config *cfg, rqm_ppl_result *out) {
    if (!sessions || !n_sessions || !ids || !cfg || !out || cfg->ctx < 2 || !cfg->n_chunks || !cfg->n_vocab ||
        cfg->n_chunks > n_ids / cfg->ctx)
        return RQ_ERR_INVALID_ARG;
    for (size_t r = 0; r < n_sessions; r++)
        if (!sessions[r]) return RQ_ERR_INVALID_ARG;
    const size_t V = cfg->n_vocab, ctx = cfg->ctx, first = ctx / 2, n_chunks = cfg->n_chunks;
    const int32_t bos = cfg->add_bos ? cfg->bos : -1; /* in place of each chunk's first token */
    /* llamacpp: the stream is BOS, ids[0], ..: chunk c starts one token earlier
     * in ids (its first token is BOS anyway), and the last position is not scored */
    const size_t shift = cfg->llamacpp && bos >= 0 ? 1 : 0, end = cfg->llamacpp ? ctx - 1 : ctx;
    if (end <= first) return RQ_ERR_INVALID_ARG;
    const size_t n_scored = n_chunks * (end - first);
    memset(out, 0, n_sessions * sizeof *out);
    float *logits = malloc(ctx * V * sizeof *logits);              /* [ctx][V]          */
    double *base = malloc((end - first) * V * sizeof *base);       /* reference, [end − first][V] */
    double *lq = malloc(V * sizeof *lq);                           /* one position      */
    double *kld = calloc(n_sessions * n_scored, sizeof *kld);      /* [session][scored] */
    size_t *n_top1 = calloc(n_sessions, sizeof *n_top1);
    int32_t *chunk = malloc(ctx * sizeof *chunk);                  /* [ctx] this chunk's tokens */
    rq_status st = logits && base && lq && kld && n_top1 && chunk ? RQ_OK : RQ_ERR_NOMEM;
    for (size_t c = 0; c < n_chunks && !st; c++) {
        /* chunk[j] = stream[c·ctx + j], stream = ids shifted right by `shift` (BOS first) */
        for (size_t j = 0; j < ctx; j++) chunk[j] = c * ctx + j < shift ? bos : ids[c * ctx + j - shift];
        const size_t next = c * ctx + ctx - shift; /* the next chunk's first token in ids */
        for (size_t r = 0; r < n_sessions && !st; r++) {
            rqm_session_reset(sessions[r]);
            if ((st = rqm_session_eval_seq(sessions[r], bos, chunk, ctx, 1, logits))) break;
            for (size_t t = first; t < end; t++) {
                const size_t j = c * (end - first) + (t - first);
                double *lp = r == 0 ? base + (t - first) * V : lq;
                log_softmax(logits + t * V, V, lp);
                /* logits at t predict token t + 1; the chunk's last predicts the next chunk's first */
                const int32_t target = t + 1 < ctx ? chunk[t + 1] : (next < n_ids ? ids[next] : -1);
                if (target >= 0 && (size_t)target < V) out[r].nll -= lp[target], out[r].n_targets++;
                if (r == 0) continue;
                const double *pb = base + (t - first) * V;
                kld[r * n_scored + j] = rq_metric_softmax_kl(pb, lp, V);
                n_top1[r] += rq_metric_argmax(pb, V) == rq_metric_argmax(lp, V);
            }
            if (cfg->progress) cfg->progress(cfg->progress_user, c * n_sessions + r + 1, n_chunks * n_sessions);
        }
    }
    for (size_t r = 0; r < n_sessions && !st; r++) {
        rqm_ppl_result *w = &out[r];
        w->ppl = exp(w->nll / (double)w->n_targets);
        w->n_scored = n_scored;
        w->top1 = 1.0;
        if (r == 0) continue;
        double *k = kld + r * n_scored, mean = 0;
        for (size_t j = 0; j < n_scored; j++) mean += k[j];
        w->kld_mean = mean / (double)n_scored;
        qsort(k, n_scored, sizeof *k, cmp_double);
        w->kld_p99 = k[(size_t)(0.99 * (double)(n_scored - 1))];
        w->top1 = (double)n_top1[r] / (double)n_scored;
    }
    free(logits), free(base), free(lq), free(kld), free(n_top1), free(chunk);
    return st;
}
