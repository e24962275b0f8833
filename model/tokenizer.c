/*
 * tokenizer.c — byte-level BPE (the GPT-2 scheme, `tokenizer.ggml.model =
 * gpt2`) with the SmolLM2 pre-tokenizer (`pre = smollm`). Reference:
 * ../shared/research/real_model.md §4a; ground truth is Hugging Face
 * `tokenizers` with pre_tokenizer = Sequence[Digits(individual_digits=True),
 * ByteLevel(add_prefix_space=False)] and the GGUF's vocab and merges.
 *
 * Encoding, in order:
 *   1. (parse_special) control / user-defined token literals such as
 *      "<|im_start|>" are cut out first, leftmost-longest, and emitted as
 *      their ids; the text between them is encoded independently.
 *   2. (smollm) every \p{N} character becomes a piece of its own; the runs
 *      between them go on to step 3 separately. (`gpt2` / `default` skip
 *      this step: " 123" stays one piece.)
 *   3. the GPT-2 split pattern, as a hand-written scanner:
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   4. BPE inside each piece: the piece's bytes start as byte tokens; the
 *      adjacent pair with the lowest merge rank (leftmost on ties) merges,
 *      until no adjacent pair has a merge.
 * Decoding maps each token's string back through the inverse byte map;
 * control and user-defined tokens decode to their literal text, so
 * decode(encode(s)) == s for every byte string s and either parse_special.
 *
 * Character classes: \s is Unicode White_Space; \p{L} and \p{N} come from the
 * generated table tokenizer_unicode.h (Unicode 14, scripts/
 * gen_tokenizer_unicode.py). Every \p{N} character (not only ASCII digits) is
 * split in step 2, as HF's Digits does (Rust char::is_numeric). A byte that
 * does not start a valid UTF-8 sequence (overlong forms, surrogates and
 * values above U+10FFFF included) is one "other" character on its own, so
 * any byte string splits and round-trips.
 *
 * Merges are stored by token id: "A B" must name two (non-control) tokens
 * and A+B must be a token too, else init fails with RQ_ERR_FORMAT (as HF's
 * BPE builder does). Every symbol BPE can create is therefore a token; only a
 * byte whose single-byte token is missing from the vocabulary cannot be
 * encoded (RQ_ERR_FORMAT from rqm_tokenize). Duplicate token strings and
 * duplicate merges are rejected: either would make the encoding ambiguous.
 *
 * Threads: a built tokenizer is read-only; rqm_tokenize keeps its scratch on
 * the caller's side (allocated per call), so one tokenizer can encode on
 * many threads at once.
 */
#include "tokenizer.h"

#include "tokenizer_spm.h"
#include "tokenizer_unicode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GGUF token types (llama.cpp llama_token_type). */
enum { RQM_TOKEN_CONTROL = 3, RQM_TOKEN_USER_DEFINED = 4 };

/* A single pre-token piece longer than this cannot be encoded (indices are
 * 32-bit, the merge heap holds 3 entries per byte); 1 GiB of text without a
 * single split point is not text. */
#define RQM_MAX_PIECE ((size_t)1 << 30)

typedef struct {
    uint64_t key; /* (left id << 32) | right id; RQM_PAIR_EMPTY if unused */
    uint32_t rank;
    int32_t id;   /* token of the merged symbol */
} rqm_pair;

#define RQM_PAIR_EMPTY UINT64_MAX /* ids are < 2^31, so no real key is this */

struct rqm_tokenizer {
    size_t n_tokens;
    char *str;            /* token strings as given (byte-level form), back to back */
    size_t *str_off;      /* [n_tokens + 1] offsets into str                        */
    char *dec;            /* each token's bytes: what it decodes to                 */
    size_t *dec_off;      /* [n_tokens + 1] offsets into dec                        */
    uint8_t *special;     /* [n_tokens] 1 = control or user-defined (literal text)  */
    int32_t *tok_slot;    /* open-addressing table of ids keyed by string, -1 empty */
    size_t tok_mask;      /* table size - 1 (a power of two minus one)              */
    rqm_pair *pair;       /* open-addressing table of merges keyed by id pair       */
    size_t pair_mask;
    int32_t byte_id[256]; /* token of each single byte, -1 if the vocab lacks it    */
    int32_t *specials;    /* special ids with non-empty text, longest text first    */
    size_t n_specials;
    rqm_spm *spm;         /* tokenizer.ggml.model = llama: SentencePiece BPE, every
                             call goes to model/tokenizer_spm.c                     */
    uint8_t special_first[32]; /* bitmap of the first bytes of special literals     */
    int split_digits;     /* 1 = smollm (digits first), 0 = plain GPT-2 split       */
    int32_t bos, eos;
};

