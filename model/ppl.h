/* Perplexity, KL divergence and top-1 agreement of KV-cache configurations
 * against a reference cache on the same text (model/ppl.c): the numbers of
 * `rotorquant perplexity`, llama-perplexity's --kl-divergence in spirit. */
#ifndef RQ_MODEL_PPL_H
#define RQ_MODEL_PPL_H

#include <stddef.h>
#include <stdint.h>

#include "llama.h"

typedef struct {
    size_t ctx;      /* tokens per chunk (≥ 2); positions ctx/2 .. ctx − 1 of each are scored */
    size_t n_chunks; /* consecutive chunks from the start of ids (≥ 1; n_chunks·ctx ≤ n_ids) */
    size_t n_vocab;  /* logits per position (the model's vocabulary)                     */
    /* optional: called after each (chunk, session) with done = 1 .. total */
    void (*progress)(void *user, size_t done, size_t total);
    void *progress_user;
    /* add_bos: bos takes the place of each chunk's first token
     * (rqm_session_eval_seq; bos = rqm_tokenizer_seq_bos when that is ≥ 0) */
    int add_bos;
    int32_t bos;
    /* llamacpp: llama-perplexity's exact chunks, for a cross-check against it
     * (bench/llamacpp_peer.sh): with add_bos the token stream is BOS, ids[0],
     * ids[1], .. (chunk c: BOS, ids[c·ctx], .., ids[c·ctx + ctx − 2]; llama.cpp
     * tokenizes the text with its BOS and then puts BOS in place of each
     * chunk's first token), and positions ctx/2 .. ctx − 2 are scored (the last
     * position, which predicts the next chunk's first token, is not). 0: the
     * chunks above and positions ctx/2 .. ctx − 1. */
    int llamacpp;
} rqm_ppl_config;

typedef struct {
    double nll;        /* Σ −log p(target) over the scored positions that have a target   */
    size_t n_targets;  /* those positions (the text's last token has no next one)          */
    double ppl;        /* exp(nll / n_targets)                                             */
    size_t n_scored;   /* scored positions: n_chunks · (ctx − ctx/2) (− n_chunks with llamacpp);
                          KLD and top-1 over them */
    double kld_mean;   /* KL(reference ‖ this) in nats per position: mean and 99th percentile */
    double kld_p99;    /* (element ⌊0.99 (n_scored − 1)⌋ of the sorted values); 0 for the reference */
    double top1;       /* fraction of positions whose argmax matches the reference's; 1 for it */
} rqm_ppl_result;

/* Runs every chunk through every session (reset before each chunk; all
 * sessions need n_ctx ≥ ctx and the same vocabulary) and scores it.
 * sessions[0] is the reference the others are compared with (usually the f32
 * cache). The logits at position t predict token t + 1; the chunk's last
 * position predicts the next chunk's first token, when the text has one.
 * out[n_sessions]. RQ_ERR_INVALID_ARG for NULL pointers, ctx < 2, no chunks or
 * chunks past the end of ids; RQ_ERR_NOMEM; a session's error as returned. */
rq_status rqm_perplexity_run(rqm_session *const *sessions, size_t n_sessions, const int32_t *ids, size_t n_ids,
                             const rqm_ppl_config *cfg, rqm_ppl_result *out);

/* Decode speed: greedy decoding of RQM_DECODE_TOKENS tokens right after a
 * prefill of ids[0 .. n_prefill − 1] (bos ≥ 0 in place of ids[0]:
 * rqm_session_eval_seq; bos < 0: none) (the session is reset first and needs
 * n_ctx ≥ n_prefill + RQM_DECODE_TOKENS); *tokens_per_s = 1 / the median
 * time of one token's forward pass. RQ_ERR_INVALID_ARG for NULL pointers or
 * n_prefill 0; a session's error as returned. */
#define RQM_DECODE_TOKENS 16
rq_status rqm_decode_speed(rqm_session *s, size_t n_vocab, int32_t bos, const int32_t *ids, size_t n_prefill,
                           double *tokens_per_s);

#endif
