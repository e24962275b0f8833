/* The llama-architecture forward pass (model/llama.c), written for
 * SmolLM2-135M and any GGUF of the same shape: token embedding, RMSNorm,
 * Q/K/V projections, RoPE on adjacent pairs (x[2i], x[2i+1]) as llama GGUFs
 * store q/k permuted for it, grouped-query attention, SwiGLU, tied or
 * separate output head. Keys and values live in the library's compressed KV
 * cache (rq_cache) and attention runs through rq_cache_attention: the same
 * code a user of the library calls. Hyperparameters come from the GGUF
 * metadata, never hard-coded. */
#ifndef RQ_MODEL_LLAMA_H
#define RQ_MODEL_LLAMA_H

#include <stddef.h>
#include <stdint.h>

#include "ggml.h"
#include "gguf.h"

typedef struct {
    int n_layers, n_embd, n_heads, n_kv_heads, head_dim, n_rot, n_ff, n_vocab, n_ctx_train;
    double rope_base, rms_eps;
} rqm_llama_hparams;

typedef struct rqm_llama rqm_llama;

/* Weights are views into the GGUF (which must outlive the model). */
rq_status rqm_llama_load(rqm_llama **out, const rqm_gguf *g, char *err, size_t err_len);
void rqm_llama_free(rqm_llama *m);
const rqm_llama_hparams *rqm_llama_hparams_of(const rqm_llama *m);
/* The sliding window of a layer in tokens: its queries read only the last
 * that many positions (Gemma 3's local layers); 0 = every position. */
size_t rqm_llama_layer_window(const rqm_llama *m, int layer);
/* The attention score scale the forward pass uses (rq_attn_params.scale;
 * 0 = 1/sqrt(head_dim)). */
float rqm_llama_attn_scale(const rqm_llama *m);

/* Called once per layer and batch, after attention: post-RoPE queries and
 * keys, values, and the attention output, for shadow evaluation and dumps. */
typedef struct {
    int layer;
    size_t pos0, n_tokens;  /* positions pos0 .. pos0 + n_tokens − 1        */
    const float *q;         /* [n_tokens][n_heads][head_dim]                 */
    const float *k, *v;     /* [n_tokens][n_kv_heads][head_dim]              */
    const float *attn_out;  /* [n_tokens][n_heads][head_dim]                 */
} rqm_layer_event;
typedef rq_status (*rqm_observer)(void *user, const rqm_layer_event *ev);

typedef struct {
    const char *type_k, *type_v; /* cache types (registry names); NULL = "f32" */
    uint64_t seed;               /* quantizer seed of the cache               */
    int norm_correct;            /* store ‖x‖/‖ĉ‖ (rq_quant_config)           */
    int centre_keys;             /* keys as k − μ, position 0 exact (rq_cache_config) */
    int centre_window;           /* positions 1..N fix μ (0 = 64)             */
    int int8_scores;             /* int8 key scores (rq_cache_config)         */
    const char *const *layer_type_k, *const *layer_type_v; /* NULL, or per-layer
                                    types (rq_cache_config; a bits budget)   */
    const float *key_basis;      /* NULL, or [n_layers][n_kv_heads][ranges][head_dim²]:
                                    rq_cache_set_key_basis per head (calib.h) */
    size_t key_basis_ranges;     /* key-position ranges, first positions in */
    const size_t *key_basis_start; /* key_basis_start[0 .. ranges − 1]      */
    int key_basis_ctx;           /* the positions it was calibrated on: n_ctx
                                    above it is RQ_ERR_RANGE (0: unchecked)  */
    int n_ctx;                   /* maximum positions (0 = the model's)       */
    int n_batch;                 /* tokens per forward batch (0 = 256)        */
    int n_threads;               /* matmul and attention threads (0 = 1)      */
    rqm_observer observer;       /* optional                                  */
    void *observer_user;
} rqm_session_config;

/* A running context: the KV cache, scratch buffers and the position. */
typedef struct rqm_session rqm_session;
rq_status rqm_session_init(rqm_session **out, const rqm_llama *m, const rqm_session_config *cfg);
void rqm_session_free(rqm_session *s);
/* Forget every token (the cache's pages are kept). */
void rqm_session_reset(rqm_session *s);
size_t rqm_session_pos(const rqm_session *s);
const rq_cache *rqm_session_cache(const rqm_session *s);

