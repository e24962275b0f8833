/*
 * tokenizer_spm.c — SentencePiece-style BPE over a GGUF vocabulary
 * (`tokenizer.ggml.model = llama`), the scheme of llama.cpp's SPM
 * tokenizer, whose `llama-tokenize` is the reference the tests hold it to
 * (scripts/spm_reference.sh, tests/data/gemma3_tok_ref.txt.gz).
 *
 * Encoding, in order:
 *   1. Partition: special tokens are cut out of the text, one token at a
 *      time, longest text first (ties: lower id first), each at every
 *      non-overlapping occurrence from the left in every piece still raw.
 *      User-defined tokens (type 4, Gemma's "\n", "\n\n", "<div>" …) always
 *      take part; control and unknown ones (types 3, 2) only with
 *      parse_special.
 *   2. Each raw piece: every ' ' becomes "▁" (U+2581); no space prefix
 *      unless tokenizer.ggml.add_space_prefix is true (then one before a
 *      piece that starts the text or follows a special token).
 *   3. The piece splits into characters by UTF-8 lead byte (a stray
 *      continuation byte is a character of its own; a sequence cut by the
 *      end is what is left). Every adjacent pair whose concatenation is a
 *      vocabulary token is a candidate; the candidate with the highest
 *      score merges (ties: the leftmost), and the new symbol's neighbours
 *      become candidates, until none is left.
 *   4. Each final symbol is its token; a symbol that is no token (a single
 *      character outside the vocabulary) becomes its bytes' <0xXX> tokens
 *      (byte fallback).
 * Decoding: "▁" → ' ', <0xXX> → that byte, special tokens → their text.
 *
 * A built tokenizer is read-only; scratch is per call.
 */
#include "tokenizer_spm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SPM_UNKNOWN = 2, SPM_CONTROL = 3, SPM_USER_DEFINED = 4, SPM_BYTE = 6 };

struct rqm_spm {
    size_t n_tokens;
    char *str;          /* token texts back to back                         */
    size_t *str_off;    /* [n_tokens + 1]                                   */
    char *dec;          /* what each token decodes to                       */
    size_t *dec_off;    /* [n_tokens + 1]                                   */
    float *score;       /* [n_tokens]                                       */
    uint8_t *type;      /* [n_tokens] GGUF token types (clamped to 0..255)  */
    int32_t *slot;      /* open addressing: text → id (the last id wins, as
                           llama.cpp's map); -1 empty                       */
    size_t slot_mask;
    int32_t byte_id[256];
    int32_t *specials;  /* types 2/3/4 with non-empty text, longest first   */
    size_t n_specials;
    int32_t bos, eos;
    int add_bos, add_space_prefix;
};

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static int32_t lookup(const rqm_spm *t, const char *s, size_t n) {
    for (size_t i = hash_bytes(s, n) & t->slot_mask;; i = (i + 1) & t->slot_mask) {
        const int32_t id = t->slot[i];
        if (id < 0) return -1;
        const size_t len = t->str_off[id + 1] - t->str_off[id];
        if (len == n && !memcmp(t->str + t->str_off[id], s, n)) return id;
    }
}

void rqm_spm_free(rqm_spm *t) {
    if (!t) return;
    free(t->str), free(t->str_off), free(t->dec), free(t->dec_off), free(t->score), free(t->type);
    free(t->slot), free(t->specials);
    free(t);
}

size_t rqm_spm_n_vocab(const rqm_spm *t) { return t ? t->n_tokens : 0; }
int32_t rqm_spm_bos(const rqm_spm *t) { return t ? t->bos : -1; }
int32_t rqm_spm_eos(const rqm_spm *t) { return t ? t->eos : -1; }
int rqm_spm_add_bos(const rqm_spm *t) { return t ? t->add_bos : 0; }

