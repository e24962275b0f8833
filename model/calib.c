/*
 * calib.c — key-basis calibration: accumulate E[k kᵀ] and E[q qᵀ] per layer
 * and KV head (the query moment pooled over the heads of the GQA group, the
 * queries that score those keys), in double, then fit each head's basis
 * (rq_key_basis_fit, src/keybasis.c).
 */
#include "calib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rqm_calib {
    rqm_llama_hparams hp;
    size_t n_ranges;
    size_t start[RQM_KB_MAX_RANGES];
    double *sk, *sq;  /* [layer][kv_head][range][d][d] sums: keys at, queries at positions of the range */
    size_t *nk, *nq;  /* [layer][range] keys and queries per head                                       */
};

size_t rqm_key_basis_ranges(size_t n_ctx, size_t max_ranges, size_t *start) {
    if (max_ranges < 1 || max_ranges > RQM_KB_MAX_RANGES) max_ranges = RQM_KB_MAX_RANGES;
    size_t n = 0;
    start[n++] = 0;
    /* a range starts at 256·2^k when at least half of [s, 2s) is in use:
     * no last range of a few positions with too few keys to fit */
    for (size_t s = 256; s + s / 2 <= n_ctx && n < max_ranges; s *= 2) start[n++] = s;
    return n;
}

size_t rqm_key_basis_range(const size_t *start, size_t n_ranges, size_t pos) {
    size_t r = n_ranges - 1;
    while (r > 0 && start[r] > pos) r--;
    return r;
}

rq_status rqm_calib_init(rqm_calib **out, const rqm_llama_hparams *hp, size_t n_ctx, size_t max_ranges) {
    if (!out || !hp || hp->n_layers < 1 || hp->n_kv_heads < 1 || hp->head_dim < 1 ||
        hp->n_heads % hp->n_kv_heads || n_ctx < 1)
        return RQ_ERR_INVALID_ARG;
    *out = NULL;
    rqm_calib *c = calloc(1, sizeof *c);
    if (!c) return RQ_ERR_NOMEM;
    c->hp = *hp;
    c->n_ranges = rqm_key_basis_ranges(n_ctx, max_ranges, c->start);
    const size_t R = c->n_ranges, L = (size_t)hp->n_layers;
    const size_t n = L * (size_t)hp->n_kv_heads * R * (size_t)hp->head_dim * (size_t)hp->head_dim;
    c->sk = calloc(n, sizeof(double));
    c->sq = calloc(n, sizeof(double));
    c->nk = calloc(L * R, sizeof(size_t));
    c->nq = calloc(L * R, sizeof(size_t));
    if (!c->sk || !c->sq || !c->nk || !c->nq) {
        rqm_calib_free(c);
        return RQ_ERR_NOMEM;
    }
    *out = c;
    return RQ_OK;
}

void rqm_calib_free(rqm_calib *c) {
    if (!c) return;
    free(c->sk), free(c->sq), free(c->nk), free(c->nq);
    free(c);
}

size_t rqm_calib_ranges(const rqm_calib *c, const size_t **start) {
    if (!c) return 0;
    if (start) *start = c->start;
    return c->n_ranges;
}

/* S += x xᵀ (upper triangle; mirrored in fit) */
static void add_outer(double *S, const float *x, size_t d) {
    for (size_t i = 0; i < d; i++) {
        const double xi = x[i];
        double *row = S + i * d;
        for (size_t j = i; j < d; j++) row[j] += xi * x[j];
    }
}

rq_status rqm_calib_observe(void *calib, const rqm_layer_event *ev) {
    rqm_calib *c = calib;
    if (!c || !ev || ev->layer < 0 || ev->layer >= c->hp.n_layers) return RQ_ERR_INVALID_ARG;
    const size_t D = (size_t)c->hp.head_dim, G = (size_t)c->hp.n_kv_heads, H = (size_t)c->hp.n_heads;
    const size_t group = H / G, L = (size_t)ev->layer, R = c->n_ranges;
    for (size_t t = 0; t < ev->n_tokens; t++) {
        const size_t pos = ev->pos0 + t;
        const size_t r = rqm_key_basis_range(c->start, R, pos);
        for (size_t g = 0; g < G; g++) {
            const size_t off = ((L * G + g) * R + r) * D * D;
            add_outer(c->sk + off, ev->k + (t * G + g) * D, D);
            for (size_t h = g * group; h < (g + 1) * group; h++) add_outer(c->sq + off, ev->q + (t * H + h) * D, D);
        }
        c->nk[L * R + r]++;
        c->nq[L * R + r] += group;
    }
    return RQ_OK;
}