/* ---- GPT-2 byte <-> unicode stand-ins ------------------------------------ */
/* Printable Latin-1 bytes (33-126, 161-172, 174-255) stand for themselves;
 * the other 68 bytes map, in increasing order, to U+0100..U+0143, so every
 * byte has a visible, non-space stand-in ("Ġ" = U+0120 is the space). */
static uint32_t byte_to_cp(uint8_t b) {
    if (b <= 32) return 0x100u + b;
    if (b >= 127 && b <= 160) return 0x121u + (uint32_t)(b - 127);
    if (b == 173) return 0x143u;
    return b;
}

/* Inverse of byte_to_cp; -1 if cp stands for no byte. */
static int cp_to_byte(uint32_t cp) {
    if (cp >= 0x100 && cp <= 0x120) return (int)(cp - 0x100);
    if (cp >= 0x121 && cp <= 0x142) return (int)(cp - 0x121 + 127);
    if (cp == 0x143) return 173;
    if (cp < 0x100 && byte_to_cp((uint8_t)cp) == cp) return (int)cp;
    return -1;
}

/* UTF-8 of a code point below U+0800 (all stand-ins are); returns length. */
static size_t utf8_put2(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* Decode one strict UTF-8 character from s[0..n), n >= 1. Returns its length
 * and the code point in *cp; anything invalid (stray continuation byte,
 * truncated sequence, overlong form, surrogate, > U+10FFFF) returns 1 with
 * *cp = UINT32_MAX: that byte alone is the character. */
static size_t utf8_get(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t b = s[0];
    size_t len;
    uint32_t c, min;
    *cp = UINT32_MAX;
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2, c = b & 0x1Fu, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3, c = b & 0x0Fu, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4, c = b & 0x07u, min = 0x10000;
    } else {
        return 1; /* continuation byte, C0/C1 (always overlong), F5..FF */
    }
    if (n < len) return 1;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 1;
        c = (c << 6) | (s[k] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 1;
    *cp = c;
    return len;
}

/* ---- character classes ---------------------------------------------------- */
/* The values of the generated table (tokenizer_unicode.h) and the regex's
 * \p{L}, \p{N}, \s and "everything else". */
enum { CH_LETTER = 0, CH_NUMBER = 1, CH_SPACE = 2, CH_OTHER = 3 };

static int cp_class(uint32_t cp) {
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return CH_LETTER;
        if (cp >= '0' && cp <= '9') return CH_NUMBER;
        if (cp == ' ' || (cp >= '\t' && cp <= '\r')) return CH_SPACE;
        return CH_OTHER;
    }
    size_t lo = 0, hi = sizeof rqm_uc_ranges / sizeof rqm_uc_ranges[0];
    while (lo < hi) { /* first range with hi >= cp */
        size_t mid = lo + (hi - lo) / 2;
        if (rqm_uc_ranges[mid].hi < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo < sizeof rqm_uc_ranges / sizeof rqm_uc_ranges[0] && rqm_uc_ranges[lo].lo <= cp)
        return rqm_uc_ranges[lo].cls;
    return CH_LETTER;
}

/* Class and byte length of the character at s[0..n), n >= 1. */
static int char_class(const uint8_t *s, size_t n, size_t *len) {
    uint32_t cp;
    if (s[0] < 0x80) {
        *len = 1;
        return cp_class(s[0]);
    }
    *len = utf8_get(s, n, &cp);
    return cp == UINT32_MAX ? CH_OTHER : cp_class(cp);
}

/* ---- hash tables ---------------------------------------------------------- */
static uint64_t hash_bytes(const char *p, size_t n) { /* FNV-1a, 64-bit */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t k) { /* murmur3 finaliser */
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    return k ^ (k >> 33);
}

/* Smallest power of two >= 2n (load factor <= 1/2 keeps probes short). */
static size_t table_size(size_t n) {
    size_t s = 16;
    while (s < 2 * n) s *= 2;
    return s;
}

static size_t tok_len(const rqm_tokenizer *t, size_t id) { return t->str_off[id + 1] - t->str_off[id]; }

/* Slot of string s[0..n) in tok_slot: where it is, or the empty slot where
 * it would go. */
static size_t tok_slot_of(const rqm_tokenizer *t, const char *s, size_t n) {
    size_t i = (size_t)hash_bytes(s, n) & t->tok_mask;
    for (;;) {
        int32_t id = t->tok_slot[i];
        if (id < 0) return i;
        if (tok_len(t, (size_t)id) == n && memcmp(t->str + t->str_off[id], s, n) == 0) return i;
        i = (i + 1) & t->tok_mask;
    }
}

/* Id of a normal (not control / user-defined) token with string s, or -1.
 * BPE only ever produces normal tokens, so their decoded bytes are exactly
 * the piece's bytes (the round-trip guarantee). */
static int32_t tok_find_normal(const rqm_tokenizer *t, const char *s, size_t n) {
    int32_t id = t->tok_slot[tok_slot_of(t, s, n)];
    return (id >= 0 && !t->special[id]) ? id : -1;
}

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

static const rqm_pair *pair_find(const rqm_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = pair_key(a, b);
    size_t i = (size_t)hash_u64(key) & t->pair_mask;
    for (;;) {
        const rqm_pair *p = &t->pair[i];
        if (p->key == key) return p;
        if (p->key == RQM_PAIR_EMPTY) return NULL;
        i = (i + 1) & t->pair_mask;
    }
}

/* ---- construction --------------------------------------------------------- */
void rqm_tokenizer_free(rqm_tokenizer *t) {
    if (!t) return;
    rqm_spm_free(t->spm);
    free(t->str);
    free(t->str_off);
    free(t->dec);
    free(t->dec_off);
    free(t->special);
    free(t->tok_slot);
    free(t->pair);
    free(t->specials);
    free(t);
}

typedef struct {
    size_t len;
    int32_t id;
} rqm_special_ent;

static int special_cmp(const void *pa, const void *pb) { /* longest first, then by id */
    const rqm_special_ent *a = pa, *b = pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Token strings: copy, index, and compute what each token decodes to. */
static rq_status build_tokens(rqm_tokenizer *t, const rqm_str *tokens, const int32_t *types, char *err,
                              size_t err_len) {
    size_t n = t->n_tokens, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!tokens[i].ptr && tokens[i].len)
            return rqm_say(err, err_len, RQ_ERR_INVALID_ARG, "token %zu: NULL string of length %llu", i,
                        (unsigned long long)tokens[i].len);
        if (tokens[i].len > (uint64_t)(SIZE_MAX / 2 - total))
            return rqm_say(err, err_len, RQ_ERR_FORMAT, "token %zu: vocabulary text too large", i);
        total += (size_t)tokens[i].len;
    }
    t->str = malloc(total + 1);
    t->dec = malloc(total + 1); /* decoding never lengthens a string */
    t->str_off = malloc((n + 1) * sizeof *t->str_off);
    t->dec_off = malloc((n + 1) * sizeof *t->dec_off);
    t->special = calloc(n, 1);
    t->tok_mask = table_size(n) - 1;
    t->tok_slot = malloc((t->tok_mask + 1) * sizeof *t->tok_slot);
    if (!t->str || !t->dec || !t->str_off || !t->dec_off || !t->special || !t->tok_slot)
        return rqm_say(err, err_len, RQ_ERR_NOMEM, "out of memory for %zu tokens", n);
    memset(t->tok_slot, 0xFF, (t->tok_mask + 1) * sizeof *t->tok_slot); /* all -1 */

    size_t pos = 0, dpos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = (size_t)tokens[i].len;
        const char *s = t->str + pos;
        if (len) memcpy(t->str + pos, tokens[i].ptr, len);
        t->str_off[i] = pos;
        t->str_off[i + 1] = pos + len;
        pos += len;
        size_t slot = tok_slot_of(t, s, len);
        if (t->tok_slot[slot] >= 0)
            return rqm_say(err, err_len, RQ_ERR_FORMAT, "duplicate token: %zu has the same text as %d", i,
                        (int)t->tok_slot[slot]);
        t->tok_slot[slot] = (int32_t)i;

        t->dec_off[i] = dpos;
        t->special[i] = types && (types[i] == RQM_TOKEN_CONTROL || types[i] == RQM_TOKEN_USER_DEFINED);
        if (t->special[i]) { /* literal text, e.g. "<|im_end|>" */
            if (len) memcpy(t->dec + dpos, s, len);
            dpos += len;
            continue;
        }
        /* Each stand-in code point back to its byte. Anything else (not
         * produced by GPT-2 vocabularies) is kept as its own bytes. */
        for (size_t k = 0; k < len;) {
            uint32_t cp;
            size_t cl = utf8_get((const uint8_t *)s + k, len - k, &cp);
            int b = cp == UINT32_MAX ? -1 : cp_to_byte(cp);
            if (b >= 0) {
                t->dec[dpos++] = (char)b;
            } else {
                memcpy(t->dec + dpos, s + k, cl);
                dpos += cl;
            }
            k += cl;
        }
    }
    t->dec_off[n] = dpos;

    for (int b = 0; b < 256; b++) {
        char buf[2];
        size_t bl = utf8_put2(byte_to_cp((uint8_t)b), buf);
        t->byte_id[b] = tok_find_normal(t, buf, bl);
    }
    return RQ_OK;
}