static const rqm_spm *sort_ctx; /* qsort has no context argument; set under build only */
static int by_length_desc(const void *a, const void *b) {
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    const size_t lx = sort_ctx->str_off[x + 1] - sort_ctx->str_off[x];
    const size_t ly = sort_ctx->str_off[y + 1] - sort_ctx->str_off[y];
    if (lx != ly) return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

static rq_status special_id(const rqm_gguf *g, const char *key, size_t n, int32_t *id, char *err, size_t err_len) {
    uint64_t u;
    *id = -1;
    if (!rqm_gguf_find(g, key)) return RQ_OK;
    if (rqm_gguf_get_u64(g, key, &u) != RQ_OK || u >= n)
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "%s is not a token id below %zu", key, n);
    *id = (int32_t)u;
    return RQ_OK;
}

static rq_status flag(const rqm_gguf *g, const char *key, int *out, char *err, size_t err_len) {
    uint64_t u;
    if (!rqm_gguf_find(g, key)) return RQ_OK;
    if (rqm_gguf_get_u64(g, key, &u) != RQ_OK || u > 1)
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "%s is not a boolean", key);
    *out = (int)u;
    return RQ_OK;
}

rq_status rqm_spm_from_gguf(rqm_spm **out, const rqm_gguf *g, char *err, size_t err_len) {
    if (!out || !g) return RQ_ERR_INVALID_ARG;
    *out = NULL;
    const rqm_gguf_kv *kt = rqm_gguf_find(g, "tokenizer.ggml.tokens");
    const rqm_gguf_kv *ks = rqm_gguf_find(g, "tokenizer.ggml.scores");
    const rqm_gguf_kv *ky = rqm_gguf_find(g, "tokenizer.ggml.token_type");
    if (!kt || kt->type != RQM_GGUF_ARRAY || kt->arr_type != RQM_GGUF_STRING || kt->arr_n == 0 ||
        kt->arr_n >= (1u << 30))
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "tokenizer.ggml.tokens is not a non-empty array of strings");
    const size_t n = (size_t)kt->arr_n;
    if (!ks || ks->type != RQM_GGUF_ARRAY || ks->arr_n != n || ks->arr_type == RQM_GGUF_STRING ||
        ks->arr_type == RQM_GGUF_ARRAY)
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "tokenizer.ggml.scores is not an array of %zu numbers", n);
    if (ky && (ky->type != RQM_GGUF_ARRAY || ky->arr_n != n || ky->arr_type == RQM_GGUF_STRING ||
               ky->arr_type == RQM_GGUF_ARRAY))
        return rqm_say(err, err_len, RQ_ERR_FORMAT, "tokenizer.ggml.token_type is not an array of %zu integers", n);
    rqm_spm *t = calloc(1, sizeof *t);
    if (!t) return RQ_ERR_NOMEM;
    t->n_tokens = n;
    rq_status st = RQ_OK;
    size_t total = 0;
    for (size_t i = 0; i < n && !st; i++) {
        rqm_str s;
        if (rqm_gguf_array_str(g, kt, i, &s) != RQ_OK) st = RQ_ERR_FORMAT;
        else total += (size_t)s.len;
    }
    if (st) {
        rqm_spm_free(t);
        return rqm_say(err, err_len, st, "tokenizer.ggml.tokens: unreadable entry");
    }
    size_t slots = 1;
    while (slots < 2 * n) slots <<= 1;
    t->str = malloc(total + 1), t->dec = malloc(total + 1);
    t->str_off = malloc((n + 1) * sizeof(size_t)), t->dec_off = malloc((n + 1) * sizeof(size_t));
    t->score = malloc(n * sizeof(float)), t->type = malloc(n);
    t->slot = malloc(slots * sizeof(int32_t)), t->specials = malloc(n * sizeof(int32_t));
    if (!t->str || !t->dec || !t->str_off || !t->dec_off || !t->score || !t->type || !t->slot || !t->specials) {
        rqm_spm_free(t);
        return RQ_ERR_NOMEM;
    }
    t->slot_mask = slots - 1;
    memset(t->slot, 0xff, slots * sizeof(int32_t));
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    size_t so = 0, dof = 0;
    for (size_t i = 0; i < n && !st; i++) {
        rqm_str s;
        double sc = 0, ty = 1;
        rqm_gguf_array_str(g, kt, i, &s);
        if (rqm_gguf_array_f64(ks, i, &sc) != RQ_OK || !(sc == sc)) {
            st = rqm_say(err, err_len, RQ_ERR_FORMAT, "tokenizer.ggml.scores[%zu] is not a number", i);
            break;
        }
        if (ky && (rqm_gguf_array_f64(ky, i, &ty) != RQ_OK || !(ty >= 0 && ty <= 255) || ty != (double)(int)ty)) {
            st = rqm_say(err, err_len, RQ_ERR_FORMAT, "tokenizer.ggml.token_type[%zu] is not a token type", i);
            break;
        }
        t->score[i] = (float)sc;
        t->type[i] = (uint8_t)ty;
        t->str_off[i] = so, t->dec_off[i] = dof;
        memcpy(t->str + so, s.ptr, (size_t)s.len);
        /* what it decodes to */
        unsigned hx;
        char tail;
        if (t->type[i] == SPM_BYTE && s.len == 6 && sscanf(t->str + so, "<0x%2X%c", &hx, &tail) == 2 && tail == '>') {
            t->dec[dof++] = (char)hx;
            t->byte_id[hx & 255] = (int32_t)i;
        } else {
            for (size_t k = 0; k < (size_t)s.len; k++) {
                if (k + 2 < (size_t)s.len && !memcmp(s.ptr + k, "\xe2\x96\x81", 3)) {
                    t->dec[dof++] = ' ';
                    k += 2;
                } else {
                    t->dec[dof++] = s.ptr[k];
                }
            }
        }
        so += (size_t)s.len;
        t->str_off[i + 1] = so, t->dec_off[i + 1] = dof;
        /* text → id; a later duplicate replaces the earlier (llama.cpp) */
        size_t h = hash_bytes(s.ptr, (size_t)s.len) & t->slot_mask;
        for (;; h = (h + 1) & t->slot_mask) {
            const int32_t id = t->slot[h];
            if (id < 0 || (t->str_off[id + 1] - t->str_off[id] == (size_t)s.len &&
                           !memcmp(t->str + t->str_off[id], s.ptr, (size_t)s.len))) {
                t->slot[h] = (int32_t)i;
                break;
            }
        }
        if ((t->type[i] == SPM_UNKNOWN || t->type[i] == SPM_CONTROL || t->type[i] == SPM_USER_DEFINED) && s.len)
            t->specials[t->n_specials++] = (int32_t)i;
    }
    t->add_bos = 1; /* llama.cpp's default for SPM vocabularies */
    if (!st) st = special_id(g, "tokenizer.ggml.bos_token_id", n, &t->bos, err, err_len);
    if (!st) st = special_id(g, "tokenizer.ggml.eos_token_id", n, &t->eos, err, err_len);
    if (!st) st = flag(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err, err_len);
    if (!st) st = flag(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err, err_len);
    if (!st && t->add_bos && t->bos < 0)
        st = rqm_say(err, err_len, RQ_ERR_FORMAT, "tokenizer.ggml.add_bos_token without a bos_token_id");
    if (st) {
        rqm_spm_free(t);
        return st;
    }
    sort_ctx = t;
    qsort(t->specials, t->n_specials, sizeof(int32_t), by_length_desc);
    sort_ctx = NULL;
    *out = t;
    return RQ_OK;
}