/* Run n tokens at the next positions. logits: NULL, or [n][n_vocab] for every
 * token (all_logits != 0), or [n_vocab] for the last token only. On error the
 * session is unusable until rqm_session_reset (RQ_ERR_RANGE: past n_ctx, or a
 * value the cache type cannot hold). */
rq_status rqm_session_eval(rqm_session *s, const int32_t *tokens, size_t n, int all_logits, float *logits);
/* rqm_session_eval of ids[0 .. n − 1] as a sequence of its own (a perplexity
 * chunk, a prefill, a calibration window): with bos ≥ 0, bos takes the place
 * of ids[0] (llama-perplexity's convention for models whose GGUF sets
 * add_bos_token, such as Gemma: every chunk starts the way the model was
 * trained); bos < 0: exactly rqm_session_eval. bos from
 * rqm_tokenizer_seq_bos. */
rq_status rqm_session_eval_seq(rqm_session *s, int32_t bos, const int32_t *ids, size_t n, int all_logits,
                               float *logits);

/* ---- many sequences (one cache, paged: rq_cache_seq_*) ------------------
 * The session's cache may hold several sequences. rqm_session_eval and the
 * functions above act on sequence 0; the ones below act on any sequence,
 * each at its own position (its token count). Sequences are added, forked
 * and removed on the cache itself (rqm_session_cache_mut): forking
 * sequence 0 into sequences 1 .. B−1 shares one prefilled prompt, as a
 * server with one system prompt does. Changing sequence 0's tokens through
 * the cache is not allowed (the session's position would disagree); use
 * rqm_session_restore for that. */
rq_cache *rqm_session_cache_mut(rqm_session *s);

/* One decode step of n sequences at once: token tokens[i] goes to the next
 * position of sequence seqs[i] (ids distinct, n ≤ the session's n_batch).
 * The n activations run as rows of one batch through every matrix product
 * (each weight block is dequantized once per step for all n rows) and
 * attention is one rq_cache_attention_batch call per layer. logits: NULL or
 * [n][n_vocab]. The results are bit for bit those of decoding each
 * sequence alone (the matmul and batched attention guarantees). The
 * observer is not called. On error every sequence is truncated back to its
 * length before the call (nothing appended). Errors: RQ_ERR_INVALID_ARG
 * (NULL, n = 0 or > n_batch, repeated id, no such sequence, token out of
 * vocabulary), RQ_ERR_RANGE (a sequence at n_ctx), RQ_ERR_NOMEM (the
 * page budget), and the cache's. Both architectures (llama, Gemma 3); on
 * Gemma 3's sliding-window layers the rollback of a failed step can itself
 * fail (RQ_ERR_RANGE from rq_cache_seq_truncate when the step's append
 * released a page behind the window): those sequences must then be
 * removed. */
rq_status rqm_session_decode(rqm_session *s, const int *seqs, const int32_t *tokens, size_t n, float *logits);

/* Replace sequence 0 by the first n_keep tokens of a saved sequence
 * (rq_cache_seq_save_mem bytes of one sequence): the prompt cache's
 * restore. The session's position becomes n_keep. On error the session is
 * reset (sequence 0 empty, position 0). Errors: those of
 * rq_cache_seq_load_mem and rq_cache_seq_truncate; RQ_ERR_RANGE (n_keep
 * above the saved tokens or n_ctx). */
rq_status rqm_session_restore(rqm_session *s, const void *data, size_t n_bytes, size_t n_keep);

/* Default locations: $RQ_MODEL / $RQ_TEXT if set, else in the download
 * cache ${RQ_CACHE_DIR:-$HOME/.cache/rotorquant} (scripts/fetch_model.sh,
 * scripts/fetch_text.sh). Returns buf. */
typedef enum { RQM_PATH_MODEL, RQM_PATH_TEXT, RQM_PATH_GEMMA3 } rqm_path_kind; /* GEMMA3: $RQ_GEMMA3 or
                                                                                the cache's Gemma 3 270M */
const char *rqm_default_path(rqm_path_kind kind, char *buf, size_t len);

#endif
