/*
 * prompt_cache.c — save a prefilled prompt's KV cache with its token ids and
 * restore the longest common prefix later (model/prompt_cache.h; file
 * layout docs/FORMAT.md §8). The KV bytes are the library's saved sequence
 * (§7), which carries its own versions, types, seed, key-basis hash and
 * CRC32Cs and is checked by rq_cache_seq_load_mem; this file adds what the
 * library cannot know: which model and which tokens produced them.
 */
#include "prompt_cache.h"

#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PC_MAGIC "RQPROMPT"
#define PC_VERSION 1u
#define PC_HEADER 48u  /* bytes before the token ids                     */
#define ID_EDGE 4096u  /* data bytes hashed at each end of a tensor       */

/* ---- FNV-1a 64 -------------------------------------------------------------- */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> 8 * i);
    return fnv(h, b, 8);
}

static uint64_t fnv_f64(uint64_t h, double d) {
    uint64_t v;
    memcpy(&v, &d, 8);
    return fnv_u64(h, v);
}

uint64_t rqm_model_identity(const rqm_gguf *g, const rqm_llama_hparams *hp) {
    uint64_t h = 0xcbf29ce484222325ull;
    const int ints[] = {hp->n_layers, hp->n_embd,  hp->n_heads,  hp->n_kv_heads, hp->head_dim,
                        hp->n_rot,    hp->n_ff,    hp->n_vocab, hp->n_ctx_train};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) h = fnv_u64(h, (uint64_t)(int64_t)ints[i]);
    h = fnv_f64(fnv_f64(h, hp->rope_base), hp->rms_eps);
    for (size_t i = 0; i < rqm_gguf_n_tensors(g); i++) {
        const rqm_tensor *t = rqm_gguf_tensor_at(g, i);
        h = fnv(fnv_u64(h, t->name.len), t->name.ptr, (size_t)t->name.len);
        h = fnv_u64(h, (uint64_t)t->type);
        for (int d = 0; d < 4; d++) h = fnv_u64(h, t->ne[d]);
        h = fnv_u64(h, t->n_bytes);
        if (!t->data) continue;
        const size_t n = (size_t)t->n_bytes, e = n < ID_EDGE ? n : ID_EDGE;
        h = fnv(h, t->data, e);
        h = fnv(h, (const uint8_t *)t->data + (n - e), e);
    }
    return h;
}

/* ---- little-endian fields ------------------------------------------------------ */
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i);
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i);
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint64_t ids_hash(const uint8_t *ids_le, size_t n) { return fnv(0xcbf29ce484222325ull, ids_le, 4 * n); }

rq_status rqm_prompt_cache_save(const char *path, uint64_t model_id, const int32_t *ids, size_t n,
                                const rqm_session *s, char *err, size_t err_len) {
    if (!path || !ids || !n || !s) return rqm_say(err, err_len, RQ_ERR_INVALID_ARG, "prompt cache: nothing to save");
    const rq_cache *c = rqm_session_cache(s);
    size_t n_kv = 0;
    rq_status st = rq_cache_seq_save_mem(c, 0, NULL, 0, &n_kv);
    if (st) return rqm_say(err, err_len, st, "%s", rq_last_error());
    if (n > (SIZE_MAX - PC_HEADER - n_kv) / 4) return rqm_say(err, err_len, RQ_ERR_NOMEM, "prompt cache: too large");
    const size_t total = PC_HEADER + 4 * n + n_kv;
    uint8_t *buf = malloc(total);
    if (!buf) return rqm_say(err, err_len, RQ_ERR_NOMEM, "prompt cache: %zu bytes", total);
    memcpy(buf, PC_MAGIC, 8);
    put_u32(buf + 8, PC_VERSION);
    put_u32(buf + 12, PC_HEADER);
    put_u64(buf + 16, model_id);
    put_u64(buf + 24, n);
    put_u64(buf + 32, n_kv);
    for (size_t i = 0; i < n; i++) put_u32(buf + PC_HEADER + 4 * i, (uint32_t)ids[i]);
    put_u64(buf + 40, ids_hash(buf + PC_HEADER, n));
    if ((st = rq_cache_seq_save_mem(c, 0, buf + PC_HEADER + 4 * n, n_kv, &n_kv))) {
        free(buf);
        return rqm_say(err, err_len, st, "%s", rq_last_error());
    }
    /* atomic: a temporary file in the same directory, flushed, renamed */
    const size_t plen = strlen(path) + 32;
    char *tmp = malloc(plen);
    if (!tmp) {
        free(buf);
        return rqm_say(err, err_len, RQ_ERR_NOMEM, "prompt cache: path");
    }
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(buf, 1, total, f) == total;
    ok = f && fflush(f) == 0 && ok;
    ok = f && fsync(fileno(f)) == 0 && ok;
    const int saved_errno = errno;
    if (f && fclose(f)) ok = 0;
    if (ok && rename(tmp, path)) ok = 0;
    if (!ok) {
        const char *why = strerror(errno ? errno : saved_errno);
        remove(tmp);
        st = rqm_say(err, err_len, RQ_ERR_IO, "cannot write %s: %s", path, why);
    }
    free(tmp), free(buf);
    return st;
}