rqm_str rqm_spm_token_bytes(const rqm_spm *t, int32_t id) {
    rqm_str r = {NULL, 0};
    if (!t || id < 0 || (size_t)id >= t->n_tokens) return r;
    r.ptr = t->dec + t->dec_off[id];
    r.len = t->dec_off[id + 1] - t->dec_off[id];
    return r;
}

/* ---- encoding ---------------------------------------------------------- */

typedef struct {
    size_t off, len;
    int32_t id; /* -1: raw text */
} frag;

typedef struct {
    int left, right; /* symbol indices */
    float score;
    size_t size; /* bytes of the merged text: stale if a side changed */
} bigram;

typedef struct {
    size_t off, n;
    int prev, next;
} symbol;

typedef struct {
    const rqm_spm *t;
    int32_t *out;
    size_t cap, n_out;
    char *buf;    /* the escaped piece */
    symbol *sym;
    bigram *heap;
    size_t n_heap, heap_cap;
} spm_enc;

static void emit(spm_enc *e, int32_t id) {
    if (e->n_out < e->cap) e->out[e->n_out] = id;
    e->n_out++;
}

/* max-heap: higher score first, then the leftmost */
static int heap_before(const bigram *a, const bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static rq_status heap_push(spm_enc *e, bigram b) {
    if (e->n_heap == e->heap_cap) {
        size_t nc = e->heap_cap ? 2 * e->heap_cap : 64;
        bigram *nh = realloc(e->heap, nc * sizeof *nh);
        if (!nh) return RQ_ERR_NOMEM;
        e->heap = nh, e->heap_cap = nc;
    }
    size_t i = e->n_heap++;
    while (i > 0 && heap_before(&b, &e->heap[(i - 1) / 2])) {
        e->heap[i] = e->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    e->heap[i] = b;
    return RQ_OK;
}

static bigram heap_pop(spm_enc *e) {
    bigram top = e->heap[0], last = e->heap[--e->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= e->n_heap) break;
        if (c + 1 < e->n_heap && heap_before(&e->heap[c + 1], &e->heap[c])) c++;
        if (!heap_before(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (e->n_heap) e->heap[i] = last;
    return top;
}

static rq_status try_bigram(spm_enc *e, int left, int right) {
    if (left < 0 || right < 0) return RQ_OK;
    const symbol *a = &e->sym[left], *b = &e->sym[right];
    const int32_t id = lookup(e->t, e->buf + a->off, a->n + b->n); /* a, b adjacent in buf */
    if (id < 0) return RQ_OK;
    bigram g = {left, right, e->t->score[id], a->n + b->n};
    return heap_push(e, g);
}

/* UTF-8 sequence length from the lead byte (llama.cpp's unicode_len_utf8). */
static size_t utf8_len(uint8_t c) {
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[c >> 4];
}

/* Steps 2–4 for one raw piece s[n]. */
static rq_status encode_piece(spm_enc *e, const char *s, size_t n, int space_prefix) {
    size_t m = 0;
    if (space_prefix) memcpy(e->buf, "\xe2\x96\x81", 3), m = 3;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') memcpy(e->buf + m, "\xe2\x96\x81", 3), m += 3;
        else e->buf[m++] = s[i];
    }
    int n_sym = 0;
    for (size_t off = 0; off < m;) {
        size_t l = utf8_len((uint8_t)e->buf[off]);
        if (l > m - off) l = m - off;
        e->sym[n_sym] = (symbol){off, l, n_sym - 1, -1};
        if (n_sym) e->sym[n_sym - 1].next = n_sym;
        n_sym++;
        off += l;
    }
    e->n_heap = 0;
    rq_status st = RQ_OK;
    for (int i = 1; i < n_sym && !st; i++) st = try_bigram(e, i - 1, i);
    while (e->n_heap && !st) {
        bigram b = heap_pop(e);
        symbol *L = &e->sym[b.left], *R = &e->sym[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size) continue; /* stale */
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) e->sym[R->next].prev = b.left;
        st = try_bigram(e, L->prev, b.left);
        if (!st) st = try_bigram(e, b.left, L->next);
    }
    if (st) return st;
    for (int i = n_sym ? 0 : -1; i >= 0; i = e->sym[i].next) {
        const symbol *y = &e->sym[i];
        const int32_t id = lookup(e->t, e->buf + y->off, y->n);
        if (id >= 0) {
            emit(e, id);
            continue;
        }
        for (size_t k = 0; k < y->n; k++) { /* byte fallback */
            const int32_t b = e->t->byte_id[(uint8_t)e->buf[y->off + k]];
            if (b < 0) return RQ_ERR_FORMAT; /* the vocabulary lacks <0xXX> */
            emit(e, b);
        }
    }
    return RQ_OK;
}

/* The first occurrence of p[m] in s[n], or NULL. */
static const char *find_bytes(const char *s, size_t n, const char *p, size_t m) {
    if (m == 0 || m > n) return NULL;
    for (const char *end = s + n - m + 1; s < end;) {
        const char *c = memchr(s, p[0], (size_t)(end - s));
        if (!c) return NULL;
        if (!memcmp(c, p, m)) return c;
        s = c + 1;
    }
    return NULL;
}

typedef struct {
    frag *f;
    size_t n, cap;
} frag_list;

static int frag_push(frag_list *l, frag x) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 16;
        frag *nf = realloc(l->f, nc * sizeof *nf);
        if (!nf) return 0;
        l->f = nf, l->cap = nc;
    }
    l->f[l->n++] = x;
    return 1;
}