/* Merges "A B" (rank = index) into the id-pair table. */
static rq_status build_merges(rqm_tokenizer *t, const rqm_str *merges, size_t n_merges, char *err,
                              size_t err_len) {
    t->pair_mask = table_size(n_merges) - 1;
    t->pair = malloc((t->pair_mask + 1) * sizeof *t->pair);
    if (!t->pair) return rqm_say(err, err_len, RQ_ERR_NOMEM, "out of memory for %zu merges", n_merges);
    for (size_t i = 0; i <= t->pair_mask; i++) t->pair[i].key = RQM_PAIR_EMPTY;

    char *cat = NULL; /* A+B, grown to the longest merge */
    size_t cat_cap = 0;
    rq_status st = RQ_OK;
    for (size_t r = 0; r < n_merges && st == RQ_OK; r++) {
        const char *m = merges[r].ptr;
        size_t len = (size_t)merges[r].len, sp = len, n_sp = 0;
        if (!m && len) {
            st = rqm_say(err, err_len, RQ_ERR_INVALID_ARG, "merge %zu: NULL string", r);
            break;
        }
        if (merges[r].len > (uint64_t)(SIZE_MAX / 2)) {
            st = rqm_say(err, err_len, RQ_ERR_FORMAT, "merge %zu: too long", r);
            break;
        }
        /* Byte-level symbols never contain a raw space (it is "Ġ"), so a
         * well-formed merge has exactly one, between two non-empty halves. */
        for (size_t k = 0; k < len; k++)
            if (m[k] == ' ') n_sp++, sp = k;
        if (n_sp != 1 || sp == 0 || sp + 1 == len) {
            st = rqm_say(err, err_len, RQ_ERR_FORMAT, "merge %zu: \"%.*s\" is not \"A B\"", r,
                      (int)(len < 40 ? len : 40), m);
            break;
        }
        if (len > cat_cap) {
            char *p = realloc(cat, len);
            if (!p) {
                st = rqm_say(err, err_len, RQ_ERR_NOMEM, "out of memory");
                break;
            }
            cat = p, cat_cap = len;
        }
        memcpy(cat, m, sp);
        memcpy(cat + sp, m + sp + 1, len - sp - 1);
        int32_t a = tok_find_normal(t, m, sp);
        int32_t b = tok_find_normal(t, m + sp + 1, len - sp - 1);
        int32_t ab = tok_find_normal(t, cat, len - 1);
        if (a < 0 || b < 0 || ab < 0) {
            st = rqm_say(err, err_len, RQ_ERR_FORMAT, "merge %zu: \"%.*s\": %s is not a token", r,
                      (int)(len < 40 ? len : 40), m,
                      a < 0 ? "the left symbol" : b < 0 ? "the right symbol" : "the merged symbol");
            break;
        }
        uint64_t key = pair_key(a, b);
        size_t i = (size_t)hash_u64(key) & t->pair_mask;
        while (t->pair[i].key != RQM_PAIR_EMPTY && t->pair[i].key != key) i = (i + 1) & t->pair_mask;
        if (t->pair[i].key == key) {
            st = rqm_say(err, err_len, RQ_ERR_FORMAT, "merge %zu: \"%.*s\" repeats merge %u", r,
                      (int)(len < 40 ? len : 40), m, (unsigned)t->pair[i].rank);
            break;
        }
        t->pair[i].key = key;
        t->pair[i].rank = (uint32_t)r;
        t->pair[i].id = ab;
    }
    free(cat);
    return st;
}