size_t rqm_calib_tokens(const rqm_calib *c) {
    size_t n = 0;
    for (size_t r = 0; c && r < c->n_ranges; r++) n += c->nk[r];
    return n;
}

/* Range r's basis: keys at the range's positions; the queries that read
 * them, i.e. every query at a position ≥ start[r] (ranges r..R−1). */
rq_status rqm_calib_fit(const rqm_calib *c, float *basis) {
    if (!c || !basis) return RQ_ERR_INVALID_ARG;
    const size_t D = (size_t)c->hp.head_dim, G = (size_t)c->hp.n_kv_heads, R = c->n_ranges;
    double *k = malloc(sizeof(double) * D * D), *q = malloc(sizeof(double) * D * D);
    rq_status st = k && q ? RQ_OK : RQ_ERR_NOMEM;
    for (size_t l = 0; l < (size_t)c->hp.n_layers && !st; l++)
        for (size_t g = 0; g < G && !st; g++)
            for (size_t r = 0; r < R && !st; r++) {
                const size_t nk = c->nk[l * R + r];
                size_t nq = 0;
                for (size_t u = r; u < R; u++) nq += c->nq[l * R + u];
                if (!nk || !nq) { /* a range nothing was observed in */
                    st = RQ_ERR_INVALID_ARG;
                    break;
                }
                const double *sk = c->sk + ((l * G + g) * R + r) * D * D;
                for (size_t i = 0; i < D; i++)
                    for (size_t j = i; j < D; j++) {
                        double a = 0;
                        for (size_t u = r; u < R; u++) a += c->sq[((l * G + g) * R + u) * D * D + i * D + j];
                        k[i * D + j] = k[j * D + i] = sk[i * D + j] / (double)nk;
                        q[i * D + j] = q[j * D + i] = a / (double)nq;
                    }
                st = rq_key_basis_fit(k, q, (int)D, basis + ((l * G + g) * R + r) * D * D);
            }
    free(k), free(q);
    return st;
}

/* ---- the basis file: a GGUF (model/gguf.c reads it, every field checked) */
#define KB_ARCH "rotorquant-key-basis"
#define KB_TENSOR "key_basis"

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int oom;
} wbuf;

