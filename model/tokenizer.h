/* Byte-level BPE tokenizer (GPT-2 style, `tokenizer.ggml.model = gpt2`)
 * with the SmolLM2 pre-tokenizer (`pre = smollm`: single digits, then the
 * GPT-2 split pattern). model/tokenizer.c; reference:
 * ../shared/research/real_model.md §4a. decode(encode(s)) == s for every
 * byte string s (invalid UTF-8 included). */
#ifndef RQ_MODEL_TOKENIZER_H
#define RQ_MODEL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef struct rqm_tokenizer rqm_tokenizer;

/* From explicit tables (tests): tokens[i] is the token string in the GPT-2
 * byte-to-unicode form, merges[i] is "A B" (rank i); token_types may be NULL
 * (all normal; 3 = control). */
rq_status rqm_tokenizer_init(rqm_tokenizer **out, const rqm_str *tokens, size_t n_tokens,
                             const rqm_str *merges, size_t n_merges, const int32_t *token_types,
                             char *err, size_t err_len);
/* From a GGUF's tokenizer.ggml.* keys: model gpt2 (pre smollm or gpt2), or
 * model llama (SentencePiece BPE with byte fallback, model/tokenizer_spm.h). */
rq_status rqm_tokenizer_from_gguf(rqm_tokenizer **out, const rqm_gguf *g, char *err, size_t err_len);
void rqm_tokenizer_free(rqm_tokenizer *t);

size_t rqm_tokenizer_n_vocab(const rqm_tokenizer *t);
/* Special ids from the GGUF (-1 if absent). */
int32_t rqm_tokenizer_bos(const rqm_tokenizer *t);
int32_t rqm_tokenizer_eos(const rqm_tokenizer *t);
/* 1 if the model expects BOS before a text (tokenizer.ggml.add_bos_token;
 * SentencePiece vocabularies: model/tokenizer_spm.h). rqm_tokenize never
 * adds it; callers do. */
int rqm_tokenizer_add_bos(const rqm_tokenizer *t);
/* The id that starts every sequence evaluated on its own: BOS when the model
 * wants it (rqm_tokenizer_add_bos and a BOS id), else -1; for
 * rqm_session_eval_seq and rqm_ppl_config. */
int32_t rqm_tokenizer_seq_bos(const rqm_tokenizer *t);

/* Encode text[len] (raw bytes; control-token literals such as
 * "<|im_start|>" are recognised when parse_special != 0). Writes up to cap
 * ids; *n_out = number of ids the full encoding has (call again with a
 * larger buffer if *n_out > cap: RQ_ERR_RANGE). */
rq_status rqm_tokenize(const rqm_tokenizer *t, const char *text, size_t len, int parse_special,
                       int32_t *out, size_t cap, size_t *n_out);
/* Bytes of one token (control tokens: their literal text). NULL len 0 if
 * id is out of range. The pointer stays valid until rqm_tokenizer_free. */
rqm_str rqm_token_bytes(const rqm_tokenizer *t, int32_t id);
/* Decode ids into buf (cap bytes); *n_out = bytes the full decoding needs. */
rq_status rqm_detokenize(const rqm_tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t cap,
                         size_t *n_out);

#endif