static rq_status build_specials(rqm_tokenizer *t, char *err, size_t err_len) {
    size_t n = 0;
    for (size_t i = 0; i < t->n_tokens; i++) n += t->special[i] && tok_len(t, i) > 0;
    if (!n) return RQ_OK;
    rqm_special_ent *ent = malloc(n * sizeof *ent);
    t->specials = malloc(n * sizeof *t->specials);
    if (!ent || !t->specials) {
        free(ent);
        return rqm_say(err, err_len, RQ_ERR_NOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < t->n_tokens; i++)
        if (t->special[i] && tok_len(t, i) > 0) ent[k++] = (rqm_special_ent){tok_len(t, i), (int32_t)i};
    qsort(ent, n, sizeof *ent, special_cmp);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)t->str[t->str_off[ent[i].id]];
        t->specials[i] = ent[i].id;
        t->special_first[c >> 3] |= (uint8_t)(1u << (c & 7));
    }
    t->n_specials = n;
    free(ent);
    return RQ_OK;
}

static rq_status tokenizer_build(rqm_tokenizer **out, const rqm_str *tokens, size_t n_tokens,
                                 const rqm_str *merges, size_t n_merges, const int32_t *token_types,
                                 int split_digits, char *err, size_t err_len) {
    if (err && err_len) err[0] = '\0';
    if (!out) return rqm_say(err, err_len, RQ_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if ((!tokens && n_tokens) || (!merges && n_merges))
        return rqm_say(err, err_len, RQ_ERR_INVALID_ARG, "NULL token or merge table");
    if (n_tokens == 0) return rqm_say(err, err_len, RQ_ERR_FORMAT, "empty vocabulary");
    if (n_tokens > (size_t)INT32_MAX / 2 || n_merges > (size_t)INT32_MAX / 2)
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "%zu tokens / %zu merges: too many", n_tokens, n_merges);

    rqm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return rqm_say(err, err_len, RQ_ERR_NOMEM, "out of memory");
    t->n_tokens = n_tokens;
    t->split_digits = split_digits;
    t->bos = t->eos = -1;
    rq_status st = build_tokens(t, tokens, token_types, err, err_len);
    if (st == RQ_OK) st = build_merges(t, merges, n_merges, err, err_len);
    if (st == RQ_OK) st = build_specials(t, err, err_len);
    if (st != RQ_OK) {
        rqm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return RQ_OK;
}

/* Tables are copied: the caller may free them after the call. */
rq_status rqm_tokenizer_init(rqm_tokenizer **out, const rqm_str *tokens, size_t n_tokens,
                             const rqm_str *merges, size_t n_merges, const int32_t *token_types,
                             char *err, size_t err_len) {
    return tokenizer_build(out, tokens, n_tokens, merges, n_merges, token_types, 1, err, err_len);
}

/* The string array at key as a new table of rqm_str pointing into the
 * mapping (tokenizer_build copies them). */
static rq_status gguf_str_array(const rqm_gguf *g, const char *key, rqm_str **out, size_t *n_out,
                                char *err, size_t err_len) {
    const rqm_gguf_kv *kv = rqm_gguf_find(g, key);
    *out = NULL;
    *n_out = 0;
    if (!kv) return rqm_say(err, err_len, RQ_ERR_FORMAT, "GGUF has no %s", key);
    if (kv->type != RQM_GGUF_ARRAY || kv->arr_type != RQM_GGUF_STRING)
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "%s is not an array of strings", key);
    if (kv->arr_n > (uint64_t)INT32_MAX / 2)
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "%s: %llu entries, too many", key,
                    (unsigned long long)kv->arr_n);
    size_t n = (size_t)kv->arr_n;
    rqm_str *a = malloc((n ? n : 1) * sizeof *a);
    if (!a) return rqm_say(err, err_len, RQ_ERR_NOMEM, "out of memory for %s", key);
    for (size_t i = 0; i < n; i++) {
        if (rqm_gguf_array_str(g, kv, i, &a[i]) != RQ_OK) {
            free(a);
            return rqm_say(err, err_len, RQ_ERR_FORMAT, "%s[%zu] unreadable", key, i);
        }
    }
    *out = a;
    *n_out = n;
    return RQ_OK;
}