static void put(wbuf *b, const void *x, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q, b->cap = cap;
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
}
static void put_u32(wbuf *b, uint32_t v) { put(b, &v, 4); } /* GGUF is little-endian, as is x86-64 */
static void put_u64(wbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(wbuf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void put_kv_u32(wbuf *b, const char *key, uint32_t v) {
    put_str(b, key);
    put_u32(b, RQM_GGUF_U32);
    put_u32(b, v);
}

rq_status rqm_key_basis_save(const char *path, const rqm_llama_hparams *hp, const float *basis,
                             const rqm_key_basis_info *info) {
    if (!path || !hp || !basis || !info || info->n_ctx < 1 || info->n_ranges < 1 ||
        info->n_ranges > RQM_KB_MAX_RANGES || info->start[0] != 0)
        return RQ_ERR_INVALID_ARG;
    const size_t R = info->n_ranges, dd = (size_t)hp->head_dim * (size_t)hp->head_dim;
    const size_t n = (size_t)hp->n_layers * (size_t)hp->n_kv_heads * R * dd;
    wbuf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, 1); /* tensors */
    put_u64(&b, 5); /* metadata */
    put_str(&b, "general.architecture");
    put_u32(&b, RQM_GGUF_STRING);
    put_str(&b, KB_ARCH);
    put_kv_u32(&b, "rotorquant.key_basis.n_ctx", (uint32_t)info->n_ctx);
    put_kv_u32(&b, "rotorquant.key_basis.n_tokens", (uint32_t)info->n_tokens);
    put_kv_u32(&b, "rotorquant.key_basis.self_generated", (uint32_t)(info->self_generated != 0));
    put_str(&b, "rotorquant.key_basis.range_start");
    put_u32(&b, RQM_GGUF_ARRAY);
    put_u32(&b, RQM_GGUF_U32);
    put_u64(&b, R);
    for (size_t r = 0; r < R; r++) put_u32(&b, (uint32_t)info->start[r]);
    put_str(&b, KB_TENSOR);
    put_u32(&b, 4); /* ne: [d², ranges, KV heads, layers] */
    put_u64(&b, (uint64_t)dd), put_u64(&b, (uint64_t)R);
    put_u64(&b, (uint64_t)hp->n_kv_heads), put_u64(&b, (uint64_t)hp->n_layers);
    put_u32(&b, RQM_GGML_F32);
    put_u64(&b, 0);
    static const uint8_t zero[32] = {0};
    put(&b, zero, (32 - b.n % 32) % 32); /* default alignment */
    put(&b, basis, n * sizeof(float));
    if (b.oom) {
        free(b.p);
        return RQ_ERR_NOMEM;
    }
    FILE *f = fopen(path, "wb");
    rq_status st = RQ_OK;
    if (!f || fwrite(b.p, 1, b.n, f) != b.n) st = RQ_ERR_IO;
    if (f && fclose(f)) st = RQ_ERR_IO;
    free(b.p);
    return st;
}

rq_status rqm_key_basis_load(const char *path, const rqm_llama_hparams *hp, float **out, rqm_key_basis_info *info,
                             char *err, size_t err_len) {
    if (!path || !hp || !out) return RQ_ERR_INVALID_ARG;
    *out = NULL;
    rqm_gguf *g = NULL;
    rq_status st = rqm_gguf_open(&g, path, err, err_len);
    if (st) return st;
    rqm_str arch = {0};
    uint64_t n_ctx = 0, n_tok = 0, self = 0;
    rqm_key_basis_info got;
    memset(&got, 0, sizeof got);
    const rqm_tensor *t = rqm_gguf_tensor(g, KB_TENSOR);
    const rqm_gguf_kv *rs = rqm_gguf_find(g, "rotorquant.key_basis.range_start");
    const uint64_t dd = (uint64_t)hp->head_dim * (uint64_t)hp->head_dim;
    if (rqm_gguf_get_str(g, "general.architecture", &arch) || !rqm_str_eq(arch, KB_ARCH) || !t)
        st = rqm_say(err, err_len, RQ_ERR_FORMAT, "not a key basis (make one with `rotorquant calibrate`)");
    else if (rqm_gguf_get_u64(g, "rotorquant.key_basis.n_ctx", &n_ctx) || n_ctx < 1 || n_ctx > (1u << 30))
        st = rqm_say(err, err_len, RQ_ERR_FORMAT, "rotorquant.key_basis.n_ctx missing or out of range");
    else if (!rs || rs->type != RQM_GGUF_ARRAY || rs->arr_n < 1 || rs->arr_n > RQM_KB_MAX_RANGES)
        st = rqm_say(err, err_len, RQ_ERR_FORMAT, "rotorquant.key_basis.range_start missing or out of range");
    for (uint64_t r = 0; !st && r < rs->arr_n; r++) {
        double v;
        if (rqm_gguf_array_f64(rs, r, &v) || v < 0 || v >= (double)n_ctx || v != (double)(size_t)v ||
            (r == 0 ? v != 0 : v <= (double)got.start[r - 1]))
            st = rqm_say(err, err_len, RQ_ERR_FORMAT, "range_start[%llu] is not an increasing position from 0",
                         (unsigned long long)r);
        else got.start[r] = (size_t)v;
    }
    if (!st && (t->type != RQM_GGML_F32 || t->n_dims != 4 || t->ne[0] != dd || t->ne[1] != rs->arr_n ||
                t->ne[2] != (uint64_t)hp->n_kv_heads || t->ne[3] != (uint64_t)hp->n_layers))
        st = rqm_say(err, err_len, RQ_ERR_SHAPE,
                     "a key basis for this model is f32 [%llu, ranges, %d, %d] (head_dim², ranges, KV heads, layers)",
                     (unsigned long long)dd, hp->n_kv_heads, hp->n_layers);
    const size_t n = st ? 0 : (size_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    float *b = st ? NULL : malloc(n * sizeof(float));
    if (!st && !b) st = RQ_ERR_NOMEM;
    if (!st) {
        memcpy(b, t->data, n * sizeof(float));
        for (size_t i = 0; i < n && !st; i++)
            if (!isfinite(b[i])) st = rqm_say(err, err_len, RQ_ERR_NONFINITE, "value %zu is not finite", i);
    }
    if (!st) got.n_ranges = (size_t)rs->arr_n;
    rqm_gguf_get_u64(g, "rotorquant.key_basis.n_tokens", &n_tok);
    rqm_gguf_get_u64(g, "rotorquant.key_basis.self_generated", &self);
    rqm_gguf_close(g);
    if (st) {
        free(b);
        return st;
    }
    got.n_ctx = (long)n_ctx, got.n_tokens = (long)n_tok, got.self_generated = self != 0;
    if (info) *info = got;
    *out = b;
    return RQ_OK;
}
