/* fuzz_gguf.c — the GGUF reader and everything that loads from it, on
 * arbitrary bytes: rqm_gguf_open_memory, a walk over every key (string
 * arrays included) and tensor, the tokenizer (on a fixed text and on the
 * input's own last bytes) and the llama model built from
 * the file, and — when the file is a loadable model — a session that runs
 * two tokens through the forward pass on a turbo3/q8_0 cache.
 * Properties: never crashes; an error always comes with a message. */
#include "fuzz.h"

#include "../model/gguf.h"
#include "../model/llama.h"
#include "../model/tokenizer.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256] = "";
    rqm_gguf *g = NULL;
    if (rqm_gguf_open_memory(&g, data, size, err, sizeof err) != RQ_OK) {
        FUZZ_ASSERT(err[0] != 0 && g == NULL, "open error has a message");
        return 0;
    }
    for (size_t i = 0; i < rqm_gguf_n_kv(g); i++) {
        const rqm_gguf_kv *kv = rqm_gguf_kv_at(g, i);
        if (kv->type == RQM_GGUF_ARRAY && kv->arr_type == RQM_GGUF_STRING)
            for (uint64_t j = 0; j < kv->arr_n && j < 64; j++) {
                rqm_str s;
                if (rqm_gguf_array_str(g, kv, j, &s) == RQ_OK && s.len) FUZZ_ASSERT(s.ptr != NULL, "string");
            }
    }
    for (size_t i = 0; i < rqm_gguf_n_tensors(g); i++) {
        const rqm_tensor *t = rqm_gguf_tensor_at(g, i);
        FUZZ_ASSERT(rqm_gguf_tensor(g, "") == NULL || t != NULL, "lookup");
    }

    rqm_tokenizer *tok = NULL;
    err[0] = 0;
    if (rqm_tokenizer_from_gguf(&tok, g, err, sizeof err) == RQ_OK) {
        int32_t ids[64];
        size_t n = 0, n_bytes = 0;
        char back[128];
        static const char text[] = "Hello, world! 123 <|im_start|>";
        if (rqm_tokenize(tok, text, sizeof text - 1, 1, ids, 64, &n) == RQ_OK)
            rqm_detokenize(tok, ids, n, back, sizeof back, &n_bytes);
        /* the input's last bytes as text too: whichever tokenizer the GGUF
         * gives (byte-level BPE or SentencePiece, fuzz/corpus/fuzz_gguf/
         * tiny_spm.gguf) on arbitrary bytes, with and without specials */
        const size_t tl = size < 64 ? size : 64;
        for (int special = 0; special < 2; special++) {
            n = 0;
            rq_status st = rqm_tokenize(tok, (const char *)data + size - tl, tl, special, ids, 64, &n);
            FUZZ_ASSERT(st != RQ_OK || n <= 64, "tokenize within cap");
            if (st == RQ_OK) rqm_detokenize(tok, ids, n, back, sizeof back, &n_bytes);
        }
        rqm_tokenizer_free(tok);
    } else {
        FUZZ_ASSERT(err[0] != 0, "tokenizer error has a message");
    }

    rqm_llama *m = NULL;
    err[0] = 0;
    if (rqm_llama_load(&m, g, err, sizeof err) == RQ_OK) {
        const rqm_llama_hparams *hp = rqm_llama_hparams_of(m);
        rqm_session_config cfg = {.type_k = "turbo3", .type_v = "q8_0", .n_ctx = 8, .n_threads = 1};
        rqm_session *s = NULL;
        if (hp->n_vocab >= 2 && hp->n_vocab <= 4096 && rqm_session_init(&s, m, &cfg) == RQ_OK) {
            float *logits = malloc((size_t)hp->n_vocab * sizeof *logits);
            const int32_t toks[2] = {0, 1};
            if (logits) rqm_session_eval(s, toks, 2, 0, logits);
            free(logits);
            rqm_session_free(s);
        }
        rqm_llama_free(m);
    } else {
        FUZZ_ASSERT(err[0] != 0, "model error has a message");
    }
    rqm_gguf_close(g);
    return 0;
}