/* Optional special id: -1 if absent, error if present but not a token. */
static rq_status gguf_special_id(const rqm_gguf *g, const char *key, size_t n_tokens, int32_t *id,
                                 char *err, size_t err_len) {
    uint64_t v;
    *id = -1;
    if (!rqm_gguf_find(g, key)) return RQ_OK;
    if (rqm_gguf_get_u64(g, key, &v) != RQ_OK || v >= n_tokens)
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "%s is not a token id below %zu", key, n_tokens);
    *id = (int32_t)v;
    return RQ_OK;
}

rq_status rqm_tokenizer_from_gguf(rqm_tokenizer **out, const rqm_gguf *g, char *err, size_t err_len) {
    if (err && err_len) err[0] = '\0';
    if (!out) return rqm_say(err, err_len, RQ_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!g) return rqm_say(err, err_len, RQ_ERR_INVALID_ARG, "gguf is NULL");

    rqm_str model, pre;
    if (rqm_gguf_get_str(g, "tokenizer.ggml.model", &model) != RQ_OK)
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "GGUF has no string tokenizer.ggml.model");
    if (rqm_str_eq(model, "llama")) { /* SentencePiece BPE: model/tokenizer_spm.c */
        rqm_tokenizer *t = calloc(1, sizeof *t);
        if (!t) return rqm_say(err, err_len, RQ_ERR_NOMEM, "out of memory");
        rq_status st = rqm_spm_from_gguf(&t->spm, g, err, err_len);
        if (st) {
            free(t);
            return st;
        }
        t->n_tokens = rqm_spm_n_vocab(t->spm);
        t->bos = rqm_spm_bos(t->spm), t->eos = rqm_spm_eos(t->spm);
        *out = t;
        return RQ_OK;
    }
    if (!rqm_str_eq(model, "gpt2"))
        return rqm_say(err, err_len, RQ_ERR_UNSUPPORTED, "tokenizer model \"%.*s\" is not gpt2 or llama",
                    (int)(model.len < 40 ? model.len : 40), model.ptr ? model.ptr : "");
    /* smollm: digits split first. gpt2 / default / absent (llama.cpp's
     * fallback for old files): the plain GPT-2 pattern. */
    int split_digits = 0;
    if (rqm_gguf_find(g, "tokenizer.ggml.pre")) {
        if (rqm_gguf_get_str(g, "tokenizer.ggml.pre", &pre) != RQ_OK)
            return rqm_say(err, err_len, RQ_ERR_FORMAT, "tokenizer.ggml.pre is not a string");
        if (rqm_str_eq(pre, "smollm"))
            split_digits = 1;
        else if (!rqm_str_eq(pre, "gpt2") && !rqm_str_eq(pre, "default"))
            return rqm_say(err, err_len, RQ_ERR_UNSUPPORTED,
                        "pre-tokenizer \"%.*s\" is not supported (smollm, gpt2, default)",
                        (int)(pre.len < 40 ? pre.len : 40), pre.ptr ? pre.ptr : "");
    }

    rqm_str *tokens = NULL, *merges = NULL;
    int32_t *types = NULL;
    size_t n_tokens = 0, n_merges = 0;
    int32_t bos = -1, eos = -1;
    rq_status st = gguf_str_array(g, "tokenizer.ggml.tokens", &tokens, &n_tokens, err, err_len);
    if (st == RQ_OK) st = gguf_str_array(g, "tokenizer.ggml.merges", &merges, &n_merges, err, err_len);
    const rqm_gguf_kv *kt = st == RQ_OK ? rqm_gguf_find(g, "tokenizer.ggml.token_type") : NULL;
    if (kt) {
        if (kt->type != RQM_GGUF_ARRAY || kt->arr_n != n_tokens) {
            st = rqm_say(err, err_len, RQ_ERR_FORMAT, "tokenizer.ggml.token_type is not an array of %zu", n_tokens);
        } else if (!(types = malloc((n_tokens ? n_tokens : 1) * sizeof *types))) {
            st = rqm_say(err, err_len, RQ_ERR_NOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < n_tokens && st == RQ_OK; i++) {
                double v;
                if (rqm_gguf_array_f64(kt, i, &v) != RQ_OK || !(v >= INT32_MIN && v <= INT32_MAX) ||
                    v != (double)(int32_t)v)
                    st = rqm_say(err, err_len, RQ_ERR_FORMAT, "tokenizer.ggml.token_type[%zu] is not an integer", i);
                else
                    types[i] = (int32_t)v;
            }
        }
    }
    if (st == RQ_OK) st = gguf_special_id(g, "tokenizer.ggml.bos_token_id", n_tokens, &bos, err, err_len);
    if (st == RQ_OK) st = gguf_special_id(g, "tokenizer.ggml.eos_token_id", n_tokens, &eos, err, err_len);
    if (st == RQ_OK)
        st = tokenizer_build(out, tokens, n_tokens, merges, n_merges, types, split_digits, err, err_len);
    if (st == RQ_OK) {
        (*out)->bos = bos;
        (*out)->eos = eos;
    }
    free(tokens);
    free(merges);
    free(types);
    return st;
}