/* Step 1: cut special tokens out of the raw fragments, longest first; each
 * pass copies the list once (O(fragments) per special token). */
static rq_status partition(const rqm_spm *t, const char *text, size_t len, int parse_special, frag_list *out) {
    frag_list a = {0}, b = {0};
    if (!frag_push(&a, (frag){0, len, -1})) return RQ_ERR_NOMEM;
    for (size_t si = 0; si < t->n_specials; si++) {
        const int32_t id = t->specials[si];
        if (!parse_special && t->type[id] != SPM_USER_DEFINED) continue;
        const char *tok = t->str + t->str_off[id];
        const size_t tl = t->str_off[id + 1] - t->str_off[id];
        int any = 0;
        for (size_t i = 0; i < a.n && !any; i++)
            any = a.f[i].id < 0 && find_bytes(text + a.f[i].off, a.f[i].len, tok, tl) != NULL;
        if (!any) continue;
        b.n = 0;
        for (size_t i = 0; i < a.n; i++) {
            frag x = a.f[i];
            int ok = 1;
            if (x.id < 0) {
                const char *hit;
                while (ok && (hit = find_bytes(text + x.off, x.len, tok, tl))) {
                    const size_t at = (size_t)(hit - text);
                    if (at > x.off) ok = frag_push(&b, (frag){x.off, at - x.off, -1});
                    if (ok) ok = frag_push(&b, (frag){at, tl, id});
                    x.len -= at + tl - x.off;
                    x.off = at + tl;
                }
                if (ok && x.len) ok = frag_push(&b, x);
            } else {
                ok = frag_push(&b, x);
            }
            if (!ok) {
                free(a.f), free(b.f);
                return RQ_ERR_NOMEM;
            }
        }
        frag_list tmp = a;
        a = b, b = tmp;
    }
    free(b.f);
    *out = a;
    return RQ_OK;
}

