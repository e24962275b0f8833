/* The Gemma 3 forward pass (model/gemma3.c), for Gemma 3 270M and any GGUF
 * with general.architecture = gemma3. It is reached through the generic
 * model API of model/llama.h: rqm_llama_load picks it from the GGUF's
 * architecture, and rqm_session_* run it with the same rq_cache and
 * rq_cache_attention (local layers: rq_cache_set_window on the session's cache), so every
 * command of the CLI serves it unchanged.
 *
 * Facts (each read from the GGUF where the GGUF has it; the rest as
 * llama.cpp's gemma3 graph, research notes in docs/RESULTS.md "Gemma 3"):
 *   - head_dim = gemma3.attention.key_length (not n_embd / n_heads)
 *   - embeddings scaled by √n_embd; tied output unless output.weight exists
 *   - per layer: x += post_attention_norm(attn(attn_norm(x)))
 *                x += post_ffw_norm(ffn(ffn_norm(x)))
 *     with RMSNorm on each query and key head (attn_q_norm, attn_k_norm)
 *     before RoPE, NeoX-style RoPE (pairs i, i + n_rot/2), GeGLU with the
 *     tanh GELU. Norm weights are used as stored (the converter already
 *     added Gemma's +1).
 *   - sliding window: gemma3.attention.sliding_window keys (the query's own
 *     position and the window − 1 before it) on local layers; layer l is
 *     local unless l % P == P − 1, P = attention.sliding_window_pattern
 *     (default 6, or a per-layer bool array). RoPE base: rope.freq_base on
 *     global layers, rope.freq_base_swa (default 10000) on local ones.
 *   - attention scale 1/√head_dim (1/√(n_embd/n_heads) for the 62-layer
 *     27B, as Gemma's reference code).
 *   - no final logit soft-capping unless final_logit_softcapping is set. */
#ifndef RQ_MODEL_GEMMA3_H
#define RQ_MODEL_GEMMA3_H

#include "llama.h"

typedef struct rqm_gemma3 rqm_gemma3;

/* Weights are views into g. Fills hp (head_dim, n_rot = head_dim, rope_base =
 * the global base, …) for the generic API. */
rq_status rqm_gemma3_load(rqm_gemma3 **out, rqm_llama_hparams *hp, const rqm_gguf *g, char *err, size_t err_len);
void rqm_gemma3_free(rqm_gemma3 *m);

/* The window of layer l in tokens (0 = a global layer). */
/* The attention score scale (query_pre_attn_scalar^−½). */
float rqm_gemma3_attn_scale(const rqm_gemma3 *m);
size_t rqm_gemma3_window(const rqm_gemma3 *m, int layer);

/* Activations for batches of up to n_batch tokens. */
typedef struct rqm_gemma3_scratch rqm_gemma3_scratch;
rq_status rqm_gemma3_scratch_init(rqm_gemma3_scratch **out, const rqm_gemma3 *m, size_t n_batch);
void rqm_gemma3_scratch_free(rqm_gemma3_scratch *s);

/* n ≤ n_batch tokens at positions pos .. pos + n − 1, keys and values
 * appended to cache (which holds pos tokens per layer). logits: NULL,
 * [n][n_vocab] (all_logits) or [n_vocab] for the last token. With seqs
 * set (a decode step of many sequences, rqm_session_decode): row t is the
 * next token of sequence seqs[t] at position seq_pos[t] (pos unused; the
 * observer not called); attention is one rq_cache_attention_batch call per
 * layer. seqs NULL: sequence 0. */
rq_status rqm_gemma3_eval_batch(const rqm_gemma3 *m, rqm_gemma3_scratch *s, rq_cache *cache, size_t pos,
                                const int32_t *tokens, size_t n, int all_logits, float *logits, int n_threads,
                                rqm_observer observer, void *observer_user, const int *seqs,
                                const size_t *seq_pos);

#endif