size_t rqm_tokenizer_n_vocab(const rqm_tokenizer *t) { return t ? t->n_tokens : 0; }
int32_t rqm_tokenizer_bos(const rqm_tokenizer *t) { return t ? t->bos : -1; }
int32_t rqm_tokenizer_eos(const rqm_tokenizer *t) { return t ? t->eos : -1; }
int rqm_tokenizer_add_bos(const rqm_tokenizer *t) { return t && t->spm ? rqm_spm_add_bos(t->spm) : 0; }
int32_t rqm_tokenizer_seq_bos(const rqm_tokenizer *t) { return rqm_tokenizer_add_bos(t) && t->bos >= 0 ? t->bos : -1; }

/* ---- encoding ------------------------------------------------------------- */
typedef struct {
    uint32_t rank, pos; /* a candidate merge of symbol pos with its right neighbour */
} rqm_cand;

/* Per-call state: output cursor and BPE scratch (grown to the longest piece;
 * never shared, which is what makes concurrent encoding safe). */
typedef struct {
    const rqm_tokenizer *t;
    int32_t *out;
    size_t cap, n; /* n counts every id, also those past cap */
    int32_t *id;   /* [scratch] symbol token ids, -1 once merged away */
    uint32_t *next, *prev; /* linked list of live symbols; UINT32_MAX = none */
    rqm_cand *heap;        /* [3 * scratch] */
    size_t scratch;
} rqm_enc;

static void emit(rqm_enc *e, int32_t id) {
    if (e->n < e->cap) e->out[e->n] = id;
    e->n++;
}

