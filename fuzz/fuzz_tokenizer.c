/* fuzz_tokenizer.c — the byte-level BPE tokenizer on arbitrary bytes, with
 * a small vocabulary built here: the 256 byte tokens (GPT-2's byte-to-
 * unicode form), a few merges, and one control token. Properties: never
 * crashes; decode(encode(s)) == s for every byte string s (invalid UTF-8
 * included), with and without special-token parsing; the size query
 * (cap 0) agrees with the full encoding. */
#include "fuzz.h"

#include "../model/tokenizer.h"

#include <string.h>

/* GPT-2's byte → code point map: printable Latin-1 bytes map to themselves,
 * the other 68 bytes to 256, 257, … in byte order. */
static size_t byte_token(unsigned b, char *out) {
    static unsigned cp[256];
    static int ready;
    if (!ready) {
        unsigned next = 256;
        for (unsigned i = 0; i < 256; i++)
            cp[i] = ((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174)) ? i : next++;
        ready = 1;
    }
    unsigned c = cp[b];
    if (c < 0x80) return out[0] = (char)c, 1;
    out[0] = (char)(0xC0 | c >> 6);
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
}

static rqm_tokenizer *build(void) {
    static char tok[260][8];
    static const char *extra[] = {"\xC4\xA0t", "he", "\xC4\xA0the", "in", "<|im_start|>"};
    static const char *merges[] = {"\xC4\xA0 t", "h e", "\xC4\xA0t he", "i n"};
    rqm_str toks[256 + 5], mer[4];
    int32_t types[256 + 5];
    for (unsigned b = 0; b < 256; b++) toks[b] = (rqm_str){tok[b], byte_token(b, tok[b])}, types[b] = 1;
    for (int i = 0; i < 5; i++) toks[256 + i] = (rqm_str){extra[i], strlen(extra[i])}, types[256 + i] = 1;
    types[260] = 3; /* control */
    for (int i = 0; i < 4; i++) mer[i] = (rqm_str){merges[i], strlen(merges[i])};
    rqm_tokenizer *t = NULL;
    char err[200];
    if (rqm_tokenizer_init(&t, toks, 261, mer, 4, types, err, sizeof err) != RQ_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err);
        abort();
    }
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static rqm_tokenizer *t;
    if (!t) t = build();
    if (size > 4096) return 0;
    int32_t *ids = malloc((size + 1) * sizeof *ids);
    char *back = malloc(size + 1);
    for (int special = 0; special < 2; special++) {
        size_t n = 0, n_query = 0, n_bytes = 0;
        rq_status st = rqm_tokenize(t, (const char *)data, size, special, ids, size + 1, &n);
        FUZZ_ASSERT(st == RQ_OK, "tokenize accepts any bytes");
        FUZZ_ASSERT(n <= size, "at most one id per byte");
        rq_status sq = rqm_tokenize(t, (const char *)data, size, special, NULL, 0, &n_query);
        FUZZ_ASSERT(n_query == n && (sq == RQ_OK || (sq == RQ_ERR_RANGE && n > 0)), "size query agrees");
        FUZZ_ASSERT(rqm_detokenize(t, ids, n, back, size + 1, &n_bytes) == RQ_OK, "detokenize");
        FUZZ_ASSERT(n_bytes == size && memcmp(back, data, size) == 0, "decode(encode(s)) == s");
    }
    free(ids);
    free(back);
    return 0;
}
