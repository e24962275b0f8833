/* The prompt cache (model/prompt_cache.c): `rotorquant generate
 * --prompt-cache FILE`, as llama.cpp's flag. After a prompt is prefilled,
 * its KV cache (sequence 0, the library's saved-sequence bytes,
 * docs/FORMAT.md §7) is written to FILE with the prompt's token ids and the
 * model's identity (docs/FORMAT.md §8); a later run with the same model
 * and cache settings restores the longest common token prefix and
 * prefills only the rest. */
#ifndef RQ_MODEL_PROMPT_CACHE_H
#define RQ_MODEL_PROMPT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "llama.h"

/* A 64-bit identity of a model file: FNV-1a 64 over the hyperparameters
 * and, per tensor in file order, its name, type, shape, size and its
 * first and last 4096 data bytes (docs/FORMAT.md §8). Equal models give
 * equal identities; a different or re-quantized model almost surely not. */
uint64_t rqm_model_identity(const rqm_gguf *g, const rqm_llama_hparams *hp);

/* Writes FILE: header, ids[0 .. n − 1], then sequence 0 of the session's
 * cache (rq_cache_seq_save_mem). The file is written to FILE.tmp.PID,
 * flushed to disk and renamed over FILE: a failed save leaves any old file
 * intact. Errors: RQ_ERR_INVALID_ARG, RQ_ERR_NOMEM, RQ_ERR_IO (err says
 * why). */
rq_status rqm_prompt_cache_save(const char *path, uint64_t model_id, const int32_t *ids, size_t n,
                                const rqm_session *s, char *err, size_t err_len);

/* Reads FILE and restores into the session the longest common prefix of
 * its token ids and ids[0 .. n − 1], at most n − 1 tokens (the last prompt
 * token is always evaluated again: its logits start the generation).
 * *n_reused = the tokens restored (0: nothing restored, the session as it
 * was reset); *same = 1 if the file holds exactly these n ids. Errors (the
 * session then reset, err saying why): RQ_ERR_IO (cannot read),
 * RQ_ERR_TRUNCATED / RQ_ERR_FORMAT (not a prompt cache, corrupt, another
 * model, or a cache of other types, seed or key basis: the library's
 * message), RQ_ERR_NOMEM. */
rq_status rqm_prompt_cache_load(const char *path, uint64_t model_id, rqm_session *s, const int32_t *ids, size_t n,
                                size_t *n_reused, int *same, char *err, size_t err_len);

#endif