static int cand_less(rqm_cand a, rqm_cand b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void heap_push(rqm_cand *h, size_t *n, rqm_cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(c, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static rqm_cand heap_pop(rqm_cand *h, size_t *n) {
    rqm_cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m;
        if (l >= *n) break;
        m = (r < *n && cand_less(h[r], h[l])) ? r : l;
        if (!cand_less(h[m], last)) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}

/* Queue the merge of symbol i with its right neighbour, if one exists. */
static void push_pair(rqm_enc *e, size_t *n_heap, uint32_t i) {
    uint32_t j = e->next[i];
    if (j == UINT32_MAX) return;
    const rqm_pair *p = pair_find(e->t, e->id[i], e->id[j]);
    if (p) heap_push(e->heap, n_heap, (rqm_cand){p->rank, i});
}

/* BPE of one piece s[0..n), n >= 1. A min-heap of candidate merges ordered
 * by (rank, position) gives the lowest-rank, leftmost pair each step in
 * O(log n); stale entries (a symbol merged since) are skipped when popped. */
static rq_status bpe_piece(rqm_enc *e, const uint8_t *s, size_t n) {
    const rqm_tokenizer *t = e->t;
    if (n == 1) { /* most punctuation, digits and spaces: no BPE needed */
        if (t->byte_id[s[0]] < 0) return RQ_ERR_FORMAT;
        emit(e, t->byte_id[s[0]]);
        return RQ_OK;
    }
    if (n > RQM_MAX_PIECE) return RQ_ERR_UNSUPPORTED;
    if (n > e->scratch) {
        size_t cap = n < 256 ? 256 : n;
        free(e->id);
        free(e->next);
        free(e->prev);
        free(e->heap);
        e->id = malloc(cap * sizeof *e->id);
        e->next = malloc(cap * sizeof *e->next);
        e->prev = malloc(cap * sizeof *e->prev);
        e->heap = malloc(3 * cap * sizeof *e->heap);
        e->scratch = (e->id && e->next && e->prev && e->heap) ? cap : 0;
        if (!e->scratch) return RQ_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        e->id[i] = t->byte_id[s[i]];
        if (e->id[i] < 0) return RQ_ERR_FORMAT; /* the vocabulary lacks this byte */
        e->prev[i] = i ? (uint32_t)(i - 1) : UINT32_MAX;
        e->next[i] = i + 1 < n ? (uint32_t)(i + 1) : UINT32_MAX;
    }
    /* Heap bound: n - 1 initial pairs + at most 2 per merge (n - 1 merges). */
    size_t n_heap = 0;
    for (uint32_t i = 0; i + 1 < n; i++) push_pair(e, &n_heap, i);
    while (n_heap) {
        rqm_cand c = heap_pop(e->heap, &n_heap);
        uint32_t i = c.pos, j;
        if (e->id[i] < 0 || (j = e->next[i]) == UINT32_MAX) continue;
        /* Still this merge? Ranks are unique per pair, so an equal rank
         * means the pair (id[i], id[j]) is the one that was queued. */
        const rqm_pair *p = pair_find(t, e->id[i], e->id[j]);
        if (!p || p->rank != c.rank) continue;
        e->id[i] = p->id; /* the left symbol absorbs the right one */
        e->id[j] = -1;
        e->next[i] = e->next[j];
        if (e->next[j] != UINT32_MAX) e->prev[e->next[j]] = i;
        if (e->prev[i] != UINT32_MAX) push_pair(e, &n_heap, e->prev[i]);
        push_pair(e, &n_heap, i);
    }
    for (uint32_t i = 0; i != UINT32_MAX; i = e->next[i]) emit(e, e->id[i]); /* symbol 0 never dies */
    return RQ_OK;
}

/* Length of a contraction 's 't 'm 'd 're 've 'll at s[0..n), s[0] == '\''
 * (case-sensitive, as in GPT-2's pattern); 0 if none. */
static size_t contraction(const uint8_t *s, size_t n) {
    if (n >= 2 && (s[1] == 's' || s[1] == 't' || s[1] == 'm' || s[1] == 'd')) return 2;
    if (n >= 3 && ((s[1] == 'r' && s[2] == 'e') || (s[1] == 'v' && s[2] == 'e') || (s[1] == 'l' && s[2] == 'l')))
        return 3;
    return 0;
}

/* The GPT-2 pattern over s[lo..hi); hi is the end of the string as far as
 * the regex is concerned (so trailing whitespace is one piece):
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * Alternatives are tried in order at each position, as the regex does. */
static rq_status split_gpt2(rqm_enc *e, const uint8_t *s, size_t lo, size_t hi) {
    size_t i = lo;
    while (i < hi) {
        size_t len, end, l;
        int c = char_class(s + i, hi - i, &len);
        if (s[i] == '\'' && (l = contraction(s + i, hi - i)) > 0) {
            end = i + l;
        } else {
            /* ` ?X+`: one leading space joins a following run of letters,
             * numbers or "other" characters (never whitespace). */
            size_t j = i;
            int cj = c;
            if (s[i] == ' ' && i + 1 < hi) {
                cj = char_class(s + i + 1, hi - i - 1, &len);
                if (cj != CH_SPACE) j = i + 1;
            }
            if (cj != CH_SPACE) {
                end = j + len;
                while (end < hi && char_class(s + end, hi - end, &l) == cj) end += l;
            } else {
                /* Whitespace run [i, k). `\s+(?!\S)` backtracks so that the
                 * last whitespace character is left for the next piece when
                 * a non-space follows (a ' ' there then prefixes a word);
                 * a single non-' ' whitespace character before a non-space
                 * falls through to `\s+` and is a piece of its own. */
                size_t k = i, last = i;
                while (k < hi && char_class(s + k, hi - k, &l) == CH_SPACE) last = k, k += l;
                end = (k == hi || last == i) ? k : last;
            }
        }
        rq_status st = bpe_piece(e, s + i, end - i);
        if (st != RQ_OK) return st;
        i = end;
    }
    return RQ_OK;
}

/* Pre-tokenize s[lo..hi) (text without special literals) and encode it. */
static rq_status encode_text(rqm_enc *e, const uint8_t *s, size_t lo, size_t hi) {
    if (!e->t->split_digits) return split_gpt2(e, s, lo, hi);
    /* smollm: each \p{N} character is a piece; the runs between go to the
     * GPT-2 pattern separately (HF: Digits(individual_digits) first). */
    size_t seg = lo, i = lo;
    while (i < hi) {
        size_t l;
        if (char_class(s + i, hi - i, &l) == CH_NUMBER) {
            rq_status st = seg < i ? split_gpt2(e, s, seg, i) : RQ_OK;
            if (st == RQ_OK) st = bpe_piece(e, s + i, l);
            if (st != RQ_OK) return st;
            seg = i + l;
        }
        i += l;
    }
    return seg < hi ? split_gpt2(e, s, seg, hi) : RQ_OK;
}

/* Longest special literal starting at s[0..n), or -1. */
static int32_t match_special(const rqm_tokenizer *t, const uint8_t *s, size_t n) {
    if (!(t->special_first[s[0] >> 3] & (1u << (s[0] & 7)))) return -1;
    for (size_t k = 0; k < t->n_specials; k++) { /* longest first */
        int32_t id = t->specials[k];
        size_t l = tok_len(t, (size_t)id);
        if (l <= n && memcmp(s, t->str + t->str_off[id], l) == 0) return id;
    }
    return -1;
}

rq_status rqm_tokenize(const rqm_tokenizer *t, const char *text, size_t len, int parse_special,
                       int32_t *out, size_t cap, size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!t || !n_out || (!text && len) || (!out && cap)) return RQ_ERR_INVALID_ARG;
    if (t->spm) return rqm_spm_tokenize(t->spm, text, len, parse_special, out, cap, n_out);
    const uint8_t *s = (const uint8_t *)text;
    rqm_enc e = {.t = t, .out = out, .cap = cap};
    rq_status st = RQ_OK;
    if (parse_special && t->n_specials) {
        size_t chunk = 0; /* start of the text since the last literal */
        for (size_t i = 0; i < len && st == RQ_OK;) {
            int32_t id = match_special(t, s + i, len - i);
            if (id < 0) {
                i++;
                continue;
            }
            if (chunk < i) st = encode_text(&e, s, chunk, i);
            emit(&e, id);
            i += tok_len(t, (size_t)id);
            chunk = i;
        }
        if (st == RQ_OK && chunk < len) st = encode_text(&e, s, chunk, len);
    } else if (len) {
        st = encode_text(&e, s, 0, len);
    }
    free(e.id);
    free(e.next);
    free(e.prev);
    free(e.heap);
    if (st != RQ_OK) return st;
    *n_out = e.n;
    return e.n > cap ? RQ_ERR_RANGE : RQ_OK;
}

/* ---- decoding ------------------------------------------------------------- */
rqm_str rqm_token_bytes(const rqm_tokenizer *t, int32_t id) {
    rqm_str r = {NULL, 0};
    if (!t || id < 0 || (size_t)id >= t->n_tokens) return r;
    if (t->spm) return rqm_spm_token_bytes(t->spm, id);
    r.ptr = t->dec + t->dec_off[id];
    r.len = t->dec_off[id + 1] - t->dec_off[id];
    return r;
}

rq_status rqm_detokenize(const rqm_tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t cap,
                         size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!t || !n_out || (!ids && n) || (!buf && cap)) return RQ_ERR_INVALID_ARG;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= t->n_tokens) return RQ_ERR_INVALID_ARG;
        const rqm_str tb = rqm_token_bytes(t, ids[i]);
        const char *p = tb.ptr;
        size_t l = (size_t)tb.len;
        if (total < cap) memcpy(buf + total, p, l < cap - total ? l : cap - total);
        total += l;
    }
    *n_out = total;
    return total > cap ? RQ_ERR_RANGE : RQ_OK;
}