rq_status rqm_spm_tokenize(const rqm_spm *t, const char *text, size_t len, int parse_special, int32_t *out,
                           size_t cap, size_t *n_out) {
    if (!t || (!text && len) || (!out && cap) || !n_out) return RQ_ERR_INVALID_ARG;
    *n_out = 0;
    frag_list fl = {0};
    rq_status st = partition(t, text ? text : "", len, parse_special, &fl);
    if (st) return st;
    const frag *f = fl.f;
    const size_t n_f = fl.n;
    size_t longest = 0;
    for (size_t i = 0; i < n_f; i++)
        if (f[i].id < 0 && f[i].len > longest) longest = f[i].len;
    spm_enc e = {.t = t, .out = out, .cap = cap};
    e.buf = malloc(3 * longest + 4);
    e.sym = malloc((3 * longest + 4) * sizeof *e.sym);
    if (!e.buf || !e.sym) st = RQ_ERR_NOMEM;
    int prev_special = 1;
    for (size_t i = 0; i < n_f && !st; i++) {
        if (f[i].id >= 0) {
            emit(&e, f[i].id);
            prev_special = 1;
        } else {
            st = encode_piece(&e, text + f[i].off, f[i].len, t->add_space_prefix && prev_special);
            prev_special = 0;
        }
    }
    free(e.buf), free(e.sym), free(e.heap), free(fl.f);
    if (st) return st;
    *n_out = e.n_out;
    return e.n_out > cap ? RQ_ERR_RANGE : RQ_OK;
}