rq_status rqm_prompt_cache_load(const char *path, uint64_t model_id, rqm_session *s, const int32_t *ids, size_t n,
                                size_t *n_reused, int *same, char *err, size_t err_len) {
    if (!path || !s || !ids || !n || !n_reused || !same) return RQ_ERR_INVALID_ARG;
    *n_reused = 0, *same = 0;
    rqm_session_reset(s);
    FILE *f = fopen(path, "rb");
    if (!f) return rqm_say(err, err_len, RQ_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    long len = -1;
    if (!fseek(f, 0, SEEK_END)) len = ftell(f);
    if (len >= 0 && !fseek(f, 0, SEEK_SET) && (buf = malloc(len ? (size_t)len : 1)) &&
        fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) return rqm_say(err, err_len, RQ_ERR_IO, "cannot read %s", path);
    const size_t size = (size_t)len;
    rq_status st = RQ_OK;
    if (size < PC_HEADER || memcmp(buf, PC_MAGIC, 8)) {
        st = rqm_say(err, err_len, size < 8 ? RQ_ERR_TRUNCATED : RQ_ERR_FORMAT, "%s is not a prompt cache", path);
    } else if (get_u32(buf + 8) != PC_VERSION || get_u32(buf + 12) != PC_HEADER) {
        st = rqm_say(err, err_len, RQ_ERR_FORMAT, "%s: prompt-cache version %u (this build reads %u)", path,
                     get_u32(buf + 8), PC_VERSION);
    } else if (get_u64(buf + 16) != model_id) {
        st = rqm_say(err, err_len, RQ_ERR_FORMAT, "%s was made with another model (identity %016llx, this one %016llx)",
                     path, (unsigned long long)get_u64(buf + 16), (unsigned long long)model_id);
    }
    const uint64_t n_ids = st ? 0 : get_u64(buf + 24), n_kv = st ? 0 : get_u64(buf + 32);
    if (!st && (n_ids > (size - PC_HEADER) / 4 || n_kv != size - PC_HEADER - 4 * n_ids))
        st = rqm_say(err, err_len, RQ_ERR_TRUNCATED, "%s: %zu bytes do not hold the %llu token ids and %llu cache bytes "
                     "the header announces", path, size, (unsigned long long)n_ids, (unsigned long long)n_kv);
    if (!st && ids_hash(buf + PC_HEADER, (size_t)n_ids) != get_u64(buf + 40))
        st = rqm_say(err, err_len, RQ_ERR_FORMAT, "%s: the token ids do not match their hash (corrupt)", path);
    if (st) {
        free(buf);
        return st;
    }
    size_t p = 0; /* the longest common prefix */
    while (p < n && p < n_ids && (int32_t)get_u32(buf + PC_HEADER + 4 * p) == ids[p]) p++;
    *same = p == n && n_ids == n;
    if (p == n) p = n - 1; /* the last token runs again: its logits start generation */
    if (p) {
        rq_last_error_clear();
        st = rqm_session_restore(s, buf + PC_HEADER + 4 * n_ids, (size_t)n_kv, p);
        if (st) {
            const char *why = rq_last_error();
            if (st == RQ_ERR_RANGE && !*why) why = "it holds fewer tokens than its ids";
            rqm_say(err, err_len, st, "%s: %s", path, *why ? why : rq_status_str(st));
            *same = 0;
        } else {
            *n_reused = p;
        }
    }
    free(buf);
    return st;
}
