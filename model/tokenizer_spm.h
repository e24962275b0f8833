/* SentencePiece-style BPE from a GGUF (`tokenizer.ggml.model = llama`:
 * Gemma, Llama 1/2, Mistral): model/tokenizer_spm.c. Reached through the
 * rqm_tokenizer API of model/tokenizer.h, which picks it from the GGUF; the
 * functions here are that API's SPM half and keep its contracts. The ids
 * equal llama.cpp's `llama-tokenize` (scripts/spm_reference.sh makes the
 * reference; tests/test_tokenizer.c checks it). */
#ifndef RQ_MODEL_TOKENIZER_SPM_H
#define RQ_MODEL_TOKENIZER_SPM_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef struct rqm_spm rqm_spm;

rq_status rqm_spm_from_gguf(rqm_spm **out, const rqm_gguf *g, char *err, size_t err_len);
void rqm_spm_free(rqm_spm *t);

size_t rqm_spm_n_vocab(const rqm_spm *t);
int32_t rqm_spm_bos(const rqm_spm *t);
int32_t rqm_spm_eos(const rqm_spm *t);
int rqm_spm_add_bos(const rqm_spm *t);

rq_status rqm_spm_tokenize(const rqm_spm *t, const char *text, size_t len, int parse_special, int32_t *out,
                           size_t cap, size_t *n_out);
rqm_str rqm_spm_token_bytes(const rqm_spm *t, int32_t id);

#endif
